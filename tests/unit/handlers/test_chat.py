"""The chat API Lambda, end to end in-process: moto DynamoDB, a botocore Stubber for Bedrock."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber
from moto import mock_aws

from handlers import chat as chat_handler
from handlers.settings import Settings
from local.apigw import response_headers, rest_event
from local.lambda_context import LocalContext
from local.resources import create_conversations_table

ALICE = "11111111-aaaa-4aaa-8aaa-111111111111"
BOB = "22222222-bbbb-4bbb-8bbb-222222222222"
MODEL_ID = "us.amazon.nova-lite-v1:0"


def FakeContext() -> LocalContext:
    return LocalContext(function_name="chat", timeout_s=28)


def api_event(method: str, path: str, *, body: str | None = None, sub: str | None = ALICE) -> dict[str, Any]:
    """An API Gateway REST proxy event as the Cognito authorizer hands it to Lambda."""
    parts = path.strip("/").split("/")
    params, resource = None, path
    if len(parts) == 2 and parts[0] in ("conversations", "jobs"):
        name = "conversation_id" if parts[0] == "conversations" else "job_id"
        params, resource = {name: parts[1]}, f"/{parts[0]}/{{{name}}}"
    claims = {"sub": sub, "email": "user@example.com"} if sub else None
    return rest_event(
        method=method, path=path, resource=resource, path_parameters=params,
        headers={"Content-Type": "application/json"}, body=body, claims=claims,
    )  # fmt: skip


class Api:
    """Calls the real handler and keeps the Bedrock stubber at hand."""

    def __init__(self, stubber: Stubber, dynamodb: Any, bedrock: Any) -> None:
        self.bedrock = stubber
        self.dynamodb = dynamodb
        self._client = bedrock
        self.configure()

    def configure(self, **changes: Any) -> None:
        """A fresh API Lambda environment (no jobs, no answer cache), settings changed by `changes`."""
        settings = Settings.from_env().but(jobs_table_name=None, jobs_queue_url=None, cache_table_name=None)
        settings = settings.but(**changes)
        self.handler = chat_handler.bootstrap(
            settings, dynamodb=self.dynamodb, bedrock_factory=lambda region, config: self._client
        )

    def call(self, method: str, path: str, *, body: Any = None, raw: str | None = None, sub: str | None = ALICE):
        text = raw if raw is not None else (json.dumps(body) if body is not None else None)
        response = self.handler(api_event(method, path, body=text, sub=sub), FakeContext())
        payload = json.loads(response["body"]) if response.get("body") else None
        return response["statusCode"], payload, response_headers(response)

    def expect_model(self, answer: str, *, messages: Any = ANY, input_tokens: int = 12, output_tokens: int = 7):
        self.bedrock.add_response(
            "converse",
            {
                "output": {"message": {"role": "assistant", "content": [{"text": answer}]}},
                "stopReason": "end_turn",
                "usage": {"inputTokens": input_tokens, "outputTokens": output_tokens, "totalTokens": 19},
                "metrics": {"latencyMs": 42},
            },
            {
                "modelId": MODEL_ID,
                "system": ANY,
                "messages": messages,
                "inferenceConfig": {"maxTokens": 512},
            },
        )


@pytest.fixture
def api() -> Iterator[Api]:
    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name="us-east-1")
        create_conversations_table(dynamodb, Settings.from_env().table_name)
        bedrock = boto3.client("bedrock-runtime", region_name="us-east-1")
        with Stubber(bedrock) as stubber:
            yield Api(stubber, dynamodb, bedrock)
            stubber.assert_no_pending_responses()


def test_a_normal_turn_answers_and_is_stored(api: Api) -> None:
    api.expect_model("Paris is the capital of France.")

    status, body, _ = api.call("POST", "/chat", body={"message": "What is the capital of France?"})

    assert status == 200
    assert body["answer"] == "Paris is the capital of France."
    assert body["usage"] == {"input_tokens": 12, "output_tokens": 7, "total_tokens": 19}
    assert body["target"] == {"model_id": MODEL_ID, "region": "us-east-1"}
    assert body["turn"] == 0 and body["degraded"] is False
    uuid.UUID(body["conversation_id"])
    status, stored, _ = api.call("GET", f"/conversations/{body['conversation_id']}")
    assert status == 200
    assert stored["turn_count"] == 1
    assert stored["title"] == "What is the capital of France?"
    assert [(t["user"], t["assistant"]) for t in stored["turns"]] == [
        ("What is the capital of France?", "Paris is the capital of France.")
    ]


def test_history_is_carried_into_the_next_call(api: Api) -> None:
    api.expect_model("Hello Ada.")
    _, first, _ = api.call("POST", "/chat", body={"message": "My name is Ada."})
    conversation_id = first["conversation_id"]
    api.expect_model(
        "Your name is Ada.",
        messages=[
            {"role": "user", "content": [{"text": "My name is Ada."}]},
            {"role": "assistant", "content": [{"text": "Hello Ada."}]},
            {"role": "user", "content": [{"text": "What is my name?"}]},
        ],
    )

    status, second, _ = api.call(
        "POST", "/chat", body={"message": "What is my name?", "conversation_id": conversation_id}
    )

    assert status == 200
    assert second["conversation_id"] == conversation_id
    assert second["turn"] == 1
    _, listing, _ = api.call("GET", "/conversations")
    assert [c["turn_count"] for c in listing["conversations"]] == [2]


def test_history_sent_to_the_model_is_capped_at_the_configured_turns(api: Api) -> None:
    api.expect_model("a0")
    _, first, _ = api.call("POST", "/chat", body={"message": "q0"})
    cid = first["conversation_id"]
    for i in range(1, 4):
        api.expect_model(f"a{i}")
        api.call("POST", "/chat", body={"message": f"q{i}", "conversation_id": cid})
    # MAX_HISTORY_TURNS=3: only turns 1..3 go with the fifth question.
    expected = [
        {"role": role, "content": [{"text": f"{prefix}{i}"}]}
        for i in range(1, 4)
        for role, prefix in (("user", "q"), ("assistant", "a"))
    ] + [{"role": "user", "content": [{"text": "q4"}]}]
    api.expect_model("a4", messages=expected)

    status, body, _ = api.call("POST", "/chat", body={"message": "q4", "conversation_id": cid})

    assert status == 200 and body["turn"] == 4


@pytest.mark.parametrize(
    ("raw", "status", "fragment"),
    [
        ('{"message": "hi"', 400, "not valid JSON"),
        ("", 400, "body is empty"),
        ("[1, 2]", 400, "must be a JSON object"),
        ("{}", 400, "message is required"),
        ('{"message": 42}', 400, "message must be a string, got a number"),
        ('{"message": "   "}', 400, "must not be empty"),
        ('{"message": "hi", "conversation_id": 7}', 400, "conversation_id must be a string"),
        ('{"message": "hi", "conversation_id": "not-a-uuid"}', 400, "conversation_id must be a lowercase UUID"),
        ('{"message": "hi", "extra": true}', 400, "1 unknown field(s); allowed: message, conversation_id"),
        (json.dumps({"message": "x" * 201}), 413, "the limit is 200"),
        (json.dumps({"message": "x" * 3000}), 413, "the limit is 2048"),
    ],
)
def test_bad_input_gets_a_4xx_with_a_clear_message(api: Api, raw: str, status: int, fragment: str) -> None:
    got, body, _ = api.call("POST", "/chat", raw=raw)

    assert got == status
    assert fragment in body["message"]


def test_unknown_conversation_is_404(api: Api) -> None:
    missing = str(uuid.uuid4())

    status, body, _ = api.call("POST", "/chat", body={"message": "hi", "conversation_id": missing})

    assert status == 404
    assert missing in body["message"]


def test_another_users_conversation_is_404_on_every_route(api: Api) -> None:
    api.expect_model("secret answer")
    _, alice, _ = api.call("POST", "/chat", body={"message": "alice's secret"})
    cid = alice["conversation_id"]

    assert api.call("POST", "/chat", body={"message": "hi", "conversation_id": cid}, sub=BOB)[0] == 404
    assert api.call("GET", f"/conversations/{cid}", sub=BOB)[0] == 404
    assert api.call("DELETE", f"/conversations/{cid}", sub=BOB)[0] == 404
    assert api.call("GET", "/conversations", sub=BOB)[1] == {"conversations": []}
    # Alice's data is untouched by Bob's attempts.
    assert api.call("GET", f"/conversations/{cid}")[1]["turn_count"] == 1


def test_missing_authorizer_claim_is_401(api: Api) -> None:
    status, body, _ = api.call("POST", "/chat", body={"message": "hi"}, sub=None)

    assert status == 401
    assert "sign in" in body["message"]


def test_delete_removes_the_conversation_and_its_turns(api: Api) -> None:
    api.expect_model("one")
    _, first, _ = api.call("POST", "/chat", body={"message": "first"})
    cid = first["conversation_id"]

    status, _, _ = api.call("DELETE", f"/conversations/{cid}")

    assert status == 204
    assert api.call("GET", f"/conversations/{cid}")[0] == 404
    left = api.dynamodb.scan(TableName="conversations-test")["Items"]
    assert left == []


def test_malformed_conversation_id_in_path_is_400(api: Api) -> None:
    status, body, _ = api.call("GET", "/conversations/DROP-TABLE")

    assert status == 400
    assert "UUID" in body["message"]


@pytest.mark.parametrize("code", ["ServiceUnavailableException", "AccessDeniedException"])
def test_model_failures_give_an_honest_degraded_answer_and_store_nothing(api: Api, code: str) -> None:
    # One target, no cache: the gateway retries transient codes within its budget (empty at
    # start), then answers degraded. The Stubber answers before any HTTP, one error per call.
    api.bedrock.add_client_error("converse", service_error_code=code, service_message="boom", http_status_code=400)

    status, body, _ = api.call("POST", "/chat", body={"message": "hi"})

    assert status == 200
    assert body["degraded"] is True and code in body["degraded_reason"]
    assert body["target"] == {"model_id": "none", "region": "-"}
    assert body["turn"] is None and body["conversation_id"] is None
    assert api.dynamodb.scan(TableName="conversations-test")["Items"] == []


def test_a_throttled_model_is_back_pressure_429_with_retry_after_and_stores_nothing(api: Api) -> None:
    # Throttling says the model is full, not failing: the request is refused at once to be retried later.
    api.bedrock.add_client_error(
        "converse", service_error_code="ThrottlingException", service_message="slow down", http_status_code=400
    )

    status, body, headers = api.call("POST", "/chat", body={"message": "hi"})

    assert status == 429 and int(headers["Retry-After"]) >= 1
    assert "at capacity" in body["message"] and "slow down" not in body["message"]
    assert api.dynamodb.scan(TableName="conversations-test")["Items"] == []


def test_validation_error_is_a_400_and_not_retried(api: Api) -> None:
    api.bedrock.add_client_error(
        "converse", service_error_code="ValidationException", service_message="bad input", http_status_code=400
    )

    status, body, _ = api.call("POST", "/chat", body={"message": "hi"})

    assert status == 400 and "rejected" in body["message"]


def test_degraded_can_be_configured_as_503_with_retry_after(api: Api) -> None:
    api.configure(degraded_status=503)
    api.bedrock.add_client_error("converse", service_error_code="ModelErrorException", http_status_code=424)

    status, body, headers = api.call("POST", "/chat", body={"message": "hi"})

    assert status == 503 and int(headers["Retry-After"]) > 0
    assert "no model could answer" in body["message"]


def test_unknown_route_is_404_not_5xx(api: Api) -> None:
    status, _, _ = api.call("GET", "/nope")

    assert status == 404
