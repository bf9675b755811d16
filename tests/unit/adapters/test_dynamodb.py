"""DynamoConversationStore on moto: layout, paging, optimistic concurrency, delete."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import boto3
import pytest
from moto import mock_aws

from adapters.dynamodb import DynamoConversationStore
from core.errors import Conflict
from core.models import TargetRef, Turn, Usage
from local.resources import create_conversations_table


def turn(index: int) -> Turn:
    return Turn(
        index=index,
        user=f"q{index}",
        assistant=f"a{index}",
        created_at=f"2026-11-21T00:00:{index:02d}.000+00:00",
        target=TargetRef(model_id="m", region="us-east-1"),
        usage=Usage(input_tokens=index, output_tokens=1),
    )


@pytest.fixture
def store() -> Iterator[DynamoConversationStore]:
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        create_conversations_table(client, "t")
        yield DynamoConversationStore(client=client, table_name="t")


def fill(store: DynamoConversationStore, user: str, cid: str, turns: int) -> None:
    for i in range(turns):
        store.append_turn(user, cid, expected_turns=i, turn=turn(i), title="title")


def test_get_returns_the_tail_of_history_in_order(store: DynamoConversationStore) -> None:
    fill(store, "u", "c", 7)

    tail = store.get("u", "c", last_turns=3)
    full = store.get("u", "c")
    none = store.get("u", "c", last_turns=0)

    assert tail is not None and [t.index for t in tail.turns] == [4, 5, 6]
    assert full is not None and [t.index for t in full.turns] == list(range(7))
    assert full.turn_count == 7 and full.updated_at.endswith("06.000+00:00")
    assert none is not None and none.turns == ()


def test_a_stale_writer_gets_conflict_and_changes_nothing(store: DynamoConversationStore) -> None:
    fill(store, "u", "c", 2)

    with pytest.raises(Conflict):
        store.append_turn("u", "c", expected_turns=1, turn=turn(1), title="title")
    with pytest.raises(Conflict):
        store.append_turn("u", "c", expected_turns=0, turn=turn(0), title="title")

    conversation = store.get("u", "c")
    assert conversation is not None and conversation.turn_count == 2 and len(conversation.turns) == 2


def test_list_is_per_user_and_newest_first(store: DynamoConversationStore) -> None:
    fill(store, "u", "old", 1)
    store.append_turn("u", "new", expected_turns=0, turn=turn(9), title="new")
    fill(store, "someone-else", "x", 1)

    assert [c.conversation_id for c in store.list("u")] == ["new", "old"]


def test_delete_removes_more_than_one_batch_of_turns(store: DynamoConversationStore) -> None:
    fill(store, "u", "c", 30)
    fill(store, "u", "keep", 1)

    assert store.delete("u", "c") is True
    assert store.get("u", "c") is None
    assert store.delete("u", "c") is False
    keep = store.get("u", "keep")
    assert keep is not None and len(keep.turns) == 1


def test_the_header_lists_the_cache_keys_of_its_answers_for_the_delete(store: DynamoConversationStore) -> None:
    store.append_turn("u", "c", expected_turns=0, turn=replace(turn(0), cache_key="k0"), title="t")
    store.append_turn("u", "c", expected_turns=1, turn=turn(1), title="t")  # an answer that was not cached
    store.append_turn("u", "c", expected_turns=2, turn=replace(turn(2), cache_key="k2"), title="t")

    header = store.get("u", "c", last_turns=0)
    full = store.get("u", "c")

    assert header is not None and header.cache_keys == ("k0", "k2")
    assert full is not None and [t.cache_key for t in full.turns] == ["k0", None, "k2"]
    assert store.list("u")[0].summary() == header.summary()  # not part of what the API shows
