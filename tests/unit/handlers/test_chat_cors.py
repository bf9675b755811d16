"""CORS on the API Lambda's answers: headers for the web UI's origin only, never "*"."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from handlers import chat as chat_handler
from handlers.settings import Settings
from local.apigw import response_headers, rest_event
from local.lambda_context import LocalContext
from local.resources import create_conversations_table

SITE = "https://d1234abcd.cloudfront.net"
ALICE = "11111111-aaaa-4aaa-8aaa-111111111111"


@pytest.fixture
def dynamodb() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        create_conversations_table(client, Settings.from_env().table_name)
        yield client


def list_conversations(dynamodb: Any, *, allowed_origin: str | None, origin: str | None) -> dict[str, str]:
    settings = Settings.from_env().but(
        jobs_table_name=None, jobs_queue_url=None, cache_table_name=None, allowed_origin=allowed_origin
    )
    handler = chat_handler.bootstrap(settings, dynamodb=dynamodb, bedrock_factory=lambda region, config: None)
    headers = {"Origin": origin} if origin else {}
    event = rest_event(method="GET", path="/conversations", resource="/conversations", headers=headers,
                       claims={"sub": ALICE})  # fmt: skip
    response = handler(event, LocalContext(function_name="chat", timeout_s=28))
    assert response["statusCode"] == 200
    return {name.lower(): value for name, value in response_headers(response).items()}


def test_the_sites_origin_gets_cors_headers_naming_it(dynamodb: Any) -> None:
    headers = list_conversations(dynamodb, allowed_origin=SITE, origin=SITE)
    assert headers["access-control-allow-origin"] == SITE


@pytest.mark.parametrize("origin", ["https://evil.example", "null", None])
def test_any_other_origin_gets_no_cors_headers(dynamodb: Any, origin: str | None) -> None:
    headers = list_conversations(dynamodb, allowed_origin=SITE, origin=origin)
    assert "access-control-allow-origin" not in headers


def test_without_a_configured_origin_there_are_no_cors_headers_at_all(dynamodb: Any) -> None:
    headers = list_conversations(dynamodb, allowed_origin=None, origin="https://evil.example")
    assert not any(name.startswith("access-control-") for name in headers)
