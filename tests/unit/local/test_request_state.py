"""Execution environments that share a process keep their requests apart (local/request_state.py)."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.event_handler import APIGatewayRestResolver

from local.apigw import rest_event
from local.lambda_context import LocalContext
from local.lambda_pool import ExecutionEnvironments

PAIRS = 8


def test_concurrent_environments_each_see_their_own_request() -> None:
    both_inside = threading.Barrier(PAIRS)

    def environment() -> Any:
        app = APIGatewayRestResolver()

        @app.post("/echo")
        def echo() -> dict[str, Any]:
            both_inside.wait(timeout=10)  # every request is inside its route before any reads its event
            claims = app.current_event.request_context.authorizer.raw_event["claims"]
            return {"body": app.current_event.json_body, "sub": claims["sub"]}

        return lambda event, context: app.resolve(event, context)

    environments = ExecutionEnvironments(environment, limit=PAIRS)

    def call(index: int) -> dict[str, Any]:
        event = rest_event(method="POST", path="/echo", resource="/echo", body=json.dumps({"n": index}),
                           claims={"sub": f"user-{index}"})  # fmt: skip
        return json.loads(environments(event, LocalContext(function_name="echo", timeout_s=5))["body"])  # type: ignore[no-any-return]

    with ThreadPoolExecutor(max_workers=PAIRS) as pool:
        answers = list(pool.map(call, range(PAIRS)))

    assert answers == [{"body": {"n": i}, "sub": f"user-{i}"} for i in range(PAIRS)]


def test_each_thread_flushes_only_its_own_metrics(capsys: Any) -> None:
    ExecutionEnvironments(lambda: lambda event, context: {}, limit=1)  # isolates, as the sandbox's pools do
    both_added = threading.Barrier(2)

    def request(name: str) -> None:
        metrics = Metrics(namespace="Test", service="isolation")
        metrics.add_metric(name=name, unit="Count", value=1)
        both_added.wait(timeout=10)
        metrics.flush_metrics()

    threads = [threading.Thread(target=request, args=(name,)) for name in ("First", "Second")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    blobs = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    names = sorted(tuple(m["Name"] for m in blob["_aws"]["CloudWatchMetrics"][0]["Metrics"]) for blob in blobs)
    assert names == [("First",), ("Second",)]


def test_metrics_made_after_isolation_still_keep_a_set_per_thread() -> None:
    import threading

    from aws_lambda_powertools import Metrics
    from aws_lambda_powertools.metrics import MetricUnit

    from local.request_state import isolate

    isolate()
    metrics = Metrics(namespace="Isolation", service="test")  # made after isolate(), as the sandbox does
    metrics.add_metric(name="MainThreadOnly", unit=MetricUnit.Count, value=1)
    seen: list[set[str]] = []

    def other_thread() -> None:
        seen.append(set(metrics.metric_set))

    thread = threading.Thread(target=other_thread)
    thread.start()
    thread.join()

    assert "MainThreadOnly" in metrics.metric_set and "MainThreadOnly" not in seen[0]
    metrics.clear_metrics()
