"""Per-user daily token budgets through the API Lambda and the jobs worker, on moto and the Bedrock emulator:
the chat response shows the budget, a spent budget is a 429 with the reset time, async answers spend too."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from adapters.usage import DynamoUsageCounters
from core.limits import TokenDay
from tests.integration.test_jobs import call, statuses
from tests.jobs_fixtures import MODEL, jobs_world
from tests.unit.handlers.test_chat import ALICE, BOB


def spent_today(world: Any, user: str = ALICE) -> int:
    counters = DynamoUsageCounters(client=world.dynamodb, table_name=world.settings.usage_table_name)
    return counters.total(user, TokenDay.at(datetime.now(UTC).timestamp()).prefix)


def test_a_chat_answer_shows_the_budget_and_a_spent_budget_is_a_429_with_the_reset_time(capsys: Any) -> None:
    with jobs_world(daily_tokens_per_user=50) as world:
        status, body, _ = call(world, "POST", "/chat", body={"message": "a secret question"})
        total = body["usage"]["total_tokens"]
        assert status == 200 and total > 0 and body["target"]["model_id"] == MODEL[0]
        assert body["budget"]["used"] == total and body["budget"]["limit"] == 50
        reset = datetime.strptime(body["budget"]["resets_at"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        assert reset.hour == reset.minute == reset.second == 0  # the next UTC midnight
        while spent_today(world) < 50:  # the emulator's answers are short: spend the rest of the day's budget
            assert call(world, "POST", "/chat", body={"message": "more"})[0] == 200
        calls = world.emulator.calls(*MODEL)
        capsys.readouterr()

        status, refused, headers = call(world, "POST", "/chat", body={"message": "one more"})
        job = call(world, "POST", "/jobs", body={"message": "one more, later"})
        bob = call(world, "POST", "/chat", body={"message": "what is DNS?"}, sub=BOB)

        used = spent_today(world)
        assert status == 429 and job[0] == 429 and bob[0] == 200
        assert refused["budget"] == {"used": used, "limit": 50, "resets_at": body["budget"]["resets_at"]}
        assert f"{used} of 50 tokens" in refused["message"] and body["budget"]["resets_at"] in refused["message"]
        retry_after = int(headers["Retry-After"])
        assert 1 <= retry_after <= 86_400
        assert abs(retry_after - (reset.timestamp() - datetime.now(UTC).timestamp())) < 60
        assert used - 50 < total + world.settings.targets[0].max_tokens  # overrun: at most one answer
        assert world.emulator.calls(*MODEL) == calls + 1  # only bob's request reached the model
        out = capsys.readouterr().out
        emitted = [json.loads(line) for line in out.splitlines() if line.startswith("{") and '"_aws"' in line]
        assert any(m.get("TokenBudgetExceeded") for m in emitted)
        assert "one more" not in out and ALICE not in json.dumps([m["_aws"] for m in emitted])


def test_an_answer_no_model_wrote_spends_nothing() -> None:
    faults = {"default": {"errors": {"ModelErrorException": 1.0}}}  # the only target fails: a degraded answer
    with jobs_world(faults, daily_tokens_per_user=1000) as world:
        status, body, _ = call(world, "POST", "/chat", body={"message": "how do I rotate keys?"})

        assert status == 200 and body["degraded"] and body["usage"]["total_tokens"] == 0
        assert body["budget"]["used"] == 0 and spent_today(world) == 0


def test_the_budget_is_off_when_configured_to_zero() -> None:
    with jobs_world(daily_tokens_per_user=0) as world:
        status, body, _ = call(world, "POST", "/chat", body={"message": "how do I rotate keys?"})

        assert status == 200 and "budget" not in body and spent_today(world) == 0


def test_jobs_answered_by_the_worker_spend_the_budget_and_one_past_it_fails_with_the_reason() -> None:
    with jobs_world(daily_tokens_per_user=20) as world:
        ids = [call(world, "POST", "/jobs", body={"message": f"question {i}"})[1]["job_id"] for i in range(6)]

        assert world.pump(max_concurrency=1).run_until(
            lambda: all(s in ("done", "failed") for s in statuses(world, ids)), timeout_s=60
        )

        jobs = [call(world, "GET", f"/jobs/{i}")[1] for i in ids]
        done = [j for j in jobs if j["status"] == "done"]
        failed = [j for j in jobs if j["status"] == "failed"]
        spent = spent_today(world)
        assert done and failed and spent >= 20
        assert spent == sum(j["result"]["usage"]["total_tokens"] for j in done)  # each answer counted once
        assert done[-1]["result"]["budget"]["used"] <= spent and done[-1]["result"]["budget"]["limit"] == 20
        assert all("daily token budget is used" in j["reason"] for j in failed)
        assert world.emulator.calls(*MODEL) == len(done)


def test_a_counter_table_that_is_down_lets_chat_through() -> None:
    with jobs_world(daily_tokens_per_user=1) as world:
        api = world.api(usage_table_name="no-such-table")  # an environment whose counters cannot be reached

        status, body, _ = call(world, "POST", "/chat", body={"message": "how do I rotate keys?"}, handler=api)
        again = call(world, "POST", "/chat", body={"message": "and certificates?"}, handler=api)

        assert status == 200 and again[0] == 200 and "budget" not in body  # failed open: no budget to show
