"""ChatService against in-memory fakes that satisfy the ports."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from core.chat import ChatService
from core.errors import Conflict, DependencyUnavailable, InvalidRequest, NotFound, PayloadTooLarge
from core.models import ChatRequest, Conversation, Limits, Message, ModelReply, TargetRef, Turn, Usage
from core.ports import ChatModel, ConversationStore

LIMITS = Limits(max_message_chars=50, max_history_turns=2, max_body_bytes=1024)
TARGET = TargetRef(model_id="m", region="us-east-1")


class MemoryStore:
    def __init__(self) -> None:
        self.items: dict[tuple[str, str], Conversation] = {}

    def get(self, user_id: str, conversation_id: str, *, last_turns: int | None = None) -> Conversation | None:
        found = self.items.get((user_id, conversation_id))
        if found is None or last_turns is None:
            return found
        turns = found.turns[-last_turns:] if last_turns else ()
        return Conversation(**{**found.__dict__, "turns": turns})

    def list(self, user_id: str) -> list[Conversation]:
        return [c for (u, _), c in self.items.items() if u == user_id]

    def append_turn(self, user_id: str, conversation_id: str, *, expected_turns: int, turn: Turn, title: str) -> None:
        old = self.items.get((user_id, conversation_id))
        assert (old.turn_count if old else 0) == expected_turns
        self.items[(user_id, conversation_id)] = Conversation(
            conversation_id=conversation_id,
            title=old.title if old else title,
            created_at=old.created_at if old else turn.created_at,
            updated_at=turn.created_at,
            turn_count=expected_turns + 1,
            turns=(*(old.turns if old else ()), turn),
        )

    def delete(self, user_id: str, conversation_id: str) -> bool:
        return self.items.pop((user_id, conversation_id), None) is not None


class EchoModel:
    def __init__(self) -> None:
        self.calls: list[tuple[list[Message], float]] = []

    @property
    def target(self) -> TargetRef:
        return TARGET

    def converse(
        self, *, system: str, messages: Sequence[Message], deadline_s: float, scope: str = "anonymous"
    ) -> ModelReply:
        self.calls.append((list(messages), deadline_s))
        return ModelReply(
            text=f"echo: {messages[-1].text}", usage=Usage(input_tokens=3, output_tokens=2), target=TARGET
        )


def service(store: ConversationStore, model: ChatModel, **options: Any) -> ChatService:
    ids = iter(["c1", "c2", "c3"])
    options = {"timer": lambda: 0.0, **options}
    return ChatService(
        store=store, model=model, limits=LIMITS, deadline_s=25, clock=lambda: "t", new_id=lambda: next(ids), **options
    )


def test_deadline_is_the_smaller_of_the_budget_and_the_lambda_remaining_time() -> None:
    model = EchoModel()
    chat = service(MemoryStore(), model)

    chat.answer(user_id="u", request=ChatRequest(message="a"))
    chat.answer(user_id="u", request=ChatRequest(message="b"), remaining_s=7.5)

    assert [deadline for _, deadline in model.calls] == [25, 7.5]


def test_only_the_last_n_turns_travel_with_the_question() -> None:
    model, store = EchoModel(), MemoryStore()
    chat = service(store, model)
    cid = chat.answer(user_id="u", request=ChatRequest(message="q0")).conversation_id
    for i in range(1, 4):
        chat.answer(user_id="u", request=ChatRequest(message=f"q{i}", conversation_id=cid))

    sent = [m.text for m in model.calls[-1][0]]

    assert sent == ["q1", "echo: q1", "q2", "echo: q2", "q3"]
    assert store.items[("u", cid)].turn_count == 4


def test_unknown_or_foreign_conversation_is_not_found_and_the_model_is_not_called() -> None:
    model, store = EchoModel(), MemoryStore()
    chat = service(store, model)
    cid = chat.answer(user_id="alice", request=ChatRequest(message="hi")).conversation_id

    with pytest.raises(NotFound):
        chat.answer(user_id="bob", request=ChatRequest(message="hi", conversation_id=cid))

    assert len(model.calls) == 1


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({"message": "x" * 51}, PayloadTooLarge),
        ({"message": ""}, InvalidRequest),
        ({"message": "ok", "conversation_id": "C1"}, InvalidRequest),
        ("text", InvalidRequest),
    ],
)
def test_request_parsing_rejects_bad_bodies(body: object, error: type[Exception]) -> None:
    with pytest.raises(error):
        ChatRequest.parse(body, LIMITS)


def test_title_is_the_first_line_of_the_first_message() -> None:
    store = MemoryStore()
    chat = service(store, EchoModel())

    cid = chat.answer(user_id="u", request=ChatRequest(message="  Plan a trip\nto Lisbon")).conversation_id

    assert store.items[("u", cid)].title == "Plan a trip"


# --- one deadline, and nothing the user paid for is lost --------------------------------------------
class SlowTimer:
    """A monotonic clock that only the store moves forward (its reads take time)."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class FailingStore(MemoryStore):
    """Its reads take time; its writes fail with `error` (None: they succeed)."""

    def __init__(self, error: Exception | None, *, timer: SlowTimer | None = None, read_s: float = 0.0) -> None:
        super().__init__()
        self.error = error
        self.timer = timer
        self.read_s = read_s

    def get(self, user_id: str, conversation_id: str, *, last_turns: int | None = None) -> Conversation | None:
        if self.timer is not None:
            self.timer.now += self.read_s
        return super().get(user_id, conversation_id, last_turns=last_turns)

    def append_turn(self, user_id: str, conversation_id: str, *, expected_turns: int, turn: Turn, title: str) -> None:
        if self.error is not None:
            raise self.error
        super().append_turn(user_id, conversation_id, expected_turns=expected_turns, turn=turn, title=title)


def test_reading_the_history_comes_out_of_the_models_time_and_the_write_keeps_its_reserve() -> None:
    timer, model = SlowTimer(), EchoModel()
    store = FailingStore(None, timer=timer, read_s=2.0)
    chat = service(store, model, timer=timer, store_reserve_s=7.5)
    cid = chat.answer(user_id="u", request=ChatRequest(message="a"), remaining_s=27.0).conversation_id

    chat.answer(user_id="u", request=ChatRequest(message="b", conversation_id=cid), remaining_s=27.0)
    chat.answer(user_id="u", request=ChatRequest(message="c", conversation_id=cid))  # no Lambda: no reserve

    # 27 s left in the Lambda, 7.5 s kept for the write: 19.5 s; minus the 2 s the history took to read.
    assert [deadline for _, deadline in model.calls] == [19.5, 17.5, 23.0]


def test_a_turn_that_cannot_be_stored_is_still_answered_and_says_why() -> None:
    model = EchoModel()
    unavailable = DependencyUnavailable("could not save this turn: DynamoDB is throttling requests", retry_after=2)
    store = FailingStore(unavailable)
    chat = service(store, model)

    answer = chat.answer(user_id="u", request=ChatRequest(message="hello"))

    assert answer.answer == "echo: hello" and not answer.saved and answer.turn is None
    assert answer.conversation_id is None  # a new conversation that could not be created is not named
    assert "DynamoDB is throttling" in (answer.save_error or "") and "not in your history" in (answer.save_error or "")
    body = answer.to_api()
    assert body["saved"] is False and body["save_error"] == answer.save_error and body["answer"] == "echo: hello"
    assert len(model.calls) == 1 and store.items == {}


def test_an_unexpected_store_failure_after_the_answer_still_answers() -> None:
    answer = service(FailingStore(RuntimeError("boom")), EchoModel()).answer(
        user_id="u", request=ChatRequest(message="hello")
    )

    assert answer.answer == "echo: hello" and not answer.saved and "failed unexpectedly" in (answer.save_error or "")


def test_a_concurrent_write_is_still_a_conflict() -> None:
    chat = service(FailingStore(Conflict("this conversation changed")), EchoModel())

    with pytest.raises(Conflict):
        chat.answer(user_id="u", request=ChatRequest(message="hello"))


class DegradedModel(EchoModel):
    def converse(
        self, *, system: str, messages: Sequence[Message], deadline_s: float, scope: str = "anonymous"
    ) -> ModelReply:
        return ModelReply(text="sorry", usage=Usage(), target=TARGET, degraded=True, degraded_reason="all down")


def test_a_stored_turn_says_saved_and_a_degraded_one_does_not() -> None:
    stored = service(MemoryStore(), EchoModel()).answer(user_id="u", request=ChatRequest(message="hello"))
    degraded = service(MemoryStore(), DegradedModel()).answer(user_id="u", request=ChatRequest(message="hello"))

    assert stored.saved and stored.to_api()["saved"] is True and "save_error" not in stored.to_api()
    assert degraded.to_api()["saved"] is False and "save_error" not in degraded.to_api()  # by design, not a failure
