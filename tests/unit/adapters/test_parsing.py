"""The parser against the hostile-document corpus: every document is text by page or a rejection with a reason.

GIVEN a file and the content type its uploader declared, WHEN it is parsed, THEN it yields pages of
text, or `DocumentRejected` with the right code; never another exception, whatever the bytes (the
Hypothesis tests feed random, truncated and mutated files).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from itertools import count

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pypdf import get_configuration

from adapters.parsing import SniffingDocumentParser, html_to_text
from core.documents import DocumentFormat, DocumentLimits, DocumentRejected, ParsedDocument, RejectionCode, clean_text
from tests.unit.adapters import corpus

BOUNDED = settings(max_examples=50, deadline=None, derandomize=True, database=None)
PDF, HTML, MARKDOWN, TEXT = "application/pdf", "text/html", "text/markdown", "text/plain"
ALL_TYPES = [PDF, HTML, MARKDOWN, TEXT]
MIB = 1024 * 1024
# Small bounds, so crafted files that cross them stay small and fast.
SMALL = DocumentLimits(
    max_bytes=64 * 1024 * 1024,
    max_pages=5,
    max_characters=500,
    max_page_characters=300,
    max_inflated_bytes=1 * MIB,
)
DEFAULT_PARSER = SniffingDocumentParser(DocumentLimits())


def parse(data: bytes, content_type: str, limits: DocumentLimits | None = None) -> ParsedDocument:
    parser = DEFAULT_PARSER if limits is None else SniffingDocumentParser(limits)
    return parser.parse(data, content_type=content_type)


def rejection(data: bytes, content_type: str, limits: DocumentLimits | None = None) -> DocumentRejected:
    with pytest.raises(DocumentRejected) as raised:
        parse(data, content_type, limits)
    return raised.value


def parses_or_rejects(data: bytes, content_type: str, limits: DocumentLimits | None = None) -> None:
    """The contract under attack: a document, or a rejection with a code and a sentence; nothing else."""
    try:
        document = parse(data, content_type, limits)
    except DocumentRejected as rejected:
        assert isinstance(rejected.code, RejectionCode)
        assert ": " in rejected.reason
        return
    assert document.pages and document.character_count > 0
    assert document.character_count <= (limits or DocumentLimits()).max_characters


# --- documents that parse -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "data",
    [
        corpus.sample_pdf(),
        corpus.text_pdf(corpus.SAMPLE_PAGES, compress=False),
        corpus.rewritten_by_pypdf(corpus.sample_pdf()),
        corpus.object_stream_pdf(corpus.SAMPLE_PAGES),
    ],
    ids=["hand-written", "uncompressed", "rewritten-by-pypdf", "object-and-xref-streams"],
)
def test_a_pdf_with_a_text_layer_gives_its_text_page_by_page(data: bytes) -> None:
    document = parse(data, PDF)
    assert document.format is DocumentFormat.PDF and document.paginated
    assert document.pages == tuple((number, "\n".join(lines)) for number, lines in enumerate(corpus.SAMPLE_PAGES, 1))


def test_a_pdf_at_exactly_the_page_limit_parses() -> None:
    document = parse(corpus.many_pages_pdf(5), PDF, SMALL)
    assert [page.number for page in document.pages] == [1, 2, 3, 4, 5]
    assert document.pages[4].text == "Page 5 of 5"


def test_pdf_bounds_apply_to_the_parse_only() -> None:
    parse(corpus.sample_pdf(), PDF, SMALL)
    assert get_configuration().zlib_maximum_output_length == 75_000_000  # pypdf's default, untouched outside


def test_html_keeps_headings_paragraphs_lists_and_tables_and_drops_what_is_not_prose() -> None:
    document = parse(corpus.HTML_PAGE.encode(), "text/html; charset=utf-8")
    text = document.pages[0].text
    assert document.format is DocumentFormat.HTML and not document.paginated
    assert "LEAK" not in text
    assert text == (
        "Bulwark & friends\n\nHome\n\n# Knowledge base\n\nFirst paragraph with bold and italic text.\n\n"
        "## Limits\n\n- Pages: 500\n- Size: 20 MiB\n\nLine one\nLine two\n\n  indented\n    code\n\n"
        "Key Value\nrto 60 s"
    )


def test_markdown_and_text_are_kept_as_written_in_normal_form() -> None:
    assert parse(corpus.MARKDOWN.encode(), MARKDOWN).pages[0].text == corpus.MARKDOWN.strip()
    text = parse(b"\xef\xbb\xbf" + corpus.PLAIN_TEXT.encode(), TEXT).pages[0].text
    assert text == "Grüße aus Köln — naïve café, 東京, emoji 🚀.\nSecond line.\n\nThird paragraph."


def test_html_may_be_declared_as_html_even_when_it_starts_like_a_page() -> None:
    assert parse(b"<!-- x --><!DOCTYPE html><p>ok</p>", HTML).pages[0].text == "ok"


# --- documents that are refused -------------------------------------------------------------------------
def _clock_that_jumps(step: float) -> Callable[[], float]:
    ticks = count()
    return lambda: next(ticks) * step


CORPUS: list[tuple[str, Callable[[], bytes], str, DocumentLimits | None, RejectionCode]] = [
    ("password-protected PDF", corpus.encrypted_pdf, PDF, None, RejectionCode.ENCRYPTED),
    ("restricted PDF (empty user password)", lambda: corpus.encrypted_pdf(user_password=""), PDF, None,
     RejectionCode.ENCRYPTED),
    ("blank pages written by pypdf", corpus.blank_pdf, PDF, None, RejectionCode.NO_TEXT_LAYER),
    ("scanned pages: images, no text", corpus.image_only_pdf, PDF, None, RejectionCode.NO_TEXT_LAYER),
    ("more pages than allowed", lambda: corpus.many_pages_pdf(6), PDF, SMALL, RejectionCode.TOO_MANY_PAGES),
    ("a page tree claiming a billion pages", corpus.lying_count_pdf, PDF, None, RejectionCode.TOO_MANY_PAGES),
    ("a page tree larger than its /Count", lambda: corpus.pdf_from_contents(
        [corpus.text_operators(["p"])] * 40, declared_count=1), PDF, SMALL, RejectionCode.TOO_MANY_PAGES),
    ("FlateDecode bomb: 256 MiB from 256 KB", lambda: corpus.bomb_pdf(256 * MIB), PDF, None,
     RejectionCode.DECOMPRESSION_BOMB),
    ("bomb under the bound per stream, over it per document", lambda: corpus.spread_bomb_pdf(5, 300 * 1024), PDF,
     SMALL, RejectionCode.DECOMPRESSION_BOMB),
    ("text bomb: one page, 5,000 characters", lambda: corpus.text_bomb_pdf(5_000), PDF, SMALL,
     RejectionCode.DECOMPRESSION_BOMB),
    ("more characters than allowed", lambda: corpus.text_pdf([["x" * 200]] * 3), PDF, SMALL,
     RejectionCode.TOO_MANY_CHARACTERS),
    ("more characters than allowed, as text", lambda: b"word " * 200, TEXT, SMALL,
     RejectionCode.TOO_MANY_CHARACTERS),
    ("larger than allowed", lambda: b"x" * (SMALL.max_bytes + 1), TEXT, SMALL, RejectionCode.TOO_LARGE),
    ("empty PDF", lambda: b"", PDF, None, RejectionCode.EMPTY),
    ("empty HTML", lambda: b"", HTML, None, RejectionCode.EMPTY),
    ("empty text", lambda: b"", TEXT, None, RejectionCode.EMPTY),
    ("only whitespace", lambda: b" \r\n\t \n", MARKDOWN, None, RejectionCode.EMPTY),
    ("HTML with only script and style", lambda: b"<script>alert(1)</script><style>p{}</style>", HTML, None,
     RejectionCode.EMPTY),
    ("a PDF without pages", lambda: corpus.pdf_from_contents([]), PDF, None, RejectionCode.EMPTY),
    ("a PDF declared as text/plain", corpus.sample_pdf, TEXT, None, RejectionCode.TYPE_MISMATCH),
    ("an ASCII-only PDF declared as Markdown", lambda: corpus.text_pdf([["a"]], compress=False), MARKDOWN, None,
     RejectionCode.TYPE_MISMATCH),
    ("HTML declared as a PDF", lambda: corpus.HTML_PAGE.encode(), PDF, None, RejectionCode.TYPE_MISMATCH),
    ("HTML declared as text/plain", lambda: corpus.HTML_PAGE.encode(), TEXT, None, RejectionCode.TYPE_MISMATCH),
    ("a PNG declared as a PDF", lambda: corpus.PNG, PDF, None, RejectionCode.TYPE_MISMATCH),
    ("a PNG declared as text", lambda: corpus.PNG, TEXT, None, RejectionCode.TYPE_MISMATCH),
    ("a .docx (ZIP) declared as Markdown", lambda: corpus.ZIP, MARKDOWN, None, RejectionCode.TYPE_MISMATCH),
    ("Latin-1 text", lambda: "Grüße".encode("latin-1"), TEXT, None, RejectionCode.TYPE_MISMATCH),
    ("UTF-16 text", lambda: "hello".encode("utf-16"), TEXT, None, RejectionCode.TYPE_MISMATCH),
    ("text with NUL bytes", lambda: b"hello\x00world", HTML, None, RejectionCode.TYPE_MISMATCH),
    ("random bytes declared as a PDF", lambda: bytes(range(256)) * 4, PDF, None, RejectionCode.TYPE_MISMATCH),
    ("a PDF header and garbage", lambda: b"%PDF-1.7\n" + bytes(range(256)) * 4, PDF, None,
     RejectionCode.MALFORMED),
    ("a PDF whose page tree is a cycle", lambda: corpus.assemble(
        [b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [2 0 R] /Count 1 >>"]), PDF, None,
     RejectionCode.MALFORMED),
    ("an image declared as image/png", lambda: corpus.PNG, "image/png", None, RejectionCode.UNSUPPORTED_TYPE),
    ("a Word file", lambda: corpus.ZIP, "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
     None, RejectionCode.UNSUPPORTED_TYPE),
]  # fmt: skip


@pytest.mark.parametrize(
    ("builder", "content_type", "limits", "code"),
    [case[1:] for case in CORPUS],
    ids=[case[0] for case in CORPUS],
)
def test_the_hostile_corpus_is_refused_with_the_right_code(
    builder: Callable[[], bytes], content_type: str, limits: DocumentLimits | None, code: RejectionCode
) -> None:
    assert rejection(builder(), content_type, limits).code is code


@pytest.mark.parametrize("cut", corpus.truncations(corpus.sample_pdf()), ids=len)
def test_a_truncated_pdf_is_malformed(cut: bytes) -> None:
    assert rejection(cut, PDF).code in {RejectionCode.MALFORMED, RejectionCode.TYPE_MISMATCH}


def test_a_lying_page_count_is_refused_by_its_claim() -> None:
    assert "1,000,000,000 pages" in rejection(corpus.lying_count_pdf(), PDF).reason


def test_mismatches_say_what_the_file_really_is() -> None:
    assert "but it is a PDF" in rejection(corpus.sample_pdf(), TEXT).reason
    assert "but it is an HTML page" in rejection(corpus.HTML_PAGE.encode(), PDF).reason
    assert "but it is a PNG image" in rejection(corpus.PNG, PDF).reason
    assert "not UTF-8" in rejection("Grüße".encode("latin-1"), MARKDOWN).reason


def test_a_bomb_is_named_in_the_reason() -> None:
    assert "a compressed stream inflates past 1 MiB" in rejection(corpus.bomb_pdf(8 * MIB), PDF, SMALL).reason
    assert (
        "its pages inflate past 1 MiB by page 4" in rejection(corpus.spread_bomb_pdf(5, 300 * 1024), PDF, SMALL).reason
    )
    reason = rejection(corpus.text_bomb_pdf(5_000), PDF, SMALL).reason
    assert "page 1 alone yields 5,000 characters" in reason


def test_a_pdf_that_outlasts_its_time_budget_is_refused_between_pages() -> None:
    parser = SniffingDocumentParser(DocumentLimits(max_parse_seconds=250), clock=_clock_that_jumps(100))
    with pytest.raises(DocumentRejected) as raised:
        parser.parse(corpus.sample_pdf(), content_type=PDF)
    assert raised.value.code is RejectionCode.TOO_COMPLEX
    assert "page 3 of 3" in raised.value.reason


def test_rejections_keep_the_library_error_as_their_cause() -> None:
    rejected = rejection(corpus.bomb_pdf(8 * MIB), PDF, SMALL)
    assert type(rejected.__cause__).__name__ == "LimitReachedError"


@pytest.mark.parametrize(("shape", "markup"), corpus.HOSTILE_HTML.items(), ids=list(corpus.HOSTILE_HTML))
def test_html_shapes_that_are_quadratic_elsewhere_parse_here(shape: str, markup: str) -> None:
    """No timing assertion: a quadratic parser would make this test take minutes, not fail it."""
    parses_or_rejects(markup.encode(), HTML)


def test_hostile_html_keeps_its_prose() -> None:
    shapes = corpus.HOSTILE_HTML
    assert html_to_text(shapes["unterminated comments"]).strip() == "kept"
    assert html_to_text(shapes["deep nesting"]).strip() == "deep text"
    assert html_to_text(shapes["many attributes"]).strip() == "attributes text"
    assert html_to_text(shapes["unclosed script"]).strip() == "visible"
    assert html_to_text(shapes["unterminated start tags"]).strip() == ""
    assert html_to_text("<p>Tom &amp; Jerry &copy").strip() == "Tom & Jerry ©"  # text held back for a charref


# --- properties: whatever the bytes ---------------------------------------------------------------------
SAMPLE = corpus.sample_pdf()
REWRITTEN = corpus.rewritten_by_pypdf(SAMPLE)
MODERN = corpus.object_stream_pdf(corpus.SAMPLE_PAGES)


@BOUNDED
@given(data=st.binary(max_size=4096), content_type=st.sampled_from(ALL_TYPES))
def test_random_bytes_never_escape_as_another_exception(data: bytes, content_type: str) -> None:
    parses_or_rejects(data, content_type)


@BOUNDED
@given(st.binary(max_size=2048))
def test_a_pdf_header_and_random_bytes_never_escape(tail: bytes) -> None:
    parses_or_rejects(b"%PDF-1.7\n" + tail, PDF)


@BOUNDED
@given(source=st.sampled_from([SAMPLE, REWRITTEN, MODERN]), fraction=st.floats(min_value=0, max_value=1))
def test_a_pdf_truncated_anywhere_never_escapes(source: bytes, fraction: float) -> None:
    parses_or_rejects(source[: int(len(source) * fraction)], PDF)


@BOUNDED
@given(
    source=st.sampled_from([SAMPLE, REWRITTEN, MODERN]),
    edits=st.lists(st.tuples(st.floats(min_value=0, max_value=1), st.integers(0, 255)), min_size=1, max_size=8),
)
def test_a_pdf_with_mutated_bytes_never_escapes(source: bytes, edits: list[tuple[float, int]]) -> None:
    mutated = bytearray(source)
    for where, value in edits:
        mutated[min(int(where * len(mutated)), len(mutated) - 1)] = value
    parses_or_rejects(bytes(mutated), PDF, SMALL)


@BOUNDED
@given(st.text(alphabet="<>/!?-=\"' abpdivscrt&;#x0\n", max_size=400))
def test_tag_soup_never_escapes(markup: str) -> None:
    parses_or_rejects(markup.encode(), HTML)


_WORDS = st.text(alphabet="abcdefghij ", min_size=1, max_size=30).filter(str.strip)
_SCRIPT_BODY = st.text(st.characters(exclude_categories=("Cc", "Cs")), max_size=60).filter(lambda b: "</" not in b)


@BOUNDED
@given(paragraphs=st.lists(_WORDS, min_size=1, max_size=5), scripts=st.lists(_SCRIPT_BODY, max_size=3))
def test_prose_survives_and_scripts_never_leak(paragraphs: list[str], scripts: list[str]) -> None:
    scripts = (scripts + [""] * len(paragraphs))[: len(paragraphs)]
    markup = "".join(
        f"<p>{words}</p><script>SCRIPTMARK{body}</script>" for words, body in zip(paragraphs, scripts, strict=True)
    )
    text = parse(markup.encode(), HTML).pages[0].text
    assert "SCRIPTMARK" not in text
    assert text.split("\n\n") == [" ".join(words.split()) for words in paragraphs]


@BOUNDED
@given(st.text(min_size=1, max_size=300))
def test_any_utf8_text_is_kept_or_refused_for_a_reason(text: str) -> None:
    try:
        document = parse(text.encode("utf-8", "surrogatepass"), TEXT)
    except DocumentRejected as rejected:
        assert rejected.code in {RejectionCode.EMPTY, RejectionCode.TYPE_MISMATCH}
        return
    assert document.pages[0].text == clean_text(text)


# --- the chat path stays light --------------------------------------------------------------------------
@pytest.mark.parametrize("handler", ["handlers.chat", "handlers.worker"])
def test_the_chat_and_jobs_lambdas_never_import_the_parsing_libraries(handler: str) -> None:
    """They share the bundle with the ingest Lambda, so these libraries are on disk; importing them would
    add about 0.5 s to every cold start."""
    probe = (
        f"import sys, {handler}; heavy = sorted(m for m in ('pypdf', 'langchain_text_splitters', "
        "'langchain_core', 'adapters.parsing', 'adapters.chunking') if m in sys.modules); print(heavy)"
    )
    env = {**os.environ, "POWERTOOLS_TRACE_DISABLED": "true"}
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, check=True)
    assert result.stdout.strip() == "[]"
