"""Documents for retrieval: the limits a document must respect, its text by page, and its chunks.

Pure domain: no parser and no splitter lives here (they are adapters). What lives here is what the
rest of the system agrees on: which types are accepted, which limits apply, the words a user reads
when a document is refused (each one says what to do about it), and the shape of the parse result.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import NamedTuple, Protocol

from core.errors import DomainError

_MIB = 1024 * 1024


class DocumentFormat(StrEnum):
    PDF = "pdf"
    HTML = "html"
    MARKDOWN = "markdown"
    TEXT = "text"


# Media types a client may declare, lower-case and without parameters. One format may have aliases.
CONTENT_TYPES: dict[str, DocumentFormat] = {
    "application/pdf": DocumentFormat.PDF,
    "text/html": DocumentFormat.HTML,
    "application/xhtml+xml": DocumentFormat.HTML,
    "text/markdown": DocumentFormat.MARKDOWN,
    "text/x-markdown": DocumentFormat.MARKDOWN,
    "text/plain": DocumentFormat.TEXT,
}
# The one name per format that messages suggest.
CANONICAL_CONTENT_TYPE: dict[DocumentFormat, str] = {
    DocumentFormat.PDF: "application/pdf",
    DocumentFormat.HTML: "text/html",
    DocumentFormat.MARKDOWN: "text/markdown",
    DocumentFormat.TEXT: "text/plain",
}


class RejectionCode(StrEnum):
    """Why a document was refused, for metrics, tests and the UI; `DocumentRejected.reason` is the sentence."""

    TOO_LARGE = "too_large"
    EMPTY = "empty"
    UNSUPPORTED_TYPE = "unsupported_type"
    TYPE_MISMATCH = "type_mismatch"
    MALFORMED = "malformed"
    ENCRYPTED = "encrypted"
    TOO_MANY_PAGES = "too_many_pages"
    TOO_MANY_CHARACTERS = "too_many_characters"
    NO_TEXT_LAYER = "no_text_layer"
    # A crafted file: a stream that inflates past the bound, or a page that yields implausibly much text.
    DECOMPRESSION_BOMB = "decompression_bomb"
    # Reading it would outlast the time the ingest pipeline gives one document.
    TOO_COMPLEX = "too_complex"


class DocumentRejected(DomainError):
    """A document the pipeline will never index as sent: a terminal state, not a retry.

    `code` is stable (metrics, tests); `reason` is the sentence for the user and says what to do. Build
    it with the class methods so every adapter words the same failure the same way.
    """

    status = 422

    def __init__(self, code: RejectionCode, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason

    def __repr__(self) -> str:
        return f"DocumentRejected({self.code.value!r}, {self.reason!r})"

    @classmethod
    def too_large(cls, size: int, limit: int) -> DocumentRejected:
        return cls(
            RejectionCode.TOO_LARGE,
            f"the file is {human_bytes(size)}, more than the {human_bytes(limit)} allowed: "
            "split it into smaller files and upload those",
        )

    @classmethod
    def empty(cls, what: str = "the file is empty") -> DocumentRejected:
        return cls(RejectionCode.EMPTY, f"{what}: there is no text to index, upload a file that has some")

    @classmethod
    def unsupported_type(cls, declared: str) -> DocumentRejected:
        shown = declared.strip() or "no content type"
        return cls(
            RejectionCode.UNSUPPORTED_TYPE,
            f"{shown!r} is not a supported type: upload a PDF, HTML, Markdown or plain-text file "
            f"({', '.join(sorted(CANONICAL_CONTENT_TYPE.values()))})",
        )

    @classmethod
    def type_mismatch(cls, declared: DocumentFormat, found: str) -> DocumentRejected:
        return cls(
            RejectionCode.TYPE_MISMATCH,
            f"the file was declared as {CANONICAL_CONTENT_TYPE[declared]} but {found}: "
            "upload it again with its real type (or convert it to one of the supported types)",
        )

    @classmethod
    def malformed(cls, what: str) -> DocumentRejected:
        return cls(
            RejectionCode.MALFORMED,
            f"the {what} is damaged or not valid and could not be read: open it and save (or export) it "
            "again, then upload the new file",
        )

    @classmethod
    def encrypted(cls) -> DocumentRejected:
        return cls(
            RejectionCode.ENCRYPTED,
            "the PDF is encrypted (password-protected or restricted): upload it without a password, "
            "e.g. save or print it to a new unprotected PDF",
        )

    @classmethod
    def too_many_pages(cls, limit: int, *, pages: int | None = None) -> DocumentRejected:
        has = f"has {pages:,} pages" if pages is not None else "has more pages"
        return cls(
            RejectionCode.TOO_MANY_PAGES,
            f"the PDF {has}, more than the {limit:,} allowed: split it into parts of at most "
            f"{limit:,} pages and upload those",
        )

    @classmethod
    def too_many_characters(cls, limit: int, *, at_page: int | None = None) -> DocumentRejected:
        where = f" (reached on page {at_page:,})" if at_page is not None else ""
        return cls(
            RejectionCode.TOO_MANY_CHARACTERS,
            f"the document holds more than {limit:,} characters of text{where}: split it into smaller "
            "documents and upload those",
        )

    @classmethod
    def no_text_layer(cls) -> DocumentRejected:
        return cls(
            RejectionCode.NO_TEXT_LAYER,
            "the PDF has no text layer (a scan or images only?): run OCR on it first (e.g. 'Recognize "
            "text' in your PDF tool) and upload the result",
        )

    @classmethod
    def decompression_bomb(cls, detail: str) -> DocumentRejected:
        return cls(
            RejectionCode.DECOMPRESSION_BOMB,
            f"the PDF looks crafted to exhaust memory ({detail}): if it is a genuine document, print it to "
            "a new PDF and upload that",
        )

    @classmethod
    def too_complex(cls, seconds: float, *, at_page: int, pages: int) -> DocumentRejected:
        return cls(
            RejectionCode.TOO_COMPLEX,
            f"reading the PDF took longer than {seconds:g} s (stopped at page {at_page:,} of {pages:,}): "
            "split it into smaller files, or print it to a new PDF, and upload those",
        )


def human_bytes(size: int) -> str:
    """Sizes in the unit people see in their file browser, without false precision."""
    if size >= _MIB:
        return f"{size / _MIB:.1f} MiB".replace(".0 ", " ")
    if size >= 1024:
        return f"{size / 1024:.1f} KiB".replace(".0 ", " ")
    return f"{size} bytes"


def format_for(content_type: str) -> DocumentFormat:
    """The format a declared media type names; parameters (`; charset=...`) and case do not matter."""
    media_type = content_type.split(";", 1)[0].strip().lower()
    try:
        return CONTENT_TYPES[media_type]
    except KeyError:
        raise DocumentRejected.unsupported_type(content_type) from None


@dataclass(frozen=True, kw_only=True)
class DocumentLimits:
    """What one document may cost the pipeline. Every bound exists because a real attack or accident needs it.

    `max_inflated_bytes` bounds every decompressed PDF stream and the page content of the whole document
    together (a 40 KB FlateDecode stream can inflate to 40 MB). `max_page_characters` catches a page
    that yields far more text than paper holds (a text bomb). `max_parse_seconds` turns a document that
    would outlast the ingest Lambda into a terminal rejection instead of a timeout and a retry.
    """

    max_bytes: int = 20 * _MIB
    max_pages: int = 500
    max_characters: int = 2_000_000
    max_page_characters: int = 100_000
    max_inflated_bytes: int = 64 * _MIB
    max_parse_seconds: float = 120.0
    chunk_size: int = 1_000
    chunk_overlap: int = 150

    def __post_init__(self) -> None:
        for name in ("max_bytes", "max_pages", "max_characters", "max_page_characters", "max_inflated_bytes"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if not self.max_parse_seconds > 0:
            raise ValueError(f"max_parse_seconds must be positive, got {self.max_parse_seconds!r}")
        if isinstance(self.chunk_size, bool) or not isinstance(self.chunk_size, int) or self.chunk_size <= 0:
            raise ValueError(f"chunk_size must be a positive integer, got {self.chunk_size!r}")
        if not isinstance(self.chunk_overlap, int) or not 0 <= self.chunk_overlap < self.chunk_size:
            raise ValueError(
                f"chunk_overlap must be at least 0 and less than chunk_size ({self.chunk_size}), "
                f"got {self.chunk_overlap!r}"
            )

    def check_size(self, size: int) -> None:
        if size > self.max_bytes:
            raise DocumentRejected.too_large(size, self.max_bytes)
        if size == 0:
            raise DocumentRejected.empty()

    def check_pages(self, pages: int) -> None:
        if pages > self.max_pages:
            raise DocumentRejected.too_many_pages(self.max_pages, pages=pages)

    def check_characters(self, characters: int, *, at_page: int | None = None) -> None:
        if characters > self.max_characters:
            raise DocumentRejected.too_many_characters(self.max_characters, at_page=at_page)


class PageText(NamedTuple):
    """One page's text; formats without pages (HTML, Markdown, text) are a single page 1."""

    number: int
    text: str


@dataclass(frozen=True, kw_only=True)
class ParsedDocument:
    format: DocumentFormat
    pages: tuple[PageText, ...]

    def __post_init__(self) -> None:
        numbers = [page.number for page in self.pages]
        if numbers != sorted(set(numbers)) or (numbers and numbers[0] < 1):
            raise ValueError(f"pages must be numbered from 1, ascending and unique, got {numbers[:10]}")

    @property
    def paginated(self) -> bool:
        """Whether a page number means something to the reader (a citation shows it only then)."""
        return self.format is DocumentFormat.PDF

    @property
    def character_count(self) -> int:
        return sum(len(page.text) for page in self.pages)


@dataclass(frozen=True, kw_only=True)
class Chunk:
    """A passage to embed. `page_text[start:end] == text`, so a citation can point back into the page."""

    index: int
    page: int
    text: str
    start: int
    end: int

    def __post_init__(self) -> None:
        if self.index < 0 or self.page < 1 or self.start < 0 or self.end - self.start != len(self.text):
            raise ValueError(f"inconsistent chunk: index={self.index} page={self.page} [{self.start}, {self.end})")


# C0 controls other than tab and newline, DEL, and lone surrogates (which no UTF-8 encoder, JSON body or
# embedding request accepts). PDF text extraction produces all of them from broken font maps.
_UNWANTED = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")
_TRAILING_SPACE = re.compile(r"[ \t]+\n")
_BLANK_RUNS = re.compile(r"\n{3,}")


def clean_text(text: str) -> str:
    """One normal form for every format: `\\n` line ends, no control characters, at most one blank line."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _UNWANTED.sub("", text)
    text = _TRAILING_SPACE.sub("\n", text)
    return _BLANK_RUNS.sub("\n\n", text).strip()


def has_text(pages: tuple[PageText, ...]) -> bool:
    """At least one letter or digit: whitespace, punctuation and bullets alone are not worth indexing."""
    return any(character.isalnum() for page in pages for character in page.text)


class DocumentParser(Protocol):
    def parse(self, data: bytes, *, content_type: str) -> ParsedDocument:
        """Text by page, or `DocumentRejected`; never any other exception, whatever the bytes."""
        ...


class TextChunker(Protocol):
    def chunk(self, document: ParsedDocument) -> list[Chunk]:
        """Passages in document order, each inside one page; the same document always gives the same chunks."""
        ...


# --- Document records: what the user sees of an upload, per region ------------------------------------------
# The Documents table is global, and each region ingests its own (replicated) copy of the object into its own
# vector index, so a document has one status per region. Transitions are conditional on the S3 event's
# sequencer, so an event that arrives late (SQS does not keep order) never overwrites a newer version's state.

SEQUENCER_WIDTH = 32


class DocumentState(StrEnum):
    UPLOADING = "uploading"  # the API handed out an upload form; no object event seen in this region yet
    INGESTING = "ingesting"
    READY = "ready"
    FAILED = "failed"
    DELETED = "deleted"


def normalize_sequencer(sequencer: str) -> str:
    """S3's `sequencer` as a fixed-width string, so comparing strings compares the hexadecimal values.

    S3 sequencers for one key are hexadecimal numbers of varying length; the greater value is the later event.
    Left-padding to one width makes string order (which is all a DynamoDB condition can compare) numeric order.
    """
    text = sequencer.strip().upper()
    if not text or len(text) > SEQUENCER_WIDTH or any(c not in "0123456789ABCDEF" for c in text):
        raise ValueError(f"sequencer must be 1-{SEQUENCER_WIDTH} hexadecimal digits, got {sequencer!r}")
    return text.rjust(SEQUENCER_WIDTH, "0")


@dataclass(frozen=True, kw_only=True)
class RegionStatus:
    """One region's view of a document: the state of the newest object event it has taken on.

    Stored as the region's own status item of the document, written by that region's pipeline only (so a global
    table's last writer wins per item never drops one region's status for the other's; adapters.documents). The
    API's catalog (adapters.document_catalog) reads `state`, `chunk_count`, `reason` and `updated_at` of its own
    region; the other fields are the pipeline's."""

    state: DocumentState
    version_id: str | None = None
    sequencer: str | None = None  # normalized; None while uploading (no event seen in this region yet)
    chunk_count: int | None = None  # ready only
    code: str | None = None  # failed only: a RejectionCode value or one of the pipeline's own codes
    reason: str | None = None  # failed only: the sentence for the user
    updated_at: str | None = None  # ISO 8601, UTC
    lease_until: float | None = None  # ingesting only (epoch seconds): another event waits until then


@dataclass(frozen=True, kw_only=True)
class DocumentRecord:
    """The pipeline's view of a record; `deleted_at` is set once the user deleted it (in every region). The
    pipeline never writes the record's own fields (the API's), only its region's `status` entry."""

    owner: str
    document_id: str
    name: str
    content_type: str
    size: int
    version_id: str | None = None
    created_at: str | None = None
    updated_at: str | None = None
    deleted_at: str | None = None
    status: dict[str, RegionStatus]

    def status_in(self, region: str) -> RegionStatus | None:
        return self.status.get(region)


class Claim(StrEnum):
    """What happened when an object event asked to take a document on in one region."""

    STARTED = "started"  # this event owns the document's ingest in this region until its lease ends
    STALE = "stale"  # a newer event (or this one, already finished) is recorded: nothing to do, ack it
    BUSY = "busy"  # an older event is still ingesting under its lease: try again later


class DocumentStore(Protocol):
    """The ingest pipeline's side of the document records (pk owner, sk document id), scoped by owner. The
    API's side (create, list, delete) is core.retrieval.DocumentCatalog, on the same items.

    Failures: core.errors.DependencyUnavailable when the table throttles or is unreachable (retry later).
    """

    def get(self, owner: str, document_id: str) -> DocumentRecord | None: ...

    def claim(
        self,
        owner: str,
        document_id: str,
        region: str,
        *,
        sequencer: str,
        version_id: str,
        name: str,
        content_type: str,
        size: int,
        lease_until: float,
    ) -> Claim:
        """Mark the document `ingesting` in `region` for this event, unless a newer event is recorded (STALE)
        or an older one still holds its lease (BUSY), or the user deleted the document (STALE). The same event
        may claim again (a retry) unless it finished (`ready`/`deleted`). Creates the record if the API did not
        (an upload by other means)."""
        ...

    def reclaim(
        self, owner: str, document_id: str, region: str, *, sequencer: str, version_id: str, lease_until: float
    ) -> Claim:
        """An index rebuild takes the recorded event's ingest again: `ingesting` under a new lease, for the same
        sequencer and version, if that version is `ready` in `region` (or a reclaim of it was left `ingesting`
        with its lease run out). BUSY while a lease still runs; STALE otherwise (a newer event, or deleted). So
        a rebuild holds the document like an ingest does: a newer version's event waits for it (BUSY) and then
        replaces its chunks, and a rebuild never writes a version that is no longer the recorded one."""
        ...

    def mark_ready(self, owner: str, document_id: str, region: str, *, sequencer: str, chunk_count: int) -> bool:
        """`ready` with its chunk count, only if this event still owns the ingest; False otherwise."""
        ...

    def mark_failed(self, owner: str, document_id: str, region: str, *, sequencer: str, code: str, reason: str) -> bool:
        """`failed` with a code and the user's reason, only if this event still owns the ingest."""
        ...

    def mark_deleted(self, owner: str, document_id: str, region: str, *, sequencer: str) -> bool:
        """`deleted` (and `deleted_at`, if not yet set) for an object-removed event, unless a newer event is
        recorded; False then."""
        ...
