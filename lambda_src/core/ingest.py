"""The ingest pipeline for one region: an S3 object event in, a document `ready` (or `failed` with a reason) out.

Why the steps are in this order:
- `claim` first: the event takes the document on in this region under a lease, conditional on S3's sequencer,
  so a late event never overwrites a newer version's state and two versions of one document are never
  ingested at once in one region (the newer waits for the older's lease, then goes).
- the size is checked before the object is downloaded, then parse, chunk, embed (paced by the embedder).
- upsert, then delete the other versions' chunks, then `ready`: the old version answers until the new one is
  stored, and the delete runs while this event still holds the lease (no newer version's chunks can exist).
- a `DocumentRejected` (and a chunk the embedder or the index refuses as invalid) is terminal: `failed` with
  the user's reason, the message is acknowledged and never retried. Anything transient raises, so SQS
  redelivers the message; `give_up` on its last receive marks the document failed before the DLQ.

- an index rebuild (a forced event) goes through the same steps under the recorded event's sequencer and
  lease (`_reclaim`), so it can never leave an old version's chunks beside a version uploaded meanwhile: the
  newest version wins by S3's sequencer, whichever of the two runs first.

There is no idempotency table: the processing itself is idempotent. Vector keys are deterministic per
document, version and chunk (re-ingest overwrites), and every state change is conditional on the event's
sequencer, so a duplicate delivery either redoes the same writes or finds its work already recorded.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from core.documents import (
    Claim,
    DocumentLimits,
    DocumentParser,
    DocumentRejected,
    DocumentState,
    DocumentStore,
    TextChunker,
    normalize_sequencer,
)
from core.errors import DependencyUnavailable, DomainError
from core.knowledge import ChunkVector, VectorIndex, VectorRejected, chunk_key
from core.resilience import Clock, Deadline

_log = logging.getLogger(__name__)

LEASE_MARGIN_S = 60.0  # a claim outlives the deadline by this much before another event may take over
BUSY_RETRY_AFTER_S = 30

# The pipeline's own failure codes, beside core.documents.RejectionCode's.
CODE_NOT_EMBEDDABLE = "not_embeddable"
CODE_NOT_INDEXABLE = "not_indexable"
CODE_NOT_PROCESSED = "not_processed"


class EmbeddingRejected(DomainError):
    """The embedding model refused a text as invalid (ValidationException): retrying cannot help."""

    status = 500


class IngestDeadlineExceeded(DomainError):
    """The document did not finish inside its deadline: transient (quota contention), the message is retried."""

    status = 503


class DocumentBusy(DependencyUnavailable):
    """An older version of the document is still being ingested in this region: try again after its lease."""


class Embedder(Protocol):
    def embed(self, text: str, *, deadline: Deadline) -> list[float]:
        """The text's embedding, inside the deadline. Raises EmbeddingRejected (never retried),
        DependencyUnavailable (throttled past the retry budget, breaker open, model unavailable) or
        IngestDeadlineExceeded."""
        ...


class IngestOutcome(StrEnum):
    READY = "ready"
    FAILED = "failed"
    DELETED = "deleted"
    SKIPPED = "skipped"  # a stale or already-finished event: nothing changed


@dataclass(frozen=True, kw_only=True)
class ObjectVersion:
    """One version of an uploaded document, as its S3 event and HEAD describe it."""

    owner: str
    document_id: str
    version_id: str
    sequencer: str
    size: int
    content_type: str
    name: str


@dataclass(frozen=True, kw_only=True)
class IngestResult:
    outcome: IngestOutcome
    chunks: int = 0
    code: str | None = None
    reason: str | None = None


def vector_version(version_id: str) -> str:
    """The version as a vector-key segment: S3 version ids usually fit; anything else is hashed (stable)."""
    try:
        chunk_key("o", "d", version_id, 0)
    except ValueError:
        return "h" + hashlib.sha256(version_id.encode()).hexdigest()[:40]
    return version_id


def not_processed_reason(receives: int, document_id: str) -> str:
    """What the user reads when every attempt failed on a dependency: no internals, a reference to quote."""
    return (
        f"the document could not be indexed after {receives} attempts (a service it needs was unavailable) and "
        f"was set aside for an operator; upload it again later, or quote document {document_id} when reporting it"
    )


NOT_EMBEDDABLE_REASON = (
    "part of the document's text was refused by the embedding model: check that it is ordinary text, "
    "or split the document and upload the parts"
)
NOT_INDEXABLE_REASON = (
    "the document's passages could not be stored in the search index: split the document into smaller "
    "files and upload those"
)


class IngestService:
    """Parse, chunk, embed and index one document version in one region; keep its status truthful."""

    def __init__(
        self,
        *,
        documents: DocumentStore,
        index: VectorIndex,
        parser: DocumentParser,
        chunker: TextChunker,
        embedder: Embedder,
        limits: DocumentLimits,
        region: str,
        deadline_s: float,
        clock: Clock = time.monotonic,
        wall_clock: Clock = time.time,
    ) -> None:
        self._documents = documents
        self._index = index
        self._parser = parser
        self._chunker = chunker
        self._embedder = embedder
        self._limits = limits
        self._region = region
        self._deadline_s = deadline_s
        self._clock = clock
        self._wall = wall_clock

    # --- object created --------------------------------------------------------------------------------
    def ingest(
        self, obj: ObjectVersion, fetch: Callable[[], bytes], *, deadline_s: float | None = None, force: bool = False
    ) -> IngestResult:
        """`fetch` downloads the object's bytes; it is called only once the size is known to be within limits.
        `deadline_s` lowers the deadline (the Lambda's remaining time), never raises it. `force` (an index
        rebuild, tools/rebuild_index.py): a version already `ready` here is embedded and indexed again, holding
        the document's lease (see `_reclaim`)."""
        sequencer = normalize_sequencer(obj.sequencer)
        seconds = self._deadline_s if deadline_s is None else min(deadline_s, self._deadline_s)
        deadline = Deadline(seconds, self._clock)
        claim = self._documents.claim(
            obj.owner,
            obj.document_id,
            self._region,
            sequencer=sequencer,
            version_id=obj.version_id,
            name=obj.name,
            content_type=obj.content_type,
            size=obj.size,
            lease_until=self._lease_until(),
        )
        if claim is Claim.STALE and force:
            # A rebuild of a version already recorded here: it takes that event's ingest again, under its lease.
            claim, sequencer = self._reclaim(obj)
        if claim is Claim.STALE:
            return IngestResult(outcome=IngestOutcome.SKIPPED)
        if claim is Claim.BUSY:
            raise DocumentBusy(
                "another version of the document is still being indexed; try again later",
                retry_after=BUSY_RETRY_AFTER_S,
            )
        version = vector_version(obj.version_id)
        try:
            self._limits.check_size(obj.size)  # before downloading anything
            parsed = self._parser.parse(fetch(), content_type=obj.content_type)
            chunks = self._chunker.chunk(parsed)
            if not chunks:
                raise DocumentRejected.empty("the file has no passages of text")
            vectors = []
            for chunk in chunks:
                self._check(deadline)
                vectors.append(
                    ChunkVector(
                        owner=obj.owner,
                        document_id=obj.document_id,
                        version=version,
                        chunk_index=chunk.index,
                        vector=self._embedder.embed(chunk.text, deadline=deadline),
                        text=chunk.text,
                        page=chunk.page if parsed.paginated else None,
                    )
                )
            self._check(deadline)
            self._index.upsert(vectors)
            self._index.delete_document(obj.owner, obj.document_id, keep_version=version)
        except DocumentRejected as rejected:
            return self._fail(obj, sequencer, rejected.code.value, rejected.reason)
        except EmbeddingRejected as error:
            _log.warning("embedding refused for document %s: %s", obj.document_id, error.message)
            return self._fail(obj, sequencer, CODE_NOT_EMBEDDABLE, NOT_EMBEDDABLE_REASON)
        except VectorRejected as error:
            _log.warning("vector index refused document %s: %s", obj.document_id, error.message)
            return self._fail(obj, sequencer, CODE_NOT_INDEXABLE, NOT_INDEXABLE_REASON)
        if self._documents.mark_ready(
            obj.owner, obj.document_id, self._region, sequencer=sequencer, chunk_count=len(vectors)
        ):
            return IngestResult(outcome=IngestOutcome.READY, chunks=len(vectors))
        self._clean_up_superseded(obj.owner, obj.document_id, version)
        return IngestResult(outcome=IngestOutcome.SKIPPED)

    def _lease_until(self) -> float:
        return self._wall() + self._deadline_s + LEASE_MARGIN_S

    def _reclaim(self, obj: ObjectVersion) -> tuple[Claim, str]:
        """A forced event (an index rebuild) carries no sequencer of its own: it re-ingests the version the
        record holds for this region, under that event's sequencer, holding the document's lease as any ingest
        does. Then the rest is an ordinary ingest: the same deterministic vectors written again, every other
        version's chunks deleted (no newer version can have chunks while the lease runs: a newer event waits,
        BUSY, and replaces these when it goes), `ready` again. A version that is no longer the recorded one
        (a newer upload took over, or the document was deleted) is STALE: nothing of it is written."""
        record = self._documents.get(obj.owner, obj.document_id)
        status = record.status_in(self._region) if record is not None and record.deleted_at is None else None
        if status is None or status.sequencer is None or status.version_id != obj.version_id:
            return Claim.STALE, ""
        claim = self._documents.reclaim(
            obj.owner,
            obj.document_id,
            self._region,
            sequencer=status.sequencer,
            version_id=obj.version_id,
            lease_until=self._lease_until(),
        )
        return claim, status.sequencer

    def _check(self, deadline: Deadline) -> None:
        if deadline.expired():
            raise IngestDeadlineExceeded("the document did not finish indexing inside its deadline; it will be retried")

    def _fail(self, obj: ObjectVersion, sequencer: str, code: str, reason: str) -> IngestResult:
        if not self._documents.mark_failed(
            obj.owner, obj.document_id, self._region, sequencer=sequencer, code=code, reason=reason
        ):
            self._clean_up_superseded(obj.owner, obj.document_id, vector_version(obj.version_id))
            return IngestResult(outcome=IngestOutcome.SKIPPED)
        # A failed document answers nothing: neither a partial upload of this version nor the replaced one.
        self._index.delete_document(obj.owner, obj.document_id)
        return IngestResult(outcome=IngestOutcome.FAILED, code=code, reason=reason)

    def _clean_up_superseded(self, owner: str, document_id: str, version: str) -> None:
        """A newer event took the document over while this one worked: leave the index as the newer state says."""
        record = self._documents.get(owner, document_id)
        status = record.status_in(self._region) if record else None
        deleted = record is None or record.deleted_at is not None
        if deleted or status is None or status.state in (DocumentState.DELETED, DocumentState.FAILED):
            self._index.delete_document(owner, document_id)
        elif status.state is DocumentState.READY and status.version_id is not None:
            kept = vector_version(status.version_id)
            if kept != version:
                self._index.delete_document(owner, document_id, keep_version=kept)
        # still ingesting (a newer event under its lease): it deletes every other version's chunks when it ends

    # --- object removed --------------------------------------------------------------------------------
    def remove(self, owner: str, document_id: str, *, sequencer: str) -> IngestResult:
        """The object is gone (deleted, or a delete marker is current): its passages go, the status says so.
        State first (conditional), vectors second: a stale delete must not remove a newer version's chunks."""
        if not self._documents.mark_deleted(owner, document_id, self._region, sequencer=normalize_sequencer(sequencer)):
            return IngestResult(outcome=IngestOutcome.SKIPPED)
        self._index.delete_document(owner, document_id)
        return IngestResult(outcome=IngestOutcome.DELETED)

    # --- the message's last receive ----------------------------------------------------------------------
    def give_up(
        self, owner: str, document_id: str, *, sequencer: str, receives: int, rebuilt_version: str | None = None
    ) -> bool:
        """Every attempt failed on a dependency: `failed` with a reason (if this event still owns the ingest),
        so the document never stays `ingesting`. True if the status changed. The passages are removed when
        the index can be reached; if it cannot, a redrive (`make redrive`) finishes the work. A rebuild's
        forced event (`rebuilt_version`: the version it re-ingested) finishes under the recorded sequencer it
        reclaimed, since it has none of its own."""
        sequencer = normalize_sequencer(sequencer)
        if rebuilt_version is not None:
            record = self._documents.get(owner, document_id)
            status = record.status_in(self._region) if record is not None else None
            if status is not None and status.version_id == rebuilt_version and status.sequencer:
                sequencer = status.sequencer
        marked = self._documents.mark_failed(
            owner,
            document_id,
            self._region,
            sequencer=sequencer,
            code=CODE_NOT_PROCESSED,
            reason=not_processed_reason(receives, document_id),
        )
        if marked:
            try:
                self._index.delete_document(owner, document_id)
            except DomainError as error:
                _log.warning("passages of failed document %s not removed: %s", document_id, error.message)
        return marked
