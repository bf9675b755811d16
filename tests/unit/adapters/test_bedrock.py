"""BedrockTarget against the emulator: called by its id (maybe an ARN), shown by its configured name."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from adapters.bedrock import BedrockTarget
from core.models import Message
from local.bedrock_emulator import BedrockEmulator
from tests.fakes import emulator_target

PROFILE_ARN = "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/abc123"


@pytest.fixture
def emulator() -> Iterator[BedrockEmulator]:
    with BedrockEmulator({"default": {"latency_ms": [0, 1]}}) as emu:
        yield emu


def target(emulator: BedrockEmulator, **options: Any) -> BedrockTarget:
    return emulator_target(emulator, model_id=PROFILE_ARN, region="us-east-1", max_tokens=64, **options)


def ask(t: BedrockTarget) -> Any:
    return t.call(system="s", messages=[Message(role="user", text="Hi?")], timeout_s=5)


def test_the_answer_names_the_configured_model_not_the_arn_it_called(emulator: BedrockEmulator) -> None:
    reply = ask(target(emulator, name="us.amazon.nova-lite-v1:0"))

    assert reply.target.model_id == "us.amazon.nova-lite-v1:0" and "123456789012" not in reply.target.model_id
    assert emulator.calls(PROFILE_ARN, "us-east-1") == 1


@pytest.mark.parametrize(("guardrail", "checked"), [(("gr1", "1"), True), (None, False)])
def test_an_answer_is_guardrail_checked_only_when_the_call_carried_the_guardrail(
    emulator: BedrockEmulator, guardrail: tuple[str, str] | None, checked: bool
) -> None:
    assert ask(target(emulator, guardrail=guardrail)).guardrail_checked is checked
