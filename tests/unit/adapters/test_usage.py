"""Per-user counters and open-job slots on moto DynamoDB: atomic, idempotent, never past the limit."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from adapters.jobs import DynamoOpenJobSlots
from adapters.usage import DynamoUsageCounters
from core.errors import DependencyUnavailable
from local.resources import create_table


@pytest.fixture
def client() -> Iterator[Any]:
    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name="us-east-1")
        create_table(dynamodb, "usage", [("pk", "HASH"), ("sk", "RANGE")])
        yield dynamodb


def test_a_counter_stops_at_its_limit_and_windows_are_separate(client: Any) -> None:
    counters = DynamoUsageCounters(client=client, table_name="usage")

    first_window = [counters.add("alice", "requests#0", amount=1, limit=3, expires_at=99) for _ in range(5)]
    other_window = counters.add("alice", "requests#60", amount=1, limit=3, expires_at=99)
    big = counters.add("bob", "tokens#0", amount=5, limit=4, expires_at=99)

    assert first_window == [True, True, True, False, False]
    assert other_window is True and big is False
    item = client.get_item(TableName="usage", Key={"pk": {"S": "alice"}, "sk": {"S": "requests#0"}})["Item"]
    assert item["count"] == {"N": "3"} and item["expires_at"] == {"N": "99"}


def test_a_missing_table_is_a_dependency_failure_not_a_crash(client: Any) -> None:
    counters = DynamoUsageCounters(client=client, table_name="no-such-table")

    with pytest.raises(DependencyUnavailable):
        counters.add("alice", "requests#0", amount=1, limit=3, expires_at=99)


def test_open_job_slots_are_capped_and_idempotent(client: Any) -> None:
    slots = DynamoOpenJobSlots(client=client, table_name="usage")

    assert slots.reserve("alice", "j1", cap=2) and slots.reserve("alice", "j2", cap=2)
    assert slots.reserve("alice", "j1", cap=2)  # already held: a retried submit
    assert not slots.reserve("alice", "j3", cap=2)
    assert slots.reserve("bob", "j3", cap=2)  # per user
    slots.release("alice", "j1")
    slots.release("alice", "j1")  # a repeated release changes nothing
    slots.release("carol", "j9")  # nothing held: nothing written

    assert slots.held("alice") == ["j2"] and slots.reserve("alice", "j3", cap=2)
    assert slots.held("carol") == []
    assert "Item" not in client.get_item(TableName="usage", Key={"pk": {"S": "carol"}, "sk": {"S": "#open-jobs"}})
