"""Knowledge (RAG): document chunks stored as vectors, passages found by similarity, and the vector index port.

Everything is scoped by its owner (the caller's Cognito `sub`): chunks carry it, and a VectorIndex filters
every query and every delete on it, so one user's passages can never reach another user's answer.
Chunk keys are deterministic (`<owner>/<document id>/<version>/<chunk index>`) so that re-ingesting the
same version overwrites instead of duplicating, and replacing a version is "write the new chunks, then
delete every chunk of the document but the new version's": at no moment has the document no passages.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from core.errors import DomainError

MAX_TOP_K = 100  # S3 Vectors answers at most 100 neighbours per query; the port promises no more
# Printable ASCII without "/" (the key separator) or spaces, and short: the owner, document id and version
# are filterable metadata, which S3 Vectors caps at 2 KB per vector. Hash a longer version id first.
_SEGMENT = re.compile(r"[!-.0-~]{1,128}")


class VectorIndexMisconfigured(DomainError):
    """The index or its bucket does not exist, or access to it is denied: a deployment fault (alarm on it);
    retrying cannot help."""

    status = 500


class VectorRejected(DomainError):
    """The index refused a write or a query as invalid (wrong dimension, metadata too large): a bug or a bad
    chunk, never transient. Ingest turns it into a failed document with this message as the reason."""

    status = 500


def chunk_key(owner: str, document_id: str, version: str, chunk_index: int) -> str:
    """The vector key of one chunk: the same chunk of the same version always gets the same key."""
    for name, value in (("owner", owner), ("document_id", document_id), ("version", version)):
        if not _SEGMENT.fullmatch(value):
            raise ValueError(f"{name} must be 1-128 printable ASCII characters without '/' or spaces, got {value!r}")
    if chunk_index < 0:
        raise ValueError(f"chunk_index must be >= 0, got {chunk_index}")
    return f"{owner}/{document_id}/{version}/{chunk_index}"


@dataclass(frozen=True, kw_only=True)
class ParsedKey:
    owner: str
    document_id: str
    version: str
    chunk_index: int


def parse_chunk_key(key: str) -> ParsedKey | None:
    """The parts of a key made by `chunk_key`, or None for a key this module did not make."""
    parts = key.split("/")
    if len(parts) != 4 or not parts[3].isdigit():
        return None
    owner, document_id, version, index = parts
    if not all(_SEGMENT.fullmatch(part) for part in (owner, document_id, version)):
        return None
    return ParsedKey(owner=owner, document_id=document_id, version=version, chunk_index=int(index))


@dataclass(frozen=True, kw_only=True)
class ChunkVector:
    """One chunk of one version of a document, with its embedding, ready to be stored."""

    owner: str
    document_id: str
    version: str
    chunk_index: int
    vector: Sequence[float]
    text: str
    page: int | None = None  # 1-based; None for formats without pages

    def __post_init__(self) -> None:
        chunk_key(self.owner, self.document_id, self.version, self.chunk_index)  # validates the parts
        if not self.vector:
            raise ValueError("vector must not be empty")
        if not self.text:
            raise ValueError("text must not be empty: an empty chunk can never be cited")
        if self.page is not None and self.page < 1:
            raise ValueError(f"page is 1-based, got {self.page}")

    @property
    def key(self) -> str:
        return chunk_key(self.owner, self.document_id, self.version, self.chunk_index)


@dataclass(frozen=True, kw_only=True)
class Passage:
    """A chunk found for a question: what the answer may cite (document, page, snippet)."""

    document_id: str
    chunk_index: int
    page: int | None
    text: str
    score: float  # similarity, higher is closer: cosine similarity for a cosine index, 1/(1+d) for euclidean
    version: str = ""  # the document version the chunk was cut from (its vector key's version segment)

    def snippet(self, max_chars: int = 300) -> str:
        """The passage cut at a word boundary for a citation under an answer."""
        text = " ".join(self.text.split())
        if len(text) <= max_chars:
            return text
        cut = text[: max_chars - 1].rsplit(" ", 1)[0] or text[: max_chars - 1]
        return cut + "…"


class VectorIndex(Protocol):
    """Where chunk vectors live. Failures: core.errors.DependencyUnavailable when the store is throttling or
    unreachable (retry later), VectorIndexMisconfigured, VectorRejected."""

    def upsert(self, chunks: Sequence[ChunkVector]) -> None:
        """Store the chunks, replacing any with the same key. Not atomic across a large batch: a failure may
        leave some stored, and calling again with the same chunks completes it."""
        ...

    def delete_document(self, owner: str, document_id: str, *, keep_version: str | None = None) -> int:
        """Delete the document's chunks (all of them, or all but `keep_version`'s); the number deleted."""
        ...

    def query(self, owner: str, vector: Sequence[float], k: int, *, timeout_s: float | None = None) -> list[Passage]:
        """Up to `k` (1..MAX_TOP_K) of `owner`'s passages nearest to `vector`, best first; never another's.
        `timeout_s`: the call ends within about that many seconds (DependencyUnavailable if it cannot)."""
        ...
