"""API Lambda: POST /chat, the caller's own /conversations and /documents, and /jobs submit and status.

`bootstrap()` is the composition root: the module calls it once at cold start; the sandbox calls it
once per simulated execution environment, and tests with their own settings and clients. Each call
builds its own resolver and services. Powertools keeps the current event per process (a class
attribute), which is right in Lambda, where a process is one environment; the sandbox, which runs
several environments as threads of one process, makes that state per thread (local/request_state.py).

The cyclic garbage collector is paused for the init phase (imports and bootstrap) and what init built is then
frozen (`gc.freeze()`): init allocates about 100k objects that live as long as the execution environment, and
without the pause the collector traverses them again and again while they are being built (about 60 ms of CPU
of the cold start on the bench machine, a full collection among them); frozen, later collections skip them too.
Init makes next to no cyclic garbage, so the pause costs well under 1 MB.
"""

from __future__ import annotations

# ruff: noqa: E402 (the imports below run with the collector paused)
import gc

_COLLECTING = gc.isenabled()
gc.disable()

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, CORSConfig, Response, content_types
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from adapters.metrics import record_answer, record_outcome
from adapters.tracing import PowertoolsTracing
from core.chat import ChatService
from core.errors import (
    DependencyUnavailable,
    DomainError,
    InvalidRequest,
    ModelUnavailable,
    NotFound,
    Overloaded,
    TooManyRequests,
    Unauthorized,
)
from core.gateway import ModelGateway
from core.limits import TokenBudgetExceeded, TokenBudgetStatus, UserLimits
from core.models import ChatAnswer, ChatRequest, validate_conversation_id
from core.retrieval import DocumentService
from handlers.settings import Settings
from handlers.snapstart import restorable
from handlers.wiring import (
    DATA_CONNECT_TIMEOUT_S,
    Deferred,
    LazyClient,
    build_chat_service,
    build_document_service,
    build_job_service,
    build_user_limits,
    data_client,
    data_read_timeout_s,
    shared_session,
)

if TYPE_CHECKING:
    from core.health import DeepHealth
    from core.jobs import JobService

logger = Logger()
tracer = Tracer(patch_modules=["botocore"])  # only what we call: Bedrock and DynamoDB
metrics = Metrics()

Handler = Callable[[dict[str, Any], LambdaContext], dict[str, Any]]
_NO_ROUTE = "no such route: check the method and path"


def json_body(raw: str | bytes | None, settings: Settings, *, is_base64: bool = False) -> Any:
    """The request's JSON; any malformed, oversized or hostile body is a 4xx (handlers/request_body.py)."""
    from handlers.request_body import decode_json_body

    return decode_json_body(
        raw, is_base64=is_base64, max_bytes=settings.max_body_bytes, max_depth=settings.max_json_depth
    )


class ChatApi:
    """The routes of one execution environment over its services."""

    def __init__(
        self,
        *,
        settings: Settings,
        service: ChatService,
        jobs: Deferred[JobService | None],
        limits: UserLimits | None = None,
        documents: DocumentService | None = None,
        health: Deferred[DeepHealth | None] | None = None,
    ) -> None:
        self.settings = settings
        self.service = service
        self._jobs = jobs
        self.limits = limits
        self.documents = documents
        self._health = health
        # CORS headers only for the web UI's origin (never "*"); without one configured, none at all.
        cors = CORSConfig(allow_origin=settings.allowed_origin, max_age=3600) if settings.allowed_origin else None
        self.app = app = APIGatewayRestResolver(cors=cors)
        app.post("/chat")(tracer.capture_method(self.chat))
        app.post("/jobs")(tracer.capture_method(self.submit_job))
        app.get("/jobs/<job_id>")(tracer.capture_method(self.get_job))
        app.get("/conversations")(tracer.capture_method(self.list_conversations))
        app.get("/conversations/<conversation_id>")(tracer.capture_method(self.get_conversation))
        app.delete("/conversations/<conversation_id>")(tracer.capture_method(self.delete_conversation))
        app.post("/documents")(tracer.capture_method(self.start_upload))
        app.get("/documents")(tracer.capture_method(self.list_documents))
        app.get("/documents/<document_id>")(tracer.capture_method(self.get_document))
        app.delete("/documents/<document_id>")(tracer.capture_method(self.delete_document))
        app.get("/health/deep")(self.deep_health)  # public (no authorizer): failover routing probes it
        app.exception_handler(DomainError)(self.domain_error)
        app.not_found(self.not_found)
        app.exception_handler(Exception)(self.unexpected_error)

    # --- request helpers --------------------------------------------------------------------------
    def current_user(self) -> str:
        """The caller's Cognito `sub`, set by the API Gateway authorizer; never taken from the body."""
        authorizer = self.app.current_event.request_context.authorizer
        claims = (authorizer.raw_event.get("claims") if authorizer else None) or {}
        sub = claims.get("sub") if isinstance(claims, dict) else None
        if not sub:
            raise Unauthorized("sign in first: the request carries no verified user identity")
        return str(sub)

    def request(self) -> ChatRequest:
        event = self.app.current_event
        body = json_body(event.body, self.settings, is_base64=bool(event.is_base64_encoded))
        return ChatRequest.parse(body, self.settings.limits)

    def admit(self, user: str, *, spends_tokens: bool = False) -> TokenBudgetStatus | None:
        """The caller's per-user request rate, counted for valid requests only (a malformed one costs nothing),
        and, for a request the model will answer, the daily token budget (checked first: a refused request
        does not count against the rate). Returns the budget as read, or None."""
        return None if self.limits is None else self.limits.admit(user, spends_tokens=spends_tokens)

    def spend(self, user: str, answer: ChatAnswer, admitted: TokenBudgetStatus | None) -> TokenBudgetStatus | None:
        """The answer's model tokens against the user's budget; a degraded answer (no model wrote it) spends none."""
        return None if self.limits is None else self.limits.spend_answer(user, answer, admitted)

    def idempotency_key(self) -> str | None:
        headers = self.app.current_event.headers
        return headers.get("Idempotency-Key") or headers.get("idempotency-key")

    @property
    def jobs(self) -> JobService | None:
        return self._jobs.get()

    @property
    def health(self) -> DeepHealth | None:
        return self._health.get() if self._health is not None else None

    def job_service(self) -> JobService:
        jobs = self.jobs
        if jobs is None:
            raise NotFound("jobs are not enabled in this deployment")
        return jobs

    def document_service(self) -> DocumentService:
        if self.documents is None:
            raise NotFound("documents are not enabled in this deployment")
        return self.documents

    # --- routes -----------------------------------------------------------------------------------
    def chat(self) -> dict[str, Any] | Response[str]:
        user = self.current_user()
        request = self.request()
        admitted = self.admit(user, spends_tokens=True)
        remaining_ms = self.app.lambda_context.get_remaining_time_in_millis()
        try:
            answer = self.service.answer(user_id=user, request=request, remaining_s=remaining_ms / 1000 - 1.0)
        except Overloaded as error:
            metrics.add_metric(name="ChatShed", unit=MetricUnit.Count, value=1)
            if error.status >= 500:  # every breaker open: no model can answer here (429, at capacity: busy, not down)
                record_outcome(degraded=True)
            jobs = self.jobs
            if self.settings.shed_to_jobs and jobs is not None:
                job, _ = jobs.submit(user_id=user, request=request, idempotency_key=self.idempotency_key())
                note = "the model is unavailable right now: your request was queued as a job"
                return _accepted(job.to_api(), note=note)
            hint = " POST the same body to /jobs to have it answered when the model recovers." if jobs else ""
            raise type(error)(f"{error.message}.{hint}", retry_after=error.retry_after) from error
        record_outcome(degraded=answer.degraded)  # the region's answers (POST /chat and the stream), for its alarm
        # Tokens (per target), guardrail interventions, curated answers, retrieval latency: before a 503 too, so
        # the dashboards keep the answers given during an incident.
        record_answer(metrics, answer)
        if answer.degraded:
            metrics.add_metric(name="ChatDegraded", unit=MetricUnit.Count, value=1)
            if self.settings.degraded_status == 503:
                raise ModelUnavailable(f"no model could answer in time ({answer.degraded_reason})", retry_after=10)
        else:
            metrics.add_metric(name="ChatAnswered", unit=MetricUnit.Count, value=1)
        if answer.save_error is not None:  # answered, but the turn is not in the history
            metrics.add_metric(name="TurnsNotSaved", unit=MetricUnit.Count, value=1)
            logger.warning("turn not saved", extra={"reason": answer.save_error})
        body = answer.to_api()
        budget = self.spend(user, answer, admitted)
        if budget is not None:
            body["budget"] = budget.to_api()  # the web UI shows "tokens today: used / limit"
        return body

    def submit_job(self) -> Response[str]:
        user = self.current_user()
        event = self.app.current_event
        body = json_body(event.body, self.settings, is_base64=bool(event.is_base64_encoded))
        if isinstance(body, dict) and "kind" in body:  # a workflow job (core.workflow): {"kind", "documentId"}
            if body["kind"] != "summarize" or set(body) - {"kind", "documentId"}:
                raise InvalidRequest('a workflow job is {"kind": "summarize", "documentId": "<your document id>"}')
            self.admit(user, spends_tokens=True)
            job, created = self.job_service().submit_summary(
                user_id=user, document_id=body.get("documentId"), idempotency_key=self.idempotency_key()
            )
        else:
            request = ChatRequest.parse(body, self.settings.limits)
            self.admit(user, spends_tokens=True)
            job, created = self.job_service().submit(
                user_id=user, request=request, idempotency_key=self.idempotency_key()
            )
        metrics.add_metric(name="JobsSubmitted" if created else "JobsReplayed", unit=MetricUnit.Count, value=1)
        return _accepted(job.to_api(), replayed=not created)

    def get_job(self, job_id: str) -> dict[str, Any]:
        user = self.current_user()
        validate_conversation_id(job_id, field="job_id")
        return self.job_service().status(user_id=user, job_id=job_id).to_api()

    def list_conversations(self) -> dict[str, Any]:
        return {"conversations": self.service.list_conversations(user_id=self.current_user())}

    def get_conversation(self, conversation_id: str) -> dict[str, Any]:
        return self.service.get_conversation(user_id=self.current_user(), conversation_id=conversation_id).to_api()

    def delete_conversation(self, conversation_id: str) -> Response[str]:
        self.service.delete_conversation(user_id=self.current_user(), conversation_id=conversation_id)
        return Response(status_code=204, content_type=content_types.APPLICATION_JSON, body="")

    def start_upload(self) -> Response[str]:
        user = self.current_user()
        documents = self.document_service()
        event = self.app.current_event
        body = json_body(event.body, self.settings, is_base64=bool(event.is_base64_encoded))
        self.admit(user)
        created = documents.start_upload(owner=user, body=body)
        metrics.add_metric(name="DocumentUploadsStarted", unit=MetricUnit.Count, value=1)
        location = f"/documents/{created['document']['document_id']}"
        return _json(201, created, {"Location": location})

    def list_documents(self) -> dict[str, Any]:
        user = self.current_user()
        return {"documents": self.document_service().list(owner=user)}

    def get_document(self, document_id: str) -> dict[str, Any]:
        user = self.current_user()
        return self.document_service().get(owner=user, document_id=document_id).to_api()

    def delete_document(self, document_id: str) -> Response[str]:
        user = self.current_user()
        self.document_service().delete(owner=user, document_id=document_id)
        return Response(status_code=204, content_type=content_types.APPLICATION_JSON, body="")

    def deep_health(self) -> Response[str]:
        """This region's table, queue and model breakers: 200 when it can answer, else 503 + Retry-After.
        No user identity is read and no user data is returned."""
        health = self.health
        if health is None:
            raise NotFound("deep health is not configured in this deployment")
        report, fresh = health.report()
        headers = {"Cache-Control": "no-store"}
        if not report.healthy:
            headers["Retry-After"] = str(health.retry_after)
            if fresh:  # once per measurement, not per probe served from the cache
                metrics.add_metric(name="DeepHealthUnhealthy", unit=MetricUnit.Count, value=1)
                logger.warning("deep health: unhealthy", extra={"failing": list(report.failing)})
        return _json(200 if report.healthy else 503, report.to_api(now=health.now()), headers)

    # --- errors: domain errors map to HTTP here, nowhere else --------------------------------------
    def domain_error(self, error: DomainError) -> Response[str]:
        headers: dict[str, str] = {}
        retry_after = getattr(error, "retry_after", None)
        if retry_after is not None:
            headers["Retry-After"] = str(retry_after)
        if isinstance(error, (ModelUnavailable, Overloaded)):
            metrics.add_metric(name="ModelUnavailable", unit=MetricUnit.Count, value=1)
        elif isinstance(error, TokenBudgetExceeded):
            metrics.add_metric(name="TokenBudgetExceeded", unit=MetricUnit.Count, value=1)
        elif isinstance(error, TooManyRequests):
            metrics.add_metric(name="UserLimited", unit=MetricUnit.Count, value=1)
        elif isinstance(error, DependencyUnavailable):
            metrics.add_metric(name="DependencyUnavailable", unit=MetricUnit.Count, value=1)
        log = logger.warning if error.status >= 500 else logger.info
        # What the user reads is `message`; the underlying error (a provider's or AWS's own text, which may
        # name ARNs or internals) is kept here, in the log only.
        cause = repr(error.__cause__)[:500] if error.__cause__ is not None else None
        log("request refused", extra={"status": error.status, "reason": error.message, "cause": cause})
        payload: dict[str, Any] = {"message": error.message}
        if isinstance(error, TokenBudgetExceeded):
            payload["budget"] = error.budget.to_api()  # used, limit, resets_at (with Retry-After in seconds)
        return _json(error.status, payload, headers)

    def not_found(self, _: Exception) -> Response[str]:
        return _json(404, {"message": _NO_ROUTE})

    def unexpected_error(self, error: Exception) -> Response[str]:
        logger.exception("unhandled error")
        request_id = self.app.current_event.request_context.request_id
        return _json(500, {"message": f"internal error; quote reference {request_id} when reporting it"})


def _json(status: int, payload: dict[str, Any], headers: dict[str, str] | None = None) -> Response[str]:
    return Response(
        status_code=status, content_type=content_types.APPLICATION_JSON, body=json.dumps(payload), headers=headers
    )


def _accepted(body: dict[str, Any], *, note: str | None = None, replayed: bool = False) -> Response[str]:
    payload = {**body, "status_url": f"/jobs/{body['job_id']}"}
    if note:
        payload["note"] = note
    headers = {"Location": f"/jobs/{body['job_id']}"}
    if replayed:
        headers["Idempotent-Replayed"] = "true"
    return _json(202, payload, headers)


def bootstrap(
    settings: Settings | None = None,
    *,
    dynamodb: Any = None,
    sqs: Any = None,
    bedrock_factory: Any = None,
    s3: Any = None,
    s3vectors: Any = None,
) -> Handler:
    """Wire one execution environment: settings (default: from the environment) and clients (default:
    botocore's, configured in handlers.wiring) into the services and routes. Returns the handler."""
    settings = settings or Settings.from_env()
    probe_clients = {"dynamodb": dynamodb, "sqs": sqs}  # tests' clients; else probe clients (one attempt)
    dynamodb = dynamodb or data_client("dynamodb")  # one client for chat, jobs and documents
    service = build_chat_service(
        settings,
        dynamodb=dynamodb,
        bedrock_factory=bedrock_factory,
        s3vectors=s3vectors,
        tracing=PowertoolsTracing(tracer),  # X-Ray subsegments: each model attempt, retrieval, embedding
    )
    region, read_timeout_s = str(dynamodb.meta.region_name), data_read_timeout_s()  # this environment's, now
    api = ChatApi(
        settings=settings,
        service=service,
        documents=build_document_service(settings, dynamodb=dynamodb, s3=s3, s3vectors=s3vectors),
        # Built by the first request that needs them (their routes, or a shed chat request).
        jobs=Deferred(lambda: build_job_service(settings, chat=None, dynamodb=dynamodb, sqs=sqs)),
        limits=build_user_limits(
            settings,
            dynamodb=dynamodb,
            on_unavailable=lambda: metrics.add_metric(name="UserLimitUnavailable", unit=MetricUnit.Count, value=1),
        ),
        health=Deferred(
            lambda: build_deep_health(
                settings, service=service, region=region, read_timeout_s=read_timeout_s, **probe_clients
            )
        ),
    )

    @logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
    @tracer.capture_lambda_handler
    @metrics.log_metrics
    def handle(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        return api.app.resolve(event, context)

    return handle


def build_deep_health(
    settings: Settings,
    *,
    service: ChatService,
    region: str,
    read_timeout_s: float,
    dynamodb: Any = None,
    sqs: Any = None,
) -> DeepHealth:
    """The deep health checks of this execution environment: the conversations table, the jobs queue (when
    jobs are on) and the gateway's breakers. Probe clients make one attempt with the data clients' timeouts
    and are built on the first probe; bootstrap builds this on the first GET /health/deep, so cold starts pay
    for neither the clients nor these modules."""
    from adapters.health import DynamoTableProbe, SqsQueueProbe, probe_client_config
    from core.health import DeepHealth, HealthSettings

    def probe_client(service_name: str) -> Any:
        config = probe_client_config(connect_timeout_s=DATA_CONNECT_TIMEOUT_S, read_timeout_s=read_timeout_s)
        return LazyClient(lambda: shared_session().create_client(service_name, region_name=region, config=config))

    probes: list[Any] = [DynamoTableProbe(client=dynamodb or probe_client("dynamodb"), table_name=settings.table_name)]
    if settings.jobs_queue_url:
        probes.append(SqsQueueProbe(client=sqs or probe_client("sqs"), queue_url=settings.jobs_queue_url))
    gateway = service.model if isinstance(service.model, ModelGateway) else None

    def breakers() -> list[str]:
        if gateway is None:
            return []
        return [gateway.breaker_state(index).value for index in range(len(settings.targets))]

    # All probes in flight together end within one connect + read timeout (Route 53 allows 2 s after connecting).
    budget_s = DATA_CONNECT_TIMEOUT_S + read_timeout_s
    return DeepHealth(region=region, probes=probes, breakers=breakers, settings=HealthSettings(budget_s=budget_s))


def _end_of_init(collecting: bool) -> None:
    """What init built stays for the environment's life: out of the collector's generations, then collect again."""
    gc.freeze()
    if collecting:
        gc.enable()


try:
    # Cold start: settings from the environment the stack set (rebuilt after a SnapStart restore).
    handler = restorable(bootstrap)
finally:
    _end_of_init(_COLLECTING)
