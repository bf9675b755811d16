"""GET /_sandbox/status against the running sandbox: a model failing in the emulator opens its breaker in the chat
Lambda's environment and a failover count appears; a job waiting in the queue shows as depth; an ingested document
shows as ready; the demo user's tokens of the day show against the budget."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

import pytest

from local.polling import wait_until
from local.sandbox import DEMO_PASSWORD, DEMO_USER
from tests.integration.test_sandbox_knowledge import upload_document
from tests.sandbox_fixture import call, emulator_faults, sandbox, sign_in  # noqa: F401 - the fixture

CEILING_S = 90.0  # generous: pipelines and the emulator's latency run on a shared machine
PRIMARY = "us.amazon.nova-lite-v1:0@us-east-1"


def status(sandbox: Any) -> dict[str, Any]:  # noqa: F811
    with urllib.request.urlopen(sandbox.web_url + "/_sandbox/status", timeout=30) as response:
        assert response.headers["Content-Type"].startswith("application/json")
        return json.loads(response.read())  # type: ignore[no-any-return]


def wait_for(condition: Any, what: str) -> Any:
    value = wait_until(condition, ceiling_s=CEILING_S, poll_s=0.2)
    if not value:
        pytest.fail(f"gave up waiting for {what}")
    return value


def test_status_shows_breakers_failovers_queue_ingest_and_tokens(sandbox: Any) -> None:  # noqa: F811
    token = sign_in(sandbox, DEMO_USER, DEMO_PASSWORD)
    first = status(sandbox)
    region = first["regions"][sandbox.region]
    assert region["up"] is True and region["targets"][0]["target"] == PRIMARY
    assert set(region["queue"]) >= {"depth", "dlq_depth", "oldest_queued_job_s"}
    assert first["tokens"]["budget"] > 0

    # GIVEN the primary model fails every call (the emulator), WHEN chats go on, THEN its breaker opens in the
    # environment serving them and the gateway's failovers (EMF records the Lambda printed) are counted.
    faults = {**sandbox.emulator_faults, "targets": {PRIMARY: {"errors": {"ModelErrorException": 1.0}}}}
    with emulator_faults(sandbox, faults):
        asked = iter(range(1000))

        def breaker_open() -> dict[str, Any] | None:
            number = next(asked)
            code, answer, _ = call(
                sandbox, "POST", "/chat", token=token, body={"message": f"What is {number} plus {number} in words?"}
            )
            assert code == 200, answer
            now = status(sandbox)["regions"][sandbox.region]
            return now if now["targets"][0]["breaker"] == "open" else None

        opened = wait_for(breaker_open, "the primary target's breaker to open")
    assert opened["targets"][0]["breakers"].get("open", 0) >= 1
    assert opened["targets"][1]["breaker"] == "closed"
    assert opened["answers"]["Failovers"] >= 1 and sum(opened["failovers"]) == opened["answers"]["Failovers"]
    assert isinstance(opened["targets"][0]["limit"], float)

    # GIVEN the jobs pump stopped, WHEN a job is submitted, THEN it waits in the queue and the page shows it.
    runtime = sandbox.regions[sandbox.region]
    runtime.stop_worker()
    try:
        code, job, _ = call(sandbox, "POST", "/jobs", token=token, body={"message": "Name three rivers."})
        assert code == 202, job
        queued = wait_for(
            lambda: (q := status(sandbox)["regions"][sandbox.region]["queue"])["depth"] >= 1 and q, "queue depth"
        )
        assert queued["oldest_queued_job_s"] is not None and queued["dlq_depth"] == 0
    finally:
        runtime.worker = runtime.start_worker()
    wait_for(lambda: status(sandbox)["regions"][sandbox.region]["queue"]["depth"] == 0, "the queue to drain")

    # GIVEN a document uploaded, WHEN its region's pipeline has ingested it, THEN it counts as ready there.
    upload_document(sandbox, token, name="status-notes.txt")
    wait_for(lambda: status(sandbox)["regions"][sandbox.region]["ingest"]["ready"] >= 1, "a ready document")

    # The demo user's tokens of the day, by email, against the budget; never a message.
    final = status(sandbox)
    [demo] = [user for user in final["tokens"]["users"] if user["user"] == DEMO_USER]
    assert demo["used"] > 0 and demo["by_region"].get(sandbox.region, 0) > 0
    assert "rivers" not in json.dumps(final) and "plus" not in json.dumps(final)
