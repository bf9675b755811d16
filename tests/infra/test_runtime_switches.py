"""The runtime switches' AppConfig profile, in an empty stack: what is deployed, the incident strategy, the
schema that guards the document, and the exact read permission."""

from __future__ import annotations

import json

import jsonschema
import pytest
from aws_cdk import App, Stack
from aws_cdk import aws_iam as iam
from aws_cdk.assertions import Match, Template

from core.switches import FORCE_DEGRADED, FORCE_OPEN, PROMPT_VERSION, default_document
from stacks.constructs.runtime_switches import SCHEMA, RuntimeSwitches
from tests.infra.conftest import Synth, statements
from tools.switch import values as switch_values


@pytest.fixture(scope="module")
def template() -> Template:
    stack = Stack(App(), "Switches", env={"account": "123456789012", "region": "eu-west-1"})
    switches = RuntimeSwitches(stack, "Switches", environment_name="dev")
    role = iam.Role(stack, "Fn", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"))
    switches.grant_read(role)
    return Template.from_stack(stack)


def test_a_hosted_profile_deployed_with_every_switch_off(template: Template) -> None:
    template.has_resource_properties("AWS::AppConfig::Environment", {"Name": "dev"})
    template.has_resource_properties(
        "AWS::AppConfig::ConfigurationProfile",
        {
            "LocationUri": "hosted",
            "Type": "AWS.Freeform",
            "Validators": [{"Type": "JSON_SCHEMA", "Content": Match.any_value()}],
        },
    )
    # An empty document, whatever switches exist: a deploy that adds one must not replace the version (and with it
    # reset every switch an operator flipped). It reads as every switch off.
    template.has_resource_properties(
        "AWS::AppConfig::HostedConfigurationVersion", {"Content": "{}", "ContentType": "application/json"}
    )
    template.resource_count_is("AWS::AppConfig::Deployment", 1)
    jsonschema.validate({}, SCHEMA)
    assert switch_values({}) == switch_values(default_document())


def test_the_incident_strategy_is_all_at_once_without_bake_time(template: Template) -> None:
    template.has_resource_properties(
        "AWS::AppConfig::DeploymentStrategy",
        {"DeploymentDurationInMinutes": 0, "GrowthFactor": 100, "FinalBakeTimeInMinutes": 0, "ReplicateTo": "NONE"},
    )
    strategies = template.find_resources("AWS::AppConfig::DeploymentStrategy")
    (deployment,) = template.find_resources("AWS::AppConfig::Deployment").values()
    assert deployment["Properties"]["DeploymentStrategyId"] == {"Ref": next(iter(strategies))}


def test_the_schema_accepts_the_deployed_document_and_refuses_bad_ones() -> None:
    jsonschema.validate(default_document(), SCHEMA)
    flipped = default_document()
    flipped[FORCE_DEGRADED]["default"] = True
    flipped[FORCE_OPEN]["default"] = ["claude@us-east-1"]
    flipped[PROMPT_VERSION]["default"] = "3"
    jsonschema.validate(flipped, SCHEMA)
    for bad in ({FORCE_DEGRADED: {"default": "yes"}}, {PROMPT_VERSION: {"default": "latest"}}, {"typo": {}}):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(bad, SCHEMA)


def test_the_lambda_may_only_read_this_configuration(template: Template) -> None:
    (policy,) = template.find_resources("AWS::IAM::Policy").values()
    (statement,) = policy["Properties"]["PolicyDocument"]["Statement"]
    assert statement["Sid"] == "RuntimeSwitches"
    assert sorted(statement["Action"]) == ["appconfig:GetLatestConfiguration", "appconfig:StartConfigurationSession"]
    arn = json.dumps(statement["Resource"])
    for part in (":appconfig:eu-west-1:123456789012:application/", "/environment/", "/configuration/"):
        assert part in arn
    assert "*" not in arn


@pytest.mark.parametrize("name", ["Bulwark-dev-Api", "Bulwark-dev-Api-DR"])
def test_each_region_has_its_switches_read_by_the_chat_and_worker_lambdas(synth: Synth, name: str) -> None:
    template = synth.template(name)
    template.resource_count_is("AWS::AppConfig::Application", 1)
    (profile_id,) = template.find_resources("AWS::AppConfig::ConfigurationProfile")
    granted = statements(template, "RuntimeSwitches")
    # the API Lambda's role, the stream Lambda's (ADR 0004), the worker's and the summarize workflow's (ADR 0005);
    # in the primary region the scheduled curate job's (issue 11) too
    assert len(granted) == (5 if name == "Bulwark-dev-Api" else 4)
    for statement in granted:
        assert sorted(statement["Action"]) == [
            "appconfig:GetLatestConfiguration",
            "appconfig:StartConfigurationSession",
        ]
        assert {"Ref": profile_id} in statement["Resource"]["Fn::Join"][1]
    functions = [
        f["Properties"]["Environment"]["Variables"]
        for f in template.find_resources("AWS::Lambda::Function").values()
        if "MODEL_TARGETS" in f["Properties"].get("Environment", {}).get("Variables", {})
    ]
    assert len(functions) == (5 if name == "Bulwark-dev-Api" else 4)  # chat, stream, worker, summarize (+ curate)
    for variables in functions:
        assert variables["SWITCHES_PROFILE"] == {"Ref": profile_id}
        assert variables["SWITCHES_CACHE_SECONDS"] == "30"


def test_the_model_versions_switch_is_in_the_schema_and_the_ids_are_outputs(template: Template) -> None:
    from core.switches import MODEL_VERSIONS

    flipped = default_document()
    flipped[MODEL_VERSIONS]["default"] = {"us.amazon.nova-2-lite-v1:0": "us.amazon.nova-lite-v1:0"}
    jsonschema.validate(flipped, SCHEMA)
    flipped[MODEL_VERSIONS]["default"] = ["us.amazon.nova-lite-v1:0"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(flipped, SCHEMA)
    outputs = template.find_outputs("*")
    for name in ("SwitchesApplicationId", "SwitchesEnvironmentId", "SwitchesProfileId", "SwitchesStrategyId"):
        assert any(key.startswith(name) for key in outputs), name
