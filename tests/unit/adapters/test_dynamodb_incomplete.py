"""DynamoConversationStore keeps a streamed turn's `incomplete` flag (moto)."""

from __future__ import annotations

from dataclasses import replace

from adapters.dynamodb import DynamoConversationStore
from tests.unit.adapters.test_dynamodb import store, turn

__all__ = ["store"]  # the moto-backed store fixture


def test_an_incomplete_turn_reads_back_incomplete_and_others_do_not(store: DynamoConversationStore) -> None:
    store.append_turn("u", "c", expected_turns=0, turn=turn(0), title="title")
    store.append_turn("u", "c", expected_turns=1, turn=replace(turn(1), incomplete=True), title="title")

    conversation = store.get("u", "c")

    assert conversation is not None
    assert [t.incomplete for t in conversation.turns] == [False, True]
    assert [t.get("incomplete") for t in conversation.to_api()["turns"]] == [None, True]
