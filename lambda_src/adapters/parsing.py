"""Bytes in, text by page out: PDF with pypdf, HTML with the standard library's tokenizer, text as text.

Every input is hostile until proven otherwise. The declared content type picks the parser, and the
bytes must agree with it first (a declared PDF starts with `%PDF-`, declared text is UTF-8 without
binary bytes and is not a PDF, an image or an archive). Every way the libraries can fail ends as
`DocumentRejected` with a code and a sentence the user can act on; nothing else escapes `parse`.

Why the standard library for HTML: it is a streaming tokenizer (no tree, so nesting depth costs no
stack and no time), its start and end events are exactly what paragraph breaks need, and it adds
nothing to the bundle. Measured on 3.11 with hostile inputs of a few hundred KB: selectolax
(Lexbor) and lxml are quadratic in the number of attributes of one tag (100k attributes: 139 s and
229 s), selectolax also in nesting depth (200k nested divs: minutes), and BeautifulSoup inherits
html.parser's own worst case, `close()` on an unterminated construct at the end of the input
(CVE-2025-6069: 60 KB of `<a ` took 100 s). This module never calls `close()`: it feeds the
document once, which is linear, and applies HTML5's end-of-file rule to the unterminated tail
itself (an unfinished tag or comment yields no text).
"""

from __future__ import annotations

import html
import io
import logging
import re
import time
from collections.abc import Callable
from html.parser import HTMLParser

from pypdf import Configuration, PdfReader, apply_configuration
from pypdf.errors import LimitReachedError

from core.documents import (
    DocumentFormat,
    DocumentLimits,
    DocumentRejected,
    PageText,
    ParsedDocument,
    clean_text,
    format_for,
    has_text,
    human_bytes,
)

# Signatures of formats people upload by mistake, so a mismatch can say what the file really is.
_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"%PDF-", "it is a PDF"),
    (b"PK\x03\x04", "it is a ZIP archive (a Word, Excel or PowerPoint file?)"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "it is a legacy Office document"),
    (b"{\\rtf", "it is an RTF document"),
    (b"\x89PNG\r\n\x1a\n", "it is a PNG image"),
    (b"\xff\xd8\xff", "it is a JPEG image"),
    (b"GIF87a", "it is a GIF image"),
    (b"GIF89a", "it is a GIF image"),
    (b"II*\x00", "it is a TIFF image"),
    (b"MM\x00*", "it is a TIFF image"),
    (b"\x1f\x8b", "it is a gzip archive"),
    (b"7z\xbc\xaf\x27\x1c", "it is a 7-Zip archive"),
    (b"\x7fELF", "it is a program"),
)
# WHATWG MIME sniffing's "binary data bytes": no text file contains them.
_BINARY_BYTES = re.compile(rb"[\x00-\x08\x0b\x0e-\x1a\x1c-\x1f]")
_HTML_START = re.compile(rb"\s*(?:<!--.*?-->\s*)*<(?:!doctype\s+html|html[\s>])", re.IGNORECASE | re.DOTALL)
_SNIFF_BYTES = 1024
# pypdf logs one warning per damaged object it works around: on a hostile file that is attacker-chosen log
# volume. The rejection carries the reason; keep only pypdf's errors.
logging.getLogger("pypdf").setLevel(logging.ERROR)
# pypdf's LimitReachedError messages that mean "this inflates or costs too much" (pinned pypdf; a test holds it).
_INFLATION = re.compile(r"decompress|decoding work|output bytes|buffer size|memory limit|number of tokens", re.I)
_UTF8_BOM = b"\xef\xbb\xbf"


class SniffingDocumentParser:
    """The `DocumentParser` of the ingest pipeline: parse by declared type, after checking the bytes agree."""

    def __init__(self, limits: DocumentLimits, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._limits = limits
        self._clock = clock
        self._pdf_configuration = _pdf_configuration(limits)

    def parse(self, data: bytes, *, content_type: str) -> ParsedDocument:
        declared = format_for(content_type)
        self._limits.check_size(len(data))
        if declared is DocumentFormat.PDF:
            return self._parse_pdf(data)
        text = _decode_text(data, declared)
        if declared is DocumentFormat.HTML:
            text = html_to_text(text)
        text = clean_text(text)
        self._limits.check_characters(len(text))
        pages = (PageText(1, text),)
        if not has_text(pages):
            raise DocumentRejected.empty("the file has no text, only markup, whitespace or punctuation")
        return ParsedDocument(format=declared, pages=pages)

    def _parse_pdf(self, data: bytes) -> ParsedDocument:
        if not data.startswith(b"%PDF-"):
            raise DocumentRejected.type_mismatch(DocumentFormat.PDF, _what_it_is(data) or "it is not a PDF")
        with apply_configuration(self._pdf_configuration):
            try:
                pages = self._read_pdf_pages(data)
            except DocumentRejected:
                raise
            except LimitReachedError as error:
                # pypdf's bounds guard both inflation (a bomb) and broken structure (loops, bad lengths).
                if _INFLATION.search(str(error)) and "recovery" not in str(error).lower():
                    raise DocumentRejected.decompression_bomb(self._bomb_detail(error)) from error
                raise DocumentRejected.malformed("PDF") from error
            except (MemoryError, RecursionError) as error:
                raise DocumentRejected.decompression_bomb("its structure is too deep or too large") from error
            except Exception as error:  # pypdf raises anything on damaged input: KeyError, ValueError, zlib.error...
                raise DocumentRejected.malformed("PDF") from error
        if not has_text(pages):
            raise DocumentRejected.no_text_layer()
        return ParsedDocument(format=DocumentFormat.PDF, pages=pages)

    def _bomb_detail(self, error: LimitReachedError) -> str:
        if "decompress" in str(error).lower():
            return f"a compressed stream inflates past {human_bytes(self._limits.max_inflated_bytes)}"
        message = str(error).split(".")[0].strip()
        return f"pypdf: {message[:1].lower()}{message[1:160]}"

    def _read_pdf_pages(self, data: bytes) -> tuple[PageText, ...]:
        limits = self._limits
        reader = PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted:
            raise DocumentRejected.encrypted()
        # The declared /Count first: a file claiming a million pages is refused before its tree is walked.
        declared = _declared_page_count(reader)
        if declared is not None:
            limits.check_pages(declared)
        try:
            count = len(reader.pages)
        except LimitReachedError as error:
            if "entry limit" not in str(error):  # depth or cycles: a crafted tree, reported as such below
                raise
            # More page-tree entries than `max_pages` pages can need, whatever /Count claimed.
            raise DocumentRejected.too_many_pages(limits.max_pages) from error
        limits.check_pages(count)
        if count == 0:
            raise DocumentRejected.empty("the PDF has no pages")
        deadline = self._clock() + limits.max_parse_seconds
        pages: list[PageText] = []
        characters = 0
        inflated = 0
        for index in range(count):
            if self._clock() > deadline:
                raise DocumentRejected.too_complex(limits.max_parse_seconds, at_page=index + 1, pages=count)
            page = reader.pages[index]
            contents = page.get_contents()
            inflated += len(contents.get_data()) if contents is not None else 0
            if inflated > limits.max_inflated_bytes:
                raise DocumentRejected.decompression_bomb(
                    f"its pages inflate past {human_bytes(limits.max_inflated_bytes)} by page {index + 1:,}"
                )
            text = clean_text(page.extract_text())
            if len(text) > limits.max_page_characters:
                raise DocumentRejected.decompression_bomb(
                    f"page {index + 1:,} alone yields {len(text):,} characters, more than a page can hold "
                    f"({limits.max_page_characters:,})"
                )
            characters += len(text)
            limits.check_characters(characters, at_page=index + 1)
            pages.append(PageText(index + 1, text))
            # Decoded streams are cached on the objects the reader keeps; dropping the cache after each page
            # keeps memory at one page's worth however many pages the file has (objects are re-read on use).
            reader.resolved_objects.clear()
        return tuple(pages)


def _pdf_configuration(limits: DocumentLimits) -> Configuration:
    """pypdf's own bounds (a context-local `Configuration`, pypdf >= 6.18), tightened to the document limits."""
    bound = limits.max_inflated_bytes
    return Configuration(
        maximum_declared_stream_length=limits.max_bytes,
        array_based_stream_maximum_output_length=bound,
        zlib_maximum_output_length=bound,
        lzw_maximum_output_length=bound,
        run_length_maximum_output_length=bound,
        brotli_maximum_output_length=bound,
        jbig2_maximum_output_length=bound,
        image_maximum_buffer_size=bound,
        stream_decoding_work_maximum_length=4 * bound,
        zlib_maximum_recovery_input_length=min(1024 * 1024, bound),
        page_tree_maximum_entries=_page_tree_bound(limits),
        jbig2dec_binary=None,  # never run an external program on an uploaded file
        disable_legacy_handling=True,
    )


def _page_tree_bound(limits: DocumentLimits) -> int:
    """Entries a page tree with `max_pages` leaves can hold: every leaf plus, at most, as many inner nodes."""
    return 2 * limits.max_pages + 64


def _declared_page_count(reader: PdfReader) -> int | None:
    try:
        count = reader.root_object["/Pages"].get_object()["/Count"]  # type: ignore[index]
    except Exception:  # a broken catalog is reported when the page tree is walked
        return None
    return count if isinstance(count, int) and not isinstance(count, bool) else None


def _what_it_is(data: bytes) -> str | None:
    head = data[:_SNIFF_BYTES]
    for signature, description in _SIGNATURES:
        if head.startswith(signature):
            return description
    if _HTML_START.match(head.removeprefix(_UTF8_BOM)):
        return "it is an HTML page"
    return None


def _decode_text(data: bytes, declared: DocumentFormat) -> str:
    """UTF-8 text that is not secretly another format; HTML may not pose as Markdown or plain text."""
    found = _what_it_is(data)
    if found is not None and not (declared is DocumentFormat.HTML and found == "it is an HTML page"):
        raise DocumentRejected.type_mismatch(declared, found)
    if _BINARY_BYTES.search(data):
        raise DocumentRejected.type_mismatch(declared, "it contains binary data, not text")
    try:
        return data.removeprefix(_UTF8_BOM).decode("utf-8")
    except UnicodeDecodeError:
        raise DocumentRejected.type_mismatch(declared, "it is not UTF-8 text (save it with UTF-8 encoding)") from None


# --- HTML ---------------------------------------------------------------------------------------------
# Elements whose content is never prose. script/style are raw text to the tokenizer, so markup inside
# them cannot leak; the others are skipped by depth.
_SKIPPED = frozenset({"script", "style", "template", "noscript", "svg", "math", "canvas", "iframe", "object"})
_BLOCKS = frozenset(
    {
        "address", "article", "aside", "blockquote", "body", "caption", "dd", "details", "dialog", "div", "dl",
        "dt", "fieldset", "figcaption", "figure", "footer", "form", "header", "hgroup", "main", "nav", "ol", "p",
        "section", "summary", "table", "tbody", "tfoot", "thead", "title", "ul",
    }
)  # fmt: skip
_LINES = frozenset({"tr", "option"})
_CELLS = frozenset({"td", "th"})
_HEADINGS = {f"h{level}": level for level in range(1, 7)}
_WHITESPACE = re.compile(r"\s+")


class _HtmlText(HTMLParser):
    """Prose of an HTML page: headings as Markdown `#` lines, blocks as paragraphs, no script or style."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self._parts: list[str] = []
        self._skip_depth = 0
        self._pre_depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIPPED:
            self._skip_depth += 1
        elif tag in _HEADINGS:
            self._break("\n\n" + "#" * _HEADINGS[tag] + " ")
        elif tag in _BLOCKS or tag == "hr":
            self._break("\n\n")
        elif tag == "pre":
            self._break("\n\n")
            self._pre_depth += 1
        elif tag == "li":
            self._break("\n- ")
        elif tag in _LINES or tag == "br":
            self._break("\n")
        elif tag in _CELLS and self._parts and not self._parts[-1].endswith((" ", "\n")):
            self._parts.append(" ")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "br":
            self._break("\n")
        elif tag == "hr":
            self._break("\n\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIPPED:
            self._skip_depth = max(0, self._skip_depth - 1)
        elif tag in _HEADINGS or tag in _BLOCKS:
            self._break("\n\n")
        elif tag == "pre":
            self._pre_depth = max(0, self._pre_depth - 1)
            self._break("\n\n")

    def handle_data(self, data: str) -> None:
        if self._skip_depth:
            return
        if self._pre_depth:
            self._parts.append(data)
            return
        text = _WHITESPACE.sub(" ", data)
        if not self._parts or self._parts[-1].endswith("\n"):
            text = text.lstrip()
        if text:
            self._parts.append(text)

    def _break(self, separator: str) -> None:
        if self._skip_depth:
            return
        self._parts.append(separator)

    def text(self) -> str:
        """Feed everything once and never `close()` (see the module docstring): the unfinished tail is ours."""
        tail = self.rawdata  # what the tokenizer kept back: an unterminated construct, or text ending in `&...`
        if tail and not tail.startswith("<") and not self._skip_depth:
            self.handle_data(html.unescape(tail))
        return "".join(self._parts)


def html_to_text(markup: str) -> str:
    """Readable text of an HTML document, in linear time whatever the markup."""
    parser = _HtmlText()
    parser.feed(markup)
    return parser.text()
