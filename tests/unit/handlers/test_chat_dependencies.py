"""The chat API when DynamoDB fails after the client's retries: 503 + Retry-After with a sentence the user
can act on, never a 500; and an answer the model already gave is returned even when its turn is not stored."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from botocore.awsrequest import AWSResponse
from botocore.exceptions import EndpointConnectionError

from tests.unit.handlers.test_chat import Api, api  # noqa: F401 - the fixture


def fail(target: Api, operation: str, code: str | None, *, status: int = 400, times: int = 1) -> list[int]:
    """The next `times` calls of `operation` fail with `code` (None: the endpoint cannot be reached)."""
    calls: list[int] = []

    def handler(**_: Any) -> Any:
        if len(calls) >= times:
            return None
        calls.append(1)
        if code is None:
            raise EndpointConnectionError(endpoint_url="http://dynamodb.local")
        return AWSResponse("", status, {}, None), {
            "Error": {"Code": code, "Message": "injected"},
            "ResponseMetadata": {"HTTPStatusCode": status},
        }

    event: Callable[..., Any] = handler
    target.dynamodb.meta.events.register_first(f"before-call.dynamodb.{operation}", event)
    return calls


def test_a_throttled_history_read_is_503_with_retry_after_and_the_model_is_not_called(api: Api) -> None:  # noqa: F811
    api.expect_model("Hello Ada.")
    _, first, _ = api.call("POST", "/chat", body={"message": "My name is Ada."})
    fail(api, "GetItem", "ProvisionedThroughputExceededException")

    status, body, headers = api.call(
        "POST", "/chat", body={"message": "What is my name?", "conversation_id": first["conversation_id"]}
    )

    assert status == 503 and headers["Retry-After"] == "2"
    assert body["message"] == (
        "could not read your conversation: DynamoDB (the conversation store) is throttling requests right now; "
        "try again in 2 s"
    )  # the stubber holds no second model answer: the model was not called


def test_a_turn_that_cannot_be_stored_is_answered_and_marked_not_saved(api: Api) -> None:  # noqa: F811
    api.expect_model("Paris is the capital of France.")
    fail(api, "TransactWriteItems", "InternalServerError", status=500)

    status, body, _ = api.call("POST", "/chat", body={"message": "What is the capital of France?"})

    assert status == 200 and body["answer"] == "Paris is the capital of France."
    assert body["saved"] is False and body["turn"] is None and body["conversation_id"] is None
    assert body["save_error"].startswith("could not save this turn: DynamoDB (the conversation store) failed")
    assert api.call("GET", "/conversations")[1] == {"conversations": []}


def test_listing_when_dynamodb_cannot_be_reached_is_503_with_a_longer_retry_after(api: Api) -> None:  # noqa: F811
    fail(api, "Query", None)

    status, body, headers = api.call("GET", "/conversations")

    assert status == 503 and headers["Retry-After"] == "5"
    assert (
        body["message"].startswith("could not list your conversations: DynamoDB")
        and "did not answer" in body["message"]
    )
    assert api.call("GET", "/conversations")[0] == 200  # the next request, once it answers again


def test_a_configuration_fault_stays_a_500_with_a_reference(api: Api) -> None:  # noqa: F811
    fail(api, "Query", "AccessDeniedException")

    status, body, _ = api.call("GET", "/conversations")

    assert status == 500 and "quote reference" in body["message"]
