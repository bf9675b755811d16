"""The prompt catalog on moto: versions, activation, one-command rollback, and the chat path using it.

The chat path is the composition root's (handlers.wiring.build_chat_service): the catalog read by the real
adapter, a rollback seen within the prompt cache's TTL on an injected clock, each turn recording its version."""

from __future__ import annotations

from typing import Any

import pytest

from adapters.dynamodb import DynamoConversationStore
from adapters.prompt_catalog import DynamoPromptCatalog
from core.chat import cache_scope
from core.errors import Conflict, NotFound
from core.models import ChatRequest
from core.prompts import BUILTIN_PROMPT, Activation
from handlers.wiring import build_chat_service
from local.resources import create_table, create_tables
from tests.conftest import TEST_SETTINGS
from tests.fakes import fixture_aws  # noqa: F401 - the fixture `aws`

TABLE = "prompts-test"
SETTINGS = TEST_SETTINGS.but(prompts_table_name=TABLE, prompt_environment="dev", prompt_cache_s=30.0)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class RecordingBedrock:
    """bedrock-runtime's Converse: answers with the system prompt it was given, so the test sees which one."""

    def __init__(self) -> None:
        self.systems: list[str] = []

    def converse(self, **request: Any) -> dict[str, Any]:
        system = request["system"][0]["text"]
        self.systems.append(system)
        return {
            "output": {"message": {"role": "assistant", "content": [{"text": f"answered with: {system}"}]}},
            "stopReason": "end_turn",
            "usage": {"inputTokens": 3, "outputTokens": 4, "totalTokens": 7},
        }


@pytest.fixture
def catalog(aws: dict[str, Any]) -> DynamoPromptCatalog:
    create_table(aws["dynamodb"], TABLE, [("pk", "HASH"), ("sk", "RANGE")])
    return DynamoPromptCatalog(client=aws["dynamodb"], table_name=TABLE)


def test_add_list_activate_and_roll_back(catalog: DynamoPromptCatalog) -> None:
    assert catalog.active("dev") is None and catalog.activation("dev") is None

    assert catalog.add("one", note="first") == "1"
    assert catalog.add("two") == "2"
    catalog.activate("dev", "1")
    catalog.activate("dev", "2")
    catalog.activate("prod", "1")

    assert [(v.version, v.text, v.note) for v in catalog.versions()] == [("1", "one", "first"), ("2", "two", "")]
    assert catalog.activations() == {"dev": Activation(version="2", history=("1",)), "prod": Activation(version="1")}
    assert catalog.active("dev") is not None and catalog.active("dev").text == "two"  # type: ignore[union-attr]

    assert catalog.rollback("dev") == Activation(version="1")
    active = catalog.active("dev")
    assert active is not None and (active.version, active.text) == ("1", "one")
    with pytest.raises(NotFound, match="nothing to roll back"):
        catalog.rollback("dev")
    with pytest.raises(NotFound, match="no version 7"):
        catalog.activate("dev", "7")
    assert catalog.add("three") == "3"  # numbers are never reused


def test_a_pointer_changed_meanwhile_is_a_conflict_not_a_lost_update(catalog: DynamoPromptCatalog) -> None:
    catalog.add("one")
    catalog.add("two")
    catalog.activate("dev", "1")
    stale = catalog.activation("dev")
    catalog.activate("dev", "2")  # another operator

    with pytest.raises(Conflict, match="changed meanwhile"):
        catalog._point("dev", stale, Activation(version="2", history=("1",)))


def test_rollback_changes_the_prompt_used_within_the_cache_ttl(
    aws: dict[str, Any], catalog: DynamoPromptCatalog
) -> None:
    # GIVEN version 1 active, then version 2 activated; the chat path as the Lambda wires it
    create_tables(aws["dynamodb"], SETTINGS)
    catalog.add("You are version one.")
    catalog.add("You are version two.")
    catalog.activate("dev", "1")
    catalog.activate("dev", "2")
    bedrock, clock = RecordingBedrock(), Clock()
    service = build_chat_service(
        SETTINGS, dynamodb=aws["dynamodb"], bedrock_factory=lambda region, config: bedrock, prompt_clock=clock
    )
    store = DynamoConversationStore(client=aws["dynamodb"], table_name=SETTINGS.table_name)

    first = service.answer(user_id="alice", request=ChatRequest(message="hi"))
    # WHEN the operator rolls back (one command) THEN within the TTL the cached prompt still answers...
    catalog.rollback("dev")
    clock.now += 29
    service.answer(user_id="alice", request=ChatRequest(message="hi", conversation_id=first.conversation_id))
    # ... and once the TTL has passed, the rolled-back version does
    clock.now += 2
    service.answer(user_id="alice", request=ChatRequest(message="hi", conversation_id=first.conversation_id))

    assert bedrock.systems == ["You are version two.", "You are version two.", "You are version one."]
    conversation = store.get("alice", first.conversation_id or "")
    assert conversation is not None
    assert [turn.prompt_version for turn in conversation.turns] == ["2", "2", "1"]  # every turn records its version


def test_without_an_active_version_or_a_table_the_builtin_prompt_answers(aws: dict[str, Any]) -> None:
    create_tables(aws["dynamodb"], SETTINGS)
    bedrock = RecordingBedrock()
    # The catalog table does not exist here: its read fails, the request does not.
    service = build_chat_service(SETTINGS, dynamodb=aws["dynamodb"], bedrock_factory=lambda region, config: bedrock)

    answer = service.answer(user_id="alice", request=ChatRequest(message="hi"))

    assert bedrock.systems == [BUILTIN_PROMPT] and answer.saved
    store = DynamoConversationStore(client=aws["dynamodb"], table_name=SETTINGS.table_name)
    conversation = store.get("alice", answer.conversation_id or "")
    assert conversation is not None and conversation.turns[0].prompt_version == "builtin"


def test_the_prompt_version_is_part_of_the_answer_cache_scope() -> None:
    assert cache_scope("alice", None) == "alice"  # no catalog: keys as before
    assert cache_scope("alice", None, "1") != cache_scope("alice", None, "2")
    assert cache_scope("alice", None, "builtin") != cache_scope("alice", None, "1")
