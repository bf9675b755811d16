"""Model capacity in one region: guardrail, application inference profiles, provisioned throughput.

Regional resources, so each region has its own stack; both regions' API stacks read every
region's outputs (the failover chain crosses regions). IAM is granted on exactly these ARNs.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aws_cdk import ArnFormat, CfnOutput, CfnResource, CfnWaitConditionHandle, Stack
from aws_cdk import aws_bedrock as bedrock
from aws_cdk import aws_iam as iam
from aws_cdk import custom_resources as cr
from constructs import Construct

from stacks.config import AppConfig, GuardrailConfig, ModelTarget
from stacks.constructs.nag import suppress, suppress_cdk_provider

GUARDRAIL_BLOCKED = "Sorry, I can't help with that request: it was blocked by the content guardrail."
HARMFUL_CONTENT = ("HATE", "INSULTS", "SEXUAL", "VIOLENCE", "MISCONDUCT")


@dataclass(frozen=True)
class Invocation:
    """How the Lambda calls one target and what IAM must allow for it."""

    invoke_id: str  # modelId passed to Converse (an id, or an ARN token for created capacity)
    resource_arns: tuple[str, ...]


def bedrock_arn(stack: Stack, *, region: str, resource: str, name: str, account: bool = True) -> str:
    return stack.format_arn(
        service="bedrock",
        region=region,
        account=None if account else "",
        resource=resource,
        resource_name=name,
        arn_format=ArnFormat.SLASH_RESOURCE_NAME,
    )


def base_arns(stack: Stack, target: ModelTarget) -> list[str]:
    """ARNs a call through this target may touch: the profile and every model it can route to."""
    if target.kind == "provisioned":
        return [target.model_id]
    arns: list[str] = []
    if target.kind == "system-profile":
        arns.append(bedrock_arn(stack, region=target.region, resource="inference-profile", name=target.model_id))
    for region in target.destination_regions():
        arns.append(
            bedrock_arn(
                stack,
                region="" if region == "*" else region,
                resource="foundation-model",
                name=target.foundation_model_id or "",
                account=False,
            )
        )
    return arns


def content_policy(settings: GuardrailConfig) -> bedrock.CfnGuardrail.ContentPolicyConfigProperty | None:
    """Prompt attacks on input (Bedrock assesses them on input only); harmful content on input and output."""
    filters = []
    if settings.prompt_attack != "NONE":
        filters.append(
            bedrock.CfnGuardrail.ContentFilterConfigProperty(
                type="PROMPT_ATTACK", input_strength=settings.prompt_attack, output_strength="NONE"
            )
        )
    if (settings.content_input, settings.content_output) != ("NONE", "NONE"):
        filters += [
            bedrock.CfnGuardrail.ContentFilterConfigProperty(
                type=kind, input_strength=settings.content_input, output_strength=settings.content_output
            )
            for kind in HARMFUL_CONTENT
        ]
    return bedrock.CfnGuardrail.ContentPolicyConfigProperty(filters_config=filters) if filters else None


def pii_policy(settings: GuardrailConfig) -> bedrock.CfnGuardrail.SensitiveInformationPolicyConfigProperty | None:
    """PII: masked in answers (questions pass: a user may share their own address); credentials blocked both ways."""
    entities = [
        bedrock.CfnGuardrail.PiiEntityConfigProperty(
            type=kind, action="ANONYMIZE", input_enabled=False, output_enabled=True, output_action="ANONYMIZE"
        )
        for kind in settings.pii_anonymize
    ] + [
        bedrock.CfnGuardrail.PiiEntityConfigProperty(
            type=kind,
            action="BLOCK",
            input_enabled=True,
            input_action="BLOCK",
            output_enabled=True,
            output_action="BLOCK",
        )
        for kind in settings.pii_block
    ]
    return (
        bedrock.CfnGuardrail.SensitiveInformationPolicyConfigProperty(pii_entities_config=entities)
        if entities
        else None
    )


def guardrail_digest(settings: GuardrailConfig) -> str:
    """A short digest of the filters, so a changed filter gets a new guardrail version."""
    filters = {
        "prompt_attack": settings.prompt_attack,
        "content": [settings.content_input, settings.content_output],
        "pii_anonymize": sorted(settings.pii_anonymize),
        "pii_block": sorted(settings.pii_block),
        "blocked_message": GUARDRAIL_BLOCKED,
    }
    return hashlib.sha256(json.dumps(filters, sort_keys=True).encode()).hexdigest()[:16]


class ModelsStack(Stack):
    def __init__(self, scope: Construct, construct_id: str, *, config: AppConfig, **kwargs: Any) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.invocations: dict[str, Invocation] = {}  # by ModelTarget.key, for targets in this region
        self.guardrail: tuple[str, str, str] | None = None  # (id, version, arn)
        if config.guardrail.enabled:
            guardrail = bedrock.CfnGuardrail(
                self,
                "Guardrail",
                name=f"{self.stack_name}-guardrail",
                description="Prompt attacks, harmful content and PII, on questions and answers; applied to every "
                "model call (Converse, or ApplyGuardrail around a non-Bedrock target).",
                blocked_input_messaging=GUARDRAIL_BLOCKED,
                blocked_outputs_messaging=GUARDRAIL_BLOCKED,
                content_policy_config=content_policy(config.guardrail),
                sensitive_information_policy_config=pii_policy(config.guardrail),
            )
            # A version is a snapshot: its description carries the filters' digest, so changing a filter
            # replaces it (a new version number), which also retires answers cached under the old one.
            version = bedrock.CfnGuardrailVersion(
                self,
                "GuardrailVersion",
                guardrail_identifier=guardrail.attr_guardrail_id,
                description=f"filters {guardrail_digest(config.guardrail)}",
            )
            self.guardrail = (guardrail.attr_guardrail_id, version.attr_version, guardrail.attr_guardrail_arn)
            CfnOutput(self, "GuardrailId", value=guardrail.attr_guardrail_id)

        for index, target in enumerate(config.models):
            if target.region != self.region or target.kind == "langchain":
                continue
            arns = base_arns(self, target)
            invoke_id = target.model_id
            if target.application_profile:
                source = arns[0]  # the system profile, or the foundation model in this region
                profile = bedrock.CfnApplicationInferenceProfile(
                    self,
                    f"Profile{index}",
                    inference_profile_name=f"{self.stack_name}-{index}",
                    description=f"{config.prefix} {target.model_id} application profile",
                    model_source=bedrock.CfnApplicationInferenceProfile.InferenceProfileModelSourceProperty(
                        copy_from=source
                    ),
                )
                invoke_id = profile.attr_inference_profile_arn
                arns = [profile.attr_inference_profile_arn, *arns]
            elif target.provision_model_units is not None:
                invoke_id = self._provisioned(index, target, arns[0])
                arns = [invoke_id, *arns]
            # The versions a runtime switch may roll this target back to: invoked by their ids, allowed exactly.
            arns += [
                arn for previous in target.previous_versions for arn in base_arns(self, target.with_version(previous))
            ]
            self.invocations[target.key] = Invocation(invoke_id=invoke_id, resource_arns=tuple(arns))
            CfnOutput(self, f"Target{index}", value=invoke_id)
        if not any(isinstance(child, CfnResource) for child in self.node.find_all()):
            # `guardrail: false` and nothing to create in this region: CloudFormation refuses an empty
            # template, and the API stacks still read this stack. A handle is free and does nothing.
            CfnWaitConditionHandle(self, "NothingToCreate")

    def _provisioned(self, index: int, target: ModelTarget, model_arn: str) -> str:
        """No-commitment provisioned throughput (hourly, deletable): CloudFormation has no resource."""
        provisioned_arns = bedrock_arn(self, region=self.region, resource="provisioned-model", name="*")
        resource = cr.AwsCustomResource(
            self,
            f"Provisioned{index}",
            on_create=cr.AwsSdkCall(
                service="Bedrock",
                action="createProvisionedModelThroughput",
                parameters={
                    "modelUnits": target.provision_model_units,
                    "provisionedModelName": f"{self.stack_name}-{index}",
                    "modelId": target.model_id,
                },  # no commitmentDuration: hourly, no commitment, removable at any time
                physical_resource_id=cr.PhysicalResourceId.from_response("provisionedModelArn"),
            ),
            on_delete=cr.AwsSdkCall(
                service="Bedrock",
                action="deleteProvisionedModelThroughput",
                parameters={"provisionedModelId": cr.PhysicalResourceIdReference()},
            ),
            policy=cr.AwsCustomResourcePolicy.from_statements(
                [
                    iam.PolicyStatement(
                        actions=["bedrock:CreateProvisionedModelThroughput"],
                        resources=[model_arn, provisioned_arns],
                    ),
                    iam.PolicyStatement(
                        actions=["bedrock:DeleteProvisionedModelThroughput"], resources=[provisioned_arns]
                    ),
                ]
            ),
            install_latest_aws_sdk=False,
        )
        suppress(
            resource,
            "The provisioned model's ARN is assigned by Bedrock at creation, so create/delete can only be "
            "scoped to this account's provisioned-model/* in this region.",
            "AwsSolutions-IAM5",
            "NIST.800.53.R5-IAMNoInlinePolicy",
            "HIPAA.Security-IAMNoInlinePolicy",
            children=True,
        )
        suppress_cdk_provider(
            self,
            f"/{self.stack_name}/AWS679f53fac002430cb0da5b7982bd2287",
            "AwsCustomResource provider (creates and deletes the provisioned throughput)",
        )
        return resource.get_response_field("provisionedModelArn")


def grant_model_access(role: iam.IRole, *, config: AppConfig, region: str, models: Mapping[str, ModelsStack]) -> None:
    """bedrock:InvokeModel on exactly the chain's Bedrock targets as seen from `region` (each inference
    profile ARN plus the foundation model in every region it routes to), ApplyGuardrail on their guardrails
    and, when the chain has a LangChain target, on this region's guardrail (applied around that target)."""
    chain = [target for target in config.chain_for(region) if target.kind != "langchain"]
    model_arns = list(dict.fromkeys(arn for t in chain for arn in models[t.region].invocations[t.key].resource_arns))
    guardrails = [models[t.region].guardrail for t in chain]
    if any(target.kind == "langchain" for target in config.models):
        guardrails.append(models[region].guardrail)
    guardrail_arns = list(dict.fromkeys(guardrail[2] for guardrail in guardrails if guardrail is not None))
    role.add_to_principal_policy(
        iam.PolicyStatement(sid="InvokeConfiguredModels", actions=["bedrock:InvokeModel"], resources=model_arns)
    )
    if guardrail_arns:
        role.add_to_principal_policy(
            iam.PolicyStatement(sid="ApplyGuardrails", actions=["bedrock:ApplyGuardrail"], resources=guardrail_arns)
        )
