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


def test_increment_is_unconditional_and_total_sums_only_the_prefix(client: Any) -> None:
    counters = DynamoUsageCounters(client=client, table_name="usage")

    counters.increment("alice", "tokens#2026-11-22#us-east-1", amount=700, expires_at=99)
    counters.increment("alice", "tokens#2026-11-22#us-east-1", amount=900, expires_at=123)  # no limit applies
    counters.increment("alice", "tokens#2026-11-22#us-west-2", amount=50, expires_at=99)
    counters.increment("alice", "tokens#2026-11-21#us-east-1", amount=5000, expires_at=99)  # yesterday
    counters.add("alice", "requests#0", amount=1, limit=3, expires_at=99)  # the rate limit's counter, same pk
    counters.increment("bob", "tokens#2026-11-22#us-east-1", amount=8, expires_at=99)

    assert counters.total("alice", "tokens#2026-11-22#") == 1650
    assert counters.total("carol", "tokens#2026-11-22#") == 0
    item = client.get_item(TableName="usage", Key={"pk": {"S": "alice"}, "sk": {"S": "tokens#2026-11-22#us-east-1"}})
    assert item["Item"]["expires_at"] == {"N": "99"}  # the first write's expiry stays


def test_token_calls_on_a_missing_table_are_dependency_failures(client: Any) -> None:
    counters = DynamoUsageCounters(client=client, table_name="no-such-table")

    with pytest.raises(DependencyUnavailable):
        counters.increment("alice", "tokens#d#r", amount=1, expires_at=99)
    with pytest.raises(DependencyUnavailable):
        counters.total("alice", "tokens#d#")


# --- two regions of a global table -------------------------------------------------------------------------------
def replicate(item_key: dict[str, Any], source: Any, target: Any) -> None:
    """What global-table replication does with one written item: the whole item, last writer wins, replaces the
    other replica's (moto does not replicate; the test plays the replicator after every write)."""
    item = source.get_item(TableName="usage", Key=item_key)["Item"]
    target.put_item(TableName="usage", Item=item)


def test_interleaved_writes_in_two_regions_are_all_counted_after_replication() -> None:
    from core.limits import UserLimits, UserLimitSettings

    with mock_aws():
        clients = {r: boto3.client("dynamodb", region_name=r) for r in ("us-east-1", "us-west-2")}
        for c in clients.values():
            create_table(c, "usage", [("pk", "HASH"), ("sk", "RANGE")])
        now = 1_795_305_600 + 60.0  # 2026-11-22, one minute past midnight UTC
        limits = {
            r: UserLimits(
                counters=DynamoUsageCounters(client=c, table_name="usage"),
                settings=UserLimitSettings(daily_tokens=10_000),
                region=r,
                clock=lambda: now,
            )
            for r, c in clients.items()
        }
        spent = 0
        # Both regions write before either's write has replicated (the ADDs race), then replication runs.
        for round_ in range(4):
            pending = []
            for region, tokens in (("us-east-1", 100 + round_), ("us-west-2", 40 + round_)):
                limits[region].spend_tokens("alice", tokens, admitted=None)
                spent += tokens
                pending.append((region, f"tokens#2026-11-22#{region}"))
            for region, sk in pending:
                other = "us-west-2" if region == "us-east-1" else "us-east-1"
                replicate({"pk": {"S": "alice"}, "sk": {"S": sk}}, clients[region], clients[other])

        readings = {r: limits[r].admit_tokens("alice") for r in clients}

    assert spent == 4 * 140 + 2 * 6
    assert all(reading is not None and reading.used == spent for reading in readings.values())


def test_one_shared_item_would_lose_the_other_regions_concurrent_adds() -> None:
    """Why the items are per region: the same race on one item keeps only the last writer's count."""
    with mock_aws():
        clients = [boto3.client("dynamodb", region_name=r) for r in ("us-east-1", "us-west-2")]
        for c in clients:
            create_table(c, "usage", [("pk", "HASH"), ("sk", "RANGE")])
        shared = "tokens#2026-11-22"
        for c, tokens in zip(clients, (100, 40), strict=True):
            DynamoUsageCounters(client=c, table_name="usage").increment("alice", shared, amount=tokens, expires_at=9)
        replicate({"pk": {"S": "alice"}, "sk": {"S": shared}}, clients[1], clients[0])  # us-west-2 wrote last

        totals = [DynamoUsageCounters(client=c, table_name="usage").total("alice", shared) for c in clients]

    assert totals == [40, 40]  # 100 tokens lost
