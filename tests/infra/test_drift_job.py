"""The drift job in both API stacks (issue 12): its schedule (the shared ScheduledFunction shape), its exact IAM,
two alarms per region (any signal past its bound, the job failing; not one per signal: the idle-cost goal), and the
chat Lambda emitting the signals."""

from __future__ import annotations

from typing import Any

import pytest

from adapters.drift_store import BEYOND_BOUNDS_METRIC
from core.drift import DEFAULT_BOUNDS, SIGNALS
from tests.infra.conftest import Synth

FUNCTION = "AWS::Lambda::Function"
STACKS = {"Bulwark-dev-Api": "us-east-1", "Bulwark-dev-Api-DR": "us-west-2"}


def _one(resources: dict[str, Any], kind: str, prefix: str) -> tuple[str, dict[str, Any]]:
    (found,) = [(name, r) for name, r in resources.items() if r["Type"] == kind and name.startswith(prefix)]
    return found


def _statements(resources: dict[str, Any], role: str) -> dict[str | None, dict[str, Any]]:
    return {
        statement.get("Sid"): statement
        for policy in resources.values()
        if policy["Type"] == "AWS::IAM::Policy" and {"Ref": role} in policy["Properties"]["Roles"]
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    }


@pytest.mark.parametrize("stack", STACKS)
def test_the_drift_job_runs_daily_one_run_at_a_time_without_retries(synth: Synth, stack: str) -> None:
    resources = synth.template(stack).to_json()["Resources"]
    name, function = _one(resources, FUNCTION, "DriftFunction")
    (rule,) = [
        r["Properties"] for r in resources.values()
        if r["Type"] == "AWS::Events::Rule"
        and {"Fn::GetAtt": [name, "Arn"]} in [t["Arn"] for t in r["Properties"]["Targets"]]
    ]  # fmt: skip
    (invoke,) = [
        r["Properties"] for r in resources.values()
        if r["Type"] == "AWS::Lambda::EventInvokeConfig" and r["Properties"]["FunctionName"] == {"Ref": name}
    ]  # fmt: skip

    assert function["Properties"]["Handler"] == "handlers.drift.handler"
    assert function["Properties"]["ReservedConcurrentExecutions"] == 1
    assert rule["ScheduleExpression"] == "rate(1 day)" and rule["State"] == "ENABLED"
    assert rule["Targets"][0]["RetryPolicy"]["MaximumRetryAttempts"] == 0 and invoke["MaximumRetryAttempts"] == 0
    variables = function["Properties"]["Environment"]["Variables"]
    assert variables["DRIFT_WINDOW_HOURS"] == "24" and variables["DRIFT_BASELINE_VERSION"] == "1"
    assert "PROMPTS_TABLE_NAME" in variables


@pytest.mark.parametrize("stack", STACKS)
def test_the_drift_jobs_iam_is_exact(synth: Synth, stack: str) -> None:
    region = STACKS[stack]
    resources = synth.template(stack).to_json()["Resources"]
    role = _one(resources, "AWS::IAM::Role", "DriftFunction")[0]
    by_sid = _statements(resources, role)

    # None: the X-Ray statement every function has.
    expected = {None, "ReadSignals", "EmitDrift", "DriftBaseline", "TableKey"}
    assert set(by_sid) - {"CorpusVectors", "VectorsKey"} == expected
    assert by_sid["ReadSignals"]["Action"] == "cloudwatch:GetMetricData" and by_sid["ReadSignals"]["Resource"] == "*"
    assert by_sid["EmitDrift"]["Action"] == "cloudwatch:PutMetricData"
    assert by_sid["EmitDrift"]["Condition"] == {"StringEquals": {"cloudwatch:namespace": "Bulwark"}}
    baseline = by_sid["DriftBaseline"]
    assert baseline["Action"] == ["dynamodb:GetItem", "dynamodb:PutItem"]
    # Only this region's drift items of the prompts table, never the catalog's prompts.
    assert baseline["Condition"] == {
        "ForAllValues:StringEquals": {"dynamodb:LeadingKeys": [{"Fn::Join": ["", ["drift#", {"Ref": "AWS::Region"}]]}]}
    } or baseline["Condition"] == {"ForAllValues:StringEquals": {"dynamodb:LeadingKeys": [f"drift#{region}"]}}
    assert by_sid["TableKey"]["Action"] == ["kms:Decrypt", "kms:DescribeKey"]
    assert "dynamodb." in str(by_sid["TableKey"]["Condition"])
    if "CorpusVectors" in by_sid:
        assert sorted(by_sid["CorpusVectors"]["Action"]) == ["s3vectors:GetVectors", "s3vectors:ListVectors"]
        assert by_sid["VectorsKey"]["Action"] == "kms:Decrypt"


@pytest.mark.parametrize("stack", STACKS)
def test_one_alarm_fires_when_any_signal_passes_its_bound_and_one_when_the_job_fails(synth: Synth, stack: str) -> None:
    resources = synth.template(stack).to_json()["Resources"]
    drift = {
        name: r["Properties"]
        for name, r in resources.items()
        if r["Type"] == "AWS::CloudWatch::Alarm" and name.startswith("Drift")
    }
    topic = _one(resources, "AWS::SNS::Topic", "AlarmsTopic")[0]

    # Exactly two per region, whatever the number of signals: no per-signal alarm ($0.10 a month each).
    assert len(drift) == 2
    assert not [r for r in resources.values() if r["Type"] == "AWS::CloudWatch::Alarm"
                and r["Properties"].get("MetricName") == "Drift"]  # fmt: skip
    beyond = _one(resources, "AWS::CloudWatch::Alarm", "DriftBeyondBounds")[1]["Properties"]
    assert beyond["Namespace"] == "Bulwark" and beyond["MetricName"] == BEYOND_BOUNDS_METRIC
    assert "Dimensions" not in beyond  # as the job emits it: one series per region
    assert beyond["Statistic"] == "Maximum" and beyond["Period"] == 86400 and beyond["EvaluationPeriods"] == 1
    assert beyond["Threshold"] == 1 and beyond["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert beyond["TreatMissingData"] == "notBreaching"
    errors = _one(resources, "AWS::CloudWatch::Alarm", "DriftJobErrors")[1]["Properties"]
    assert errors["MetricName"] == "Errors" and errors["Namespace"] == "AWS/Lambda"
    for alarm in (beyond, errors):  # the topic hears when it fires and when it clears
        assert alarm["AlarmActions"] == [{"Ref": topic}] and alarm["OKActions"] == [{"Ref": topic}]

    # The description sends the engineer to the job's log (its own log group), the per-signal metric, the bounds
    # and the re-baseline key.
    description = beyond["AlarmDescription"]
    log_group = _one(resources, "AWS::Logs::LogGroup", "DriftFunctionLogs")[0]
    assert description["Fn::Join"][1][1] == {"Ref": log_group}
    text = "".join(part for part in description["Fn::Join"][1] if isinstance(part, str))
    assert '"breached"' in text and "Drift metric by Signal" in text and "drift.baseline_version" in text
    assert all(f"{signal} {DEFAULT_BOUNDS[signal]:g}" in text for signal in SIGNALS)
    assert len(text) + 256 <= 1024  # CloudWatch's limit, with room for a generated log group name


@pytest.mark.parametrize("stack", STACKS)
def test_the_chat_lambda_emits_the_signals_and_may_read_the_centroid(synth: Synth, stack: str) -> None:
    resources = synth.template(stack).to_json()["Resources"]
    chat = [
        r["Properties"] for r in resources.values()
        if r["Type"] == FUNCTION and r["Properties"].get("Handler") == "handlers.chat.handler"
    ]  # fmt: skip
    assert chat[0]["Environment"]["Variables"]["DRIFT_SIGNALS"] == "true"
