"""The documents table as a global table: both regions' pipelines write a document's status at the same time and
neither region's status is lost (the DR drill's bug: 3 of 265 documents stuck `ingesting`/`uploading` in one
region though searchable there).

Two moto regions replicated by the sandbox's replicator (local/global_tables.py: per ITEM, last writer wins, the
replicated write dropped when the target holds a later write of the item, as DynamoDB global tables do), an
injected clock and explicit pumps: outcomes only.

Why the old layout lost a status, with the same interleaving: every region's status was an entry of a map on
ONE item (pk owner, sk document id). East writes `status.us-east-1 = ready` (its image: east ready, west
uploading); before that replicates, west writes `status.us-west-2 = ready` (its image: east uploading, west
ready). Replication applies whole items and keeps the later write: west's image wins in both regions, and east's
`ready` is gone for good (nothing writes it again), so east shows `ingesting` while its index has the passages.
Now each region's status is its own item, so the two writes are to different items, there is nothing for last
writer wins to choose between (the replicator supersedes nothing), and both statuses survive in both replicas.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from adapters.document_catalog import DynamoDocumentCatalog
from adapters.documents import DynamoDocumentStore
from core.documents import Claim, DocumentState, normalize_sequencer
from core.retrieval import DocumentView
from local.global_tables import GlobalTables
from tests.global_tables_fixtures import EAST, WEST, Clock, replicated_regions

TABLE = "documents"
ALICE = "0b5e2a8c-1111-4c3e-9a0e-aaaaaaaaaaaa"
DOCS = [f"5d1c7f0e-3333-4a2b-9c4d-{n:012d}" for n in range(3)]


@pytest.fixture
def world() -> Iterator[tuple[dict[str, Any], GlobalTables, Clock]]:
    with replicated_regions(TABLE) as world:
        yield world


def _replicate(replication: GlobalTables, clock: Clock) -> None:
    clock.after_lag()
    replication.pump()


def _ingest(store: DynamoDocumentStore, document_id: str, region: str, sequencer: str) -> None:
    claimed = store.claim(
        ALICE, document_id, region, sequencer=sequencer, version_id=f"v-{region}", name="n.txt",
        content_type="text/plain", size=5, lease_until=time.time() + 300,
    )  # fmt: skip
    assert claimed is Claim.STARTED
    assert store.mark_ready(ALICE, document_id, region, sequencer=sequencer, chunk_count=2)


def test_both_regions_statuses_survive_concurrent_writes_and_replication(world: Any) -> None:
    clients, replication, clock = world
    stores = {r: DynamoDocumentStore(client=clients[r], table_name=TABLE, clock=time.time) for r in (EAST, WEST)}
    catalogs = {r: DynamoDocumentCatalog(client=clients[r], table_name=TABLE, region=r) for r in (EAST, WEST)}
    for document_id in DOCS:  # the API's upload in the primary, replicated before the object arrives anywhere
        catalogs[EAST].create(DocumentView(owner=ALICE, document_id=document_id, name="n.txt",
                                           content_type="text/plain", size=5, created_at="2027-01-01T00:00:00Z",
                                           status="uploading"))  # fmt: skip
    _replicate(replication, clock)

    # Interleaved inside one replication window: each region claims and finishes while the other's writes are
    # in flight, in both orders.
    _ingest(stores[EAST], DOCS[0], EAST, normalize_sequencer("0A"))
    _ingest(stores[WEST], DOCS[0], WEST, normalize_sequencer("01"))
    _ingest(stores[WEST], DOCS[1], WEST, normalize_sequencer("01"))
    _ingest(stores[EAST], DOCS[1], EAST, normalize_sequencer("0A"))
    stores[EAST].claim(ALICE, DOCS[2], EAST, sequencer=normalize_sequencer("0A"), version_id="v", name="n.txt",
                       content_type="text/plain", size=5, lease_until=time.time() + 300)  # fmt: skip
    _ingest(stores[WEST], DOCS[2], WEST, normalize_sequencer("01"))
    stores[EAST].mark_failed(ALICE, DOCS[2], EAST, sequencer=normalize_sequencer("0A"), code="empty", reason="no text")
    _replicate(replication, clock)

    directions = replication.stats()["directions"]
    assert [d["superseded"] for d in directions.values()] == [0, 0]  # no item was written by both regions
    assert all(d["pending"] == 0 for d in directions.values())
    for region in (EAST, WEST):
        views = {view.document_id: view for view in catalogs[region].list(ALICE)}
        expected_2 = "failed" if region == EAST else "ready"
        assert [views[d].status for d in DOCS] == ["ready", "ready", expected_2], region
        assert catalogs[region].get(ALICE, DOCS[0]).chunk_count == 2  # type: ignore[union-attr]
        for reader in (EAST, WEST):  # each replica holds both regions' statuses
            record = DynamoDocumentStore(client=clients[reader], table_name=TABLE).get(ALICE, DOCS[0])
            assert record is not None and record.status[region].state is DocumentState.READY
    scans = [sorted(clients[r].scan(TableName=TABLE)["Items"], key=lambda i: i["sk"]["S"]) for r in (EAST, WEST)]
    assert scans[0] == scans[1]  # the replicas converged


def test_a_delete_in_one_region_is_seen_in_both_and_leaves_no_live_status(world: Any) -> None:
    clients, replication, clock = world
    stores = {r: DynamoDocumentStore(client=clients[r], table_name=TABLE, clock=time.time) for r in (EAST, WEST)}
    catalogs = {r: DynamoDocumentCatalog(client=clients[r], table_name=TABLE, region=r) for r in (EAST, WEST)}
    catalogs[EAST].create(DocumentView(owner=ALICE, document_id=DOCS[0], name="n.txt", content_type="text/plain",
                                       size=5, created_at="2027-01-01T00:00:00Z", status="uploading"))  # fmt: skip
    _replicate(replication, clock)
    _ingest(stores[EAST], DOCS[0], EAST, normalize_sequencer("0A"))
    _ingest(stores[WEST], DOCS[0], WEST, normalize_sequencer("01"))

    catalogs[WEST].mark_deleted(ALICE, DOCS[0], at="2027-01-02T00:00:00Z")  # the user deletes it in DR
    assert stores[EAST].mark_deleted(ALICE, DOCS[0], EAST, sequencer=normalize_sequencer("0B"))  # its event
    _replicate(replication, clock)
    # A late event in the primary after the delete replicated: no status is written for a deleted document.
    late = stores[EAST].claim(ALICE, DOCS[0], EAST, sequencer=normalize_sequencer("0C"), version_id="v2", name="n",
                              content_type="text/plain", size=5, lease_until=time.time() + 300)  # fmt: skip
    assert late is Claim.STALE
    for region in (EAST, WEST):
        assert catalogs[region].get(ALICE, DOCS[0]).status == "deleted"  # type: ignore[union-attr]
        assert catalogs[region].list(ALICE)[0].status == "deleted"
