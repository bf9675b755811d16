"""Curated answers: the operators' critical questions, answered ahead of time by the model, served when no model
can answer. Pure: no AWS imports.

An entry is one question answered with one prompt version: the answer passed the guardrail and was not degraded,
and it carries the model (target) that wrote it and the question's embedding. In an outage the question asked is
matched to the closest entry of the active prompt version by cosine similarity; only a match at or above the
threshold is served (flagged degraded, target "curated", with the question it answers), so an unrelated question
never gets an answer written for another one.
"""

from __future__ import annotations

import logging
import math
import re
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from core.errors import InvalidRequest
from core.models import Message, ModelReply, TargetRef

CURATED_TARGET_ID = "curated"
CURATED_TARGET = TargetRef(model_id=CURATED_TARGET_ID, region="-")
MAX_QUESTIONS = 500  # what one execution environment loads and compares against, at most
MAX_QUESTION_CHARS = 1000
_QUESTION_ID = re.compile(r"[a-z0-9][a-z0-9-]{0,63}")
_log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class CuratedQuestion:
    question_id: str
    question: str


@dataclass(frozen=True, kw_only=True)
class CuratedAnswer:
    question_id: str
    question: str
    answer: str
    prompt_version: str
    target: TargetRef  # the model that wrote the answer
    embedding: tuple[float, ...]
    created_at: str


@dataclass(frozen=True, kw_only=True)
class CuratedMatch:
    entry: CuratedAnswer
    score: float


def parse_questions(document: Any) -> list[CuratedQuestion]:
    """The operators' list (curated/questions.json): {"questions": [{"id": ..., "question": ...}, ...]}."""
    items = document.get("questions") if isinstance(document, dict) else None
    if not isinstance(items, list) or not items:
        raise InvalidRequest('the questions file must be an object with a non-empty "questions" list')
    if len(items) > MAX_QUESTIONS:
        raise InvalidRequest(f"at most {MAX_QUESTIONS} curated questions, got {len(items)}")
    found: list[CuratedQuestion] = []
    seen: set[str] = set()
    for number, item in enumerate(items, start=1):
        if not isinstance(item, dict):
            raise InvalidRequest(f"question {number} must be an object with id and question")
        question_id, question = item.get("id"), item.get("question")
        if not isinstance(question_id, str) or not _QUESTION_ID.fullmatch(question_id):
            raise InvalidRequest(f"question {number}: id must be 1-64 lowercase letters, digits or hyphens")
        if question_id in seen:
            raise InvalidRequest(f"question {number}: id {question_id!r} is used twice")
        if not isinstance(question, str) or not question.strip() or len(question) > MAX_QUESTION_CHARS:
            raise InvalidRequest(
                f"question {number} ({question_id}): question must be 1-{MAX_QUESTION_CHARS} characters"
            )
        seen.add(question_id)
        found.append(CuratedQuestion(question_id=question_id, question=question.strip()))
    return found


def cosine(a: Sequence[float], b: Sequence[float]) -> float:
    """Cosine similarity; 0 for vectors of different lengths or a zero vector (never a match)."""
    if len(a) != len(b) or not a:
        return 0.0
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    norm = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return dot / norm if norm else 0.0


def closest(
    entries: Iterable[CuratedAnswer], vector: Sequence[float], *, prompt_version: str, threshold: float
) -> CuratedMatch | None:
    """The entry of `prompt_version` closest to `vector`, if its similarity reaches `threshold`."""
    best: CuratedMatch | None = None
    for entry in entries:
        if entry.prompt_version != prompt_version:
            continue
        score = cosine(entry.embedding, vector)
        if score >= threshold and (best is None or score > best.score):
            best = CuratedMatch(entry=entry, score=score)
    return best


class CuratedSource(Protocol):
    def load(self, *, limit: int) -> list[CuratedAnswer]:
        """Every stored entry (at most `limit`); raises when the store cannot be read."""
        ...


class QuestionEmbedder(Protocol):
    def embed(self, text: str, *, timeout_s: float) -> list[float]: ...


@dataclass(frozen=True, kw_only=True)
class CuratedSettings:
    threshold: float = 0.8  # cosine similarity a question must reach to be served an entry
    ttl_s: float = 300.0  # a new `make curate` run reaches every execution environment within this
    retry_after_error_s: float = 30.0  # after a failed read, the entries last read serve this long untried
    read_worst_case_s: float = 1.0  # the longest one (bounded) read of the table can take
    embed_timeout_s: float = 1.0  # embedding the question when no retrieval did it already

    def __post_init__(self) -> None:
        if not 0.0 < self.threshold <= 1.0:
            raise ValueError(f"the curated threshold must be in (0, 1], got {self.threshold}")


class CuratedAnswers:
    """The entries, read once per execution environment (on the first request that needs them, not at import)
    and then every `ttl_s`. Never fails a request: a failed read, a failed embedding or too little time left
    means no curated answer (the caller serves the cache or the canned message)."""

    def __init__(
        self,
        *,
        source: CuratedSource,
        settings: CuratedSettings | None = None,
        embedder: QuestionEmbedder | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._source = source
        self.settings = settings or CuratedSettings()
        self._embedder = embedder  # for a question no retrieval embedded (no knowledge configured)
        self._clock = clock
        self._entries: list[CuratedAnswer] = []
        self._next_read: float | None = None
        self._lock = threading.Lock()

    def entries(self, *, budget_s: float | None = None) -> list[CuratedAnswer]:
        now = self._clock()
        if self._next_read is not None and now < self._next_read:
            return self._entries
        if budget_s is not None and budget_s < self.settings.read_worst_case_s:
            return self._entries
        if not self._lock.acquire(blocking=False):
            return self._entries
        try:
            try:
                self._entries = self._source.load(limit=MAX_QUESTIONS)
            except Exception as error:
                code = getattr(error, "response", {}).get("Error", {}).get("Code") or type(error).__name__
                _log.warning("curated answers unavailable (%s); using the %d read before", code, len(self._entries))
                self._next_read = self._clock() + self.settings.retry_after_error_s
                return self._entries
            self._next_read = self._clock() + self.settings.ttl_s
            return self._entries
        finally:
            self._lock.release()

    def embed(self, question: str, *, budget_s: float) -> tuple[float, ...] | None:
        """The question's embedding by this component's own embedder; None when there is none or it failed."""
        if self._embedder is None or budget_s <= 0:
            return None
        try:
            return tuple(self._embedder.embed(question, timeout_s=min(budget_s, self.settings.embed_timeout_s)))
        except Exception:
            _log.warning("question not embedded: no curated answer")
            return None

    def match(
        self, vector: Sequence[float] | None, *, prompt_version: str, budget_s: float | None = None
    ) -> CuratedMatch | None:
        if not vector:
            return None  # embedding is down too: nothing to compare with
        entries = self.entries(budget_s=budget_s)
        return closest(entries, vector, prompt_version=prompt_version, threshold=self.settings.threshold)


class CuratedStore(Protocol):
    def put(self, entry: CuratedAnswer) -> None: ...


class _Prompts(Protocol):
    def current(self, *, budget_s: float | None = None) -> Any: ...  # core.prompts.PromptProvider


class _Model(Protocol):
    def converse(
        self, *, system: str, messages: Sequence[Message], deadline_s: float, scope: str = ...
    ) -> ModelReply: ...


@dataclass(frozen=True, kw_only=True)
class CurationResult:
    question_id: str
    stored: bool
    reason: str  # "stored", or why not (degraded, guardrail, not checked, embedding failed)
    target: TargetRef | None = None
    prompt_version: str | None = None


def due(
    questions: Iterable[CuratedQuestion], entries: Iterable[CuratedAnswer], *, prompt_version: str
) -> list[CuratedQuestion]:
    """The questions with no answer for `prompt_version` yet (a new question, or a newly active prompt)."""
    answered = {entry.question_id for entry in entries if entry.prompt_version == prompt_version}
    return [question for question in questions if question.question_id not in answered]


def curate(
    questions: Iterable[CuratedQuestion],
    *,
    model: _Model,
    prompts: _Prompts,
    embedder: QuestionEmbedder,
    store: CuratedStore,
    deadline_s: float,
    clock: Callable[[], str],
) -> list[CurationResult]:
    """Answer each question through the gateway with the active prompt (no history, no documents) and store
    only answers a guardrail checked and let pass, written by a model (not degraded, not from the cache)."""
    results: list[CurationResult] = []
    for question in questions:
        prompt = prompts.current(budget_s=deadline_s)
        reply = model.converse(
            system=prompt.text,
            messages=[Message(role="user", text=question.question)],
            deadline_s=deadline_s,
            scope="curated",
        )
        why = _unfit(reply)
        if why is not None:
            results.append(CurationResult(question_id=question.question_id, stored=False, reason=why))
            continue
        try:
            vector = embedder.embed(question.question, timeout_s=deadline_s)
        except Exception as error:
            reason = f"embedding failed ({type(error).__name__})"
            results.append(CurationResult(question_id=question.question_id, stored=False, reason=reason))
            continue
        entry = CuratedAnswer(
            question_id=question.question_id,
            question=question.question,
            answer=reply.text,
            prompt_version=prompt.version,
            target=reply.target,
            embedding=tuple(vector),
            created_at=clock(),
        )
        store.put(entry)
        results.append(
            CurationResult(
                question_id=question.question_id,
                stored=True,
                reason="stored",
                target=reply.target,
                prompt_version=prompt.version,
            )
        )
    return results


def _unfit(reply: ModelReply) -> str | None:
    if reply.degraded:
        return f"degraded ({reply.degraded_reason or reply.target.model_id})"
    if reply.guardrail_intervened:
        return "the guardrail intervened"
    if not reply.guardrail_checked:
        return "no guardrail checked the answer"
    return None
