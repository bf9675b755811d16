"""Client-side regional failover for API users without a failover domain (standard library only).

    from tools.failover_client import FailoverClient

    client = FailoverClient(["https://abc.execute-api.us-east-1.amazonaws.com/prod",
                             "https://def.execute-api.us-west-2.amazonaws.com/prod"])
    answer = client.request("POST", "/chat", body={"message": "hello"},
                            headers={"Authorization": id_token})
    print(answer.status, answer.endpoint, answer.body)

The rules, the same as the web client's (web/app.js) plus fail-back:
- Endpoints are tried in the order given; the first is preferred.
- A 5xx answer or a connection error/timeout moves the request to the next endpoint. A 4xx never does:
  it is the answer (a 429 is this region shedding load; ask again after its Retry-After).
- The endpoint that failed is parked: not used before its Retry-After (seconds or an HTTP date), or
  `cooldown_s` without one. After that it must answer a GET on `health_path` (the API's public probe)
  before it takes a request again; an endpoint never used yet is probed the same way before its first
  request (the first endpoint is trusted until it fails). So after an outage traffic returns to the
  preferred region by itself once it is healthy.
- When no endpoint gives a non-5xx answer, `AllEndpointsFailed` is raised with the last 5xx answer (if
  any) and how long to wait before asking again.

A request that failed over may have been processed by the first region (a timeout after the work was
done): send an `Idempotency-Key` header on POST /jobs so the second region returns the same job (the
idempotency records are replicated between regions).
"""

from __future__ import annotations

import email.utils
import json
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["AllEndpointsFailed", "FailoverClient", "Response"]

# API Gateway ends every REST integration at 29 s (the sync path's own deadline is 25 s), so a region that is
# slow but healthy has answered (or given its 504) by then. A shorter client timeout would move a request the
# first region is still answering to the next one: the model asked twice, the conversation given two turns.
DEFAULT_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class Response:
    status: int
    headers: dict[str, str]
    body: Any  # parsed JSON when the body is JSON, else text ("" when empty)
    endpoint: str  # the base URL that answered

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


class AllEndpointsFailed(ConnectionError):
    """No endpoint gave a non-5xx answer (or every endpoint is parked for now)."""

    def __init__(self, message: str, *, last_response: Response | None, retry_after_s: float | None) -> None:
        super().__init__(message)
        self.last_response = last_response
        self.retry_after_s = retry_after_s  # seconds until the first parked endpoint may be tried again


@dataclass
class _Endpoint:
    url: str
    trusted: bool  # answered recently (or is the preferred one and has not failed): no probe needed
    parked_until: float = field(default=float("-inf"))


class FailoverClient:
    def __init__(
        self,
        endpoints: list[str],
        *,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        clock: Callable[[], float] = time.monotonic,
        cooldown_s: float = 30.0,
        health_path: str = "/health",
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        if not endpoints:
            raise ValueError("FailoverClient needs at least one endpoint")
        if timeout_s <= 0 or cooldown_s < 0:
            raise ValueError("timeout_s must be positive and cooldown_s not negative")
        if not all(url.startswith(("https://", "http://")) for url in endpoints):
            raise ValueError("endpoints must be http(s) URLs")
        self._endpoints = [_Endpoint(url.rstrip("/"), trusted=index == 0) for index, url in enumerate(endpoints)]
        self._timeout_s = timeout_s
        self._clock = clock
        self._cooldown_s = cooldown_s
        self._health_path = health_path if health_path.startswith("/") else "/" + health_path
        self._wall_clock = wall_clock  # only to read Retry-After given as an HTTP date

    @property
    def endpoints(self) -> list[str]:
        return [endpoint.url for endpoint in self._endpoints]

    def parked(self) -> dict[str, float]:
        """Endpoints not used for now, with the seconds left before they may be tried."""
        now = self._clock()
        return {e.url: e.parked_until - now for e in self._endpoints if e.parked_until > now}

    def request(
        self,
        method: str,
        path: str,
        *,
        body: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Response:
        last: Response | None = None
        errors: list[str] = []
        for endpoint in self._endpoints:
            if endpoint.parked_until > self._clock():
                continue
            if not endpoint.trusted and not self._probe(endpoint):
                errors.append(f"{endpoint.url}: health probe failed")
                continue
            try:
                response = self._send(endpoint.url, method, path, body=body, headers=headers)
            except OSError as error:  # connection refused/reset, DNS, timeout (URLError is an OSError)
                self._park(endpoint, None)
                errors.append(f"{endpoint.url}: {_describe(error)}")
                continue
            if response.status >= 500:
                self._park(endpoint, response.headers.get("retry-after"))
                errors.append(f"{endpoint.url}: HTTP {response.status}")
                last = response
                continue
            endpoint.trusted = True
            return response
        waits = [e.parked_until - self._clock() for e in self._endpoints]
        retry_after = max(0.0, min(waits)) if waits else None
        detail = "; ".join(errors) or "every endpoint is parked after a recent failure"
        raise AllEndpointsFailed(f"no endpoint answered: {detail}", last_response=last, retry_after_s=retry_after)

    def _probe(self, endpoint: _Endpoint) -> bool:
        try:
            response = self._send(endpoint.url, "GET", self._health_path, body=None, headers=None)
        except OSError:
            self._park(endpoint, None)
            return False
        if 200 <= response.status < 300:
            endpoint.trusted = True
            return True
        self._park(endpoint, response.headers.get("retry-after"))
        return False

    def _park(self, endpoint: _Endpoint, retry_after: str | None) -> None:
        wait = _retry_after_seconds(retry_after, now=self._wall_clock())
        endpoint.trusted = False
        endpoint.parked_until = self._clock() + (self._cooldown_s if wait is None else wait)

    def _send(
        self, base: str, method: str, path: str, *, body: dict[str, Any] | None, headers: dict[str, str] | None
    ) -> Response:
        data = None if body is None else json.dumps(body).encode()
        all_headers = {"Accept": "application/json", **(headers or {})}
        if data is not None:
            all_headers.setdefault("Content-Type", "application/json")
        url = base + (path if path.startswith("/") else "/" + path)
        request = urllib.request.Request(url, data=data, headers=all_headers, method=method.upper())
        try:
            with urllib.request.urlopen(request, timeout=self._timeout_s) as answer:
                return _response(base, answer.status, answer.headers, answer.read())
        except urllib.error.HTTPError as error:  # 4xx/5xx: an answer, not a connection failure
            with error:
                return _response(base, error.code, error.headers, error.read())


def _response(endpoint: str, status: int, headers: Any, raw: bytes) -> Response:
    lowered = {key.lower(): value for key, value in headers.items()}
    text = raw.decode("utf-8", errors="replace")
    parsed: Any = text
    if text and "json" in lowered.get("content-type", "json"):
        try:
            parsed = json.loads(text)
        except ValueError:
            parsed = text
    return Response(status=status, headers=lowered, body=parsed, endpoint=endpoint)


def _retry_after_seconds(value: str | None, *, now: float) -> float | None:
    """Retry-After as delta-seconds or an HTTP date (RFC 9110 10.2.3); None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - now)


def _describe(error: OSError) -> str:
    reason = getattr(error, "reason", None)
    if isinstance(error, socket.timeout | TimeoutError) or isinstance(reason, socket.timeout | TimeoutError):
        return "timed out"
    return f"connection failed ({type(reason or error).__name__})"
