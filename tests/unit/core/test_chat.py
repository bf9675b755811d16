"""ChatService against in-memory fakes that satisfy the ports."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from core.chat import ChatService
from core.errors import InvalidRequest, NotFound, PayloadTooLarge
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


def service(store: ConversationStore, model: ChatModel) -> ChatService:
    ids = iter(["c1", "c2", "c3"])
    return ChatService(
        store=store, model=model, limits=LIMITS, deadline_s=25, clock=lambda: "t", new_id=lambda: next(ids)
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
