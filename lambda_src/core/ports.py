"""Ports: what the core needs from the outside world. Adapters implement them."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import Any, Protocol

from core.models import Conversation, Job, Message, ModelReply, OpenJob, TargetRef, Turn


class ConversationStore(Protocol):
    def get(self, user_id: str, conversation_id: str, *, last_turns: int | None = None) -> Conversation | None:
        """The conversation with (up to) its last turns in order, or None if this user has none by that id."""
        ...

    def list(self, user_id: str) -> list[Conversation]: ...

    def append_turn(self, user_id: str, conversation_id: str, *, expected_turns: int, turn: Turn, title: str) -> None:
        """Store `turn` as turn number `expected_turns`; raises Conflict if another write got there first."""
        ...

    def delete(self, user_id: str, conversation_id: str) -> bool:
        """True if something was deleted."""
        ...


class ConversationResidue(Protocol):
    """Copies of a conversation's text outside the conversations table, removed when it is deleted."""

    def purge(self, user_id: str, conversation_id: str, *, cache_keys: Sequence[str]) -> None:
        """Remove the cached answers stored under `cache_keys`, the conversation's jobs and their
        idempotency records. Idempotent: what is already gone is skipped."""
        ...


class ChatModel(Protocol):
    @property
    def target(self) -> TargetRef: ...

    def converse(
        self, *, system: str, messages: Sequence[Message], deadline_s: float, scope: str = "anonymous"
    ) -> ModelReply:
        """An answer within `deadline_s` seconds (possibly degraded), or a domain error for bad input.

        `scope` (the user or tenant) keys any cached answer so it is never shared across scopes.
        """
        ...

    def stream(
        self, *, system: str, messages: Sequence[Message], deadline_s: float, scope: str = "anonymous"
    ) -> ReplyStream:
        """As `converse`, but returns once an answer's first token is known to come: failover, hedging and the
        breakers act before that; after it, a break ends the stream (the reply is marked incomplete)."""
        ...


class TargetModel(Protocol):
    """One model target (model x region): one call, bounded by `timeout_s`."""

    @property
    def target(self) -> TargetRef: ...

    def call(self, *, system: str, messages: Sequence[Message], timeout_s: float) -> ModelReply:
        """Raises core.errors.TargetCallError with the runtime error code on failure."""
        ...


class TargetStream(Protocol):
    """One target's answer as it is generated: text chunks, then the reply's usage and stop reason."""

    def __iter__(self) -> Iterator[str]:
        """The text as it comes (no empty chunks). Raises core.errors.TargetCallError when the stream breaks,
        and when no chunk arrives within the call's `timeout_s` (a stall)."""
        ...

    def reply(self) -> ModelReply:
        """After the chunks ran out: the whole text with its usage, stop reason and target."""
        ...

    def close(self) -> None:
        """Stop reading (a hedge won, the deadline passed): the connection is released."""
        ...


class StreamingTargetModel(TargetModel, Protocol):
    """A target that can stream (Bedrock ConverseStream). Others answer a stream request in one chunk."""

    def stream(self, *, system: str, messages: Sequence[Message], timeout_s: float) -> TargetStream:
        """Starts the call; raises core.errors.TargetCallError when it fails before its first byte."""
        ...


class ReplyStream(Protocol):
    """The gateway's streamed answer, committed to one target (or a degraded / cached answer, in one chunk)."""

    @property
    def target(self) -> TargetRef: ...

    def __iter__(self) -> Iterator[str]:
        """The text chunks; never raises for a break after the first token (the reply says it is incomplete)."""
        ...

    def reply(self) -> ModelReply:
        """After the chunks: the answer as given (`incomplete` when the stream broke or ran out of time)."""
        ...

    def close(self) -> None: ...


class AnswerCache(Protocol):
    def get(self, key: str) -> str | None: ...

    def put(self, key: str, text: str, ttl_s: int) -> None: ...


class GatewayMetrics(Protocol):
    def record(self, *, event: str, target: TargetRef, detail: str = "", latency_s: float | None = None) -> None:
        """event: attempt | retry | failover | hedge | skipped | breaker | degraded | misconfigured | cache_error |
        stream_broken | stream_abandoned."""
        ...


class JobStore(Protocol):
    """The jobs table as one region sees it (its replica of the global table).

    Every open job has an owner region (the one whose queue holds it) and a heartbeat that the owner
    refreshes whenever it works on the job; another region may adopt the job once the heartbeat is old."""

    @property
    def region(self) -> str:
        """This store's region: new jobs are owned by it, and it may adopt jobs another region left."""
        ...

    def create(self, job: Job) -> tuple[Job, bool]:
        """Store `job` unless one with its id exists; return the stored job and whether it is new."""
        ...

    def get(self, user_id: str, job_id: str) -> Job | None: ...

    def mark_enqueued(self, user_id: str, job_id: str) -> None:
        """Its message was sent: set enqueued and refresh the heartbeat, while the job is open and ours."""
        ...

    def mark_running(self, user_id: str, job_id: str, *, reopen: bool = False) -> str | None:
        """queued -> running (with `reopen` also failed -> running: a redriven job), refreshing the heartbeat.
        Returns the owner region when another region owns the open job (then nothing changes), else None."""
        ...

    def heartbeat(self, user_id: str, job_id: str) -> bool:
        """Refresh the heartbeat of an open job this region owns; False if it is finished or owned elsewhere."""
        ...

    def claim(self, user_id: str, job_id: str, *, owner_region: str | None, heartbeat_at: float | None) -> bool:
        """Make this region the owner of the open job (heartbeat now, not yet enqueued) if its owner and
        heartbeat are still the ones given (what the caller saw); False when someone changed it first."""
        ...

    def open_jobs(self, owner_region: str, *, heartbeat_before: float) -> Iterator[OpenJob]:
        """Open jobs owned by `owner_region` whose heartbeat is at or before `heartbeat_before`, oldest first.
        Read from an index (eventually consistent): a claim re-checks what it saw."""
        ...

    def finish(self, user_id: str, job_id: str, answer: dict[str, Any], *, ttl_s: int) -> Job | None:
        """Set done with the answer unless already finished; the finished job, or None if it was."""
        ...

    def fail(self, user_id: str, job_id: str, reason: str, *, ttl_s: int, reopen: bool = False) -> Job | None:
        """Set failed with the reason unless already finished (with `reopen`, unless done)."""
        ...


class JobQueue(Protocol):
    def send(self, body: dict[str, Any], *, delay_s: int = 0) -> None: ...


class JobEvents(Protocol):
    """Counts of what disaster recovery did (metrics; never a job's text)."""

    def record(self, event: str) -> None:
        """event: adopted | resent | stale_failed | claim_lost | owned_elsewhere."""
        ...


class UsageCounters(Protocol):
    """Per-user counters in fixed windows, shared by every per-user limit (request rate, token budgets)."""

    def add(self, user_id: str, counter: str, *, amount: int, limit: int, expires_at: int) -> bool:
        """Atomically add `amount` unless the counter would pass `limit`; True if it was added."""
        ...

    def increment(self, user_id: str, counter: str, *, amount: int, expires_at: int) -> None:
        """Atomically add `amount`, unconditionally (spent tokens: the answer was given)."""
        ...

    def total(self, user_id: str, prefix: str) -> int:
        """The sum of the user's counters whose name starts with `prefix` (every region's item of a day)."""
        ...


class OpenJobSlots(Protocol):
    """The set of a user's unfinished jobs, for the cap on open jobs (idempotent by job id)."""

    def reserve(self, user_id: str, job_id: str, *, cap: int) -> bool:
        """Hold a slot for `job_id` (already held: True); False when `cap` slots are held by others."""
        ...

    def release(self, user_id: str, job_id: str) -> None: ...

    def held(self, user_id: str) -> list[str]: ...


SpanValue = str | int | float | bool


class Span(Protocol):
    """One traced step (an X-Ray subsegment in Lambda). Attributes are what explains a slow answer: target
    names, outcomes, timeouts, counts, scores. Never a prompt, an answer or a document's text."""

    def set(self, key: str, value: SpanValue) -> None: ...


class Tracing(Protocol):
    """Where spans go. The core opens them; an adapter (adapters/tracing.py) turns them into subsegments."""

    def span(self, name: str) -> AbstractContextManager[Span]: ...


class _NoSpan:
    def set(self, key: str, value: SpanValue) -> None:
        return None


class NoTracing:
    """The default: spans cost a context manager and nothing else."""

    _span = _NoSpan()

    def span(self, name: str) -> AbstractContextManager[Span]:
        return nullcontext(self._span)


NO_TRACING: Tracing = NoTracing()
