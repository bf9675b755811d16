"""Disaster recovery of accepted jobs (issue 10), on moto in two regions and the Bedrock emulator.

The primary accepts a job, the job row reaches DR (global-table replication, played by the test: `replicate`),
then the primary is lost with the job's message in its queue. DR's recovery sweep, at a time the test gives it
(an injected clock, no waiting), adopts the job and DR's worker answers it, once. When the primary returns, its
stale message answers nothing. Every count below is an outcome, never a duration.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from adapters.jobs import OPEN_JOBS_INDEX, DynamoJobStore, SqsJobQueue
from core.jobs import JobService, JobSettings
from core.models import ChatRequest, OpenJob
from handlers import recovery, worker
from tests.jobs_fixtures import DR, MODEL, PRIMARY, Region, TwoRegions, two_regions
from tests.unit.handlers.test_chat import ALICE, FakeContext, api_event

STRANDED_S = 600.0


def later(seconds: float) -> Any:
    """A clock `seconds` ahead of now (the sweep's view after that much time without a heartbeat)."""
    return lambda: time.time() + seconds


def call(region: Region, method: str, path: str, *, body: Any = None, headers: dict[str, str] | None = None) -> Any:
    event = api_event(method, path, body=json.dumps(body) if body is not None else None, sub=ALICE)
    event["headers"] = {**event["headers"], **(headers or {})}
    response = region.chat(event, FakeContext())
    return response["statusCode"], json.loads(response["body"]) if response.get("body") else None


def accept_in_primary(world: TwoRegions, message: str = "What is the capital of France?") -> str:
    """A job accepted by the primary (202), its row replicated to DR, its message left in the primary's queue."""
    status, body = call(world.primary, "POST", "/jobs", body={"message": message})
    assert status == 202 and world.primary.messages() == 1
    world.replicate(world.primary, world.dr)
    return str(body["job_id"])


def parked(region: Region) -> int:
    name = "ApproximateNumberOfMessages"
    return int(region.sqs.get_queue_attributes(QueueUrl=region.dlq_url, AttributeNames=[name])["Attributes"][name])


def model_calls(world: TwoRegions) -> int:
    return world.emulator.calls(*MODEL)


def test_a_job_accepted_by_a_lost_region_is_adopted_and_answered_once_by_dr_and_failback_answers_nothing() -> None:
    with two_regions() as world:
        job_id = accept_in_primary(world)

        # GIVEN the primary lost (its queue is never delivered again) WHEN DR sweeps before the job is stranded
        fresh = world.dr.sweep()
        # THEN a job whose region may still be working on it is left alone
        assert fresh["adopted"] == 0 and world.dr.messages() == 0

        # WHEN DR sweeps once the primary has been quiet for longer than stranded_after_s
        report = world.dr.sweep(clock=later(STRANDED_S + 1), stranded_after_s=STRANDED_S)
        assert report["adopted"] == 1 and report["claims_lost"] == 0
        adopted = world.dr.job(ALICE, job_id)
        assert (adopted.owner_region, adopted.accepted_in, adopted.status) == (DR, PRIMARY, "queued")
        assert world.dr.bodies() == [{"job_id": job_id, "user_id": ALICE, "requeues": 0}]

        # THEN DR's worker answers it, once
        assert world.dr.deliver() == 1
        done = world.dr.job(ALICE, job_id)
        assert done.status == "done" and done.answer["answer"] and model_calls(world) == 1

        # WHEN the primary returns: DR's writes replicate back, and its worker gets the stale message
        world.replicate(world.dr, world.primary)
        assert world.primary.deliver() == 1
        # THEN the message is dropped (the job is DR's and done): no second answer, nothing parked, one turn
        assert model_calls(world) == 1 and world.primary.messages() == 0
        assert parked(world.primary) == 0
        status, shown = call(world.primary, "GET", f"/jobs/{job_id}")
        assert status == 200 and shown["status"] == "done" and shown["result"] == done.answer
        status, conversation = call(world.primary, "GET", f"/conversations/{done.answer['conversation_id']}")
        assert status == 200 and len(conversation["turns"]) == 1
        # AND the primary's later sweeps leave DR's finished job alone
        assert world.primary.sweep(clock=later(STRANDED_S + 1))["seen"] == 0


def test_a_job_answered_by_the_lost_region_but_not_recorded_is_finished_in_dr_from_its_idempotency_record() -> None:
    with two_regions() as world:
        job_id = accept_in_primary(world)
        # The primary's worker gets the model's answer (its idempotency record says COMPLETED), then the region is
        # lost before the job's row says done; the message stays in its queue.
        jobs = worker.build_worker_jobs(world.primary.settings, dynamodb=world.primary.dynamodb,
                                        sqs=world.primary.sqs, bedrock_factory=world.bedrock)  # fmt: skip

        def region_lost(message: dict[str, Any], result: dict[str, Any]) -> None:
            raise RuntimeError("injected: the region went down after the answer, before the job's write")

        jobs.complete = region_lost  # type: ignore[method-assign]
        world.primary.worker = worker.bootstrap(world.primary.settings, jobs=jobs, dynamodb=world.primary.dynamodb,
                                                sqs=world.primary.sqs, bedrock_factory=world.bedrock)  # fmt: skip
        world.primary.deliver(limit=1)
        assert world.primary.job(ALICE, job_id).status == "running" and model_calls(world) == 1
        world.replicate(world.primary, world.dr)  # the idempotency record and the running job reach DR

        assert world.dr.sweep(clock=later(STRANDED_S + 1))["adopted"] == 1
        world.dr.deliver()

        done = world.dr.job(ALICE, job_id)
        assert done.status == "done" and done.answer["answer"]
        assert model_calls(world) == 1  # replayed from the record, not asked again


def test_a_finished_job_is_not_in_the_recovery_index_and_is_never_adopted() -> None:
    with two_regions() as world:
        job_id = accept_in_primary(world)
        world.primary.deliver()
        assert world.primary.job(ALICE, job_id).status == "done"
        world.replicate(world.primary, world.dr)

        report = world.dr.sweep(clock=later(STRANDED_S + 1))

        assert report["seen"] == 0 and report["adopted"] == 0 and world.dr.messages() == 0
        assert world.dr.job(ALICE, job_id).owner_region == PRIMARY
        index = world.dr.dynamodb.scan(TableName=world.dr.settings.jobs_table_name, IndexName=OPEN_JOBS_INDEX)
        assert index["Items"] == []  # sparse: a finished job has no heartbeat


def test_two_sweeps_racing_for_one_job_adopt_it_once() -> None:
    with two_regions() as world:
        job_id = accept_in_primary(world)
        clock = later(STRANDED_S + 1)
        # What a second pass read from the (eventually consistent) index before the first one adopted the job.
        seen = list(world.dr.store().open_jobs(PRIMARY, heartbeat_before=clock() - STRANDED_S))
        assert [job.job_id for job in seen] == [job_id]

        first = world.dr.sweep(clock=clock)
        second = recovery.bootstrap(
            world.dr.recovery_settings(), jobs=recovery_jobs(world.dr, clock, StaleIndexStore(world.dr, clock, seen))
        )({}, FakeContext())

        assert (first["adopted"], second["adopted"], second["claims_lost"]) == (1, 0, 1)
        assert world.dr.messages() == 1  # one message: the winner's
        world.dr.deliver()
        assert world.dr.job(ALICE, job_id).status == "done" and model_calls(world) == 1


def test_a_status_read_in_dr_adopts_a_stranded_job_and_a_sweep_after_it_finds_nothing_to_do() -> None:
    with two_regions() as world:
        job_id = accept_in_primary(world)
        clock = later(STRANDED_S + 1)

        job = recovery_jobs(world.dr, clock).status(user_id=ALICE, job_id=job_id)

        assert (job.owner_region, job.status, job.enqueued) == (DR, "queued", True)
        assert world.dr.sweep(clock=clock)["adopted"] == 0 and world.dr.messages() == 1
        world.dr.deliver()
        assert world.dr.job(ALICE, job_id).status == "done" and model_calls(world) == 1


def test_get_job_in_dr_adopts_a_stranded_job_through_the_api_and_counts_it_without_user_data(capsys: Any) -> None:
    # stranded_after_s 0: any job of the other region counts as stranded, so no clock is needed through the API.
    with two_regions(job_stranded_after_s=0.0) as world:
        job_id = accept_in_primary(world, message="my secret question")
        capsys.readouterr()

        status, shown = call(world.dr, "GET", f"/jobs/{job_id}")

        assert status == 200 and shown["status"] == "queued" and world.dr.job(ALICE, job_id).owner_region == DR
        metrics = capsys.readouterr().out
        assert '"JobsAdopted"' in metrics and "my secret question" not in metrics
        world.dr.deliver()
        status, shown = call(world.dr, "GET", f"/jobs/{job_id}")
        assert status == 200 and shown["status"] == "done" and model_calls(world) == 1


def test_a_replayed_submit_in_dr_adopts_the_stranded_job_it_names() -> None:
    with two_regions() as world:
        _, body = call(world.primary, "POST", "/jobs", body={"message": "hi"}, headers={"Idempotency-Key": "k1"})
        world.replicate(world.primary, world.dr)

        jobs = recovery_jobs(world.dr, later(STRANDED_S + 1))
        job, created = jobs.submit(user_id=ALICE, request=ChatRequest(message="hi"), idempotency_key="k1")

        assert not created and job.job_id == body["job_id"] and job.owner_region == DR
        assert world.dr.messages() == 1 and world.dr.job(ALICE, job.job_id).owner_region == DR


def test_a_job_older_than_its_age_limit_fails_with_its_reason_in_dr_instead_of_being_adopted() -> None:
    with two_regions() as world:
        job_id = accept_in_primary(world)
        max_age = world.dr.settings.job_max_age_s

        report = world.dr.sweep(clock=later(max_age + 1))

        assert (report["stale_failed"], report["adopted"]) == (1, 0) and world.dr.messages() == 0
        failed = world.dr.job(ALICE, job_id)
        assert failed.status == "failed" and failed.reason.startswith("stale:") and failed.heartbeat_at is None


def test_an_adoption_that_crashed_before_its_send_is_sent_by_the_next_pass() -> None:
    with two_regions() as world:
        job_id = accept_in_primary(world)
        clock = later(STRANDED_S + 1)
        crashing = recovery_jobs(world.dr, clock, queue=CrashingQueue())

        with pytest.raises(RuntimeError, match="injected"):
            crashing.sweep(peers=[PRIMARY], budget_s=30)
        claimed = world.dr.job(ALICE, job_id)
        assert (claimed.owner_region, claimed.enqueued, world.dr.messages()) == (DR, False, 0)

        # The next pass, resend_after_s later: DR's own job, never sent, is sent.
        report = world.dr.sweep(clock=later(STRANDED_S + 1 + JobSettings().resend_after_s))
        assert (report["resent"], report["adopted"]) == (1, 0) and world.dr.messages() == 1
        world.dr.deliver()
        assert world.dr.job(ALICE, job_id).status == "done" and model_calls(world) == 1


def test_a_primary_that_returns_before_dr_answered_drops_its_message_and_leaves_no_idempotency_record() -> None:
    with two_regions() as world:
        job_id = accept_in_primary(world)
        assert world.dr.sweep(clock=later(STRANDED_S + 1))["adopted"] == 1
        world.replicate(world.dr, world.primary)  # the adoption reaches the primary as it comes back

        assert world.primary.deliver() == 1

        assert world.primary.messages() == 0 and model_calls(world) == 0
        job = world.primary.job(ALICE, job_id)
        assert (job.status, job.owner_region) == ("queued", DR)
        assert world.primary.dynamodb.scan(TableName=world.primary.settings.idempotency_table_name)["Items"] == []
        world.dr.deliver()
        assert world.dr.job(ALICE, job_id).status == "done" and model_calls(world) == 1


def test_a_worker_that_read_the_job_before_the_adoption_reached_it_drops_the_job_at_its_write() -> None:
    with two_regions() as world:
        job_id = accept_in_primary(world)
        assert world.dr.sweep(clock=later(STRANDED_S + 1))["adopted"] == 1
        world.replicate(world.dr, world.primary)
        # The primary's worker passed its ownership check just before the adoption replicated (simulated by
        # skipping the check): the job's own read and its conditional write still see DR as the owner.
        jobs = worker.build_worker_jobs(world.primary.settings, dynamodb=world.primary.dynamodb,
                                        sqs=world.primary.sqs, bedrock_factory=world.bedrock)  # fmt: skip
        jobs.owned_elsewhere = lambda message: None  # type: ignore[method-assign]
        world.primary.worker = worker.bootstrap(world.primary.settings, jobs=jobs, dynamodb=world.primary.dynamodb,
                                                sqs=world.primary.sqs, bedrock_factory=world.bedrock)  # fmt: skip

        world.primary.deliver()

        assert world.primary.messages() == 0 and model_calls(world) == 0
        assert world.primary.job(ALICE, job_id).owner_region == DR
        # No idempotency record left behind to block DR's worker: DR answers it.
        idempotency = world.primary.settings.idempotency_table_name
        assert world.primary.dynamodb.scan(TableName=idempotency)["Items"] == []
        world.dr.deliver()
        assert world.dr.job(ALICE, job_id).status == "done" and model_calls(world) == 1


def test_a_fresh_job_of_another_region_and_this_regions_own_enqueued_jobs_are_left_alone() -> None:
    with two_regions() as world:
        accept_in_primary(world)
        call(world.dr, "POST", "/jobs", body={"message": "asked in DR"})

        report = world.dr.sweep(clock=later(STRANDED_S - 1))

        assert (report["adopted"], report["resent"], report["claims_lost"]) == (0, 0, 0)
        assert world.dr.messages() == 1  # only DR's own submit


# --- helpers -----------------------------------------------------------------------------------------------------
def recovery_jobs(region: Region, clock: Any, store: DynamoJobStore | None = None, queue: Any = None) -> JobService:
    """DR's job service as the recovery Lambda builds it, with a store or queue of the test's."""
    settings = region.recovery_settings()
    jobs = recovery.build_recovery_jobs(settings, dynamodb=region.dynamodb, sqs=region.sqs, clock=clock)
    return JobService(
        store=store or region.store(clock),
        queue=queue or SqsJobQueue(client=region.sqs, queue_url=region.queue_url),
        chat=None,
        settings=jobs.settings,
        clock=clock,
    )


class StaleIndexStore(DynamoJobStore):
    """DR's store whose index read returns what it held before another pass changed the job (eventual
    consistency); every write still goes to the table and is conditional."""

    def __init__(self, region: Region, clock: Any, seen: list[OpenJob]) -> None:
        super().__init__(client=region.dynamodb, table_name=region.settings.jobs_table_name or "", clock=clock)
        self._seen = seen

    def open_jobs(self, owner_region: str, *, heartbeat_before: float) -> Iterator[OpenJob]:
        return iter([job for job in self._seen if job.owner_region == owner_region])


class CrashingQueue:
    """A queue whose send fails: the Lambda dies between the adoption's write and its send."""

    def send(self, body: dict[str, Any], *, delay_s: int = 0) -> None:
        raise RuntimeError("injected: the sweep died before sending the adopted job")


def returning_worker(region: Region, world: TwoRegions, clock: Any, events: list[str]) -> None:
    """`region`'s worker as it is when the region comes back: its clock `clock` (the outage lasted that long)."""
    built = worker.build_worker_jobs(region.settings, dynamodb=region.dynamodb, sqs=region.sqs,
                                     bedrock_factory=world.bedrock)  # fmt: skip

    class Recorded:
        def record(self, event: str) -> None:
            events.append(event)

    jobs = JobService(store=region.store(clock), queue=built._queue, chat=built._chat, settings=built.settings,
                      clock=clock, events=Recorded())  # fmt: skip
    region.worker = worker.bootstrap(region.settings, jobs=jobs, dynamodb=region.dynamodb, sqs=region.sqs,
                                     bedrock_factory=world.bedrock)  # fmt: skip


def test_failback_race_the_returning_primary_settles_its_stale_message_and_dr_answers_the_adopted_job_once() -> None:
    # A settle delay of 0 lets the test receive the re-sent message at once (moto honours DelaySeconds in real
    # time); the replication the delay waits for is played by the test in between. The delay: tests/unit/core.
    with two_regions(job_settle_s=0) as world:
        job_id = accept_in_primary(world)
        # GIVEN the primary cut off for longer than stranded_after_s, and DR's sweep adopting the job in DR's copy
        assert world.dr.sweep(clock=later(STRANDED_S + 1))["adopted"] == 1
        assert world.dr.job(ALICE, job_id).owner_region == DR

        # WHEN the primary returns and its worker receives the job's old message before the adoption replicated
        events: list[str] = []
        returning_worker(world.primary, world, later(STRANDED_S + 2), events)
        assert world.primary.job(ALICE, job_id).owner_region == PRIMARY  # its copy still says it owns the job
        assert world.primary.deliver(limit=1) == 1
        # THEN it does not answer it: the heartbeat is refreshed, the message re-sent for after the settle delay
        assert model_calls(world) == 0 and events == ["settled"]
        assert world.primary.bodies() == [{"job_id": job_id, "user_id": ALICE, "requeues": 0, "settled": True}]
        held = world.primary.job(ALICE, job_id)
        assert (held.owner_region, held.status) == (PRIMARY, "queued") and held.heartbeat_at > time.time() + STRANDED_S
        idempotency = world.primary.settings.idempotency_table_name
        assert world.primary.dynamodb.scan(TableName=idempotency)["Items"] == []  # nothing to block DR

        # WHEN the adoption (the last writer of the item) replicates, then the re-sent message arrives
        world.replicate(world.dr, world.primary)
        assert world.primary.deliver() == 1
        # THEN the primary drops it: nothing answered, nothing parked, no message left
        assert model_calls(world) == 0 and world.primary.messages() == 0 and parked(world.primary) == 0
        assert events == ["settled"]  # the settled receive is not settled again

        # AND DR answers the job, once, and after replication both copies say so
        assert world.dr.deliver() == 1
        done = world.dr.job(ALICE, job_id)
        assert done.status == "done" and model_calls(world) == 1
        world.replicate(world.dr, world.primary)
        assert world.primary.job(ALICE, job_id).status == "done" and model_calls(world) == 1
        assert world.dr.messages() == 0 and world.primary.messages() == 0
