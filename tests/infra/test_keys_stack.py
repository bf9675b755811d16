"""KMS: administrators manage but never use; the data key is used only through AWS services; logs get their own key."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk import App
from aws_cdk.assertions import Match, Template

from app import build_app
from tests.infra.conftest import Synth, cdk_context

CRYPTO = {"kms:Decrypt", "kms:Encrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:CreateGrant", "kms:*"}


def key_policy(template: Template, logical_prefix: str) -> dict[str, dict[str, Any]]:
    for logical_id, resource in template.to_json()["Resources"].items():
        if logical_id.startswith(logical_prefix) and resource["Type"] in ("AWS::KMS::Key", "AWS::KMS::ReplicaKey"):
            return {s["Sid"]: s for s in resource["Properties"]["KeyPolicy"]["Statement"]}
    raise AssertionError(f"no key {logical_prefix}")


def actions(statement: dict[str, Any]) -> set[str]:
    return set(statement["Action"]) if isinstance(statement["Action"], list) else {statement["Action"]}


@pytest.mark.parametrize(
    ("stack", "key", "region"),
    [("Bulwark-dev-Keys", "DataKey", "us-east-1"), ("Bulwark-dev-Keys-DR", "DataKeyReplica", "us-west-2")],
)
def test_the_data_key_separates_administrators_from_use_through_services(
    synth: Synth, stack: str, key: str, region: str
) -> None:
    policy = key_policy(synth.template(stack), key)

    assert set(policy) == {
        "KeyAdministration", "BreakGlassRootUserOnly", "UseOnlyThroughAwsServices", "CognitoUserPoolUse",
        "CloudWatchLogsReadsEventsFromBeforeTheLogsKey", "S3VectorsIndexing",
    }  # fmt: skip
    admin = policy["KeyAdministration"]
    assert not actions(admin) & CRYPTO and "kms:PutKeyPolicy" in actions(admin)
    # CloudFormation's role in both regions: the DR one replicates the primary key.
    assert "cdk-hnb659fds-cfn-exec-role" in json.dumps(admin["Principal"]) and "us-west-2" in json.dumps(admin)
    # The account's root user, and only it (not every IAM principal), is the break-glass administrator.
    glass = policy["BreakGlassRootUserOnly"]
    assert glass["Action"] == "kms:*" and glass["Condition"] == {"StringEquals": {"aws:PrincipalType": "Account"}}
    # IAM policies in the account may grant use, but only through these services in this region.
    use = policy["UseOnlyThroughAwsServices"]
    assert "kms:*" not in actions(use)
    assert use["Condition"]["StringEquals"]["kms:ViaService"] == [
        f"{service}.{region}.amazonaws.com"
        for service in ("dynamodb", "sqs", "sns", "backup", "cognito-idp", "s3", "s3vectors")
    ]
    # S3 Vectors' indexing service: decrypt only, for this account's vector buckets in this region.
    indexing = policy["S3VectorsIndexing"]
    assert indexing["Principal"] == {"Service": "indexing.s3vectors.amazonaws.com"}
    assert actions(indexing) == {"kms:Decrypt"}
    assert indexing["Condition"]["StringEquals"] == {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
    assert f":s3vectors:{region}:" in json.dumps(indexing["Condition"]["ArnLike"])
    assert use["Condition"]["StringEquals"]["kms:CallerAccount"] == {"Ref": "AWS::AccountId"}
    # No statement grants kms:* to the account without a condition (the default key policy did).
    assert all(s.get("Condition") for s in policy.values() if s["Action"] == "kms:*")
    assert actions(policy["CloudWatchLogsReadsEventsFromBeforeTheLogsKey"]) == {"kms:Decrypt*", "kms:Describe*"}


@pytest.mark.parametrize(("stack", "region"), [("Bulwark-dev-Keys", "us-east-1"), ("Bulwark-dev-Keys-DR", "us-west-2")])
def test_each_region_has_a_logs_key_only_cloudwatch_uses(synth: Synth, stack: str, region: str) -> None:
    template = synth.template(stack)
    policy = key_policy(template, "LogsKey")

    assert set(policy) == {
        "KeyAdministration",
        "BreakGlassRootUserOnly",
        "CloudWatchLogsUse",
        "CloudWatchAlarmsToEncryptedTopics",
        "BudgetsToEncryptedTopics",
    }
    assert policy["CloudWatchLogsUse"]["Principal"] == {"Service": f"logs.{region}.amazonaws.com"}
    assert policy["BudgetsToEncryptedTopics"]["Principal"] == {"Service": "budgets.amazonaws.com"}
    assert actions(policy["BudgetsToEncryptedTopics"]) == {"kms:Decrypt", "kms:GenerateDataKey*"}
    template.has_resource_properties("AWS::KMS::Key", {"EnableKeyRotation": True, "MultiRegion": Match.absent()})


@pytest.mark.parametrize("stack", ["Bulwark-dev-Api", "Bulwark-dev-Api-DR"])
def test_every_log_group_and_the_alarm_topic_use_the_logs_key(synth: Synth, stack: str) -> None:
    resources = synth.template(stack).to_json()["Resources"]
    groups = [r for r in resources.values() if r["Type"] == "AWS::Logs::LogGroup"]
    (topic,) = [r for r in resources.values() if r["Type"] == "AWS::SNS::Topic"]

    assert groups and all("LogsKey" in json.dumps(g["Properties"]["KmsKeyId"]) for g in groups)
    assert "LogsKey" in json.dumps(topic["Properties"]["KmsMasterKeyId"])
    queues = [r for r in resources.values() if r["Type"] == "AWS::SQS::Queue"]
    assert queues and all("DataKey" in json.dumps(q["Properties"]["KmsMasterKeyId"]) for q in queues)


@pytest.mark.parametrize(("stack", "region"), [("Bulwark-dev-Api", "us-east-1"), ("Bulwark-dev-Api-DR", "us-west-2")])
def test_the_lambda_roles_use_the_data_key_only_through_its_services_with_the_actions_they_need(
    synth: Synth, stack: str, region: str
) -> None:
    statements = [
        s
        for policy in synth.template(stack).find_resources("AWS::IAM::Policy").values()
        for s in policy["Properties"]["PolicyDocument"]["Statement"]
        if any(a.startswith("kms:") for a in actions(s))
    ]

    by_sid: dict[str, list[dict[str, Any]]] = {}
    for statement in statements:
        via = statement["Condition"]["StringEquals"]["kms:ViaService"]  # every one is conditioned
        by_sid.setdefault(statement["Sid"], []).append(statement)
        service = {
            "TableKey": "dynamodb", "QueueKeyToSend": "sqs", "QueueKeyToReceive": "sqs", "VectorsKey": "s3vectors"
        }.get(statement["Sid"], "s3")  # fmt: skip
        assert via == f"{service}.{region}.amazonaws.com"  # documents (S3) are the only other use
        assert "kms:Encrypt" not in actions(statement)
    assert {sid: len(by_sid[sid]) for sid in ("TableKey", "QueueKeyToSend", "QueueKeyToReceive")} == {
        # chat, worker, ingest, the jobs recovery sweep, the stream Lambda, the drift job (the prompts table), the
        # summarize workflow, and in the primary region the curate job (its table is global)
        "TableKey": 8 if stack == "Bulwark-dev-Api" else 7,
        "QueueKeyToSend": 3,  # chat, worker (delayed re-send) and the recovery sweep (adopted jobs)
        "QueueKeyToReceive": 1,
    }
    assert all(actions(s) == {"kms:Decrypt", "kms:DescribeKey"} for s in by_sid["TableKey"])
    assert all(actions(s) == {"kms:Decrypt", "kms:GenerateDataKey"} for s in by_sid["QueueKeyToSend"])


@pytest.fixture(scope="module")
def with_admins(tmp_path_factory: pytest.TempPathFactory) -> Template:
    role = "arn:aws:iam::123456789012:role/security/KeyAdmins"
    app = App(context=cdk_context(keys={"admin_role_arns": [role]}), outdir=str(tmp_path_factory.mktemp("keys")))
    build_app(app, nag=False)
    stack = next(s for s in app.node.children if getattr(s, "stack_name", "") == "Bulwark-dev-Keys")
    return Template.from_stack(stack)  # type: ignore[arg-type]


def test_configured_key_administrators_join_the_deployment_role(with_admins: Template) -> None:
    admin = key_policy(with_admins, "DataKey")["KeyAdministration"]

    assert "arn:aws:iam::123456789012:role/security/KeyAdmins" in json.dumps(admin["Principal"])
    assert "cdk-hnb659fds-cfn-exec-role" in json.dumps(admin["Principal"])
