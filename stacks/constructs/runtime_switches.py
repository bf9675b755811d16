"""The runtime switches' AppConfig profile in one region: flip them in an incident without a deploy.

An application, this environment, a hosted configuration profile holding the switches' feature flags
document (every switch off), its first deployment, and a deployment strategy for incidents: all at once,
no bake time, so a flip reaches AppConfig at once and the Lambdas within their cache interval.

The profile is `AWS.Freeform` (JSON) rather than `AWS.AppConfig.FeatureFlags`: Powertools' feature flags
utility evaluates its own schema (`{"flag": {"default": ..., "rules": ...}}`), which AppConfig's feature
flags type would rewrite into its own shape on retrieval. A JSON Schema validator on the profile refuses a
malformed document before it is deployed; the Lambdas keep their last good switches if one gets through.
"""

from __future__ import annotations

import json
from typing import Any

from aws_cdk import CfnOutput, Stack
from aws_cdk import aws_appconfig as appconfig
from aws_cdk import aws_iam as iam
from constructs import Construct

from core.switches import (
    CHAIN_ORDER,
    FORCE_DEGRADED,
    FORCE_OPEN,
    MODEL_PINS,
    MODEL_VERSIONS,
    PROMPT_VERSION,
)

_NAMES = {"type": "array", "items": {"type": "string", "maxLength": 256}, "maxItems": 32}


def _flag(value: dict[str, Any], *, boolean: bool = False) -> dict[str, Any]:
    properties: dict[str, Any] = {"default": value}
    if not boolean:
        properties["boolean_type"] = {"const": False}
    return {"type": "object", "required": ["default"], "properties": properties}


SCHEMA: dict[str, Any] = {
    "$schema": "http://json-schema.org/draft-04/schema#",
    "type": "object",
    "properties": {
        FORCE_OPEN: _flag(_NAMES),
        CHAIN_ORDER: _flag(_NAMES),
        MODEL_PINS: _flag({"type": "object", "additionalProperties": {"type": "string", "maxLength": 256}}),
        MODEL_VERSIONS: _flag({"type": "object", "additionalProperties": {"type": "string", "maxLength": 256}}),
        FORCE_DEGRADED: _flag({"type": "boolean"}, boolean=True),
        PROMPT_VERSION: _flag({"type": "string", "pattern": "^([1-9][0-9]{0,8})?$"}),
    },
    "additionalProperties": False,
}


DEPLOYED_DOCUMENT: dict[str, Any] = {}


class RuntimeSwitches(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, environment_name: str, cache_s: float = 30.0) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        application = appconfig.CfnApplication(
            self, "Application", name=f"{stack.stack_name}-switches", description="Bulwark runtime switches"
        )
        environment = appconfig.CfnEnvironment(
            self, "Environment", application_id=application.ref, name=environment_name
        )
        profile = appconfig.CfnConfigurationProfile(
            self,
            "Profile",
            application_id=application.ref,
            name="switches",
            location_uri="hosted",
            type="AWS.Freeform",
            validators=[
                appconfig.CfnConfigurationProfile.ValidatorsProperty(type="JSON_SCHEMA", content=json.dumps(SCHEMA))
            ],
        )
        # An empty document: every switch at its default (the Lambdas, `make switch` and the emulator read a missing
        # flag as its default). Constant on purpose: a hosted version whose content changed (a new switch in
        # default_document()) would be replaced on the next deploy, and its deployment would undo whatever an
        # operator flipped with `make switch`, mid-incident. A deploy never touches the switches.
        initial = appconfig.CfnHostedConfigurationVersion(
            self,
            "AllOff",
            application_id=application.ref,
            configuration_profile_id=profile.ref,
            content=json.dumps(DEPLOYED_DOCUMENT),
            content_type="application/json",
            description="every switch at its default",
        )
        self.strategy = appconfig.CfnDeploymentStrategy(
            self,
            "Incident",
            name=f"{stack.stack_name}-all-at-once",
            description="Incident response: all at once, no bake time",
            deployment_duration_in_minutes=0,
            growth_factor=100,
            growth_type="LINEAR",
            final_bake_time_in_minutes=0,
            replicate_to="NONE",
        )
        appconfig.CfnDeployment(
            self,
            "Deployment",
            application_id=application.ref,
            environment_id=environment.ref,
            configuration_profile_id=profile.ref,
            configuration_version=initial.ref,
            deployment_strategy_id=self.strategy.ref,
        )
        self.application_id = application.ref
        self.environment_id = environment.ref
        self.profile_id = profile.ref
        # What `make switch` (tools/switch.py) needs to flip a switch: a new hosted version, deployed with the
        # incident strategy. In the API stack: SwitchesApplicationId<hash> and so on (found by prefix).
        for name, value in (
            ("ApplicationId", application.ref),
            ("EnvironmentId", environment.ref),
            ("ProfileId", profile.ref),
            ("StrategyId", self.strategy.ref),
        ):
            CfnOutput(self, name, value=value)
        self.cache_s = cache_s
        # StartConfigurationSession and GetLatestConfiguration are both authorised on the configuration.
        self.configuration_arn = stack.format_arn(
            service="appconfig",
            resource="application",
            resource_name=f"{application.ref}/environment/{environment.ref}/configuration/{profile.ref}",
        )

    def settings(self) -> dict[str, Any]:
        """The Lambdas' settings that name this profile (handlers.settings.Settings fields)."""
        return {
            "switches_application": self.application_id,
            "switches_environment": self.environment_id,
            "switches_profile": self.profile_id,
            "switches_cache_s": self.cache_s,
        }

    def grant_read(self, role: iam.IRole) -> None:
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="RuntimeSwitches",
                actions=["appconfig:StartConfigurationSession", "appconfig:GetLatestConfiguration"],
                resources=[self.configuration_arn],
            )
        )
