"""The guardrail filters questions and answers: prompt attacks, harmful content both ways, PII; from config."""

from __future__ import annotations

from typing import Any

import pytest
from aws_cdk import App
from aws_cdk.assertions import Match, Template

from app import build_app
from stacks.config import AppConfig
from stacks.models_stack import HARMFUL_CONTENT, guardrail_digest
from tests.infra.conftest import Synth, cdk_context


@pytest.mark.parametrize("stack", ["Bulwark-dev-Models", "Bulwark-dev-Models-DR"])
def test_the_default_guardrail_filters_input_and_output_and_pii(synth: Synth, stack: str) -> None:
    template = synth.template(stack)
    filters = [{"Type": "PROMPT_ATTACK", "InputStrength": "HIGH", "OutputStrength": "NONE"}] + [
        {"Type": kind, "InputStrength": "MEDIUM", "OutputStrength": "MEDIUM"} for kind in HARMFUL_CONTENT
    ]

    template.has_resource_properties(
        "AWS::Bedrock::Guardrail",
        {
            "ContentPolicyConfig": {"FiltersConfig": filters},
            "SensitiveInformationPolicyConfig": {
                "PiiEntitiesConfig": Match.array_with(
                    [
                        # Masked in answers; a user may share their own address in a question.
                        {
                            "Type": "EMAIL",
                            "Action": "ANONYMIZE",
                            "InputEnabled": False,
                            "OutputEnabled": True,
                            "OutputAction": "ANONYMIZE",
                        },
                        # Credentials blocked both ways: never sent to a model, never shown.
                        {
                            "Type": "AWS_SECRET_KEY",
                            "Action": "BLOCK",
                            "InputEnabled": True,
                            "InputAction": "BLOCK",
                            "OutputEnabled": True,
                            "OutputAction": "BLOCK",
                        },
                    ]
                )
            },
            "BlockedOutputsMessaging": Match.string_like_regexp("guardrail"),
        },
    )
    default = AppConfig.from_context(cdk_context()["bulwark"]).guardrail
    template.has_resource_properties(
        "AWS::Bedrock::GuardrailVersion", {"Description": f"filters {guardrail_digest(default)}"}
    )


@pytest.fixture(scope="module")
def tuned(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    guardrail = {"prompt_attack": "MEDIUM", "content_input": "NONE", "content_output": "HIGH",
                 "pii_anonymize": ["NAME"], "pii_block": []}  # fmt: skip
    templates = {}
    for name, value in (("tuned", guardrail), ("off", False)):
        app = App(context=cdk_context(guardrail=value), outdir=str(tmp_path_factory.mktemp(name)))
        build_app(app, nag=False)
        templates[name] = {s.stack_name: s for s in app.node.children if hasattr(s, "stack_name")}
    return templates


def test_the_filters_come_from_config_and_a_change_makes_a_new_version(tuned: dict[str, Any]) -> None:
    template = Template.from_stack(tuned["tuned"]["Bulwark-dev-Models"])

    template.has_resource_properties(
        "AWS::Bedrock::Guardrail",
        {
            "ContentPolicyConfig": {
                "FiltersConfig": [{"Type": "PROMPT_ATTACK", "InputStrength": "MEDIUM", "OutputStrength": "NONE"}]
                + [{"Type": kind, "InputStrength": "NONE", "OutputStrength": "HIGH"} for kind in HARMFUL_CONTENT]
            },
            "SensitiveInformationPolicyConfig": {
                "PiiEntitiesConfig": [
                    {
                        "Type": "NAME",
                        "Action": "ANONYMIZE",
                        "InputEnabled": False,
                        "OutputEnabled": True,
                        "OutputAction": "ANONYMIZE",
                    }
                ]
            },
        },
    )
    (version,) = template.find_resources("AWS::Bedrock::GuardrailVersion").values()
    default = AppConfig.from_context(cdk_context()["bulwark"]).guardrail
    assert version["Properties"]["Description"] != f"filters {guardrail_digest(default)}"


def test_guardrail_false_still_works_and_creates_none(tuned: dict[str, Any]) -> None:
    for name in ("Bulwark-dev-Models", "Bulwark-dev-Models-DR"):
        Template.from_stack(tuned["off"][name]).resource_count_is("AWS::Bedrock::Guardrail", 0)
