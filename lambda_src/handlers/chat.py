"""API Lambda: POST /chat and the caller's own /conversations."""

from __future__ import annotations

import json
from typing import Any

import botocore.session
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, CORSConfig, Response, content_types
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from adapters.answer_cache import DynamoAnswerCache
from adapters.bedrock import BedrockTarget
from adapters.dynamodb import DynamoConversationStore
from adapters.metrics import PowertoolsGatewayMetrics
from core.chat import ChatService
from core.errors import DomainError, InvalidRequest, ModelUnavailable, PayloadTooLarge, Unauthorized
from core.gateway import GatewaySettings, ModelGateway
from core.models import ChatRequest
from core.ports import TargetModel
from handlers.settings import Settings

logger = Logger()
tracer = Tracer(patch_modules=["botocore"])  # only what we call: Bedrock and DynamoDB
metrics = Metrics()
app = APIGatewayRestResolver(cors=CORSConfig(allow_origin="*", max_age=3600))


def build_chat_service(
    settings: Settings,
    *,
    dynamodb: Any = None,
    bedrock_factory: Any = None,
    gateway_settings: GatewaySettings | None = None,
) -> ChatService:
    """Composition root: wire the adapters into the core once per cold start.

    Clients may be passed in (tests, the local sandbox); by default they are botocore's, configured
    here. botocore directly: boto3's extra layer costs cold-start time and buys nothing for
    low-level clients. One session, so endpoint data is loaded once.
    """
    session = botocore.session.get_session()
    gateway_settings = gateway_settings or GatewaySettings(
        deadline_s=settings.deadline_s,
        guardrail_version=settings.targets[0].guardrail[1] if settings.targets[0].guardrail else "none",
    )
    prewarm = (gateway_settings.cold_timeout_s, gateway_settings.min_timeout_s, gateway_settings.probe_timeout_s)

    def factory(region: str) -> Any:
        if bedrock_factory is not None:
            return lambda config: bedrock_factory(region, config)
        return lambda config: session.create_client("bedrock-runtime", region_name=region, config=config)

    targets: list[TargetModel] = []
    for t in settings.targets:
        if t.langchain is not None:
            from adapters.langchain_target import LangChainTarget, load_chat_model  # only when configured

            targets.append(LangChainTarget(chat_model=load_chat_model(t.langchain), name=t.model_id, region=t.region))
            continue
        targets.append(
            BedrockTarget(
                client_factory=factory(t.region),
                model_id=t.model_id,
                region=t.region,
                max_tokens=t.max_tokens,
                guardrail=t.guardrail,
                prewarm=prewarm,
            )
        )
    dynamodb = dynamodb or session.create_client("dynamodb")
    cache = (
        DynamoAnswerCache(client=dynamodb, table_name=settings.cache_table_name) if settings.cache_table_name else None
    )
    gateway = ModelGateway(
        targets=targets,
        settings=gateway_settings,
        cache=cache,
        metrics=PowertoolsGatewayMetrics(),
    )
    store = DynamoConversationStore(client=dynamodb, table_name=settings.table_name)
    return ChatService(store=store, model=gateway, limits=settings.limits, deadline_s=settings.deadline_s)


settings = Settings.from_env()
service = build_chat_service(settings)


def current_user() -> str:
    """The caller's Cognito `sub`, set by the API Gateway authorizer; never taken from the body."""
    authorizer = app.current_event.request_context.authorizer
    claims = (authorizer.raw_event.get("claims") if authorizer else None) or {}
    sub = claims.get("sub") if isinstance(claims, dict) else None
    if not sub:
        raise Unauthorized("sign in first: the request carries no verified user identity")
    return str(sub)


def json_body() -> Any:
    raw = app.current_event.decoded_body or ""
    size = len(raw.encode("utf-8"))
    if size > settings.limits.max_body_bytes:
        raise PayloadTooLarge(f"the request body is {size} bytes; the limit is {settings.limits.max_body_bytes}")
    if not raw.strip():
        raise InvalidRequest('the request body is empty; send JSON such as {"message": "Hello"}')
    try:
        return json.loads(raw)
    except json.JSONDecodeError as error:
        raise InvalidRequest(
            f"the request body is not valid JSON ({error.msg} at line {error.lineno} column {error.colno})"
        ) from error


@app.post("/chat")
@tracer.capture_method
def chat() -> dict[str, Any]:
    user = current_user()
    request = ChatRequest.parse(json_body(), settings.limits)
    remaining_ms = app.lambda_context.get_remaining_time_in_millis()
    answer = service.answer(user_id=user, request=request, remaining_s=remaining_ms / 1000 - 1.0)
    if answer.degraded:
        metrics.add_metric(name="ChatDegraded", unit=MetricUnit.Count, value=1)
        if settings.degraded_status == 503:
            raise ModelUnavailable(f"no model could answer in time ({answer.degraded_reason})", retry_after=10)
    else:
        metrics.add_metric(name="ChatAnswered", unit=MetricUnit.Count, value=1)
        metrics.add_metric(name="OutputTokens", unit=MetricUnit.Count, value=answer.usage.output_tokens)
    return answer.to_api()


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
    if isinstance(error, ModelUnavailable):
        headers["Retry-After"] = str(error.retry_after)
        metrics.add_metric(name="ModelUnavailable", unit=MetricUnit.Count, value=1)
    log = logger.warning if error.status >= 500 else logger.info
    log("request refused", extra={"status": error.status, "reason": error.message})
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
