"""core/workflow.py without the SDK: chapter planning, the backoff, and the run against an in-memory Durable that
checkpoints like the runtime (a completed step's result is returned on replay, never recomputed)."""

from __future__ import annotations

from collections.abc import Callable
from itertools import pairwise
from typing import Any, TypeVar

import pytest

from core.errors import ModelRejected, NotFound, Overloaded
from core.limits import UserLimits, UserLimitSettings
from core.models import ModelReply, TargetRef, Usage
from core.workflow import (
    Chapter,
    ChunkRef,
    ModelBusy,
    SummaryRequest,
    SummaryWorkflow,
    WorkflowFailed,
    WorkflowSettings,
    plan_chapters,
)
from tests.unit.core.test_limits import MemoryCounters

T = TypeVar("T")
REQUEST = SummaryRequest(job_id="job-1", user_id="alice", document_id="doc")


def refs(*sizes: int, pages: list[int | None] | None = None) -> list[ChunkRef]:
    return [ChunkRef(index=i, chars=n, page=(pages[i] if pages else None)) for i, n in enumerate(sizes)]


# --- planning --------------------------------------------------------------------------------------------------
def test_chapters_group_consecutive_chunks_up_to_the_size() -> None:
    chapters = plan_chapters(refs(400, 400, 400, 400, 400), chapter_chars=1000, max_chapters=10)

    assert [(c.first, c.last) for c in chapters] == [(0, 1), (2, 3), (4, 4)]
    assert [c.number for c in chapters] == [1, 2, 3]


def test_a_page_break_starts_a_chapter_once_it_is_half_full_but_not_before() -> None:
    pages: list[int | None] = [1, 1, 2, 2, 3]
    chapters = plan_chapters(refs(300, 300, 300, 100, 100, pages=pages), chapter_chars=1000, max_chapters=10)
    assert [(c.first, c.last) for c in chapters] == [(0, 1), (2, 4)]  # page 3 comes at 400 of 1000: kept

    tiny = plan_chapters(refs(100, 100, 100, pages=[1, 2, 3]), chapter_chars=1000, max_chapters=10)
    assert [(c.first, c.last) for c in tiny] == [(0, 2)]


def test_too_many_chapters_grow_the_chapter_size_until_they_fit_and_one_oversized_chunk_is_its_own() -> None:
    chapters = plan_chapters(refs(*[600] * 40), chapter_chars=600, max_chapters=7)
    assert len(chapters) <= 7 and chapters[0].first == 0 and chapters[-1].last == 39
    assert all(a.last + 1 == b.first for a, b in pairwise(chapters))  # no gap, no overlap

    assert [(c.first, c.last) for c in plan_chapters(refs(5000, 10), chapter_chars=1000, max_chapters=5)] == [
        (0, 0),
        (1, 1),
    ]
    assert plan_chapters([], chapter_chars=1000, max_chapters=5) == []
    # Order comes from the chunk index, not the order the index returned them in.
    shuffled = list(reversed(refs(400, 400, 400)))
    assert [(c.first, c.last) for c in plan_chapters(shuffled, chapter_chars=1000, max_chapters=5)] == [(0, 1), (2, 2)]


def test_a_chapter_round_trips_through_its_checkpoint() -> None:
    chapter = Chapter(number=3, first=7, last=9)
    assert Chapter.from_json(chapter.to_json()) == chapter


# --- the retry rule ------------------------------------------------------------------------------------------------
def test_backoff_doubles_from_the_base_is_capped_and_honours_a_longer_hint() -> None:
    settings = WorkflowSettings(retry_base_s=10, retry_cap_s=300)

    assert [settings.backoff_s(a) for a in (1, 2, 3, 4, 5, 6, 7)] == [10, 20, 40, 80, 160, 300, 300]
    assert settings.backoff_s(1, hinted_s=45) == 45
    assert settings.backoff_s(1, hinted_s=10_000) == 300  # never longer than the cap (the heartbeat gap)


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="chapter_chars"):
        WorkflowSettings(chapter_chars=100)
    with pytest.raises(ValueError, match="positive"):
        WorkflowSettings(max_attempts=0)


# --- the run -----------------------------------------------------------------------------------------------------
class Checkpoints:
    """The runtime's contract: a completed step's result is stored and returned on replay; a failing step's
    exception propagates (the SDK's retries are the handler's business: tests/unit/handlers/test_workflow.py)."""

    def __init__(self) -> None:
        self.results: dict[str, Any] = {}
        self.ran: list[str] = []

    def step(self, fn: Callable[[], T], *, name: str) -> T:
        if name in self.results:
            return self.results[name]  # type: ignore[no-any-return]
        self.ran.append(name)
        result = fn()
        self.results[name] = result
        return result


class Chunks:
    def __init__(self, outline: list[ChunkRef], *, missing: bool = False) -> None:
        self._outline, self.missing = outline, missing

    def outline(self, owner: str, document_id: str) -> list[ChunkRef]:
        if self.missing or owner != "alice":
            raise NotFound(f"document {document_id} was not found")
        return self._outline

    def texts(self, owner: str, document_id: str, first: int, last: int) -> list[str]:
        return [f"text {i}" for i in range(first, last + 1)]


class Model:
    def __init__(self) -> None:
        self.calls = 0
        self.fail: Exception | None = None
        self.degraded = False

    def converse(self, *, system: str, messages: Any, deadline_s: float, scope: str = "anonymous") -> ModelReply:
        if self.fail is not None:
            raise self.fail
        self.calls += 1
        return ModelReply(
            text=f"summary {self.calls}", usage=Usage(input_tokens=10, output_tokens=2),
            target=TargetRef(model_id="m", region="r"), degraded=self.degraded, degraded_reason="all down",
        )  # fmt: skip


class Progress:
    def __init__(self) -> None:
        self.beats: list[tuple[int, int]] = []
        self.finished: dict[str, Any] | None = None
        self.failed: str | None = None
        self.open = True

    def running(self, user_id: str, job_id: str, *, done: int, total: int) -> bool:
        self.beats.append((done, total))
        return self.open

    def finish(self, user_id: str, job_id: str, answer: dict[str, Any]) -> None:
        self.finished = answer

    def fail(self, user_id: str, job_id: str, reason: str) -> None:
        self.failed = reason


def world(
    sizes: tuple[int, ...] = (600, 600, 600), *, budget: UserLimits | None = None, **chunk_options: Any
) -> tuple[SummaryWorkflow, Model, Progress]:
    model, progress = Model(), Progress()
    flow = SummaryWorkflow(
        chunks=Chunks(refs(*sizes), **chunk_options), model=model, progress=progress,
        settings=WorkflowSettings(chapter_chars=600), budget=budget,
    )  # fmt: skip
    return flow, model, progress


def test_each_chapter_is_one_call_then_one_combining_call_with_progress_and_usage() -> None:
    flow, model, progress = world()
    durable = Checkpoints()

    assert flow.run(durable, REQUEST) == {"outcome": "answered", "chapters": 3}
    assert durable.ran == ["plan", "chapter-1", "chapter-2", "chapter-3", "combine", "finish"]
    assert model.calls == 4 and progress.finished is not None
    assert progress.finished["summary"] == "summary 4" and len(progress.finished["chapters"]) == 3
    assert progress.finished["usage"] == {"input_tokens": 40, "output_tokens": 8}
    assert progress.beats[-1] == (4, 4) and (3, 4) in progress.beats  # heartbeat before combining


def test_a_replay_after_a_crash_returns_completed_steps_from_their_checkpoints() -> None:
    flow, model, _ = world()
    durable = Checkpoints()
    model.fail = RuntimeError("crash")
    durable.results = {
        "plan": {
            "chapters": [c.to_json() for c in plan_chapters(refs(600, 600, 600), chapter_chars=600, max_chapters=9)]
        }
    }
    durable.results["chapter-1"] = {"number": 1, "text": "s1", "target": {"model_id": "m", "region": "r"},
                                    "usage": {"input_tokens": 1, "output_tokens": 1}}  # fmt: skip
    with pytest.raises(RuntimeError):
        flow.run(durable, REQUEST)
    model.fail = None

    flow.run(durable, REQUEST)
    assert model.calls == 3  # chapters 2, 3 and the combination; chapter 1 came from its checkpoint
    assert durable.ran.count("chapter-1") == 0


def test_a_throttled_or_degraded_model_is_a_wait_not_a_failure() -> None:
    flow, model, _ = world()
    model.fail = Overloaded("throttled", retry_after=7)
    with pytest.raises(ModelBusy) as busy:
        flow.run(Checkpoints(), REQUEST)
    assert busy.value.delay_s == 7

    flow, model, _ = world()
    model.degraded = True
    with pytest.raises(ModelBusy, match="no model answered"):
        flow.run(Checkpoints(), REQUEST)


@pytest.mark.parametrize(
    ("setup", "reason"),
    [
        (lambda m: setattr(m, "fail", ModelRejected("input too long")), "the model refused part of the document"),
    ],
)
def test_a_refusal_fails_the_job_with_a_reason(setup: Callable[[Model], None], reason: str) -> None:
    flow, model, progress = world()
    setup(model)

    # The adapter turns a step's WorkflowFailed into the run's; here the fake lets it propagate from the step.
    result = flow.run(Checkpoints(), REQUEST)
    assert result["outcome"] == "failed" and reason in result["reason"]
    assert progress.failed is not None and reason in progress.failed and progress.finished is None


def test_another_users_or_a_missing_document_fails_the_job_as_not_found_with_no_model_call() -> None:
    for request, chunks in (
        (SummaryRequest(job_id="j", user_id="bob", document_id="doc"), {}),
        (REQUEST, {"missing": True}),
    ):
        flow, model, progress = world(**chunks)
        result = flow.run(Checkpoints(), request)
        assert result["outcome"] == "failed" and "was not found" in result["reason"]
        assert model.calls == 0 and progress.failed is not None


def test_an_empty_document_fails_with_its_own_reason() -> None:
    flow, _, progress = world(sizes=())
    assert flow.run(Checkpoints(), REQUEST)["reason"] == "document doc has no text to summarize"
    assert progress.failed == "document doc has no text to summarize"


def test_a_job_adopted_elsewhere_stops_the_execution_without_writing_the_job() -> None:
    flow, model, progress = world()
    progress.open = False

    result = flow.run(Checkpoints(), REQUEST)
    assert result["outcome"] == "superseded"
    assert model.calls == 0 and progress.failed is None and progress.finished is None


def test_a_request_without_its_ids_is_refused() -> None:
    with pytest.raises(WorkflowFailed, match="job_id"):
        SummaryRequest.from_event({"job_id": "j"})


# --- the daily token budget --------------------------------------------------------------------------------------
MORNING = 1_800_000_000.0  # 2027-01-15T08:00:00Z; the budget resets at 2027-01-16T00:00:00Z


def budget(counters: MemoryCounters, *, daily: int) -> UserLimits:
    return UserLimits(counters=counters, settings=UserLimitSettings(daily_tokens=daily), region="r",
                      clock=lambda: MORNING)  # fmt: skip


class CrashingCheckpoints(Checkpoints):
    """Checkpoints whose invocation dies once just before running the step named `before` (after the previous
    step's checkpoint was written): the next run is the runtime's replay."""

    def __init__(self, before: str) -> None:
        super().__init__()
        self._before: str | None = before

    def step(self, fn: Callable[[], T], *, name: str) -> T:
        if name == self._before and name not in self.results:
            self._before = None
            raise RuntimeError("the execution environment died")
        return super().step(fn, name=name)


def test_each_model_steps_usage_is_spent_once_even_across_a_crash_and_replays() -> None:
    counters = MemoryCounters()
    flow, model, _ = world(budget=budget(counters, daily=1_000_000))
    durable = CrashingCheckpoints(before="spend-chapter-2")  # chapter 2 answered and checkpointed, not yet spent

    with pytest.raises(RuntimeError):
        flow.run(durable, REQUEST)
    assert counters.total("alice", "tokens#") == 12  # chapter 1 only (10 in + 2 out)

    assert flow.run(durable, REQUEST)["outcome"] == "answered"  # the replay
    assert flow.run(durable, REQUEST)["outcome"] == "answered"  # a replay of the finished execution

    assert model.calls == 4 and counters.total("alice", "tokens#") == 4 * 12  # 3 chapters + the combination
    spends = [name for name in durable.ran if name.startswith("spend-")]
    assert spends == ["spend-chapter-1", "spend-chapter-2", "spend-chapter-3", "spend-combine"]
    assert durable.results["spend-chapter-2"] == {"tokens": 12}  # the checkpoint: a count, none of the text


def test_a_budget_spent_midway_fails_the_job_with_the_reset_time_and_asks_no_more() -> None:
    counters = MemoryCounters()
    flow, model, progress = world(budget=budget(counters, daily=20))  # 12 tokens per call: 2 calls admitted

    result = flow.run(Checkpoints(), REQUEST)

    assert result["outcome"] == "failed" and model.calls == 2 and progress.finished is None
    assert progress.failed == result["reason"]
    assert result["reason"].startswith("the summary stopped before part 3 of 3: your daily token budget is used")
    assert "24 of 20 tokens" in result["reason"] and "resets at 2027-01-16T00:00:00Z" in result["reason"]
    assert counters.total("alice", "tokens#") == 24  # what the model did answer is counted


def test_the_combining_call_is_admitted_too_and_one_chapter_spends_only_its_own_call() -> None:
    counters = MemoryCounters()
    flow, model, _ = world(budget=budget(counters, daily=36))  # 3 chapters spend 36: no combination
    result = flow.run(Checkpoints(), REQUEST)
    assert model.calls == 3 and "before combining the parts' summaries" in result["reason"]

    counters = MemoryCounters()
    flow, model, _ = world(sizes=(600,), budget=budget(counters, daily=100))
    durable = Checkpoints()
    assert flow.run(durable, REQUEST)["outcome"] == "answered"
    assert model.calls == 1 and counters.total("alice", "tokens#") == 12 and "spend-combine" not in durable.ran


def test_each_model_calls_tokens_are_told_once_and_a_checkpointed_step_tells_nothing_again() -> None:
    """on_tokens (the handler's per-target token metrics) hears every model reply inside its step: one per call,
    none for a step a replay returns from its checkpoint, none for a degraded (no model) reply."""
    told: list[tuple[str, int, int]] = []
    model, progress = Model(), Progress()
    flow = SummaryWorkflow(
        chunks=Chunks(refs(600, 600, 600)), model=model, progress=progress,
        settings=WorkflowSettings(chapter_chars=600),
        on_tokens=lambda reply: told.append(
            (reply.target.model_id, reply.usage.input_tokens, reply.usage.output_tokens)
        ),
    )  # fmt: skip
    durable = Checkpoints()
    model.fail = RuntimeError("crash")
    durable.results = {
        "plan": {
            "chapters": [c.to_json() for c in plan_chapters(refs(600, 600, 600), chapter_chars=600, max_chapters=9)]
        },
        "chapter-1": {"number": 1, "text": "s1", "target": {"model_id": "m", "region": "r"},
                      "usage": {"input_tokens": 1, "output_tokens": 1}},
    }  # fmt: skip
    with pytest.raises(RuntimeError):
        flow.run(durable, REQUEST)
    assert told == []  # the failed call spent nothing
    model.fail = None

    assert flow.run(durable, REQUEST)["outcome"] == "answered"
    assert len(told) == model.calls == 3  # chapters 2 and 3 and the combination; chapter 1 is its checkpoint
    assert sum(i for _, i, _ in told) + 1 == progress.finished["usage"]["input_tokens"]  # type: ignore[index]
