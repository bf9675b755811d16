"""cdk-nag and checkov helpers: suppressions and skips always carry a reason and sit next to their resource."""

from __future__ import annotations

from collections.abc import Iterable

import jsii
from aws_cdk import CfnResource, Stack
from cdk_nag import NagPackSuppression, NagSuppressions
from constructs import IConstruct, IValidation

# The three packs this project applies; rule ids differ only by prefix where a rule is shared.
PACK_PREFIXES = ("AwsSolutions", "NIST.800.53.R5", "HIPAA.Security")


def suppress(
    construct: IConstruct,
    reason: str,
    *rules: str,
    applies_to: Iterable[str] | None = None,
    children: bool = False,
) -> None:
    """Suppress `rules` (full ids, e.g. "AwsSolutions-IAM5") on one construct with one reason."""
    NagSuppressions.add_resource_suppressions(
        construct,
        [
            NagPackSuppression(id=rule, reason=reason, applies_to=list(applies_to) if applies_to else None)
            for rule in rules
        ],
        apply_to_children=children,
    )


def suppress_path(stack: IConstruct, path: str, reason: str, *rules: str, children: bool = True) -> None:
    """Suppress on a construct CDK creates internally (custom resource providers), found by path."""
    NagSuppressions.add_resource_suppressions_by_path(
        stack,  # type: ignore[arg-type]
        path,
        [NagPackSuppression(id=rule, reason=reason) for rule in rules],
        apply_to_children=children,
    )


# What cdk-nag reports on the Lambda functions CDK itself creates for custom resources.
_PROVIDER_RULES = (
    "AwsSolutions-IAM4", "AwsSolutions-L1",
    "NIST.800.53.R5-LambdaConcurrency", "HIPAA.Security-LambdaConcurrency",
    "NIST.800.53.R5-LambdaDLQ", "HIPAA.Security-LambdaDLQ",
    "NIST.800.53.R5-LambdaInsideVPC", "HIPAA.Security-LambdaInsideVPC",
)  # fmt: skip


def suppress_cdk_provider(stack: IConstruct, path: str, purpose: str, *extra_rules: str) -> None:
    """Suppress the findings on a CDK-managed deploy-time provider Lambda, saying what it is for."""
    suppress_path(
        stack,
        path,
        f"CDK's {purpose} runs only at deploy time; its runtime, role and logging are managed by aws-cdk-lib.",
        *_PROVIDER_RULES,
        *extra_rules,
    )


def skip_checkov(construct: IConstruct, reason: str, *checks: str) -> None:
    """Skip checkov `checks` (e.g. "CKV_AWS_117") on the resource behind `construct`, with one reason.

    checkov reads `Metadata.checkov.skip` of each template resource; an L2 construct is resolved to
    its CloudFormation resource, and earlier skips on the same resource are kept.
    """
    resource = construct if isinstance(construct, CfnResource) else construct.node.default_child
    if not isinstance(resource, CfnResource):
        raise TypeError(f"{construct.node.path} has no CloudFormation resource to carry a checkov skip")
    skips = list((resource.get_metadata("checkov") or {}).get("skip", []))
    known = {skip["id"] for skip in skips}
    skips += [{"id": check, "comment": reason} for check in checks if check not in known]
    resource.add_metadata("checkov", {"skip": skips})


# CDK's cross-region reference providers (`cross_region_references=True`): a writer in the producing
# stack puts the values into SSM parameters in the consumer's region, a reader in the consuming stack
# resolves them. Both are Lambda handlers CDK writes as raw CfnResources while it synthesizes.
_CROSS_REGION_PROVIDERS = (
    "Custom::CrossRegionExportWriterCustomResourceProvider",
    "Custom::CrossRegionExportReaderCustomResourceProvider",
)
_CROSS_REGION_PROVIDER_SKIPS = {
    "CKV_AWS_115": "CDK's cross-region reference provider runs only when CloudFormation deploys the stack, "
    "one invocation per change; a reserved-concurrency limit would only make deploys fail.",
    "CKV_AWS_116": "CDK's cross-region reference provider is invoked synchronously by CloudFormation, which "
    "reports a failure and rolls back; a DLQ only receives asynchronous invocations.",
    "CKV_AWS_117": "CDK's cross-region reference provider reads and writes SSM parameters through the public "
    "AWS API with an IAM role scoped to /cdk/exports/<stack>/*; it reaches no private resource, so a VPC "
    "would add NAT or endpoint cost without narrowing its access.",
}


@jsii.implements(IValidation)
class _CrossRegionProviderSkips:
    """Adds the skips once CDK has created the providers.

    CDK resolves cross-region references after Aspects run and before it validates and writes the
    templates, so a construct validation is the last hook that still sees these resources.
    """

    def __init__(self, stack: Stack) -> None:
        self._stack = stack

    def validate(self) -> list[str]:
        for provider_id in _CROSS_REGION_PROVIDERS:
            provider = self._stack.node.try_find_child(provider_id)
            handler = provider.node.try_find_child("Handler") if provider else None
            if isinstance(handler, CfnResource):
                for check, reason in _CROSS_REGION_PROVIDER_SKIPS.items():
                    skip_checkov(handler, reason, check)
        return []


def skip_checkov_on_cross_region_providers(stack: Stack) -> None:
    """Give the Lambda handlers CDK adds for cross-region references their checkov skips, with reasons."""
    stack.node.add_validation(_CrossRegionProviderSkips(stack))
