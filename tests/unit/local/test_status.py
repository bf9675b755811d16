"""The status page's data, piece by piece: EMF records taken from what sandbox environments print (and nothing
else), counted per region over a window on an injected clock; breakers and AIMD limits read from environments."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

from core.gateway import ModelGateway
from core.models import TargetRef
from core.resilience import BreakerSettings
from local.lambda_pool import ExecutionEnvironments, current_function
from local.status import EmfRecords, capture_emf, gateway_of, target_states


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def emf(**metrics: float) -> str:
    return json.dumps(
        {
            "_aws": {
                "Timestamp": 0,
                "CloudWatchMetrics": [
                    {"Namespace": "Bulwark", "Dimensions": [["target"]],
                     "Metrics": [{"Name": name, "Unit": "Count"} for name in metrics]}
                ],
            },
            "target": "m@us-east-1",
            **{name: [value] for name, value in metrics.items()},
        }
    )  # fmt: skip


def test_records_are_counted_per_region_inside_the_window() -> None:
    clock = FakeClock()
    records = EmfRecords(clock=clock)
    assert records.add("chat@us-east-1", emf(Failovers=1, Hedges=1))
    assert records.add("worker@us-east-1", emf(Failovers=2))
    assert records.add("chat@us-west-2", emf(Failovers=5))
    assert not records.add("chat@us-east-1", "not json") and not records.add("chat@us-east-1", '{"a": 1}')

    assert records.counts("us-east-1", ["Failovers", "Hedges", "DegradedAnswers"], window_s=60) == {
        "Failovers": 3, "Hedges": 1, "DegradedAnswers": 0,
    }  # fmt: skip
    clock.advance(30)
    records.add("chat@us-east-1", emf(Failovers=1))
    assert records.series("us-east-1", "Failovers", window_s=60, bucket_s=15) == [0, 3, 0, 1]
    clock.advance(45)  # the first three are 75 s old now
    assert records.counts("us-east-1", ["Failovers"], window_s=60) == {"Failovers": 1}


def test_capture_takes_only_what_sandbox_environments_print(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "Bulwark")
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")  # as the sandbox's process environment sets it
    records = capture_emf()
    before = records.counts("eu-west-1", ["Failovers"], window_s=3600)["Failovers"]

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        assert current_function() == "chat@eu-west-1"
        single = EphemeralMetrics()
        single.add_dimension(name="target", value="m@eu-west-1")
        single.add_metric(name="Failovers", unit=MetricUnit.Count, value=1)
        single.flush_metrics()
        return {}

    ExecutionEnvironments(lambda: handler, limit=1, name="chat@eu-west-1")({}, None)
    assert current_function() is None
    # Outside an environment Powertools behaves as configured (disabled here: nothing printed, nothing taken).
    outside = EphemeralMetrics()
    outside.add_metric(name="Failovers", unit=MetricUnit.Count, value=1)
    outside.flush_metrics()

    assert records.counts("eu-west-1", ["Failovers"], window_s=3600)["Failovers"] == before + 1
    assert "Failovers" not in capsys.readouterr().out  # taken, not printed


class Target:
    def __init__(self, region: str) -> None:
        self.target = TargetRef(model_id="m", region=region)

    def call(self, **kwargs: Any) -> Any:
        raise AssertionError("not called")


def test_breakers_and_limits_are_read_from_every_environment() -> None:
    clock = FakeClock()
    gateways = [ModelGateway(targets=[Target("a"), Target("b")], clock=clock, sleep=clock.sleep) for _ in range(2)]
    breaker = gateways[1]._targets[0].breaker  # drive one environment's breaker open
    for _ in range(BreakerSettings().consecutive_failures):
        breaker.record(failed=True)

    class Service:
        def __init__(self, model: Any) -> None:
            self.model = model

    def environment(gateway: Any) -> Any:
        api = type("Api", (), {"service": Service(gateway)})()

        def handle(event: dict[str, Any], context: Any) -> dict[str, Any]:
            return api and {}

        return handle

    environments = [environment(g) for g in gateways]
    assert gateway_of(environments[0]) is gateways[0]

    rows = target_states(environments, ["m@a", "m@b"])

    assert [row["breaker"] for row in rows] == ["open", "closed"]
    assert rows[0]["breakers"] == {"closed": 1, "open": 1} and rows[1]["breakers"] == {"closed": 2}
    assert rows[0]["limit"] == gateways[0].capacity_state(0).limit and len(rows[0]["limits"]) == 2
