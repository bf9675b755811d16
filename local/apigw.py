"""API Gateway REST (Lambda proxy) events, shaped as API Gateway sends them with a Cognito authorizer."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Mapping
from typing import Any

from local.templates import Route


def compile_routes(routes: list[Route]) -> list[tuple[re.Pattern[str], Route]]:
    compiled = []
    for route in routes:
        pattern = re.sub(r"\\{(\w+)\\}", r"(?P<\1>[^/]+)", re.escape(route.path))
        compiled.append((re.compile(f"^{pattern}$"), route))
    return compiled


def match(routes: list[tuple[re.Pattern[str], Route]], method: str, path: str) -> tuple[Route, dict[str, str]] | None:
    for pattern, route in routes:
        found = pattern.match(path)
        if found and route.method == method:
            return route, found.groupdict()
    return None


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
) -> dict[str, Any]:
    headers = dict(headers or {})
    return {
        "resource": resource,
        "path": path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {name: [value] for name, value in headers.items()},
        "queryStringParameters": dict(query) if query else None,
        "multiValueQueryStringParameters": {k: [v] for k, v in query.items()} if query else None,
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
        "isBase64Encoded": False,
    }


def response_headers(response: Mapping[str, Any]) -> dict[str, str]:
    merged = dict(response.get("headers") or {})
    for name, values in (response.get("multiValueHeaders") or {}).items():
        merged[name] = ", ".join(str(v) for v in values)
    return merged
