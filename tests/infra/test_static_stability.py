"""Static stability: scaling or updating the DR region never needs the primary region.

(a) A change of DR settings only (the DR chat concurrency, and with it the DR stage throttle) changes DR-region
    templates only: nothing in the primary region has to be deployed for it.
(b) No DR-region template holds a deploy-time call into the primary region: no custom resource writing there
    (CDK's cross-region export writer: none at all, no exception), no AwsCustomResource aimed at it, no
    Fn::GetStackOutput of a primary stack, no custom resource of an unreviewed kind. What DR stacks read from the
    primary region reaches them through CDK's export reader, which reads SSM parameters in the DR region itself
    (the primary stack's writer put them there at its own deploy), so it works while the primary region is down.
(c) The other direction is read by the primary stacks at their own deploy (weak references, Fn::GetStackOutput):
    the DR API's URL, the DR guardrails, and the primary documents' replication destination (the DR bucket and
    the DR key; the DR bucket's name for the web client's CSP).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk import App, Stack
from aws_cdk.assertions import Match, Template

from app import build_app
from tests.infra.conftest import Synth, cdk_context

PRIMARY, DR = "us-east-1", "us-west-2"
# Custom resources a DR template may hold, each checked below or calling only its own region's APIs. Not CDK's
# Custom::CrossRegionExportWriter: it writes into another region.
REVIEWED_CUSTOM_RESOURCES = {
    "Custom::CrossRegionExportReader",  # reads this region's SSM parameters (checked: its region is its own)
    "Custom::AWS",  # AwsCustomResource: every call's region checked
    "Custom::S3BucketNotifications",  # puts the bucket's notification configuration: S3 in this region
    "Custom::CDKBucketDeployment",  # the DR site's files: this region's asset bucket to its site bucket, no CloudFront
}


def _stacks(app: App) -> dict[str, Stack]:
    return {child.stack_name: child for child in app.node.children if isinstance(child, Stack)}


def _templates(stacks: dict[str, Stack]) -> dict[str, dict[str, Any]]:
    return {name: Template.from_stack(stack).to_json() for name, stack in stacks.items()}


def _walk(value: Any, key: str) -> list[Any]:
    """Every value under `key` (an intrinsic such as Fn::GetStackOutput) anywhere in a template."""
    found: list[Any] = []
    if isinstance(value, dict):
        for name, item in value.items():
            if name == key:
                found.append(item)
            found += _walk(item, key)
    elif isinstance(value, list):
        for item in value:
            found += _walk(item, key)
    return found


def _synth(tmp_path_factory: pytest.TempPathFactory, name: str, **overrides: Any) -> dict[str, Stack]:
    app = App(context=cdk_context(**overrides), outdir=str(tmp_path_factory.mktemp(name)))
    build_app(app, nag=False)
    app.synth()
    return _stacks(app)


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Stack], dict[str, Stack]]:
    """The deployment as configured and the same with only the DR region's chat concurrency (and so its stage
    throttle) changed, synthesized one after the other from the same sources."""
    return _synth(tmp_path_factory, "as-configured"), _synth(
        tmp_path_factory, "dr-scaled", dr_chat_reserved_concurrency=7
    )


def dr_stacks(synth: Synth) -> list[str]:
    return sorted(name for name, stack in synth.stacks.items() if stack.region == DR)


# --- (a) a DR-only change touches DR templates only -----------------------------------------------------------
def test_changing_dr_capacity_changes_only_dr_region_templates(
    pair: tuple[dict[str, Stack], dict[str, Stack]],
) -> None:
    configured, dr_scaled = pair
    before = _templates(configured)
    after = _templates(dr_scaled)
    assert set(before) == set(after)

    changed = sorted(name for name in before if before[name] != after[name])

    assert changed, "the DR change must show somewhere"
    assert {name: dr_scaled[name].region for name in changed} == dict.fromkeys(changed, DR)
    assert "Bulwark-dev-Api-DR" in changed
    # And it is the change asked for: the DR chat Lambda and the DR stage throttle follow the DR figure.
    template = Template.from_stack(dr_scaled["Bulwark-dev-Api-DR"])
    template.has_resource_properties(
        "AWS::Lambda::Function", {"Handler": "handlers.chat.handler", "ReservedConcurrentExecutions": 7}
    )
    template.has_resource_properties(
        "AWS::ApiGateway::Stage",
        {
            "MethodSettings": Match.array_with(
                [Match.object_like({"ThrottlingRateLimit": 7, "ThrottlingBurstLimit": 7})]
            )
        },
    )


# --- (b) no DR template calls the primary region at deploy time --------------------------------------------------
def test_dr_templates_hold_only_reviewed_custom_resources(synth: Synth) -> None:
    for name in dr_stacks(synth):
        resources = synth.template(name).to_json()["Resources"]
        kinds = {r["Type"] for r in resources.values() if r["Type"].startswith("Custom::")}
        kinds |= {r["Type"] for r in resources.values() if r["Type"] == "AWS::CloudFormation::CustomResource"}
        assert kinds <= REVIEWED_CUSTOM_RESOURCES, f"{name}: review {kinds - REVIEWED_CUSTOM_RESOURCES}"


def test_dr_export_readers_read_their_own_region_only(synth: Synth) -> None:
    readers = 0
    for name in dr_stacks(synth):
        for reader in synth.template(name).find_resources("Custom::CrossRegionExportReader").values():
            assert reader["Properties"]["ReaderProps"]["region"] == DR, name
            readers += 1
    assert readers >= 3  # the DR stacks do read primary values (user pool, tables, site origin): locally


def test_no_dr_stack_writes_into_another_region(synth: Synth) -> None:
    """No exception: every DR stack (the knowledge and key stacks, whose bucket and key the primary documents
    replicate into, as much as the API, model, auth and backup stacks) holds no export writer nor its provider."""
    names = dr_stacks(synth)
    assert {"Bulwark-dev-Knowledge-DR", "Bulwark-dev-Keys-DR", "Bulwark-dev-Api-DR", "Bulwark-dev-Models-DR"} <= set(
        names
    )
    for name in names:
        resources = synth.template(name).to_json()["Resources"]
        assert not synth.template(name).find_resources("Custom::CrossRegionExportWriter"), name
        assert not [lid for lid in resources if "CrossRegionExportWriter" in lid], name


def test_the_dr_only_change_writes_into_no_other_region(pair: tuple[dict[str, Stack], dict[str, Stack]]) -> None:
    """Both synths of (a): neither the DR stacks as configured nor the scaled ones hold a writer."""
    for stacks in pair:
        for name, stack in stacks.items():
            if stack.region == DR:
                assert not Template.from_stack(stack).find_resources("Custom::CrossRegionExportWriter"), name


def test_no_dr_template_reads_a_primary_stack_output_or_calls_the_primary_region(synth: Synth) -> None:
    for name in dr_stacks(synth):
        template = synth.template(name).to_json()
        for output in _walk(template, "Fn::GetStackOutput"):
            assert output.get("Region", DR) == DR, f"{name} reads {output['StackName']} in the primary region"
            assert synth.stacks[output["StackName"]].region == DR
        for resource in template["Resources"].values():
            if resource["Type"] != "Custom::AWS":
                continue
            for phase in ("Create", "Update", "Delete"):
                call = resource["Properties"].get(phase)
                text = call if isinstance(call, str) else json.dumps(call)
                assert f'"region":"{PRIMARY}"' not in text.replace(" ", ""), f"{name} {phase} calls {PRIMARY}"


def _reads(synth: Synth, name: str) -> set[tuple[str, str]]:
    return {(o["StackName"], o["Region"]) for o in _walk(synth.template(name).to_json(), "Fn::GetStackOutput")}


def test_primary_stacks_read_dr_values_at_their_own_deploy(synth: Synth) -> None:
    """(c) The other direction is fine: primary stacks read the DR API's URL, the DR guardrails and the documents'
    replication destination (weak references), and hold no reader of a DR stack's writer."""
    assert _reads(synth, "Bulwark-dev-WebContent") == {("Bulwark-dev-Api-DR", DR), ("Bulwark-dev-Knowledge-DR", DR)}
    assert _reads(synth, "Bulwark-dev-Api") == {("Bulwark-dev-Models-DR", DR)}
    assert _reads(synth, "Bulwark-dev-Knowledge") == {("Bulwark-dev-Knowledge-DR", DR), ("Bulwark-dev-Keys-DR", DR)}
    for name, stack in synth.stacks.items():
        if stack.region == PRIMARY:
            assert not synth.template(name).find_resources("Custom::CrossRegionExportReader"), name
    # The primary Knowledge stack still deploys after the DR stacks it reads (the replication destination first).
    knowledge = {dependency.stack_name for dependency in synth.stacks["Bulwark-dev-Knowledge"].dependencies}
    assert {"Bulwark-dev-Knowledge-DR", "Bulwark-dev-Keys-DR"} <= knowledge
