"""Model versions to roll back to (issue 11): the Lambdas may invoke exactly the current and the listed previous
versions of each target (profile ARN and the foundation model in every region the profile routes to), and
their environment names the versions the `model_versions` switch may select."""

from __future__ import annotations

import json
from typing import Any

from aws_cdk import App
from aws_cdk.assertions import Template

from app import build_app
from tests.conftest import cdk_context
from tests.infra.test_stacks import _resolved_arns

CURRENT, PREVIOUS = "us.amazon.nova-2-lite-v1:0", "us.amazon.nova-lite-v1:0"


def _chat_targets(template: Template) -> list[dict[str, Any]]:
    for resource in template.find_resources("AWS::Lambda::Function").values():
        variables = resource["Properties"].get("Environment", {}).get("Variables", {})
        if "MODEL_TARGETS" in variables and isinstance(variables["MODEL_TARGETS"], str):
            return json.loads(variables["MODEL_TARGETS"])  # type: ignore[no-any-return]
    raise AssertionError("no Lambda with a literal MODEL_TARGETS")


def test_the_lambdas_may_invoke_exactly_the_current_and_previous_versions() -> None:
    app = App(
        context=cdk_context(
            guardrail={"enabled": False},
            models=[
                {"model_id": CURRENT, "region": "us-east-1", "previous_versions": [PREVIOUS]},
                {"model_id": "amazon.nova-pro-v1:0", "region": "us-west-2"},
            ],
        )
    )
    build_app(app, nag=False)
    stacks = {child.node.id: child for child in app.node.children}
    for name in ("Bulwark-dev-Api", "Bulwark-dev-Api-DR"):
        template = Template.from_stack(stacks[name])  # type: ignore[arg-type]
        arns = _resolved_arns(template)
        region = stacks[name].region  # type: ignore[attr-defined]
        routed = ("us-east-1", "us-east-2", "us-west-2")
        assert sorted(arns) == sorted(
            [
                f"arn:aws:bedrock:us-east-1:${{AWS::AccountId}}:inference-profile/{CURRENT}",
                *(f"arn:aws:bedrock:{r}::foundation-model/amazon.nova-2-lite-v1:0" for r in routed),
                f"arn:aws:bedrock:us-east-1:${{AWS::AccountId}}:inference-profile/{PREVIOUS}",
                *(f"arn:aws:bedrock:{r}::foundation-model/amazon.nova-lite-v1:0" for r in routed),
                "arn:aws:bedrock:us-west-2::foundation-model/amazon.nova-pro-v1:0",
            ]
        ), region
        targets = {entry["model_id"]: entry for entry in _chat_targets(template)}
        assert targets[CURRENT]["previous_versions"] == [PREVIOUS]
        assert "previous_versions" not in targets["amazon.nova-pro-v1:0"]
