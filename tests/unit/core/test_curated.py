"""Curated answers: the threshold (on the Bedrock emulator's embeddings), the cached load, curation, and the chat
path serving them when no model can answer."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from core.chat import ChatService
from core.curated import (
    CURATED_TARGET,
    CuratedAnswer,
    CuratedAnswers,
    CuratedQuestion,
    CuratedSettings,
    closest,
    cosine,
    curate,
    parse_questions,
)
from core.errors import AtCapacity, InvalidRequest, Overloaded
from core.gateway import CACHE_TARGET, DEGRADED_TEXT, NONE_TARGET
from core.models import ChatRequest, Limits, Message, ModelReply, TargetRef, Usage
from core.prompts import PromptVersion
from core.retrieval import Retrieval
from local.bedrock_emulator import embedding
from tests.unit.core.test_chat import MemoryStore

QUESTIONS = parse_questions(json.loads(Path("curated/questions.json").read_text()))
MODEL = TargetRef(model_id="anthropic.claude-x-v1:0", region="eu-west-1")
THRESHOLD = CuratedSettings().threshold


def vector(text: str) -> tuple[float, ...]:
    """What Titan v2 answers in the sandbox: the emulator's hashed bag of words (shared words -> close)."""
    return tuple(embedding(text, 1024, True))


def entries(prompt_version: str = "3") -> list[CuratedAnswer]:
    return [
        CuratedAnswer(
            question_id=q.question_id,
            question=q.question,
            answer=f"answer to {q.question_id}",
            prompt_version=prompt_version,
            target=MODEL,
            embedding=vector(q.question),
            created_at="t",
        )
        for q in QUESTIONS
    ]


# --- the threshold ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("asked", "expected"),
    [
        ("Please, how do I reset my password?", "reset-password"),
        ("How can I reset my password?", "reset-password"),
        ("how long is my conversation history kept for?", "history-retention"),
        ("Which document formats can I upload here?", "upload-formats"),
        ("Where can I see if the service is down?", "service-status"),
        ("How do I delete my documents and conversations?", "delete-my-data"),
    ],
)
def test_a_near_paraphrase_gets_its_curated_answer(asked: str, expected: str) -> None:
    match = closest(entries(), vector(asked), prompt_version="3", threshold=THRESHOLD)

    assert match is not None and match.entry.question_id == expected


@pytest.mark.parametrize(
    "asked",
    [
        "What is the capital of France?",
        "Write a poem about the sea",
        "How long should I boil an egg?",
        "Which formats does the printer accept?",
        "What is the weather in Paris today?",
        "Summarize my uploaded report",
        "Why is the sky blue?",
        "password",
    ],
)
def test_an_unrelated_question_never_gets_a_curated_answer(asked: str) -> None:
    best = max(cosine(vector(asked), entry.embedding) for entry in entries())

    assert closest(entries(), vector(asked), prompt_version="3", threshold=THRESHOLD) is None
    assert best < THRESHOLD - 0.3  # far below, not just under


def test_only_entries_of_the_active_prompt_version_are_served() -> None:
    asked = vector("How do I reset my password?")

    assert closest(entries("2"), asked, prompt_version="3", threshold=THRESHOLD) is None
    assert closest([*entries("2"), *entries("3")], asked, prompt_version="3", threshold=THRESHOLD) is not None


def test_cosine_of_mismatched_or_zero_vectors_is_never_a_match() -> None:
    assert cosine([1.0, 0.0], [1.0, 0.0, 0.0]) == 0.0
    assert cosine([0.0, 0.0], [0.0, 0.0]) == 0.0
    assert cosine([1.0, 2.0], [2.0, 4.0]) == pytest.approx(1.0)


@pytest.mark.parametrize("threshold", [0.0, -0.1, 1.5])
def test_a_threshold_outside_0_1_is_refused(threshold: float) -> None:
    with pytest.raises(ValueError, match="threshold"):
        CuratedSettings(threshold=threshold)


# --- the operators' list ------------------------------------------------------------------------------------
def test_the_repo_list_parses() -> None:
    assert len(QUESTIONS) >= 5 and len({q.question_id for q in QUESTIONS}) == len(QUESTIONS)


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({}, "non-empty"),
        ({"questions": [{"id": "A b", "question": "q"}]}, "id must be"),
        ({"questions": [{"id": "a", "question": "q"}, {"id": "a", "question": "r"}]}, "used twice"),
        ({"questions": [{"id": "a", "question": "  "}]}, "question must be"),
    ],
)
def test_a_bad_list_names_the_question_at_fault(document: Any, message: str) -> None:
    with pytest.raises(InvalidRequest, match=message):
        parse_questions(document)


# --- loaded once per execution environment, with a TTL ----------------------------------------------------------
class CountingSource:
    def __init__(self, found: list[CuratedAnswer]) -> None:
        self.found = found
        self.reads = 0
        self.fail = False

    def load(self, *, limit: int) -> list[CuratedAnswer]:
        self.reads += 1
        if self.fail:
            raise RuntimeError("table unreachable")
        return self.found[:limit]


def test_entries_are_read_once_then_again_after_the_ttl_and_kept_when_a_read_fails() -> None:
    now = [0.0]
    source = CountingSource(entries())
    curated = CuratedAnswers(
        source=source, settings=CuratedSettings(ttl_s=60, retry_after_error_s=10), clock=lambda: now[0]
    )

    assert len(curated.entries()) == len(QUESTIONS)
    now[0] = 59
    curated.entries()
    assert source.reads == 1
    now[0], source.fail = 61, True
    assert len(curated.entries()) == len(QUESTIONS)  # the last read serves
    now[0] = 65
    curated.entries()
    assert source.reads == 2  # retried only after retry_after_error_s
    now[0], source.fail = 72, False
    curated.entries()
    assert source.reads == 3


def test_no_read_when_the_request_has_less_time_than_a_read_can_take() -> None:
    source = CountingSource(entries())
    curated = CuratedAnswers(source=source, settings=CuratedSettings(read_worst_case_s=1.0))

    assert curated.entries(budget_s=0.5) == []
    assert source.reads == 0


# --- curation -------------------------------------------------------------------------------------------------
class ScriptedModel:
    def __init__(self, replies: dict[str, ModelReply]) -> None:
        self.replies = replies
        self.systems: list[str] = []

    @property
    def target(self) -> TargetRef:
        return MODEL

    def converse(
        self, *, system: str, messages: Sequence[Message], deadline_s: float, scope: str = "anonymous"
    ) -> ModelReply:
        self.systems.append(system)
        return self.replies[messages[-1].text]


class FixedPrompts:
    def current(self, *, budget_s: float | None = None) -> PromptVersion:
        return PromptVersion(version="7", text="be brief")


class EmulatorEmbedder:
    def __init__(self, *, down: bool = False) -> None:
        self.down = down
        self.calls = 0

    def embed(self, text: str, *, timeout_s: float) -> list[float]:
        self.calls += 1
        if self.down:
            raise TimeoutError("embedding model down")
        return list(vector(text))


class ListStore:
    def __init__(self) -> None:
        self.entries: list[CuratedAnswer] = []

    def put(self, entry: CuratedAnswer) -> None:
        self.entries.append(entry)

    def load(self, *, limit: int) -> list[CuratedAnswer]:
        return self.entries[:limit]


def test_curation_keeps_only_guardrail_passed_model_answers_with_prompt_version_model_and_embedding() -> None:
    questions = [CuratedQuestion(question_id=f"q{i}", question=f"question {i}") for i in range(4)]
    ok = ModelReply(text="fine", usage=Usage(), target=MODEL, guardrail_checked=True)
    model = ScriptedModel(
        {
            "question 0": ok,
            "question 1": ModelReply(
                text="blocked", usage=Usage(), target=MODEL, guardrail_checked=True, stop_reason="guardrail_intervened"
            ),
            "question 2": ModelReply(text=DEGRADED_TEXT, usage=Usage(), target=NONE_TARGET, degraded=True),
            "question 3": ModelReply(text="unchecked", usage=Usage(), target=MODEL),
        }
    )
    store = ListStore()

    results = curate(
        questions, model=model, prompts=FixedPrompts(), embedder=EmulatorEmbedder(), store=store, deadline_s=25,
        clock=lambda: "2026-11-22T00:00:00Z",
    )  # fmt: skip

    assert [r.stored for r in results] == [True, False, False, False]
    assert [r.reason for r in results[1:]] == [
        "the guardrail intervened", "degraded (none)", "no guardrail checked the answer"
    ]  # fmt: skip
    [entry] = store.entries
    assert (entry.question_id, entry.answer, entry.prompt_version, entry.target) == ("q0", "fine", "7", MODEL)
    assert entry.embedding == vector("question 0")
    assert model.systems == ["be brief"] * 4  # the active prompt, nothing else


# --- the chat path: served when no model can answer ---------------------------------------------------------------
class DownModel:
    """A gateway whose every target failed: the canned answer, the cache's, or shed with every breaker open."""

    def __init__(self, *, reply: ModelReply | None = None, raises: Exception | None = None) -> None:
        self.reply, self.raises = reply, raises

    @property
    def target(self) -> TargetRef:
        return MODEL

    def converse(
        self, *, system: str, messages: Sequence[Message], deadline_s: float, scope: str = "anonymous"
    ) -> ModelReply:
        if self.raises is not None:
            raise self.raises
        assert self.reply is not None
        return self.reply


CANNED = ModelReply(text=DEGRADED_TEXT, usage=Usage(), target=NONE_TARGET, degraded=True, degraded_reason="no model: x")
CACHED = ModelReply(text="cached", usage=Usage(), target=CACHE_TARGET, degraded=True, degraded_reason="cached answer")


class StaticRetriever:
    def __init__(self, retrieval: Retrieval) -> None:
        self.retrieval = retrieval

    def retrieve(self, owner: str, question: str, *, deadline_s: float | None = None) -> Retrieval:
        return self.retrieval


def chat(model: Any, *, embedder: EmulatorEmbedder | None = None, retriever: Any = None) -> ChatService:
    store = ListStore()
    for entry in entries("builtin"):
        store.put(entry)
    return ChatService(
        store=MemoryStore(),
        model=model,
        limits=Limits(max_message_chars=500, max_history_turns=2, max_body_bytes=4096),
        deadline_s=25,
        timer=lambda: 0.0,
        retriever=retriever,
        curated=CuratedAnswers(source=store, embedder=embedder or EmulatorEmbedder()),
    )


@pytest.mark.parametrize("reply", [CANNED, CACHED], ids=["canned", "cached"])
def test_no_model_serves_the_closest_curated_answer_before_the_cache_and_the_canned_text(reply: ModelReply) -> None:
    answer = chat(DownModel(reply=reply)).answer(
        user_id="u", request=ChatRequest(message="How can I reset my password?")
    )

    body = answer.to_api()
    assert body["answer"] == "answer to reset-password"
    assert body["degraded"] is True and body["saved"] is False
    assert body["target"] == {"model_id": "curated", "region": "-"}
    assert body["matchedQuestion"] == "How do I reset my password?"
    assert body["degraded_reason"].startswith("curated answer:")
    assert answer.target == CURATED_TARGET


def test_an_unrelated_question_gets_the_canned_text_when_no_model_answers() -> None:
    answer = chat(DownModel(reply=CANNED)).answer(user_id="u", request=ChatRequest(message="Why is the sky blue?"))

    assert answer.answer == DEGRADED_TEXT and answer.target == NONE_TARGET
    assert "matchedQuestion" not in answer.to_api()


def test_every_breaker_open_serves_a_curated_answer_instead_of_503_when_one_matches() -> None:
    down = DownModel(raises=Overloaded("every model target is failing right now", retry_after=30))

    answer = chat(down).answer(user_id="u", request=ChatRequest(message="Where can I see if the service is down?"))

    assert answer.target == CURATED_TARGET and answer.matched_question == "Where can I see whether the service is down?"
    with pytest.raises(Overloaded):
        chat(down).answer(user_id="u", request=ChatRequest(message="Why is the sky blue?"))


def test_back_pressure_stays_a_429_not_a_curated_answer() -> None:
    full = DownModel(raises=AtCapacity("at capacity", retry_after=1))

    with pytest.raises(AtCapacity):
        chat(full).answer(user_id="u", request=ChatRequest(message="How do I reset my password?"))


def test_a_model_answer_is_never_replaced_by_a_curated_one() -> None:
    ok = ModelReply(text="from the model", usage=Usage(), target=MODEL)

    answer = chat(DownModel(reply=ok)).answer(user_id="u", request=ChatRequest(message="How do I reset my password?"))

    assert answer.answer == "from the model" and not answer.degraded


def test_the_retrievals_embedding_is_reused_and_a_failed_one_means_no_curated_answer() -> None:
    asked = "How can I reset my password?"
    embedder = EmulatorEmbedder()
    searched = Retrieval.unused("nothing matched", searched=True)
    reused = chat(
        DownModel(reply=CANNED), embedder=embedder, retriever=StaticRetriever(Retrieval(
            passages=(), citations=(), report=searched.report, embedding=vector(asked)
        )),
    ).answer(user_id="u", request=ChatRequest(message=asked))  # fmt: skip
    assert reused.target == CURATED_TARGET and embedder.calls == 0

    not_embedded = Retrieval.unused("your documents could not be searched (embedding failed: throttled)")
    answer = chat(DownModel(reply=CANNED), embedder=embedder, retriever=StaticRetriever(not_embedded)).answer(
        user_id="u", request=ChatRequest(message=asked)
    )
    assert answer.target == NONE_TARGET and embedder.calls == 0  # embedding is down: not tried again


def test_embedding_down_without_retrieval_means_the_canned_text() -> None:
    answer = chat(DownModel(reply=CANNED), embedder=EmulatorEmbedder(down=True)).answer(
        user_id="u", request=ChatRequest(message="How do I reset my password?")
    )

    assert answer.answer == DEGRADED_TEXT and answer.target == NONE_TARGET


@pytest.mark.parametrize(
    "down",
    [DownModel(reply=CANNED), DownModel(raises=Overloaded("every model target is failing right now", retry_after=30))],
    ids=["no model answered", "every breaker open"],
)
def test_a_curated_answer_carries_the_retrieval_report_so_its_search_is_measured(down: DownModel) -> None:
    """The dashboards' RetrievalLatency reads the answer's report: answers given during an incident count too."""
    asked = "How can I reset my password?"
    searched = Retrieval.unused("nothing matched", searched=True)
    timed = replace(searched.report, latency_ms=37)
    found = Retrieval(passages=(), citations=(), report=timed, embedding=vector(asked))

    answer = chat(down, retriever=StaticRetriever(found)).answer(user_id="u", request=ChatRequest(message=asked))

    assert answer.target == CURATED_TARGET
    assert answer.retrieval is not None and answer.retrieval.latency_ms == 37
