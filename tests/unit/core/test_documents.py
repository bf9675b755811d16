"""The document domain: accepted types, limits, the sentences a refused document gets, text normal form."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.documents import (
    CANONICAL_CONTENT_TYPE,
    Chunk,
    DocumentFormat,
    DocumentLimits,
    DocumentRejected,
    PageText,
    ParsedDocument,
    RejectionCode,
    clean_text,
    format_for,
    has_text,
    human_bytes,
)
from core.errors import DomainError

BOUNDED = settings(max_examples=50, deadline=None, derandomize=True, database=None)

# Every way to build a rejection, so a new code cannot be added without a sentence.
EVERY_REJECTION = [
    DocumentRejected.too_large(25 * 1024 * 1024, 20 * 1024 * 1024),
    DocumentRejected.empty(),
    DocumentRejected.unsupported_type("image/png"),
    DocumentRejected.type_mismatch(DocumentFormat.TEXT, "it is a PDF"),
    DocumentRejected.malformed("PDF"),
    DocumentRejected.encrypted(),
    DocumentRejected.too_many_pages(500, pages=501),
    DocumentRejected.too_many_characters(2_000_000, at_page=7),
    DocumentRejected.no_text_layer(),
    DocumentRejected.decompression_bomb("a stream inflates past 64 MiB"),
    DocumentRejected.too_complex(120, at_page=37, pages=400),
]
# What a user can do about it: each sentence names an action.
ACTIONS = ("upload", "split", "save", "print", "run ocr", "convert", "open")


def test_every_code_has_a_factory() -> None:
    assert {rejection.code for rejection in EVERY_REJECTION} == set(RejectionCode)


@pytest.mark.parametrize("rejection", EVERY_REJECTION, ids=lambda rejection: rejection.code.value)
def test_every_reason_says_what_happened_and_what_to_do(rejection: DocumentRejected) -> None:
    what, _, todo = rejection.reason.partition(": ")
    assert what and todo, rejection.reason
    assert any(action in todo.lower() for action in ACTIONS), rejection.reason
    assert rejection.message == rejection.reason == str(rejection)
    assert isinstance(rejection, DomainError)
    assert rejection.status == 422


def test_reasons_carry_the_numbers_the_user_needs() -> None:
    assert "25 MiB" in DocumentRejected.too_large(25 * 1024 * 1024, 20 * 1024 * 1024).reason
    assert "20 MiB allowed" in DocumentRejected.too_large(25 * 1024 * 1024, 20 * 1024 * 1024).reason
    assert "1,000,000,000 pages" in DocumentRejected.too_many_pages(500, pages=10**9).reason
    assert "more pages, more than the 500" in DocumentRejected.too_many_pages(500).reason
    assert "page 7" in DocumentRejected.too_many_characters(10, at_page=7).reason
    assert "page 37 of 400" in DocumentRejected.too_complex(120, at_page=37, pages=400).reason
    assert "text/plain" in DocumentRejected.type_mismatch(DocumentFormat.TEXT, "it is a PDF").reason
    assert "'image/png'" in DocumentRejected.unsupported_type("image/png").reason


def test_a_rejection_reads_well_in_logs() -> None:
    assert repr(DocumentRejected.encrypted()).startswith("DocumentRejected('encrypted', 'the PDF is encrypted")


@pytest.mark.parametrize(
    ("content_type", "expected"),
    [
        ("application/pdf", DocumentFormat.PDF),
        ("Application/PDF", DocumentFormat.PDF),
        ("text/html; charset=utf-8", DocumentFormat.HTML),
        ("application/xhtml+xml", DocumentFormat.HTML),
        (" text/markdown ", DocumentFormat.MARKDOWN),
        ("text/x-markdown", DocumentFormat.MARKDOWN),
        ("text/plain;charset=UTF-8", DocumentFormat.TEXT),
    ],
)
def test_format_for_accepts_the_supported_types_with_parameters_and_any_case(
    content_type: str, expected: DocumentFormat
) -> None:
    assert format_for(content_type) is expected


@pytest.mark.parametrize("content_type", ["", "image/png", "application/msword", "text", "pdf", "text/csv"])
def test_format_for_refuses_anything_else(content_type: str) -> None:
    with pytest.raises(DocumentRejected) as raised:
        format_for(content_type)
    assert raised.value.code is RejectionCode.UNSUPPORTED_TYPE
    assert all(name in raised.value.reason for name in CANONICAL_CONTENT_TYPE.values())


def test_default_limits_are_valid_and_small_enough_for_a_lambda() -> None:
    limits = DocumentLimits()
    assert limits.max_inflated_bytes <= 128 * 1024 * 1024
    assert limits.chunk_overlap < limits.chunk_size


@pytest.mark.parametrize(
    "overrides",
    [
        {"max_bytes": 0},
        {"max_pages": -1},
        {"max_characters": 1.5},
        {"max_page_characters": True},
        {"max_inflated_bytes": 0},
        {"max_parse_seconds": 0},
        {"chunk_size": 0},
        {"chunk_overlap": -1},
        {"chunk_size": 100, "chunk_overlap": 100},
    ],
)
def test_limits_refuse_values_that_cannot_work(overrides: dict[str, object]) -> None:
    with pytest.raises(ValueError, match=next(iter(overrides))):
        DocumentLimits(**overrides)  # type: ignore[arg-type]


def test_limit_checks_raise_the_matching_code() -> None:
    limits = DocumentLimits(max_bytes=10, max_pages=2, max_characters=5)
    limits.check_size(10)
    limits.check_pages(2)
    limits.check_characters(5)
    for check, code in [
        (lambda: limits.check_size(11), RejectionCode.TOO_LARGE),
        (lambda: limits.check_size(0), RejectionCode.EMPTY),
        (lambda: limits.check_pages(3), RejectionCode.TOO_MANY_PAGES),
        (lambda: limits.check_characters(6), RejectionCode.TOO_MANY_CHARACTERS),
    ]:
        with pytest.raises(DocumentRejected) as raised:
            check()
        assert raised.value.code is code


@pytest.mark.parametrize(
    ("size", "shown"),
    [(0, "0 bytes"), (1023, "1023 bytes"), (1024, "1 KiB"), (1536, "1.5 KiB"), (20 * 1024 * 1024, "20 MiB")],
)
def test_human_bytes(size: int, shown: str) -> None:
    assert human_bytes(size) == shown


def test_clean_text_normalizes_line_ends_controls_and_blank_runs() -> None:
    raw = "  Title\r\n\r\n\r\n\r\nBody\x00 with\x07 bell \ud800 and\x0b tab\there  \rend\x7f \n\n\n"
    assert clean_text(raw) == "Title\n\nBody with bell  and tab\there\nend"


@BOUNDED
@given(st.text())
def test_clean_text_is_idempotent_and_leaves_only_encodable_text(text: str) -> None:
    cleaned = clean_text(text)
    assert clean_text(cleaned) == cleaned
    cleaned.encode("utf-8")  # no lone surrogates
    assert "\r" not in cleaned and "\n\n\n" not in cleaned
    assert not any(ord(c) < 32 and c not in "\t\n" for c in cleaned)


def test_has_text_needs_a_letter_or_digit() -> None:
    assert not has_text(())
    assert not has_text((PageText(1, " \n- • ... ---"),))
    assert has_text((PageText(1, ""), PageText(2, "- 7")))
    assert has_text((PageText(1, "東京"),))


def test_parsed_document_pages_and_pagination() -> None:
    pdf = ParsedDocument(format=DocumentFormat.PDF, pages=(PageText(1, "ab"), PageText(3, "cde")))
    html = ParsedDocument(format=DocumentFormat.HTML, pages=(PageText(1, "x"),))
    assert pdf.paginated and not html.paginated
    assert pdf.character_count == 5
    assert pdf.pages[1] == (3, "cde")  # a page is a (number, text) pair


@pytest.mark.parametrize("numbers", [[0], [2, 1], [1, 1]])
def test_parsed_document_refuses_badly_numbered_pages(numbers: list[int]) -> None:
    with pytest.raises(ValueError, match="pages"):
        ParsedDocument(format=DocumentFormat.PDF, pages=tuple(PageText(n, "x") for n in numbers))


def test_chunk_offsets_must_match_its_text() -> None:
    assert Chunk(index=0, page=1, text="abc", start=4, end=7).end == 7
    for bad in [
        {"index": -1, "page": 1, "text": "abc", "start": 0, "end": 3},
        {"index": 0, "page": 0, "text": "abc", "start": 0, "end": 3},
        {"index": 0, "page": 1, "text": "abc", "start": 0, "end": 4},
        {"index": 0, "page": 1, "text": "abc", "start": -1, "end": 2},
    ]:
        with pytest.raises(ValueError, match="inconsistent chunk"):
            Chunk(**bad)  # type: ignore[arg-type]
