"""core/drift.py on synthetic shifts: no shift -> no alarm; each signal shifted past its bound -> that signal only;
a shift under the bound -> none; the region's one alarm figure (`beyond_bounds`) counts them, 0 included. And the
chat path's per-request signals: numbers only."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.drift import (
    DEFAULT_BOUNDS,
    SIGNALS,
    DriftObserver,
    DriftSettings,
    Observation,
    RequestSignals,
    SignalDrift,
    StoredBaseline,
    beyond_bounds,
    centroid,
    compare,
    cosine,
    mergeable,
    run_drift_job,
)
from core.models import ChatAnswer, Citation, TargetRef, Usage
from core.retrieval import Retrieval

BASELINE = {
    "question_chars": Observation(mean=120.0, count=1000),
    "output_tokens": Observation(mean=300.0, count=1000),
    "top_score": Observation(mean=0.62, count=800),
    "centroid_similarity": Observation(mean=0.55, count=800),
    "guardrail_rate": Observation(mean=0.02, count=1000),
    "degraded_rate": Observation(mean=0.01, count=1000),
}
SETTINGS = DriftSettings()


def shifted(signal: str, by_bounds: float) -> dict[str, Observation]:
    """The baseline with one signal moved by `by_bounds` times its bound (upward), in the signal's own measure."""
    window = dict(BASELINE)
    before = BASELINE[signal]
    bound = DEFAULT_BOUNDS[signal]
    relative = SIGNALS[signal].measure.value == "relative"
    moved = before.mean * (1 + by_bounds * bound) if relative else before.mean + by_bounds * bound
    window[signal] = Observation(mean=moved, count=500)
    return window


def breached(window: dict[str, Observation]) -> list[str]:
    return [result.signal for result in compare(BASELINE, window, SETTINGS) if result.breached]


def test_no_shift_no_alarm() -> None:
    results = compare(BASELINE, BASELINE, SETTINGS)
    assert [r.signal for r in results] == list(SIGNALS) and not any(r.breached for r in results)
    assert all(r.drift == 0 for r in results)


@pytest.mark.parametrize("signal", list(SIGNALS))
def test_a_signal_shifted_past_its_bound_raises_that_alarm_only(signal: str) -> None:
    assert breached(shifted(signal, 1.5)) == [signal]


@pytest.mark.parametrize("signal", list(SIGNALS))
def test_a_shift_under_the_bound_raises_none(signal: str) -> None:
    assert breached(shifted(signal, 0.5)) == []


@pytest.mark.parametrize("signal", [name for name, spec in SIGNALS.items() if spec.measure.value == "relative"])
def test_a_downward_shift_past_the_bound_counts_too(signal: str) -> None:
    window = {
        **BASELINE,
        signal: Observation(mean=BASELINE[signal].mean * (1 - 1.5 * DEFAULT_BOUNDS[signal]), count=500),
    }
    assert breached(window) == [signal]


def test_the_alarms_figure_counts_the_signals_past_their_bounds_zero_included() -> None:
    assert beyond_bounds(compare(BASELINE, BASELINE, SETTINGS)) == 0
    assert beyond_bounds(compare(BASELINE, shifted("top_score", 1.5), SETTINGS)) == 1
    assert beyond_bounds(compare(BASELINE, shifted("top_score", 0.5), SETTINGS)) == 0
    two = {**shifted("top_score", 2.0), "guardrail_rate": shifted("guardrail_rate", 2.0)["guardrail_rate"]}
    assert beyond_bounds(compare(BASELINE, two, SETTINGS)) == 2
    assert beyond_bounds([]) == 0


def test_the_drift_figure_is_the_relative_change_for_magnitudes_and_the_absolute_one_for_rates() -> None:
    window = {**BASELINE, "question_chars": Observation(mean=180.0, count=500),
              "degraded_rate": Observation(mean=0.11, count=500)}  # fmt: skip
    by_signal = {r.signal: r for r in compare(BASELINE, window, SETTINGS)}
    assert by_signal["question_chars"].drift == pytest.approx(0.5)
    assert by_signal["degraded_rate"].drift == pytest.approx(0.10)
    assert by_signal["degraded_rate"].breached and not by_signal["question_chars"].breached  # 0.5 is not > 0.5


def test_too_few_samples_on_either_side_or_a_missing_signal_is_left_out_not_guessed() -> None:
    window = {**shifted("output_tokens", 3.0), "top_score": Observation(mean=0.1, count=10)}
    del window["centroid_similarity"]
    signals = [r.signal for r in compare(BASELINE, window, SETTINGS)]
    assert "top_score" not in signals and "centroid_similarity" not in signals
    assert breached(window) == ["output_tokens"]


def test_a_zero_baseline_makes_any_change_a_large_relative_drift() -> None:
    baseline = {**BASELINE, "output_tokens": Observation(mean=0.0, count=1000)}
    window = {**BASELINE, "output_tokens": Observation(mean=5.0, count=1000)}
    (result,) = [r for r in compare(baseline, window, SETTINGS) if r.signal == "output_tokens"]
    assert result.breached


def test_bounds_are_validated_with_a_sentence_that_names_the_signal() -> None:
    with pytest.raises(ValueError, match="unknown drift signal"):
        DriftSettings(bounds={"question_length": 0.3})
    with pytest.raises(ValueError, match="guardrail_rate"):
        DriftSettings(bounds={"guardrail_rate": 0})


def test_a_signal_without_a_bound_is_not_compared() -> None:
    only = DriftSettings(bounds={"degraded_rate": 0.05})
    assert [r.signal for r in compare(BASELINE, shifted("question_chars", 5), only)] == ["degraded_rate"]


def test_the_stored_baseline_gains_a_signal_that_started_later_and_keeps_the_others() -> None:
    old = {k: v for k, v in BASELINE.items() if k != "centroid_similarity"}
    window = shifted("question_chars", 3.0)
    merged = mergeable(old, window, 50)
    assert merged["centroid_similarity"] == window["centroid_similarity"]
    assert merged["question_chars"] == BASELINE["question_chars"]  # not moved by today's drift


def test_cosine_and_centroid() -> None:
    assert cosine([1.0, 0.0], [1.0, 0.0]) == pytest.approx(1.0)
    assert cosine([1.0, 0.0], [0.0, 2.0]) == pytest.approx(0.0)
    assert cosine([1.0], [1.0, 0.0]) is None and cosine([0.0, 0.0], [1.0, 0.0]) is None
    assert centroid([[2.0, 0.0], [0.0, 3.0]]) == pytest.approx((0.5, 0.5))
    assert centroid([]) is None


# --- the chat path's signals ----------------------------------------------------------------------
class RecordingSink:
    def __init__(self) -> None:
        self.recorded: list[RequestSignals] = []

    def record(self, signals: RequestSignals) -> None:
        self.recorded.append(signals)


def answer(*, degraded: bool = False, guardrail: bool = False, output_tokens: int = 42) -> ChatAnswer:
    return ChatAnswer(
        conversation_id="c", answer="an answer", usage=Usage(input_tokens=9, output_tokens=output_tokens),
        target=TargetRef(model_id="m", region="r"), turn=0, degraded=degraded, guardrail_intervened=guardrail,
    )  # fmt: skip


def retrieved(scores: list[float], embedding: tuple[float, ...] | None = (1.0, 0.0)) -> Retrieval:
    citations = tuple(
        Citation(source=i + 1, document_id=f"d{i}", name=None, page=None, snippet="s", score=score)
        for i, score in enumerate(scores)
    )
    return Retrieval(passages=(), citations=citations, report=None, embedding=embedding)  # type: ignore[arg-type]


def test_a_request_becomes_numbers_with_the_top_score_and_the_centroid_similarity() -> None:
    sink = RecordingSink()
    observer = DriftObserver(sink=sink, centroid=lambda: (1.0, 1.0))

    observer.observe("how long is the warranty?", retrieved([0.4, 0.9]), answer(guardrail=True))

    (signals,) = sink.recorded
    assert signals == RequestSignals(
        question_chars=25, output_tokens=42, degraded=False, guardrail_intervened=True, top_score=0.9,
        centroid_similarity=round(2**-0.5, 4),
    )  # fmt: skip
    assert signals.values() == {
        "SignalQuestionChars": 25.0, "SignalOutputTokens": 42.0, "SignalGuardrail": 1.0, "SignalDegraded": 0.0,
        "SignalTopScore": 0.9, "SignalCentroidSimilarity": round(2**-0.5, 4),
    }  # fmt: skip


def test_without_retrieval_or_centroid_those_signals_are_absent_and_a_degraded_answer_has_no_length() -> None:
    sink = RecordingSink()
    DriftObserver(sink=sink, centroid=lambda: None).observe("q?", retrieved([], embedding=None), answer(degraded=True))
    assert sink.recorded[0].values() == {"SignalQuestionChars": 2.0, "SignalGuardrail": 0.0, "SignalDegraded": 1.0}


def test_a_broken_sink_never_fails_the_request() -> None:
    class Broken:
        def record(self, signals: RequestSignals) -> None:
            raise RuntimeError("metrics down")

    DriftObserver(sink=Broken()).observe("q", None, answer())  # no exception


@given(question=st.text(min_size=1, max_size=300))
def test_signals_are_numbers_only_whatever_the_question(question: str) -> None:
    sink = RecordingSink()
    DriftObserver(sink=sink, centroid=lambda: (0.5, 0.5)).observe(question, retrieved([0.3]), answer())
    assert all(isinstance(value, float) for value in sink.recorded[0].values().values())
    assert sink.recorded[0].question_chars == len(question)


def test_the_chat_service_records_each_answered_request_with_its_retrieval() -> None:
    from core.chat import ChatService
    from core.models import ChatRequest
    from tests.unit.core.test_chat import MemoryStore
    from tests.unit.core.test_retrieval import LIMITS, FakeIndex, RecordingModel, passage, retriever

    sink = RecordingSink()
    service = ChatService(
        store=MemoryStore(), model=RecordingModel(), limits=LIMITS, deadline_s=25.0,
        retriever=retriever(FakeIndex({"alice": [passage("d1", "the Tagus", 0.77)]})),
        drift=DriftObserver(sink=sink, centroid=lambda: (1.0, 0.0)),
    )  # fmt: skip

    service.answer(user_id="alice", request=ChatRequest(message="Which river?"))

    (signals,) = sink.recorded
    assert signals == RequestSignals(
        question_chars=12, output_tokens=3, degraded=False, guardrail_intervened=False, top_score=0.77,
        centroid_similarity=1.0,
    )  # fmt: skip


# --- the job's run, on in-memory fakes ------------------------------------------------------------------------
class Window:
    def __init__(self, observations: dict[str, Observation]) -> None:
        self.observations = observations

    def read(self, *, hours: int) -> dict[str, Observation]:
        return dict(self.observations)


class MemoryBaselines:
    def __init__(self, stored: StoredBaseline | None = None) -> None:
        self.stored = stored

    def load(self) -> StoredBaseline | None:
        return self.stored

    def save(self, baseline: StoredBaseline) -> None:
        self.stored = baseline

    def save_centroid(self, vector: Sequence[float]) -> None:
        pass


class RecordingEmitter:
    def __init__(self) -> None:
        self.emitted: list[list[SignalDrift]] = []

    def emit(self, results: Sequence[SignalDrift]) -> None:
        self.emitted.append(list(results))


@pytest.mark.parametrize(
    ("window", "expected"),
    [(BASELINE, 0), (shifted("question_chars", 1.5), 1),
     ({**shifted("output_tokens", 3.0), "degraded_rate": shifted("degraded_rate", 3.0)["degraded_rate"]}, 2)],
)  # fmt: skip
def test_a_comparison_run_emits_once_and_reports_how_many_signals_passed_their_bounds(
    window: dict[str, Observation], expected: int
) -> None:
    store = MemoryBaselines(StoredBaseline(observations=BASELINE, version="1", recorded_at="2026-11-20T06:30:00"))
    emitter = RecordingEmitter()

    run = run_drift_job(window=Window(window), store=store, emitter=emitter, settings=SETTINGS, version="1", now="t")

    assert run.action == "compared" and run.beyond_bounds == expected == len(run.breached)
    (emitted,) = emitter.emitted  # one emission per comparison, the zero case too
    assert beyond_bounds(emitted) == expected and len(emitted) == len(SIGNALS)


def test_a_recording_run_emits_nothing() -> None:
    emitter = RecordingEmitter()
    run = run_drift_job(window=Window(BASELINE), store=MemoryBaselines(), emitter=emitter, settings=SETTINGS,
                        version="1", now="t")  # fmt: skip
    assert run.action == "recorded" and run.beyond_bounds == 0 and emitter.emitted == []
