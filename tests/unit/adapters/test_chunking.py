"""Chunking: passages within the size, inside one page, located exactly, the same every time."""

from __future__ import annotations

from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.chunking import RecursiveTextChunker
from adapters.parsing import SniffingDocumentParser
from core.documents import Chunk, DocumentFormat, DocumentLimits, PageText, ParsedDocument, clean_text
from tests.unit.adapters import corpus

BOUNDED = settings(max_examples=50, deadline=None, derandomize=True, database=None)
SMALL = DocumentLimits(chunk_size=80, chunk_overlap=20)


def document(*pages: str, format: DocumentFormat = DocumentFormat.PDF) -> ParsedDocument:
    return ParsedDocument(format=format, pages=tuple(PageText(number, text) for number, text in enumerate(pages, 1)))


def assert_well_formed(parsed: ParsedDocument, chunks: list[Chunk], limits: DocumentLimits) -> None:
    texts = {page.number: page.text for page in parsed.pages}
    assert [chunk.index for chunk in chunks] == list(range(len(chunks)))
    assert [chunk.page for chunk in chunks] == sorted(chunk.page for chunk in chunks)
    for chunk in chunks:
        assert texts[chunk.page][chunk.start : chunk.end] == chunk.text
        assert 0 < len(chunk.text) <= limits.chunk_size
        assert chunk.text == chunk.text.strip()
    for before, after in pairwise(chunks):
        if before.page == after.page:
            assert after.start > before.start


PARAGRAPHS = "\n\n".join(
    f"Paragraph {n} talks about failover, retries and budgets in some detail." for n in range(1, 9)
)


def test_long_pages_are_split_within_the_size_with_overlap_and_exact_offsets() -> None:
    parsed = document(PARAGRAPHS, "Short second page.")
    chunks = RecursiveTextChunker(SMALL).chunk(parsed)
    assert_well_formed(parsed, chunks, SMALL)
    assert chunks[-1] == Chunk(index=len(chunks) - 1, page=2, text="Short second page.", start=0, end=18)
    assert {chunk.page for chunk in chunks} == {1, 2}
    # Paragraph breaks are preferred: no passage starts in the middle of a paragraph's first word.
    assert all(chunk.text.startswith(("Paragraph", "talks", "retries", "in", "detail")) for chunk in chunks[:-1])


def test_overlap_repeats_the_end_of_a_passage_at_the_start_of_the_next() -> None:
    text = " ".join(f"w{n:03d}" for n in range(200))  # one paragraph, no line breaks: split on words
    chunks = RecursiveTextChunker(SMALL).chunk(document(text))
    assert len(chunks) > 3
    for before, after in pairwise(chunks):
        assert after.start < before.end  # overlapping
        assert before.end - after.start <= SMALL.chunk_overlap


def test_markdown_and_html_split_at_headings_first() -> None:
    markdown = "# Title\n\n" + "\n\n".join(f"## Section {n}\n\nBody of section {n}, short." for n in range(1, 5))
    limits = DocumentLimits(chunk_size=45, chunk_overlap=0)
    chunks = RecursiveTextChunker(limits).chunk(document(markdown, format=DocumentFormat.MARKDOWN))
    assert [chunk.text.splitlines()[0] for chunk in chunks] == ["# Title"] + [f"## Section {n}" for n in range(1, 5)]
    plain = RecursiveTextChunker(limits).chunk(document(markdown, format=DocumentFormat.TEXT))
    assert [chunk.text.splitlines()[0] for chunk in plain] != [chunk.text.splitlines()[0] for chunk in chunks]
    html = SniffingDocumentParser(limits).parse(corpus.HTML_PAGE.encode(), content_type="text/html")
    assert any(chunk.text.startswith("## Limits") for chunk in RecursiveTextChunker(limits).chunk(html))


def test_a_real_pdf_gives_one_cited_passage_per_short_page() -> None:
    parsed = SniffingDocumentParser(DocumentLimits()).parse(corpus.sample_pdf(), content_type="application/pdf")
    chunks = RecursiveTextChunker(DocumentLimits()).chunk(parsed)
    assert [(chunk.page, chunk.text) for chunk in chunks] == [
        (number, "\n".join(lines)) for number, lines in enumerate(corpus.SAMPLE_PAGES, 1)
    ]


def test_empty_pages_give_no_passages_and_do_not_shift_page_numbers() -> None:
    chunks = RecursiveTextChunker(SMALL).chunk(document("", "   ", "third page"))
    assert [(chunk.index, chunk.page, chunk.text) for chunk in chunks] == [(0, 3, "third page")]


def test_repeated_text_is_located_at_its_own_occurrence() -> None:
    page = "\n\n".join(["the same sentence repeated again"] * 6)
    chunks = RecursiveTextChunker(DocumentLimits(chunk_size=40, chunk_overlap=0)).chunk(document(page))
    assert [chunk.start for chunk in chunks] == [n * 34 for n in range(6)]


def test_chunking_is_deterministic() -> None:
    parsed = document(PARAGRAPHS, PARAGRAPHS[::-1])
    assert RecursiveTextChunker(SMALL).chunk(parsed) == RecursiveTextChunker(SMALL).chunk(parsed)


@pytest.mark.parametrize("format", list(DocumentFormat))
def test_sizes_come_from_the_limits(format: DocumentFormat) -> None:
    for limits in (DocumentLimits(chunk_size=50, chunk_overlap=0), DocumentLimits(chunk_size=500, chunk_overlap=99)):
        chunks = RecursiveTextChunker(limits).chunk(document(PARAGRAPHS * 3, format=format))
        assert max(len(chunk.text) for chunk in chunks) <= limits.chunk_size
        assert max(len(chunk.text) for chunk in chunks) > limits.chunk_size // 2


_TEXT = st.text(
    alphabet=st.sampled_from(list("abc xyz\n\n#-`*_.東🚀")) | st.characters(exclude_categories=("Cs",)), max_size=600
)


@BOUNDED
@given(
    pages=st.lists(_TEXT, min_size=1, max_size=4),
    format=st.sampled_from(list(DocumentFormat)),
    size=st.integers(min_value=1, max_value=120),
    overlap_share=st.floats(min_value=0, max_value=0.9),
)
def test_any_document_chunks_into_well_formed_passages(
    pages: list[str], format: DocumentFormat, size: int, overlap_share: float
) -> None:
    limits = DocumentLimits(chunk_size=size, chunk_overlap=int(size * overlap_share))
    parsed = document(*(clean_text(page) for page in pages), format=format)
    chunker = RecursiveTextChunker(limits)
    chunks = chunker.chunk(parsed)
    assert_well_formed(parsed, chunks, limits)
    assert chunker.chunk(parsed) == chunks
    # Nothing is lost: every non-space character of a page is in some passage of that page.
    for page in parsed.pages:
        covered = [False] * len(page.text)
        for chunk in chunks:
            if chunk.page == page.number:
                covered[chunk.start : chunk.end] = [True] * len(chunk.text)
        assert all(covered[i] or page.text[i].isspace() for i in range(len(page.text)))
