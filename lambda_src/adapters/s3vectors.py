"""Amazon S3 Vectors as the knowledge VectorIndex. The same code runs against AWS and the local emulator
(local/s3vectors_emulator.py): only the client's endpoint differs.

Layout of one vector: key `<owner>/<document id>/<version>/<chunk index>` (core.knowledge.chunk_key), so
re-ingest overwrites; filterable metadata `owner`, `document_id`, `version`, `chunk_index`, `page` (a few
hundred bytes, far under the 2 KB filterable cap); the chunk text under `_page_content`, which the index
must declare non-filterable (NON_FILTERABLE_KEYS): filterable metadata is capped at 2 KB per vector, so
chunks over about 2 KB would otherwise be refused. Every query and every delete is filtered on the owner,
and results are checked again here, so a passage of another owner is never returned.

Deletes find a document's chunks with QueryVectors filtered on owner and document, and remove them with
DeleteVectors, until a round finds nothing new: O(document), where a ListVectors scan would be O(index).
This relies on ENHANCED index mode (filter before search, so a round returns every match up to top-k;
per the API model the only mode for buckets created after 30 September 2026): a CLASSIC index may return
fewer matches than exist. Queries that filter or return metadata need both s3vectors:QueryVectors and
s3vectors:GetVectors.

Retries are botocore's (one retry layer): what reaches this module failed after them. Throttling, 5xx,
timeouts and lost connections leave as DependencyUnavailable (503 + Retry-After), a missing bucket or index
or denied access as VectorIndexMisconfigured, a refused request as VectorRejected; anything else (a bug)
passes through unchanged, to be seen in full. A query given a `timeout_s` (the chat path's retrieval deadline)
runs as one attempt on a client whose connect and read timeouts fit in it, so a slow index costs the answer
its documents, never its deadline.
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from botocore.config import Config
from botocore.exceptions import ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotocoreConnectionError

from core.errors import DependencyUnavailable
from core.knowledge import (
    MAX_TOP_K,
    ChunkVector,
    Passage,
    VectorIndexMisconfigured,
    VectorRejected,
    parse_chunk_key,
)

TEXT_KEY = "_page_content"  # langchain-aws AmazonS3Vectors' key for the text, so both can share an index
NON_FILTERABLE_KEYS = (TEXT_KEY,)  # for the index's metadataConfiguration (CfnIndex in the stack)
PUT_BATCH = 500  # vectors per PutVectors (API limit)
DELETE_BATCH = 500  # keys per DeleteVectors (API limit)
MAX_REQUEST_BYTES = 16 * 1024 * 1024  # the API's payload limit is 20 MiB: keep a margin for framing
MAX_TEXT_BYTES = 36 * 1024  # 40 KB of metadata per vector, minus room for the filterable keys
MIN_QUERY_S = 0.25  # a search given less of its deadline is not started
QUERY_CONNECT_TIMEOUT_S = 0.5  # at most; half the budget when that is less
THROTTLED_RETRY_AFTER_S = 2
UNREACHABLE_RETRY_AFTER_S = 5
_THROTTLING = frozenset({"TooManyRequestsException", "ThrottlingException", "SlowDown"})
_TRANSIENT = frozenset({"ServiceUnavailableException", "InternalServerException", "RequestTimeoutException"})
_MISCONFIGURED = frozenset(
    {"NotFoundException", "AccessDeniedException", "KmsDisabledException", "KmsInvalidKeyUsageException",
     "KmsInvalidStateException", "KmsNotFoundException"}
)  # fmt: skip


class S3VectorIndex:
    """core.knowledge.VectorIndex on one S3 Vectors index (one per region)."""

    def __init__(
        self,
        *,
        client: Any,
        bucket_name: str,
        index_name: str,
        dimension: int,
        max_request_bytes: int = MAX_REQUEST_BYTES,
        batch_size: int = PUT_BATCH,
        client_factory: Callable[[Config], Any] | None = None,
    ) -> None:
        """`client_factory(config)` makes a client with that botocore Config: queries given a `timeout_s` run on
        one whose timeouts fit in it (one kept per quarter second); without a factory they use `client`."""
        if not 1 <= batch_size <= PUT_BATCH:
            raise ValueError(f"batch_size must be 1..{PUT_BATCH}, got {batch_size}")
        self._client = client
        self._client_factory = client_factory
        self._timed: dict[float, Any] = {}
        self._timed_lock = threading.Lock()
        self._where = {"vectorBucketName": bucket_name, "indexName": index_name}
        self._name = f"{bucket_name}/{index_name}"
        self._dimension = dimension
        self._max_request_bytes = max_request_bytes
        self._batch_size = batch_size

    # --- writes --------------------------------------------------------------------------------------
    def upsert(self, chunks: Sequence[ChunkVector]) -> None:
        batch: list[dict[str, Any]] = []
        batch_bytes = 0
        for chunk in chunks:
            entry = self._entry(chunk)
            size = len(json.dumps(entry)) + 2  # its share of the request body, separators included
            if size > self._max_request_bytes:
                raise VectorRejected(f"chunk {chunk.key} is {size} bytes, over the {self._max_request_bytes} limit")
            if batch and (len(batch) == self._batch_size or batch_bytes + size > self._max_request_bytes):
                self._put(batch)
                batch, batch_bytes = [], 0
            batch.append(entry)
            batch_bytes += size
        if batch:
            self._put(batch)

    def _entry(self, chunk: ChunkVector) -> dict[str, Any]:
        if len(chunk.vector) != self._dimension:
            raise VectorRejected(
                f"chunk {chunk.key} has {len(chunk.vector)} dimensions; the index {self._name} has {self._dimension}"
            )
        text_bytes = len(chunk.text.encode())
        if text_bytes > MAX_TEXT_BYTES:
            raise VectorRejected(
                f"chunk {chunk.key} has {text_bytes} bytes of text; at most {MAX_TEXT_BYTES} fit in a vector's "
                "metadata: chunk the document smaller"
            )
        metadata: dict[str, Any] = {
            "owner": chunk.owner,
            "document_id": chunk.document_id,
            "version": chunk.version,
            "chunk_index": chunk.chunk_index,
            TEXT_KEY: chunk.text,
        }
        if chunk.page is not None:
            metadata["page"] = chunk.page
        return {"key": chunk.key, "data": {"float32": [float(v) for v in chunk.vector]}, "metadata": metadata}

    def _put(self, batch: list[dict[str, Any]]) -> None:
        with self._translated("store document chunks"):
            self._client.put_vectors(**self._where, vectors=batch)

    def delete_document(self, owner: str, document_id: str, *, keep_version: str | None = None) -> int:
        conditions: list[dict[str, Any]] = [{"owner": {"$eq": owner}}, {"document_id": {"$eq": document_id}}]
        if keep_version is not None:
            conditions.append({"version": {"$ne": keep_version}})
        probe = [1.0] + [0.0] * (self._dimension - 1)  # any non-zero vector: the filter does the selecting
        deleted: set[str] = set()
        while True:
            with self._translated("find a document's chunks"):
                found = self._client.query_vectors(
                    **self._where, queryVector={"float32": probe}, topK=MAX_TOP_K, filter={"$and": conditions}
                )["vectors"]
            keys = [v["key"] for v in found if self._belongs(v["key"], owner, document_id, keep_version)]
            fresh = [key for key in keys if key not in deleted]
            if not fresh:  # nothing left, or only keys already deleted that the index still shows
                return len(deleted)
            for start in range(0, len(fresh), DELETE_BATCH):
                with self._translated("delete a document's chunks"):
                    self._client.delete_vectors(**self._where, keys=fresh[start : start + DELETE_BATCH])
            deleted.update(fresh)

    @staticmethod
    def _belongs(key: str, owner: str, document_id: str, keep_version: str | None) -> bool:
        """Second check beside the service's filter: never delete a chunk of another owner or document."""
        parsed = parse_chunk_key(key)
        return (
            parsed is not None
            and parsed.owner == owner
            and parsed.document_id == document_id
            and parsed.version != keep_version
        )

    # --- reads ---------------------------------------------------------------------------------------
    def query(self, owner: str, vector: Sequence[float], k: int, *, timeout_s: float | None = None) -> list[Passage]:
        if not 1 <= k <= MAX_TOP_K:
            raise ValueError(f"k must be 1..{MAX_TOP_K}, got {k}")
        if len(vector) != self._dimension:
            raise VectorRejected(f"query vector has {len(vector)} dimensions; the index has {self._dimension}")
        client = self._client if timeout_s is None else self._client_within(timeout_s)
        with self._translated("search your documents"):
            response = client.query_vectors(
                **self._where,
                queryVector={"float32": [float(v) for v in vector]},
                topK=k,
                filter={"owner": {"$eq": owner}},
                returnMetadata=True,
                returnDistance=True,
            )
        cosine = response.get("distanceMetric", "cosine") == "cosine"
        passages = []
        for found in response["vectors"]:
            metadata = found.get("metadata") or {}
            if metadata.get("owner") != owner:  # the filter should make this impossible; never trust it alone
                continue
            distance = float(found.get("distance", 0.0))
            page = metadata.get("page")
            passages.append(
                Passage(
                    document_id=str(metadata.get("document_id", "")),
                    chunk_index=int(metadata.get("chunk_index", 0)),
                    page=int(page) if page is not None else None,
                    text=str(metadata.get(TEXT_KEY, "")),
                    score=1.0 - distance if cosine else 1.0 / (1.0 + distance),
                    version=str(metadata.get("version", "")),
                )
            )
        return passages

    def _client_within(self, timeout_s: float) -> Any:
        """A client whose one attempt (connect + read) ends within `timeout_s`: the retrieval deadline's rest.
        botocore fixes timeouts per client, so one is kept per quarter second (rounded down), made on first use."""
        if self._client_factory is None:
            return self._client
        budget = math.floor(timeout_s * 4) / 4
        if budget < MIN_QUERY_S:
            raise DependencyUnavailable(
                f"could not search your documents: only {max(timeout_s, 0.0):.2f} s of the search's deadline was "
                f"left; try again in {UNREACHABLE_RETRY_AFTER_S} s",
                retry_after=UNREACHABLE_RETRY_AFTER_S,
            )
        with self._timed_lock:
            client = self._timed.get(budget)
            if client is None:
                connect = min(QUERY_CONNECT_TIMEOUT_S, budget / 2)
                config = Config(
                    retries={"mode": "standard", "total_max_attempts": 1},  # no time for a second attempt
                    connect_timeout=connect,
                    read_timeout=budget - connect,
                )
                client = self._timed[budget] = self._client_factory(config)
        return client

    # --- errors --------------------------------------------------------------------------------------
    @contextmanager
    def _translated(self, doing: str) -> Iterator[None]:
        try:
            yield
        except ClientError as error:
            translated = self._domain_error(error, doing)
            if translated is None:
                raise  # anything else is a bug to see in full
            raise translated from error
        except (BotocoreConnectionError, HTTPClientError) as error:  # connect/read timeouts, resets
            raise DependencyUnavailable(
                f"could not {doing}: the vector index did not answer in time; try again in "
                f"{UNREACHABLE_RETRY_AFTER_S} s",
                retry_after=UNREACHABLE_RETRY_AFTER_S,
            ) from error

    def _domain_error(self, error: ClientError, doing: str) -> Exception | None:
        code = str(error.response.get("Error", {}).get("Code", ""))
        message = str(error.response.get("Error", {}).get("Message", ""))
        status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        if code in _THROTTLING or status == 429:
            return DependencyUnavailable(
                f"could not {doing}: the vector index is throttling requests; try again in {THROTTLED_RETRY_AFTER_S} s",
                retry_after=THROTTLED_RETRY_AFTER_S,
            )
        if code in _TRANSIENT or status >= 500:
            return DependencyUnavailable(
                f"could not {doing}: the vector index failed ({code or status}); try again in "
                f"{THROTTLED_RETRY_AFTER_S} s",
                retry_after=THROTTLED_RETRY_AFTER_S,
            )
        if code in _MISCONFIGURED:
            return VectorIndexMisconfigured(
                f"vector index {self._name} is not usable ({code}: {message}): check the deployment's "
                "vector bucket, index name, region and IAM permissions"
            )
        if code == "ValidationException":
            return VectorRejected(f"vector index {self._name} rejected the request: {message}")
        return None
