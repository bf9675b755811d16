"""API Gateway's part of the sandbox, on loopback: the template's routes, Cognito token checks, request
validation and gateway responses, then the real handler invoked in-process with a REST proxy event.

Everything API Gateway answers by itself comes from the synthesized template, so hostile input gets what it
would get in AWS: an unknown method or path is the MISSING_AUTHENTICATION_TOKEN response (for any verb: PUT,
PATCH, HEAD, made-up ones), a missing or bad token UNAUTHORIZED, a body its method's model rejects
BAD_REQUEST_BODY (with `$context.error.validationErrorString` in API Gateway's wording), more than 10 MB
REQUEST_TOO_LARGE, and a handler that raises or answers a malformed proxy response the 502 "Internal server
error" of DEFAULT_5XX. Requests the HTTP layer cannot even parse get a JSON 4xx too: never an HTML page or a
dropped connection.
"""

from __future__ import annotations

import base64
import binascii
import json
import mimetypes
import re
import threading
import uuid
from collections.abc import Callable, Mapping
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from local.apigw import compile_routes, match, response_headers, rest_event
from local.lambda_context import LocalContext
from local.templates import GatewayResponseSpec, Route, Templates

ROOT = Path(__file__).resolve().parents[1]
STAGE = "v1"
PAYLOAD_LIMIT = 10 * 1024 * 1024  # API Gateway REST APIs accept request payloads up to 10 MB
_DRAIN_LIMIT = 64 * 1024 * 1024  # an oversized body is read and dropped up to here, so the 413 arrives intact
_VALIDATOR_MAX_DEPTH = 128  # nesting the gateway's validator parses; deeper JSON is an invalid body
_READ_TIMEOUT_S = 30.0  # a client that stops sending mid-request gets a 408, not a hung thread
_DEFAULT_TEMPLATE = '{"message":$context.error.messageString}'
# Each gateway response type's default status and message, used when the template does not customize it.
_DEFAULTS: dict[str, tuple[int, str]] = {
    "ACCESS_DENIED": (403, "User is not authorized to access this resource"),
    "BAD_REQUEST_BODY": (400, "Invalid request body"),
    "BAD_REQUEST_PARAMETERS": (400, "Missing required request parameters"),
    "MISSING_AUTHENTICATION_TOKEN": (403, "Missing Authentication Token"),
    "REQUEST_TOO_LARGE": (413, "Request Entity Too Large"),
    "UNAUTHORIZED": (401, "Unauthorized"),
    "DEFAULT_4XX": (400, "Bad Request"),
    "DEFAULT_5XX": (502, "Internal server error"),  # what a Lambda proxy integration error answers
}
_VARIABLE = re.compile(r"\$(\{)?context\.([A-Za-z0-9_]+(?:\.[A-Za-z0-9_]+)*)(?(1)\})")
_UNSAFE_HEADER = re.compile(r"[\x00-\x1f\x7f]")

Invoke = Callable[[dict[str, Any]], dict[str, Any]]


def invoke_api(event: dict[str, Any]) -> dict[str, Any]:
    """The chat Lambda, in-process (the sandbox's environment is already in os.environ)."""
    from handlers import chat

    return chat.handler(event, LocalContext(function_name="chat", timeout_s=28))  # type: ignore[no-any-return]


class GatewayError(Exception):
    """API Gateway answers the request itself with the gateway response of `kind`."""

    def __init__(self, kind: str, message: str | None = None, *, validation_error: str = "") -> None:
        super().__init__(kind)
        self.kind = kind
        self.message = message if message is not None else _DEFAULTS.get(kind, (500, "Internal server error"))[1]
        self.validation_error = validation_error


class GatewayResponses:
    """Renders gateway responses as API Gateway does from the template's AWS::ApiGateway::GatewayResponse."""

    def __init__(self, specs: Mapping[str, GatewayResponseSpec]) -> None:
        self.specs = dict(specs)

    def render(
        self, error: GatewayError, *, context: Mapping[str, str], request_headers: Mapping[str, str]
    ) -> tuple[int, dict[str, str], bytes]:
        default_status = _DEFAULTS.get(error.kind, (500, ""))[0]
        fallback = "DEFAULT_5XX" if default_status >= 500 else "DEFAULT_4XX"
        spec = self.specs.get(error.kind) or self.specs.get(fallback)
        status = (spec.status_code if spec else None) or default_status
        template = _DEFAULT_TEMPLATE
        if spec and spec.templates:
            template = spec.templates.get("application/json") or next(iter(spec.templates.values()))
        variables = {
            **context,
            "error.message": error.message,
            "error.messageString": json.dumps(error.message),
            "error.responseType": error.kind,
            "error.validationErrorString": json.dumps(error.validation_error)[1:-1],  # JSON-escaped, unquoted
        }
        body = _VARIABLE.sub(lambda found: _lookup(variables, found.group(2)), template)
        headers = {"Content-Type": "application/json"}
        for name, mapping in (spec.headers if spec else {}).items():
            value = _header_value(mapping, context, request_headers)
            if value is not None:
                headers[name] = value
        return status, headers, body.encode("utf-8", "replace")


def _lookup(variables: Mapping[str, str], name: str) -> str:
    """A $context variable; unknown ones render empty, as in API Gateway."""
    return variables.get(name, "")


def _header_value(mapping: Any, context: Mapping[str, str], request_headers: Mapping[str, str]) -> str | None:
    """A gateway response header's value; None when the sandbox cannot resolve it (an AWS-only intrinsic such
    as the CloudFront domain's import), and the header is left out."""
    if not isinstance(mapping, str):
        return None
    if len(mapping) >= 2 and mapping[0] == mapping[-1] == "'":
        return mapping[1:-1]
    if mapping.startswith("method.request.header."):
        wanted = mapping.removeprefix("method.request.header.").lower()
        return next((v for k, v in request_headers.items() if k.lower() == wanted), None)
    if mapping.startswith("context."):
        return context.get(mapping.removeprefix("context."))
    return None


def validation_errors(schema: Mapping[str, Any], body: str) -> str | None:
    """API Gateway's validationErrorString for `body` against a draft-4 model, or None when it is valid.

    The wording follows API Gateway's validator ("object has missing required properties (["message"])"...);
    an empty body is validated as {} as API Gateway does.
    """
    from jsonschema import Draft4Validator

    from handlers.request_body import json_depth

    text = body if body.strip() else "{}"
    if json_depth(text, stop_above=_VALIDATOR_MAX_DEPTH) > _VALIDATOR_MAX_DEPTH:
        return f"[JSON nesting depth exceeds the maximum allowed ({_VALIDATOR_MAX_DEPTH})]"
    try:
        instance = json.loads(text)
    except json.JSONDecodeError as error:
        return f"[Invalid JSON: {error.msg} (line {error.lineno}, column {error.colno})]"
    except (ValueError, RecursionError) as error:
        return f"[Invalid JSON: {type(error).__name__}]"
    errors = sorted(
        Draft4Validator(schema).iter_errors(instance),
        key=lambda e: (len(e.absolute_path), [str(p) for p in e.absolute_path], str(e.validator)),
    )  # the object's own errors first, then its members', as API Gateway lists them
    messages = [_schema_message(error) for error in errors]
    return f"[{', '.join(messages)}]" if messages else None


def _schema_message(error: Any) -> str:
    keyword, expected, instance = error.validator, error.validator_value, error.instance
    if keyword == "required":
        missing = [name for name in expected if name not in instance]
        return f"object has missing required properties ({_json_list(missing)})"
    if keyword == "additionalProperties":
        allowed = set((error.schema.get("properties") or {}).keys())
        patterns = [re.compile(p) for p in (error.schema.get("patternProperties") or {})]
        extra = sorted(k for k in instance if k not in allowed and not any(p.search(k) for p in patterns))
        return f"object instance has properties which are not allowed by the schema: {_json_list(extra)}"
    if keyword == "type":
        allowed = expected if isinstance(expected, list) else [expected]
        return (
            f"instance type ({_json_type(instance)}) does not match any allowed primitive type "
            f"(allowed: {_json_list(allowed)})"
        )
    if keyword == "minLength":
        return f"string {_quote(instance)} is too short (length: {len(instance)}, required minimum: {expected})"
    if keyword == "maxLength":
        return f"string {_quote(instance)} is too long (length: {len(instance)}, maximum allowed: {expected})"
    if keyword == "pattern":
        return f"ECMA 262 regex {_quote(expected)} does not match input string {_quote(instance)}"
    if keyword == "enum":
        return f"instance value ({_quote(instance)}) not found in enum (possible values: {_json_list(expected)})"
    if keyword == "anyOf":  # POST /jobs: a chat job or a workflow job
        return f"instance failed to match at least one required schema among {len(expected)}"
    return str(error.message)


def _json_list(values: list[Any]) -> str:
    return json.dumps(values, separators=(",", ":"))


def _quote(value: Any, limit: int = 80) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    return json.dumps(text if len(text) <= limit else f"{text[:limit]}...")


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    names = {int: "integer", float: "number", str: "string", list: "array", dict: "object", type(None): "null"}
    return names.get(type(value), type(value).__name__)


class _Server(ThreadingHTTPServer):
    request_queue_size = 128  # socketserver's 5 resets connections when dozens of clients connect at once


class LocalApi:
    """API Gateway's part, locally: routes from the template, Cognito token checks, proxy events."""

    def __init__(
        self,
        templates: Templates,
        region: str,
        aws_url: str,
        pool_id: str,
        client_id: str,
        port: int,
        *,
        invoke: Invoke | None = None,
        verifier: Any = None,
    ) -> None:
        self.routes = compile_routes(templates.routes)
        self.preflights = compile_routes(templates.preflights)
        self.responses = GatewayResponses(templates.gateway_responses)
        self.region = region
        self.invoke = invoke or invoke_api
        self.runtime_config = {
            "region": region,
            "userPoolId": pool_id,
            "clientId": client_id,
            "cognitoEndpoint": aws_url,
            "apiEndpoints": [],  # filled once the port is known
            "local": True,
        }
        if verifier is None:
            from local.auth import CognitoVerifier

            # The pool's own region (its id's prefix): the DR API accepts the tokens of the one user pool, as its
            # Cognito replica does in AWS (ADR 0001).
            pool_region = pool_id.partition("_")[0] or region
            verifier = CognitoVerifier(
                jwks_url=f"{aws_url}/{pool_id}/.well-known/jwks.json",
                issuer=f"https://cognito-idp.{pool_region}.amazonaws.com/{pool_id}",
                client_id=client_id,
            )
        self.verifier = verifier
        self.server = _Server(("127.0.0.1", port), _handler_class(self))
        self.server.daemon_threads = True
        self.port = int(self.server.server_address[1])
        self.url = f"http://127.0.0.1:{self.port}"
        # The site's origin, allowed by CORS (in AWS the CloudFront domain; here the API that serves the web UI).
        self.site_origin = self.url
        self.runtime_config["apiEndpoints"] = [f"{self.url}/api"]
        self.static_headers: dict[str, str] = {}  # added to the web UI's files (the sandbox sets its CSP)
        self.available = True
        # The sandbox's controls under /_sandbox/ (not API Gateway's: outside /api): (method, path, body) ->
        # (status, JSON payload). None: no such routes.
        self.control: Callable[[str, str, bytes], tuple[int, Any]] | None = None
        self._thread: threading.Thread | None = None
        self._serving = False

    def start(self) -> None:
        self._thread = threading.Thread(target=self.server.serve_forever, name="local-api", daemon=True)
        self._thread.start()
        self._serving = True

    def stop(self) -> None:
        if self._serving:
            self._serving = False
            self.server.shutdown()
            self.server.server_close()

    def go_down(self) -> None:
        """A regional outage: the port refuses connections, and requests in flight get no answer (their
        connections are closed), whatever the handler still does."""
        self.available = False
        self.stop()

    def come_back(self) -> None:
        """The region's API answers again, on the same port."""
        if self._serving:
            return
        self.server = _Server(("127.0.0.1", self.port), _handler_class(self))
        self.server.daemon_threads = True
        self.available = True
        self.start()

    # --- API Gateway's request pipeline (no HTTP here: testable on its own) ---------------------------
    def handle(
        self, method: str, target: str, headers: list[tuple[str, str]], body: bytes, *, oversized: bool = False
    ) -> tuple[int, dict[str, str], bytes]:
        """Route, authorize, validate, invoke: what API Gateway answers for one request under /api."""
        path, _, query = target.partition("?")
        path = path.partition("#")[0][len("/api") :] or "/"
        single = {name: value for name, value in headers}  # the last of repeated headers, as API Gateway
        context = {
            "requestId": str(uuid.uuid4()),
            "httpMethod": method,
            "path": f"/{STAGE}{path}",
            "stage": STAGE,
            "resourcePath": "",
        }
        try:
            if oversized or len(body) > PAYLOAD_LIMIT:
                raise GatewayError("REQUEST_TOO_LARGE")
            found = match(self.preflights if method == "OPTIONS" else self.routes, method, path)
            if found is None:
                raise GatewayError("MISSING_AUTHENTICATION_TOKEN")
            route, params = found
            context["resourcePath"] = route.path
            if route.mock is not None:
                return route.mock.status, dict(route.mock.headers), route.mock.body.encode()
            claims = self._authorize(route, single)
            self._validate(route, single, query, body)
            return self._integrate(method, path, query, route, params, headers, body, claims, context)
        except GatewayError as error:
            return self.responses.render(error, context=context, request_headers=single)

    def _authorize(self, route: Route, headers: Mapping[str, str]) -> dict[str, Any] | None:
        if not route.authorized:
            return None
        token = next((v for k, v in headers.items() if k.lower() == "authorization"), None)
        try:
            claims: dict[str, Any] = self.verifier.claims(token)
        except Exception as error:  # whatever a garbage token breaks, the authorizer's answer is 401
            raise GatewayError("UNAUTHORIZED") from error
        # The authorizer hands every claim on as a string.
        return {name: value if isinstance(value, str) else json.dumps(value) for name, value in claims.items()}

    def _validate(self, route: Route, headers: Mapping[str, str], query: str, body: bytes) -> None:
        if route.validate_parameters and route.required_parameters:
            header_names = {name.lower() for name in headers}
            query_names = {name for name, _ in parse_qsl(query, keep_blank_values=True)}
            missing = []
            for parameter in route.required_parameters:  # "header.X", "querystring.q" (path ones matched already)
                kind, _, name = parameter.partition(".")
                if (kind == "header" and name.lower() not in header_names) or (
                    kind == "querystring" and name not in query_names
                ):
                    missing.append(name)
            if missing:
                raise GatewayError(
                    "BAD_REQUEST_PARAMETERS", f"Missing required request parameters: [{', '.join(missing)}]"
                )
        if not (route.validate_body and route.request_models):
            return
        content_type = next((v for k, v in headers.items() if k.lower() == "content-type"), "application/json")
        media_type = content_type.partition(";")[0].strip().lower() or "application/json"
        schema = route.request_models.get(media_type) or route.request_models.get("$default")
        if schema is None:
            return  # no model for this content type: API Gateway passes the body through unvalidated
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as error:
            raise GatewayError(
                "BAD_REQUEST_BODY", validation_error=f"[Invalid UTF-8 start byte at offset {error.start}]"
            ) from error
        problems = validation_errors(schema, text)
        if problems:
            raise GatewayError("BAD_REQUEST_BODY", validation_error=problems)

    def _integrate(
        self,
        method: str,
        path: str,
        query: str,
        route: Route,
        params: dict[str, str],
        headers: list[tuple[str, str]],
        body: bytes,
        claims: dict[str, Any] | None,
        context: Mapping[str, str],
    ) -> tuple[int, dict[str, str], bytes]:
        multi_headers: dict[str, list[str]] = {}
        for name, value in headers:
            multi_headers.setdefault(name, []).append(value)
        multi_query: dict[str, list[str]] = {}
        for name, value in parse_qsl(query, keep_blank_values=True):
            multi_query.setdefault(name, []).append(value)
        event = rest_event(
            method=method, path=path, resource=route.path, path_parameters=params or None,
            query={k: v[-1] for k, v in multi_query.items()} or None, multi_value_query=multi_query or None,
            headers={name: values[-1] for name, values in multi_headers.items()}, multi_value_headers=multi_headers,
            # A text body, as API Gateway hands a non-binary payload to Lambda (undecodable bytes replaced).
            body=body.decode("utf-8", "replace") if body else None, claims=claims, stage=STAGE,
        )  # fmt: skip
        event["requestContext"]["requestId"] = context["requestId"]
        try:
            response = self.invoke(event)
            status, out_headers, data = _proxy_response(response)
        except Exception:  # a function error or a malformed proxy response: API Gateway answers 502
            return self.responses.render(GatewayError("DEFAULT_5XX"), context=context, request_headers=dict(headers))
        return status, out_headers, data


class LocalSite:
    """The web UI's files and config.json on a port of their own, as CloudFront serves them apart from either
    region's API: a regional outage (LocalApi.go_down) leaves the site up, so the UI's static help page
    (web/fallback.html) shows when both APIs are down. Nothing under /api is served here."""

    def __init__(self, *, port: int, runtime_config: dict[str, Any]) -> None:
        self.runtime_config = runtime_config
        self.static_headers: dict[str, str] = {}
        self.available = True
        self.control: Callable[[str, str, bytes], tuple[int, Any]] | None = None
        self.server = _Server(("127.0.0.1", port), _handler_class(self))
        self.server.daemon_threads = True
        self.port = int(self.server.server_address[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self.site_origin = self.url
        self._serving = False

    def handle(
        self, method: str, target: str, headers: list[tuple[str, str]], body: bytes, *, oversized: bool = False
    ) -> tuple[int, dict[str, str], bytes]:
        return 404, {"Content-Type": "application/json"}, b'{"message": "the site serves no API: see config.json"}'

    def start(self) -> None:
        threading.Thread(target=self.server.serve_forever, name="local-site", daemon=True).start()
        self._serving = True

    def stop(self) -> None:
        if self._serving:
            self._serving = False
            self.server.shutdown()
            self.server.server_close()


def _proxy_response(response: Any) -> tuple[int, dict[str, str], bytes]:
    """Status, headers and body of a Lambda proxy response; ValueError when API Gateway would reject it."""
    if not isinstance(response, dict):
        raise ValueError("the proxy response is not an object")
    status = response.get("statusCode")
    if not isinstance(status, int) or isinstance(status, bool) or not 100 <= status <= 599:
        raise ValueError(f"statusCode {status!r} is not an HTTP status")
    body = response.get("body")
    if body is None:
        data = b""
    elif not isinstance(body, str):
        raise ValueError("body is not a string")
    elif response.get("isBase64Encoded"):
        try:
            data = base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError) as error:
            raise ValueError("body is flagged base64 but is not") from error
    else:
        data = body.encode("utf-8", "replace")
    headers = response_headers(response)
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in headers.items()):
        raise ValueError("header names and values must be strings")
    return status, headers, data


def _handler_class(api: LocalApi | LocalSite) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        timeout = _READ_TIMEOUT_S

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def handle_one_request(self) -> None:
            """BaseHTTPRequestHandler's loop, but every verb is served (no do_<VERB> lookup, no bare 501)."""
            self._answered = False
            try:
                self.raw_requestline = self.rfile.readline(65537)
                if len(self.raw_requestline) > 65536:
                    self.requestline = self.request_version = self.command = ""
                    self.send_error(HTTPStatus.REQUEST_URI_TOO_LONG, "the request line is longer than 64 KB")
                    return
                if not self.raw_requestline:
                    self.close_connection = True
                    return
                if not self.parse_request():
                    return  # parse_request answered with send_error
                if self.request_version == "HTTP/0.9":
                    self.send_error(HTTPStatus.BAD_REQUEST, "send an HTTP/1.x request line: METHOD /path HTTP/1.1")
                    return
                self._serve()
                self.wfile.flush()
            except (TimeoutError, ConnectionError):
                self.close_connection = True
            except Exception:  # a bug here must still answer, not drop the connection
                if not self._answered:
                    self.send_error(HTTPStatus.INTERNAL_SERVER_ERROR, "the local API failed on this request")
                self.close_connection = True

        def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
            """Errors of the HTTP layer itself (malformed request line, headers) as JSON, then close."""
            self.close_connection = True
            if getattr(self, "request_version", "HTTP/0.9") == "HTTP/0.9":
                self.request_version = "HTTP/1.1"  # answer with a status line and headers all the same
            try:
                phrase = HTTPStatus(code).phrase
            except ValueError:
                phrase = "Error"
            text = message or phrase
            if explain and not message:
                text = f"{phrase}: {explain}"
            self._send(code, json.dumps({"message": text}).encode(), {"Content-Type": "application/json"})

        def _serve(self) -> None:
            if not api.available:  # a kept-alive connection's next request after the region went down
                self.close_connection = True
                self._answered = True
                return
            method = _text(self.command or "")
            target = _text(self.path)
            if target.startswith(("http://", "https://")):  # absolute-form request target
                target = "/" + target.split("://", 1)[1].partition("/")[2]
            read = self._read_body()
            if read is None:
                return  # answered already (bad framing, a body that never came)
            body, oversized = read
            path = target.partition("?")[0]
            headers = [(name, _text(value)) for name, value in self.headers.items()]
            if path.startswith("/_sandbox/") and api.control is not None and not oversized:
                status, payload = api.control(method, path, body)  # the sandbox's own controls (outages)
                self._json(status, payload)
                return
            if path != "/api" and not path.startswith("/api/") and not oversized:
                self._static(method, path)
                return
            status, response_headers, data = api.handle(method, target, headers, body, oversized=oversized)
            self._send(status, data, response_headers)

        def _read_body(self) -> tuple[bytes, bool] | None:
            """(body, oversized), or None once an error was sent. An oversized body is drained, not kept."""
            if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
                return self._read_chunked()
            declared = self.headers.get_all("Content-Length") or []
            if not declared:
                return b"", False
            if len(set(declared)) > 1 or not declared[0].strip().isdigit():
                self.send_error(HTTPStatus.BAD_REQUEST, "the Content-Length header is not a single number")
                return None
            length = int(declared[0])
            if length > PAYLOAD_LIMIT:
                self._drain(length)
                self.close_connection = True
                return b"", True
            try:
                data = self.rfile.read(length)
            except TimeoutError:
                data = b""
            if len(data) < length:
                self.send_error(HTTPStatus.REQUEST_TIMEOUT, "the request body ended before its Content-Length")
                return None
            return data, False

        def _read_chunked(self) -> tuple[bytes, bool] | None:
            chunks: list[bytes] = []
            total = 0
            try:
                while True:
                    size_text = self.rfile.readline(1024).split(b";", 1)[0].strip()
                    if not size_text or any(c not in b"0123456789abcdefABCDEF" for c in size_text):
                        self.send_error(HTTPStatus.BAD_REQUEST, "malformed chunked request body")
                        return None
                    size = int(size_text, 16)
                    if size == 0:
                        while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                            pass  # trailers
                        break
                    total += size
                    if total > _DRAIN_LIMIT:
                        self.close_connection = True
                        return b"", True
                    chunk = self.rfile.read(size)
                    self.rfile.readline(1024)  # the CRLF after the chunk
                    if total <= PAYLOAD_LIMIT:
                        chunks.append(chunk)
            except TimeoutError:
                self.send_error(HTTPStatus.REQUEST_TIMEOUT, "the chunked request body did not arrive in time")
                return None
            return (b"".join(chunks), False) if total <= PAYLOAD_LIMIT else (b"", True)

        def _drain(self, length: int) -> None:
            remaining = min(length, _DRAIN_LIMIT)
            try:
                while remaining > 0:
                    chunk = self.rfile.read(min(remaining, 1 << 16))
                    if not chunk:
                        break
                    remaining -= len(chunk)
            except TimeoutError:
                pass

        def _static(self, method: str, path: str) -> None:
            if method not in ("GET", "HEAD"):
                self._send(
                    HTTPStatus.METHOD_NOT_ALLOWED,
                    json.dumps({"message": "the web UI is static: use GET or HEAD"}).encode(),
                    {"Content-Type": "application/json", "Allow": "GET, HEAD"},
                )
                return
            if path == "/config.json":
                self._json(200, api.runtime_config)
                return
            relative = "index.html" if path in ("", "/") else path.lstrip("/")
            web = (ROOT / "web").resolve()
            try:
                target = (web / relative).resolve()
                found = target.is_relative_to(web) and target.is_file()
            except (OSError, ValueError):  # a NUL byte, a name too long...
                found = False
            if not found:
                self._json(404, {"message": f"no file {path[:200]}"})
                return
            content_type = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
            headers = {"Content-Type": content_type, "Cache-Control": "no-store", **api.static_headers}
            self._send(200, target.read_bytes(), headers)

        def _json(self, status: int, payload: Any) -> None:
            self._send(status, json.dumps(payload).encode(), {"Content-Type": "application/json"})

        def _send(self, status: int, data: bytes, headers: Mapping[str, str]) -> None:
            if not api.available:  # the region went down while this request was in flight: no answer
                self.close_connection = True
                self._answered = True
                return
            self.send_response(status)
            for name, value in headers.items():
                if name.lower() in ("content-length", "connection", "transfer-encoding"):
                    continue
                if _UNSAFE_HEADER.search(name) or _UNSAFE_HEADER.search(value):
                    continue  # never let a response header split the response
                self.send_header(name, value.encode("latin-1", "replace").decode("latin-1"))
            if not any(h.lower() == "access-control-allow-origin" for h in headers):
                # In AWS the site's origin (a CloudFront domain); here the web UI shares this origin.
                self.send_header("Access-Control-Allow-Origin", api.site_origin)
            self.send_header("Content-Length", str(len(data)))
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            self._answered = True
            if self.command != "HEAD":
                self.wfile.write(data)

    return Handler


def _text(value: str) -> str:
    """http.server reads the request line and headers as Latin-1; clients send UTF-8: read them as such."""
    try:
        return value.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return value
