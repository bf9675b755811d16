"""The ingest bench's corpus, generated in code: good documents (PDF, HTML, Markdown, text of various sizes)
and about one in ten bad ones, each with the failure code the pipeline must give it; plus the retrieval
quality set (passages with known questions) shared by bench/ingest.py and the retrieval quality test.

The PDF writers are local/document_corpus.py's, shared with the test suite's hostile corpus (benchmarks must not
import tests/).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from local.document_corpus import encrypted_pdf as _encrypted_pdf
from local.document_corpus import image_only_pdf, text_pdf


def encrypted_pdf() -> bytes:
    return _encrypted_pdf([["A secret report."], ["Second page."]])


# --- prose -------------------------------------------------------------------------------------------------
_WORDS = (  # noqa: SIM905
    "region replica quota token budget breaker failover standby primary latency throughput queue message "
    "document passage vector index embedding chunk owner tenant policy bucket version marker sequencer lease "
    "deadline retry backoff jitter alarm metric dashboard runbook operator upload parser page layer stream "
    "archive ledger invoice harvest orchard river canyon glacier meadow lantern compass harbor beacon"
).split()


def prose(rng: random.Random, characters: int) -> str:
    sentences, size = [], 0
    while size < characters:
        words = [rng.choice(_WORDS) for _ in range(rng.randint(8, 16))]
        sentence = " ".join(words).capitalize() + "."
        sentences.append(sentence)
        size += len(sentence) + 1
    return " ".join(sentences)


@dataclass(frozen=True)
class CorpusDocument:
    name: str
    data: bytes
    content_type: str
    expected_code: str | None  # None: must reach ready


def mixed_corpus(count: int, *, seed: int = 11, max_pages: int = 20) -> list[CorpusDocument]:
    """`count` documents, one in ten bad (cycling encrypted, no text layer, type mismatch, empty, over the
    page limit `max_pages`), the rest PDF/HTML/Markdown/text from a few hundred characters to a few pages."""
    rng = random.Random(seed)
    bad_makers = [
        lambda: CorpusDocument("encrypted.pdf", encrypted_pdf(), "application/pdf", "encrypted"),
        lambda: CorpusDocument("scan.pdf", image_only_pdf(), "application/pdf", "no_text_layer"),
        lambda: CorpusDocument("photo.txt", b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4, "text/plain",
                               "type_mismatch"),
        lambda: CorpusDocument("empty.md", b"   \n\n  ", "text/markdown", "empty"),
        lambda: CorpusDocument("long.pdf", text_pdf([[f"Page {n}."] for n in range(max_pages + 5)]),
                               "application/pdf", "too_many_pages"),
    ]  # fmt: skip
    documents = []
    for n in range(count):
        if n % 10 == 9:
            documents.append(bad_makers[(n // 10) % len(bad_makers)]())
            continue
        size = rng.choice((300, 800, 1500, 3000, 6000))
        kind = n % 4
        if kind == 0:
            pages = [[prose(rng, 70) for _ in range(max(1, size // 300))] for _ in range(rng.randint(1, 3))]
            documents.append(CorpusDocument(f"doc{n}.pdf", text_pdf(pages), "application/pdf", None))
        elif kind == 1:
            body = "".join(f"<p>{prose(rng, 400)}</p>" for _ in range(max(1, size // 400)))
            html = f"<!doctype html><html><head><title>Doc {n}</title></head><body><h1>Doc {n}</h1>{body}</body></html>"
            documents.append(CorpusDocument(f"doc{n}.html", html.encode(), "text/html", None))
        elif kind == 2:
            markdown = f"# Doc {n}\n\n" + "\n\n".join(
                f"## Part {i}\n\n{prose(rng, 500)}" for i in range(max(1, size // 500))
            )
            documents.append(CorpusDocument(f"doc{n}.md", markdown.encode(), "text/markdown", None))
        else:
            documents.append(CorpusDocument(f"doc{n}.txt", prose(rng, size).encode(), "text/plain", None))
    return documents


# --- retrieval quality: passages with known questions ------------------------------------------------------
QUALITY_PASSAGES: dict[str, str] = {
    "penguins": "Emperor penguins huddle together through the antarctic winter, taking turns at the windy edge "
    "of the group so that every bird shares the warmth.",
    "volcano": "A shield volcano is built by fluid basalt lava flows that spread far from the vent, giving the "
    "mountain gentle slopes like a warrior's shield.",
    "bread": "Sourdough bread rises because wild yeast and lactic acid bacteria in the starter ferment the flour "
    "and release carbon dioxide into the dough.",
    "lighthouse": "A lighthouse guides ships at night with a rotating lamp whose flash pattern tells sailors "
    "which coast and harbor they are approaching.",
    "glacier": "Glaciers carve U-shaped valleys as the moving ice drags rocks along the bedrock, grinding and "
    "plucking the valley floor over thousands of years.",
    "bees": "Honey bees communicate the direction and distance of flowers to their hive mates with a waggle "
    "dance performed on the comb.",
    "tides": "Ocean tides rise and fall twice a day because the moon's gravity pulls the water of the oceans "
    "into two bulges as the earth rotates.",
    "coffee": "Coffee beans are roasted until their sugars caramelize, and darker roasts taste more bitter "
    "while lighter roasts keep more acidity.",
    "failover": "When the primary region is down, the web client probes the standby API and moves every user "
    "there within sixty seconds.",
    "budget": "Retries stay within a budget of ten percent of requests, so a struggling dependency is never "
    "flooded by a storm of repeated calls.",
    "violin": "A violin bow is strung with horsehair coated in rosin, which grips the strings and makes them "
    "vibrate when the bow is drawn.",
    "compost": "Compost heaps turn kitchen scraps into soil when microbes break down green and brown material "
    "in warm, moist and airy conditions.",
}
QUALITY_QUESTIONS: list[tuple[str, str]] = [
    ("how do penguins stay warm in the antarctic winter", "penguins"),
    ("why does a shield volcano have gentle slopes", "volcano"),
    ("what makes sourdough bread rise", "bread"),
    ("how does a lighthouse tell sailors which harbor it is", "lighthouse"),
    ("how do glaciers carve valleys", "glacier"),
    ("how do honey bees tell the hive where flowers are", "bees"),
    ("why are there two tides a day", "tides"),
    ("why do dark coffee roasts taste bitter", "coffee"),
    ("what happens when the primary region is down", "failover"),
    ("how many retries are allowed", "budget"),
    ("why is rosin put on a violin bow", "violin"),
    ("how do compost heaps make soil from kitchen scraps", "compost"),
]


def recall_at_k(ranked: dict[str, list[str]], k: int) -> float:
    """Share of questions whose source passage is among the first k results (ranked: question -> doc names)."""
    hits = sum(1 for question, source in QUALITY_QUESTIONS if source in ranked.get(question, [])[:k])
    return hits / len(QUALITY_QUESTIONS)
