"""Test doubles and set-up that several test modules share: one definition each, imported where used.

boto3 and moto are imported where they are used, so the pure core's tests import neither.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from adapters.bedrock import BedrockTarget


class MemoryCache:
    """The answer cache (core.ports.AnswerCache) in a dict; entries never expire."""

    def __init__(self) -> None:
        self.items: dict[str, str] = {}

    def get(self, key: str) -> str | None:
        return self.items.get(key)

    def put(self, key: str, text: str, ttl_s: int) -> None:
        self.items[key] = text


def emulator_target(emulator: Any, *, model_id: str, region: str, max_tokens: int, **options: Any) -> BedrockTarget:
    """The production BedrockTarget on a loopback Bedrock emulator (its `url`), with dummy credentials; its client
    made by the target's own factory, so the adapter's botocore config (timeouts, retries) is the one in use."""
    import botocore.session

    from adapters.bedrock import BedrockTarget

    session = botocore.session.get_session()
    return BedrockTarget(
        client_factory=lambda config: session.create_client(
            "bedrock-runtime", region_name=region, endpoint_url=emulator.url,
            aws_access_key_id="emulator", aws_secret_access_key="emulator", config=config,
        ),
        model_id=model_id, region=region, max_tokens=max_tokens, **options,
    )  # fmt: skip


def emulator_client(service: str, emulator: Any, region: str, **config: Any) -> Any:
    """A boto3 client of a loopback emulator (its `url`), with dummy credentials and one attempt per call,
    so a test sees each injected fault instead of botocore's retry of it."""
    import boto3
    from botocore.config import Config

    return boto3.client(
        service,
        region_name=region,
        endpoint_url=emulator.url,
        aws_access_key_id="emulator",
        aws_secret_access_key="emulator",
        config=Config(retries={"total_max_attempts": 1}, **config),
    )


@pytest.fixture(name="aws")  # imported as fixture_aws, so the tests' `aws` arguments shadow no import
def fixture_aws() -> Iterator[dict[str, Any]]:
    """moto's DynamoDB and Secrets Manager clients, the ones the chat service's composition root takes."""
    import boto3
    from moto import mock_aws

    with mock_aws():
        yield {
            "dynamodb": boto3.client("dynamodb", region_name="us-east-1"),
            "secrets": boto3.client("secretsmanager", region_name="us-east-1"),
        }
