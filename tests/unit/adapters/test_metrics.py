"""Gateway events become EMF metrics with a per-target dimension."""

from __future__ import annotations

import json

import pytest

from adapters.metrics import PowertoolsGatewayMetrics, record_outcome
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


def test_every_gateway_metric_is_also_summed_over_the_regions_lambdas_per_target(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # GIVEN a failed attempt and a breaker opening, as chat, stream, worker or summarize record them
    metrics = PowertoolsGatewayMetrics()
    metrics.record(event="attempt", target=TARGET, detail="ThrottlingException")
    metrics.record(event="breaker", target=TARGET, detail="half_open->open")

    # THEN each blob has the Lambda's dimension set [target, service] and the region-wide [target]
    for blob in emitted(capsys):
        (directive,) = blob["_aws"]["CloudWatchMetrics"]  # type: ignore[index]
        assert sorted(map(sorted, directive["Dimensions"])) == [["service", "target"], ["target"]]
        assert blob["target"] == "us.amazon.nova-lite-v1:0@us-east-1" and blob["service"] == "chat"
        names = {metric["Name"] for metric in directive["Metrics"]}
        assert names in ({"ModelAttempts", "Errors.ThrottlingException"}, {"BreakerTransitions", "BreakerOpened"})


@pytest.mark.parametrize(("degraded", "expected"), [(False, 0.0), (True, 1.0)])
def test_an_answers_outcome_counts_one_answer_per_lambda_and_for_the_region(
    capsys: pytest.CaptureFixture[str], degraded: bool, expected: float
) -> None:
    record_outcome(degraded=degraded)

    (blob,) = emitted(capsys)
    (directive,) = blob["_aws"]["CloudWatchMetrics"]  # type: ignore[index]
    assert directive["Dimensions"] == [["scope", "service"], ["scope"]]
    assert {metric["Name"]: metric["Unit"] for metric in directive["Metrics"]} == {
        "Answers": "Count", "AnswersDegraded": "Count",
    }  # fmt: skip
    assert blob["scope"] == "region" and blob["service"] == "chat"
    assert blob["Answers"] in (1.0, [1.0]) and blob["AnswersDegraded"] in (expected, [expected])
    # Counts and the constant dimensions only: nothing a user wrote or was answered.
    assert set(blob) == {"_aws", "scope", "service", "Answers", "AnswersDegraded"}
