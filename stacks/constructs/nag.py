"""cdk-nag helpers: suppressions always carry a reason and sit next to their resource."""

from __future__ import annotations

from collections.abc import Iterable

from cdk_nag import NagPackSuppression, NagSuppressions
from constructs import IConstruct

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
