"""The drift job in both API stacks (issue 12): its schedule (the shared ScheduledFunction shape), its exact IAM,
an alarm per signal at its configured bound, and the chat Lambda emitting the signals."""

from __future__ import annotations

from typing import Any

import pytest

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
def test_an_alarm_per_signal_fires_past_its_bound_to_the_alarm_topic(synth: Synth, stack: str) -> None:
    resources = synth.template(stack).to_json()["Resources"]
    drift = {
        r["Properties"]["Dimensions"][0]["Value"]: r["Properties"]
        for r in resources.values()
        if r["Type"] == "AWS::CloudWatch::Alarm" and r["Properties"].get("MetricName") == "Drift"
    }
    topic = _one(resources, "AWS::SNS::Topic", "AlarmsTopic")[0]

    assert set(drift) == set(SIGNALS)
    for signal, alarm in drift.items():
        assert alarm["Namespace"] == "Bulwark" and alarm["Dimensions"] == [{"Name": "Signal", "Value": signal}]
        assert alarm["Threshold"] == DEFAULT_BOUNDS[signal]
        assert alarm["ComparisonOperator"] == "GreaterThanThreshold" and alarm["Statistic"] == "Maximum"
        assert alarm["Period"] == 86400 and alarm["TreatMissingData"] == "notBreaching"
        assert alarm["AlarmActions"] == [{"Ref": topic}]
    errors = _one(resources, "AWS::CloudWatch::Alarm", "DriftJobErrors")[1]["Properties"]
    assert errors["MetricName"] == "Errors" and errors["AlarmActions"] == [{"Ref": topic}]


@pytest.mark.parametrize("stack", STACKS)
def test_the_chat_lambda_emits_the_signals_and_may_read_the_centroid(synth: Synth, stack: str) -> None:
    resources = synth.template(stack).to_json()["Resources"]
    chat = [
        r["Properties"] for r in resources.values()
        if r["Type"] == FUNCTION and r["Properties"].get("Handler") == "handlers.chat.handler"
    ]  # fmt: skip
    assert chat[0]["Environment"]["Variables"]["DRIFT_SIGNALS"] == "true"
