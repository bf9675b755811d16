"""core.workflow.ChunkSource on what ingest stored: the document's status item in this region (state, version,
chunk count: adapters.documents) and its chunks' text in S3 Vectors (adapters.s3vectors: key
`<owner>/<document id>/<version>/<index>`, text under `_page_content`).

The owner check is the table's partition: the status is read under the caller's sub, so another user's document
is simply not found (404, never "forbidden": its existence is not revealed). Only a `ready` document has chunks.
GetVectors takes at most 100 keys per call; it needs s3vectors:GetVectors on the index only.
"""

from __future__ import annotations

from typing import Any

from adapters.aws_errors import dependency
from adapters.s3vectors import TEXT_KEY
from core.documents import DocumentState
from core.errors import NotFound
from core.knowledge import chunk_key
from core.workflow import ChunkRef

_GET_BATCH = 100
_VECTORS = "S3 Vectors (the knowledge index)"


class IngestedChunks:
    def __init__(self, *, documents: Any, s3vectors: Any, bucket: str, index: str, region: str) -> None:
        """`documents`: adapters.documents.DynamoDocumentStore (the pipeline's view: status per region)."""
        self._documents = documents
        self._client = s3vectors
        self._bucket = bucket
        self._index = index
        self._region = region

    def _version(self, owner: str, document_id: str) -> tuple[str, int]:
        record = self._documents.get(owner, document_id)
        status = record.status_in(self._region) if record is not None and record.deleted_at is None else None
        if status is None or status.state != DocumentState.READY or not status.version_id or not status.chunk_count:
            if record is None or record.deleted_at is not None:
                raise NotFound(f"document {document_id} was not found")
            raise NotFound(f"document {document_id} is not ready to summarize (wait until its status is ready)")
        return status.version_id, int(status.chunk_count)

    def outline(self, owner: str, document_id: str) -> list[ChunkRef]:
        version, count = self._version(owner, document_id)
        found = self._get(owner, document_id, version, 0, count - 1)
        return [
            ChunkRef(index=i, chars=len(str(meta.get(TEXT_KEY, ""))), page=_page(meta))
            for i, meta in sorted(found.items())
        ]

    def texts(self, owner: str, document_id: str, first: int, last: int) -> list[str]:
        version, _ = self._version(owner, document_id)
        found = self._get(owner, document_id, version, first, last)
        return [str(found[i].get(TEXT_KEY, "")) for i in sorted(found)]

    def _get(self, owner: str, document_id: str, version: str, first: int, last: int) -> dict[int, dict[str, Any]]:
        keys = {chunk_key(owner, document_id, version, i): i for i in range(first, last + 1)}
        found: dict[int, dict[str, Any]] = {}
        ordered = list(keys)
        for start in range(0, len(ordered), _GET_BATCH):
            for vector in self._get_batch(ordered[start : start + _GET_BATCH]):
                metadata = vector.get("metadata") or {}
                if metadata.get("owner") == owner and vector["key"] in keys:  # never another owner's text
                    found[keys[vector["key"]]] = metadata
        return found

    @dependency(_VECTORS, "read a document's chunks")
    def _get_batch(self, keys: list[str]) -> list[dict[str, Any]]:
        response = self._client.get_vectors(
            vectorBucketName=self._bucket, indexName=self._index, keys=keys, returnMetadata=True
        )
        return list(response.get("vectors", []))


def _page(metadata: dict[str, Any]) -> int | None:
    page = metadata.get("page")
    return int(page) if isinstance(page, (int, float)) else None
