"""The async jobs use case: accept fast, answer later, never lose a request.

submit: a job row (keyed by the user and an idempotency key, so a retried submit is the same job)
then a queue message. process (in the worker, inside Powertools idempotency): answer with the
same ChatService/gateway as /chat; a degraded answer is not an answer for a job, so the message
goes back to the queue with a delay; a job older than its limit fails with a clear reason.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from core.chat import ChatService
from core.errors import (
    DependencyUnavailable,
    DomainError,
    InvalidRequest,
    ModelRejected,
    NotFound,
    Overloaded,
    TooManyRequests,
)
from core.models import ChatRequest, Job
from core.ports import JobQueue, JobStore, OpenJobSlots
from core.resilience import RateLimiter

_NAMESPACE = uuid.UUID("6f1c2b1e-7d0a-4b8e-9a55-2f3c9e1d4b70")
_KEY_CHARS = 200


class RetryLater(DomainError):
    """The model could not answer now; the job goes back to the queue after `delay_s`."""

    status = 503

    def __init__(self, message: str, *, delay_s: int) -> None:
        super().__init__(message)
        self.delay_s = delay_s


@dataclass(frozen=True, kw_only=True)
class JobSettings:
    max_age_s: float = 3600.0  # older jobs fail instead of being answered hours late
    dedup_window_s: float = 60.0  # without Idempotency-Key, identical submits inside this window are one job
    resend_after_s: float = 10.0  # a job found never enqueued (crashed submit) is re-sent after this
    backoff_base_s: int = 5
    backoff_cap_s: int = 300  # SQS DelaySeconds allows up to 900
    deadline_s: float = 90.0  # per model answer in the worker (async work gets more time)
    finished_ttl_s: int = 7 * 86_400
    max_open_per_user: int = 0  # queued or running jobs one user may hold at once (0: no cap)
    open_cap_retry_after_s: int = 30


class JobService:
    def __init__(
        self,
        *,
        store: JobStore,
        queue: JobQueue,
        chat: ChatService | None,
        settings: JobSettings,
        clock: Callable[[], float],
        pacing: RateLimiter | None = None,
        slots: OpenJobSlots | None = None,
    ) -> None:
        self._store = store
        self._queue = queue
        self._chat = chat
        self.settings = settings
        self._clock = clock
        self._pacing = pacing  # the model quota's share of this execution environment
        self._slots = slots if settings.max_open_per_user > 0 else None

    # --- API side -----------------------------------------------------------------------------
    def submit(self, *, user_id: str, request: ChatRequest, idempotency_key: str | None) -> tuple[Job, bool]:
        """The job for this request (created=True when new). Never enqueues the same job twice."""
        now = self._clock()
        job_id = self.job_id_for(user_id, request, idempotency_key, now)
        job = Job(
            job_id=job_id,
            user_id=user_id,
            message=request.message,
            conversation_id=request.conversation_id,
            status="queued",
            created_at=now,
            updated_at=now,
        )
        if self._slots is not None:
            existing = self._store.get(user_id, job_id)
            if existing is not None and existing.status in ("done", "failed"):
                return existing, False  # a replay of a finished job: its answer, never a 429 for a new slot
            self._reserve_slot(user_id, job_id)
        stored, created = self._store.create(job)
        if not created and stored.status in ("done", "failed"):
            self._release_slot(user_id, job_id)  # a replay of a finished job holds no slot
        if created or (not stored.enqueued and now - stored.created_at >= self.settings.resend_after_s):
            self._queue.send({"job_id": job_id, "user_id": user_id, "requeues": 0})
            self._store.mark_enqueued(user_id, job_id)
            stored = replace(stored, enqueued=True)
        return stored, created

    def _reserve_slot(self, user_id: str, job_id: str) -> None:
        if self._slots is None:
            return
        cap = self.settings.max_open_per_user
        if self._slots.reserve(user_id, job_id, cap=cap):
            return
        # Free slots whose jobs finished, went stale or never got written (a crashed submit), then retry.
        for held in self._slots.held(user_id):
            job = self._store.get(user_id, held)
            if job is None or job.status in ("done", "failed") or self._stale(job):
                self._slots.release(user_id, held)
        if not self._slots.reserve(user_id, job_id, cap=cap):
            raise TooManyRequests(
                f"you already have {cap} jobs queued or running; wait for one to finish (GET /jobs/{{job_id}}) "
                "and submit again",
                retry_after=self.settings.open_cap_retry_after_s,
            )

    def _release_slot(self, user_id: str, job_id: str) -> None:
        if self._slots is not None:
            self._slots.release(user_id, job_id)

    def job_id_for(self, user_id: str, request: ChatRequest, key: str | None, now: float) -> str:
        if key is not None:
            # Printable ASCII only (an RFC 9651 string): other bytes do not survive HTTP stacks unchanged.
            if not key.strip() or len(key) > _KEY_CHARS or not (key.isascii() and key.isprintable()):
                raise InvalidRequest(f"Idempotency-Key must be 1 to {_KEY_CHARS} printable ASCII characters")
            return str(uuid.uuid5(_NAMESPACE, f"{user_id}|key|{key}"))
        body = json.dumps({"m": request.message, "c": request.conversation_id}, sort_keys=True)
        window = int(now // self.settings.dedup_window_s)
        digest = hashlib.sha256(body.encode()).hexdigest()
        return str(uuid.uuid5(_NAMESPACE, f"{user_id}|body|{digest}|{window}"))

    def status(self, *, user_id: str, job_id: str) -> Job:
        job = self._store.get(user_id, job_id)
        if job is None:
            raise NotFound(f"job {job_id} was not found")
        if job.status in ("queued", "running") and self._stale(job):
            failed = self._store.fail(user_id, job_id, self._stale_reason(job), ttl_s=self.settings.finished_ttl_s)
            self._release_slot(user_id, job_id)
            return failed or job
        return job

    # --- worker side --------------------------------------------------------------------------
    def answer(self, message: dict[str, Any], *, remaining_s: float) -> dict[str, Any]:
        """The model's answer for a queued job (called once per job, under idempotency)."""
        assert self._chat is not None, "the worker's JobService needs a ChatService"
        job = self._store.get(message["user_id"], message["job_id"])
        if job is None:
            return {"outcome": "missing"}
        redriven = bool(message.get("redriven"))  # an operator moved it back from the DLQ after a fix
        if job.status == "done" or (job.status == "failed" and not redriven):
            return {"outcome": "finished"}
        if self._stale(job):
            return {"outcome": "stale", "reason": self._stale_reason(job)}
        requeues = int(message.get("requeues", 0))
        backoff = min(self.settings.backoff_cap_s, self.settings.backoff_base_s * 2**requeues)
        if self._pacing is not None and not self._pacing.acquire(timeout_s=max(0.0, remaining_s / 2)):
            raise RetryLater("the model's quota is fully used; waiting for capacity", delay_s=backoff)
        self._store.mark_running(job.user_id, job.job_id, reopen=redriven)
        try:
            reply = self._chat.answer(
                user_id=job.user_id,
                request=ChatRequest(message=job.message, conversation_id=job.conversation_id),
                remaining_s=min(self.settings.deadline_s, remaining_s),
            )
        except (Overloaded, DependencyUnavailable) as error:  # not now: back to the queue, not towards the DLQ
            raise RetryLater(error.message, delay_s=max(backoff, error.retry_after)) from error
        except (ModelRejected, NotFound) as error:
            return {"outcome": "rejected", "reason": error.message}
        if reply.degraded:
            raise RetryLater(f"no model answered ({reply.degraded_reason})", delay_s=backoff)
        return {"outcome": "answered", "answer": reply.to_api()}

    def complete(self, message: dict[str, Any], result: dict[str, Any]) -> None:
        """Write the job's terminal state from the (possibly replayed) answer; safe to repeat."""
        user_id, job_id = message["user_id"], message["job_id"]
        ttl = self.settings.finished_ttl_s
        if result["outcome"] == "answered":
            self._store.finish(user_id, job_id, result["answer"], ttl_s=ttl)
        elif result["outcome"] in ("stale", "rejected"):
            self._store.fail(user_id, job_id, result["reason"], ttl_s=ttl, reopen=bool(message.get("redriven")))
        self._release_slot(user_id, job_id)

    def requeue(self, message: dict[str, Any], delay_s: int) -> None:
        self._queue.send({**message, "requeues": int(message.get("requeues", 0)) + 1}, delay_s=delay_s)

    def fail(self, message: dict[str, Any], reason: str) -> None:
        self._store.fail(
            message["user_id"], message["job_id"], reason, ttl_s=self.settings.finished_ttl_s,
            reopen=bool(message.get("redriven")),
        )  # fmt: skip
        self._release_slot(message["user_id"], message["job_id"])

    def _stale(self, job: Job) -> bool:
        return self._clock() - job.created_at > self.settings.max_age_s

    def _stale_reason(self, job: Job) -> str:
        waited = self._clock() - job.created_at
        return (
            f"stale: the job waited {waited:.0f} s, longer than the {self.settings.max_age_s:.0f} s limit; "
            "submit it again if you still need the answer"
        )
