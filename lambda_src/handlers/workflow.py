"""Summarize workflow Lambda: a durable function (Lambda durable execution; ADR 0005).

The worker starts it asynchronously by its alias ARN with the job id as the durable execution name (a second
start of the same job is the same execution). core.workflow.SummaryWorkflow is the orchestration; this module
adapts the SDK's DurableContext to its `Durable` port:
- a step is `context.step`: its result is checkpointed and returned from the checkpoint on replay (the runtime
  re-invokes the function after a crash, a timeout or a wait; completed chapters are never asked again);
- `ModelBusy` (throttled, breakers open, degraded) -> the step's retry strategy schedules a retry after a
  backoff: the SDK checkpoints the attempt and suspends, and the service re-invokes after the delay. Nothing
  runs (nor is billed) while it waits;
- a step that fails for good raises StepError: the workflow fails the job with a reason the user may read.

The model calls go through the same gateway as the chat path and the worker (failover chain, breakers), with
the worker's async settings (long attempt timeouts, no hedging).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

from aws_durable_execution_sdk_python import DurableContext, StepError, durable_execution
from aws_durable_execution_sdk_python.config import Duration, StepConfig
from aws_durable_execution_sdk_python.retries import RetryDecision
from aws_lambda_powertools import Logger

from adapters.document_chunks import IngestedChunks
from adapters.documents import DynamoDocumentStore
from adapters.jobs import DynamoJobStore, DynamoOpenJobSlots, PowertoolsJobEvents
from adapters.metrics import record_tokens
from core.workflow import (
    ModelBusy,
    SummaryRequest,
    SummaryWorkflow,
    Superseded,
    WorkflowFailed,
    WorkflowSettings,
)
from handlers.entry import built_on_first_call
from handlers.settings import Settings
from handlers.wiring import (
    build_chat_service,
    build_user_limits,
    data_client,
    shared_session,
    worker_gateway_settings,
)

logger = Logger()
T = TypeVar("T")

# Transient failures that are not the model's (a store after its client's retries, a bug that may pass):
# retried a few times, then the job fails with a generic reason (the error's own text goes to the log only).
_OTHER_ATTEMPTS = 3
_FAILED_STEP = "the summary could not be completed; quote the job id when reporting it, or submit it again"


def retry_strategy(settings: WorkflowSettings) -> Callable[[Exception, int], RetryDecision]:
    """The step's retry decision: `attempt` is the 1-based attempt that just failed."""

    def decide(error: Exception, attempt: int) -> RetryDecision:
        if isinstance(error, (WorkflowFailed, Superseded)):
            return RetryDecision.no_retry()
        if isinstance(error, ModelBusy):
            if attempt >= settings.max_attempts:
                return RetryDecision.no_retry()
            return RetryDecision.retry(Duration.from_seconds(settings.backoff_s(attempt, error.delay_s)))
        if attempt >= _OTHER_ATTEMPTS:
            return RetryDecision.no_retry()
        return RetryDecision.retry(Duration.from_seconds(settings.backoff_s(attempt)))

    return decide


class SdkDurable:
    """core.workflow.Durable on the SDK's context; a step that failed for good becomes WorkflowFailed."""

    def __init__(self, context: DurableContext, settings: WorkflowSettings) -> None:
        self._context = context
        self._config = StepConfig(retry_strategy=retry_strategy(settings))

    def step(self, fn: Callable[[], T], *, name: str) -> T:
        try:
            return self._context.step(lambda _: fn(), name=name, config=self._config)
        except StepError as error:
            if (error.error_type or "").rsplit(".", 1)[-1] == "Superseded":
                raise Superseded(error.message or "superseded") from error
            raise WorkflowFailed(_reason(error)) from error


def _reason(error: StepError) -> str:
    kind = (error.error_type or "").rsplit(".", 1)[-1]
    if kind == "WorkflowFailed" and error.message:
        return error.message
    if kind == "ModelBusy":
        return "the model stayed busy for too long; submit the summary again later"
    return _FAILED_STEP


class JobProgress:
    """core.workflow.ProgressSink on the jobs table (and the open-job slots the job held)."""

    def __init__(self, *, store: DynamoJobStore, slots: DynamoOpenJobSlots | None, ttl_s: int) -> None:
        self._store = store
        self._slots = slots
        self._ttl_s = ttl_s

    def running(self, user_id: str, job_id: str, *, done: int, total: int) -> bool:
        return self._store.progress(user_id, job_id, done=done, total=total)

    def finish(self, user_id: str, job_id: str, answer: dict[str, Any]) -> None:
        self._store.finish(user_id, job_id, answer, ttl_s=self._ttl_s)
        self._release(user_id, job_id)

    def fail(self, user_id: str, job_id: str, reason: str) -> None:
        self._store.fail(user_id, job_id, reason, ttl_s=self._ttl_s)
        self._release(user_id, job_id)

    def _release(self, user_id: str, job_id: str) -> None:
        if self._slots is not None:
            self._slots.release(user_id, job_id)


def build_workflow(
    settings: Settings,
    *,
    dynamodb: Any = None,
    s3vectors: Any = None,
    bedrock_factory: Any = None,
    workflow_settings: WorkflowSettings | None = None,
    model: Any = None,
) -> SummaryWorkflow:
    """The composition root (the module calls it at cold start; the sandbox and tests with their clients)."""
    if not (settings.jobs_table_name and settings.knowledge_enabled):
        raise RuntimeError("the summarize workflow needs JOBS_TABLE_NAME, DOCUMENTS_TABLE_NAME and the vector index")
    dynamodb = dynamodb or data_client("dynamodb")
    region = str(dynamodb.meta.region_name)
    if s3vectors is None:
        s3vectors = shared_session().create_client("s3vectors", region_name=region)
    if model is None:  # the same gateway as the worker: failover chain, breakers, cache scope
        chat = build_chat_service(
            settings, dynamodb=dynamodb, bedrock_factory=bedrock_factory,
            gateway_settings=worker_gateway_settings(settings),
        )  # fmt: skip
        model = chat.model
    store = DynamoJobStore(client=dynamodb, table_name=settings.jobs_table_name)
    events = PowertoolsJobEvents()

    def unavailable() -> None:  # the budget fails open (core.limits); the metric says so, as the worker's does
        events.record("UserLimitUnavailable")

    return SummaryWorkflow(
        chunks=IngestedChunks(
            documents=DynamoDocumentStore(client=dynamodb, table_name=settings.documents_table_name or ""),
            s3vectors=s3vectors,
            bucket=settings.vector_bucket_name or "",
            index=settings.vector_index_name or "",
            region=region,
        ),
        model=model,
        progress=JobProgress(
            store=store,
            slots=DynamoOpenJobSlots(client=dynamodb, table_name=settings.jobs_table_name),
            ttl_s=7 * 86_400,
        ),
        # The users' daily token budgets, as the worker spends them: admitted before each model step, each step's
        # usage spent once (this region's item of the day).
        budget=build_user_limits(settings, dynamodb=dynamodb, on_unavailable=unavailable),
        # Each model step's tokens per target, for the dashboards' token cost (EMF: counts only).
        on_tokens=lambda reply: record_tokens(
            reply.target, input_tokens=reply.usage.input_tokens, output_tokens=reply.usage.output_tokens
        ),
        settings=workflow_settings
        or WorkflowSettings(
            deadline_s=settings.job_deadline_s,
            retry_cap_s=settings.workflow_max_wait_s,
            chapter_chars=settings.workflow_chapter_chars,
            max_chapters=settings.workflow_max_chapters,
        ),
    )


def bootstrap(workflow: SummaryWorkflow | None = None, *, boto3_client: Any = None) -> Callable[..., Any]:
    """The durable handler around `workflow` (default: built from the environment). `boto3_client`: the Lambda
    client for the checkpoint API (default: the SDK's own, from the environment)."""
    workflow = workflow or build_workflow(Settings.from_env())

    def run(event: dict[str, Any], context: DurableContext) -> dict[str, Any]:
        request = SummaryRequest.from_event(event)
        started = time.monotonic()
        result = workflow.run(SdkDurable(context, workflow.settings), request)
        logger.info("summary workflow ended", extra={"job_id": request.job_id, "outcome": result["outcome"],
                                                     "seconds": round(time.monotonic() - started, 3)})  # fmt: skip
        return result

    return durable_execution(run, boto3_client=boto3_client)


lambda_handler = built_on_first_call(bootstrap)  # the Lambda entry point (the stack's Handler)
