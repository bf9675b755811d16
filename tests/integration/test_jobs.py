"""The async jobs path on moto SQS/DynamoDB and the emulator: nothing lost, nothing answered twice."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import pytest

from local.apigw import response_headers
from tests.jobs_fixtures import MODEL, JobsWorld, jobs_world
from tests.unit.handlers.test_chat import ALICE, BOB, FakeContext, api_event


def call(
    world: JobsWorld,
    method: str,
    path: str,
    *,
    body: Any = None,
    sub: str = ALICE,
    headers: dict[str, str] | None = None,
    handler: Any = None,
):
    """One request to the world's API Lambda (or to `handler`, another environment of it)."""
    event = api_event(method, path, body=json.dumps(body) if body is not None else None, sub=sub)
    event["headers"] = {**event["headers"], **(headers or {})}
    response = (handler or world.chat)(event, FakeContext())
    payload = json.loads(response["body"]) if response.get("body") else None
    return response["statusCode"], payload, response_headers(response)


def statuses(world: JobsWorld, ids: list[str], sub: str = ALICE) -> list[str]:
    jobs = world.jobs
    return [jobs.status(user_id=sub, job_id=i).status for i in ids]


def test_submit_answers_202_without_the_model_and_status_shows_the_answer_when_done() -> None:
    with jobs_world() as world:
        status, body, headers = call(world, "POST", "/jobs", body={"message": "What is the capital of France?"})

        assert status == 202 and body["status"] == "queued" and headers["Location"] == f"/jobs/{body['job_id']}"
        assert world.emulator.calls(*MODEL) == 0  # accepted without waiting for the model
        assert call(world, "GET", f"/jobs/{body['job_id']}")[1]["status"] == "queued"

        assert world.pump().run_until(lambda: statuses(world, [body["job_id"]]) == ["done"], timeout_s=60)
        status, done, _ = call(world, "GET", f"/jobs/{body['job_id']}")
        assert status == 200 and done["result"]["answer"] and done["result"]["target"]["model_id"] == MODEL[0]


def test_duplicate_submit_with_the_same_key_is_one_job_and_one_message() -> None:
    with jobs_world() as world:
        first = call(world, "POST", "/jobs", body={"message": "hi"}, headers={"Idempotency-Key": "abc"})
        second = call(world, "POST", "/jobs", body={"message": "hi"}, headers={"Idempotency-Key": "abc"})
        other = call(world, "POST", "/jobs", body={"message": "hi"}, headers={"Idempotency-Key": "xyz"})

        assert first[1]["job_id"] == second[1]["job_id"] != other[1]["job_id"]
        assert second[0] == 202 and second[2].get("Idempotent-Replayed") == "true"
        assert world.depth(world.queue_url) == 2


def test_without_a_key_an_identical_retry_inside_the_window_is_the_same_job() -> None:
    with jobs_world() as world:
        first = call(world, "POST", "/jobs", body={"message": "same"})
        second = call(world, "POST", "/jobs", body={"message": "same"})

        assert first[1]["job_id"] == second[1]["job_id"] and world.depth(world.queue_url) == 1


def test_another_users_job_is_404_and_bad_ids_are_400() -> None:
    with jobs_world() as world:
        _, body, _ = call(world, "POST", "/jobs", body={"message": "mine"})

        assert call(world, "GET", f"/jobs/{body['job_id']}", sub=BOB)[0] == 404
        assert call(world, "GET", "/jobs/not-a-uuid")[0] == 400
        assert call(world, "POST", "/jobs", body={"message": 5})[0] == 400


def test_a_burst_at_three_times_the_quota_completes_every_job_exactly_once() -> None:
    # Quota 120 requests/min with a 1 s bucket: 2 at once, then 2 per second. 12 jobs at once.
    faults = {"default": {"latency_ms": [1, 3], "rpm": 120, "burst_s": 1}}
    with jobs_world(faults, job_backoff_s=1, breaker_open_s=1) as world:
        ids = [call(world, "POST", "/jobs", body={"message": f"question {i}"})[1]["job_id"] for i in range(12)]

        # Done means every job answered AND every message deleted: a job is marked done before the pump
        # deletes its message, so checking the queue right after the last status would race the pump.
        drained = world.pump(max_concurrency=2).run_until(
            lambda: set(statuses(world, ids)) == {"done"} and world.depth(world.queue_url) == 0, timeout_s=60
        )

        stats = world.emulator.stats()[f"{MODEL[0]}@{MODEL[1]}"]
        assert drained, statuses(world, ids)
        # Throttles happen when the pump outruns the quota (on a slow machine it may not): either way each
        # job reaches the model exactly once, and every other call was a throttle that was retried later.
        assert stats["outcomes"]["ok"] == 12  # each job answered by the model exactly once
        assert stats["calls"] == 12 + stats["outcomes"].get("ThrottlingException", 0)
        assert world.depth(world.dlq_url) == 0 and world.depth(world.queue_url) == 0


def test_duplicate_delivery_calls_the_model_once() -> None:
    with jobs_world() as world:
        _, body, _ = call(world, "POST", "/jobs", body={"message": "once"})
        world.sqs.send_message(
            QueueUrl=world.queue_url, MessageBody=json.dumps({"job_id": body["job_id"], "user_id": ALICE})
        )

        pump = world.pump()
        pump.run_until(lambda: world.depth(world.queue_url) == 0, timeout_s=60)

        assert statuses(world, [body["job_id"]]) == ["done"]
        assert world.emulator.calls(*MODEL) == 1


def test_a_crash_after_the_answer_and_before_the_write_completes_exactly_once() -> None:
    with jobs_world() as world:
        _, body, _ = call(world, "POST", "/jobs", body={"message": "crash test"})
        jobs = world.worker_jobs()
        real_complete = jobs.complete
        crashes = []

        def crash_once(message: dict[str, Any], result: dict[str, Any]) -> None:
            if not crashes:
                crashes.append(result)
                raise RuntimeError("injected crash between the model's answer and the job write")
            real_complete(message, result)

        jobs.complete = crash_once
        world.pump().run_until(lambda: statuses(world, [body["job_id"]]) == ["done"], timeout_s=60)

        assert crashes and statuses(world, [body["job_id"]]) == ["done"]
        assert world.emulator.calls(*MODEL) == 1


def test_a_poison_message_reaches_the_dlq_and_the_job_fails_with_a_reason() -> None:
    with jobs_world(max_receives=3) as world:
        _, body, _ = call(world, "POST", "/jobs", body={"message": "poison"})
        jobs = world.worker_jobs()

        def broken(message: dict[str, Any], *, remaining_s: float) -> dict[str, Any]:
            raise RuntimeError("bug in processing")

        jobs.answer = broken
        world.pump().run_until(lambda: world.depth(world.dlq_url) == 1, timeout_s=60)

        job = jobs.status(user_id=ALICE, job_id=body["job_id"])
        assert world.depth(world.dlq_url) == 1
        assert job.status == "failed" and "after 3 attempts" in (job.reason or "")
        assert body["job_id"] in (job.reason or "")  # a reference to quote
        assert "bug in processing" not in (job.reason or "") and "RuntimeError" not in (job.reason or "")


def test_a_malformed_message_goes_to_the_dlq() -> None:
    with jobs_world(max_receives=2) as world:
        world.sqs.send_message(QueueUrl=world.queue_url, MessageBody="{not json")

        world.pump().run_until(lambda: world.depth(world.dlq_url) == 1, timeout_s=60)

        assert world.depth(world.dlq_url) == 1


def test_a_stale_job_fails_with_the_age_reason_instead_of_being_answered() -> None:
    with jobs_world(job_max_age_s=0.5) as world:
        _, body, _ = call(world, "POST", "/jobs", body={"message": "late"})
        time.sleep(0.7)

        world.pump().run_until(lambda: statuses(world, [body["job_id"]]) == ["failed"], timeout_s=60)

        _, job, _ = call(world, "GET", f"/jobs/{body['job_id']}")
        assert job["status"] == "failed" and job["reason"].startswith("stale:")
        assert world.emulator.calls(*MODEL) == 0


def test_a_stale_job_reads_as_failed_even_before_the_worker_sees_it() -> None:
    with jobs_world(job_max_age_s=0.3) as world:
        _, body, _ = call(world, "POST", "/jobs", body={"message": "late"})
        time.sleep(0.5)

        _, job, _ = call(world, "GET", f"/jobs/{body['job_id']}")

        assert job["status"] == "failed" and "limit" in job["reason"]


def test_a_rejected_request_fails_the_job_with_the_models_reason() -> None:
    with jobs_world({"default": {"errors": {"ValidationException": 1.0}}}) as world:
        _, body, _ = call(world, "POST", "/jobs", body={"message": "x"})

        world.pump().run_until(lambda: statuses(world, [body["job_id"]]) == ["failed"], timeout_s=60)

        _, job, _ = call(world, "GET", f"/jobs/{body['job_id']}")
        assert "rejected" in job["reason"] and world.depth(world.dlq_url) == 0


def test_sync_chat_sheds_to_503_with_a_jobs_hint_or_to_a_job() -> None:
    with jobs_world({"default": {"down": True}}) as world:
        for _ in range(5):  # open the only breaker
            call(world, "POST", "/chat", body={"message": f"warm {uuid.uuid4()}"})
        calls_when_open = world.emulator.calls(*MODEL)

        status, body, headers = call(world, "POST", "/chat", body={"message": "are you there?"})

        assert status == 503 and int(headers["Retry-After"]) >= 1 and "/jobs" in body["message"]
        assert world.emulator.calls(*MODEL) == calls_when_open  # shed at once: the model was not tried

        shedding = world.api(shed_to_jobs=True)  # another environment, configured to queue instead
        for _ in range(5):
            call(world, "POST", "/chat", body={"message": f"warm {uuid.uuid4()}"}, handler=shedding)
        status, body, _ = call(world, "POST", "/chat", body={"message": "queue me"}, handler=shedding)
        assert status == 202 and body["status"] == "queued" and "queued as a job" in body["note"]


def test_redrive_moves_parked_jobs_back_and_they_complete() -> None:
    from tools.redrive import redrive

    with jobs_world(max_receives=3) as world:
        _, body, _ = call(world, "POST", "/jobs", body={"message": "parked then fixed"})
        jobs = world.worker_jobs()
        real_answer = jobs.answer
        jobs.answer = lambda message, *, remaining_s: (_ for _ in ()).throw(RuntimeError("outage"))
        world.pump().run_until(lambda: world.depth(world.dlq_url) == 1, timeout_s=60)
        jobs.answer = real_answer  # the fix

        report = redrive(world.sqs, queue_url=world.queue_url, dlq_url=world.dlq_url, limit=100)

        assert statuses(world, [body["job_id"]]) == ["failed"]  # marked on its last receive
        assert report == {"moved": 1, "failed": 0, "jobs": {body["job_id"]: 1}}
        assert world.depth(world.dlq_url) == 0
        world.pump().run_until(lambda: statuses(world, [body["job_id"]]) == ["done"], timeout_s=60)
        assert world.emulator.calls(*MODEL) == 1


def test_a_duplicate_of_a_failed_job_does_not_reopen_it() -> None:
    with jobs_world({"default": {"errors": {"ValidationException": 1.0}}}) as world:
        _, body, _ = call(world, "POST", "/jobs", body={"message": "x"})
        world.pump().run_until(lambda: statuses(world, [body["job_id"]]) == ["failed"], timeout_s=60)
        world.sqs.send_message(
            QueueUrl=world.queue_url, MessageBody=json.dumps({"job_id": body["job_id"], "user_id": ALICE})
        )

        world.pump().run_until(lambda: world.depth(world.queue_url) == 0, timeout_s=60)

        assert statuses(world, [body["job_id"]]) == ["failed"] and world.emulator.calls(*MODEL) == 1


def test_a_user_past_the_open_jobs_cap_gets_429_until_one_finishes() -> None:
    with jobs_world(max_open_jobs_per_user=2) as world:
        first = call(world, "POST", "/jobs", body={"message": "one"})
        second = call(world, "POST", "/jobs", body={"message": "two"})
        replay = call(world, "POST", "/jobs", body={"message": "two"})  # the same job: no new slot
        refused = call(world, "POST", "/jobs", body={"message": "three"})
        other_user = call(world, "POST", "/jobs", body={"message": "three"}, sub=BOB)

        assert [first[0], second[0], replay[0], other_user[0]] == [202, 202, 202, 202]
        assert refused[0] == 429 and int(refused[2]["Retry-After"]) > 0
        assert "2 jobs queued or running" in refused[1]["message"]

        both = [first[1]["job_id"], second[1]["job_id"]]
        assert world.pump().run_until(lambda: statuses(world, both) == ["done"] * 2, timeout_s=60)
        assert call(world, "POST", "/jobs", body={"message": "three"})[0] == 202


def test_a_slot_left_by_a_crashed_submit_is_found_and_freed() -> None:
    with jobs_world(max_open_jobs_per_user=1) as world:
        world.jobs_slots().reserve(ALICE, str(uuid.uuid4()), cap=1)  # reserved, but the job was never written

        status, body, _ = call(world, "POST", "/jobs", body={"message": "after a crash"})

        assert status == 202 and world.jobs_slots().held(ALICE) == [body["job_id"]]


def test_per_user_request_rate_answers_429_with_the_reset_time() -> None:
    with jobs_world(user_requests_per_minute=3) as world:
        malformed = [call(world, "POST", "/chat", body={"nope": 1})[0] for _ in range(5)]  # never counted
        answered = [call(world, "POST", "/jobs", body={"message": f"q{i}"})[0] for i in range(3)]
        refused = call(world, "POST", "/chat", body={"message": "one more"})
        bob = call(world, "POST", "/jobs", body={"message": "hi"}, sub=BOB)

        assert malformed == [400] * 5 and answered == [202] * 3 and bob[0] == 202
        assert refused[0] == 429 and 1 <= int(refused[2]["Retry-After"]) <= 60
        assert "requests in a minute" in refused[1]["message"]


def test_a_replayed_submit_of_a_finished_job_gets_its_job_even_at_the_cap() -> None:
    with jobs_world(max_open_jobs_per_user=1) as world:
        key = {"Idempotency-Key": "finished-one"}
        first = call(world, "POST", "/jobs", body={"message": "one"}, headers=key)
        assert world.pump().run_until(lambda: statuses(world, [first[1]["job_id"]]) == ["done"], timeout_s=60)
        call(world, "POST", "/jobs", body={"message": "two"})  # holds the only slot

        replay = call(world, "POST", "/jobs", body={"message": "one"}, headers=key)

        assert replay[0] == 202 and replay[1]["job_id"] == first[1]["job_id"] and replay[1]["status"] == "done"


def test_an_answered_job_counts_its_tokens_per_target_once_even_delivered_twice(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The worker's tokens reach the dashboards' token cost (per target, EMF), counted in the idempotent answer:
    a second delivery of the same job replays the stored answer, calls no model, and counts nothing."""
    with jobs_world() as world:
        _, body, _ = call(world, "POST", "/jobs", body={"message": "count my tokens"})
        world.sqs.send_message(
            QueueUrl=world.queue_url, MessageBody=json.dumps({"job_id": body["job_id"], "user_id": ALICE})
        )
        capsys.readouterr()
        world.pump().run_until(lambda: world.depth(world.queue_url) == 0, timeout_s=60)

        blobs = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith('{"_aws"')]
        tokens = [blob for blob in blobs if "InputTokens" in blob and "target" in blob]
        assert statuses(world, [body["job_id"]]) == ["done"] and world.emulator.calls(*MODEL) == 1
        assert len(tokens) == 1, tokens
        answer = world.jobs.status(user_id=ALICE, job_id=body["job_id"]).answer
        assert answer is not None
        (blob,) = tokens
        assert blob["target"] == f"{answer['target']['model_id']}@{answer['target']['region']}"
        for name in ("input_tokens", "output_tokens"):
            field = "InputTokens" if name == "input_tokens" else "OutputTokens"
            assert blob[field] in (answer["usage"][name], [answer["usage"][name]]) and answer["usage"][name] > 0
        assert "count my tokens" not in json.dumps(blobs)
