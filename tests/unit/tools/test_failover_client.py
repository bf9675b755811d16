"""tools/failover_client.py against two real local HTTP servers (one per 'region'), with a fake clock."""

from __future__ import annotations

import json
import socket
import threading
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tools.failover_client import AllEndpointsFailed, FailoverClient, _retry_after_seconds


class Region:
    """A local HTTP server whose answers the test sets: (status, headers, body) for the API and /health."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.api: tuple[int, dict[str, str], Any] = (200, {}, {"region": name})
        self.health = 200
        self.calls: list[tuple[str, str, Any, dict[str, str]]] = []
        region = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # keep test output quiet
                pass

            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                body = json.loads(raw) if raw else None
                region.calls.append((self.command, self.path, body, dict(self.headers)))
                if self.path == "/prod/health":
                    status, headers, payload = region.health, {}, {"ok": region.health == 200}
                else:
                    status, headers, payload = region.api
                data = payload.encode() if isinstance(payload, str) else json.dumps(payload).encode()
                self.send_response(status)
                content_type = "text/plain" if isinstance(payload, str) else "application/json"
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                for key, value in headers.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_DELETE = _answer

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/prod"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def api_calls(self) -> list[tuple[str, str, Any, dict[str, str]]]:
        return [call for call in self.calls if not call[1].endswith("/health")]

    def health_calls(self) -> int:
        return sum(1 for call in self.calls if call[1].endswith("/health"))

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def regions() -> Iterator[tuple[Region, Region]]:
    primary, dr = Region("primary"), Region("dr")
    yield primary, dr
    primary.stop()
    dr.stop()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def unused_url() -> str:
    with socket.socket() as sock:  # a port nothing listens on: connection refused
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/prod"


def client_for(regions: tuple[Region, Region], clock: FakeClock, **kwargs: Any) -> FailoverClient:
    return FailoverClient([regions[0].url, regions[1].url], timeout_s=5, clock=clock, **kwargs)


def test_healthy_primary_answers_without_probes_and_sends_body_and_headers(regions, clock) -> None:
    primary, dr = regions
    client = client_for(regions, clock)

    response = client.request("POST", "/chat", body={"message": "hi"}, headers={"Authorization": "token"})

    assert (response.status, response.body, response.endpoint) == (200, {"region": "primary"}, primary.url)
    assert response.headers["content-type"] == "application/json"
    method, path, body, headers = primary.calls[0]
    assert (method, path, body, headers["Authorization"]) == ("POST", "/prod/chat", {"message": "hi"}, "token")
    assert primary.health_calls() == 0 and dr.calls == []


def test_by_default_a_request_outlasts_api_gateways_integration_timeout(regions, clock, monkeypatch) -> None:
    # A healthy region may take up to API Gateway's 29 s to answer /chat: giving up sooner would send the same
    # request to the next region while the first is still answering it (a duplicate turn).
    timeouts: list[float] = []
    real = urllib.request.urlopen

    def spy(request: Any, *, timeout: float) -> Any:
        timeouts.append(timeout)
        return real(request, timeout=timeout)

    monkeypatch.setattr(urllib.request, "urlopen", spy)
    client = FailoverClient([regions[0].url, regions[1].url], clock=clock)

    assert client.request("POST", "/chat", body={"message": "hi"}).status == 200
    assert timeouts and all(timeout > 29 for timeout in timeouts)


def test_5xx_moves_to_the_next_region_after_its_health_probe(regions, clock) -> None:
    primary, dr = regions
    primary.api = (503, {"Retry-After": "7"}, {"message": "down"})
    client = client_for(regions, clock)

    response = client.request("POST", "/chat", body={"message": "hi"})

    assert (response.status, response.endpoint) == (200, dr.url)
    assert dr.health_calls() == 1 and len(dr.api_calls()) == 1
    assert client.parked() == {primary.url: pytest.approx(7)}


def test_4xx_is_the_answer_and_never_fails_over(regions, clock) -> None:
    primary, dr = regions
    for status in (400, 401, 404, 429):
        primary.api = (status, {"Retry-After": "3"}, {"message": "no"})
        response = client_for(regions, clock).request("POST", "/chat", body={})
        assert (response.status, response.endpoint, response.body) == (status, primary.url, {"message": "no"})
    assert dr.calls == []


def test_connection_error_fails_over(regions, clock) -> None:
    _, dr = regions
    client = FailoverClient([unused_url(), dr.url], timeout_s=5, clock=clock, cooldown_s=30)

    response = client.request("GET", "/conversations")

    assert (response.status, response.endpoint) == (200, dr.url)
    assert list(client.parked().values()) == [pytest.approx(30)]


def test_retry_after_is_honoured_then_the_primary_is_probed_before_it_takes_traffic_back(regions, clock) -> None:
    primary, dr = regions
    primary.api = (503, {"Retry-After": "10"}, {"message": "down"})
    client = client_for(regions, clock)
    client.request("POST", "/chat", body={})
    primary.calls.clear()

    # WHEN: inside the Retry-After window the primary is not contacted at all.
    clock.now += 9
    assert client.request("POST", "/chat", body={}).endpoint == dr.url
    assert primary.calls == []

    # WHEN: the window has passed but the primary's probe fails, the DR region keeps the traffic.
    clock.now += 2
    primary.health = 503
    assert client.request("POST", "/chat", body={}).endpoint == dr.url
    assert primary.health_calls() == 1 and primary.api_calls() == []

    # WHEN: the primary is healthy again (after the cool-down of its failed probe), it gets traffic back.
    primary.health, primary.api = 200, (200, {}, {"region": "primary"})
    clock.now += 30
    response = client.request("POST", "/chat", body={})
    assert (response.endpoint, response.body) == (primary.url, {"region": "primary"})
    assert primary.health_calls() == 2
    # AND: once trusted, no further probes.
    client.request("POST", "/chat", body={})
    assert primary.health_calls() == 2


def test_all_regions_failing_raises_with_the_last_answer_and_the_wait(regions, clock) -> None:
    primary, dr = regions
    primary.api = (500, {}, {"message": "bug"})
    dr.api = (503, {"Retry-After": "4"}, {"message": "shedding"})
    client = client_for(regions, clock, cooldown_s=20)

    with pytest.raises(AllEndpointsFailed) as failed:
        client.request("POST", "/chat", body={})
    assert failed.value.last_response is not None
    assert (failed.value.last_response.status, failed.value.last_response.endpoint) == (503, dr.url)
    assert failed.value.retry_after_s == pytest.approx(4)

    # Every endpoint parked: the next call contacts nobody and says how long to wait.
    calls = len(primary.calls) + len(dr.calls)
    clock.now += 1
    with pytest.raises(AllEndpointsFailed) as parked:
        client.request("POST", "/chat", body={})
    assert parked.value.retry_after_s == pytest.approx(3)
    assert parked.value.last_response is None
    assert len(primary.calls) + len(dr.calls) == calls


def test_text_bodies_are_returned_as_text(regions, clock) -> None:
    primary, _ = regions
    primary.api = (200, {}, "plain words")
    assert client_for(regions, clock).request("GET", "/x").body == "plain words"


def test_retry_after_as_http_date() -> None:
    assert _retry_after_seconds("Wed, 21 Oct 2015 07:28:10 GMT", now=1445412480.0) == pytest.approx(10)
    assert _retry_after_seconds("5", now=0) == 5
    assert _retry_after_seconds("soon", now=0) is None
    assert _retry_after_seconds(None, now=0) is None


def test_needs_an_endpoint() -> None:
    with pytest.raises(ValueError):
        FailoverClient([])
    with pytest.raises(ValueError):
        FailoverClient(["file:///etc/passwd"])
