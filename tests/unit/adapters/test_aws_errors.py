"""What the adapters make of DynamoDB and SQS failures that outlast botocore's retries: throttling, 5xx,
timeouts and lost connections are DependencyUnavailable (503 + Retry-After); the rest passes through."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from adapters.answer_cache import DynamoAnswerCache
from adapters.dynamodb import DynamoConversationStore
from adapters.jobs import DynamoJobStore, SqsJobQueue
from core.errors import Conflict, DependencyUnavailable
from core.models import TargetRef, Turn, Usage
from handlers.wiring import DATA_MAX_ATTEMPTS, data_client_config

TURN = Turn(
    index=0, user="q", assistant="a", created_at="2026-11-21T00:00:00.000+00:00",
    target=TargetRef(model_id="m", region="us-east-1"), usage=Usage(input_tokens=1, output_tokens=1),
)  # fmt: skip


@pytest.fixture
def dynamodb() -> Iterator[tuple[Any, Stubber]]:
    client = boto3.client("dynamodb", region_name="us-east-1")
    with Stubber(client) as stubber:
        yield client, stubber


@pytest.mark.parametrize(
    ("code", "status", "retry_after"),
    [
        ("ProvisionedThroughputExceededException", 400, 2),
        ("ThrottlingException", 400, 2),
        ("RequestLimitExceeded", 400, 2),
        ("InternalServerError", 500, 2),
        ("ServiceUnavailable", 503, 2),
    ],
)
def test_throttling_and_5xx_are_dependency_unavailable_with_retry_after(
    dynamodb: tuple[Any, Stubber], code: str, status: int, retry_after: int
) -> None:
    client, stubber = dynamodb
    stubber.add_client_error("get_item", service_error_code=code, http_status_code=status)

    with pytest.raises(DependencyUnavailable) as raised:
        DynamoConversationStore(client=client, table_name="t").get("u", "c")

    assert raised.value.status == 503 and raised.value.retry_after == retry_after
    assert raised.value.message.startswith("could not read your conversation: DynamoDB")
    assert f"try again in {retry_after} s" in raised.value.message


def test_a_configuration_fault_is_not_hidden_as_unavailable(dynamodb: tuple[Any, Stubber]) -> None:
    client, stubber = dynamodb
    stubber.add_client_error("get_item", service_error_code="AccessDeniedException", http_status_code=400)

    with pytest.raises(ClientError):  # a 500 with a reference in the logs: someone must fix the grants
        DynamoConversationStore(client=client, table_name="t").get("u", "c")


@pytest.mark.parametrize(
    ("reasons", "error"),
    [
        ([{"Code": "None"}, {"Code": "ThrottlingError"}], DependencyUnavailable),
        ([{"Code": "ConditionalCheckFailed"}, {"Code": "None"}], Conflict),
        ([{"Code": "TransactionConflict"}, {"Code": "None"}], Conflict),
    ],
)
def test_a_cancelled_turn_write_is_a_conflict_unless_a_throttle_cancelled_it(
    dynamodb: tuple[Any, Stubber], reasons: list[dict[str, str]], error: type[Exception]
) -> None:
    client, stubber = dynamodb
    stubber.add_client_error(
        "transact_write_items",
        service_error_code="TransactionCanceledException",
        http_status_code=400,
        modeled_fields={"CancellationReasons": reasons},
    )

    with pytest.raises(error):
        DynamoConversationStore(client=client, table_name="t").append_turn(
            "u", "c", expected_turns=0, turn=TURN, title="t"
        )


def test_the_jobs_table_and_the_answer_cache_translate_too(dynamodb: tuple[Any, Stubber]) -> None:
    client, stubber = dynamodb
    stubber.add_client_error("update_item", service_error_code="InternalServerError", http_status_code=500)
    stubber.add_client_error("get_item", service_error_code="ThrottlingException", http_status_code=400)

    with pytest.raises(DependencyUnavailable, match="could not update the job: DynamoDB"):
        DynamoJobStore(client=client, table_name="jobs").finish("u", "j", {"answer": "a"}, ttl_s=60)
    with pytest.raises(DependencyUnavailable, match="could not read the answer cache"):
        DynamoAnswerCache(client=client, table_name="cache").get("k")


@pytest.mark.parametrize(("code", "status"), [("RequestThrottled", 400), ("InternalError", 500)])
def test_sqs_failures_are_dependency_unavailable(code: str, status: int) -> None:
    client = boto3.client("sqs", region_name="us-east-1")
    with Stubber(client) as stubber:
        stubber.add_client_error("send_message", service_error_code=code, http_status_code=status)

        with pytest.raises(DependencyUnavailable, match="could not queue the job: SQS"):
            SqsJobQueue(client=client, queue_url="https://sqs.us-east-1.amazonaws.com/1/q").send({"job_id": "j"})


# --- through botocore's real retry layer, against endpoints that misbehave --------------------------------
class _Endpoint:
    """A loopback endpoint that answers every request with a DynamoDB 500, counting the requests."""

    def __init__(self) -> None:
        self.requests = 0
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                endpoint.requests += 1
                body = json.dumps({"__type": "com.amazonaws.dynamodb.v20120810#InternalServerError", "message": "x"})
                self.send_response(500)
                self.send_header("Content-Type", "application/x-amz-json-1.0")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body.encode())

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def test_a_5xx_is_retried_by_botocore_as_configured_then_answered_as_unavailable() -> None:
    endpoint = _Endpoint()
    try:
        client = boto3.client(
            "dynamodb", region_name="us-east-1", endpoint_url=endpoint.url, config=data_client_config()
        )

        with pytest.raises(DependencyUnavailable, match="DynamoDB"):
            DynamoConversationStore(client=client, table_name="t").get("u", "c")

        assert endpoint.requests == DATA_MAX_ATTEMPTS  # one retry layer: botocore's, with its attempts
    finally:
        endpoint.server.shutdown()
        endpoint.server.server_close()


def test_a_timeout_and_a_refused_connection_are_unavailable_with_a_longer_retry_after() -> None:
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)  # accepts connections, never answers
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    closed_port = closed.getsockname()[1]
    closed.close()  # nothing listens there
    quick = Config(retries={"mode": "standard", "max_attempts": 2}, connect_timeout=0.2, read_timeout=0.2)
    try:
        for port in (silent.getsockname()[1], closed_port):
            client = boto3.client(
                "dynamodb", region_name="us-east-1", endpoint_url=f"http://127.0.0.1:{port}", config=quick
            )
            with pytest.raises(DependencyUnavailable, match="did not answer in time") as raised:
                DynamoConversationStore(client=client, table_name="t").list("u")
            assert raised.value.retry_after == 5
    finally:
        silent.close()
