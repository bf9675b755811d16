"""The sandbox's WebSocket API, one per region, behaving as API Gateway's does for the Stream template (ADR 0004).

- On the upgrade request it runs the `$connect` authorizer (the real handlers/ws_authorizer.py against the sandbox
  user pool's JWKS) on the `token` query string: "Unauthorized" refuses the upgrade with 401, a Deny with 403; an
  Allow keeps the policy's context for the connection, as API Gateway hands it to every later route.
- Each text frame is one `$default` invocation of the stream Lambda (handlers/stream.py through the same Lambda pool
  as the REST API's functions, local/lambda_pool.py), run in a thread as API Gateway runs one invocation per message.
- The management API (`POST /{stage}/@connections/{id}`), which the handler's boto3 `apigatewaymanagementapi`
  client calls, is served on a port of its own (the `websockets` server speaks only GET upgrades): events name that
  host as their `domainName`, so the handler builds its endpoint from the event exactly as in AWS. A connection that
  is gone answers 410 GoneException.
- Down (a regional outage): new upgrades get 503, open connections are closed (1012), as a region that stops
  answering looks to a client.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

Invoke = Callable[[dict[str, Any]], dict[str, Any]]
Authorize = Callable[[dict[str, Any]], dict[str, Any]]

STAGE = "v1"
MAX_MESSAGE_BYTES = 128 * 1024  # API Gateway's WebSocket message limit


class WsGateway:
    """`authorize`: the authorizer handler (event -> policy); `invoke`: the stream Lambda (event -> response)."""

    def __init__(
        self, *, authorize: Authorize, invoke: Invoke, region: str, port: int = 0, management_port: int = 0
    ) -> None:
        self.authorize = authorize
        self.invoke = invoke
        self.region = region
        self.available = True
        self._connections: dict[str, ServerConnection] = {}
        self._contexts: dict[str, dict[str, Any]] = {}
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._server: Server | None = None
        self._requested_port = port
        self.port = 0
        self.management = ThreadingHTTPServer(("127.0.0.1", management_port), _management_handler(self))
        self.management.daemon_threads = True
        self.management_port = int(self.management.server_address[1])
        self._threads: list[threading.Thread] = []
        self._stopped = False

    # --- life cycle -------------------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/{STAGE}"

    def start(self) -> None:
        loop_thread = threading.Thread(target=self._run_loop, name=f"ws-gateway@{self.region}", daemon=True)
        loop_thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the sandbox WebSocket gateway did not start")
        http_thread = threading.Thread(target=self.management.serve_forever, name="ws-management", daemon=True)
        http_thread.start()
        self._threads = [loop_thread, http_thread]

    def _run_loop(self) -> None:
        asyncio.set_event_loop(self._loop)

        async def start() -> None:
            self._server = await serve(
                self._session,
                "127.0.0.1",
                self._requested_port,
                process_request=self._connect,
                max_size=MAX_MESSAGE_BYTES,
                ping_interval=None,  # API Gateway pings nobody; idle limits are AWS's (10 min), not tested here
            )
            sockets = list(self._server.sockets)
            self.port = int(sockets[0].getsockname()[1])
            self._ready.set()

        self._loop.run_until_complete(start())
        self._loop.run_forever()

    def stop(self) -> None:
        """Idempotent: the sandbox stops a region's runtime and, at exit, everything it started."""
        if self._stopped:
            return
        self._stopped = True
        self.management.shutdown()
        self.management.server_close()
        if self._server is None:
            return

        async def close() -> None:
            assert self._server is not None
            self._server.close()
            await self._server.wait_closed()

        asyncio.run_coroutine_threadsafe(close(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)

    def go_down(self) -> None:
        self.available = False
        for connection in list(self._connections.values()):
            asyncio.run_coroutine_threadsafe(connection.close(1012, "region unavailable"), self._loop)

    def come_back(self) -> None:
        self.available = True

    # --- $connect: the authorizer on the upgrade ---------------------------------------------------------------
    async def _connect(self, connection: ServerConnection, request: Request) -> Response | None:
        path = urlsplit(request.path)
        if path.path.rstrip("/") != f"/{STAGE}":
            return connection.respond(HTTPStatus.FORBIDDEN, '{"message": "Forbidden"}\n')
        if not self.available:
            return connection.respond(HTTPStatus.SERVICE_UNAVAILABLE, '{"message": "Service Unavailable"}\n')
        query = {name: values[-1] for name, values in parse_qs(path.query).items()}
        connection_id = _connection_id()
        event = {
            "type": "REQUEST",
            "methodArn": f"arn:aws:execute-api:{self.region}:000000000000:local/{STAGE}/$connect",
            "queryStringParameters": query or None,
            "headers": {name: value for name, value in request.headers.raw_items() if name.lower() != "cookie"},
            "requestContext": self._context("$connect", "CONNECT", connection_id, {}),
        }
        try:
            answer = await asyncio.to_thread(self.authorize, event)
        except Exception as error:  # the authorizer's "Unauthorized" is API Gateway's 401; anything else is 500
            if str(error) == "Unauthorized":
                return connection.respond(HTTPStatus.UNAUTHORIZED, '{"message": "Unauthorized"}\n')
            return connection.respond(HTTPStatus.INTERNAL_SERVER_ERROR, '{"message": "Internal server error"}\n')
        statements = answer.get("policyDocument", {}).get("Statement", [])
        if not statements or any(statement.get("Effect") != "Allow" for statement in statements):
            return connection.respond(HTTPStatus.FORBIDDEN, '{"message": "Forbidden"}\n')
        context = {**(answer.get("context") or {}), "principalId": answer.get("principalId")}
        self._contexts[str(connection.id)] = {"connectionId": connection_id, "authorizer": context}
        connect = {"requestContext": self._context("$connect", "CONNECT", connection_id, context)}
        response = await asyncio.to_thread(self.invoke, connect)
        if int(response.get("statusCode", 200)) >= 300:
            return connection.respond(HTTPStatus.FORBIDDEN, '{"message": "Forbidden"}\n')
        return None

    # --- $default per frame, $disconnect at the end ------------------------------------------------------------
    async def _session(self, connection: ServerConnection) -> None:
        state = self._contexts.pop(str(connection.id))
        connection_id, authorizer = state["connectionId"], state["authorizer"]
        self._connections[connection_id] = connection
        tasks: set[asyncio.Task[Any]] = set()
        try:
            async for frame in connection:
                body = frame if isinstance(frame, str) else frame.decode("utf-8", "replace")
                event = {
                    "requestContext": self._context("$default", "MESSAGE", connection_id, authorizer),
                    "body": body,
                    "isBase64Encoded": False,
                }
                task = asyncio.create_task(asyncio.to_thread(self.invoke, event))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
        except ConnectionClosed:
            pass
        finally:
            self._connections.pop(connection_id, None)
            disconnect = {"requestContext": self._context("$disconnect", "DISCONNECT", connection_id, authorizer)}
            await asyncio.to_thread(self.invoke, disconnect)

    def _context(self, route: str, kind: str, connection_id: str, authorizer: dict[str, Any]) -> dict[str, Any]:
        return {
            "routeKey": route,
            "eventType": kind,
            "connectionId": connection_id,
            "domainName": f"127.0.0.1:{self.management_port}",  # the management API's host (see the docstring)
            "stage": STAGE,
            "apiId": "local",
            "requestId": str(uuid.uuid4()),
            "requestTimeEpoch": int(time.time() * 1000),
            "authorizer": authorizer or None,
        }

    # --- the management API ------------------------------------------------------------------------------------
    def post(self, connection_id: str, data: bytes) -> bool:
        """Send `data` to the connection as a text frame (API Gateway sends text for UTF-8 data); False: gone."""
        connection = self._connections.get(connection_id)
        if connection is None or not self.available:
            return False
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            payload: str | bytes = data
        else:
            payload = text
        try:
            asyncio.run_coroutine_threadsafe(connection.send(payload), self._loop).result(5)
        except (ConnectionClosed, TimeoutError):
            return False
        return True


def _connection_id() -> str:
    return uuid.uuid4().hex[:12] + "="  # API Gateway's ids are short base64-ish strings


def _management_handler(gateway: WsGateway) -> type[BaseHTTPRequestHandler]:
    prefix = f"/{STAGE}/@connections/"

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _answer(self, status: int, payload: dict[str, Any] | None = None, error: str | None = None) -> None:
            body = json.dumps(payload or {}).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            if error:
                self.send_header("x-amzn-ErrorType", error)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            data = self.rfile.read(length)
            path = urlsplit(self.path).path
            if not path.startswith(prefix):
                self._answer(404, {"message": "Not Found"}, "NotFoundException")
                return
            connection_id = unquote(path.removeprefix(prefix))
            if len(data) > MAX_MESSAGE_BYTES:
                self._answer(413, {"message": "payload too large"}, "PayloadTooLargeException")
                return
            if not gateway.post(connection_id, data):
                self._answer(410, {"message": f"connection {connection_id} is gone"}, "GoneException")
                return
            self._answer(200)

    return Handler


def sandbox_gateway(
    *,
    region: str,
    aws_url: str,
    pool_id: str,
    client_id: str,
    invoke: Invoke,
    authorizer_timeout_s: float = 10.0,
    port: int = 0,
) -> WsGateway:
    """A region's gateway with the real authorizer against the sandbox pool (the pool's region, as ADR 0001)."""
    from handlers.ws_authorizer import AuthorizerSettings, TokenVerifier, bootstrap
    from local.lambda_context import LocalContext

    pool_region = pool_id.partition("_")[0] or region
    settings = AuthorizerSettings(
        jwks_url=f"{aws_url}/{pool_id}/.well-known/jwks.json",
        issuers=(f"https://cognito-idp.{pool_region}.amazonaws.com/{pool_id}",),
        client_id=client_id,
    )
    authorizer = bootstrap(TokenVerifier(settings))
    lock = threading.Lock()  # one authorizer environment: connects are rare

    def authorize(event: dict[str, Any]) -> dict[str, Any]:
        with lock:
            return authorizer(event, LocalContext(function_name="ws-authorizer", timeout_s=authorizer_timeout_s))

    return WsGateway(authorize=authorize, invoke=invoke, region=region, port=port)
