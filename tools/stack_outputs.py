"""A deployed stack's outputs, for the operator commands that act on it (redrive, rebuild_index, switch).

Outputs made inside a construct carry its path and a hash in their keys (JobsJobsQueueUrl1A2B3C4D), so callers
find each one by the key's prefix.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


def stack_outputs(stack: str, region: str | None, *, client: Any = None) -> dict[str, str]:
    """Every output of `stack` in `region` (CloudFormation DescribeStacks; credentials from the environment)."""
    if client is None:
        import boto3

        client = boto3.client("cloudformation", region_name=region)
    described = client.describe_stacks(StackName=stack)["Stacks"][0]
    return {output["OutputKey"]: output["OutputValue"] for output in described.get("Outputs", [])}


def outputs_by_prefix(
    stack: str, region: str | None, prefixes: Sequence[str], *, kind: str, client: Any = None
) -> tuple[str, ...]:
    """The value of the output whose key starts with each prefix, in order; exits naming what is missing
    (`kind` says which stack was expected, e.g. "an API stack")."""
    values = stack_outputs(stack, region, client=client)
    found = tuple(first_with_prefix(values, prefix) for prefix in prefixes)
    missing = [prefix for prefix, value in zip(prefixes, found, strict=True) if not value]
    if missing:
        raise SystemExit(f"stack {stack} has no {'/'.join(missing)} outputs; is it {kind}?")
    return found  # type: ignore[return-value]


def first_with_prefix(values: Mapping[str, str], prefix: str) -> str | None:
    return next((value for key, value in values.items() if key.startswith(prefix)), None)
