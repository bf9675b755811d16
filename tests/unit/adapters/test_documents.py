"""DynamoDocumentStore on moto: per-region status transitions, stale events ignored, owner isolation."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from adapters.documents import DynamoDocumentStore
from core.documents import Claim, DocumentState, DocumentStore, normalize_sequencer
from local.resources import create_table

TABLE = "documents-test"
ALICE = "0b5e2a8c-1111-4c3e-9a0e-aaaaaaaaaaaa"
BOB = "7f3d9b1e-2222-4d8f-8b1a-bbbbbbbbbbbb"
DOC = "5d1c7f0e-3333-4a2b-9c4d-cccccccccccc"
PRIMARY, DR = "us-east-1", "us-west-2"
OLD, NEW = normalize_sequencer("0055AED6DCD90281E5"), normalize_sequencer("0055AED6DCD90281F0")


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def client() -> Iterator[Any]:
    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name=PRIMARY)
        create_table(dynamodb, TABLE, [("pk", "HASH"), ("sk", "RANGE")])
        yield dynamodb


@pytest.fixture
def store(client: Any, clock: Clock) -> DynamoDocumentStore:
    return DynamoDocumentStore(client=client, table_name=TABLE, clock=clock)


def claim(store: DocumentStore, sequencer: str, *, owner: str = ALICE, region: str = PRIMARY, version: str = "v1",
          lease_until: float = 1_800_000_300.0) -> Claim:  # fmt: skip
    return store.claim(
        owner, DOC, region, sequencer=sequencer, version_id=version, name="report.pdf",
        content_type="application/pdf", size=1234, lease_until=lease_until,
    )  # fmt: skip


def test_the_adapter_is_a_document_store(store: DynamoDocumentStore) -> None:
    port: DocumentStore = store  # checked by mypy
    assert port is store


def test_claim_creates_the_record_and_ready_records_the_chunk_count(store: DynamoDocumentStore) -> None:
    assert claim(store, OLD) is Claim.STARTED
    ingesting = store.get(ALICE, DOC)
    assert ingesting is not None and ingesting.name == "report.pdf" and ingesting.size == 1234
    assert ingesting.status[PRIMARY].state is DocumentState.INGESTING

    assert store.mark_ready(ALICE, DOC, PRIMARY, sequencer=OLD, chunk_count=7)

    status = store.get(ALICE, DOC).status[PRIMARY]  # type: ignore[union-attr]
    assert (status.state, status.chunk_count, status.version_id, status.lease_until) == (
        DocumentState.READY, 7, "v1", None,
    )  # fmt: skip


def test_claim_keeps_the_name_the_api_recorded(store: DynamoDocumentStore, client: Any) -> None:
    client.put_item(
        TableName=TABLE,
        Item={"pk": {"S": ALICE}, "sk": {"S": DOC}, "name": {"S": "Quarterly report.pdf"},
              "status": {"M": {PRIMARY: {"M": {"state": {"S": "uploading"}}}}}},
    )  # fmt: skip
    assert claim(store, OLD) is Claim.STARTED
    assert store.get(ALICE, DOC).name == "Quarterly report.pdf"  # type: ignore[union-attr]


def test_failed_keeps_code_and_reason(store: DynamoDocumentStore) -> None:
    claim(store, OLD)
    assert store.mark_failed(ALICE, DOC, PRIMARY, sequencer=OLD, code="encrypted", reason="the PDF is encrypted")
    status = store.get(ALICE, DOC).status[PRIMARY]  # type: ignore[union-attr]
    assert (status.state, status.code, status.reason) == (DocumentState.FAILED, "encrypted", "the PDF is encrypted")


def test_a_stale_event_never_overwrites_a_newer_version(store: DynamoDocumentStore) -> None:
    assert claim(store, NEW, version="v2") is Claim.STARTED
    assert store.mark_ready(ALICE, DOC, PRIMARY, sequencer=NEW, chunk_count=3)

    assert claim(store, OLD, version="v1") is Claim.STALE  # the late event of the replaced version
    assert not store.mark_ready(ALICE, DOC, PRIMARY, sequencer=OLD, chunk_count=99)
    assert not store.mark_failed(ALICE, DOC, PRIMARY, sequencer=OLD, code="x", reason="y")
    assert not store.mark_deleted(ALICE, DOC, PRIMARY, sequencer=OLD)

    record = store.get(ALICE, DOC)
    assert record is not None and record.version_id == "v2"
    assert (record.status[PRIMARY].state, record.status[PRIMARY].chunk_count) == (DocumentState.READY, 3)


def test_a_newer_version_waits_for_the_older_ones_lease_then_takes_over(
    store: DynamoDocumentStore, clock: Clock
) -> None:
    assert claim(store, OLD, lease_until=clock.now + 300) is Claim.STARTED
    assert claim(store, NEW, version="v2") is Claim.BUSY

    clock.now += 301  # the older claim's holder died: its lease is over
    assert claim(store, NEW, version="v2") is Claim.STARTED
    assert not store.mark_ready(ALICE, DOC, PRIMARY, sequencer=OLD, chunk_count=1)  # the old holder lost it


def test_the_same_event_may_claim_again_until_it_finished(store: DynamoDocumentStore) -> None:
    assert claim(store, OLD) is Claim.STARTED
    assert claim(store, OLD) is Claim.STARTED  # a redelivery after a crash
    store.mark_failed(ALICE, DOC, PRIMARY, sequencer=OLD, code="not_processed", reason="set aside")
    assert claim(store, OLD) is Claim.STARTED  # a redrive from the DLQ
    store.mark_ready(ALICE, DOC, PRIMARY, sequencer=OLD, chunk_count=2)
    assert claim(store, OLD) is Claim.STALE  # a duplicate of a finished event


def reclaim(store: DocumentStore, sequencer: str = OLD, *, version: str = "v1", lease_until: float) -> Claim:
    return store.reclaim(ALICE, DOC, PRIMARY, sequencer=sequencer, version_id=version, lease_until=lease_until)


def test_a_rebuild_reclaims_a_ready_version_under_its_own_sequencer_and_a_new_lease(
    store: DynamoDocumentStore, clock: Clock
) -> None:
    claim(store, OLD)
    store.mark_ready(ALICE, DOC, PRIMARY, sequencer=OLD, chunk_count=3)

    assert reclaim(store, lease_until=clock.now + 300) is Claim.STARTED
    status = store.get(ALICE, DOC).status[PRIMARY]  # type: ignore[union-attr]
    assert (status.state, status.sequencer, status.chunk_count) == (DocumentState.INGESTING, OLD, None)
    assert reclaim(store, lease_until=clock.now + 300) is Claim.BUSY  # its lease runs: one rebuild at a time
    assert claim(store, NEW, version="v2") is Claim.BUSY  # a newer upload waits for the rebuild

    assert store.mark_ready(ALICE, DOC, PRIMARY, sequencer=OLD, chunk_count=3)
    assert claim(store, NEW, version="v2") is Claim.STARTED  # then it goes, and replaces v1's chunks


def test_a_rebuild_left_ingesting_is_reclaimed_once_its_lease_ran_out(store: DynamoDocumentStore, clock: Clock) -> None:
    claim(store, OLD)
    store.mark_ready(ALICE, DOC, PRIMARY, sequencer=OLD, chunk_count=3)
    reclaim(store, lease_until=clock.now + 300)  # ... and that rebuild's Lambda died

    clock.now += 301
    assert reclaim(store, lease_until=clock.now + 300) is Claim.STARTED


def test_a_rebuild_never_reclaims_another_version_a_failed_one_or_a_deleted_document(
    store: DynamoDocumentStore, clock: Clock, client: Any
) -> None:
    claim(store, OLD)
    store.mark_ready(ALICE, DOC, PRIMARY, sequencer=OLD, chunk_count=3)
    claim(store, NEW, version="v2")  # a newer upload took the document over

    assert reclaim(store, lease_until=clock.now + 300) is Claim.STALE  # v1 is not the recorded version now
    assert reclaim(store, NEW, version="v1", lease_until=clock.now + 300) is Claim.STALE
    store.mark_failed(ALICE, DOC, PRIMARY, sequencer=NEW, code="malformed", reason="damaged")
    assert reclaim(store, NEW, version="v2", lease_until=clock.now + 300) is Claim.STALE  # failed stays failed

    store.mark_deleted(ALICE, DOC, PRIMARY, sequencer=normalize_sequencer("0055AED6DCD90281FF"))
    assert reclaim(store, NEW, version="v2", lease_until=clock.now + 300) is Claim.STALE


def test_regions_keep_their_own_status(store: DynamoDocumentStore) -> None:
    claim(store, OLD, region=PRIMARY)
    store.mark_ready(ALICE, DOC, PRIMARY, sequencer=OLD, chunk_count=4)
    dr_sequencer = normalize_sequencer("01")  # the DR bucket's own event: its own, smaller, sequencer
    assert claim(store, dr_sequencer, region=DR) is Claim.STARTED

    record = store.get(ALICE, DOC)
    assert record is not None
    assert record.status[PRIMARY].state is DocumentState.READY
    assert record.status[DR].state is DocumentState.INGESTING


def test_deleted_wins_over_older_events_and_stops_later_claims(store: DynamoDocumentStore) -> None:
    claim(store, OLD)
    assert store.mark_deleted(ALICE, DOC, PRIMARY, sequencer=NEW)
    assert not store.mark_ready(ALICE, DOC, PRIMARY, sequencer=OLD, chunk_count=5)
    assert claim(store, OLD) is Claim.STALE

    assert claim(store, normalize_sequencer("0055AED6DCD90281FF")) is Claim.STALE  # deleted is terminal here

    record = store.get(ALICE, DOC)
    assert record is not None and record.deleted_at is None  # the metadata item is the API's, not written here
    assert record.status[PRIMARY].state is DocumentState.DELETED


def test_a_document_the_user_deleted_is_never_claimed(store: DynamoDocumentStore, client: Any) -> None:
    client.put_item(
        TableName=TABLE,
        Item={"pk": {"S": ALICE}, "sk": {"S": DOC}, "name": {"S": "a.txt"}, "deleted_at": {"S": "2027-01-01"}},
    )
    assert claim(store, NEW) is Claim.STALE


def test_removal_of_an_unknown_document_creates_no_record(store: DynamoDocumentStore) -> None:
    assert store.mark_deleted(ALICE, DOC, PRIMARY, sequencer=OLD)
    assert store.get(ALICE, DOC) is None


def test_owners_are_isolated(store: DynamoDocumentStore) -> None:
    claim(store, OLD, owner=ALICE)
    store.mark_ready(ALICE, DOC, PRIMARY, sequencer=OLD, chunk_count=4)

    assert store.get(BOB, DOC) is None
    assert not store.mark_ready(BOB, DOC, PRIMARY, sequencer=OLD, chunk_count=1)
    assert claim(store, NEW, owner=BOB) is Claim.STARTED  # Bob's own record under the same id, apart
    assert store.get(ALICE, DOC).status[PRIMARY].chunk_count == 4  # type: ignore[union-attr]


def test_throttling_is_a_dependency_failure(store: DynamoDocumentStore, client: Any) -> None:
    from botocore.stub import Stubber

    from core.errors import DependencyUnavailable

    with Stubber(client) as stub:
        stub.add_client_error("query", service_error_code="ProvisionedThroughputExceededException",
                              http_status_code=400)  # fmt: skip
        with pytest.raises(DependencyUnavailable):
            store.get(ALICE, DOC)


def items(client: Any, owner: str = ALICE) -> dict[str, dict[str, Any]]:
    query = client.query(TableName=TABLE, KeyConditionExpression="pk = :pk",
                         ExpressionAttributeValues={":pk": {"S": owner}})  # fmt: skip
    return {item["sk"]["S"]: item for item in query["Items"]}


def test_each_region_writes_only_its_own_status_item_never_the_api_metadata(
    store: DynamoDocumentStore, client: Any
) -> None:
    metadata = {"pk": {"S": ALICE}, "sk": {"S": DOC}, "name": {"S": "Quarterly report.pdf"},
                "content_type": {"S": "application/pdf"}, "size": {"N": "1234"},
                "created_at": {"S": "2027-01-01T00:00:00.000+00:00"}}  # fmt: skip
    client.put_item(TableName=TABLE, Item=metadata)

    claim(store, OLD, region=PRIMARY)
    store.mark_ready(ALICE, DOC, PRIMARY, sequencer=OLD, chunk_count=4)
    claim(store, normalize_sequencer("01"), region=DR)
    store.mark_failed(ALICE, DOC, DR, sequencer=normalize_sequencer("01"), code="x", reason="y")
    store.mark_deleted(ALICE, DOC, DR, sequencer=normalize_sequencer("02"))

    stored = items(client)
    assert set(stored) == {DOC, f"{DOC}#status#{PRIMARY}", f"{DOC}#status#{DR}"}
    assert stored[DOC] == metadata  # untouched: the pipelines never write the API's item
    assert stored[f"{DOC}#status#{PRIMARY}"]["region"] == {"S": PRIMARY}
    assert stored[f"{DOC}#status#{PRIMARY}"]["state"] == {"S": "ready"}
    assert stored[f"{DOC}#status#{DR}"]["state"] == {"S": "deleted"}


def test_records_of_the_old_layout_read_as_before_and_keep_their_event_order(
    store: DynamoDocumentStore, client: Any
) -> None:
    """A table written before the upgrade: every region's status in a map on the metadata item."""
    client.put_item(TableName=TABLE, Item={
        "pk": {"S": ALICE}, "sk": {"S": DOC}, "name": {"S": "old.pdf"}, "content_type": {"S": "application/pdf"},
        "size": {"N": "10"}, "version_id": {"S": "v2"},
        "status": {"M": {
            PRIMARY: {"M": {"state": {"S": "ready"}, "version_id": {"S": "v2"}, "sequencer": {"S": NEW},
                            "chunk_count": {"N": "3"}}},
            DR: {"M": {"state": {"S": "uploading"}}},
        }},
    })  # fmt: skip
    record = store.get(ALICE, DOC)
    assert record is not None and record.name == "old.pdf"
    assert (record.status[PRIMARY].state, record.status[PRIMARY].chunk_count) == (DocumentState.READY, 3)
    assert record.status[DR].state is DocumentState.UPLOADING

    assert claim(store, OLD, version="v1") is Claim.STALE  # older than the old layout's recorded event
    assert claim(store, normalize_sequencer("01"), region=DR) is Claim.STARTED  # DR's first event
    assert store.reclaim(ALICE, DOC, PRIMARY, sequencer=NEW, version_id="v2", lease_until=1e10) is Claim.STARTED

    stored = items(client)
    assert stored[f"{DOC}#status#{PRIMARY}"]["sequencer"] == {"S": NEW}  # copied over, then rebuilt under it
    record = store.get(ALICE, DOC)
    assert record is not None and record.status[PRIMARY].state is DocumentState.INGESTING
    assert record.status[DR].state is DocumentState.INGESTING
    assert stored[DOC]["status"]["M"][PRIMARY]["M"]["state"] == {"S": "ready"}  # the old map is never written
