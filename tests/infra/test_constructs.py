"""Each construct the API stack is composed of, synthesized alone inside an empty Stack."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk import App, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk.assertions import Match, Template

from stacks.config import AppConfig
from stacks.constructs.api_alarms import ApiAlarms
from stacks.constructs.chat_api import ChatRestApi
from stacks.constructs.regional_tables import RegionalTables
from stacks.constructs.web_acl import WebAcl
from stacks.lambda_settings import TableNames
from tests.conftest import ROOT

CONFIG = AppConfig.from_context(json.loads((ROOT / "cdk.json").read_text())["context"]["bulwark"])
RETENTION = logs.RetentionDays.ONE_WEEK


def empty_stack(region: str = "us-east-1") -> Stack:
    return Stack(App(), "Test", env={"region": region, "account": "123456789012"})


def key(stack: Stack) -> kms.IKey:
    return kms.Key(stack, "Key")


def test_rest_api_routes_errors_and_throttling_capped_at_the_lambdas_concurrency() -> None:
    stack = empty_stack("us-west-2")
    handler = lambda_.Function(
        stack, "Fn", runtime=lambda_.Runtime.PYTHON_3_13, handler="x.y", code=lambda_.Code.from_inline("x")
    )
    from aws_cdk import aws_cognito as cognito

    pool = cognito.UserPool(stack, "Pool")
    ChatRestApi(
        stack, "Rest", config=CONFIG, region="us-west-2", handler=handler, user_pool=pool, key=key(stack),
        log_retention=RETENTION, allowed_origin="https://d111.cloudfront.net",
    )  # fmt: skip
    template = Template.from_stack(stack)

    methods = template.find_resources("AWS::ApiGateway::Method")
    verbs = sorted(
        m["Properties"]["HttpMethod"] for m in methods.values() if m["Properties"]["HttpMethod"] != "OPTIONS"
    )
    # chat, jobs (+ status), conversations (list, read, delete), documents (upload, list, read, delete), health,
    # deep health
    assert verbs == ["DELETE", "DELETE", "GET", "GET", "GET", "GET", "GET", "GET", "GET", "POST", "POST", "POST"]
    unauthenticated = [m for m in methods.values() if m["Properties"].get("AuthorizationType") in (None, "NONE")]
    # preflight, /health and /health/deep
    assert {m["Properties"]["HttpMethod"] for m in unauthenticated} == {"OPTIONS", "GET"}
    template.has_resource_properties(
        "AWS::ApiGateway::GatewayResponse",
        {
            "ResponseType": "MISSING_AUTHENTICATION_TOKEN",
            "StatusCode": "403",
            "ResponseTemplates": {"application/json": Match.string_like_regexp("Missing Authentication Token")},
        },
    )
    template.has_resource_properties(
        "AWS::ApiGateway::GatewayResponse",
        {"ResponseType": "THROTTLED", "StatusCode": "429", "ResponseParameters": Match.object_like(
            {"gatewayresponse.header.Retry-After": "'1'"})},
    )  # fmt: skip
    dr_concurrency = CONFIG.reserved_concurrency("us-west-2")
    template.has_resource_properties(
        "AWS::ApiGateway::Stage",
        {
            "MethodSettings": Match.array_with(
                [Match.object_like({"ThrottlingBurstLimit": min(CONFIG.throttling.burst_limit, dr_concurrency)})]
            ),
            "TracingEnabled": True,
        },
    )
    template.has_resource_properties(
        "AWS::ApiGateway::Model",
        {"Schema": Match.object_like({"required": ["message"], "additionalProperties": False})},
    )
    # CORS: the preflight and every gateway response name the site's origin, never "*".
    allow_origin = "'https://d111.cloudfront.net'"
    preflights = [m for m in methods.values() if m["Properties"]["HttpMethod"] == "OPTIONS"]
    assert preflights
    for method in preflights:
        (response,) = method["Properties"]["Integration"]["IntegrationResponses"]
        assert response["ResponseParameters"]["method.response.header.Access-Control-Allow-Origin"] == allow_origin
        assert response["ResponseParameters"]["method.response.header.Vary"] == "'Origin'"
    gateway_responses = template.find_resources("AWS::ApiGateway::GatewayResponse").values()
    assert {
        r["Properties"]["ResponseParameters"]["gatewayresponse.header.Access-Control-Allow-Origin"]
        for r in gateway_responses
    } == {allow_origin}


@pytest.mark.parametrize(("scope", "associations"), [("REGIONAL", 1), ("CLOUDFRONT", 0)])
def test_web_acl_rules_logging_and_redaction(scope: str, associations: int) -> None:
    stack = empty_stack()
    acl = WebAcl(
        stack, "Waf", acl_scope=scope, rate_limit_per_5min=777, key=key(stack), log_retention=RETENTION,
        common_rules_count_only=("SizeRestrictions_BODY",),
    )  # fmt: skip
    if scope == "REGIONAL":
        acl.associate("arn:aws:apigateway:us-east-1::/restapis/abc/stages/v1")
    template = Template.from_stack(stack)

    (web_acl,) = template.find_resources("AWS::WAFv2::WebACL").values()
    rules = {rule["Name"]: rule for rule in web_acl["Properties"]["Rules"]}
    assert web_acl["Properties"]["Scope"] == scope
    assert rules["RatePerIp"]["Statement"]["RateBasedStatement"] == {
        "AggregateKeyType": "IP", "Limit": 777, "EvaluationWindowSec": 300,
    }  # fmt: skip
    assert {"AWSManagedRulesAmazonIpReputationList", "AWSManagedRulesCommonRuleSet",
            "AWSManagedRulesKnownBadInputsRuleSet"} <= set(rules)  # fmt: skip
    overrides = rules["AWSManagedRulesCommonRuleSet"]["Statement"]["ManagedRuleGroupStatement"]["RuleActionOverrides"]
    assert overrides == [{"Name": "SizeRestrictions_BODY", "ActionToUse": {"Count": {}}}]
    template.has_resource_properties(
        "AWS::WAFv2::LoggingConfiguration",
        {"RedactedFields": [{"SingleHeader": {"Name": "authorization"}}, {"SingleHeader": {"Name": "cookie"}}]},
    )
    template.has_resource_properties(
        "AWS::Logs::LogGroup",
        {"LogGroupName": Match.string_like_regexp("^aws-waf-logs-"), "KmsKeyId": Match.any_value()},
    )
    template.resource_count_is("AWS::WAFv2::WebACLAssociation", associations)


def test_alarms_per_local_target_and_per_breaker_to_one_encrypted_topic() -> None:
    stack = empty_stack()
    alarms = ApiAlarms(
        stack, "Alarms", config=CONFIG, region="us-east-1", runtime_id=lambda t: f"rt-{t.region}", key=key(stack)
    )
    template = Template.from_stack(stack)

    local_targets = [t for t in CONFIG.models if t.region == "us-east-1"]
    # per local target its throttles, deep health 1, one breaker alarm per target
    assert len(alarms.alarms) == len(local_targets) + 1 + len(CONFIG.models)
    template.has_resource_properties("AWS::SNS::Topic", {"KmsMasterKeyId": Match.any_value()})
    template.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {"Namespace": "AWS/Bedrock", "MetricName": "InvocationThrottles",
         "Dimensions": [{"Name": "ModelId", "Value": "rt-us-east-1"}]},
    )  # fmt: skip
    breakers = [
        a for a in template.find_resources("AWS::CloudWatch::Alarm").values()
        if a["Properties"]["MetricName"] == "BreakerOpened"
    ]  # fmt: skip
    # The gateway names a target by what users see (never the ARN it calls, which carries the account id); the
    # dimension `target` alone: every Lambda's breakers (chat, stream, worker, summarize).
    assert all([d["Name"] for d in a["Properties"]["Dimensions"]] == ["target"] for a in breakers)
    assert sorted(d["Value"] for a in breakers for d in a["Properties"]["Dimensions"] if d["Name"] == "target") == [
        f"{t.display_name}@{t.region}" for t in sorted(CONFIG.models, key=lambda t: t.region)
    ]
    for alarm in template.find_resources("AWS::CloudWatch::Alarm").values():
        assert alarm["Properties"]["AlarmActions"] and alarm["Properties"]["OKActions"]


def _statements(template: Template) -> dict[str, Any]:
    (policy,) = template.find_resources("AWS::IAM::Policy").values()
    return {s["Sid"]: s for s in policy["Properties"]["PolicyDocument"]["Statement"]}


@pytest.mark.parametrize("who", ["api", "worker"])
def test_table_grants_are_exact_and_the_worker_cannot_delete_history(who: str) -> None:
    stack = empty_stack()
    tables = RegionalTables(
        stack, "Tables", key=key(stack),
        names=TableNames(conversations="c", response_cache="r", jobs="j", idempotency="i", usage="u", documents="d"),
    )  # fmt: skip
    role = iam.Role(stack, "Role", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"))
    (tables.grant_api if who == "api" else tables.grant_worker)(role)
    statements = _statements(Template.from_stack(stack))

    history = statements["OwnConversationsTable"]["Action"]
    assert ("dynamodb:DeleteItem" in history) is (who == "api")
    assert all("*" not in action for s in statements.values() for action in s["Action"])
    assert ("Idempotency" in statements) is (who == "worker")
    assert ("dynamodb:PutItem" in statements["Jobs"]["Action"]) is (who == "api")  # only the API creates jobs


@pytest.mark.parametrize("stack_name", ["Bulwark-dev-Api", "Bulwark-dev-Api-DR"])
def test_no_function_writes_responses_or_errors_into_traces(synth: Any, stack_name: str) -> None:
    functions = synth.template(stack_name).find_resources("AWS::Lambda::Function")
    ours = [f for f in functions.values() if str(f["Properties"]["Handler"]).startswith("handlers.")]
    # Every function of ours, whichever are added later; at least these (the curate job runs in the primary only).
    expected = {"chat", "worker", "ingest", "recovery", "drift"}
    expected |= {"curate"} if stack_name == "Bulwark-dev-Api" else set()
    assert expected <= {str(f["Properties"]["Handler"]).split(".")[1] for f in ours}
    for function in ours:
        variables = function["Properties"]["Environment"]["Variables"]
        assert variables["POWERTOOLS_TRACER_CAPTURE_RESPONSE"] == "false"
        assert variables["POWERTOOLS_TRACER_CAPTURE_ERROR"] == "false"
