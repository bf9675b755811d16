"""API Gateway REST (Lambda proxy) events, shaped as API Gateway sends them with a Cognito authorizer."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import unquote

from local.templates import Route


def compile_routes(routes: list[Route]) -> list[tuple[re.Pattern[str], Route]]:
    compiled = []
    for route in routes:
        pattern = re.escape(route.path)
        pattern = re.sub(r"\\{(\w+)\\\+\\}", r"(?P<\1>.+)", pattern)  # {proxy+}: the rest of the path
        pattern = re.sub(r"\\{(\w+)\\}", r"(?P<\1>[^/]+)", pattern)
        compiled.append((re.compile(f"^{pattern}$", re.DOTALL), route))
    return compiled


def match(routes: list[tuple[re.Pattern[str], Route]], method: str, path: str) -> tuple[Route, dict[str, str]] | None:
    """The route API Gateway would pick for this method and raw path, with its path parameters (%-decoded).

    As API Gateway does: a trailing slash is ignored, a method only matches its own verb or ANY (HEAD is not
    GET), and anything unmatched is the caller's MISSING_AUTHENTICATION_TOKEN answer.
    """
    normalized = path.rstrip("/") or "/"
    candidates = []
    for pattern, route in routes:
        found = pattern.match(normalized)
        if found and route.method in (method, "ANY"):
            candidates.append((route.method != method, route, found))
    if not candidates:
        return None
    _, route, found = min(candidates, key=lambda c: c[0])  # an exact verb wins over ANY
    return route, {name: unquote(value) for name, value in found.groupdict().items()}


def rest_event(
    *,
    method: str,
    path: str,
    resource: str,
    path_parameters: Mapping[str, str] | None = None,
    query: Mapping[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
    body: str | None = None,
    claims: Mapping[str, Any] | None = None,
    stage: str = "v1",
    source_ip: str = "127.0.0.1",
    multi_value_headers: Mapping[str, Sequence[str]] | None = None,
    multi_value_query: Mapping[str, Sequence[str]] | None = None,
    is_base64_encoded: bool = False,
) -> dict[str, Any]:
    """A REST proxy event. Repeated headers/parameters: the single-value maps hold the last value, as in AWS."""
    headers = dict(headers or {})
    multi_headers = {k: list(v) for k, v in (multi_value_headers or {k: [v] for k, v in headers.items()}).items()}
    multi_query = {k: list(v) for k, v in (multi_value_query or {k: [v] for k, v in (query or {}).items()}).items()}
    return {
        "resource": resource,
        "path": path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": multi_headers,
        "queryStringParameters": dict(query) if query else None,
        "multiValueQueryStringParameters": multi_query or None,
        "pathParameters": dict(path_parameters) if path_parameters else None,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": resource,
            "httpMethod": method,
            "path": f"/{stage}{path}",
            "stage": stage,
            "requestId": str(uuid.uuid4()),
            "requestTimeEpoch": int(time.time() * 1000),
            "identity": {"sourceIp": source_ip},
            "authorizer": {"claims": dict(claims)} if claims else None,
        },
        "body": body,
        "isBase64Encoded": is_base64_encoded,
    }


def response_headers(response: Mapping[str, Any]) -> dict[str, str]:
    merged = dict(response.get("headers") or {})
    for name, values in (response.get("multiValueHeaders") or {}).items():
        merged[name] = ", ".join(str(v) for v in values)
    return merged
