"""Drift baselines: what the chat path's traffic looks like, recorded once, and how far today's moved from it.

The chat path records numbers per request (`RequestSignals`: lengths, scores, flags; never text, never a user
id); the metrics system averages them. The scheduled drift job (handlers/drift.py) reads the last window's
averages, compares them with the stored baseline (`compare`) and emits one drift figure per signal, plus how many
signals moved past their bounds (`beyond_bounds`): the one figure the region's single drift alarm watches (one
alarm per region, not per signal: each alarm costs $0.10 a month). Pure: the comparison is tested on synthetic
shifts (tests/unit/core/test_drift.py).

Measures: for magnitudes (lengths, scores, similarity) the relative change |window - baseline| / |baseline|; for
rates (guardrail interventions, degraded answers) the absolute change in the rate, since a rate moving from 0.1 %
to 1 % is ten times itself yet rarely news, while a move from 2 % to 12 % is.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from core.models import ChatAnswer
    from core.retrieval import Retrieval

_log = logging.getLogger(__name__)


class Measure(Enum):
    RELATIVE = "relative"  # |w - b| / max(|b|, floor)
    ABSOLUTE = "absolute"  # |w - b|


@dataclass(frozen=True)
class SignalSpec:
    metric: str  # the chat path's per-request metric (namespace and dimensions: the caller's)
    measure: Measure


# The signals, by name (the `Signal` dimension of the Drift metric and the keys of the `drift.bounds` config).
SIGNALS: Mapping[str, SignalSpec] = {
    "question_chars": SignalSpec("SignalQuestionChars", Measure.RELATIVE),
    "output_tokens": SignalSpec("SignalOutputTokens", Measure.RELATIVE),
    "top_score": SignalSpec("SignalTopScore", Measure.RELATIVE),
    "centroid_similarity": SignalSpec("SignalCentroidSimilarity", Measure.RELATIVE),
    "guardrail_rate": SignalSpec("SignalGuardrail", Measure.ABSOLUTE),
    "degraded_rate": SignalSpec("SignalDegraded", Measure.ABSOLUTE),
}
DEFAULT_BOUNDS: Mapping[str, float] = {
    "question_chars": 0.5,  # questions half again as long (or half as long) as they used to be
    "output_tokens": 0.5,
    "top_score": 0.2,  # retrieval finds noticeably worse (or better) passages
    "centroid_similarity": 0.2,  # questions about something else than the documents
    "guardrail_rate": 0.05,  # five points more (or fewer) refusals by the guardrail
    "degraded_rate": 0.05,
}
RELATIVE_FLOOR = 1e-6  # a baseline of zero: any change is relative to this, so it counts as large


@dataclass(frozen=True, kw_only=True)
class Observation:
    """One signal over a window: its mean and how many requests it is the mean of."""

    mean: float
    count: int


@dataclass(frozen=True, kw_only=True)
class DriftSettings:
    bounds: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_BOUNDS))
    min_samples: int = 50  # fewer requests in the window (or in the baseline): too little to say anything

    def __post_init__(self) -> None:
        unknown = sorted(set(self.bounds) - set(SIGNALS))
        if unknown:
            raise ValueError(f"unknown drift signal(s) {', '.join(unknown)}; known: {', '.join(SIGNALS)}")
        for name, bound in self.bounds.items():
            if not (bound > 0 and math.isfinite(bound)):
                raise ValueError(f"drift bound for {name} must be a positive number, got {bound}")
        if self.min_samples < 1:
            raise ValueError(f"min_samples must be at least 1, got {self.min_samples}")


@dataclass(frozen=True, kw_only=True)
class SignalDrift:
    signal: str
    baseline: float
    current: float
    drift: float  # >= 0, in the signal's measure
    bound: float
    breached: bool


def drift_of(spec: SignalSpec, baseline: float, current: float) -> float:
    change = abs(current - baseline)
    if spec.measure is Measure.ABSOLUTE:
        return change
    return change / max(abs(baseline), RELATIVE_FLOOR)


def compare(
    baseline: Mapping[str, Observation], window: Mapping[str, Observation], settings: DriftSettings
) -> list[SignalDrift]:
    """Each signal with enough samples on both sides and a bound: its drift and whether it passed the bound.
    Signals without data (no retrieval configured, no centroid yet, a quiet day) are left out, never guessed."""
    results: list[SignalDrift] = []
    for name, spec in SIGNALS.items():
        bound = settings.bounds.get(name)
        before, now = baseline.get(name), window.get(name)
        if bound is None or before is None or now is None:
            continue
        if before.count < settings.min_samples or now.count < settings.min_samples:
            continue
        drift = drift_of(spec, before.mean, now.mean)
        results.append(
            SignalDrift(signal=name, baseline=before.mean, current=now.mean, drift=drift, bound=bound,
                        breached=drift > bound)
        )  # fmt: skip
    return results


def beyond_bounds(results: Sequence[SignalDrift]) -> int:
    """How many signals moved past their bound in one comparison: 0 when none (emitted too, so the metric shows
    the job compared)."""
    return sum(1 for result in results if result.breached)


def mergeable(
    baseline: Mapping[str, Observation], window: Mapping[str, Observation], min_samples: int
) -> dict[str, Observation]:
    """The baseline to store: the old one, completed with signals it lacked that the window now has (a signal
    whose data only started later, such as the centroid similarity, gets its baseline on its first full day)."""
    merged = dict(baseline)
    for name, observation in window.items():
        if name not in merged or merged[name].count < min_samples:
            merged[name] = observation
    return merged


# --- the chat path's side ---------------------------------------------------------------------------------
def cosine(a: Sequence[float], b: Sequence[float]) -> float | None:
    """Cosine similarity; None when the vectors do not match (another dimension) or one of them is zero."""
    if len(a) != len(b) or not a:
        return None
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    norm = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return dot / norm if norm > 0 else None


def centroid(vectors: Sequence[Sequence[float]]) -> tuple[float, ...] | None:
    """The mean of unit-normalised vectors (the corpus's direction), or None for no vectors."""
    if not vectors:
        return None
    size = len(vectors[0])
    total = [0.0] * size
    used = 0
    for vector in vectors:
        if len(vector) != size:
            continue
        norm = math.sqrt(sum(x * x for x in vector))
        if norm == 0:
            continue
        for i, x in enumerate(vector):
            total[i] += x / norm
        used += 1
    return tuple(x / used for x in total) if used else None


@dataclass(frozen=True, kw_only=True)
class RequestSignals:
    """One chat request as numbers. What the drift job compares; nothing here can carry the text."""

    question_chars: int
    output_tokens: int
    degraded: bool
    guardrail_intervened: bool
    top_score: float | None = None  # best retrieved passage's score, when retrieval found any
    centroid_similarity: float | None = None  # the question's embedding vs the corpus centroid

    def values(self) -> dict[str, float]:
        """Metric name -> value, for the signals this request has."""
        values: dict[str, float] = {
            SIGNALS["question_chars"].metric: float(self.question_chars),
            SIGNALS["guardrail_rate"].metric: 1.0 if self.guardrail_intervened else 0.0,
            SIGNALS["degraded_rate"].metric: 1.0 if self.degraded else 0.0,
        }
        if not self.degraded and self.output_tokens > 0:  # a canned answer or a greeting: not the model's
            values[SIGNALS["output_tokens"].metric] = float(self.output_tokens)
        if self.top_score is not None:
            values[SIGNALS["top_score"].metric] = self.top_score
        if self.centroid_similarity is not None:
            values[SIGNALS["centroid_similarity"].metric] = self.centroid_similarity
        return values


class SignalSink(Protocol):
    def record(self, signals: RequestSignals) -> None: ...


class DriftObserver:
    """Turns an answered request into `RequestSignals` for the sink. Never fails the request: a broken sink or
    centroid source is logged (without the request) and skipped."""

    def __init__(self, *, sink: SignalSink, centroid: Callable[[], Sequence[float] | None] | None = None) -> None:
        self._sink = sink
        self._centroid = centroid

    def observe(self, question: str, retrieval: Retrieval | None, answer: ChatAnswer) -> None:
        try:
            self._sink.record(self.signals(question, retrieval, answer))
        except Exception:
            _log.warning("drift signals not recorded", exc_info=True)

    def signals(self, question: str, retrieval: Retrieval | None, answer: ChatAnswer) -> RequestSignals:
        scores = [
            citation.score for citation in (retrieval.citations if retrieval else ()) if citation.score is not None
        ]
        similarity = None
        if retrieval is not None and retrieval.embedding is not None and self._centroid is not None:
            corpus = self._centroid()
            if corpus:
                similarity = cosine(retrieval.embedding, corpus)
        return RequestSignals(
            question_chars=len(question),
            output_tokens=answer.usage.output_tokens,
            degraded=answer.degraded,
            guardrail_intervened=answer.guardrail_intervened,
            top_score=max(scores) if scores else None,
            centroid_similarity=None if similarity is None else round(similarity, 4),
        )


# --- the drift job ----------------------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class StoredBaseline:
    observations: Mapping[str, Observation]
    version: str  # the `drift.baseline_version` it was recorded under: a new version records a new baseline
    recorded_at: str


class SignalWindow(Protocol):
    def read(self, *, hours: int) -> dict[str, Observation]:
        """Each signal's mean and request count over the last `hours` (signals without data left out)."""
        ...


class BaselineStore(Protocol):
    def load(self) -> StoredBaseline | None: ...

    def save(self, baseline: StoredBaseline) -> None: ...

    def save_centroid(self, vector: Sequence[float]) -> None: ...


class DriftEmitter(Protocol):
    def emit(self, results: Sequence[SignalDrift]) -> None:
        """Each compared signal's drift and, once per comparison, `beyond_bounds(results)` (0 included)."""
        ...


class CorpusVectors(Protocol):
    def sample(self, limit: int) -> list[list[float]]:
        """Up to `limit` of the index's vectors (any, in storage order): enough for the corpus's direction."""
        ...


@dataclass(frozen=True, kw_only=True)
class DriftRun:
    action: str  # "recorded": a (new) baseline was stored; "compared": drift was measured and emitted
    results: tuple[SignalDrift, ...] = ()
    centroid_vectors: int = 0  # how many vectors the corpus centroid was computed from (0: none stored)

    @property
    def breached(self) -> list[str]:
        return [result.signal for result in self.results if result.breached]

    @property
    def beyond_bounds(self) -> int:
        return beyond_bounds(self.results)


def run_drift_job(
    *,
    window: SignalWindow,
    store: BaselineStore,
    emitter: DriftEmitter,
    settings: DriftSettings,
    version: str,
    now: str,
    hours: int = 24,
    corpus: CorpusVectors | None = None,
    centroid_limit: int = 2000,
) -> DriftRun:
    """One run: refresh the corpus centroid (when there is an index), then record the baseline (first run, or a
    new `version`) or compare the window with it and emit the drift of each signal and how many passed their
    bounds."""
    used = 0
    if corpus is not None:
        vectors = corpus.sample(centroid_limit)
        direction = centroid(vectors)
        if direction is not None:
            store.save_centroid(direction)
            used = len(vectors)
    current = window.read(hours=hours)
    stored = store.load()
    if stored is None or stored.version != version:
        store.save(StoredBaseline(observations=current, version=version, recorded_at=now))
        return DriftRun(action="recorded", centroid_vectors=used)
    results = compare(stored.observations, current, settings)
    emitter.emit(results)
    merged = mergeable(stored.observations, current, settings.min_samples)
    if merged != dict(stored.observations):
        store.save(StoredBaseline(observations=merged, version=stored.version, recorded_at=stored.recorded_at))
    return DriftRun(action="compared", results=tuple(results), centroid_vectors=used)
