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
from tests.infra.conftest import Synth, cdk_context

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


def statements(template: Template) -> list[dict[str, Any]]:
    return [
        s
        for policy in template.find_resources("AWS::IAM::Policy").values()
        for s in policy["Properties"]["PolicyDocument"]["Statement"]
    ]


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
    # GetSecretValue on exactly that secret (its name plus Secrets Manager's random suffix), for both Lambdas.
    reads = [s for s in statements(template) if s["Action"] == "secretsmanager:GetSecretValue"]
    assert len(reads) == 2
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
