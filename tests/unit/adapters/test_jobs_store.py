"""DynamoJobStore's disaster-recovery writes on moto (issue 10): owner and heartbeat, the sparse index, conditions."""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import pytest
from moto import mock_aws

from adapters.jobs import OPEN_JOBS_INDEX, DynamoJobStore
from core.models import Job
from tests.jobs_fixtures import add_open_jobs_index

TABLE = "jobs"
HERE, PEER = "us-west-2", "us-east-1"
T0 = 1_700_000_000.25


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def store() -> Iterator[tuple[DynamoJobStore, DynamoJobStore, Clock]]:
    """This region's store and a peer's, on one table (replication instant), sharing a clock."""
    with mock_aws():
        client = boto3.client("dynamodb", region_name=HERE)
        client.create_table(
            TableName=TABLE,
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                                  {"AttributeName": "sk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )  # fmt: skip
        add_open_jobs_index(client, TABLE)
        clock = Clock()
        yield (
            DynamoJobStore(client=client, table_name=TABLE, clock=clock),
            DynamoJobStore(client=client, table_name=TABLE, clock=clock, region=PEER),
            clock,
        )


def new_job(store: DynamoJobStore, job_id: str = "j1", *, at: float = T0) -> Job:
    job = Job(
        job_id=job_id, user_id="u1", message="a user's question", conversation_id=None, status="queued",
        created_at=at, updated_at=at, owner_region=store.region, heartbeat_at=at, accepted_in=store.region,
    )  # fmt: skip
    stored, created = store.create(job)
    assert created
    return stored


def indexed(store: DynamoJobStore, owner: str, before: float = T0 + 10_000) -> list[str]:
    return [job.job_id for job in store.open_jobs(owner, heartbeat_before=before)]


def test_the_region_is_the_clients_unless_given(store: tuple[DynamoJobStore, DynamoJobStore, Clock]) -> None:
    here, peer, _ = store
    assert (here.region, peer.region) == (HERE, PEER)


def test_an_open_job_is_in_the_index_without_its_text_and_leaves_it_when_finished(
    store: tuple[DynamoJobStore, DynamoJobStore, Clock],
) -> None:
    here, _, clock = store
    new_job(here, "j1")
    new_job(here, "j2")
    (item,) = [
        i for i in here._client.scan(TableName=TABLE, IndexName=OPEN_JOBS_INDEX)["Items"] if i["sk"]["S"] == "j1"
    ]
    assert "message" not in item and item["owner_region"]["S"] == HERE

    clock.now += 5
    here.finish("u1", "j1", {"answer": "x"}, ttl_s=60)
    here.fail("u1", "j2", "a reason", ttl_s=60)

    assert indexed(here, HERE) == []
    # A late mark_enqueued (the worker finished before the submit marked it) does not put it back.
    here.mark_enqueued("u1", "j1")
    assert indexed(here, HERE) == [] and here.get("u1", "j1").heartbeat_at is None  # type: ignore[union-attr]


def test_the_index_lists_one_owners_jobs_quiet_since_a_time_oldest_first(
    store: tuple[DynamoJobStore, DynamoJobStore, Clock],
) -> None:
    here, peer, _ = store
    new_job(peer, "late", at=T0 + 20)
    new_job(peer, "early", at=T0)
    new_job(here, "mine", at=T0)

    assert indexed(here, PEER) == ["early", "late"]
    assert indexed(here, PEER, before=T0 + 19) == ["early"] and indexed(here, PEER, before=T0) == ["early"]
    found = next(here.open_jobs(PEER, heartbeat_before=T0))
    assert (found.owner_region, found.heartbeat_at, found.status, found.enqueued) == (PEER, T0, "queued", False)


def test_a_claim_holds_only_if_owner_and_heartbeat_are_what_the_claimer_saw(
    store: tuple[DynamoJobStore, DynamoJobStore, Clock],
) -> None:
    here, peer, clock = store
    new_job(peer)
    peer.mark_enqueued("u1", "j1")
    clock.now += 700

    assert not here.claim("u1", "j1", owner_region=PEER, heartbeat_at=T0 - 1)  # an older view
    assert here.claim("u1", "j1", owner_region=PEER, heartbeat_at=T0)
    assert not here.claim("u1", "j1", owner_region=PEER, heartbeat_at=T0)  # the second claimer loses
    claimed = here.get("u1", "j1")
    assert claimed is not None
    assert (claimed.owner_region, claimed.heartbeat_at, claimed.enqueued, claimed.accepted_in) == (
        HERE, T0 + 700, False, PEER,
    )  # fmt: skip
    assert indexed(here, PEER) == [] and indexed(here, HERE) == ["j1"]


def test_a_finished_job_cannot_be_claimed(store: tuple[DynamoJobStore, DynamoJobStore, Clock]) -> None:
    here, peer, _ = store
    new_job(peer)
    peer.finish("u1", "j1", {"answer": "x"}, ttl_s=60)

    assert not here.claim("u1", "j1", owner_region=PEER, heartbeat_at=None)
    assert not here.claim("u1", "j1", owner_region=PEER, heartbeat_at=T0)


def test_a_job_from_before_owners_can_be_claimed_by_the_region_that_finds_it(
    store: tuple[DynamoJobStore, DynamoJobStore, Clock],
) -> None:
    here, _, clock = store
    legacy = Job(job_id="old", user_id="u1", message="m", conversation_id=None, status="queued", created_at=T0,
                 updated_at=T0)  # fmt: skip
    here.create(legacy)
    clock.now += 11

    assert here.claim("u1", "old", owner_region=None, heartbeat_at=None)
    assert here.get("u1", "old").owner_region == HERE  # type: ignore[union-attr]


def test_only_the_owner_may_start_an_open_job_or_refresh_its_heartbeat(
    store: tuple[DynamoJobStore, DynamoJobStore, Clock],
) -> None:
    here, peer, clock = store
    new_job(peer)
    clock.now += 30

    assert here.mark_running("u1", "j1") == PEER and here.get("u1", "j1").status == "queued"  # type: ignore[union-attr]
    assert not here.heartbeat("u1", "j1")
    assert peer.heartbeat("u1", "j1") and peer.get("u1", "j1").heartbeat_at == T0 + 30  # type: ignore[union-attr]
    clock.now += 30
    assert peer.mark_running("u1", "j1") is None
    running = peer.get("u1", "j1")
    assert running is not None and (running.status, running.heartbeat_at, running.owner_region) == (
        "running", T0 + 60, PEER,
    )  # fmt: skip


def test_a_redriven_failed_job_is_reopened_by_the_region_that_redrives_it(
    store: tuple[DynamoJobStore, DynamoJobStore, Clock],
) -> None:
    here, peer, _ = store
    new_job(peer)
    peer.fail("u1", "j1", "parked in the DLQ", ttl_s=60)

    assert here.mark_running("u1", "j1", reopen=True) is None
    reopened = here.get("u1", "j1")
    assert reopened is not None and (reopened.status, reopened.owner_region) == ("running", HERE)
    assert indexed(here, HERE) == ["j1"]


def test_a_finished_job_is_neither_started_nor_refreshed(store: tuple[DynamoJobStore, DynamoJobStore, Clock]) -> None:
    here, _, _ = store
    new_job(here)
    here.finish("u1", "j1", {"answer": "x"}, ttl_s=60)

    assert here.mark_running("u1", "j1") is None and not here.heartbeat("u1", "j1")
    finished = here.get("u1", "j1")
    assert finished is not None and (finished.status, finished.heartbeat_at) == ("done", None)
