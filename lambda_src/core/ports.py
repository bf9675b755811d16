"""Ports: what the core needs from the outside world. Adapters implement them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from core.models import Conversation, Job, Message, ModelReply, TargetRef, Turn


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


class TargetModel(Protocol):
    """One model target (model x region): one call, bounded by `timeout_s`."""

    @property
    def target(self) -> TargetRef: ...

    def call(self, *, system: str, messages: Sequence[Message], timeout_s: float) -> ModelReply:
        """Raises core.errors.TargetCallError with the runtime error code on failure."""
        ...


class AnswerCache(Protocol):
    def get(self, key: str) -> str | None: ...

    def put(self, key: str, text: str, ttl_s: int) -> None: ...


class GatewayMetrics(Protocol):
    def record(self, *, event: str, target: TargetRef, detail: str = "", latency_s: float | None = None) -> None:
        """event: attempt | retry | failover | hedge | skipped | breaker | degraded | misconfigured | cache_error."""
        ...


class JobStore(Protocol):
    def create(self, job: Job) -> tuple[Job, bool]:
        """Store `job` unless one with its id exists; return the stored job and whether it is new."""
        ...

    def get(self, user_id: str, job_id: str) -> Job | None: ...

    def mark_enqueued(self, user_id: str, job_id: str) -> None: ...

    def mark_running(self, user_id: str, job_id: str, *, reopen: bool = False) -> None:
        """queued -> running; with `reopen` also failed -> running (a redriven job)."""
        ...

    def finish(self, user_id: str, job_id: str, answer: dict[str, Any], *, ttl_s: int) -> Job | None:
        """Set done with the answer unless already finished; the finished job, or None if it was."""
        ...

    def fail(self, user_id: str, job_id: str, reason: str, *, ttl_s: int, reopen: bool = False) -> Job | None:
        """Set failed with the reason unless already finished (with `reopen`, unless done)."""
        ...


class JobQueue(Protocol):
    def send(self, body: dict[str, Any], *, delay_s: int = 0) -> None: ...


class UsageCounters(Protocol):
    """Per-user counters in fixed windows, shared by every per-user limit (request rate, token budgets)."""

    def add(self, user_id: str, counter: str, *, amount: int, limit: int, expires_at: int) -> bool:
        """Atomically add `amount` unless the counter would pass `limit`; True if it was added."""
        ...


class OpenJobSlots(Protocol):
    """The set of a user's unfinished jobs, for the cap on open jobs (idempotent by job id)."""

    def reserve(self, user_id: str, job_id: str, *, cap: int) -> bool:
        """Hold a slot for `job_id` (already held: True); False when `cap` slots are held by others."""
        ...

    def release(self, user_id: str, job_id: str) -> None: ...

    def held(self, user_id: str) -> list[str]: ...
