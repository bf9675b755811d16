"""WebSocket Lambda: streamed chat answers over the regional WebSocket API (ADR 0004).

Routes: `$connect` (the REQUEST authorizer, handlers/ws_authorizer.py, has already checked the Cognito ID token:
this only accepts), `$disconnect`, and `$default`, which reads one chat message per WebSocket frame,

    {"action": "chat", "message": str, "conversationId"?: str, "requestId"?: str}

and answers with the core's stream events, `start`, `delta`..., `end` (core.chat.ChatService.stream), posted to
the connection through the API Gateway management API. Deltas are coalesced (the first at once, then every
FLUSH_S or FLUSH_CHARS) so one answer is a few dozen posts, not one per token. Errors are messages too,
`{"type": "error", "status", "message", "retryAfter"?}`, never a crash. Every message carries the client's
`requestId` when it sent one. A client that went away (GoneException), or any post that still fails after
botocore's retries (a timeout, an endpoint error, LimitExceeded, Forbidden), stops the posting, not the turn: the
answer is still read to its end, stored in the conversation and its tokens charged (the browser's own watchdog,
web/app.js, tells the user after the server's time limit). The $connect authorizer's context carries the token's
`exp`: a message after it is answered with a 401 error message (the browser reconnects with a fresh token).

Same bundle, settings and services as the chat Lambda (handlers.chat), its own function with a longer timeout.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit

from adapters.metrics import record_answer, record_outcome
from adapters.tracing import PowertoolsTracing
from core.chat import ChatService
from core.errors import DomainError, InvalidRequest, Unauthorized
from core.limits import TokenBudgetStatus, UserLimits
from core.models import ChatAnswer, ChatRequest
from handlers.settings import Settings
from handlers.wiring import build_chat_service, build_user_limits, data_client, shared_session

logger = Logger()
metrics = Metrics()
# Only our spans (model attempts, retrieval, embeddings): botocore is not patched, or each post to the connection
# (one per coalesced delta) would be a subsegment of its own.
tracer = Tracer(auto_patch=False)

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]
PostFactory = Callable[[str], Callable[[str, bytes], None]]

FLUSH_S = 0.040  # coalesce deltas for at most this long...
FLUSH_CHARS = 200  # ...or this many characters, whichever comes first
REQUEST_ID = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
ALLOWED_KEYS = {"action", "message", "conversationId", "requestId"}
# Management API calls answer in milliseconds: short timeouts, botocore's standard retries (one layer).
POST_CONNECT_TIMEOUT_S = 1.0
POST_READ_TIMEOUT_S = 2.0
POST_MAX_ATTEMPTS = 2
# The Lambda keeps this much of its time for storing the turn after the model's deadline.
STORE_MARGIN_S = 3.0


class ConnectionGone(Exception):
    """The client closed the socket (the management API's GoneException)."""


class Connection:
    """Posts JSON messages to one WebSocket connection; after the client went away, or a post failed, every post
    is a no-op. `send` never raises: a broken connection must not cost the turn."""

    def __init__(self, post: Callable[[str, bytes], None], connection_id: str, request_id: str | None) -> None:
        self._post = post
        self._connection_id = connection_id
        self._request_id = request_id
        self.gone = False
        self.posts = 0

    def send(self, message: dict[str, Any]) -> None:
        if self.gone:
            return
        if self._request_id is not None:
            message = {**message, "requestId": self._request_id}
        try:
            self._post(self._connection_id, json.dumps(message, ensure_ascii=False).encode())
            self.posts += 1
        except ConnectionGone:
            self.gone = True
            metrics.add_metric(name="StreamClientGone", unit=MetricUnit.Count, value=1)
        except Exception as error:  # any failure after botocore's retries: stop posting, keep the turn
            self.gone = True
            metrics.add_metric(name="StreamPostFailed", unit=MetricUnit.Count, value=1)
            # The error's kind and code only: never the message's data.
            logger.warning("post to the connection failed", extra={"error": type(error).__name__, "code": _code(error)})


def _code(error: Exception) -> str | None:
    """A botocore ClientError's error code (LimitExceededException, ForbiddenException...), else None."""
    response = getattr(error, "response", None)
    if isinstance(response, dict):
        code = (response.get("Error") or {}).get("Code")
        return str(code) if code else None
    return None


class DeltaCoalescer:
    """The core's events to connection posts: `start` and `end` at once, the first delta at once (time to first
    token), later deltas joined until FLUSH_S passed since the last post or FLUSH_CHARS are waiting."""

    def __init__(
        self,
        send: Callable[[dict[str, Any]], None],
        *,
        clock: Callable[[], float] = time.monotonic,
        flush_s: float = FLUSH_S,
        flush_chars: int = FLUSH_CHARS,
    ) -> None:
        self._send = send
        self._clock = clock
        self._flush_s = flush_s
        self._flush_chars = flush_chars
        self._pending: list[str] = []
        self._pending_chars = 0
        self._last_post: float | None = None
        self._sent_text = False

    def __call__(self, event: dict[str, Any]) -> None:
        if event.get("type") == "delta":
            text = str(event.get("text", ""))
            if not text:
                return
            self._pending.append(text)
            self._pending_chars += len(text)
            now = self._clock()
            due = self._last_post is None or now - self._last_post >= self._flush_s
            if not self._sent_text or due or self._pending_chars >= self._flush_chars:
                self.flush()
            return
        self.flush()  # everything before an end (or any other event) goes first, in order
        self._send(event)
        self._last_post = self._clock()

    def flush(self) -> None:
        if not self._pending:
            return
        text = "".join(self._pending)
        self._pending.clear()
        self._pending_chars = 0
        self._send({"type": "delta", "text": text})
        self._sent_text = True
        self._last_post = self._clock()


def parse_message(body: Any, settings: Settings) -> tuple[ChatRequest, str | None]:
    """One WebSocket frame -> (the chat request, the client's requestId). Same limits as POST /chat (size, JSON
    depth, message length); any malformed frame is a 4xx DomainError."""
    from handlers.request_body import decode_json_body

    value = decode_json_body(body, max_bytes=settings.max_body_bytes, max_depth=settings.max_json_depth)
    if not isinstance(value, dict):
        raise InvalidRequest('send a JSON object such as {"action": "chat", "message": "Hello"}')
    raw_id = value.get("requestId")
    request_id = raw_id if isinstance(raw_id, str) and REQUEST_ID.fullmatch(raw_id) else None
    if raw_id is not None and request_id is None:
        raise InvalidRequest("requestId must be 1-64 letters, digits or . _ : -")
    unknown = set(value) - ALLOWED_KEYS
    if unknown:  # the count, never the client's key names: the reason is logged
        raise InvalidRequest(f"{len(unknown)} unknown field(s); allowed: {', '.join(sorted(ALLOWED_KEYS))}")
    if value.get("action", "chat") != "chat":
        raise InvalidRequest('action must be "chat"')
    chat: dict[str, Any] = {"message": value.get("message")}
    if value.get("conversationId") is not None:
        chat["conversation_id"] = value["conversationId"]
    try:
        return ChatRequest.parse(chat, settings.limits), request_id
    except DomainError as error:
        error.request_id = request_id  # type: ignore[attr-defined]  # the error message still carries it
        raise


def error_message(error: DomainError) -> dict[str, Any]:
    message: dict[str, Any] = {"type": "error", "status": error.status, "message": error.message}
    retry_after = getattr(error, "retry_after", None)
    if retry_after is not None:
        message["retryAfter"] = int(retry_after)
    budget = getattr(error, "budget", None)
    if budget is not None and hasattr(budget, "to_api"):
        message["budget"] = budget.to_api()
    return message


def management_poster(endpoint_url: str) -> Callable[[str, bytes], None]:
    """post_to_connection through a client for this API stage's management endpoint (boto3's, as in AWS)."""
    from botocore.config import Config

    client = shared_session().create_client(
        "apigatewaymanagementapi",
        endpoint_url=endpoint_url,
        config=Config(
            retries={"mode": "standard", "total_max_attempts": POST_MAX_ATTEMPTS},
            connect_timeout=POST_CONNECT_TIMEOUT_S,
            read_timeout=POST_READ_TIMEOUT_S,
        ),
    )
    gone = client.exceptions.GoneException

    def post(connection_id: str, data: bytes) -> None:
        try:
            client.post_to_connection(ConnectionId=connection_id, Data=data)
        except gone as error:
            raise ConnectionGone(connection_id) from error

    return post


class StreamApi:
    """The WebSocket routes of one execution environment over its services."""

    def __init__(
        self,
        *,
        settings: Settings,
        service: ChatService,
        limits: UserLimits | None = None,
        poster: PostFactory = management_poster,
        endpoint_scheme: str = "https",
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.service = service
        self.limits = limits
        self._poster = poster
        self._posters: dict[str, Callable[[str, bytes], None]] = {}
        self._scheme = endpoint_scheme
        self._clock = clock
        self._wall_clock = wall_clock  # against the token's `exp` (epoch seconds)

    def handle(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        route = (event.get("requestContext") or {}).get("routeKey")
        if route in ("$connect", "$disconnect"):
            return {"statusCode": 200}
        self.message(event, context)
        return {"statusCode": 200}

    def connection(self, event: dict[str, Any], request_id: str | None) -> Connection:
        context = event["requestContext"]
        endpoint = f"{self._scheme}://{context['domainName']}/{context['stage']}"
        post = self._posters.get(endpoint)
        if post is None:
            post = self._posters[endpoint] = self._poster(endpoint)
        return Connection(post, context["connectionId"], request_id)

    def message(self, event: dict[str, Any], context: Any) -> None:
        request_id: str | None = None
        connection: Connection | None = None
        try:
            try:
                request, request_id = parse_message(event.get("body"), self.settings)
            except DomainError as error:
                request_id = getattr(error, "request_id", None)
                raise
            finally:
                connection = self.connection(event, request_id)
            user = current_user(event, now=self._wall_clock())
            self.answer(user, request, connection, context)
        except DomainError as error:
            log = logger.warning if error.status >= 500 else logger.info
            cause = repr(error.__cause__)[:500] if error.__cause__ is not None else None
            log("stream request refused", extra={"status": error.status, "reason": error.message, "cause": cause})
            if error.status >= 500:
                metrics.add_metric(name="StreamRefused", unit=MetricUnit.Count, value=1)
                # Unanswered for want of a model or a dependency (every breaker open, the table down): the
                # region's degraded rate counts it, as it counts a REST 503 (the WebSocket API has no 5xx metric).
                record_outcome(degraded=True)
            if connection is not None:
                connection.send(error_message(error))
        except Exception:
            logger.exception("unhandled error in the stream handler")
            record_outcome(degraded=True)  # unanswered: as a REST 500 in the 5xx rate
            reference = getattr(context, "aws_request_id", "unknown")
            if connection is not None:
                connection.send(
                    {"type": "error", "status": 500, "message": f"internal error; quote reference {reference}"}
                )

    def answer(self, user: str, request: ChatRequest, connection: Connection, context: Any) -> None:
        admitted = self.admit(user)
        remaining_s = context.get_remaining_time_in_millis() / 1000 - STORE_MARGIN_S
        coalescer = DeltaCoalescer(connection.send, clock=self._clock)
        answer = self.service.stream(user_id=user, request=request, emit=coalescer, remaining_s=remaining_s)
        coalescer.flush()
        incomplete = bool(getattr(answer, "incomplete", False))
        metrics.add_metric(name="StreamIncomplete" if incomplete else "StreamAnswered", unit=MetricUnit.Count, value=1)
        record_outcome(degraded=answer.degraded)  # the region's answers (POST /chat and the stream), for its alarm
        if answer.degraded:
            metrics.add_metric(name="ChatDegraded", unit=MetricUnit.Count, value=1)
        record_answer(metrics, answer)
        if answer.save_error is not None:
            metrics.add_metric(name="TurnsNotSaved", unit=MetricUnit.Count, value=1)
            logger.warning("turn not saved", extra={"reason": answer.save_error})
        budget = self.spend(user, answer, admitted)
        if budget is not None and not connection.gone:
            connection.send({"type": "budget", "budget": budget.to_api()})

    def admit(self, user: str) -> TokenBudgetStatus | None:
        """As POST /chat: the daily token budget first, then the per-user request rate."""
        return None if self.limits is None else self.limits.admit(user)

    def spend(self, user: str, answer: ChatAnswer, admitted: TokenBudgetStatus | None) -> TokenBudgetStatus | None:
        return None if self.limits is None else self.limits.spend_answer(user, answer, admitted)


def current_user(event: dict[str, Any], *, now: float) -> str:
    """The caller's Cognito `sub`, from the $connect authorizer's context; never from the message. The identity
    holds only until the token's `exp` (also in that context): a connection outlives its token (API Gateway keeps
    it up to 2 hours), so every message checks it."""
    authorizer = (event.get("requestContext") or {}).get("authorizer") or {}
    sub = authorizer.get("sub") or authorizer.get("principalId")
    if not sub:
        raise Unauthorized("sign in first: the connection carries no verified user identity")
    raw_exp = authorizer.get("exp")  # a string in the context (API Gateway passes scalars)
    try:
        expires = float(raw_exp) if isinstance(raw_exp, (str, int, float)) else float("-inf")
    except ValueError:
        expires = float("-inf")  # no expiry known (a connection authorized without one): not trusted
    if not now < expires:
        raise Unauthorized("your sign-in expired: sign in again")
    return str(sub)


def bootstrap(
    settings: Settings | None = None,
    *,
    dynamodb: Any = None,
    bedrock_factory: Any = None,
    s3vectors: Any = None,
    poster: PostFactory | None = None,
    endpoint_scheme: str = "https",
) -> Handler:
    """Wire one execution environment (as handlers.chat.bootstrap). `poster`: how to post to a stage's
    connections (default: the management API through boto3); `endpoint_scheme`: http for the sandbox's gateway."""
    settings = settings or Settings.from_env()
    dynamodb = dynamodb or data_client("dynamodb")
    service = build_chat_service(
        settings, dynamodb=dynamodb, bedrock_factory=bedrock_factory, s3vectors=s3vectors,
        tracing=PowertoolsTracing(tracer),  # X-Ray subsegments: each model attempt, retrieval, embedding
    )  # fmt: skip
    api = StreamApi(
        settings=settings,
        service=service,
        limits=build_user_limits(
            settings,
            dynamodb=dynamodb,
            on_unavailable=lambda: metrics.add_metric(name="UserLimitUnavailable", unit=MetricUnit.Count, value=1),
        ),
        poster=poster or management_poster,
        endpoint_scheme=endpoint_scheme,
    )

    @logger.inject_lambda_context
    @metrics.log_metrics
    @tracer.capture_lambda_handler
    def handle(event: dict[str, Any], context: Any) -> dict[str, Any]:
        return api.handle(event, context)

    return handle


handler = bootstrap()  # cold start: settings from the environment the stack set (the chat Lambda's)
