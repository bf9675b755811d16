"""The API stacks' security properties: access logs name the caller, ids are exact, other providers are guarded,
their keys come from Secrets Manager, and synth says when a target has no guardrail."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk import App, Stack
from aws_cdk.assertions import Annotations, Match, Template

from app import build_app
from stacks.constructs.chat_api import UUID_LENGTH, UUID_PATTERN
from tests.infra.conftest import Synth, cdk_context, open_nag_findings, statements

API_STACKS = ("Bulwark-dev-Api", "Bulwark-dev-Api-DR")
PRIMARY = {"model_id": "us.amazon.nova-lite-v1:0", "region": "us-east-1"}
OTHER = {
    "model_id": "gpt-x",
    "region": "openai",
    "label": "GPT X",
    "langchain": {"class": "langchain_openai:ChatOpenAI", "kwargs": {"model": "gpt-x"}, "secret": "bulwark/openai"},
}
UNGUARDED = Match.string_like_regexp("No guardrail covers")


def stacks_of(app: App) -> dict[str, Stack]:
    return {child.stack_name: child for child in app.node.children if isinstance(child, Stack)}


@pytest.fixture(scope="module")
def variants(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Stack]]:
    """More deployments: a LangChain secondary with its secret; the guardrail off; an application profile."""
    found = {}
    for name, overrides in (
        ("langchain", {"models": [PRIMARY, OTHER]}),
        ("unguarded", {"guardrail": False}),
        ("profiled", {"models": [{**PRIMARY, "application_profile": True}]}),
    ):
        app = App(context=cdk_context(**overrides), outdir=str(tmp_path_factory.mktemp(name)))
        build_app(app, nag=False)
        app.synth()
        found[name] = stacks_of(app)
    return found


def chat_env(template: Template) -> dict[str, Any]:
    functions = template.find_resources("AWS::Lambda::Function", {"Properties": {"Handler": "handlers.chat.handler"}})
    (function,) = functions.values()
    return function["Properties"]["Environment"]["Variables"]  # type: ignore[no-any-return]


# --- access logs and request validation ---------------------------------------------------------------------
@pytest.mark.parametrize("stack", API_STACKS)
def test_access_logs_are_json_with_the_callers_cognito_sub(synth: Synth, stack: str) -> None:
    (stage,) = synth.template(stack).find_resources("AWS::ApiGateway::Stage").values()
    log_format = json.loads(stage["Properties"]["AccessLogSetting"]["Format"])

    assert log_format["sub"] == "$context.authorizer.claims.sub"
    assert log_format["requestId"] == "$context.requestId" and log_format["status"] == "$context.status"
    assert "$context.identity.user" not in log_format.values()  # empty under Cognito
    assert not any("body" in value.lower() or "header" in value.lower() for value in log_format.values())


@pytest.mark.parametrize("stack", API_STACKS)
def test_a_conversation_id_must_be_exactly_a_uuid_whatever_the_regex_dialect(synth: Synth, stack: str) -> None:
    synth.template(stack).has_resource_properties(
        "AWS::ApiGateway::Model",
        {
            "Schema": Match.object_like(
                {
                    "properties": Match.object_like(
                        {
                            "conversation_id": {
                                "type": "string",
                                "pattern": UUID_PATTERN,
                                "minLength": UUID_LENGTH,
                                "maxLength": UUID_LENGTH,
                            }
                        }
                    )
                }
            )
        },
    )


# --- the worker's queue: an exact mapping, no grant without kms:ViaService -----------------------------------
@pytest.mark.parametrize("stack", API_STACKS)
def test_the_worker_consumes_its_queue_with_exact_actions(synth: Synth, stack: str) -> None:
    template = synth.template(stack)
    template.has_resource_properties(
        "AWS::Lambda::EventSourceMapping",
        {
            "FunctionResponseTypes": ["ReportBatchItemFailures"],
            "ScalingConfig": {"MaximumConcurrency": Match.any_value()},
        },
    )
    consume = [s for s in statements(template) if s.get("Sid") == "ConsumeRequests"]
    assert len(consume) == 1 and sorted(consume[0]["Action"]) == [
        "sqs:ChangeMessageVisibility", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ReceiveMessage",
    ]  # fmt: skip


# --- deleting a conversation reaches its copies -----------------------------------------------------------
def test_the_api_may_delete_a_conversations_cache_entries_jobs_and_job_records_and_the_worker_may_not(
    synth: Synth,
) -> None:
    policies = synth.template("Bulwark-dev-Api").find_resources("AWS::IAM::Policy")
    by_role = {
        name: {s.get("Sid"): s for s in policy["Properties"]["PolicyDocument"]["Statement"]}
        for name, policy in policies.items()
    }
    (api,) = [sids for name, sids in by_role.items() if name.startswith("ChatRole")]
    (worker,) = [sids for name, sids in by_role.items() if name.startswith("JobsWorker")]

    assert "dynamodb:DeleteItem" in api["ResponseCache"]["Action"]
    assert {"dynamodb:Query", "dynamodb:DeleteItem"} <= set(api["Jobs"]["Action"])
    assert api["IdempotencyOfDeletedConversations"]["Action"] == "dynamodb:DeleteItem"
    assert (
        "dynamodb:DeleteItem" not in worker["ResponseCache"]["Action"]
        and "dynamodb:Query" not in worker["Jobs"]["Action"]
    )


# --- what answers show: configured names, never an ARN ---------------------------------------------------------
@pytest.mark.parametrize("stack", API_STACKS)
def test_a_target_called_by_arn_is_shown_by_its_configured_name(
    variants: dict[str, dict[str, Stack]], stack: str
) -> None:
    targets = json.dumps(chat_env(Template.from_stack(variants["profiled"][stack]))["MODEL_TARGETS"])

    assert "InferenceProfileArn" in targets  # called by the application profile's ARN (account id inside)...
    assert '\\"name\\": \\"us.amazon.nova-lite-v1:0\\"' in targets  # ...shown as the configured model


# --- another provider: guarded, its key from Secrets Manager ---------------------------------------------------
@pytest.mark.parametrize(("stack", "region"), [("Bulwark-dev-Api", "us-east-1"), ("Bulwark-dev-Api-DR", "us-west-2")])
def test_a_langchain_target_gets_this_regions_guardrail_and_its_secrets_arn_never_the_secret(
    variants: dict[str, dict[str, Stack]], stack: str, region: str
) -> None:
    template = Template.from_stack(variants["langchain"][stack])
    env = json.dumps(chat_env(template))
    targets = chat_env(template)["MODEL_TARGETS"]

    assert "api_key" not in env and "secret" not in json.dumps(OTHER["langchain"]["kwargs"])
    assert f'\\"guardrail_region\\": \\"{region}\\"' in json.dumps(targets) and "secret_arn" in json.dumps(targets)
    assert "secret:bulwark/openai" in json.dumps(targets)
    # GetSecretValue on exactly that secret (its name plus Secrets Manager's random suffix), for the three Lambdas (and
    # the primary region's scheduled curate job, which answers through the same chain).
    reads = [s for s in statements(template) if s["Action"] == "secretsmanager:GetSecretValue"]
    assert len(reads) == (5 if region == "us-east-1" else 4)  # chat, stream, worker, summarize (+ curate)
    assert all(json.dumps(s["Resource"]).endswith(':secret:bulwark/openai-??????"]]}') for s in reads)
    # ApplyGuardrail on this region's guardrail, which the Lambda applies around the other provider.
    apply = [s for s in statements(template) if s.get("Sid") == "ApplyGuardrails"]
    assert apply and all("GuardrailArn" in json.dumps(s["Resource"]) for s in apply)
    assert not Annotations.from_stack(variants["langchain"][stack]).find_warning("*", UNGUARDED)


@pytest.mark.parametrize("stack", API_STACKS)
def test_synth_warns_when_a_target_has_no_guardrail_and_says_its_answers_are_not_cached(
    synth: Synth, variants: dict[str, dict[str, Stack]], stack: str
) -> None:
    warnings = Annotations.from_stack(variants["unguarded"][stack]).find_warning("*", UNGUARDED)

    assert len(warnings) == 1
    text = str(warnings[0].entry.data)
    assert "guardrail.enabled is false" in text and "never cached" in text
    assert not Annotations.from_stack(synth.stacks[stack]).find_warning("*", UNGUARDED)


# --- GET /health/deep: public, served by the chat Lambda, exact IAM, its own throttle ------------------------
def _paths(template: Template) -> dict[str, str]:
    """Each API Gateway resource's logical id -> its full path (/health/deep)."""
    resources = template.find_resources("AWS::ApiGateway::Resource")

    def path(logical_id: str) -> str:
        props = resources[logical_id]["Properties"]
        parent = props["ParentId"].get("Ref")
        return (path(parent) if parent in resources else "") + "/" + props["PathPart"]

    return {logical_id: path(logical_id) for logical_id in resources}


@pytest.mark.parametrize("stack", API_STACKS)
def test_deep_health_is_a_public_get_on_the_chat_lambda(synth: Synth, stack: str) -> None:
    template = synth.template(stack)
    paths = _paths(template)
    (deep,) = [
        m["Properties"] for m in template.find_resources("AWS::ApiGateway::Method").values()
        if paths.get(m["Properties"]["ResourceId"].get("Ref", "")) == "/health/deep"
        and m["Properties"]["HttpMethod"] != "OPTIONS"
    ]  # fmt: skip
    (chat_id,) = template.find_resources("AWS::Lambda::Function", {"Properties": {"Handler": "handlers.chat.handler"}})

    assert deep["HttpMethod"] == "GET" and deep["AuthorizationType"] == "NONE" and "AuthorizerId" not in deep
    assert deep["Integration"]["Type"] == "AWS_PROXY"
    assert chat_id in json.dumps(deep["Integration"]["Uri"])
    template.has_resource_properties(
        "AWS::ApiGateway::Stage",
        {
            "MethodSettings": Match.array_with(
                [
                    Match.object_like(
                        {
                            "HttpMethod": "GET",
                            "ResourcePath": "/~1health~1deep",
                            "ThrottlingRateLimit": 10,
                            "ThrottlingBurstLimit": 20,
                        }
                    )
                ]
            )
        },
    )


@pytest.mark.parametrize("stack", API_STACKS)
def test_deep_health_reads_the_queue_attributes_of_exactly_the_jobs_queue(synth: Synth, stack: str) -> None:
    template = synth.template(stack)
    (probe,) = [s for s in statements(template) if s.get("Sid") == "DeepHealthQueueProbe"]
    (queue_id,) = [
        lid for lid, q in template.find_resources("AWS::SQS::Queue").items()
        if "RedrivePolicy" in q["Properties"] and "Jobs" in lid
    ]  # fmt: skip

    assert probe["Action"] == "sqs:GetQueueAttributes" and probe["Effect"] == "Allow"
    assert probe["Resource"] == {"Fn::GetAtt": [queue_id, "Arn"]}
    # The table read is the conversations GetItem the chat role already has, on that table only.
    (own,) = [s for s in statements(template) if s.get("Sid") == "OwnConversationsTable" and
              "dynamodb:DeleteItem" in s["Action"]]  # fmt: skip
    assert "dynamodb:GetItem" in own["Action"] and "*" not in json.dumps(own["Resource"])


# --- Route 53 failover: only with a configured domain ---------------------------------------------------------
FAILOVER_DOMAIN = {
    "domain_name": "api.example.com",
    "hosted_zone_id": "Z0123456789ABCDEFGHIJ",
    "certificate_arns": {
        "us-west-2": "arn:aws:acm:us-west-2:123456789012:certificate/12345678-1234-1234-1234-123456789012"
    },
}


@pytest.fixture(scope="module")
def failover(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Stack]:
    app = App(context=cdk_context(failover_domain=FAILOVER_DOMAIN), outdir=str(tmp_path_factory.mktemp("failover")))
    build_app(app)  # with the nag packs
    app.synth()
    return stacks_of(app)


def test_without_a_domain_there_are_no_route53_resources(synth: Synth) -> None:
    for stack in API_STACKS:
        template = synth.template(stack)
        for kind in ("AWS::Route53::RecordSet", "AWS::Route53::HealthCheck", "AWS::ApiGateway::DomainName"):
            template.resource_count_is(kind, 0)


@pytest.mark.parametrize(
    ("stack", "region", "role"),
    [("Bulwark-dev-Api", "us-east-1", "PRIMARY"), ("Bulwark-dev-Api-DR", "us-west-2", "SECONDARY")],
)
def test_a_domain_gets_failover_records_each_on_its_regions_deep_health(
    failover: dict[str, Stack], stack: str, region: str, role: str
) -> None:
    template = Template.from_stack(failover[stack])
    (rest_api,) = template.find_resources("AWS::ApiGateway::RestApi")
    ((check_id, check),) = template.find_resources("AWS::Route53::HealthCheck").items()
    (domain_id,) = template.find_resources("AWS::ApiGateway::DomainName")

    config = check["Properties"]["HealthCheckConfig"]
    assert (config["Type"], config["Port"], config["ResourcePath"]) == ("HTTPS", 443, "/v1/health/deep")
    assert (config["RequestInterval"], config["FailureThreshold"], config["EnableSNI"]) == (10, 3, True)
    host = json.dumps(config["FullyQualifiedDomainName"])
    assert rest_api in host and f".execute-api.{region}." in host  # the regional host, not the failover name
    template.has_resource_properties(
        "AWS::Route53::RecordSet",
        {
            "HostedZoneId": "Z0123456789ABCDEFGHIJ",
            "Name": "api.example.com",
            "Type": "A",
            "Failover": role,
            "SetIdentifier": f"Bulwark-dev-{region}",
            "HealthCheckId": {"Fn::GetAtt": [check_id, "HealthCheckId"]},
            "AliasTarget": {
                "DNSName": {"Fn::GetAtt": [domain_id, "RegionalDomainName"]},
                "HostedZoneId": {"Fn::GetAtt": [domain_id, "RegionalHostedZoneId"]},
                "EvaluateTargetHealth": False,
            },
        },
    )
    template.has_resource_properties(
        "AWS::ApiGateway::DomainName",
        {
            "DomainName": "api.example.com",
            "EndpointConfiguration": {"Types": ["REGIONAL"]},
            "SecurityPolicy": "TLS_1_2",
        },
    )
    template.has_resource_properties("AWS::ApiGateway::BasePathMapping", {"RestApiId": {"Ref": rest_api}})


def test_a_region_without_a_certificate_arn_gets_one_validated_through_the_zone(failover: dict[str, Stack]) -> None:
    primary = Template.from_stack(failover["Bulwark-dev-Api"])
    primary.has_resource_properties(
        "AWS::CertificateManager::Certificate",
        {
            "DomainName": "api.example.com",
            "ValidationMethod": "DNS",
            "DomainValidationOptions": [{"DomainName": "api.example.com", "HostedZoneId": "Z0123456789ABCDEFGHIJ"}],
        },
    )
    dr = Template.from_stack(failover["Bulwark-dev-Api-DR"])
    dr.resource_count_is("AWS::CertificateManager::Certificate", 0)
    dr.has_resource_properties(
        "AWS::ApiGateway::DomainName", {"RegionalCertificateArn": FAILOVER_DOMAIN["certificate_arns"]["us-west-2"]}
    )


@pytest.mark.parametrize("stack", API_STACKS)
def test_the_failover_resources_pass_every_nag_pack(failover: dict[str, Stack], stack: str) -> None:
    assert open_nag_findings({stack: failover[stack]}) == []


@pytest.mark.parametrize("stack", API_STACKS)
def test_a_failing_deep_health_raises_an_alarm_to_the_regions_topic(synth: Synth, stack: str) -> None:
    synth.template(stack).has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {
            "Namespace": "Bulwark",
            "MetricName": "DeepHealthUnhealthy",
            "Dimensions": [{"Name": "service", "Value": "chat"}],
            "AlarmActions": Match.any_value(),
        },
    )
