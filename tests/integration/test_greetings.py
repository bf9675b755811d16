"""Greetings through the real chat handler on moto DynamoDB and the Bedrock emulator: a greeting reaches no model
(the emulator counts no call), a near miss reaches it once; the greeting's turn is in the history and the
GreetingAnswered metric is emitted by kind, without the message."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from core.greetings import REPLIES
from handlers import chat as chat_handler
from handlers.settings import Settings
from local.bedrock_emulator import BedrockEmulator
from local.resources import create_tables
from tests.fakes import (
    emulator_client,
    fixture_aws,  # noqa: F401 - the fixture `aws`
)
from tests.unit.handlers.test_chat import FakeContext, api_event

MODEL_ID, REGION = "us.amazon.nova-lite-v1:0", "us-east-1"


@pytest.fixture
def emulator() -> Iterator[BedrockEmulator]:
    with BedrockEmulator({"default": {"latency_ms": [0, 1]}}) as emu:
        yield emu


def handler(aws: dict[str, Any], emulator: BedrockEmulator, **changes: Any) -> Any:
    settings = Settings.from_env().but(jobs_table_name=None, jobs_queue_url=None, cache_table_name=None, **changes)
    create_tables(aws["dynamodb"], settings)
    return chat_handler.bootstrap(
        settings,
        dynamodb=aws["dynamodb"],
        bedrock_factory=lambda region, config: emulator_client("bedrock-runtime", emulator, region),
    )


def post(handle: Any, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    response = handle(api_event("POST", "/chat", body=json.dumps(body)), FakeContext())
    return response["statusCode"], json.loads(response["body"])


def test_a_greeting_never_calls_the_model_and_a_near_miss_calls_it_once(
    aws: dict[str, Any], emulator: BedrockEmulator, capsys: pytest.CaptureFixture[str]
) -> None:
    handle = handler(aws, emulator, greetings_enabled=True)
    capsys.readouterr()

    status, greeting = post(handle, {"message": "Hi there! 👋"})

    assert status == 200 and emulator.calls(MODEL_ID, REGION) == 0
    assert greeting["answer"] == REPLIES["greeting"]["en"] and greeting["target"]["model_id"] == "greeting"
    assert greeting["degraded"] is False and greeting["saved"] is True and greeting["usage"]["total_tokens"] == 0
    emitted = capsys.readouterr().out
    metrics = [json.loads(line) for line in emitted.splitlines() if line.startswith('{"_aws"')]
    assert any(m.get("GreetingAnswered") == [1.0] and m.get("kind") == "greeting" for m in metrics)
    assert "Hi there" not in emitted

    conversation = greeting["conversation_id"]
    status, thanks = post(handle, {"message": "Danke schön!", "conversation_id": conversation})
    assert status == 200 and thanks["answer"] == REPLIES["thanks"]["de"] and emulator.calls(MODEL_ID, REGION) == 0

    status, near_miss = post(handle, {"message": "thanks, now explain X", "conversation_id": conversation})
    assert status == 200 and near_miss["target"]["model_id"] == MODEL_ID and near_miss["turn"] == 2
    assert emulator.calls(MODEL_ID, REGION) == 1

    response = handle(api_event("GET", f"/conversations/{conversation}"), FakeContext())
    turns = json.loads(response["body"])["turns"]
    assert [turn["target"]["model_id"] for turn in turns] == ["greeting", "greeting", MODEL_ID]
    assert turns[0]["user"] == "Hi there! 👋" and turns[1]["assistant"] == REPLIES["thanks"]["de"]


def test_switched_off_a_greeting_goes_to_the_model(aws: dict[str, Any], emulator: BedrockEmulator) -> None:
    handle = handler(aws, emulator, greetings_enabled=False)

    status, answer = post(handle, {"message": "hello"})

    assert status == 200 and answer["target"]["model_id"] == MODEL_ID and emulator.calls(MODEL_ID, REGION) == 1


def test_configured_phrases_and_replies_reach_the_handler(aws: dict[str, Any], emulator: BedrockEmulator) -> None:
    env = (
        Settings.from_env()
        .but(
            greetings_enabled=True,
            greetings_phrases={"en": {"greeting": ("ahoy",)}},
            greetings_replies={"greeting": {"en": "Ahoy! Ask away."}},
        )
        .to_env()
    )
    settings = Settings.from_env(env)  # through the environment, as the stacks set it
    handle = handler(
        aws,
        emulator,
        **{key: getattr(settings, key) for key in ("greetings_enabled", "greetings_phrases", "greetings_replies")},
    )

    status, answer = post(handle, {"message": "Ahoy!"})

    assert status == 200 and answer["answer"] == "Ahoy! Ask away." and emulator.calls(MODEL_ID, REGION) == 0


def test_a_greeting_sent_as_a_job_is_answered_by_the_worker_without_the_model() -> None:
    from tests.integration.test_jobs import call as jobs_call
    from tests.integration.test_jobs import statuses
    from tests.jobs_fixtures import MODEL, jobs_world

    with jobs_world(greetings_enabled=True) as world:
        _, greeting, _ = jobs_call(world, "POST", "/jobs", body={"message": "merci beaucoup !"})
        _, question, _ = jobs_call(world, "POST", "/jobs", body={"message": "thanks, now explain RTO"})

        ids = [greeting["job_id"], question["job_id"]]
        assert world.pump().run_until(lambda: statuses(world, ids) == ["done", "done"], timeout_s=60)
        done = [jobs_call(world, "GET", f"/jobs/{job_id}")[1]["result"] for job_id in ids]
        assert done[0]["target"]["model_id"] == "greeting" and done[0]["answer"] == REPLIES["thanks"]["fr"]
        assert done[1]["target"]["model_id"] == MODEL[0]
        assert world.emulator.calls(*MODEL) == 1  # the near miss only
