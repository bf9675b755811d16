"""Long workflows: summarize a user's document chapter by chapter, as a durable execution.

Pure: no boto3, no durable-execution SDK. The orchestration (`SummaryWorkflow.run`) is written against the
`Durable` port (one checkpointed step, named), which handlers/workflow.py adapts to the SDK's DurableContext.
A completed step's result is checkpointed by the runtime and returned from the checkpoint on replay, so a
crash after chapter k resumes at chapter k+1 without calling the model again for chapters 1..k.

Throttling: a step whose model call is refused for capacity raises `ModelBusy(delay_s)`; the adapter turns it
into a durable retry (the runtime records the attempt and suspends the execution until the delay has passed:
no compute is billed while it waits). Any other failure ends the job `failed` with a reason the user may read.

The plan (which chunks make which chapter) is computed once, in the first step, and checkpointed: the chapter
steps read their chunks themselves, so no checkpoint carries the document's text, and replays cannot disagree
with the first run about how many steps there are.

Token budget: the user's daily budget (core.limits) is checked at POST /jobs, and again before every model step
(inside the step, so a replay returns the checkpointed decision): a user whose budget is spent midway gets the job
failed with the reset time, not a day-long wait. Each model step's usage is spent in a checkpointed step of its
own (`spend-<step>`), right after it: a replay returns that checkpoint instead of adding the tokens again.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from core.errors import DependencyUnavailable, DomainError, ModelRejected, NotFound, Overloaded
from core.limits import TokenBudgetExceeded, TokenBudgetStatus
from core.models import Message, ModelReply

T = TypeVar("T")

SYSTEM_CHAPTER = (
    "You summarize one part of a longer document for its owner. Write a faithful, concise summary of the part "
    "below in the document's language: its main points, names and figures. Do not invent anything."
)
SYSTEM_COMBINE = (
    "You are given the summaries of a document's consecutive parts, in order. Write one coherent summary of the "
    "whole document from them: an overview first, then the key points. Do not invent anything."
)


class ModelBusy(DomainError):
    """The model could not answer now (throttled, breakers open, degraded): retry the step after `delay_s`."""

    status = 503

    def __init__(self, message: str, *, delay_s: int) -> None:
        super().__init__(message)
        self.delay_s = delay_s


class Superseded(DomainError):
    """The job is no longer this execution's (adopted by the other region, or ended): stop without writing it."""

    status = 409


class WorkflowFailed(DomainError):
    """The workflow cannot finish (document gone, model refused): the job fails with this reason."""

    status = 422


@dataclass(frozen=True, kw_only=True)
class WorkflowSettings:
    chapter_chars: int = 12_000  # text per chapter call: well inside every target's context window
    max_chapters: int = 200  # a bound on steps (and model calls) per document
    max_tokens: int = 1024  # per chapter summary and for the final one (maxTokens is always explicit)
    deadline_s: float = 120.0  # per model call (the gateway's own failover chain runs inside it)
    retry_base_s: int = 10  # first durable wait after a throttled call
    retry_cap_s: int = 300  # longest single wait (the job's heartbeat gap: under the jobs' stranded_after_s)
    max_attempts: int = 12  # attempts per step before the job fails (about 40 min of throttling at the defaults)

    def __post_init__(self) -> None:
        if self.chapter_chars < 500:
            raise ValueError(f"chapter_chars must be at least 500, got {self.chapter_chars}")
        if self.max_chapters < 1 or self.max_attempts < 1 or self.retry_base_s < 1:
            raise ValueError("max_chapters, max_attempts and retry_base_s must be positive")

    def backoff_s(self, attempt: int, hinted_s: int = 0) -> int:
        """The durable wait before `attempt` (1-based, the attempt that failed): exponential, capped, at least
        what the model's own Retry-After said."""
        exponential = self.retry_base_s * (2 ** max(0, attempt - 1))
        return int(max(1, min(self.retry_cap_s, max(hinted_s, exponential))))


@dataclass(frozen=True, kw_only=True)
class ChunkRef:
    index: int
    chars: int
    page: int | None = None


@dataclass(frozen=True, kw_only=True)
class Chapter:
    """Consecutive chunks summarized in one model call: [first, last] inclusive."""

    number: int
    first: int
    last: int

    def to_json(self) -> dict[str, int]:
        return {"number": self.number, "first": self.first, "last": self.last}

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> Chapter:
        return cls(number=int(raw["number"]), first=int(raw["first"]), last=int(raw["last"]))


def plan_chapters(chunks: Sequence[ChunkRef], *, chapter_chars: int, max_chapters: int) -> list[Chapter]:
    """Group consecutive chunks into chapters of about `chapter_chars`, starting a new chapter at a page break
    when the current one is at least half full (chapters follow the document's structure where it has one).
    More chapters than `max_chapters`: the chapter size grows until they fit (each call still gets whole chunks)."""
    if not chunks:
        return []
    ordered = sorted(chunks, key=lambda c: c.index)
    size = chapter_chars
    while True:
        chapters = _group(ordered, size)
        if len(chapters) <= max_chapters:
            return chapters
        size = size * 2


def _group(chunks: Sequence[ChunkRef], size: int) -> list[Chapter]:
    chapters: list[Chapter] = []
    first, used, page = chunks[0].index, 0, chunks[0].page
    previous = chunks[0].index
    for chunk in chunks:
        new_page = chunk.page is not None and page is not None and chunk.page != page
        full = used > 0 and (used + chunk.chars > size or (new_page and used >= size // 2))
        if full:
            chapters.append(Chapter(number=len(chapters) + 1, first=first, last=previous))
            first, used = chunk.index, 0
        used += chunk.chars
        page = chunk.page if chunk.page is not None else page
        previous = chunk.index
    chapters.append(Chapter(number=len(chapters) + 1, first=first, last=previous))
    return chapters


# --- ports -------------------------------------------------------------------------------------------------------
class Durable(Protocol):
    """One checkpointed step: `fn` runs until it returns (its result is stored), or fails for good."""

    def step(self, fn: Callable[[], T], *, name: str) -> T: ...


class ChunkSource(Protocol):
    """The owner's ingested document, as the knowledge index holds it."""

    def outline(self, owner: str, document_id: str) -> list[ChunkRef]:
        """Raises NotFound when the document is not the owner's, or not ready (no chunks)."""
        ...

    def texts(self, owner: str, document_id: str, first: int, last: int) -> list[str]: ...


class Summarizer(Protocol):
    def converse(
        self, *, system: str, messages: Sequence[Message], deadline_s: float, scope: str = "anonymous"
    ) -> ModelReply: ...


class TokenBudget(Protocol):
    """The user's daily token budget (core.limits.UserLimits)."""

    def admit_tokens(self, user_id: str) -> TokenBudgetStatus | None:
        """Raises TokenBudgetExceeded when the day's tokens are spent; None: no budget (or fail-open)."""
        ...

    def spend_tokens(
        self, user_id: str, tokens: int, *, admitted: TokenBudgetStatus | None = None
    ) -> TokenBudgetStatus | None: ...


class WorkflowStarter(Protocol):
    """Starts a job kind's durable execution (asynchronously; idempotent per job id)."""

    def start(self, kind: str, payload: dict[str, Any]) -> None: ...


class ProgressSink(Protocol):
    """The job record: steps done of total while running, then its terminal state."""

    def running(self, user_id: str, job_id: str, *, done: int, total: int) -> bool:
        """False when the job is not open here any more (adopted elsewhere, failed as stale)."""
        ...

    def finish(self, user_id: str, job_id: str, answer: dict[str, Any]) -> None: ...

    def fail(self, user_id: str, job_id: str, reason: str) -> None: ...


# --- the workflow ------------------------------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class SummaryRequest:
    job_id: str
    user_id: str
    document_id: str

    @classmethod
    def from_event(cls, event: dict[str, Any]) -> SummaryRequest:
        try:
            return cls(
                job_id=str(event["job_id"]), user_id=str(event["user_id"]), document_id=str(event["document_id"])
            )
        except (KeyError, TypeError) as error:
            raise WorkflowFailed("the workflow input lacks job_id, user_id or document_id") from error


class SummaryWorkflow:
    """plan -> one step per chapter (summary + progress) -> combine -> finish. Total steps = chapters + 1
    (the combining call); progress counts model steps done of that total."""

    def __init__(
        self,
        *,
        chunks: ChunkSource,
        model: Summarizer,
        progress: ProgressSink,
        settings: WorkflowSettings,
        budget: TokenBudget | None = None,
        on_tokens: Callable[[ModelReply], None] | None = None,
    ) -> None:
        """`on_tokens`: told of every model reply's tokens inside the step that called the model (a step retried
        after a crash calls the model, and spends its tokens, again: so is it told again)."""
        self._chunks = chunks
        self._model = model
        self._progress = progress
        self.settings = settings
        self._budget = budget  # the users' daily token budgets (None: none configured)
        self._on_tokens = on_tokens

    def run(self, durable: Durable, request: SummaryRequest) -> dict[str, Any]:
        try:
            plan = durable.step(lambda: self._plan(request), name="plan")
            chapters = [Chapter.from_json(c) for c in plan["chapters"]]
            total = len(chapters) + 1
            summaries: list[dict[str, Any]] = []
            for chapter in chapters:
                summary = durable.step(
                    lambda chapter=chapter: self._chapter(request, chapter, total),  # type: ignore[misc]
                    name=f"chapter-{chapter.number}",
                )
                self._spend(durable, request, summary, name=f"spend-chapter-{chapter.number}")
                summaries.append(summary)
            final = durable.step(lambda: self._combine(request, summaries, total), name="combine")
            self._spend(durable, request, final, name="spend-combine")
        except Superseded as superseded:  # another execution (region) owns the job: leave it alone
            return {"outcome": "superseded", "reason": superseded.message}
        except WorkflowFailed as failed:
            reason = failed.message
            durable.step(lambda: self._fail(request, reason), name="fail")
            return {"outcome": "failed", "reason": reason}
        answer = {
            "summary": final["text"],
            "chapters": [{"number": s["number"], "summary": s["text"]} for s in summaries],
            "target": final["target"],
            "usage": _usage_total([*summaries, final]),
            "degraded": False,
        }
        durable.step(lambda: self._progress.finish(request.user_id, request.job_id, answer), name="finish")
        return {"outcome": "answered", "chapters": len(chapters)}

    # Each of these runs inside one step: its result is the checkpoint.
    def _plan(self, request: SummaryRequest) -> dict[str, Any]:
        try:
            outline = self._chunks.outline(request.user_id, request.document_id)
        except NotFound as error:
            raise WorkflowFailed(error.message) from error
        except DependencyUnavailable as error:
            raise ModelBusy(error.message, delay_s=error.retry_after) from error
        chapters = plan_chapters(
            outline, chapter_chars=self.settings.chapter_chars, max_chapters=self.settings.max_chapters
        )
        if not chapters:
            raise WorkflowFailed(f"document {request.document_id} has no text to summarize")
        self._progress.running(request.user_id, request.job_id, done=0, total=len(chapters) + 1)
        return {"chapters": [c.to_json() for c in chapters]}

    def _chapter(self, request: SummaryRequest, chapter: Chapter, total: int) -> dict[str, Any]:
        # Every attempt refreshes the job's heartbeat: a step retried after a durable wait is not a stranded job.
        self._heartbeat(request, done=chapter.number - 1, total=total)
        self._admit(request, f"before part {chapter.number} of {total - 1}")
        try:
            texts = self._chunks.texts(request.user_id, request.document_id, chapter.first, chapter.last)
        except NotFound as error:  # deleted while the workflow ran
            raise WorkflowFailed(error.message) from error
        except DependencyUnavailable as error:
            raise ModelBusy(error.message, delay_s=error.retry_after) from error
        part = "\n\n".join(texts)
        reply = self._ask(SYSTEM_CHAPTER, f"Part {chapter.number}:\n\n{part}", request.user_id)
        self._progress.running(request.user_id, request.job_id, done=chapter.number, total=total)
        return {"number": chapter.number, **_reply_json(reply)}

    def _combine(self, request: SummaryRequest, summaries: list[dict[str, Any]], total: int) -> dict[str, Any]:
        if len(summaries) == 1:  # one chapter: its summary is the document's; no second call
            self._progress.running(request.user_id, request.job_id, done=total, total=total)
            return {**summaries[0], "usage": {"input_tokens": 0, "output_tokens": 0}}
        self._heartbeat(request, done=total - 1, total=total)
        self._admit(request, "before combining the parts' summaries")
        parts = "\n\n".join(f"Part {s['number']} summary:\n{s['text']}" for s in summaries)
        reply = self._ask(SYSTEM_COMBINE, parts, request.user_id)
        self._progress.running(request.user_id, request.job_id, done=total, total=total)
        return _reply_json(reply)

    def _admit(self, request: SummaryRequest, where: str) -> None:
        """Runs inside a model step, before its call: past the budget the job fails (not retried: the budget
        resets at UTC midnight, longer than any durable wait should be), with the reset time in the reason."""
        if self._budget is None:
            return
        try:
            self._budget.admit_tokens(request.user_id)
        except TokenBudgetExceeded as error:
            raise WorkflowFailed(
                f"the summary stopped {where}: {error.message}; submit it again after the reset"
            ) from error

    def _spend(self, durable: Durable, request: SummaryRequest, step: dict[str, Any], *, name: str) -> None:
        """Add one model step's usage to the user's budget, in a step of its own: once per model step, whatever
        the replays (a replay returns this checkpoint). No model call (usage 0): no step."""
        tokens = int(step["usage"]["input_tokens"]) + int(step["usage"]["output_tokens"])
        if self._budget is None or tokens <= 0:
            return
        budget = self._budget

        def spend() -> dict[str, int]:  # the checkpoint: the tokens added, nothing of the user's text
            budget.spend_tokens(request.user_id, tokens)
            return {"tokens": tokens}

        durable.step(spend, name=name)

    def _heartbeat(self, request: SummaryRequest, *, done: int, total: int) -> None:
        if not self._progress.running(request.user_id, request.job_id, done=done, total=total):
            raise Superseded(f"job {request.job_id} is no longer open in this region; this execution stops")

    def _ask(self, system: str, text: str, user_id: str) -> ModelReply:
        try:
            reply = self._model.converse(
                system=system,
                messages=[Message(role="user", text=text)],
                deadline_s=self.settings.deadline_s,
                scope=user_id,
            )
        except (Overloaded, DependencyUnavailable) as error:
            raise ModelBusy(error.message, delay_s=error.retry_after) from error
        except ModelRejected as error:
            raise WorkflowFailed(f"the model refused part of the document: {error.message}") from error
        if reply.degraded:  # a degraded text is not a summary: wait for a model
            raise ModelBusy(f"no model answered ({reply.degraded_reason})", delay_s=0)
        if self._on_tokens is not None:
            self._on_tokens(reply)
        return reply

    def _fail(self, request: SummaryRequest, reason: str) -> None:
        self._progress.fail(request.user_id, request.job_id, reason)


def _reply_json(reply: ModelReply) -> dict[str, Any]:
    return {
        "text": reply.text,
        "target": {"model_id": reply.target.model_id, "region": reply.target.region},
        "usage": {"input_tokens": reply.usage.input_tokens, "output_tokens": reply.usage.output_tokens},
    }


def _usage_total(parts: Sequence[dict[str, Any]]) -> dict[str, int]:
    return {
        "input_tokens": sum(int(p["usage"]["input_tokens"]) for p in parts),
        "output_tokens": sum(int(p["usage"]["output_tokens"]) for p in parts),
    }
