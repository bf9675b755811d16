"""Gateway events become EMF metrics with a per-target dimension."""

from __future__ import annotations

import json

import pytest

from adapters.metrics import PowertoolsGatewayMetrics
from core.models import TargetRef

TARGET = TargetRef(model_id="us.amazon.nova-lite-v1:0", region="us-east-1")


def emitted(capsys: pytest.CaptureFixture[str]) -> list[dict[str, object]]:
    return [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]


def test_a_failed_attempt_counts_the_attempt_and_its_error_code(capsys: pytest.CaptureFixture[str]) -> None:
    PowertoolsGatewayMetrics().record(event="attempt", target=TARGET, detail="ThrottlingException", latency_s=0.2)

    (blob,) = emitted(capsys)
    assert blob["target"] == "us.amazon.nova-lite-v1:0@us-east-1"
    assert blob["ModelAttempts"] == [1.0] or blob["ModelAttempts"] == 1.0
    assert "Errors.ThrottlingException" in blob and "ModelLatency" not in blob
    directive = blob["_aws"]["CloudWatchMetrics"][0]  # type: ignore[index]
    assert ["service", "target"] in directive["Dimensions"] or ["target", "service"] in directive["Dimensions"]


def test_a_successful_attempt_records_latency_and_breaker_opening_is_its_own_metric(
    capsys: pytest.CaptureFixture[str],
) -> None:
    metrics = PowertoolsGatewayMetrics()
    metrics.record(event="attempt", target=TARGET, detail="ok", latency_s=0.25)
    metrics.record(event="breaker", target=TARGET, detail="closed->open")

    ok, breaker = emitted(capsys)
    assert ok["ModelLatency"] in (250.0, [250.0])
    assert "BreakerOpened" in breaker and "BreakerTransitions" in breaker
