"""The sandbox's API Gateway: what it answers by itself comes from the template's gateway responses,
models and validators, for any verb and any bytes; never a 5xx of its own, an HTML page or a dropped
connection. The handler is a stub here (tests/property drives the real one)."""

from __future__ import annotations

import http.client
import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from local.api_server import PAYLOAD_LIMIT, LocalApi, validation_errors
from local.templates import Templates, load

ALICE = "11111111-aaaa-4aaa-8aaa-111111111111"


class StubVerifier:
    def claims(self, token: str | None) -> dict[str, Any]:
        if token == "good-token":
            return {"sub": ALICE, "email_verified": True}
        raise ValueError("not a token")


class Lambda:
    """Records the proxy events; answers 200 echoing them, or what `reply` says."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.reply: Any = None

    def __call__(self, event: dict[str, Any]) -> dict[str, Any]:
        self.events.append(event)
        if isinstance(self.reply, Exception):
            raise self.reply
        if self.reply is not None:
            return self.reply  # type: ignore[no-any-return]
        return {"statusCode": 200, "headers": {"Content-Type": "application/json"}, "body": "{}"}


@pytest.fixture(scope="module")
def templates(synth: Any) -> Templates:
    return load(Path(synth.app.outdir), "Bulwark-dev")


@pytest.fixture
def api(templates: Templates) -> Iterator[tuple[LocalApi, Lambda]]:
    function = Lambda()
    local = LocalApi(
        templates, "us-east-1", "http://unused", "pool", "client", 0, invoke=function, verifier=StubVerifier()
    )
    local.start()
    try:
        yield local, function
    finally:
        local.stop()


def send(api: LocalApi, raw: bytes, *, method: str = "GET") -> tuple[int, dict[str, str], bytes]:
    """One raw HTTP exchange; a dropped connection raises (and fails the test)."""
    host, port = api.server.server_address[:2]
    with socket.create_connection((str(host), int(port)), timeout=10) as sock:
        sock.sendall(raw)
        response = http.client.HTTPResponse(sock, method=method)
        response.begin()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()


def request(
    api: LocalApi, method: str, path: str, *, body: bytes = b"", headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], Any]:
    lines = [f"{method} {path} HTTP/1.1", "Host: localhost", f"Content-Length: {len(body)}"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    raw = ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8") + body
    status, response_headers, data = send(api, raw, method=method)
    return status, response_headers, json.loads(data) if data else None


def gateway_answer(templates: Templates, kind: str) -> tuple[int, dict[str, Any]]:
    spec = templates.gateway_responses[kind]
    assert spec.status_code is not None
    return spec.status_code, json.loads(spec.templates["application/json"])


AUTH = {"Authorization": "good-token", "Content-Type": "application/json"}


@pytest.mark.parametrize(
    ("method", "path"),
    [("PUT", "/api/chat"), ("PATCH", "/api/conversations"), ("DELETE", "/api/chat"), ("HEAD", "/api/jobs"),
     ("FROBNICATE", "/api/health"), ("GET", "/api/nope"), ("GET", "/api/conversations/a/b"), ("OPTIONS", "/api/x"),
     ("GET", "/api"), ("POST", "/api/chat/extra")],
)  # fmt: skip
def test_an_unknown_method_or_path_gets_the_templates_missing_authentication_token(
    api: tuple[LocalApi, Lambda], templates: Templates, method: str, path: str
) -> None:
    local, function = api
    status, headers, body = request(local, method, path, headers=AUTH)

    expected_status, expected_body = gateway_answer(templates, "MISSING_AUTHENTICATION_TOKEN")
    assert status == expected_status == 403
    if method != "HEAD":
        assert body == expected_body and "message" in body
    assert headers["content-type"] == "application/json"
    assert function.events == []


def test_a_missing_or_garbage_token_gets_the_templates_unauthorized(
    api: tuple[LocalApi, Lambda], templates: Templates
) -> None:
    local, function = api
    for headers in ({}, {"Authorization": "garbage"}, {"Authorization": "Bearer \u00e9\u00e9"}):
        status, _, body = request(local, "POST", "/api/chat", body=b'{"message": "hi"}', headers=headers)
        assert (status, body) == gateway_answer(templates, "UNAUTHORIZED")
    assert function.events == []


@pytest.mark.parametrize(
    ("body", "fragment"),
    [(b'{"message": 5}', 'instance type (integer) does not match any allowed primitive type (allowed: [\\"string\\"])'),
     (b'{"text": "hi"}', 'object has missing required properties ([\\"message\\"])'),
     (b"", 'object has missing required properties ([\\"message\\"])'),
     (b'{"message": "hi", "x": 1}', 'object instance has properties which are not allowed by the schema: [\\"x\\"]'),
     (b'{"message": ""}', 'string \\"\\" is too short (length: 0, required minimum: 1)'),
     (b'{"message": "hi", "conversation_id": "nope"}', 'does not match input string \\"nope\\"'),
     (b"\xff\xfe{}", "Invalid UTF-8"),
     (b'{"message": "hi"', "Invalid JSON"),
     (b"[" * 2000, "nesting depth"),
     (b"1" * 5000, "Invalid JSON")],
)  # fmt: skip
def test_a_body_the_model_rejects_gets_bad_request_body_with_the_validation_error(
    api: tuple[LocalApi, Lambda], templates: Templates, body: bytes, fragment: str
) -> None:
    local, function = api
    status, _, data = send(
        local,
        b"POST /api/chat HTTP/1.1\r\nAuthorization: good-token\r\nContent-Type: application/json\r\n"
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body,
        method="POST",
    )

    expected_status, _ = gateway_answer(templates, "BAD_REQUEST_BODY")
    assert status == expected_status == 400
    assert fragment in data.decode()  # the validation error, JSON-escaped into the template as in AWS
    assert json.loads(data)["message"].startswith("invalid request body: [")
    assert function.events == []


def test_a_valid_body_reaches_the_lambda_as_a_proxy_event_with_the_verified_claims(
    api: tuple[LocalApi, Lambda],
) -> None:
    local, function = api
    status, _, _ = request(local, "POST", "/api/chat/", body=b'{"message": "hi"}', headers=AUTH)

    assert status == 200
    (event,) = function.events
    assert event["resource"] == "/chat" and event["httpMethod"] == "POST" and event["body"] == '{"message": "hi"}'
    assert event["requestContext"]["authorizer"]["claims"] == {"sub": ALICE, "email_verified": "true"}
    assert event["isBase64Encoded"] is False


def test_path_parameters_are_decoded_and_repeated_headers_keep_every_value(api: tuple[LocalApi, Lambda]) -> None:
    local, function = api
    raw = (
        b"GET /api/conversations/a%2Fb%C3%A9?x=1&x=2 HTTP/1.1\r\nAuthorization: good-token\r\n"
        b"X-Twice: one\r\nX-Twice: two\r\nContent-Length: 0\r\n\r\n"
    )
    assert send(local, raw)[0] == 200
    (event,) = function.events
    assert event["pathParameters"] == {"conversation_id": "a/b\u00e9"}
    assert event["headers"]["X-Twice"] == "two" and event["multiValueHeaders"]["X-Twice"] == ["one", "two"]
    assert event["queryStringParameters"] == {"x": "2"} and event["multiValueQueryStringParameters"] == {
        "x": ["1", "2"]
    }


def test_a_body_that_is_not_utf8_on_a_route_without_a_model_reaches_the_lambda_as_text(
    api: tuple[LocalApi, Lambda],
) -> None:
    local, function = api
    status, _, _ = request(
        local, "POST", "/api/chat", body=b'{"message": "\xff"}', headers={**AUTH, "Content-Type": "text/plain"}
    )
    assert status == 200  # no model for text/plain: API Gateway passes it through, undecodable bytes replaced
    assert function.events[0]["body"] == '{"message": "\ufffd"}'


def test_a_lambda_error_or_malformed_proxy_response_is_a_502_json(api: tuple[LocalApi, Lambda]) -> None:
    local, function = api
    for reply in (
        RuntimeError("boom"),
        {"statusCode": "200"},
        {"statusCode": 200, "body": {"not": "a string"}},
        {"statusCode": 200, "headers": {"X-Count": 5}},
        [],
    ):
        function.reply = reply
        status, _, body = request(local, "GET", "/api/conversations", headers=AUTH)
        assert (status, body) == (502, {"message": "Internal server error"})


def test_a_body_over_10_mb_gets_request_too_large(api: tuple[LocalApi, Lambda], templates: Templates) -> None:
    local, function = api
    body = b"x" * (PAYLOAD_LIMIT + 1)
    status, _, data = send(
        local,
        b"POST /api/chat HTTP/1.1\r\nAuthorization: good-token\r\n"
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body,
        method="POST",
    )
    assert (status, json.loads(data)) == gateway_answer(templates, "REQUEST_TOO_LARGE")
    assert function.events == []


@pytest.mark.parametrize(
    ("raw", "status"),
    [(b"GARBAGE\r\n\r\n", 400), (b"GET /api/health\r\n\r\n", 400), (b"GET /api/health HTTP/9.9\r\n\r\n", 505),
     (b"GET /" + b"a" * 70_000 + b" HTTP/1.1\r\n\r\n", 414),
     (b"GET /api/health HTTP/1.1\r\n" + b"X-A: b\r\n" * 150 + b"\r\n", 431),
     (b"POST /api/chat HTTP/1.1\r\nContent-Length: ten\r\n\r\n", 400),
     (b"POST /api/chat HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400)],
)  # fmt: skip
def test_requests_the_http_layer_cannot_parse_get_a_json_4xx(
    api: tuple[LocalApi, Lambda], raw: bytes, status: int
) -> None:
    local, _ = api
    got, headers, data = send(local, raw)
    assert got == status and headers["content-type"] == "application/json"
    assert json.loads(data)["message"]


def test_health_and_preflight_answer_from_the_templates_mock_integrations(api: tuple[LocalApi, Lambda]) -> None:
    local, function = api
    assert request(local, "GET", "/api/health")[::2] == (200, {"status": "ok", "region": "us-east-1"})
    status, headers, _ = request(local, "OPTIONS", "/api/conversations/abc")
    assert status == 204 and "Idempotency-Key" in headers["access-control-allow-headers"]
    assert function.events == []


def test_static_files_never_fail_on_odd_paths(api: tuple[LocalApi, Lambda]) -> None:
    local, _ = api
    for path in ("/%00", "/../../etc/passwd", "/" + "a" * 5000, "/config.json/x"):
        status, _, body = request(local, "GET", path)
        assert status == 404 and body["message"]
    assert request(local, "PUT", "/index.html")[0] == 405


def test_validation_errors_read_like_api_gateways() -> None:
    schema = {"type": "object", "required": ["a", "b"], "properties": {"a": {"enum": ["x", "y"]}}}
    assert validation_errors(schema, '{"a": "z"}') == (
        '[object has missing required properties (["b"]), '
        'instance value ("z") not found in enum (possible values: ["x","y"])]'
    )
    assert validation_errors(schema, '{"a": "x", "b": 1}') is None


def test_a_region_outage_refuses_connections_drops_answers_in_flight_and_comes_back_on_its_port(
    api: tuple[LocalApi, Lambda],
) -> None:
    import threading

    local, function = api
    port = local.port
    entered, release = threading.Event(), threading.Event()

    def slow(event: dict[str, Any]) -> dict[str, Any]:  # a request in flight when the region goes down
        entered.set()
        release.wait(30)
        return {"statusCode": 200, "body": "{}"}

    local.invoke = slow
    outcome: list[Any] = []

    def in_flight() -> None:
        try:
            outcome.append(request(local, "POST", "/api/chat", body=b'{"message": "hi"}', headers=AUTH))
        except (OSError, http.client.HTTPException) as error:
            outcome.append(error)

    thread = threading.Thread(target=in_flight)
    thread.start()
    assert entered.wait(30)
    local.go_down()
    release.set()
    thread.join(30)

    assert len(outcome) == 1 and isinstance(outcome[0], (OSError, http.client.HTTPException)), outcome
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=10).close()

    local.invoke = function
    local.come_back()
    assert local.port == port
    assert request(local, "GET", "/api/health")[0] == 200


def test_a_job_body_that_is_neither_kind_gets_api_gateways_any_of_message(
    api: tuple[LocalApi, Lambda], templates: Templates
) -> None:
    """POST /jobs takes a chat job or a workflow job (an anyOf model): API Gateway's validator names the count."""
    local, function = api
    status, _, data = request(local, "POST", "/api/jobs", body=b'{"message": 5}', headers=AUTH)
    assert status == 400
    assert data["message"] == ("invalid request body: [instance failed to match at least one required schema among 2]")
    assert function.events == []
