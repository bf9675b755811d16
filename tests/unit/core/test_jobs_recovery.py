"""Disaster recovery of jobs, the pure part (issue 10): what a region does with an open job it finds, on a fake clock,
and the sweep, status read, submit and worker steps over an in-memory store (the DynamoDB one: tests/integration)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest

from core.jobs import JobService, JobSettings, OwnedElsewhere, recovery_action
from core.models import ChatRequest, Job, OpenJob
from core.ports import JobEvents, JobQueue, JobStore

HERE, PEER = "us-west-2", "us-east-1"
SETTINGS = JobSettings(max_age_s=3600, stranded_after_s=600, resend_after_s=10)
T0 = 1_000_000.0


def job(**changes: Any) -> Job:
    base = Job(
        job_id="j1", user_id="u1", message="question", conversation_id=None, status="queued", created_at=T0,
        updated_at=T0, enqueued=True, owner_region=PEER, heartbeat_at=T0, accepted_in=PEER,
    )  # fmt: skip
    return replace(base, **changes)


# --- the decision --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("case", "changes", "now", "expected"),
    [
        ("another region's job, quiet just under the limit", {}, T0 + 599.9, None),
        ("another region's job, quiet for the limit", {}, T0 + 600, "adopt"),
        ("quiet since its last heartbeat, not since creation", {"heartbeat_at": T0 + 300}, T0 + 700, None),
        ("running elsewhere, quiet", {"status": "running"}, T0 + 601, "adopt"),
        ("another region's, never sent, fresh", {"enqueued": False}, T0 + 30, None),
        ("finished elsewhere", {"status": "done", "heartbeat_at": None}, T0 + 9999, None),
        ("failed elsewhere", {"status": "failed", "heartbeat_at": None}, T0 + 9999, None),
        ("too old, whoever owns it", {}, T0 + 3601, "fail_stale"),
        ("too old and ours", {"owner_region": HERE}, T0 + 3601, "fail_stale"),
        ("ours, sent, quiet for long", {"owner_region": HERE}, T0 + 3000, None),
        ("ours, never sent, for resend_after_s", {"owner_region": HERE, "enqueued": False}, T0 + 10, "resend"),
        ("ours, never sent, just now", {"owner_region": HERE, "enqueued": False}, T0 + 9, None),
        (
            "before owners, never sent",
            {"owner_region": None, "heartbeat_at": None, "enqueued": False},
            T0 + 11,
            "resend",
        ),
        ("from before owners, sent", {"owner_region": None, "heartbeat_at": None}, T0 + 3000, None),
    ],
)
def test_what_a_region_does_with_an_open_job_it_finds(
    case: str, changes: dict[str, Any], now: float, expected: Any
) -> None:
    assert recovery_action(job(**changes), region=HERE, now=now, settings=SETTINGS) == expected, case


def test_the_index_view_of_a_job_gets_the_same_decision_as_the_job() -> None:
    found = OpenJob(job_id="j1", user_id="u1", status="queued", created_at=T0, owner_region=PEER, heartbeat_at=T0,
                    enqueued=True)  # fmt: skip
    for now in (T0 + 1, T0 + 600, T0 + 3601):
        assert recovery_action(found, region=HERE, now=now, settings=SETTINGS) == recovery_action(
            job(), region=HERE, now=now, settings=SETTINGS
        )


# --- an in-memory region -------------------------------------------------------------------------------------------
class Clock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class MemoryJobStore:
    """The JobStore port over a dict shared by stores of different regions (one replica, replication instant)."""

    def __init__(self, region: str, rows: dict[tuple[str, str], Job], clock: Clock) -> None:
        self._region = region
        self.rows = rows
        self._clock = clock
        self.index_reads = 0

    @property
    def region(self) -> str:
        return self._region

    def create(self, new: Job) -> tuple[Job, bool]:
        key = (new.user_id, new.job_id)
        if key in self.rows:
            return self.rows[key], False
        self.rows[key] = new
        return new, True

    def get(self, user_id: str, job_id: str) -> Job | None:
        return self.rows.get((user_id, job_id))

    def _ours(self, row: Job | None) -> bool:
        return row is not None and row.open and row.owner_region in (None, self._region)

    def mark_enqueued(self, user_id: str, job_id: str) -> None:
        row = self.get(user_id, job_id)
        if row is not None and self._ours(row):
            self.rows[(user_id, job_id)] = replace(row, enqueued=True, heartbeat_at=self._clock())

    def mark_running(self, user_id: str, job_id: str, *, reopen: bool = False) -> str | None:
        row = self.get(user_id, job_id)
        if row is None:
            return None
        if self._ours(row) or (reopen and row.status == "failed"):
            self.rows[(user_id, job_id)] = replace(row, status="running", owner_region=self._region,
                                                   heartbeat_at=self._clock())  # fmt: skip
            return None
        return row.owner_region if row.open else None

    def heartbeat(self, user_id: str, job_id: str) -> bool:
        row = self.get(user_id, job_id)
        if row is None or not self._ours(row):
            return False
        self.rows[(user_id, job_id)] = replace(row, heartbeat_at=self._clock())
        return True

    def claim(self, user_id: str, job_id: str, *, owner_region: str | None, heartbeat_at: float | None) -> bool:
        row = self.get(user_id, job_id)
        if row is None or not row.open or (row.owner_region, row.heartbeat_at) != (owner_region, heartbeat_at):
            return False
        self.rows[(user_id, job_id)] = replace(row, owner_region=self._region, heartbeat_at=self._clock(),
                                               enqueued=False)  # fmt: skip
        return True

    def open_jobs(self, owner_region: str, *, heartbeat_before: float) -> Iterator[OpenJob]:
        self.index_reads += 1
        rows = sorted(
            (r for r in self.rows.values()
             if r.open and r.owner_region == owner_region and r.heartbeat_at is not None
             and r.heartbeat_at <= heartbeat_before),
            key=lambda r: r.heartbeat_at or 0,
        )  # fmt: skip
        for r in rows:
            assert r.heartbeat_at is not None and r.owner_region is not None
            yield OpenJob(job_id=r.job_id, user_id=r.user_id, status=r.status, created_at=r.created_at,
                          owner_region=r.owner_region, heartbeat_at=r.heartbeat_at, enqueued=r.enqueued)  # fmt: skip

    def finish(self, user_id: str, job_id: str, answer: dict[str, Any], *, ttl_s: int) -> Job | None:
        return self._end(user_id, job_id, status="done", answer=answer)

    def fail(self, user_id: str, job_id: str, reason: str, *, ttl_s: int, reopen: bool = False) -> Job | None:
        return self._end(user_id, job_id, status="failed", reason=reason)

    def _end(self, user_id: str, job_id: str, **changes: Any) -> Job | None:
        row = self.get(user_id, job_id)
        if row is None or not row.open:
            return None
        ended = replace(row, heartbeat_at=None, **changes)
        self.rows[(user_id, job_id)] = ended
        return ended


class MemoryQueue:
    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []
        self.delays: list[int] = []

    def send(self, body: dict[str, Any], *, delay_s: int = 0) -> None:
        self.sent.append(body)
        self.delays.append(delay_s)


class Counted:
    def __init__(self) -> None:
        self.events: list[str] = []

    def record(self, event: str) -> None:
        self.events.append(event)


def region(name: str, rows: dict[tuple[str, str], Job], clock: Clock, **changes: Any) -> tuple[JobService, Any]:
    store: JobStore = MemoryJobStore(name, rows, clock)
    queue: JobQueue = MemoryQueue()
    events: JobEvents = Counted()
    service = JobService(store=store, queue=queue, chat=None, settings=replace(SETTINGS, **changes), clock=clock,
                         events=events)  # fmt: skip
    return service, (store, queue, events)


def accepted_in_peer(rows: dict[tuple[str, str], Job], clock: Clock, count: int = 1) -> list[str]:
    peer, _ = region(PEER, rows, clock)
    ids = []
    for index in range(count):
        accepted, _ = peer.submit(user_id="u1", request=ChatRequest(message=f"q{index}"), idempotency_key=f"k{index}")
        ids.append(accepted.job_id)
        clock.now += 1
    return ids


# --- the sweep -------------------------------------------------------------------------------------------------------
def test_a_sweep_adopts_the_quiet_jobs_of_its_peers_oldest_first_and_sends_each_once() -> None:
    rows: dict[tuple[str, str], Job] = {}
    clock = Clock()
    ids = accepted_in_peer(rows, clock, count=3)
    dr, (_, queue, events) = region(HERE, rows, clock)

    clock.now = T0 + 599  # the oldest has been quiet for 599 s: nothing yet
    assert dr.sweep(peers=[PEER, HERE], budget_s=30).adopted == 0
    clock.now = T0 + 601.5  # the first two are past the limit, the third (accepted 2 s later) is not
    report = dr.sweep(peers=[PEER, HERE], budget_s=30)

    assert (report.adopted, report.claims_lost) == (2, 0)
    assert [m["job_id"] for m in queue.sent] == ids[:2]
    assert all(rows[("u1", i)].owner_region == HERE and rows[("u1", i)].enqueued for i in ids[:2])
    assert rows[("u1", ids[2])].owner_region == PEER and events.events == ["adopted", "adopted"]
    # A second pass finds nothing more to do for them.
    assert dr.sweep(peers=[PEER], budget_s=30).adopted == 0 and len(queue.sent) == 2


def test_a_sweep_stops_at_its_budget_and_the_next_pass_goes_on() -> None:
    rows: dict[tuple[str, str], Job] = {}
    clock = Clock()
    accepted_in_peer(rows, clock, count=3)
    dr, (store, queue, _) = region(HERE, rows, clock)
    clock.now = T0 + 10_000 - 7000  # all three quiet, none too old

    real_claim = store.claim

    def slow_claim(*args: Any, **kwargs: Any) -> bool:
        clock.now += 20  # each adoption takes 20 s of the pass's 30 s budget
        return real_claim(*args, **kwargs)

    store.claim = slow_claim
    first = dr.sweep(peers=[PEER], budget_s=30)
    second = dr.sweep(peers=[PEER], budget_s=30)

    assert (first.adopted, first.out_of_time) == (2, True)
    assert (second.adopted, second.out_of_time) == (1, False) and len(queue.sent) == 3


def test_a_sweep_fails_too_old_jobs_with_their_reason_and_does_not_adopt_them() -> None:
    rows: dict[tuple[str, str], Job] = {}
    clock = Clock()
    (job_id,) = accepted_in_peer(rows, clock)
    dr, (_, queue, events) = region(HERE, rows, clock)
    clock.now = T0 + 3700

    report = dr.sweep(peers=[PEER], budget_s=30)

    assert (report.stale_failed, report.adopted, queue.sent) == (1, 0, [])
    failed = rows[("u1", job_id)]
    assert failed.status == "failed" and (failed.reason or "").startswith("stale: the job waited 3700 s")
    assert events.events == ["stale_failed"]


def test_a_pass_that_lost_the_race_counts_it_and_sends_nothing() -> None:
    rows: dict[tuple[str, str], Job] = {}
    clock = Clock()
    accepted_in_peer(rows, clock)
    one, (_, first_queue, _) = region(HERE, rows, clock)
    other, (other_store, other_queue, other_events) = region(HERE, rows, clock)
    clock.now = T0 + 601
    stale_view = list(other_store.open_jobs(PEER, heartbeat_before=clock.now - 600))
    # What the index showed before the first pass wrote (eventually consistent).
    other_store.open_jobs = lambda owner, *, heartbeat_before: iter([j for j in stale_view if j.owner_region == owner])

    first, second = one.sweep(peers=[PEER], budget_s=30), other.sweep(peers=[PEER], budget_s=30)

    assert (first.adopted, second.adopted, second.claims_lost) == (1, 0, 1)
    assert len(first_queue.sent) == 1 and other_queue.sent == [] and other_events.events == ["claim_lost"]


def test_the_own_region_pass_resends_what_was_claimed_but_never_sent() -> None:
    rows: dict[tuple[str, str], Job] = {}
    clock = Clock()
    (job_id,) = accepted_in_peer(rows, clock)
    dr, (_, queue, events) = region(HERE, rows, clock)
    clock.now = T0 + 601
    rows[("u1", job_id)] = replace(rows[("u1", job_id)], owner_region=HERE, heartbeat_at=clock.now, enqueued=False)

    clock.now += 9
    assert dr.sweep(peers=[PEER], budget_s=30).resent == 0
    clock.now += 1
    report = dr.sweep(peers=[PEER], budget_s=30)

    assert (report.resent, report.adopted) == (1, 0) and [m["job_id"] for m in queue.sent] == [job_id]
    assert rows[("u1", job_id)].enqueued and events.events == ["resent"]


# --- the other places that adopt, and the worker's side --------------------------------------------------------------
def test_a_status_read_and_a_replayed_submit_in_the_other_region_adopt_a_stranded_job() -> None:
    rows: dict[tuple[str, str], Job] = {}
    clock = Clock()
    first_id, second_id = accepted_in_peer(rows, clock, count=2)
    dr, (_, queue, _) = region(HERE, rows, clock)
    clock.now = T0 + 100
    assert dr.status(user_id="u1", job_id=first_id).owner_region == PEER and queue.sent == []  # fresh: left alone

    clock.now = T0 + 700
    read = dr.status(user_id="u1", job_id=first_id)
    replayed, created = dr.submit(user_id="u1", request=ChatRequest(message="q1"), idempotency_key="k1")

    assert (read.owner_region, read.enqueued) == (HERE, True)
    assert not created and replayed.job_id == second_id and replayed.owner_region == HERE
    assert [m["job_id"] for m in queue.sent] == [first_id, second_id]


def test_a_new_job_belongs_to_the_region_that_accepted_it() -> None:
    rows: dict[tuple[str, str], Job] = {}
    clock = Clock()
    dr, (_, queue, _) = region(HERE, rows, clock)

    accepted, created = dr.submit(user_id="u1", request=ChatRequest(message="q"), idempotency_key=None)

    stored = rows[("u1", accepted.job_id)]
    assert created and (stored.owner_region, stored.accepted_in, stored.heartbeat_at) == (HERE, HERE, T0)
    assert stored.enqueued and len(queue.sent) == 1


def test_the_worker_drops_a_job_another_region_owns_and_does_not_resend_it() -> None:
    rows: dict[tuple[str, str], Job] = {}
    clock = Clock()
    (job_id,) = accepted_in_peer(rows, clock)
    primary, (_, primary_queue, _) = region(PEER, rows, clock)
    dr, _ = region(HERE, rows, clock)
    message = {"job_id": job_id, "user_id": "u1", "requeues": 0}
    clock.now = T0 + 601
    dr.sweep(peers=[PEER], budget_s=30)

    assert primary.owned_elsewhere(message) == HERE and dr.owned_elsewhere(message) is None
    with pytest.raises(OwnedElsewhere) as raised:
        primary_with_chat(primary).answer(message, remaining_s=60)
    assert raised.value.owner_region == HERE
    assert primary.requeue(message, delay_s=5) is False and primary_queue.sent == []


def test_a_delayed_resend_refreshes_the_heartbeat_so_a_job_in_backoff_is_not_stranded() -> None:
    rows: dict[tuple[str, str], Job] = {}
    clock = Clock()
    (job_id,) = accepted_in_peer(rows, clock)
    primary, (_, queue, _) = region(PEER, rows, clock)
    clock.now = T0 + 500

    assert primary.requeue({"job_id": job_id, "user_id": "u1", "requeues": 0}, delay_s=300)
    dr, _ = region(HERE, rows, clock)
    clock.now = T0 + 1000  # 1000 s after the submit, 500 s after the re-send

    assert rows[("u1", job_id)].heartbeat_at == T0 + 500 and dr.sweep(peers=[PEER], budget_s=30).adopted == 0
    assert queue.sent[-1]["requeues"] == 1


def primary_with_chat(service: JobService) -> JobService:
    """The same service with a chat that must never be reached (the job is dropped before the model)."""

    class Unreachable:
        def answer(self, **_: Any) -> Any:
            raise AssertionError("the model must not be asked for a job another region owns")

    return JobService(store=service._store, queue=service._queue, chat=Unreachable(),  # type: ignore[arg-type]
                      settings=service.settings, clock=service._clock)  # fmt: skip


# --- failback: the returning region's worker settles its long-quiet jobs ----------------------------------------------
def failback_world(clock: Clock) -> tuple[str, dict[str, Any], Any, Any]:
    """Two copies of the jobs table (replication played by the test): a job accepted by PEER and replicated to HERE,
    PEER then cut off; HERE adopts it in its own copy once it is stranded. PEER's copy still says PEER owns it."""
    peer_rows: dict[tuple[str, str], Job] = {}
    (job_id,) = accepted_in_peer(peer_rows, clock)
    here_rows = dict(peer_rows)  # replicated before the outage
    clock.now = T0 + 601
    here, _ = region(HERE, here_rows, clock)
    assert here.sweep(peers=[PEER], budget_s=30).adopted == 1
    message = {"job_id": job_id, "user_id": "u1", "requeues": 0}
    return job_id, message, (peer_rows, region(PEER, peer_rows, clock)), (here_rows, here)


def test_a_returning_worker_does_not_answer_its_long_quiet_job_at_once_but_resends_it_after_the_settle_delay() -> None:
    clock = Clock()
    job_id, message, (peer_rows, (peer, (_, queue, events))), (here_rows, here) = failback_world(clock)
    assert here_rows[("u1", job_id)].owner_region == HERE and peer_rows[("u1", job_id)].owner_region == PEER

    # WHEN the peer is back and its worker receives the old message before the adoption replicated
    assert peer.owned_elsewhere(message) is None  # its copy still says it is the owner
    assert peer.settle(message) is True
    # THEN it is not answered now: heartbeat refreshed (owner unchanged), the same message re-sent after the delay
    assert peer_rows[("u1", job_id)].heartbeat_at == T0 + 601 and peer_rows[("u1", job_id)].owner_region == PEER
    settled = {**message, "settled": True}
    assert queue.sent == [settled] and queue.delays == [SETTINGS.settle_s] and events.events == ["settled"]

    # WHEN the adoption (the later write: last writer wins) replicates before the re-sent message arrives
    clock.now = T0 + 602
    here_rows[("u1", job_id)] = replace(here_rows[("u1", job_id)], updated_at=clock.now)
    peer_rows.update(here_rows)
    clock.now += SETTINGS.settle_s
    # THEN the peer drops it, and only the adopter works on it (its own heartbeat is fresh: no settling there)
    assert peer.owned_elsewhere(settled) == HERE and peer.settle(settled) is False
    assert here.owned_elsewhere(message) is None and here.settle(message) is False
    assert queue.sent == [settled]


def test_when_the_refresh_wins_the_adopter_drops_its_copy_and_the_returning_region_answers() -> None:
    clock = Clock()
    _, message, (peer_rows, (peer, (_, queue, _))), (here_rows, here) = failback_world(clock)
    clock.now = T0 + 603
    assert peer.settle(message)  # the refresh is the later write of the item
    here_rows.update(peer_rows)  # ...and replicates: one owner again, the returning region
    clock.now += SETTINGS.settle_s
    (settled,) = queue.sent

    assert here.owned_elsewhere(message) == PEER  # the adopter's message is dropped
    assert peer.owned_elsewhere(settled) is None and peer.settle(settled) is False  # answered normally, once
    assert len(queue.sent) == 1


def test_a_settled_or_fresh_job_is_answered_normally_and_finished_or_foreign_ones_are_not_settled() -> None:
    rows: dict[tuple[str, str], Job] = {}
    clock = Clock()
    (job_id,) = accepted_in_peer(rows, clock)
    peer, (_, queue, events) = region(PEER, rows, clock)
    message = {"job_id": job_id, "user_id": "u1", "requeues": 0}

    clock.now = T0 + 599  # quiet, not stranded: a healthy backlog
    assert peer.settle(message) is False
    clock.now = T0 + 700
    assert peer.settle(message) is True
    clock.now += SETTINGS.settle_s  # the settled receive: never settled twice in a row
    (settled,) = queue.sent
    assert peer.settle(settled) is False and len(queue.sent) == 1 and events.events == ["settled"]
    clock.now += 5000  # even when it waited longer than the threshold (a slow queue)
    assert peer.settle(settled) is False and len(queue.sent) == 1
    assert peer.requeue(settled, delay_s=5) and "settled" not in queue.sent[-1]  # a new wait may settle again
    queue.sent.clear()

    here, (_, here_queue, _) = region(HERE, rows, clock)
    clock.now += 1000
    assert here.settle(message) is False  # another region's job: the ownership rules decide, not settling
    rows[("u1", job_id)] = replace(rows[("u1", job_id)], status="done", heartbeat_at=None)
    assert peer.settle(message) is False and here_queue.sent == [] and queue.sent == []


def test_the_settle_delay_stays_under_the_stranded_threshold() -> None:
    clock = Clock()
    short, _ = region(PEER, {}, clock, stranded_after_s=8, settle_s=30)
    assert short.settle_delay_s == 4  # a settled job's own delay never makes it stranded again
    default, _ = region(PEER, {}, clock)
    assert default.settle_delay_s == SETTINGS.settle_s == 30


# --- a replayed summary submit (POST /jobs kind=summarize): the same rules as a chat submit --------------------------
DOC = "0b8e6f1c-2d3a-4e5f-8a9b-0c1d2e3f4a5b"


class MemorySlots:
    """The OpenJobSlots port: one set of open job ids per user, shared by the regions (a global table)."""

    def __init__(self) -> None:
        self.sets: dict[str, set[str]] = {}

    def reserve(self, user_id: str, job_id: str, *, cap: int) -> bool:
        held = self.sets.setdefault(user_id, set())
        if job_id not in held and len(held) >= cap:
            return False
        held.add(job_id)
        return True

    def release(self, user_id: str, job_id: str) -> None:
        self.sets.get(user_id, set()).discard(job_id)

    def held(self, user_id: str) -> list[str]:
        return sorted(self.sets.get(user_id, set()))


def capped(name: str, rows: dict[tuple[str, str], Job], clock: Clock, slots: MemorySlots) -> tuple[JobService, Any]:
    queue = MemoryQueue()
    service = JobService(store=MemoryJobStore(name, rows, clock), queue=queue, chat=None, clock=clock,
                         settings=replace(SETTINGS, max_open_per_user=1), slots=slots)  # fmt: skip
    return service, queue


def test_a_replayed_summary_of_a_finished_job_gets_its_job_not_a_429_when_the_slots_are_full() -> None:
    rows: dict[tuple[str, str], Job] = {}
    clock, slots = Clock(), MemorySlots()
    api, queue = capped(HERE, rows, clock, slots)
    summary, _ = api.submit_summary(user_id="u1", document_id=DOC, idempotency_key="sum-1")
    api.fail({"user_id": "u1", "job_id": summary.job_id}, "document gone")  # finished: its slot released
    other, _ = api.submit(user_id="u1", request=ChatRequest(message="another"), idempotency_key=None)  # the one slot

    replayed, created = api.submit_summary(user_id="u1", document_id=DOC, idempotency_key="sum-1")

    assert not created and (replayed.job_id, replayed.status, replayed.kind) == (summary.job_id, "failed", "summarize")
    assert len(queue.sent) == 2 and slots.held("u1") == [other.job_id]  # nothing sent again, no slot taken


def test_a_replayed_summary_of_a_job_stranded_in_a_lost_region_is_adopted_and_sent_here() -> None:
    rows: dict[tuple[str, str], Job] = {}
    clock, slots = Clock(), MemorySlots()
    lost, lost_queue = capped(PEER, rows, clock, slots)
    first, _ = lost.submit_summary(user_id="u1", document_id=DOC, idempotency_key="sum-1")
    dr, queue = capped(HERE, rows, clock, slots)
    clock.now = T0 + 700  # the peer has been quiet for longer than stranded_after_s

    replayed, created = dr.submit_summary(user_id="u1", document_id=DOC, idempotency_key="sum-1")

    assert not created and replayed.job_id == first.job_id and replayed.owner_region == HERE  # its slot: still held
    assert [m["job_id"] for m in queue.sent] == [first.job_id] and len(lost_queue.sent) == 1
    assert rows[("u1", first.job_id)].owner_region == HERE and rows[("u1", first.job_id)].kind == "summarize"
