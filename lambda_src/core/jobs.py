"""The async jobs use case: accept fast, answer later, never lose a request.

submit: a job row (keyed by the user and an idempotency key, so a retried submit is the same job)
then a queue message. process (in the worker, inside Powertools idempotency): answer with the
same ChatService/gateway as /chat; a degraded answer is not an answer for a job, so the message
goes back to the queue with a delay; a job older than its limit fails with a clear reason.

Disaster recovery: each open job has an owner region (whose queue holds it) and a heartbeat the owner
refreshes whenever it works on the job (enqueue, running, a delayed re-send). A region that finds an open
job of another region quiet for longer than `stranded_after_s` adopts it (a conditional write: only if
owner and heartbeat are still what it saw) and sends it to its own queue; a worker drops messages of jobs
owned elsewhere. Exactly once rests on the worker's idempotency records (a global table): a job answered
in one region is replayed, not answered again, in the other. `recovery_action` is the pure decision,
`JobService.sweep` the scheduled pass over the recovery index, `JobService.settle` the worker's guard at failback.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

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
from core.limits import TokenBudgetExceeded, UserLimits
from core.models import ChatRequest, Job, OpenJob
from core.ports import JobEvents, JobQueue, JobStore, OpenJobSlots
from core.resilience import RateLimiter
from core.workflow import WorkflowStarter

_NAMESPACE = uuid.UUID("6f1c2b1e-7d0a-4b8e-9a55-2f3c9e1d4b70")
_KEY_CHARS = 200
_DOCUMENT_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")  # POST /documents' ids


class RetryLater(DomainError):
    """The model could not answer now; the job goes back to the queue after `delay_s`."""

    status = 503

    def __init__(self, message: str, *, delay_s: int) -> None:
        super().__init__(message)
        self.delay_s = delay_s


class OwnedElsewhere(DomainError):
    """Another region owns this open job (it adopted it): this region's message for it is dropped."""

    status = 409

    def __init__(self, owner_region: str) -> None:
        super().__init__(f"the job is owned by {owner_region}")
        self.owner_region = owner_region


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
    # Another region's open job whose heartbeat is older than this is adopted. Longer than the worker's timeout
    # (a job being answered is never adopted), and than a healthy region's usual backlog plus backoff delay.
    stranded_after_s: float = 600.0
    # A worker that receives its own job quiet for stranded_after_s (it may have been adopted while this region was
    # cut off) re-sends it after this delay instead of answering: longer than global-table replication takes to
    # converge. Capped at half of stranded_after_s, so a settled job is never stranded again by its own delay.
    settle_s: int = 30


RecoveryAction = Literal["fail_stale", "adopt", "resend"]


def recovery_action(job: Job | OpenJob, *, region: str, now: float, settings: JobSettings) -> RecoveryAction | None:
    """What `region` should do with an unfinished job it came across (sweep, status read, replayed submit).

    fail_stale: older than max_age_s, whoever owns it. adopt: another region owns it and has been quiet for
    stranded_after_s. resend: this region owns it (or nobody does: a job from before owners) and its
    message was never sent, resend_after_s after it was created or claimed (a submit or an adoption that
    crashed between its write and its send). None: leave it to its owner."""
    if job.status not in ("queued", "running"):
        return None
    if now - job.created_at > settings.max_age_s:
        return "fail_stale"
    quiet_s = now - (job.heartbeat_at if job.heartbeat_at is not None else job.created_at)
    if job.owner_region is not None and job.owner_region != region:
        return "adopt" if quiet_s >= settings.stranded_after_s else None
    if not job.enqueued and quiet_s >= settings.resend_after_s:
        return "resend"
    return None


@dataclass
class SweepReport:
    """One recovery pass: counts only (metrics), never a job's content."""

    adopted: int = 0
    resent: int = 0
    stale_failed: int = 0
    claims_lost: int = 0  # another sweep, a status read or the owner changed the job first
    seen: int = 0
    out_of_time: bool = False  # stopped by its budget with jobs left for the next pass


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
        events: JobEvents | None = None,
        budget: UserLimits | None = None,
        workflows: WorkflowStarter | None = None,
    ) -> None:
        self._store = store
        self._queue = queue
        self._chat = chat
        self.settings = settings
        self._clock = clock
        self._pacing = pacing  # the model quota's share of this execution environment
        self._slots = slots if settings.max_open_per_user > 0 else None
        self._events = events
        self._budget = budget  # the users' daily token budgets (None: none configured)
        self._workflows = workflows  # starts the durable workflows of non-chat kinds (the worker's; core.workflow)

    @property
    def region(self) -> str:
        return self._store.region

    def attach_workflows(self, workflows: WorkflowStarter | None) -> None:
        """The worker's starter of durable workflows (the API side has none: it only submits)."""
        self._workflows = workflows

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
            owner_region=self.region,
            heartbeat_at=now,
            accepted_in=self.region,
        )
        return self._submit(job, now)

    def submit_summary(self, *, user_id: str, document_id: str, idempotency_key: str | None) -> tuple[Job, bool]:
        """A `summarize` job over one of the caller's documents (core.workflow runs it). The same queue and
        rules as a chat job: the worker starts the durable workflow, which writes progress and the result.
        Whether the document is the caller's is checked by the workflow's first step (its status is read under
        the caller's id, so another user's document is not found and the job fails with that reason)."""
        if not isinstance(document_id, str) or not _DOCUMENT_ID.fullmatch(document_id):
            raise InvalidRequest("documentId is required: the id of one of your documents, as POST /documents gave it")
        request = ChatRequest(message=f"summarize {document_id}")
        now = self._clock()
        job_id = self.job_id_for(user_id, request, idempotency_key, now)
        job = Job(
            job_id=job_id, user_id=user_id, message=request.message, conversation_id=None, status="queued",
            created_at=now, updated_at=now, owner_region=self.region, heartbeat_at=now, accepted_in=self.region,
            kind="summarize", document_id=document_id,
        )  # fmt: skip
        return self._submit(job, now)

    def _submit(self, job: Job, now: float) -> tuple[Job, bool]:
        """Reserve the user's slot, write and send `job`: (the job, True when new). A replay of a finished job
        returns it before any slot is asked for (its answer, never a 429 for a new slot); a replay of a job whose
        first submit crashed before sending it, or that a lost region holds, is sent (adopted) here."""
        if self._slots is not None:
            existing = self._store.get(job.user_id, job.job_id)
            if existing is not None and existing.status in ("done", "failed"):
                return existing, False
            self._reserve_slot(job.user_id, job.job_id)
        stored, created = self._create(job)
        if created:
            return stored, True
        if recovery_action(stored, region=self.region, now=now, settings=self.settings) in ("adopt", "resend"):
            stored = self._taken_over(stored, now)
        return stored, False

    def _create(self, job: Job) -> tuple[Job, bool]:
        """Write `job` and send it to the queue: (the job as enqueued, True). A replay (the id is taken) gives
        (the stored job, False), its slot released if that job is finished (a finished job holds no slot)."""
        stored, created = self._store.create(job)
        if created:
            self._enqueue(job)
            return replace(stored, enqueued=True), True
        if not stored.open:
            self._release_slot(job.user_id, job.job_id)
        return stored, False

    def _enqueue(self, job: Job | OpenJob) -> None:
        """Send the job's first message to this region's queue and mark it enqueued."""
        self._queue.send({"job_id": job.job_id, "user_id": job.user_id, "requeues": 0})
        self._store.mark_enqueued(job.user_id, job.job_id)

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
        """The job as it is; reading it also fails it when too old, and adopts it when its region went quiet
        (so a user polling a region that took over gets their answer without waiting for the sweep)."""
        job = self._store.get(user_id, job_id)
        if job is None:
            raise NotFound(f"job {job_id} was not found")
        now = self._clock()
        action = recovery_action(job, region=self.region, now=now, settings=self.settings)
        if action == "fail_stale":
            return self._fail_stale(job) or job
        if action is not None:
            return self._taken_over(job, now)
        return job

    # --- recovery (any region) ----------------------------------------------------------------------
    def sweep(self, *, peers: Sequence[str], budget_s: float) -> SweepReport:
        """Adopt the peers' stranded jobs, send this region's never-sent ones, fail the too old, within
        `budget_s` seconds (what is left waits for the next pass). Every step is a conditional write, so
        passes running at once in one region (or a status read) never take the same job twice."""
        start = self._clock()
        report = SweepReport()
        passes = [(peer, self.settings.stranded_after_s) for peer in peers if peer != self.region]
        passes.append((self.region, self.settings.resend_after_s))
        for owner, quiet_s in passes:
            for found in self._store.open_jobs(owner, heartbeat_before=start - quiet_s):
                now = self._clock()
                if now - start > budget_s:
                    report.out_of_time = True
                    return report
                report.seen += 1
                action = recovery_action(found, region=self.region, now=now, settings=self.settings)
                if action == "fail_stale":
                    report.stale_failed += self._fail_stale(found) is not None
                elif action is not None:
                    if not self._take_over(found):
                        report.claims_lost += 1
                    elif action == "adopt":
                        report.adopted += 1
                    else:
                        report.resent += 1
        return report

    def _take_over(self, job: Job | OpenJob) -> bool:
        """Claim the job for this region, then send it to this region's queue. Claim first: a crash before
        the send leaves it owned here and not enqueued, and the next pass re-sends it (`resend`)."""
        adopting = job.owner_region is not None and job.owner_region != self.region
        if not self._store.claim(job.user_id, job.job_id, owner_region=job.owner_region, heartbeat_at=job.heartbeat_at):
            self._record("claim_lost")
            return False
        self._enqueue(job)
        self._record("adopted" if adopting else "resent")
        return True

    def _taken_over(self, job: Job, now: float) -> Job:
        """`job` as this region now holds it (or unchanged if another got there first)."""
        if not self._take_over(job):
            return job
        return replace(job, owner_region=self.region, heartbeat_at=now, enqueued=True)

    def _fail_stale(self, job: Job | OpenJob) -> Job | None:
        failed = self._store.fail(job.user_id, job.job_id, self._stale_reason(job), ttl_s=self.settings.finished_ttl_s)
        self._release_slot(job.user_id, job.job_id)
        if failed is not None:
            self._record("stale_failed")
        return failed

    def _record(self, event: str) -> None:
        if self._events is not None:
            self._events.record(event)

    # --- worker side --------------------------------------------------------------------------
    def settle(self, message: dict[str, Any]) -> bool:
        """True when this receive is skipped: the job is open, this region's, and quiet for stranded_after_s.

        The failback race: while this region was cut off, another region may have adopted the job (its claim,
        owner := there, is a write to its own copy of the global table). When this region returns, the adoption
        reaches its copy only after the replication lag, so its worker would read "ours" and answer the job
        that the adopter answers too. A heartbeat that old is the sign that this region may have been out, so the
        worker does not answer now: it refreshes the heartbeat (conditional on owning the job here, as every
        heartbeat) and sends the message again after `settle_s`. The two writes, the adoption there and the refresh
        here, are on one item, and global tables keep the last writer's (LWW): whichever wins, both copies
        converge on one owner. If the adoption wins, this region's next receive finds the job owned elsewhere (or
        finished, replayed from the idempotency record) and drops it; if the refresh wins, the adopter's worker
        finds it owned here and drops its message, and this region answers it. So both answer only if the
        replication lag exceeds `settle_s` (the adopter may have answered before the refresh reached it: its
        finished write then replicates, and the settled receive, later than settle_s, finds the job done): the
        double answer is bounded by the replication lag, not by how long this region was out. The re-sent message
        is marked `settled`: its receive follows the normal rules (never settled twice in a row, whatever the
        threshold or the queue's wait), and a later requeue drops the mark.

        False (answer as usual) for a fresh job, a settled message, a job owned elsewhere or finished (the usual
        rules drop or replay it), or when the refresh is refused (finished or adopted in this copy meanwhile)."""
        if message.get("settled"):
            return False
        job = self._store.get(message["user_id"], message["job_id"])
        if job is None or not job.open or job.owner_region != self.region or job.heartbeat_at is None:
            return False
        if self._clock() - job.heartbeat_at < self.settings.stranded_after_s:
            return False
        if not self._store.heartbeat(job.user_id, job.job_id):
            return False
        self._queue.send({**message, "settled": True}, delay_s=self.settle_delay_s)
        self._record("settled")
        return True

    @property
    def settle_delay_s(self) -> int:
        return max(0, int(min(self.settings.settle_s, self.settings.stranded_after_s / 2)))

    def owned_elsewhere(self, message: dict[str, Any]) -> str | None:
        """The region that owns the message's job when it is open and not ours (it adopted the job while this
        region was out): the worker then drops the message. Checked before the idempotency record is written,
        so a dropped message leaves no trace there to block the owner."""
        job = self._store.get(message["user_id"], message["job_id"])
        if job is None or not job.open or job.owner_region in (None, self.region):
            return None
        return job.owner_region

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
        if job.open and job.owner_region not in (None, self.region):
            raise OwnedElsewhere(job.owner_region)  # not answered here: Powertools drops the record it began
        if job.kind != "chat":
            return self._start_workflow(job)
        try:  # the budget was checked at submit; jobs queued together may have spent it since
            admitted = self._budget.admit_tokens(job.user_id) if self._budget is not None else None
        except TokenBudgetExceeded as error:
            self._record("TokenBudgetExceeded")
            return {"outcome": "rejected", "reason": error.message}
        requeues = int(message.get("requeues", 0))
        backoff = min(self.settings.backoff_cap_s, self.settings.backoff_base_s * 2**requeues)
        if self._pacing is not None and not self._pacing.acquire(timeout_s=max(0.0, remaining_s / 2)):
            raise RetryLater("the model's quota is fully used; waiting for capacity", delay_s=backoff)
        owner = self._store.mark_running(job.user_id, job.job_id, reopen=redriven)
        if owner is not None:  # adopted between the read above and this write
            raise OwnedElsewhere(owner)
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
        answer = reply.to_api()
        if self._budget is not None:
            budget = self._budget.spend_tokens(job.user_id, reply.usage.total_tokens, admitted=admitted)
            if budget is not None:
                answer["budget"] = budget.to_api()
        return {"outcome": "answered", "answer": answer}

    def _start_workflow(self, job: Job) -> dict[str, Any]:
        """Hand a workflow job to its durable execution (named after the job, so a second start is the same
        execution): it writes progress and the terminal state itself. Started once, under idempotency."""
        if self._workflows is None:
            return {"outcome": "rejected", "reason": f"{job.kind} jobs are not enabled in this deployment"}
        owner = self._store.mark_running(job.user_id, job.job_id)
        if owner is not None:
            raise OwnedElsewhere(owner)
        try:
            self._workflows.start(
                job.kind, {"job_id": job.job_id, "user_id": job.user_id, "document_id": job.document_id}
            )
        except DependencyUnavailable as error:
            raise RetryLater(error.message, delay_s=max(self.settings.backoff_base_s, error.retry_after)) from error
        return {"outcome": "started"}

    def complete(self, message: dict[str, Any], result: dict[str, Any]) -> None:
        """Write the job's terminal state from the (possibly replayed) answer; safe to repeat."""
        user_id, job_id = message["user_id"], message["job_id"]
        ttl = self.settings.finished_ttl_s
        if result["outcome"] == "answered":
            self._store.finish(user_id, job_id, result["answer"], ttl_s=ttl)
        elif result["outcome"] in ("stale", "rejected"):
            self._store.fail(user_id, job_id, result["reason"], ttl_s=ttl, reopen=bool(message.get("redriven")))
        elif result["outcome"] == "started":
            return  # the durable workflow owns the job now: its slot is released when it finishes
        self._release_slot(user_id, job_id)

    def requeue(self, message: dict[str, Any], delay_s: int) -> bool:
        """Send the job again after `delay_s`, refreshing its heartbeat first (a delayed job is not stranded).
        False, and nothing sent, when it finished meanwhile or another region adopted it."""
        if not self._store.heartbeat(message["user_id"], message["job_id"]):
            return False
        again = {name: value for name, value in message.items() if name != "settled"}  # a new wait: may settle again
        self._queue.send({**again, "requeues": int(message.get("requeues", 0)) + 1}, delay_s=delay_s)
        return True

    def fail(self, message: dict[str, Any], reason: str) -> None:
        self._store.fail(
            message["user_id"], message["job_id"], reason, ttl_s=self.settings.finished_ttl_s,
            reopen=bool(message.get("redriven")),
        )  # fmt: skip
        self._release_slot(message["user_id"], message["job_id"])

    def _stale(self, job: Job | OpenJob) -> bool:
        return self._clock() - job.created_at > self.settings.max_age_s

    def _stale_reason(self, job: Job | OpenJob) -> str:
        waited = self._clock() - job.created_at
        return (
            f"stale: the job waited {waited:.0f} s, longer than the {self.settings.max_age_s:.0f} s limit; "
            "submit it again if you still need the answer"
        )
