"""ChatService.stream: the events (start, deltas, end) over the real gateway and in-memory fakes."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.curated import CURATED_TARGET
from core.errors import Conflict, ModelRejected, Overloaded, TargetCallError
from core.gateway import DEGRADED_TEXT, NONE_TARGET, GatewaySettings, ModelGateway
from core.greetings import GREETING_TARGET, REPLIES, GreetingFilter
from core.models import ChatRequest, Message, ModelReply, TargetRef, Turn, Usage
from core.resilience import BreakerSettings
from tests.unit.core.test_chat import MemoryStore, service


class ScriptedStream:
    def __init__(self, target: TargetRef, chunks: Sequence[str], break_after: int | None) -> None:
        self._target, self._chunks, self._break_after = target, chunks, break_after
        self.sent: list[str] = []

    def __iter__(self) -> Iterator[str]:
        for index, chunk in enumerate(self._chunks):
            if index == self._break_after:
                raise TargetCallError("ModelStreamErrorException", "broke")
            self.sent.append(chunk)
            yield chunk

    def reply(self) -> ModelReply:
        return ModelReply(text="".join(self.sent), usage=Usage(input_tokens=5, output_tokens=4), target=self._target)

    def close(self) -> None:
        return None


class StreamingTarget:
    """A StreamingTargetModel answering at once: its chunks, a failure before the stream, or a break."""

    def __init__(
        self, name: str, chunks: Sequence[str] = ("Lisbon ", "is the ", "capital."), *, error: str | None = None,
        break_after: int | None = None,
    ) -> None:  # fmt: skip
        self.name, self.chunks, self.error, self.break_after = name, list(chunks), error, break_after
        self.opened = 0

    @property
    def target(self) -> TargetRef:
        return TargetRef(model_id=self.name, region="us-east-1")

    def call(self, *, system: str, messages: Sequence[Message], timeout_s: float) -> ModelReply:
        raise AssertionError("the streaming path must not call converse")

    def stream(self, *, system: str, messages: Sequence[Message], timeout_s: float) -> ScriptedStream:
        self.opened += 1
        if self.error is not None:
            raise TargetCallError(self.error, "before the first token")
        return ScriptedStream(self.target, self.chunks, self.break_after)


def gateway(*targets: StreamingTarget, **settings: Any) -> ModelGateway:
    return ModelGateway(targets=list(targets), settings=GatewaySettings(**settings))


def streamed(chat: Any, message: str = "What is the capital of Portugal?", **request: Any) -> tuple[list[dict], Any]:
    events: list[dict[str, Any]] = []
    answer = chat.stream(user_id="u", request=ChatRequest(message=message, **request), emit=events.append)
    return events, answer


def test_events_are_start_then_deltas_then_end_with_the_chat_body() -> None:
    store = MemoryStore()
    chat = service(store, gateway(StreamingTarget("primary")))

    events, answer = streamed(chat)

    assert [e["type"] for e in events] == ["start", "delta", "delta", "delta", "end"]
    assert events[0] == {
        "type": "start",
        "conversationId": "c1",
        "target": {"model_id": "primary", "region": "us-east-1"},
    }
    assert [e["text"] for e in events[1:-1]] == ["Lisbon ", "is the ", "capital."]
    end = events[-1]
    assert end == {"type": "end", **answer.to_api(), "incomplete": False}
    assert end["answer"] == "Lisbon is the capital." and end["turn"] == 0 and end["saved"] and "retry" not in end
    assert store.items[("u", "c1")].turns[0].assistant == "Lisbon is the capital."
    assert not store.items[("u", "c1")].turns[0].incomplete


def test_the_start_comes_from_the_target_that_answered_after_failover() -> None:
    primary, secondary = StreamingTarget("primary", error="ModelErrorException"), StreamingTarget("secondary")
    chat = service(MemoryStore(), gateway(primary, secondary))

    events, answer = streamed(chat)

    assert events[0]["target"]["model_id"] == "secondary" and answer.target.model_id == "secondary"
    assert primary.opened == 1


def test_a_break_after_the_first_token_ends_incomplete_stored_so_with_a_retry_offered() -> None:
    store = MemoryStore()
    chat = service(store, gateway(StreamingTarget("primary", break_after=2), StreamingTarget("secondary")))

    events, _answer = streamed(chat)

    end = events[-1]
    assert [e["type"] for e in events] == ["start", "delta", "delta", "end"]
    assert end["incomplete"] is True and end["retry"] is True and end["answer"] == "Lisbon is the "
    assert "ModelStreamErrorException" in end["incompleteReason"] and "Portugal" not in end["incompleteReason"]
    assert end["target"]["model_id"] == "primary"  # no failover once the user reads text
    turn = store.items[("u", "c1")].turns[0]
    assert turn.incomplete and turn.assistant == "Lisbon is the "
    assert store.items[("u", "c1")].to_api()["turns"][0]["incomplete"] is True


def test_a_greeting_is_start_one_delta_and_end_without_the_model() -> None:
    target = StreamingTarget("primary")
    chat = service(MemoryStore(), gateway(target), greetings=GreetingFilter())

    events, _answer = streamed(chat, "Hello!")

    assert [e["type"] for e in events] == ["start", "delta", "end"]
    assert events[0]["target"] == {"model_id": GREETING_TARGET.model_id, "region": "-"}
    assert events[1]["text"] == REPLIES["greeting"]["en"] == events[2]["answer"]
    assert target.opened == 0 and events[2]["incomplete"] is False


def test_a_degraded_answer_is_one_delta_and_stores_nothing() -> None:
    store = MemoryStore()
    chat = service(store, gateway(StreamingTarget("primary", error="ModelErrorException")))

    events, _answer = streamed(chat)

    assert [e["type"] for e in events] == ["start", "delta", "end"]
    assert events[0] == {
        "type": "start",
        "conversationId": None,
        "target": {"model_id": NONE_TARGET.model_id, "region": "-"},
    }
    assert events[1]["text"] == DEGRADED_TEXT and events[2]["degraded"] is True and store.items == {}


def test_a_curated_answer_replaces_the_degraded_one_before_anything_is_emitted() -> None:
    class Curated:
        def embed(self, question: str, *, budget_s: float) -> tuple[float, ...]:
            return (1.0,)

        def match(self, vector: Any, *, prompt_version: str, budget_s: float) -> Any:
            class Entry:
                question, answer = "capital?", "Lisbon (curated)."

            class Match:
                entry = Entry()

            return Match()

    chat = service(MemoryStore(), gateway(StreamingTarget("primary", error="ModelErrorException")), curated=Curated())

    events, _ = streamed(chat)

    assert [e["type"] for e in events] == ["start", "delta", "end"]
    assert events[0]["target"]["model_id"] == CURATED_TARGET.model_id and events[1]["text"] == "Lisbon (curated)."


def test_errors_before_the_first_token_raise_as_answer_does_and_emit_nothing() -> None:
    rejected = service(MemoryStore(), gateway(StreamingTarget("primary", error="ValidationException")))
    events: list[dict[str, Any]] = []
    with pytest.raises(ModelRejected):
        rejected.stream(user_id="u", request=ChatRequest(message="q"), emit=events.append)
    assert events == []

    breaker = BreakerSettings(consecutive_failures=1)
    shed = service(MemoryStore(), gateway(StreamingTarget("primary", error="ModelErrorException"), breaker=breaker))
    streamed(shed)  # opens the breaker (a degraded answer)
    with pytest.raises(Overloaded):  # every breaker open: 503 + Retry-After, before any event
        shed.stream(user_id="u", request=ChatRequest(message="q"), emit=events.append)
    assert events == []


def test_a_conflicting_write_after_the_stream_still_raises() -> None:
    class ConflictStore(MemoryStore):
        def append_turn(
            self, user_id: str, conversation_id: str, *, expected_turns: int, turn: Turn, title: str
        ) -> None:
            raise Conflict("another write got there first")

    with pytest.raises(Conflict):
        streamed(service(ConflictStore(), gateway(StreamingTarget("primary"))))


def test_answer_is_unchanged_and_never_streams() -> None:
    class PlainModel:
        target = TargetRef(model_id="m", region="r")

        def converse(self, **kwargs: Any) -> ModelReply:
            return ModelReply(text="whole", usage=Usage(), target=self.target)

    answer = service(MemoryStore(), PlainModel()).answer(user_id="u", request=ChatRequest(message="q"))
    assert answer.answer == "whole" and not answer.incomplete and "incomplete" not in answer.to_api()


@settings(max_examples=60, deadline=None)
@given(
    chunks=st.lists(st.text(min_size=1, max_size=12), min_size=1, max_size=12),
    break_at=st.one_of(st.none(), st.integers(min_value=1, max_value=12)),
)
def test_the_deltas_joined_are_the_answer_and_the_stored_turn(chunks: list[str], break_at: int | None) -> None:
    store = MemoryStore()
    broke = break_at is not None and break_at < len(chunks)
    chat = service(store, gateway(StreamingTarget("primary", chunks, break_after=break_at)))

    events, answer = streamed(chat)

    text = "".join(e["text"] for e in events if e["type"] == "delta")
    assert text == answer.answer == events[-1]["answer"] == store.items[("u", "c1")].turns[0].assistant
    assert answer.incomplete is broke and events[-1]["incomplete"] is broke
    assert text == "".join(chunks[: break_at if broke else None])
