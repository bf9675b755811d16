"""Provider credentials from Secrets Manager (moto): a JSON object of constructor arguments, never echoed."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from adapters.secrets import SecretFormatError, provider_kwargs, secret_region


@pytest.fixture
def secrets() -> Iterator[Any]:
    with mock_aws():
        yield boto3.client("secretsmanager", region_name="us-east-1")


def test_the_secrets_json_object_becomes_constructor_arguments(secrets: Any) -> None:
    arn = secrets.create_secret(Name="bulwark/openai", SecretString='{"api_key": "sk-test", "organization": "o"}')[
        "ARN"
    ]

    assert provider_kwargs(secrets, arn) == {"api_key": "sk-test", "organization": "o"}
    assert provider_kwargs(secrets, "bulwark/openai") == {"api_key": "sk-test", "organization": "o"}  # by name


@pytest.mark.parametrize("value", ["sk-plain-string", '["sk-in-a-list"]', "{not json"])
def test_a_secret_that_is_not_a_json_object_is_refused_without_echoing_it(secrets: Any, value: str) -> None:
    secrets.create_secret(Name="bad", SecretString=value)

    with pytest.raises(SecretFormatError) as raised:
        provider_kwargs(secrets, "bad")

    assert "sk-" not in str(raised.value) and "JSON object" in str(raised.value)


def test_a_missing_secret_is_the_services_error(secrets: Any) -> None:
    with pytest.raises(secrets.exceptions.ResourceNotFoundException):
        provider_kwargs(secrets, "nowhere")


def test_the_secrets_region_comes_from_its_arn() -> None:
    assert secret_region("arn:aws:secretsmanager:eu-west-1:123456789012:secret:bulwark/openai-AbCdEf") == "eu-west-1"
    assert secret_region("bulwark/openai") is None
