"""GET /health/deep through the real chat handler on moto: public, no user data, 503 + Retry-After when a
dependency (table, queue) is down or every model breaker of this execution environment is open."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from handlers import chat as chat_handler
from handlers.settings import Settings
from local.apigw import response_headers, rest_event
from local.lambda_context import LocalContext
from local.resources import create_conversations_table, provision_queues

ALICE = "11111111-aaaa-4aaa-8aaa-111111111111"


class Region:
    """One region's chat Lambda on moto; `handler()` is a fresh execution environment (fresh cache)."""

    def __init__(self) -> None:
        self.dynamodb = boto3.client("dynamodb", region_name="us-east-1")
        self.sqs = boto3.client("sqs", region_name="us-east-1")
        self.bedrock = boto3.client("bedrock-runtime", region_name="us-east-1")
        self.stubber = Stubber(self.bedrock)
        self.stubber.activate()
        settings = Settings.from_env().but(cache_table_name=None)
        create_conversations_table(self.dynamodb, settings.table_name)
        queue_url, _, _ = provision_queues(self.sqs, visibility_s=720, max_receives=4)
        self.settings = settings.but(jobs_queue_url=queue_url)
        self.handler = self.environment()

    def environment(self) -> Any:
        return chat_handler.bootstrap(
            self.settings, dynamodb=self.dynamodb, sqs=self.sqs, bedrock_factory=lambda region, config: self.bedrock
        )

    def call(self, method: str, path: str, *, body: Any = None, sub: str | None = None) -> tuple[int, Any, dict]:
        claims = {"sub": sub} if sub else None
        event = rest_event(
            method=method, path=path, resource=path, headers={"Content-Type": "application/json"},
            body=json.dumps(body) if body is not None else None, claims=claims,
        )  # fmt: skip
        response = self.handler(event, LocalContext(function_name="chat", timeout_s=28))
        return response["statusCode"], json.loads(response["body"]), response_headers(response)


@pytest.fixture
def region() -> Iterator[Region]:
    with mock_aws():
        yield Region()


def test_a_healthy_region_answers_200_to_an_anonymous_probe(region: Region) -> None:
    status, body, headers = region.call("GET", "/health/deep")  # no Cognito claims: the route is public

    assert status == 200
    assert body["status"] == "ok" and body["region"] == "us-east-1"
    assert body["checks"] == {"dynamodb": "ok", "queue": "ok", "models": "ok"}
    assert body["breakers"] == ["closed"]
    assert headers["Cache-Control"] == "no-store" and "Retry-After" not in headers
    assert set(body) == {"status", "region", "checks", "breakers", "age_s"}  # nothing about users or resources


def test_a_lost_table_is_503_with_retry_after_and_no_resource_names(region: Region) -> None:
    region.dynamodb.update_table(TableName=region.settings.table_name, DeletionProtectionEnabled=False)
    region.dynamodb.delete_table(TableName=region.settings.table_name)
    region.handler = region.environment()

    status, body, headers = region.call("GET", "/health/deep")

    assert status == 503 and headers["Retry-After"] == "5"
    assert body["status"] == "unavailable" and body["checks"]["dynamodb"] == "unavailable"
    assert body["checks"]["queue"] == "ok"
    assert region.settings.table_name not in json.dumps(body)


def test_a_lost_queue_is_503(region: Region) -> None:
    region.sqs.delete_queue(QueueUrl=region.settings.jobs_queue_url)

    status, body, _ = region.call("GET", "/health/deep")

    assert status == 503 and body["checks"]["queue"] == "unavailable" and body["checks"]["dynamodb"] == "ok"


def test_every_breaker_open_in_this_environment_is_503(region: Region) -> None:
    # Five model errors in a row open the only target's breaker (the resilience contract).
    for _ in range(5):
        region.stubber.add_client_error("converse", service_error_code="ModelErrorException", http_status_code=424)
        status, answer, _ = region.call("POST", "/chat", body={"message": "hello"}, sub=ALICE)
        assert status == 200 and answer["degraded"] is True

    status, body, headers = region.call("GET", "/health/deep")

    assert status == 503 and "Retry-After" in headers
    assert body["breakers"] == ["open"] and body["checks"]["models"] == "unavailable"
    assert "hello" not in json.dumps(body)
