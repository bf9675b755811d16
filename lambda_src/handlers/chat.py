"""API Lambda: POST /chat and the caller's own /conversations."""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, CORSConfig, Response, content_types
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from core.chat import ChatService
from core.errors import DependencyUnavailable, DomainError, ModelUnavailable, NotFound, Overloaded, Unauthorized
from core.jobs import JobService
from core.models import ChatRequest, validate_conversation_id
from handlers.settings import Settings
from handlers.wiring import build_chat_service, build_job_service, data_client

logger = Logger()
tracer = Tracer(patch_modules=["botocore"])  # only what we call: Bedrock and DynamoDB
metrics = Metrics()
app = APIGatewayRestResolver(cors=CORSConfig(allow_origin="*", max_age=3600))


def configure(new_settings: Settings) -> None:
    """(Re)build the module's services: at cold start, and when the sandbox swaps endpoints."""
    global settings, service, jobs
    settings = new_settings
    dynamodb = data_client("dynamodb")  # one client for chat and jobs
    service = build_chat_service(settings, dynamodb=dynamodb)
    jobs = build_job_service(settings, chat=None, dynamodb=dynamodb)


settings: Settings
service: ChatService
jobs: JobService | None
configure(Settings.from_env())


def current_user() -> str:
    """The caller's Cognito `sub`, set by the API Gateway authorizer; never taken from the body."""
    authorizer = app.current_event.request_context.authorizer
    claims = (authorizer.raw_event.get("claims") if authorizer else None) or {}
    sub = claims.get("sub") if isinstance(claims, dict) else None
    if not sub:
        raise Unauthorized("sign in first: the request carries no verified user identity")
    return str(sub)


def json_body() -> Any:
    """The request's JSON; any malformed, oversized or hostile body is a 4xx (handlers/request_body.py)."""
    from handlers.request_body import decode_json_body

    event = app.current_event
    return decode_json_body(
        event.body,
        is_base64=bool(event.is_base64_encoded),
        max_bytes=settings.limits.max_body_bytes,
        max_depth=settings.max_json_depth,
    )


@app.post("/chat")
@tracer.capture_method
def chat() -> dict[str, Any] | Response[str]:
    user = current_user()
    request = ChatRequest.parse(json_body(), settings.limits)
    remaining_ms = app.lambda_context.get_remaining_time_in_millis()
    try:
        answer = service.answer(user_id=user, request=request, remaining_s=remaining_ms / 1000 - 1.0)
    except Overloaded as error:
        metrics.add_metric(name="ChatShed", unit=MetricUnit.Count, value=1)
        if settings.shed_to_jobs and jobs is not None:
            job, _ = jobs.submit(user_id=user, request=request, idempotency_key=idempotency_key())
            return _accepted(job.to_api(), note="the model is unavailable right now: your request was queued as a job")
        hint = " POST the same body to /jobs to have it answered when the model recovers." if jobs else ""
        raise Overloaded(f"{error.message}.{hint}", retry_after=error.retry_after) from error
    if answer.degraded:
        metrics.add_metric(name="ChatDegraded", unit=MetricUnit.Count, value=1)
        if settings.degraded_status == 503:
            raise ModelUnavailable(f"no model could answer in time ({answer.degraded_reason})", retry_after=10)
    else:
        metrics.add_metric(name="ChatAnswered", unit=MetricUnit.Count, value=1)
        metrics.add_metric(name="OutputTokens", unit=MetricUnit.Count, value=answer.usage.output_tokens)
    if answer.save_error is not None:  # answered, but the turn is not in the history
        metrics.add_metric(name="TurnsNotSaved", unit=MetricUnit.Count, value=1)
        logger.warning("turn not saved", extra={"reason": answer.save_error})
    return answer.to_api()


def idempotency_key() -> str | None:
    return app.current_event.headers.get("Idempotency-Key") or app.current_event.headers.get("idempotency-key")


def _accepted(body: dict[str, Any], *, note: str | None = None, replayed: bool = False) -> Response[str]:
    payload = {**body, "status_url": f"/jobs/{body['job_id']}"}
    if note:
        payload["note"] = note
    headers = {"Location": f"/jobs/{body['job_id']}"}
    if replayed:
        headers["Idempotent-Replayed"] = "true"
    return Response(
        status_code=202, content_type=content_types.APPLICATION_JSON, body=json.dumps(payload), headers=headers
    )


def job_service() -> JobService:
    if jobs is None:
        raise NotFound("jobs are not enabled in this deployment")
    return jobs


@app.post("/jobs")
@tracer.capture_method
def submit_job() -> Response[str]:
    user = current_user()
    request = ChatRequest.parse(json_body(), settings.limits)
    job, created = job_service().submit(user_id=user, request=request, idempotency_key=idempotency_key())
    metrics.add_metric(name="JobsSubmitted" if created else "JobsReplayed", unit=MetricUnit.Count, value=1)
    return _accepted(job.to_api(), replayed=not created)


@app.get("/jobs/<job_id>")
@tracer.capture_method
def get_job(job_id: str) -> dict[str, Any]:
    user = current_user()
    validate_conversation_id(job_id, field="job_id")
    return job_service().status(user_id=user, job_id=job_id).to_api()


@app.get("/conversations")
@tracer.capture_method
def list_conversations() -> dict[str, Any]:
    return {"conversations": service.list_conversations(user_id=current_user())}


@app.get("/conversations/<conversation_id>")
@tracer.capture_method
def get_conversation(conversation_id: str) -> dict[str, Any]:
    return service.get_conversation(user_id=current_user(), conversation_id=conversation_id).to_api()


@app.delete("/conversations/<conversation_id>")
@tracer.capture_method
def delete_conversation(conversation_id: str) -> Response[str]:
    service.delete_conversation(user_id=current_user(), conversation_id=conversation_id)
    return Response(status_code=204, content_type=content_types.APPLICATION_JSON, body="")


@app.exception_handler(DomainError)
def domain_error(error: DomainError) -> Response[str]:
    headers: dict[str, str] = {}
    if isinstance(error, (ModelUnavailable, Overloaded)):
        headers["Retry-After"] = str(error.retry_after)
        metrics.add_metric(name="ModelUnavailable", unit=MetricUnit.Count, value=1)
    elif isinstance(error, DependencyUnavailable):
        headers["Retry-After"] = str(error.retry_after)
        metrics.add_metric(name="DependencyUnavailable", unit=MetricUnit.Count, value=1)
    log = logger.warning if error.status >= 500 else logger.info
    # What the user reads is `message`; the underlying error (a provider's or AWS's own text, which may
    # name ARNs or internals) is kept here, in the log only.
    cause = repr(error.__cause__)[:500] if error.__cause__ is not None else None
    log("request refused", extra={"status": error.status, "reason": error.message, "cause": cause})
    return Response(
        status_code=error.status,
        content_type=content_types.APPLICATION_JSON,
        body=json.dumps({"message": error.message}),
        headers=headers,
    )


@app.not_found
def not_found(_: Exception) -> Response[str]:
    return Response(
        status_code=404,
        content_type=content_types.APPLICATION_JSON,
        body=json.dumps({"message": "no such route: check the method and path"}),
    )


@app.exception_handler(Exception)
def unexpected_error(error: Exception) -> Response[str]:
    logger.exception("unhandled error")
    request_id = app.current_event.request_context.request_id
    return Response(
        status_code=500,
        content_type=content_types.APPLICATION_JSON,
        body=json.dumps({"message": f"internal error; quote reference {request_id} when reporting it"}),
    )


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
