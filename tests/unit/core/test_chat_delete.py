"""Deleting a conversation removes every copy of its text the app keeps: the turns, the cached answers, its jobs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import pytest

from core.chat import ChatService
from core.errors import InvalidRequest, NotFound
from core.models import ChatRequest, Conversation, Limits, Message, ModelReply, TargetRef, Turn, Usage

LIMITS = Limits(max_message_chars=100, max_history_turns=5, max_body_bytes=1024)


class CachingModel:
    """Answers as the gateway does when it cached the answer: the reply names its cache entry."""

    @property
    def target(self) -> TargetRef:
        return TargetRef(model_id="m", region="r")

    def converse(
        self, *, system: str, messages: Sequence[Message], deadline_s: float, scope: str = "anonymous"
    ) -> ModelReply:
        question = messages[-1].text
        return ModelReply(
            text=f"re: {question}", usage=Usage(), target=self.target, guardrail_checked=True, cache_key=f"k-{question}"
        )


class HeaderStore:
    """A ConversationStore that keeps, like the DynamoDB one, the cache keys on the conversation's header."""

    def __init__(self) -> None:
        self.items: dict[tuple[str, str], Conversation] = {}
        self.calls: list[str] = []

    def get(self, user_id: str, conversation_id: str, *, last_turns: int | None = None) -> Conversation | None:
        found = self.items.get((user_id, conversation_id))
        return replace(found, turns=()) if found is not None and last_turns == 0 else found

    def list(self, user_id: str) -> list[Conversation]:
        return [c for (u, _), c in self.items.items() if u == user_id]

    def append_turn(self, user_id: str, conversation_id: str, *, expected_turns: int, turn: Turn, title: str) -> None:
        old = self.items.get((user_id, conversation_id))
        keys = (*(old.cache_keys if old else ()), *((turn.cache_key,) if turn.cache_key else ()))
        self.items[(user_id, conversation_id)] = Conversation(
            conversation_id=conversation_id, title=title, created_at="t", updated_at="t",
            turn_count=expected_turns + 1, turns=(*(old.turns if old else ()), turn), cache_keys=keys,
        )  # fmt: skip

    def delete(self, user_id: str, conversation_id: str) -> bool:
        self.calls.append("delete")
        return self.items.pop((user_id, conversation_id), None) is not None


class RecordedResidue:
    def __init__(self, calls: list[str]) -> None:
        self.calls = calls
        self.purged: list[tuple[str, str, tuple[str, ...]]] = []

    def purge(self, user_id: str, conversation_id: str, *, cache_keys: Sequence[str]) -> None:
        self.calls.append("purge")
        self.purged.append((user_id, conversation_id, tuple(cache_keys)))


CID = "0b0e3f5e-6a3c-4d8e-9b52-1f2a3b4c5d6e"


def chat_with(store: HeaderStore, residue: RecordedResidue | None) -> ChatService:
    return ChatService(
        store=store, model=CachingModel(), limits=LIMITS, deadline_s=25, new_id=lambda: CID, residue=residue
    )


def test_each_turn_keeps_the_cache_key_of_its_answer() -> None:
    store = HeaderStore()
    chat = chat_with(store, None)

    chat.answer(user_id="u", request=ChatRequest(message="a"))
    chat.answer(user_id="u", request=ChatRequest(message="b", conversation_id=CID))

    conversation = store.items[("u", CID)]
    assert [turn.cache_key for turn in conversation.turns] == ["k-a", "k-b"]
    assert conversation.cache_keys == ("k-a", "k-b")


def test_delete_removes_the_turns_then_the_cached_answers_and_jobs_of_that_conversation() -> None:
    store = HeaderStore()
    residue = RecordedResidue(store.calls)
    chat = chat_with(store, residue)
    chat.answer(user_id="u", request=ChatRequest(message="a"))
    chat.answer(user_id="u", request=ChatRequest(message="b", conversation_id=CID))

    chat.delete_conversation(user_id="u", conversation_id=CID)

    assert store.items == {}
    assert residue.purged == [("u", CID, ("k-a", "k-b"))] and store.calls == ["delete", "purge"]


def test_a_retried_delete_finishes_the_cleanup_then_says_not_found() -> None:
    store = HeaderStore()
    residue = RecordedResidue(store.calls)
    chat = chat_with(store, residue)

    with pytest.raises(NotFound):
        chat.delete_conversation(user_id="u", conversation_id=CID)

    assert residue.purged == [("u", CID, ())]  # its jobs (found by conversation id) are still removed


def test_a_malformed_id_is_refused_before_anything_is_touched() -> None:
    store = HeaderStore()
    residue = RecordedResidue(store.calls)

    with pytest.raises(InvalidRequest):
        chat_with(store, residue).delete_conversation(user_id="u", conversation_id=f"{CID}\n")

    assert store.calls == []
