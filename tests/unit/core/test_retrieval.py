"""Retrieval in ChatService and the documents use case, against in-memory fakes that satisfy the ports."""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from typing import Any

import pytest

from core.chat import ChatService, cache_scope
from core.errors import DependencyUnavailable, InvalidRequest, NotFound, PayloadTooLarge
from core.gateway import DEGRADED_TEXT, NONE_TARGET, GatewaySettings, ModelGateway
from core.knowledge import ChunkVector, Passage, VectorIndex
from core.models import ChatRequest, Limits, Message, ModelReply, TargetRef, Usage
from core.retrieval import (
    DocumentCatalog,
    DocumentFiles,
    DocumentService,
    DocumentView,
    Embedder,
    Retriever,
    fit_passages,
    object_key,
)
from tests.fakes import MemoryCache
from tests.unit.core.simulated_time import SimulatedTarget, SimulatedTime, fails
from tests.unit.core.test_chat import MemoryStore

LIMITS = Limits(max_message_chars=500, max_history_turns=2, max_body_bytes=4096)
TARGET = TargetRef(model_id="m", region="us-east-1")
ALICE, BOB = "alice", "bob"
DOC = "0b5e2a8c-1111-4c3e-9a0e-aaaaaaaaaaaa"


def passage(
    document_id: str, text: str, score: float, page: int | None = 1, chunk: int = 0, version: str = "v1"
) -> Passage:
    return Passage(document_id=document_id, chunk_index=chunk, page=page, text=text, score=score, version=version)


class FakeEmbedder:
    def __init__(self, fail: Exception | None = None) -> None:
        self.fail = fail
        self.timeouts: list[float] = []

    def embed(self, text: str, *, timeout_s: float) -> list[float]:
        self.timeouts.append(timeout_s)
        if self.fail is not None:
            raise self.fail
        return [1.0, 0.0]


class FakeIndex:
    """Passages per owner; records who every query was for."""

    def __init__(self, passages: dict[str, list[Passage]] | None = None, fail: Exception | None = None) -> None:
        self.passages = passages or {}
        self.fail = fail
        self.queries: list[tuple[str, int]] = []
        self.timeouts: list[float | None] = []
        self.deleted: list[tuple[str, str]] = []
        self.on_query: Any = None  # called on each query (a test's clock moves there)

    def upsert(self, chunks: Sequence[ChunkVector]) -> None:  # pragma: no cover - not used here
        raise NotImplementedError

    def delete_document(self, owner: str, document_id: str, *, keep_version: str | None = None) -> int:
        if self.fail is not None:
            raise self.fail
        self.deleted.append((owner, document_id))
        return 1

    def query(self, owner: str, vector: Sequence[float], k: int, *, timeout_s: float | None = None) -> list[Passage]:
        self.queries.append((owner, k))
        self.timeouts.append(timeout_s)
        if self.on_query is not None:
            self.on_query()
        if self.fail is not None:
            raise self.fail
        return self.passages.get(owner, [])[:k]


class FakeCatalog:
    def __init__(self) -> None:
        self.records: dict[tuple[str, str], DocumentView] = {}

    def create(self, record: DocumentView) -> None:
        self.records[(record.owner, record.document_id)] = record

    def get(self, owner: str, document_id: str) -> DocumentView | None:
        return self.records.get((owner, document_id))

    def list(self, owner: str) -> list[DocumentView]:
        return [r for (o, _), r in self.records.items() if o == owner]

    def mark_deleted(self, owner: str, document_id: str, *, at: str) -> None:
        old = self.records[(owner, document_id)]
        self.records[(owner, document_id)] = DocumentView(**{**old.__dict__, "status": "deleted", "updated_at": at})


class FakeFiles:
    def __init__(self) -> None:
        self.signed: list[dict[str, Any]] = []
        self.deleted: list[str] = []

    def presigned_post(self, key: str, *, content_type: str, max_bytes: int, expires_s: int) -> dict[str, Any]:
        self.signed.append({"key": key, "content_type": content_type, "max_bytes": max_bytes, "expires": expires_s})
        return {"url": "https://bucket.example/", "fields": {"key": key}}

    def delete(self, key: str) -> None:
        self.deleted.append(key)


class RecordingModel:
    def __init__(self, *, degraded: bool = False, target: TargetRef = TARGET) -> None:
        self.systems: list[str] = []
        self.degraded = degraded
        self._target = target

    @property
    def target(self) -> TargetRef:
        return TARGET

    def converse(
        self, *, system: str, messages: Sequence[Message], deadline_s: float, scope: str = "anonymous"
    ) -> ModelReply:
        self.systems.append(system)
        if self.degraded:
            return ModelReply(
                text=DEGRADED_TEXT if self._target == NONE_TARGET else "cached",
                usage=Usage(),
                target=self._target,
                degraded=True,
                degraded_reason="no model: all failed",
            )
        return ModelReply(text="The Tagus [1].", usage=Usage(input_tokens=5, output_tokens=3), target=TARGET)


def retriever(
    index: VectorIndex, *, embedder: Embedder | None = None, catalog: DocumentCatalog | None = None, **options: Any
) -> Retriever:
    settings: dict[str, Any] = {"top_k": 5, "context_chars": 1000, "deadline_s": 3.0, "timer": lambda: 0.0}
    settings.update(options)
    return Retriever(embedder=embedder or FakeEmbedder(), index=index, catalog=catalog, **settings)


def chat(model: RecordingModel, retriever_: Retriever | None, store: MemoryStore | None = None) -> ChatService:
    return ChatService(
        store=store or MemoryStore(),
        model=model,
        limits=LIMITS,
        deadline_s=25,
        clock=lambda: "t",
        new_id=lambda: "c1",
        timer=lambda: 0.0,
        retriever=retriever_,
    )


RIVERS = [
    passage(DOC, "The Tagus is the longest river of the Iberian peninsula.", 0.9, page=3),
    passage(DOC, "Lisbon lies where the Tagus meets the Atlantic.", 0.7, page=4, chunk=1),
]


# --- context fitting ---------------------------------------------------------------------------------------
def test_passages_are_fitted_best_first_into_the_budget_skipping_ones_that_do_not_fit() -> None:
    passages = [passage("a", "x" * 60, 0.5), passage("b", "y" * 50, 0.9), passage("c", "z" * 30, 0.4)]

    fitted = fit_passages(passages, 90)

    assert [p.document_id for p in fitted] == ["b", "c"]  # a (60) does not fit after b (50); c (30) does
    assert sum(len(p.text) for p in fitted) <= 90


def test_the_best_passage_alone_is_cut_to_the_budget_rather_than_dropped() -> None:
    fitted = fit_passages([passage("a", "x" * 500, 0.9)], 100)

    assert len(fitted) == 1 and len(fitted[0].text) == 100


def test_the_prompt_carries_only_what_fits_in_the_context_budget() -> None:
    model = RecordingModel()
    long = passage(DOC, "w " * 400, 0.95, chunk=2)
    service = chat(model, retriever(FakeIndex({ALICE: [long, *RIVERS]}), context_chars=200))

    answer = service.answer(user_id=ALICE, request=ChatRequest(message="Which river?"))

    assert [c.source for c in answer.citations] == [1]  # the long one, cut to the budget; nothing else fits
    assert len(model.systems[0]) < 1000


# --- citations -----------------------------------------------------------------------------------------------
def test_passages_become_numbered_sources_in_the_prompt_and_citations_in_answer_and_turn() -> None:
    catalog = FakeCatalog()
    catalog.create(DocumentView(owner=ALICE, document_id=DOC, name="rivers.pdf", content_type="application/pdf",
                                size=10, created_at="t", status="ready"))  # fmt: skip
    model = RecordingModel()
    store = MemoryStore()
    service = chat(model, retriever(FakeIndex({ALICE: RIVERS}), catalog=catalog), store)

    answer = service.answer(user_id=ALICE, request=ChatRequest(message="Which is the longest river?"))

    system = model.systems[0]
    assert "[1] rivers.pdf, page 3\nThe Tagus is the longest river" in system
    assert "[2] rivers.pdf, page 4\nLisbon lies" in system
    body = answer.to_api()
    assert body["retrieval"] == {"used": True, "passages": 2}
    assert body["citations"][0] == {
        "source": 1, "document_id": DOC, "name": "rivers.pdf", "page": 3,
        "snippet": "The Tagus is the longest river of the Iberian peninsula.", "score": 0.9,
    }  # fmt: skip
    stored = store.get(ALICE, "c1")
    assert stored is not None and stored.turns[0].citations == answer.citations
    assert stored.to_api()["turns"][0]["citations"][1]["page"] == 4


def test_passages_of_a_deleted_document_are_not_cited() -> None:
    catalog = FakeCatalog()
    catalog.create(DocumentView(owner=ALICE, document_id=DOC, name="rivers.pdf", content_type="text/plain",
                                size=10, created_at="t", status="deleted"))  # fmt: skip
    answer = chat(RecordingModel(), retriever(FakeIndex({ALICE: RIVERS}), catalog=catalog)).answer(
        user_id=ALICE, request=ChatRequest(message="Which river?")
    )

    assert answer.citations == ()
    assert answer.retrieval is not None and answer.retrieval.used is False


def test_the_owner_is_passed_on_every_query() -> None:
    index = FakeIndex({ALICE: RIVERS})
    service = chat(RecordingModel(), retriever(index, top_k=4))

    alice = service.answer(user_id=ALICE, request=ChatRequest(message="Which river?"))
    bob = service.answer(user_id=BOB, request=ChatRequest(message="Which river?"))

    assert index.queries == [(ALICE, 4), (BOB, 4)]
    assert len(alice.citations) == 2
    assert bob.citations == () and bob.retrieval is not None and bob.retrieval.used is False


# --- failures: answer without context, and say so ------------------------------------------------------------
@pytest.mark.parametrize(
    ("embedder", "index", "words"),
    [
        (FakeEmbedder(fail=DependencyUnavailable("Bedrock is throttling")), FakeIndex({ALICE: RIVERS}), "embedding"),
        (FakeEmbedder(fail=TimeoutError()), FakeIndex({ALICE: RIVERS}), "TimeoutError"),
        (FakeEmbedder(), FakeIndex(fail=DependencyUnavailable("index unreachable")), "index unreachable"),
    ],
)
def test_a_failed_embedding_or_search_answers_without_context_and_says_so(
    embedder: FakeEmbedder, index: FakeIndex, words: str
) -> None:
    model = RecordingModel()

    answer = chat(model, retriever(index, embedder=embedder)).answer(user_id=ALICE, request=ChatRequest(message="q"))

    body = answer.to_api()
    assert body["answer"] == "The Tagus [1]." and body["degraded"] is False
    assert body["retrieval"]["used"] is False and words in body["retrieval"]["reason"]
    assert body["citations"] == []
    assert "<sources>" not in model.systems[0]


def test_embedding_gets_the_retrieval_deadline_or_less_when_the_request_has_less_left() -> None:
    embedder = FakeEmbedder()
    service = chat(RecordingModel(), retriever(FakeIndex(), embedder=embedder, deadline_s=2.0))

    service.answer(user_id=ALICE, request=ChatRequest(message="q"))
    service.answer(user_id=ALICE, request=ChatRequest(message="q"), remaining_s=1.5)

    assert embedder.timeouts == [2.0, 1.5]


def test_a_slow_embedding_is_not_followed_by_a_search() -> None:
    ticks = iter([0.0, 5.0, 5.0])
    index = FakeIndex({ALICE: RIVERS})
    found = retriever(index, timer=lambda: next(ticks)).retrieve(ALICE, "q")

    assert found.report.used is False and "in time" in (found.report.reason or "")
    assert index.queries == []
    assert found.report.latency_ms == 5000  # a failed search is timed too (RetrievalLatency)
    assert "latency_ms" not in found.report.to_api()  # an operator's figure, not the user's


def test_the_search_gets_what_is_left_of_the_retrieval_deadline() -> None:
    now = [0.0]
    embedder = FakeEmbedder()
    embedder_embed = embedder.embed

    def slow_embed(text: str, *, timeout_s: float) -> list[float]:
        now[0] += 0.4  # embedding took 0.4 s of the 3 s
        return embedder_embed(text, timeout_s=timeout_s)

    embedder.embed = slow_embed  # type: ignore[method-assign]
    index = FakeIndex({ALICE: RIVERS})

    found = retriever(index, embedder=embedder, deadline_s=3.0, timer=lambda: now[0]).retrieve(ALICE, "q")

    assert found.report.used is True
    assert index.timeouts == [pytest.approx(2.6)]
    assert found.report.latency_ms == 400  # the embedding and the search, as the answer's RetrievalLatency


def test_a_search_that_outlasts_the_deadline_answers_without_documents_and_says_so() -> None:
    now = [0.0]
    index = FakeIndex({ALICE: RIVERS})

    def slow_index() -> None:
        now[0] += 3.5  # the index answered, but after the retrieval deadline

    index.on_query = slow_index
    model = RecordingModel()
    service = chat(model, retriever(index, deadline_s=3.0, timer=lambda: now[0]))

    body = service.answer(user_id=ALICE, request=ChatRequest(message="Which river?")).to_api()

    assert body["retrieval"]["used"] is False and "the search was too slow" in body["retrieval"]["reason"]
    assert body["citations"] == [] and "<sources>" not in model.systems[0]
    assert body["answer"] == "The Tagus [1]." and body["degraded"] is False  # the model still answered


def test_without_a_retriever_answers_carry_no_retrieval_report() -> None:
    body = chat(RecordingModel(), None).answer(user_id=ALICE, request=ChatRequest(message="q")).to_api()

    assert "retrieval" not in body and body["citations"] == []


# --- degraded answers ----------------------------------------------------------------------------------------
def test_with_no_model_the_degraded_answer_quotes_the_best_passages_with_their_sources() -> None:
    service = chat(RecordingModel(degraded=True, target=NONE_TARGET), retriever(FakeIndex({ALICE: RIVERS})))

    body = service.answer(user_id=ALICE, request=ChatRequest(message="Which river?")).to_api()

    assert body["degraded"] is True and body["saved"] is False
    assert body["target"]["model_id"] == "passages"
    assert f"[1] document {DOC}, page 3: The Tagus is the longest river" in body["answer"]
    assert [c["source"] for c in body["citations"]] == [1, 2]


def test_with_no_model_and_no_passages_the_canned_text_stays() -> None:
    service = chat(RecordingModel(degraded=True, target=NONE_TARGET), retriever(FakeIndex()))

    body = service.answer(user_id=ALICE, request=ChatRequest(message="Which river?")).to_api()

    assert body["answer"] == DEGRADED_TEXT and body["target"]["model_id"] == "none" and body["citations"] == []


def test_a_cached_degraded_answer_is_kept_and_cites_nothing() -> None:
    cache = TargetRef(model_id="cache", region="-")
    service = chat(RecordingModel(degraded=True, target=cache), retriever(FakeIndex({ALICE: RIVERS})))

    body = service.answer(user_id=ALICE, request=ChatRequest(message="Which river?")).to_api()

    assert body["answer"] == "cached" and body["citations"] == []


# --- the answer cache never outlives the sources it was built from ---------------------------------------------
@pytest.fixture
def sim() -> Iterator[SimulatedTime]:
    sim = SimulatedTime()
    yield sim
    sim.settle()


def cached_chat(sim: SimulatedTime, index: FakeIndex, embedder: FakeEmbedder) -> tuple[ChatService, SimulatedTarget]:
    """The real gateway (one target, an in-memory answer cache) on simulated time, with retrieval."""
    target = SimulatedTarget("primary", sim)
    gateway = ModelGateway(targets=[target], settings=GatewaySettings(), cache=MemoryCache(), clock=sim.clock,
                           sleep=sim.sleep, rng=random.Random(7), executor=sim, wait=sim.wait)  # fmt: skip
    service = ChatService(store=MemoryStore(), model=gateway, limits=LIMITS, deadline_s=25, clock=lambda: "t",
                          timer=sim.clock, retriever=retriever(index, embedder=embedder))  # fmt: skip
    return service, target


def test_a_cached_answer_is_served_while_its_sources_are_unchanged_and_never_after_they_change(
    sim: SimulatedTime,
) -> None:
    index, embedder = FakeIndex({ALICE: RIVERS}), FakeEmbedder()
    service, target = cached_chat(sim, index, embedder)
    question = ChatRequest(message="Which is the longest river?")

    # GIVEN an answer the model wrote from version v1 of the document (cached: a guardrail checked it)
    first = service.answer(user_id=ALICE, request=question)
    assert first.answer == "from primary" and first.degraded is False and first.turn == 0
    # WHEN the model is down
    target.behave(fails("ServiceUnavailableException"))

    # THEN the same sources give the cached answer
    same = service.answer(user_id=ALICE, request=question)
    assert (same.answer, same.target.model_id, same.degraded) == ("from primary", "cache", True)

    # the document replaced by v2: its passages now, quoted, never the answer written from v1
    index.passages[ALICE] = [
        passage(DOC, "The Douro is now listed as the longest river.", 0.9, page=1, version="v2"),
        passage(DOC, "Lisbon lies where the Tagus meets the Atlantic.", 0.7, page=2, chunk=1, version="v2"),
    ]
    replaced = service.answer(user_id=ALICE, request=question)
    assert replaced.target.model_id == "passages" and "The Douro is now listed" in replaced.answer
    assert "from primary" not in replaced.answer

    # the document deleted (no passage left): the canned answer, not the cached one
    index.passages[ALICE] = []
    deleted = service.answer(user_id=ALICE, request=question)
    assert (deleted.answer, deleted.target.model_id) == (DEGRADED_TEXT, "none")

    # v1's passages again (say, a restore): the answer written from them may be served again
    index.passages[ALICE] = RIVERS
    assert service.answer(user_id=ALICE, request=question).answer == "from primary"


def test_an_answer_cached_from_the_documents_is_not_served_when_they_could_not_be_searched(
    sim: SimulatedTime,
) -> None:
    index, embedder = FakeIndex({ALICE: RIVERS}), FakeEmbedder()
    service, target = cached_chat(sim, index, embedder)
    question = ChatRequest(message="Which is the longest river?")
    assert service.answer(user_id=ALICE, request=question).answer == "from primary"
    target.behave(fails("ServiceUnavailableException"))

    embedder.fail = DependencyUnavailable("Bedrock is throttling")  # retrieval did not run
    unsearched = service.answer(user_id=ALICE, request=question)

    assert (unsearched.answer, unsearched.target.model_id) == (DEGRADED_TEXT, "none")
    assert unsearched.retrieval is not None and unsearched.retrieval.used is False


def test_the_fingerprint_names_whether_the_documents_were_searched_and_each_document_version() -> None:
    found = retriever(FakeIndex({ALICE: RIVERS})).retrieve(ALICE, "q")
    nothing = retriever(FakeIndex()).retrieve(ALICE, "q")
    failed = retriever(FakeIndex(fail=DependencyUnavailable("index unreachable"))).retrieve(ALICE, "q")
    v2 = retriever(FakeIndex({ALICE: [passage(DOC, "x", 0.9, version="v2")]})).retrieve(ALICE, "q")

    prints = {found.fingerprint, nothing.fingerprint, failed.fingerprint, v2.fingerprint}
    assert len(prints) == 4
    assert failed.fingerprint == "not-searched" and nothing.fingerprint.startswith("searched:")
    assert cache_scope(ALICE, None) == ALICE  # without knowledge, keys are as before
    assert cache_scope(ALICE, found) != cache_scope(BOB, found)


# --- documents ---------------------------------------------------------------------------------------------
def documents(max_bytes: int = 1000) -> tuple[DocumentService, FakeCatalog, FakeFiles, FakeIndex]:
    catalog, files, index = FakeCatalog(), FakeFiles(), FakeIndex()
    ids = iter([DOC, "7f3d9b1e-2222-4d8f-8b1a-bbbbbbbbbbbb"])
    clock = iter(["2026-01-01T00:00:00.000+00:00", "2026-01-02T00:00:00.000+00:00", "2026-01-03T00:00:00.000+00:00"])
    service = DocumentService(
        catalog=catalog, files=files, index=index, max_bytes=max_bytes,
        new_id=lambda: next(ids), clock=lambda: next(clock),
    )  # fmt: skip
    return service, catalog, files, index


def test_an_upload_is_signed_for_the_exact_key_type_and_size_limit_and_recorded_uploading() -> None:
    service, catalog, files, _ = documents()
    port_files: DocumentFiles = files
    port_catalog: DocumentCatalog = catalog
    assert port_files and port_catalog

    created = service.start_upload(owner=ALICE, body={"name": " a.md ", "content_type": "text/markdown", "size": 9})

    assert files.signed == [{"key": f"documents/{ALICE}/{DOC}", "content_type": "text/markdown", "max_bytes": 1000,
                             "expires": 300}]  # fmt: skip
    assert created["document"]["status"] == "uploading" and created["document"]["name"] == "a.md"
    assert created["upload"]["fields"] == {"key": object_key(ALICE, DOC)}


@pytest.mark.parametrize(
    ("body", "error", "words"),
    [
        ([], InvalidRequest, "JSON object"),
        ({"name": "a", "content_type": "text/plain", "size": 1, "x": 1}, InvalidRequest, "unknown field"),
        ({"content_type": "text/plain", "size": 1}, InvalidRequest, "name is required"),
        ({"name": "a\nb", "content_type": "text/plain", "size": 1}, InvalidRequest, "control characters"),
        ({"name": "a", "content_type": "image/png", "size": 1}, InvalidRequest, "application/pdf"),
        ({"name": "a", "content_type": "text/plain", "size": 0}, InvalidRequest, "at least 1"),
        ({"name": "a", "content_type": "text/plain", "size": True}, InvalidRequest, "whole number"),
        ({"name": "a", "content_type": "text/plain", "size": 1001}, PayloadTooLarge, "limit is 1000 bytes"),
    ],
)
def test_a_bad_upload_request_is_refused_with_what_to_do(body: Any, error: type[Exception], words: str) -> None:
    service, catalog, files, _ = documents()

    with pytest.raises(error, match=words):
        service.start_upload(owner=ALICE, body=body)
    assert catalog.records == {} and files.signed == []


def test_documents_are_listed_newest_first_and_deleted_ones_are_gone() -> None:
    service, _, files, index = documents()
    first = service.start_upload(owner=ALICE, body={"name": "a", "content_type": "text/plain", "size": 1})
    second = service.start_upload(owner=ALICE, body={"name": "b", "content_type": "text/plain", "size": 1})
    first_id = first["document"]["document_id"]

    assert [d["name"] for d in service.list(owner=ALICE)] == ["b", "a"]
    service.delete(owner=ALICE, document_id=first_id)

    assert [d["document_id"] for d in service.list(owner=ALICE)] == [second["document"]["document_id"]]
    assert files.deleted == [object_key(ALICE, first_id)] and index.deleted == [(ALICE, first_id)]
    with pytest.raises(NotFound):
        service.get(owner=ALICE, document_id=first_id)
    service.delete(owner=ALICE, document_id=first_id)  # a retried delete finishes, it does not fail
    assert len(files.deleted) == 2


def test_a_delete_that_happened_is_not_an_error_when_the_index_is_slow() -> None:
    service, _, files, index = documents()
    upload = service.start_upload(owner=ALICE, body={"name": "a", "content_type": "text/plain", "size": 1})
    document_id = upload["document"]["document_id"]
    index.fail = DependencyUnavailable("the vector index did not answer in time")

    service.delete(owner=ALICE, document_id=document_id)  # the delete event's pipeline removes the vectors

    assert files.deleted == [object_key(ALICE, document_id)]
    assert service.list(owner=ALICE) == []


def test_another_users_document_is_not_found_and_a_bad_id_is_refused() -> None:
    service, _, files, index = documents()
    service.start_upload(owner=ALICE, body={"name": "a", "content_type": "text/plain", "size": 1})

    with pytest.raises(NotFound):
        service.get(owner=BOB, document_id=DOC)
    with pytest.raises(NotFound):
        service.delete(owner=BOB, document_id=DOC)
    with pytest.raises(InvalidRequest, match="lowercase UUID"):
        service.get(owner=ALICE, document_id="../x")
    assert files.deleted == [] and index.deleted == []
