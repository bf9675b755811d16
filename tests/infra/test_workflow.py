"""The summarize workflow's durable function (stacks/constructs/workflow.py, ADR 0005) in both regions: DurableConfig
from config, invoked by its alias ARN from the worker, exact IAM (checkpoints on its own executions, invoke on the
alias only), and the config rules that keep a waiting workflow from being adopted or failed as stale."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk.assertions import Template

from stacks.config import AppConfig, ConfigError
from tests.conftest import ROOT
from tests.infra.conftest import cfn_lint

STACKS = ["Bulwark-dev-Api", "Bulwark-dev-Api-DR"]
CONFIG = AppConfig.from_context(json.loads((ROOT / "cdk.json").read_text())["context"]["bulwark"])


def _function(template: Template, handler: str) -> tuple[str, dict[str, Any]]:
    found = template.find_resources("AWS::Lambda::Function", {"Properties": {"Handler": handler}})
    assert len(found) == 1, f"{handler}: {len(found)} functions"
    return next(iter(found.items()))


def _statements(template: Template, role_id: str) -> list[dict[str, Any]]:
    policies = template.find_resources("AWS::IAM::Policy")
    return [
        statement
        for policy in policies.values()
        if {"Ref": role_id} in policy["Properties"]["Roles"]
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]


@pytest.mark.parametrize("stack", STACKS)
def test_the_workflow_is_a_durable_function_with_an_alias(synth, stack: str) -> None:
    template = synth.template(stack)
    logical_id, function = _function(template, "handlers.workflow.lambda_handler")

    assert function["Properties"]["DurableConfig"] == {
        "ExecutionTimeout": CONFIG.workflows.execution_timeout_s,
        "RetentionPeriodInDays": CONFIG.workflows.retention_days,
    }
    assert function["Properties"]["Timeout"] == CONFIG.jobs.worker_timeout_s
    assert function["Properties"]["ReservedConcurrentExecutions"] == CONFIG.workflows.reserved_concurrency
    template.has_resource_properties("AWS::Lambda::Alias", {"Name": "live", "FunctionName": {"Ref": logical_id}})
    # Versions stay after a deploy: an execution started on one replays on it.
    versions = template.find_resources("AWS::Lambda::Version", {"Properties": {"FunctionName": {"Ref": logical_id}}})
    assert versions and all(v.get("DeletionPolicy") == "Retain" for v in versions.values())


@pytest.mark.parametrize("stack", STACKS)
def test_the_worker_starts_it_by_the_alias_and_may_invoke_nothing_else(synth, stack: str) -> None:
    template = synth.template(stack)
    _, worker = _function(template, "handlers.worker.handler")
    aliases = template.find_resources("AWS::Lambda::Alias", {"Properties": {"Name": "live"}})
    workflow_id, _ = _function(template, "handlers.workflow.lambda_handler")
    alias_id = next(a for a, r in aliases.items() if r["Properties"]["FunctionName"] == {"Ref": workflow_id})

    assert worker["Properties"]["Environment"]["Variables"]["SUMMARIZE_FUNCTION_ARN"] == {"Ref": alias_id}
    role_id = worker["Properties"]["Role"]["Fn::GetAtt"][0]
    invokes = [s for s in _statements(template, role_id) if "lambda:InvokeFunction" in json.dumps(s["Action"])]
    assert invokes == [
        {"Sid": "StartSummarizeWorkflow", "Action": "lambda:InvokeFunction", "Effect": "Allow",
         "Resource": {"Ref": alias_id}}
    ]  # fmt: skip


@pytest.mark.parametrize("stack", STACKS)
def test_the_workflow_checkpoints_only_its_own_executions(synth, stack: str) -> None:
    template = synth.template(stack)
    logical_id, function = _function(template, "handlers.workflow.lambda_handler")
    statements = _statements(template, function["Properties"]["Role"]["Fn::GetAtt"][0])

    checkpoint = [s for s in statements if s.get("Sid") == "CheckpointOwnExecutions"]
    assert checkpoint == [
        {
            "Sid": "CheckpointOwnExecutions",
            "Action": ["lambda:CheckpointDurableExecution", "lambda:GetDurableExecutionState"],
            "Effect": "Allow",
            "Resource": {"Fn::Join": ["", [{"Fn::GetAtt": [logical_id, "Arn"]}, ":*"]]},
        }
    ]
    actions = {a for s in statements for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])}
    # It reads vectors and writes the job; it never starts workflows, sends jobs or touches documents' objects.
    assert "s3vectors:GetVectors" in actions and "dynamodb:UpdateItem" in actions
    assert not {"lambda:InvokeFunction", "sqs:SendMessage", "s3:GetObject", "s3vectors:PutVectors"} & actions
    wildcards = [s for s in statements if s.get("Resource") == "*"]
    assert all(str(a).startswith("xray:") for s in wildcards for a in s["Action"])  # X-Ray has no resources


def _config(**overrides: Any) -> AppConfig:
    raw = json.loads((ROOT / "cdk.json").read_text())["context"]["bulwark"]
    return AppConfig.from_context({**raw, **overrides})


def test_a_wait_that_would_let_the_other_region_adopt_a_waiting_workflow_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"workflows\.max_wait_s .* jobs\.stranded_after_s"):
        _config(workflows={"max_wait_s": 500})
    assert _config(workflows={"max_wait_s": 400}).workflows.max_wait_s == 400  # 400 + 90 + 60 < 600


def test_an_execution_that_outlives_its_job_is_refused_unless_jobs_live_longer() -> None:
    with pytest.raises(ConfigError, match=r"workflows\.execution_timeout_s .* jobs\.max_age_s"):
        _config(workflows={"execution_timeout_s": 86_400})
    config = _config(workflows={"execution_timeout_s": 86_400}, jobs={"max_age_s": 86_400})
    assert config.workflows.execution_timeout_s == 86_400
    assert _config(workflows={"enabled": False, "execution_timeout_s": 86_400}).workflows.enabled is False


def test_post_jobs_model_lets_chat_and_summarize_jobs_through_and_nothing_else(synth) -> None:
    """API Gateway validates POST /jobs against the JobRequest model (draft 4); checked here with jsonschema."""
    from jsonschema import Draft4Validator

    template = synth.template("Bulwark-dev-Api")
    models = template.find_resources("AWS::ApiGateway::Model", {"Properties": {"Schema": {"title": "JobRequest"}}})
    (model,) = models.values()
    validator = Draft4Validator(model["Properties"]["Schema"])
    doc = "0b8e6f1c-2d3a-4e5f-8a9b-0c1d2e3f4a5b"

    assert validator.is_valid({"message": "hello"})
    assert validator.is_valid({"message": "hello", "conversation_id": doc})
    assert validator.is_valid({"kind": "summarize", "documentId": doc})
    for bad in (
        {"kind": "summarize"},
        {"kind": "translate", "documentId": doc},
        {"kind": "summarize", "documentId": "../other"},
        {"kind": "summarize", "documentId": doc, "message": "hi"},
        {"message": ""},
    ):
        assert not validator.is_valid(bad), bad
    methods = template.find_resources("AWS::ApiGateway::Method", {"Properties": {"HttpMethod": "POST"}})
    logical_id = next(iter(models))
    assert any(
        m["Properties"].get("RequestModels") == {"application/json": {"Ref": logical_id}} for m in methods.values()
    )


def test_cfn_lint_knows_durable_config(synth, tmp_path) -> None:
    """cfn-lint's schema for AWS::Lambda::Function has DurableConfig: the template passes with it unsuppressed."""
    paths = []
    for stack in STACKS:
        path = tmp_path / f"{stack}.template.json"
        path.write_text(json.dumps(synth.template(stack).to_json()))
        paths.append(str(path))
    result = cfn_lint(paths)
    assert result.returncode == 0, result.stdout + result.stderr
