"""The composition root with runtime switches: the chat service built by handlers.wiring reads them from the
AppConfig data plane (local/appconfig_emulator.py, unmodified boto3 client) and applies them per request: a
prompt rollback by version and forced degraded mode, each seen within the cache interval (injected clock),
then flipped back; the catalog's own pointer is never touched."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from adapters.dynamodb import DynamoConversationStore
from adapters.prompt_catalog import DynamoPromptCatalog
from core.models import ChatRequest
from core.switches import FORCE_DEGRADED, PROMPT_VERSION, default_document
from handlers.wiring import build_chat_service
from local.appconfig_emulator import AppConfigEmulator
from local.resources import create_table, create_tables
from tests.conftest import TEST_SETTINGS
from tests.fakes import (
    emulator_client,
    fixture_aws,  # noqa: F401 - the fixture `aws`
)
from tests.unit.adapters.test_prompt_catalog import TABLE, Clock, RecordingBedrock

APP, ENV, PROFILE = "bulwark", "dev", "switches"
SETTINGS = TEST_SETTINGS.but(
    prompts_table_name=TABLE,
    prompt_environment="dev",
    switches_application=APP,
    switches_environment=ENV,
    switches_profile=PROFILE,
    switches_cache_s=30.0,
)


@pytest.fixture
def appconfig() -> Iterator[AppConfigEmulator]:
    server = AppConfigEmulator(application=APP, environment=ENV, profile=PROFILE).start()
    yield server
    server.stop()


def flags(**values: Any) -> dict[str, Any]:
    document = default_document()
    for name, value in values.items():
        document[name]["default"] = value
    return document


def test_a_prompt_rollback_and_degraded_mode_by_switch_then_back(aws: dict[str, Any], appconfig: Any) -> None:
    create_tables(aws["dynamodb"], SETTINGS)
    create_table(aws["dynamodb"], TABLE, [("pk", "HASH"), ("sk", "RANGE")])
    catalog = DynamoPromptCatalog(client=aws["dynamodb"], table_name=TABLE)
    catalog.add("prompt one")
    catalog.add("prompt two")
    catalog.activate("dev", "2")
    bedrock, clock = RecordingBedrock(), Clock()
    service = build_chat_service(
        SETTINGS,
        dynamodb=aws["dynamodb"],
        bedrock_factory=lambda region, config: bedrock,
        appconfigdata=emulator_client("appconfigdata", appconfig, "us-east-1"),
        prompt_clock=clock,
        switches_clock=clock,
    )

    def ask() -> Any:
        return service.answer(user_id="alice", request=ChatRequest(message="hi"))

    assert ask().answer == "answered with: prompt two"

    appconfig.deploy(flags(**{PROMPT_VERSION: "1"}))  # roll back by switch
    clock.now += 29
    assert ask().answer == "answered with: prompt two"
    clock.now += 1
    answer = ask()
    assert answer.answer == "answered with: prompt one"
    stored = DynamoConversationStore(client=aws["dynamodb"], table_name=SETTINGS.table_name)
    turn = stored.get("alice", answer.conversation_id).turns[-1]  # type: ignore[union-attr]
    assert turn.prompt_version == "1"  # the turn records the version it used
    assert catalog.activation("dev").version == "2"  # the catalog's pointer untouched

    appconfig.deploy(flags(**{FORCE_DEGRADED: True}))
    clock.now += 30
    calls = len(bedrock.systems)
    assert ask().degraded and len(bedrock.systems) == calls

    appconfig.deploy(default_document())  # flip back
    clock.now += 30
    answer = ask()
    assert (answer.answer, answer.degraded) == ("answered with: prompt two", False)


def test_without_a_switches_profile_no_appconfig_client_is_made(aws: dict[str, Any]) -> None:
    service = build_chat_service(TEST_SETTINGS, dynamodb=aws["dynamodb"], appconfigdata=object())
    assert service.model._switches is None  # type: ignore[attr-defined]
