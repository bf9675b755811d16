"""Value objects: ids are checked with a full match, so nothing can ride along after a valid id."""

from __future__ import annotations

import pytest

from core.errors import InvalidRequest
from core.models import ChatRequest, Limits, ModelReply, TargetRef, Usage, validate_conversation_id

UUID = "0b0e3f5e-6a3c-4d8e-9b52-1f2a3b4c5d6e"
LIMITS = Limits(max_message_chars=100, max_history_turns=5, max_body_bytes=1024)


@pytest.mark.parametrize("value", [f"{UUID}\n", f"{UUID}\r\n", f"\n{UUID}", f"{UUID} ", UUID.upper(), UUID[:-1]])
def test_an_id_with_anything_around_it_is_refused(value: str) -> None:
    with pytest.raises(InvalidRequest):
        validate_conversation_id(value)
    with pytest.raises(InvalidRequest):
        ChatRequest.parse({"message": "hi", "conversation_id": value}, LIMITS)


def test_a_lowercase_uuid_is_accepted() -> None:
    assert validate_conversation_id(UUID) == UUID


@pytest.mark.parametrize(
    ("checked", "stop_reason", "degraded", "cacheable"),
    [
        (True, "end_turn", False, True),
        (False, "end_turn", False, False),  # no guardrail covered it
        (True, "guardrail_intervened", False, False),  # an intervention is an answer, never cached
        (True, "end_turn", True, False),
    ],
)
def test_only_a_guardrail_passed_answer_is_cacheable(
    checked: bool, stop_reason: str, degraded: bool, cacheable: bool
) -> None:
    reply = ModelReply(
        text="t",
        usage=Usage(),
        target=TargetRef(model_id="m", region="r"),
        stop_reason=stop_reason,
        degraded=degraded,
        guardrail_checked=checked,
    )

    assert reply.cacheable is cacheable


def test_unknown_fields_are_counted_never_named() -> None:
    # The error's message is logged as the refusal's reason: a client's key names (user data) must not be in it.
    limits = Limits(max_message_chars=100, max_history_turns=5, max_body_bytes=1000)
    with pytest.raises(InvalidRequest) as raised:
        ChatRequest.parse({"message": "hi", "my-private-key": 1, "another": 2}, limits)
    assert raised.value.message == "2 unknown field(s); allowed: message, conversation_id"
