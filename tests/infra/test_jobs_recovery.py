"""The jobs recovery sweep in both API stacks (issue 10): its schedule, its settings and its exact IAM."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.infra.conftest import Synth

FUNCTION = "AWS::Lambda::Function"
STACKS = {"Bulwark-dev-Api": ("us-east-1", "us-west-2"), "Bulwark-dev-Api-DR": ("us-west-2", "us-east-1")}


def _one(resources: dict[str, Any], kind: str, prefix: str) -> tuple[str, dict[str, Any]]:
    """The one resource of type `kind` whose logical id starts with `prefix`: (logical id, resource)."""
    (found,) = [(name, r) for name, r in resources.items() if r["Type"] == kind and name.startswith(prefix)]
    return found


def _text(value: Any) -> str:
    """An ARN built from intrinsic functions, as one comparable string."""
    if isinstance(value, dict) and "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return str(separator).join(_text(part) for part in parts)
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


@pytest.mark.parametrize("stack", STACKS)
def test_the_sweep_runs_every_minute_one_pass_at_a_time_without_retries(synth: Synth, stack: str) -> None:
    resources = synth.template(stack).to_json()["Resources"]
    name, function = _one(resources, FUNCTION, "JobsRecovery")
    properties = function["Properties"]
    rule = next(r for r in resources.values() if r["Type"] == "AWS::Events::Rule")["Properties"]
    invoke = next(r for r in resources.values() if r["Type"] == "AWS::Lambda::EventInvokeConfig")["Properties"]

    assert properties["Handler"] == "handlers.recovery.handler"
    assert properties["ReservedConcurrentExecutions"] == 1 and properties["Timeout"] == 60
    assert rule["ScheduleExpression"] == "rate(1 minute)" and rule["State"] == "ENABLED"
    (target,) = rule["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": [name, "Arn"]}
    # A failed pass is not retried: the next one, a minute later, does the same work.
    assert target["RetryPolicy"]["MaximumRetryAttempts"] == 0
    assert invoke["FunctionName"] == {"Ref": name} and invoke["MaximumRetryAttempts"] == 0
    alarm = _one(resources, "AWS::CloudWatch::Alarm", "JobsRecoveryFailing")[1]["Properties"]
    assert alarm["Dimensions"] == [{"Name": "FunctionName", "Value": {"Ref": name}}] and alarm["AlarmActions"]


@pytest.mark.parametrize("stack", STACKS)
def test_the_sweep_adopts_the_other_regions_jobs_into_this_regions_queue(synth: Synth, stack: str) -> None:
    own, peer = STACKS[stack]
    resources = synth.template(stack).to_json()["Resources"]
    variables = _one(resources, FUNCTION, "JobsRecovery")[1]["Properties"]["Environment"]["Variables"]
    queue = _one(resources, "AWS::SQS::Queue", "JobsRequests")[0]
    worker = _one(resources, FUNCTION, "JobsWorker")[1]["Properties"]["Environment"]["Variables"]

    assert variables["JOBS_PEER_REGIONS"] == peer and own not in variables["JOBS_PEER_REGIONS"]
    assert variables["JOBS_QUEUE_URL"] == {"Ref": queue}
    assert variables["JOBS_TABLE_NAME"] == worker["JOBS_TABLE_NAME"]
    assert variables["JOB_STRANDED_AFTER_SECONDS"] == "600" == worker["JOB_STRANDED_AFTER_SECONDS"]
    assert float(variables["JOB_STRANDED_AFTER_SECONDS"]) < float(variables["JOB_MAX_AGE_SECONDS"])


@pytest.mark.parametrize("stack", STACKS)
def test_the_sweeps_iam_is_exact(synth: Synth, stack: str) -> None:
    own, _ = STACKS[stack]
    resources = synth.template(stack).to_json()["Resources"]
    role = _one(resources, "AWS::IAM::Role", "JobsRecovery")[0]
    statements = [
        statement
        for policy in resources.values()
        if policy["Type"] == "AWS::IAM::Policy" and {"Ref": role} in policy["Properties"]["Roles"]
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]
    by_sid = {s.get("Sid"): s for s in statements}
    queue = _one(resources, "AWS::SQS::Queue", "JobsRequests")[0]
    table = _text(by_sid["AdoptJobs"]["Resource"])

    # Query on the recovery index only (not the table: no way to read a job's text), UpdateItem on the table.
    assert by_sid["FindOpenJobs"]["Action"] == "dynamodb:Query"
    assert _text(by_sid["FindOpenJobs"]["Resource"]) == f"{table}/index/OpenJobsByOwner"
    assert by_sid["AdoptJobs"]["Action"] == "dynamodb:UpdateItem" and ":table/" in table and "/index/" not in table
    # SendMessage on this region's requests queue only.
    assert by_sid["SendRequests"] == {
        "Action": "sqs:SendMessage", "Effect": "Allow", "Resource": {"Fn::GetAtt": [queue, "Arn"]},
        "Sid": "SendRequests",
    }  # fmt: skip
    # The keys only through DynamoDB and SQS in this region, never to encrypt.
    assert by_sid["TableKey"]["Condition"] == {"StringEquals": {"kms:ViaService": f"dynamodb.{own}.amazonaws.com"}}
    assert by_sid["QueueKeyToSend"]["Condition"] == {"StringEquals": {"kms:ViaService": f"sqs.{own}.amazonaws.com"}}
    # And nothing else: X-Ray and its own log group, as every function of the app.
    actions = sorted(a for s in statements for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"]))
    assert actions == sorted([
        "dynamodb:Query", "dynamodb:UpdateItem", "sqs:SendMessage", "kms:Decrypt", "kms:DescribeKey",
        "kms:Decrypt", "kms:GenerateDataKey", "logs:CreateLogStream", "logs:PutLogEvents",
        "xray:PutTelemetryRecords", "xray:PutTraceSegments",
    ])  # fmt: skip
