"""Burst benchmark: offered load at 3x the model's quota, async (/jobs) vs sync (/chat) alone.

Both paths run the real handlers' services on moto (DynamoDB, SQS) and the Bedrock emulator,
whose quota is a token bucket (QUOTA_RPM requests/min, one second of burst). For WINDOW_S seconds
requests arrive at 3x the quota rate.
moto's server and the emulator run as their own processes, as in the sandbox.
  async: POST /jobs for each (JobService.submit), the worker drains the queue through the local
         event-source pump (max concurrency from the config's sizing rule), pacing to the quota.
  sync:  POST /chat for each, concurrently, through the gateway (one target): what it cannot
         answer is shed (429 when the model is full, 503 when its breaker is open) or degraded.
         Twice in the same run, each on a fresh world: "before", the gateway as it was (a throttle
         counts toward the breaker, no concurrency limit), and "after", as the Lambdas build it
         (throttles are back-pressure: each target's adaptive concurrency limit, the excess shed at once).
Printed per path: offered, completed, rejected, lost, model calls per job, and for async the time
to drain against the theoretical minimum (jobs / quota rate). For the sync path, before and after:
the share of what the quota allowed in the window that it answered alone (goal >= 90 %), the shed
latency p50/p99 (goal < 100 ms), the answered latency, and whether the breaker opened.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
os.environ.update(
    {
        "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1",
        "POWERTOOLS_METRICS_NAMESPACE": "BulwarkBench", "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_SERVICE_NAME": "bench", "POWERTOOLS_LOG_LEVEL": "ERROR", "POWERTOOLS_METRICS_DISABLED": "true",
    }
)  # fmt: skip

QUICK = bool(os.environ.get("BENCH_QUICK"))
QUOTA_RPM = 600  # 10 requests per second
BURST_S = 1  # the emulator's bucket holds one second of quota, full at the start
WINDOW_S = 5.0 if QUICK else 10.0
OFFERED_PER_S = 3 * QUOTA_RPM / 60
# What the quota lets through while the burst lasts: its rate over the window plus the full bucket at the start.
QUOTA_ALLOWS = QUOTA_RPM / 60 * (WINDOW_S + BURST_S)


def offered_times() -> list[float]:
    count = int(WINDOW_S * OFFERED_PER_S)
    return [i / OFFERED_PER_S for i in range(count)]


@contextmanager
def world(tmp: Path) -> Iterator[dict[str, Any]]:
    """moto server and the emulator in their own processes; resources as the stacks define them."""
    import boto3

    from handlers.settings import Settings, TargetSetting
    from local.processes import emulator_process, moto_server
    from local.resources import create_tables, provision_queues

    faults = tmp / "faults.json"
    faults.write_text(json.dumps({"default": {"latency_ms": [20, 60], "rpm": QUOTA_RPM, "burst_s": BURST_S}}))
    with moto_server() as aws, emulator_process(faults) as emulator:
        clients = {name: boto3.client(name, endpoint_url=aws, region_name="us-east-1") for name in ("dynamodb", "sqs")}
        queue_url, queue_arn, _dlq = provision_queues(clients["sqs"], visibility_s=60, max_receives=4)
        settings = Settings(
            table_name="conversations-b",
            targets=(TargetSetting(model_id="us.amazon.nova-lite-v1:0", region="us-east-1", max_tokens=256),),
            cache_table_name="cache-b",
            jobs_table_name="jobs-b",
            idempotency_table_name="idem-b",
            jobs_queue_url=queue_url,
            job_backoff_s=1,
        )
        create_tables(clients["dynamodb"], settings)
        os.environ.update(settings.to_env())  # as Lambda sets it before a handler module's cold start

        def bedrock(region: str, config: Any) -> Any:
            return boto3.client("bedrock-runtime", region_name=region, endpoint_url=emulator, config=config)

        yield {"settings": settings, "queue_arn": queue_arn, "emulator": emulator, "bedrock": bedrock, **clients}


def model_stats(emulator_url: str) -> dict[str, Any]:
    with urllib.request.urlopen(emulator_url + "/_emulator/stats") as response:
        stats = json.loads(response.read())
    return stats.get("us.amazon.nova-lite-v1:0@us-east-1", {"calls": 0, "outcomes": {}})  # type: ignore[no-any-return]


def run_async(tmp: Path) -> dict[str, float]:
    from core.models import ChatRequest
    from handlers.wiring import build_job_service
    from local.lambda_pool import ExecutionEnvironments
    from local.sqs_pump import SqsPump
    from stacks.config import AppConfig

    sizing = AppConfig.from_context(
        {"models": [{"model_id": "us.amazon.nova-lite-v1:0", "region": "us-east-1", "quota_rpm": QUOTA_RPM,
                     "quota_tpm": 10_000_000}],
         "jobs": {"expected_job_s": 1.0, "expected_tokens_per_job": 300}}
    ).worker_sizing()  # fmt: skip
    with world(tmp) as w:
        from handlers import worker  # after world(): its cold start reads the environment

        # Each worker environment paces to its share of the quota, as the stack sets it.
        settings = w["settings"].but(worker_rate_per_s=sizing.jobs_per_minute / 60 / sizing.max_concurrency)
        api = build_job_service(settings, chat=None, dynamodb=w["dynamodb"], sqs=w["sqs"])
        environments = ExecutionEnvironments(
            lambda: worker.bootstrap(settings, dynamodb=w["dynamodb"], sqs=w["sqs"], bedrock_factory=w["bedrock"]),
            limit=sizing.max_concurrency,
        )
        pump = SqsPump(
            client=w["sqs"], queue_url=settings.jobs_queue_url, queue_arn=w["queue_arn"], handler=environments,
            batch_size=sizing.batch_size, max_concurrency=sizing.max_concurrency,
        ).start()  # fmt: skip
        ids: list[str] = []
        started = time.monotonic()
        for i, at in enumerate(offered_times()):
            time.sleep(max(0.0, started + at - time.monotonic()))
            job, _ = api.submit(
                user_id="bench-user", request=ChatRequest(message=f"question {i}"), idempotency_key=None
            )
            ids.append(job.job_id)
        submitted = time.monotonic() - started

        def finished() -> int:
            return sum(api.status(user_id="bench-user", job_id=i).status in ("done", "failed") for i in ids)

        while finished() < len(ids) and time.monotonic() - started < 300:
            time.sleep(0.5)
        drained = time.monotonic() - started
        pump.stop()
        statuses = [api.status(user_id="bench-user", job_id=i).status for i in ids]
        stats = model_stats(w["emulator"])
        return {
            "offered": len(ids),
            "completed": statuses.count("done"),
            "rejected": statuses.count("failed"),
            "lost": len(ids) - statuses.count("done") - statuses.count("failed"),
            "calls_per_job": stats["calls"] / len(ids),
            "answers_per_job": stats["outcomes"].get("ok", 0) / len(ids),
            "throttled": stats["outcomes"].get("ThrottlingException", 0),
            "drain_s": drained,
            "submit_s": submitted,
            "min_drain_s": len(ids) / (QUOTA_RPM / 60),
            "concurrency": sizing.max_concurrency,
        }


def run_sync(tmp: Path, *, before: bool) -> dict[str, float]:
    """The sync path alone; `before`: the gateway as it was, throttles counted as breaker failures."""
    from core.errors import AtCapacity, Overloaded
    from core.gateway import GatewaySettings
    from core.models import ChatRequest
    from core.resilience import BreakerSettings, BreakerState
    from handlers.wiring import build_chat_service, gateway_capacity

    with world(tmp) as w:
        settings = w["settings"]
        baseline = None
        if before:  # the composition root's settings, but for the flag
            baseline = GatewaySettings(
                deadline_s=settings.deadline_s,
                breaker=BreakerSettings(open_s=settings.breaker_open_s),
                capacity=gateway_capacity(settings),
                throttle_as_failure=True,
            )
        service = build_chat_service(
            settings, dynamodb=w["dynamodb"], bedrock_factory=w["bedrock"], gateway_settings=baseline
        )
        gateway = service._model  # the gateway itself: the bench watches its breaker
        outcomes: list[tuple[str, float, float]] = []  # (outcome, started, took)
        lock = threading.Lock()
        opened = threading.Event()

        def one(i: int) -> None:
            started = time.perf_counter()
            try:
                answer = service.answer(user_id=f"user-{i}", request=ChatRequest(message=f"question {i}"))
                result = "degraded" if answer.degraded else "done"
            except AtCapacity:
                result = "shed 429"
            except Overloaded:
                result = "shed 503"
            took = time.perf_counter() - started
            if gateway.breaker_state(0) is not BreakerState.CLOSED:
                opened.set()
            with lock:
                outcomes.append((result, started, took))

        began = time.perf_counter()
        with ThreadPoolExecutor(max_workers=64) as pool:
            for i, at in enumerate(offered_times()):
                time.sleep(max(0.0, began + at - time.perf_counter()))
                pool.submit(one, i)
        stats = model_stats(w["emulator"])
        n = len(outcomes)
        kinds = [kind for kind, _, _ in outcomes]
        shed = sorted(took for kind, _, took in outcomes if kind.startswith("shed"))
        done = sorted(took for kind, _, took in outcomes if kind == "done")
        return {
            "offered": n,
            "completed": kinds.count("done"),
            "rejected": n - kinds.count("done"),
            "lost": 0,
            "calls_per_job": stats["calls"] / n,
            "answers_per_job": stats["outcomes"].get("ok", 0) / n,
            "throttled": stats["outcomes"].get("ThrottlingException", 0),
            "drain_s": time.perf_counter() - began,
            "min_drain_s": n / (QUOTA_RPM / 60),
            "shed_429": kinds.count("shed 429"),
            "shed_503": kinds.count("shed 503"),
            "degraded": kinds.count("degraded"),
            "quota_share": kinds.count("done") / QUOTA_ALLOWS,
            "shed_p50": quantile(shed, 0.5),
            "shed_p99": quantile(shed, 0.99),
            "done_p50": quantile(done, 0.5),
            "done_p99": quantile(done, 0.99),
            "breaker_opened": float(opened.is_set()),
        }


def quantile(ordered: list[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else math.nan


def main() -> None:
    print(f"burst benchmark: quota {QUOTA_RPM} requests/min ({QUOTA_RPM / 60:.0f}/s, {BURST_S} s of burst), offered "
          f"{OFFERED_PER_S:.0f}/s (3x) for {WINDOW_S:.0f} s")  # fmt: skip
    # The worker's EMF metrics would print to stdout here (in Lambda they go to CloudWatch).
    with tempfile.TemporaryDirectory() as tmp, contextlib.redirect_stdout(io.StringIO()):
        rows = {
            "async (/jobs)": run_async(Path(tmp)),
            "sync before": run_sync(Path(tmp), before=True),
            "sync after": run_sync(Path(tmp), before=False),
        }
    print(f"{'path':14} {'offered':>7} {'done':>6} {'rejected':>8} {'lost':>5} {'calls/job':>9} "
          f"{'answers/job':>11} {'throttled':>9} {'drain s':>8} {'min s':>6} {'ratio':>6}")  # fmt: skip
    for name, r in rows.items():
        print(f"{name:14} {r['offered']:7.0f} {r['completed']:6.0f} {r['rejected']:8.0f} {r['lost']:5.0f} "
              f"{r['calls_per_job']:9.2f} {r['answers_per_job']:11.2f} {r['throttled']:9.0f} "
              f"{r['drain_s']:8.1f} {r['min_drain_s']:6.1f} {r['drain_s'] / r['min_drain_s']:6.2f}")  # fmt: skip
    a = rows["async (/jobs)"]
    print()
    print(f"  async completed {a['completed'] / a['offered']:.1%} (goal >= 99%), lost {a['lost']:.0f} (goal 0), "
          f"drain {a['drain_s'] / a['min_drain_s']:.2f}x the minimum (goal <= 1.1x); worker concurrency "
          f"{a['concurrency']:.0f} from the sizing rule")  # fmt: skip
    print(f"  submit phase took {a['submit_s']:.1f} s for {a['offered']:.0f} jobs (202 each)")
    print()
    print(f"sync path alone, before (throttles open the breaker) and after (throttles are back-pressure); the quota "
          f"allowed {QUOTA_ALLOWS:.0f} answers in the window")  # fmt: skip
    print(f"{'':8} {'answered':>8} {'of quota':>8} {'429':>5} {'503':>5} {'degraded':>8} {'shed p50':>9} "
          f"{'shed p99':>9} {'ans p50':>8} {'ans p99':>8} {'calls/req':>9} {'breaker':>8}")  # fmt: skip
    for name in ("before", "after"):
        r = rows[f"sync {name}"]
        print(f"{name:8} {r['completed']:8.0f} {r['quota_share']:8.1%} {r['shed_429']:5.0f} {r['shed_503']:5.0f} "
              f"{r['degraded']:8.0f} {ms(r['shed_p50']):>9} {ms(r['shed_p99']):>9} {ms(r['done_p50']):>8} "
              f"{ms(r['done_p99']):>8} {r['calls_per_job']:9.2f} "
              f"{'opened' if r['breaker_opened'] else 'closed':>8}")  # fmt: skip
    before, after = rows["sync before"], rows["sync after"]
    print()
    print(f"  after: answered {after['quota_share']:.1%} of what the quota allowed (goal >= 90%; before "
          f"{before['quota_share']:.1%}, ratio {after['completed'] / max(1.0, before['completed']):.1f}x), shed p99 "
          f"{ms(after['shed_p99'])} (goal < 100 ms), model calls {after['calls_per_job']:.2f} per request "
          f"(goal <= 1.1)")  # fmt: skip
    assert math.isfinite(a["drain_s"])


def ms(seconds: float) -> str:
    return "-" if math.isnan(seconds) else f"{seconds * 1000:.0f} ms"


if __name__ == "__main__":
    main()
