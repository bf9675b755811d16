"""Pages into passages with langchain-text-splitters, each passage located exactly inside its page.

Imported by the ingest path only: `langchain_text_splitters` pulls in langchain-core (about 0.35 s of
imports), which the chat Lambda's cold start must not pay.
"""

from __future__ import annotations

from langchain_text_splitters import Language, RecursiveCharacterTextSplitter

from core.documents import Chunk, DocumentFormat, DocumentLimits, ParsedDocument

# HTML is parsed into Markdown-style headings (adapters.parsing), so it splits like Markdown: at
# headings first, then paragraphs, lines, words. PDF and plain text have no headings to trust.
_MARKDOWN_LIKE = frozenset({DocumentFormat.MARKDOWN, DocumentFormat.HTML})


class RecursiveTextChunker:
    """The `TextChunker` of the ingest pipeline: sizes in characters from `DocumentLimits`, never across pages.

    A passage never spans two pages, so its page number is exact and a citation can show it. The
    splitter is a pure function of its input, so re-ingesting a document yields the same chunks (and
    the same vector keys).
    """

    def __init__(self, limits: DocumentLimits) -> None:
        size, overlap = limits.chunk_size, limits.chunk_overlap
        self._plain = RecursiveCharacterTextSplitter(chunk_size=size, chunk_overlap=overlap, strip_whitespace=True)
        self._markdown = RecursiveCharacterTextSplitter.from_language(
            Language.MARKDOWN, chunk_size=size, chunk_overlap=overlap, strip_whitespace=True
        )

    def chunk(self, document: ParsedDocument) -> list[Chunk]:
        splitter = self._markdown if document.format in _MARKDOWN_LIKE else self._plain
        chunks: list[Chunk] = []
        for page in document.pages:
            cursor = 0
            for piece in splitter.split_text(page.text):
                # The splitter strips what it merges but not a piece it cannot split further (chunk_size 1).
                text = piece.strip()
                if not text:
                    continue
                start = _locate(page.text, text, cursor)
                chunks.append(Chunk(index=len(chunks), page=page.number, text=text, start=start, end=start + len(text)))
                # Each passage starts after the previous one starts (overlap only reaches backwards).
                cursor = start + 1
        return chunks


def _locate(page_text: str, passage: str, cursor: int) -> int:
    """Where the passage sits in its page: the splitter returns substrings in order, so searching from the
    previous start never skips past the true position (a repeated passage may match earlier, still exactly)."""
    start = page_text.find(passage, cursor)
    if start < 0:
        raise AssertionError("the splitter returned text that is not in the page")
    return start
