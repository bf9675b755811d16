"""What each stack must contain, in both regions."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk import App
from aws_cdk.assertions import Match, Template

from app import build_app
from stacks.config import AppConfig, ModelTarget
from stacks.models_stack import base_arns
from tests.infra.conftest import Synth, cdk_context, statements

API_STACKS = ("Bulwark-dev-Api", "Bulwark-dev-Api-DR")


def _resolved_arns(template: Template) -> list[str]:
    """The Bedrock statement's resources, with CloudFormation joins flattened to readable strings."""
    policies = template.find_resources("AWS::IAM::Policy")
    for policy in policies.values():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            if statement.get("Sid") == "InvokeConfiguredModels":
                return [_flatten(resource) for resource in statement["Resource"]]
    raise AssertionError("no InvokeConfiguredModels statement")


def _flatten(value: Any) -> str:
    if isinstance(value, str):
        return value
    if "Fn::Join" in value:
        return "".join(_flatten(part) for part in value["Fn::Join"][1])
    if "Ref" in value:
        return "${" + value["Ref"] + "}"
    raise AssertionError(f"unexpected token {value}")


def test_both_regions_get_keys_api_and_chat_lambda(synth: Synth) -> None:
    regions = {name: stack.region for name, stack in synth.stacks.items()}
    assert regions == {
        "Bulwark-dev-Keys": "us-east-1",
        "Bulwark-dev-Data": "us-east-1",
        "Bulwark-dev-Auth": "us-east-1",
        "Bulwark-dev-Api": "us-east-1",
        "Bulwark-dev-Web": "us-east-1",
        "Bulwark-dev-WebContent": "us-east-1",
        "Bulwark-dev-Web-DR": "us-west-2",
        "Bulwark-dev-WebContent-DR": "us-west-2",
        "Bulwark-dev-Models": "us-east-1",
        "Bulwark-dev-Models-DR": "us-west-2",
        "Bulwark-dev-Keys-DR": "us-west-2",
        "Bulwark-dev-Auth-DR": "us-west-2",
        "Bulwark-dev-Api-DR": "us-west-2",
        "Bulwark-dev-Knowledge": "us-east-1",
        "Bulwark-dev-Knowledge-DR": "us-west-2",
        "Bulwark-dev-Backup": "us-east-1",
        "Bulwark-dev-Backup-DR": "us-west-2",
    }
    for name in API_STACKS:
        template = synth.template(name)
        template.resource_count_is("AWS::ApiGateway::RestApi", 1)
        template.has_resource_properties(
            "AWS::Lambda::Function",
            {
                "Handler": "handlers.chat.handler",
                "Runtime": "python3.13",
                "TracingConfig": {"Mode": "Active"},
                "Timeout": 28,
                "LoggingConfig": Match.object_like({"LogFormat": "JSON"}),
                "Environment": {"Variables": Match.object_like({"POWERTOOLS_SERVICE_NAME": "chat"})},
            },
        )
        template.resource_count_is("AWS::WAFv2::WebACLAssociation", 1)
    # The DR region's API has its own regional ACL; the primary's stage shares the user pool's (one ACL a region).
    dr = synth.template("Bulwark-dev-Api-DR")
    dr.has_resource_properties("AWS::WAFv2::WebACL", {"Scope": "REGIONAL"})
    dr.has_resource_properties("AWS::WAFv2::LoggingConfiguration", Match.any_value())
    primary = synth.template("Bulwark-dev-Api")
    primary.resource_count_is("AWS::WAFv2::WebACL", 0)
    (association,) = primary.find_resources("AWS::WAFv2::WebACLAssociation").values()
    acl_arn = json.dumps(association["Properties"]["WebACLArn"])
    assert "Bulwark-dev-Auth" in acl_arn or "ImportValue" in acl_arn, acl_arn  # the Auth stack's ACL, exported
    (acl,) = synth.template("Bulwark-dev-Auth").find_resources("AWS::WAFv2::WebACL").values()
    common = next(r for r in acl["Properties"]["Rules"] if r["Name"] == "AWSManagedRulesCommonRuleSet")
    overrides = common["Statement"]["ManagedRuleGroupStatement"]["RuleActionOverrides"]
    assert [o["Name"] for o in overrides] == ["SizeRestrictions_BODY"]  # the API's own 413 answers big bodies


def test_reserved_concurrency_comes_from_config_per_region(synth: Synth) -> None:
    synth.template("Bulwark-dev-Api").has_resource_properties(
        "AWS::Lambda::Function", {"Handler": "handlers.chat.handler", "ReservedConcurrentExecutions": 20}
    )
    # The DR region takes the primary's load by default (dr_chat_reserved_concurrency unset).
    synth.template("Bulwark-dev-Api-DR").has_resource_properties(
        "AWS::Lambda::Function", {"Handler": "handlers.chat.handler", "ReservedConcurrentExecutions": 20}
    )


def test_the_table_is_global_with_a_dr_replica_pitr_protection_and_retention(synth: Synth) -> None:
    template = synth.template("Bulwark-dev-Data")
    tables = [  # the conversations table: the prompt catalog (no TTL either) has its own test in test_data_stack
        t for name, t in template.find_resources("AWS::DynamoDB::GlobalTable").items()
        if t["Properties"]["KeySchema"][0]["AttributeName"] == "pk" and "TimeToLiveSpecification" not in t["Properties"]
        and not name.startswith(("Prompts", "CuratedAnswers"))
    ]  # fmt: skip
    assert len(tables) == 1
    (table,) = tables
    assert table["DeletionPolicy"] == "Retain" and table["UpdateReplacePolicy"] == "Retain"
    props = table["Properties"]
    assert props["SSESpecification"] == {"SSEEnabled": True, "SSEType": "KMS"}
    replicas = {r["Region"]: r for r in props["Replicas"]}
    assert set(replicas) == {"us-east-1", "us-west-2"}
    for replica in replicas.values():
        assert replica["DeletionProtectionEnabled"] is True
        assert replica["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
        assert "KMSMasterKeyId" in replica["SSESpecification"]
    # Backed up by the Backup stack (tests/infra/test_backup_stack.py), copied to the DR region.
    synth.template("Bulwark-dev-Backup").has_resource_properties("AWS::Backup::BackupSelection", Match.any_value())


def test_table_keys_match_what_the_handler_tests_create(synth: Synth) -> None:
    from local.resources import create_conversations_table

    class Capture:
        def create_table(self, **kwargs: Any) -> None:
            self.kwargs = kwargs

    capture = Capture()
    create_conversations_table(capture, "t")
    tables = synth.template("Bulwark-dev-Data").find_resources("AWS::DynamoDB::GlobalTable").items()
    (table,) = [
        t for name, t in tables
        if t["Properties"]["KeySchema"][0]["AttributeName"] == "pk" and "TimeToLiveSpecification" not in t["Properties"]
        and not name.startswith(("Prompts", "CuratedAnswers"))  # keyed the same: the catalog, curated answers
    ]  # fmt: skip
    assert table["Properties"]["KeySchema"] == capture.kwargs["KeySchema"]
    assert table["Properties"]["AttributeDefinitions"] == capture.kwargs["AttributeDefinitions"]


@pytest.mark.parametrize("name", API_STACKS)
def test_every_route_but_health_and_preflight_requires_cognito(synth: Synth, name: str) -> None:
    template = synth.template(name)
    methods = template.find_resources("AWS::ApiGateway::Method")
    resources = template.find_resources("AWS::ApiGateway::Resource")
    paths = {logical: res["Properties"]["PathPart"] for logical, res in resources.items()}
    seen = set()
    for method in methods.values():
        props = method["Properties"]
        ref = props["ResourceId"].get("Ref")
        path = paths.get(ref, "/") if ref else "/"
        verb = props["HttpMethod"]
        seen.add((path, verb))
        if verb == "OPTIONS" or path in ("health", "deep"):  # GET /health and GET /health/deep: public probes
            assert props["AuthorizationType"] == "NONE"
        else:
            assert props["AuthorizationType"] == "COGNITO_USER_POOLS", (path, verb)
            assert "Ref" in props["AuthorizerId"]
    assert {("chat", "POST"), ("conversations", "GET"), ("{conversation_id}", "GET"),
            ("{conversation_id}", "DELETE"), ("health", "GET")} <= seen  # fmt: skip


@pytest.mark.parametrize("name", API_STACKS)
def test_chat_requests_are_validated_and_stage_is_throttled(synth: Synth, name: str) -> None:
    template = synth.template(name)
    template.has_resource_properties(
        "AWS::ApiGateway::RequestValidator", {"ValidateRequestBody": True, "ValidateRequestParameters": True}
    )
    template.has_resource_properties(
        "AWS::ApiGateway::Model",
        {"Schema": Match.object_like({"required": ["message"], "additionalProperties": False})},
    )
    concurrency = 20  # the chat Lambda's reserved concurrency, the same in both regions by default
    template.has_resource_properties(
        "AWS::ApiGateway::Stage",
        {
            "MethodSettings": Match.array_with(
                [Match.object_like({"ThrottlingRateLimit": concurrency, "ThrottlingBurstLimit": concurrency})]
            ),
            "AccessLogSetting": Match.object_like({"DestinationArn": Match.any_value()}),
            "TracingEnabled": True,
        },
    )


def test_dr_api_trusts_the_replica_pool_in_its_own_region(synth: Synth) -> None:
    template = synth.template("Bulwark-dev-Api-DR")
    (authorizer,) = template.find_resources("AWS::ApiGateway::Authorizer").values()
    arn = json.dumps(authorizer["Properties"]["ProviderARNs"])
    assert "cognito-idp:us-west-2:" in arn
    synth.template("Bulwark-dev-Auth").has_resource_properties(
        "AWS::Cognito::UserPoolReplica", {"RegionName": "us-west-2"}
    )
    synth.template("Bulwark-dev-Auth").has_resource_properties(
        "AWS::Cognito::UserPool",
        {
            "UserPoolTier": "ESSENTIALS",
            "KeyConfiguration": Match.object_like({"KeyType": "CUSTOMER_MANAGED_KEY"}),
            "IssuerConfiguration": {"Type": "UPDATED"},
            "Policies": {"PasswordPolicy": Match.object_like({"MinimumLength": 12, "RequireSymbols": True})},
        },
    )
    synth.template("Bulwark-dev-Auth-DR").has_resource_properties(
        "AWS::Cognito::UserPoolRegionalConfigurationAttachment", {"Status": "ACTIVE"}
    )
    synth.template("Bulwark-dev-Keys").has_resource_properties(
        "AWS::KMS::Key", {"MultiRegion": True, "EnableKeyRotation": True}
    )
    synth.template("Bulwark-dev-Keys-DR").resource_count_is("AWS::KMS::ReplicaKey", 1)


def test_without_pool_replication_the_dr_api_trusts_the_primary_pool() -> None:
    app = App(context=cdk_context(replicate_user_pool=False))
    build_app(app, nag=False)
    stacks = {child.node.id: child for child in app.node.children}
    assert "Bulwark-dev-Auth-DR" not in stacks
    template = Template.from_stack(stacks["Bulwark-dev-Api-DR"])  # type: ignore[arg-type]
    (authorizer,) = template.find_resources("AWS::ApiGateway::Authorizer").values()
    assert "cognito-idp:us-east-1:" in json.dumps(authorizer["Properties"]["ProviderARNs"])


@pytest.mark.parametrize("name", API_STACKS)
def test_bedrock_permissions_name_exact_model_arns_never_a_wildcard(synth: Synth, name: str) -> None:
    arns = _resolved_arns(synth.template(name))
    assert "*" not in arns and all("*" not in arn for arn in arns)
    region = synth.stacks[name].region
    assert f"arn:aws:bedrock:{region}:${{AWS::AccountId}}:inference-profile/us.amazon.nova-lite-v1:0" in arns
    for destination in ("us-east-1", "us-east-2", "us-west-2"):
        assert f"arn:aws:bedrock:{destination}::foundation-model/amazon.nova-lite-v1:0" in arns
    template = synth.template(name)
    template.has_resource_properties(
        "AWS::IAM::Policy",
        {
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [Match.object_like({"Sid": "InvokeConfiguredModels", "Action": "bedrock:InvokeModel"})]
                )
            }
        },
    )


def test_response_cache_is_global_with_ttl_and_the_chat_lambda_may_only_get_and_put(synth: Synth) -> None:
    synth.template("Bulwark-dev-Data").has_resource_properties(
        "AWS::DynamoDB::GlobalTable",
        {
            "KeySchema": [{"AttributeName": "key", "KeyType": "HASH"}],
            "TimeToLiveSpecification": {"AttributeName": "expires_at", "Enabled": True},
            "Replicas": Match.array_with([Match.object_like({"Region": "us-west-2"})]),
        },
    )
    for name in API_STACKS:
        template = synth.template(name)
        template.has_resource_properties(
            "AWS::IAM::Policy",
            {
                "PolicyDocument": {
                    "Statement": Match.array_with(
                        [
                            Match.object_like(
                                {"Sid": "ResponseCache", "Action": ["dynamodb:GetItem", "dynamodb:PutItem"]}
                            )
                        ]
                    )
                }
            },
        )
        template.has_resource_properties(
            "AWS::Lambda::Function",
            {"Environment": {"Variables": Match.object_like({"CACHE_TABLE_NAME": Match.any_value()})}},
        )


TABLE_SIDS = {
    "OwnConversationsTable", "ResponseCache", "Jobs", "Idempotency", "UsageCounters",
    "IdempotencyOfDeletedConversations",  # the API deletes a deleted conversation's job records
    "Documents",  # uploads, their status and deletes (API, ingest), cited documents' names (worker)
    "FindOpenJobs", "AdoptJobs",  # the jobs recovery sweep: its index, and adopting jobs
    "PromptCatalog",  # the active system prompt (issue 11)
    "CuratedAnswers",  # curated answers, read whole (issue 11)
    "WriteCuratedAnswers",  # the scheduled curate job (issue 11)
    "DriftBaseline",  # the drift job: its region's drift# items of the prompts table only (issue 12)
}  # fmt: skip


def test_roles_touch_only_their_own_tables_with_exact_actions(synth: Synth) -> None:
    template = synth.template("Bulwark-dev-Api")
    seen = set()
    for policy in template.find_resources("AWS::IAM::Policy").values():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            if any(a.startswith("dynamodb:") for a in actions):
                assert statement.get("Sid") in TABLE_SIDS
                assert all(not a.endswith("*") for a in actions)
                seen.add(statement["Sid"])
                resources = json.dumps(statement["Resource"])
                # One index, read by one statement: the sweep's recovery index (keys and times, no job text).
                index = "/index/OpenJobsByOwner" if statement["Sid"] == "FindOpenJobs" else ""
                assert "index" not in resources.replace(index, "") and "*" not in resources
                assert "Fn::ImportValue" in resources  # the Data stack's table, by reference
    assert seen == TABLE_SIDS


@pytest.mark.parametrize("name", ["Bulwark-dev-Api", "Bulwark-dev-Api-DR"])
def test_the_lambdas_may_only_read_the_prompt_catalogs_pointer(synth: Synth, name: str) -> None:
    """Issue 11: chat and worker read the active prompt (GetItem), never write or scan the catalog; both know the
    table and their environment's name."""
    template = synth.template(name)
    granted = statements(template, "PromptCatalog")
    # the API Lambda's role, the stream Lambda's, the worker's and the summarize workflow's; in the primary region,
    # the scheduled curate job's too
    assert len(granted) == (5 if name == "Bulwark-dev-Api" else 4)
    for statement in granted:
        assert statement["Action"] == "dynamodb:GetItem" and statement["Effect"] == "Allow"
        assert "Prompts" in json.dumps(statement["Resource"]) and "index" not in json.dumps(statement["Resource"])
    functions = [
        f["Properties"]["Environment"]["Variables"]
        for f in template.find_resources("AWS::Lambda::Function").values()
        if "MODEL_TARGETS" in f["Properties"].get("Environment", {}).get("Variables", {})
    ]
    assert len(functions) == (5 if name == "Bulwark-dev-Api" else 4)  # chat, stream, worker, summarize (+ curate)
    for variables in functions:
        assert "Prompts" in json.dumps(variables["PROMPTS_TABLE_NAME"]) and variables["PROMPT_ENVIRONMENT"] == "dev"


@pytest.mark.parametrize("name", ["Bulwark-dev-Api", "Bulwark-dev-Api-DR"])
def test_the_lambdas_may_only_scan_the_curated_answers(synth: Synth, name: str) -> None:
    """Issue 11: chat and worker read the curated answers whole (one bounded Scan), never write them; both know the
    table, the threshold and the cache interval."""
    template = synth.template(name)
    granted = statements(template, "CuratedAnswers")
    # the API Lambda's role, the stream Lambda's, the worker's and the summarize workflow's; in the primary region,
    # the scheduled curate job's too
    assert len(granted) == (5 if name == "Bulwark-dev-Api" else 4)
    for statement in granted:
        assert statement["Action"] == "dynamodb:Scan" and statement["Effect"] == "Allow"
        resource = json.dumps(statement["Resource"])
        assert "CuratedAnswers" in resource and "index" not in resource and "*" not in resource
    functions = [
        f["Properties"]["Environment"]["Variables"]
        for f in template.find_resources("AWS::Lambda::Function").values()
        if "MODEL_TARGETS" in f["Properties"].get("Environment", {}).get("Variables", {})
    ]
    assert len(functions) == (5 if name == "Bulwark-dev-Api" else 4)  # chat, stream, worker, summarize (+ curate)
    for variables in functions:
        assert "CuratedAnswers" in json.dumps(variables["CURATED_TABLE_NAME"])
        assert (variables["CURATED_THRESHOLD"], variables["CURATED_CACHE_SECONDS"]) == ("0.8", "300")


def test_the_curate_job_runs_hourly_in_the_primary_region_with_exact_access(synth: Synth) -> None:
    """Issue 11: one scheduled curate Lambda (primary region only: the table is global), writing only the curated
    table (PutItem), reading it (Scan) and the prompt pointer (GetItem), calling the chain and Titan v2."""
    assert not synth.template("Bulwark-dev-Api-DR").find_resources(
        "AWS::Lambda::Function", {"Properties": {"Handler": "handlers.curate.handler"}}
    )
    template = synth.template("Bulwark-dev-Api")
    (function_id,) = template.find_resources(
        "AWS::Lambda::Function",
        {"Properties": {"Handler": "handlers.curate.handler", "ReservedConcurrentExecutions": 1}},
    )
    (rule,) = [
        r for r in template.find_resources("AWS::Events::Rule").values()
        if function_id in json.dumps(r["Properties"]["Targets"])
    ]  # fmt: skip
    assert rule["Properties"]["ScheduleExpression"] == "rate(1 hour)"
    role_id = template.find_resources("AWS::Lambda::Function")[function_id]["Properties"]["Role"]["Fn::GetAtt"][0]
    by_sid = {
        statement.get("Sid"): statement
        for policy in template.find_resources("AWS::IAM::Policy").values()
        if {"Ref": role_id} in policy["Properties"]["Roles"]
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    }
    assert by_sid["WriteCuratedAnswers"]["Action"] == "dynamodb:PutItem"
    assert by_sid["CuratedAnswers"]["Action"] == "dynamodb:Scan"
    assert by_sid["PromptCatalog"]["Action"] == "dynamodb:GetItem"
    assert by_sid["InvokeEmbeddingModel"]["Action"] == "bedrock:InvokeModel"
    assert "titan-embed-text-v2" in json.dumps(by_sid["InvokeEmbeddingModel"]["Resource"])
    assert "InvokeConfiguredModels" in by_sid
    dynamodb_sids = {
        sid for sid, s in by_sid.items() if any(a.startswith("dynamodb:") for a in json.dumps(s["Action"]).split('"'))
    }
    assert dynamodb_sids == {"WriteCuratedAnswers", "CuratedAnswers", "PromptCatalog"}


def test_provisioned_and_foundation_targets_get_exactly_their_arns() -> None:
    config = AppConfig(
        models=(
            ModelTarget(model_id="arn:aws:bedrock:us-west-2:123456789012:provisioned-model/abc123", region="us-west-2"),
            ModelTarget(model_id="amazon.nova-pro-v1:0", region="us-east-1"),
        )
    )
    from aws_cdk import Stack

    stack = Stack(App(), "S", env={"region": "us-east-1", "account": "123456789012"})
    targets = config.chain_for("us-east-1")
    assert [t.region for t in targets] == ["us-east-1", "us-west-2"]
    arns = [stack.resolve(arn) for target in targets for arn in base_arns(stack, target)]
    flat = [_flatten(a) for a in arns]
    assert flat == [
        "arn:${AWS::Partition}:bedrock:us-east-1::foundation-model/amazon.nova-pro-v1:0",
        "arn:aws:bedrock:us-west-2:123456789012:provisioned-model/abc123",
    ]


def test_web_bucket_is_private_versioned_tls_only_behind_cloudfront_oac(synth: Synth) -> None:
    template = synth.template("Bulwark-dev-Web")
    template.has_resource_properties(
        "AWS::S3::Bucket",
        {
            "VersioningConfiguration": {"Status": "Enabled"},
            "PublicAccessBlockConfiguration": {
                "BlockPublicAcls": True,
                "BlockPublicPolicy": True,
                "IgnorePublicAcls": True,
                "RestrictPublicBuckets": True,
            },
            "LoggingConfiguration": Match.any_value(),
        },
    )  # fmt: skip
    template.has_resource_properties(
        "AWS::S3::BucketPolicy",
        {
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [Match.object_like({"Effect": "Deny", "Condition": {"Bool": {"aws:SecureTransport": "false"}}})]
                )
            }
        },
    )
    template.resource_count_is("AWS::CloudFront::OriginAccessControl", 1)
    template.has_resource_properties(
        "AWS::CloudFront::Distribution",
        {
            "DistributionConfig": Match.object_like(
                {"DefaultCacheBehavior": Match.object_like({"ViewerProtocolPolicy": "https-only"})}
            )
        },
    )
    template.has_resource_properties(
        "AWS::CloudFront::ResponseHeadersPolicy",
        {
            "ResponseHeadersPolicyConfig": Match.object_like(
                {
                    "SecurityHeadersConfig": Match.object_like(
                        {"StrictTransportSecurity": Match.any_value(), "ContentSecurityPolicy": Match.any_value()}
                    )
                }
            )
        },
    )


def test_guardrail_exists_per_region_and_the_lambda_may_apply_it(synth: Synth) -> None:
    for models, api in (("Bulwark-dev-Models", "Bulwark-dev-Api"), ("Bulwark-dev-Models-DR", "Bulwark-dev-Api-DR")):
        synth.template(models).has_resource_properties(
            "AWS::Bedrock::Guardrail",
            {
                "ContentPolicyConfig": {
                    "FiltersConfig": Match.array_with(
                        [{"Type": "PROMPT_ATTACK", "InputStrength": "HIGH", "OutputStrength": "NONE"}]
                    )
                }
            },
        )
        synth.template(models).resource_count_is("AWS::Bedrock::GuardrailVersion", 1)
        synth.template(api).has_resource_properties(
            "AWS::IAM::Policy",
            {
                "PolicyDocument": {
                    "Statement": Match.array_with(
                        [Match.object_like({"Sid": "ApplyGuardrails", "Action": "bedrock:ApplyGuardrail"})]
                    )
                }
            },
        )


@pytest.mark.parametrize("name", API_STACKS)
def test_the_lambda_gets_the_whole_chain_local_region_first_with_each_regions_guardrail(
    synth: Synth, name: str
) -> None:
    (function,) = [
        f for f in synth.template(name).find_resources("AWS::Lambda::Function").values()
        if f["Properties"].get("Handler") == "handlers.chat.handler"
    ]  # fmt: skip
    raw = json.dumps(function["Properties"]["Environment"]["Variables"]["MODEL_TARGETS"])
    local, other = ("us-east-1", "us-west-2") if name == "Bulwark-dev-Api" else ("us-west-2", "us-east-1")
    assert raw.index(f'\\"region\\": \\"{local}\\"') < raw.index(f'\\"region\\": \\"{other}\\"')
    assert raw.count("guardrail_id") == 2


@pytest.mark.parametrize("name", API_STACKS)
def test_alarms_watch_bedrock_and_the_gateway_and_notify_an_encrypted_topic(synth: Synth, name: str) -> None:
    template = synth.template(name)
    template.has_resource_properties("AWS::SNS::Topic", {"KmsMasterKeyId": Match.any_value()})
    template.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {"Namespace": "AWS/Bedrock", "MetricName": "InvocationThrottles", "AlarmActions": Match.any_value()},
    )
    for metric in ("BreakerOpened", "DeepHealthUnhealthy"):  # degraded answers: the DegradedRate alarm
        template.has_resource_properties("AWS::CloudWatch::Alarm", {"Namespace": "Bulwark", "MetricName": metric})


def test_application_profiles_and_opt_in_provisioned_throughput_get_exact_iam() -> None:
    app = App(
        context=cdk_context(
            models=[
                {"model_id": "us.amazon.nova-lite-v1:0", "region": "us-east-1", "application_profile": True},
                {"model_id": "amazon.nova-pro-v1:0", "region": "us-west-2", "provision_model_units": 1},
            ]
        )
    )
    build_app(app, nag=False)
    stacks = {child.node.id: child for child in app.node.children}
    models = Template.from_stack(stacks["Bulwark-dev-Models"])  # type: ignore[arg-type]
    (profile,) = models.find_resources("AWS::Bedrock::ApplicationInferenceProfile").values()
    assert "inference-profile/us.amazon.nova-lite-v1:0" in json.dumps(profile["Properties"]["ModelSource"])
    dr_models = Template.from_stack(stacks["Bulwark-dev-Models-DR"])  # type: ignore[arg-type]
    (custom,) = dr_models.find_resources("Custom::AWS").values()
    create = json.dumps(custom["Properties"]["Create"])
    assert "createProvisionedModelThroughput" in create and "commitmentDuration" not in create
    assert "deleteProvisionedModelThroughput" in json.dumps(custom["Properties"]["Delete"])
    api = Template.from_stack(stacks["Bulwark-dev-Api"])  # type: ignore[arg-type]
    arns = json.dumps(_resolved_arns_raw(api))
    assert "ImportValue" in arns or "Fn::GetAtt" in arns or "Ref" in arns  # created ARNs, by reference
    assert "foundation-model/amazon.nova-pro-v1:0" in arns


def _resolved_arns_raw(template: Template) -> Any:
    for policy in template.find_resources("AWS::IAM::Policy").values():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            if statement.get("Sid") == "InvokeConfiguredModels":
                return statement["Resource"]
    raise AssertionError("no InvokeConfiguredModels statement")


@pytest.mark.parametrize("name", API_STACKS)
def test_jobs_queue_dlq_worker_and_routes(synth: Synth, name: str) -> None:
    template = synth.template(name)
    queues = template.find_resources("AWS::SQS::Queue")
    (main,) = [q for q in queues.values() if "RedrivePolicy" in q["Properties"]]
    props = main["Properties"]
    assert props["VisibilityTimeout"] == 6 * 120 and props["RedrivePolicy"]["maxReceiveCount"] == 4
    assert props["MessageRetentionPeriod"] == 4 * 86400 and "KmsMasterKeyId" in props
    template.has_resource_properties(
        "AWS::Lambda::EventSourceMapping",
        {
            "BatchSize": 1,
            "FunctionResponseTypes": ["ReportBatchItemFailures"],
            "ScalingConfig": {"MaximumConcurrency": 11},
        },
    )
    template.has_resource_properties(
        "AWS::Lambda::Function",
        {
            "Handler": "handlers.worker.handler",
            "Timeout": 120,
            "ReservedConcurrentExecutions": 11,
            "Environment": {
                "Variables": Match.object_like(
                    {
                        "WORKER_RATE_PER_SECOND": "0.101",  # 66.7 jobs/min over 11 environments
                        "MAX_RECEIVE_COUNT": "4",
                        "IDEMPOTENCY_TABLE_NAME": Match.any_value(),
                        "JOBS_QUEUE_URL": Match.any_value(),
                    }
                )
            },
        },
    )
    template.has_resource_properties(
        "AWS::CloudWatch::Alarm", {"MetricName": "ApproximateNumberOfMessagesVisible", "Threshold": 1}
    )
    template.has_resource_properties("AWS::CloudWatch::Alarm", {"MetricName": "ApproximateAgeOfOldestMessage"})
    resources = template.find_resources("AWS::ApiGateway::Resource")
    assert {"jobs", "{job_id}"} <= {r["Properties"]["PathPart"] for r in resources.values()}


def test_the_web_ui_gets_its_runtime_config_from_both_regions_outputs(synth: Synth) -> None:
    template = synth.template("Bulwark-dev-WebContent")
    (deployment,) = template.find_resources("Custom::CDKBucketDeployment").values()
    markers = json.dumps(deployment["Properties"]["SourceMarkers"])
    # config.json is rendered at deploy time from references, never from literal ids.
    # the site, index.html and fallback.html (each with its CSP), config.json and curated.json
    assert len(deployment["Properties"]["SourceObjectKeys"]) == 5
    assert "Bulwark-dev-Auth:ExportsOutputRefUsers" in markers  # user pool id
    assert "Bulwark-dev-Auth:ExportsOutputRefUsersWebClient" in markers  # app client id
    assert ".execute-api.us-east-1." in markers and ".execute-api.us-west-2." in markers  # both regions
    # The DR URL is read from the DR stack's outputs at this stack's deploy (no writer in the DR stack).
    assert '"StackName": "Bulwark-dev-Api-DR", "Region": "us-west-2"' in markers
    assert "PublishOutputRefRestApi" in markers
