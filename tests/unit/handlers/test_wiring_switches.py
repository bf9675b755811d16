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
from core.switches import FORCE_DEGRADED, MODEL_VERSIONS, PROMPT_VERSION, default_document
from handlers.settings import TargetSetting
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


CURRENT, PREVIOUS = "us.amazon.nova-2-lite-v1:0", "us.amazon.nova-lite-v1:0"


def test_a_model_version_rollback_by_switch_then_back(aws: dict[str, Any], appconfig: Any) -> None:
    """GIVEN a target with a previous version configured, WHEN the switch names it, THEN within the cache interval
    the Bedrock emulator is called with that version (and answers say so); flipped back, the current one again.
    A version not configured for the target is ignored: the current one keeps answering, no error."""
    import botocore.session

    from local.bedrock_emulator import BedrockEmulator

    settings = SETTINGS.but(
        targets=(TargetSetting(model_id=CURRENT, region="us-east-1", max_tokens=256, previous_versions=(PREVIOUS,)),)
    )
    create_tables(aws["dynamodb"], settings)
    create_table(aws["dynamodb"], TABLE, [("pk", "HASH"), ("sk", "RANGE")])
    session, clock = botocore.session.get_session(), Clock()
    with BedrockEmulator({"default": {}}) as bedrock:
        service = build_chat_service(
            settings,
            dynamodb=aws["dynamodb"],
            bedrock_factory=lambda region, config: session.create_client(
                "bedrock-runtime",
                region_name=region,
                endpoint_url=bedrock.url,
                aws_access_key_id="emulator",
                aws_secret_access_key="emulator",
                config=config,
            ),
            appconfigdata=emulator_client("appconfigdata", appconfig, "us-east-1"),
            prompt_clock=clock,
            switches_clock=clock,
        )

        def ask() -> Any:
            return service.answer(user_id="alice", request=ChatRequest(message=f"what time is it at {clock.now}?"))

        def calls() -> tuple[int, int]:
            return bedrock.calls(CURRENT, "us-east-1"), bedrock.calls(PREVIOUS, "us-east-1")

        assert ask().target.model_id == CURRENT and calls() == (1, 0)

        appconfig.deploy(flags(**{MODEL_VERSIONS: {CURRENT: PREVIOUS}}))  # roll the model back
        clock.now += 29
        assert ask().target.model_id == CURRENT and calls() == (2, 0)  # the cached switches still serve
        clock.now += 1
        answer = ask()
        assert (answer.target.model_id, answer.degraded) == (PREVIOUS, False) and calls() == (2, 1)

        appconfig.deploy(flags(**{MODEL_VERSIONS: {CURRENT: "us.amazon.nova-pro-v1:0"}}))  # not allowed: ignored
        clock.now += 30
        answer = ask()
        assert (answer.target.model_id, answer.degraded) == (CURRENT, False) and calls() == (3, 1)

        appconfig.deploy(default_document())  # flip back
        clock.now += 30
        assert ask().target.model_id == CURRENT and calls() == (4, 1)
