"""IngestService on in-memory fakes (the real parser and chunker: pure and deterministic): ready, rejected
with its reason, transient failures retried then failed on the last receive, a new version replacing the old
one's chunks, deletion, stale and busy events."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

import pytest

from adapters.chunking import RecursiveTextChunker
from adapters.parsing import SniffingDocumentParser
from core.documents import (
    Claim,
    DocumentLimits,
    DocumentRecord,
    DocumentState,
    RegionStatus,
)
from core.errors import DependencyUnavailable
from core.ingest import (
    CODE_NOT_PROCESSED,
    DocumentBusy,
    IngestDeadlineExceeded,
    IngestOutcome,
    IngestResult,
    IngestService,
    ObjectVersion,
)
from core.knowledge import ChunkVector, Passage, parse_chunk_key
from core.resilience import Deadline

OWNER = "0b5e2a8c-1111-4c3e-9a0e-aaaaaaaaaaaa"
OTHER = "7f3d9b1e-2222-4d8f-8b1a-bbbbbbbbbbbb"
DOC = "5d1c7f0e-3333-4a2b-9c4d-cccccccccccc"
REGION = "us-east-1"
LIMITS = DocumentLimits(max_bytes=100_000, chunk_size=200, chunk_overlap=20)
TEXT = "\n\n".join(f"Paragraph {i} explains how the bulwark keeps answering when a region fails." for i in range(12))


class FakeDocuments:
    """The DocumentStore's rules, in memory (the DynamoDB adapter's conditions, as Python)."""

    def __init__(self) -> None:
        self.records: dict[tuple[str, str], DocumentRecord] = {}
        self.now = 0.0

    def get(self, owner: str, document_id: str) -> DocumentRecord | None:
        return self.records.get((owner, document_id))

    def _status(self, owner: str, document_id: str) -> RegionStatus | None:
        record = self.get(owner, document_id)
        return record.status_in(REGION) if record else None

    def _put(self, owner: str, document_id: str, status: RegionStatus, **fields: object) -> None:
        record = self.records.get((owner, document_id)) or DocumentRecord(
            owner=owner, document_id=document_id, name="", content_type="", size=0, status={}
        )
        self.records[(owner, document_id)] = replace(record, status={**record.status, REGION: status}, **fields)  # type: ignore[arg-type]

    def claim(self, owner: str, document_id: str, region: str, *, sequencer: str, version_id: str, name: str,
              content_type: str, size: int, lease_until: float) -> Claim:  # fmt: skip
        record = self.get(owner, document_id)
        if record is not None and record.deleted_at:
            return Claim.STALE
        current = self._status(owner, document_id)
        if current is not None and current.sequencer is not None:
            ingesting = current.state is DocumentState.INGESTING
            if current.sequencer > sequencer:
                return Claim.STALE
            if current.sequencer < sequencer and ingesting and (current.lease_until or 0) >= self.now:
                return Claim.BUSY
            if current.sequencer == sequencer and current.state not in (DocumentState.INGESTING, DocumentState.FAILED):
                return Claim.STALE
        status = RegionStatus(state=DocumentState.INGESTING, version_id=version_id, sequencer=sequencer,
                              lease_until=lease_until)  # fmt: skip
        self._put(owner, document_id, status, version_id=version_id, name=record.name if record else name,
                  content_type=content_type, size=size)  # fmt: skip
        return Claim.STARTED

    def reclaim(self, owner: str, document_id: str, region: str, *, sequencer: str, version_id: str,
                lease_until: float) -> Claim:  # fmt: skip
        record = self.get(owner, document_id)
        current = self._status(owner, document_id)
        if record is None or record.deleted_at or current is None:
            return Claim.STALE
        if current.sequencer != sequencer or current.version_id != version_id:
            return Claim.STALE
        if current.state is DocumentState.INGESTING and (current.lease_until or 0) >= self.now:
            return Claim.BUSY
        if current.state not in (DocumentState.READY, DocumentState.INGESTING):
            return Claim.STALE
        self._put(owner, document_id, replace(current, state=DocumentState.INGESTING, chunk_count=None,
                                              lease_until=lease_until))  # fmt: skip
        return Claim.STARTED

    def _owns(self, owner: str, document_id: str, sequencer: str) -> RegionStatus | None:
        record = self.get(owner, document_id)
        current = self._status(owner, document_id)
        if record is None or record.deleted_at or current is None:
            return None
        return current if current.sequencer == sequencer and current.state is DocumentState.INGESTING else None

    def mark_ready(self, owner: str, document_id: str, region: str, *, sequencer: str, chunk_count: int) -> bool:
        current = self._owns(owner, document_id, sequencer)
        if current is None:
            return False
        self._put(owner, document_id, replace(current, state=DocumentState.READY, chunk_count=chunk_count,
                                              lease_until=None))  # fmt: skip
        return True

    def mark_failed(self, owner: str, document_id: str, region: str, *, sequencer: str, code: str,
                    reason: str) -> bool:  # fmt: skip
        current = self._owns(owner, document_id, sequencer)
        if current is None:
            return False
        self._put(owner, document_id, replace(current, state=DocumentState.FAILED, code=code, reason=reason,
                                              lease_until=None))  # fmt: skip
        return True

    def mark_deleted(self, owner: str, document_id: str, region: str, *, sequencer: str) -> bool:
        current = self._status(owner, document_id)
        if current is not None and current.sequencer is not None and current.sequencer > sequencer:
            return False
        if self.get(owner, document_id) is None:
            return True
        self._put(owner, document_id, RegionStatus(state=DocumentState.DELETED, sequencer=sequencer),
                  deleted_at="now")  # fmt: skip
        return True


class FakeIndex:
    def __init__(self) -> None:
        self.vectors: dict[str, ChunkVector] = {}
        self.fail_upserts = 0

    def upsert(self, chunks: Sequence[ChunkVector]) -> None:
        if self.fail_upserts:
            self.fail_upserts -= 1
            raise DependencyUnavailable("the vector index is throttling requests")
        self.vectors.update({chunk.key: chunk for chunk in chunks})

    def delete_document(self, owner: str, document_id: str, *, keep_version: str | None = None) -> int:
        doomed = [
            key for key in self.vectors
            if (p := parse_chunk_key(key)) and p.owner == owner and p.document_id == document_id
            and p.version != keep_version
        ]  # fmt: skip
        for key in doomed:
            del self.vectors[key]
        return len(doomed)

    def query(self, owner: str, vector: Sequence[float], k: int, *, timeout_s: float | None = None) -> list[Passage]:
        return []

    def versions(self, owner: str = OWNER) -> set[str]:
        return {chunk.version for chunk in self.vectors.values() if chunk.owner == owner}


class FakeEmbedder:
    def __init__(self) -> None:
        self.calls = 0
        self.failures: list[Exception] = []
        self.meanwhile: list[Callable[[], object]] = []

    def embed(self, text: str, *, deadline: Deadline) -> list[float]:
        self.calls += 1
        if self.meanwhile:  # something that happens while this document is being embedded
            self.meanwhile.pop(0)()
        if self.failures:
            raise self.failures.pop(0)
        return [float(len(text)), 1.0, 0.0]


class World:
    def __init__(self) -> None:
        self.documents = FakeDocuments()
        self.index = FakeIndex()
        self.embedder = FakeEmbedder()
        self.fetches = 0
        self.service = IngestService(
            documents=self.documents, index=self.index, parser=SniffingDocumentParser(LIMITS),
            chunker=RecursiveTextChunker(LIMITS), embedder=self.embedder, limits=LIMITS, region=REGION,
            deadline_s=60.0, clock=lambda: 0.0, wall_clock=lambda: self.documents.now,
        )  # fmt: skip

    def ingest(self, data: bytes = TEXT.encode(), *, version: str = "v1", sequencer: str = "10",
               content_type: str = "text/plain", size: int | None = None,
               owner: str = OWNER, force: bool = False) -> IngestResult:  # fmt: skip
        def fetch() -> bytes:
            self.fetches += 1
            return data

        size = len(data) if size is None else size
        obj = ObjectVersion(owner=owner, document_id=DOC, version_id=version, sequencer=sequencer, size=size,
                            content_type=content_type, name="notes.txt")  # fmt: skip
        return self.service.ingest(obj, fetch, force=force)

    def rebuild(self, data: bytes = TEXT.encode(), *, version: str = "v1") -> IngestResult:
        """tools/rebuild_index.py's forced event for `version`: no sequencer of its own."""
        return self.ingest(data, version=version, sequencer="0", force=True)

    def status(self, owner: str = OWNER) -> RegionStatus:
        record = self.documents.get(owner, DOC)
        assert record is not None
        return record.status[REGION]


@pytest.fixture
def world() -> World:
    return World()


def test_a_document_reaches_ready_with_its_chunks_indexed(world: World) -> None:
    result = world.ingest()

    assert result.outcome is IngestOutcome.READY and result.chunks > 1
    status = world.status()
    assert (status.state, status.chunk_count) == (DocumentState.READY, result.chunks)
    assert len(world.index.vectors) == result.chunks == world.embedder.calls
    assert all(chunk.page is None for chunk in world.index.vectors.values())  # text has no pages to cite


def test_a_rejected_document_fails_with_its_reason_and_is_never_retried(world: World) -> None:
    result = world.ingest(b"%PDF-1.7 not really", content_type="text/plain")

    assert result.outcome is IngestOutcome.FAILED and result.code == "type_mismatch"
    status = world.status()
    assert status.state is DocumentState.FAILED and status.code == "type_mismatch"
    assert status.reason and "upload it again with its real type" in status.reason
    assert world.embedder.calls == 0 and not world.index.vectors


def test_an_oversized_document_is_refused_before_it_is_downloaded(world: World) -> None:
    result = world.ingest(size=LIMITS.max_bytes + 1)
    assert (result.outcome, result.code, world.fetches) == (IngestOutcome.FAILED, "too_large", 0)


def test_a_transient_failure_raises_for_a_retry_and_the_retry_finishes(world: World) -> None:
    world.embedder.failures = [DependencyUnavailable("the embedding model is throttling")]
    with pytest.raises(DependencyUnavailable):
        world.ingest()
    assert world.status().state is DocumentState.INGESTING  # not failed: the message comes back

    result = world.ingest()  # the redelivery: same event, same keys
    assert result.outcome is IngestOutcome.READY
    assert world.status().state is DocumentState.READY


def test_the_last_receive_marks_the_document_failed_with_a_reason(world: World) -> None:
    world.index.fail_upserts = 4
    for _ in range(4):
        with pytest.raises(DependencyUnavailable):
            world.ingest()

    assert world.service.give_up(OWNER, DOC, sequencer="10", receives=4)

    status = world.status()
    assert (status.state, status.code) == (DocumentState.FAILED, CODE_NOT_PROCESSED)
    assert status.reason and "after 4 attempts" in status.reason and DOC in status.reason
    assert "throttling" not in status.reason  # no internals in the user's words


def test_a_new_version_replaces_the_old_versions_chunks(world: World) -> None:
    world.ingest(version="v1", sequencer="10")
    assert world.index.versions() == {"v1"}

    result = world.ingest(b"A shorter second version about failover drills.", version="v2", sequencer="20")

    assert result.outcome is IngestOutcome.READY
    assert world.index.versions() == {"v2"}
    assert world.status().version_id == "v2"


def test_a_late_event_of_the_old_version_changes_nothing(world: World) -> None:
    world.ingest(b"The second version.", version="v2", sequencer="20")
    calls = world.embedder.calls

    result = world.ingest(version="v1", sequencer="10")

    assert result.outcome is IngestOutcome.SKIPPED
    assert world.embedder.calls == calls and world.index.versions() == {"v2"}
    assert world.status().version_id == "v2"


def test_a_newer_version_waits_while_an_older_one_holds_its_lease(world: World) -> None:
    world.embedder.failures = [DependencyUnavailable("throttled")]
    with pytest.raises(DependencyUnavailable):
        world.ingest(version="v1", sequencer="10")  # v1 crashed mid-way, its lease still running

    with pytest.raises(DocumentBusy):
        world.ingest(version="v2", sequencer="20")

    world.documents.now += 10_000  # the lease is over
    assert world.ingest(version="v2", sequencer="20").outcome is IngestOutcome.READY


def test_a_duplicate_delivery_of_a_finished_event_does_no_work(world: World) -> None:
    world.ingest()
    calls = world.embedder.calls
    assert world.ingest().outcome is IngestOutcome.SKIPPED
    assert world.embedder.calls == calls


def test_delete_removes_the_vectors_and_marks_deleted(world: World) -> None:
    world.ingest(owner=OWNER)
    world.ingest(owner=OTHER)

    result = world.service.remove(OWNER, DOC, sequencer="30")

    assert result.outcome is IngestOutcome.DELETED
    assert world.status().state is DocumentState.DELETED
    assert world.index.versions(OWNER) == set()
    assert world.index.versions(OTHER) == {"v1"}  # another owner's document of the same id is untouched


def test_a_stale_delete_keeps_the_newer_version(world: World) -> None:
    world.ingest(version="v2", sequencer="20")
    assert world.service.remove(OWNER, DOC, sequencer="10").outcome is IngestOutcome.SKIPPED
    assert world.index.versions() == {"v2"}


def test_a_delete_during_an_ingest_leaves_no_chunks_behind(world: World) -> None:
    class DeletingEmbedder(FakeEmbedder):
        def embed(self, text: str, *, deadline: Deadline) -> list[float]:
            if self.calls == 0:
                world.service.remove(OWNER, DOC, sequencer="99")  # the user deletes it meanwhile
            return super().embed(text, deadline=deadline)

    world.service._embedder = DeletingEmbedder()
    result = world.ingest()

    assert result.outcome is IngestOutcome.SKIPPED
    assert world.status().state is DocumentState.DELETED
    assert not world.index.vectors


def test_an_expired_deadline_is_a_retry_not_a_failure() -> None:
    world = World()
    ticks = iter([0.0] + [1_000.0] * 1_000)  # the deadline starts at 0 and is over at the first check
    world.service._clock = lambda: next(ticks)
    with pytest.raises(IngestDeadlineExceeded):
        world.ingest()
    assert world.status().state is DocumentState.INGESTING
    assert not world.index.vectors


# --- an index rebuild (tools/rebuild_index.py's forced events) racing new uploads --------------------------------
V2 = b"The second version, uploaded during the rebuild, about failover drills."


def test_a_rebuild_re_embeds_the_ready_version_and_removes_any_other_versions_chunks(world: World) -> None:
    world.ingest(version="v1", sequencer="10")
    chunks = world.embedder.calls
    stray = next(iter(world.index.vectors.values()))
    world.index.upsert([replace(stray, version="v0")])  # a chunk an older version left behind

    result = world.rebuild(version="v1")

    assert (result.outcome, result.chunks) == (IngestOutcome.READY, chunks)
    assert world.embedder.calls == 2 * chunks and world.index.versions() == {"v1"}
    status = world.status()
    assert (status.state, status.version_id, status.chunk_count) == (DocumentState.READY, "v1", chunks)
    assert status.sequencer == "10".rjust(32, "0")  # still the upload's event: a later upload still wins


def test_an_upload_during_a_rebuild_waits_for_it_then_replaces_its_chunks(world: World) -> None:
    world.ingest(version="v1", sequencer="10")
    busy: list[Exception] = []

    def upload_v2() -> None:
        try:
            world.ingest(V2, version="v2", sequencer="20")
        except DocumentBusy as error:  # the rebuild holds the document's lease: SQS brings v2 back later
            busy.append(error)

    world.embedder.meanwhile = [upload_v2]
    assert world.rebuild(version="v1").outcome is IngestOutcome.READY
    assert busy and world.index.versions() == {"v1"}

    assert world.ingest(V2, version="v2", sequencer="20").outcome is IngestOutcome.READY  # the redelivery
    assert world.index.versions() == {"v2"} and world.status().version_id == "v2"


def test_a_rebuild_of_a_version_replaced_meanwhile_writes_nothing(world: World) -> None:
    world.ingest(version="v1", sequencer="10")
    world.ingest(V2, version="v2", sequencer="20")  # uploaded after the rebuild listed the bucket
    calls = world.embedder.calls

    assert world.rebuild(version="v1").outcome is IngestOutcome.SKIPPED

    assert world.embedder.calls == calls and world.index.versions() == {"v2"}


def test_a_rebuild_arriving_while_a_newer_upload_is_ingested_writes_nothing(world: World) -> None:
    world.ingest(version="v1", sequencer="10")
    rebuilt: list[IngestResult] = []
    world.embedder.meanwhile = [lambda: rebuilt.append(world.rebuild(version="v1"))]

    assert world.ingest(V2, version="v2", sequencer="20").outcome is IngestOutcome.READY

    assert [r.outcome for r in rebuilt] == [IngestOutcome.SKIPPED]
    assert world.index.versions() == {"v2"} and world.status().version_id == "v2"


def test_a_rebuild_that_fails_on_every_receive_ends_failed_with_a_reason(world: World) -> None:
    world.ingest(version="v1", sequencer="10")
    world.index.fail_upserts = 10
    for _ in range(4):
        with pytest.raises(DependencyUnavailable):
            world.rebuild(version="v1")
        world.documents.now += 10_000  # each redelivery comes after the lease (the visibility timeout is longer)

    assert world.service.give_up(OWNER, DOC, sequencer="0", receives=4, rebuilt_version="v1")

    status = world.status()
    assert (status.state, status.code) == (DocumentState.FAILED, CODE_NOT_PROCESSED)
