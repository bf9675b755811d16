"""Jobs worker Lambda: SQS batch with partial failures; each job answered once (idempotency).

Per record: answer the job inside Powertools idempotency (keyed by job id), so a redelivery, or a
crash after the model answered, replays the stored answer instead of calling the model again;
then write the job's terminal state (conditional, safe to repeat). A job the model cannot answer
now goes back to the queue as a new, delayed message (its receive count does not grow, so
throttling never sends it to the DLQ). A record that keeps failing is reported as a batch item
failure; on its last receive the job is marked failed with the reason, and SQS parks the message
in the DLQ for `make redrive`.

Disaster recovery: a message whose job another region has adopted (this region was out; see core.jobs) is
dropped before any idempotency record is written: the owner answers it, or has already. A message of this region's
own job quiet for the stranded threshold (the region is back from an outage in which the job may have been adopted)
is settled first: heartbeat refreshed, re-sent after JOB_SETTLE_SECONDS, not answered on this receive (see
JobService.settle: this bounds a double answer at failback to the replication lag).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.typing import LambdaContext

from adapters.jobs import JOB_EVENT_METRICS
from adapters.metrics import record_tokens
from adapters.residue import JOB_IDEMPOTENCY_PREFIX
from adapters.tracing import PowertoolsTracing
from core.jobs import JobService, OwnedElsewhere, RetryLater
from core.models import TargetRef
from core.workflow import WorkflowStarter
from handlers.settings import Settings
from handlers.snapstart import restorable
from handlers.wiring import build_chat_service, build_job_service, data_client, worker_gateway_settings

logger = Logger()
tracer = Tracer(patch_modules=["botocore"])
metrics = Metrics()

Handler = Callable[[dict[str, Any], LambdaContext], dict[str, Any]]


class PoisonMessage(ValueError):
    """A record that can never be processed as it is (malformed): it must reach the DLQ."""


def parse(record: SQSRecord) -> dict[str, Any]:
    try:
        message = json.loads(record.body)
    except json.JSONDecodeError as error:
        raise PoisonMessage(f"message body is not JSON: {error.msg}") from error
    if not isinstance(message, dict) or not {"job_id", "user_id"} <= set(message):
        raise PoisonMessage("message lacks job_id/user_id")
    return message


def failed_reason(receives: int, job_id: str) -> str:
    """What the user reads when their job could not be processed: no internals, a reference to quote."""
    return (
        f"the job could not be processed after {receives} attempts and was set aside for an operator; "
        f"quote job {job_id} when reporting it, or submit the request again"
    )


def build_worker_jobs(
    settings: Settings,
    *,
    dynamodb: Any = None,
    sqs: Any = None,
    bedrock_factory: Any = None,
    workflows: WorkflowStarter | None = None,
) -> JobService:
    """The worker's job service: the chat path's gateway, tuned for async work; `workflows` starts the durable
    workflows (default: the summarize function's alias from SUMMARIZE_FUNCTION_ARN, when set)."""
    chat = build_chat_service(
        settings,
        dynamodb=dynamodb,
        bedrock_factory=bedrock_factory,
        gateway_settings=worker_gateway_settings(settings),
        tracing=PowertoolsTracing(tracer),  # X-Ray subsegments: each model attempt, retrieval, embedding
    )
    jobs = build_job_service(settings, chat=chat, dynamodb=dynamodb, sqs=sqs)
    if jobs is None or not settings.idempotency_table_name:
        raise RuntimeError("the worker needs JOBS_TABLE_NAME, JOBS_QUEUE_URL and IDEMPOTENCY_TABLE_NAME")
    jobs.settings = replace(jobs.settings, settle_s=settings.job_settle_s)  # only the worker settles messages
    if workflows is None and settings.summarize_function_arn:
        from adapters.workflows import LambdaWorkflowStarter

        workflows = LambdaWorkflowStarter(functions={"summarize": settings.summarize_function_arn})
    jobs.attach_workflows(workflows)
    return jobs


def bootstrap(
    settings: Settings | None = None,
    *,
    dynamodb: Any = None,
    sqs: Any = None,
    bedrock_factory: Any = None,
    jobs: JobService | None = None,
    workflows: WorkflowStarter | None = None,
) -> Handler:
    """The worker's composition root: the module calls it once at cold start, the sandbox and the tests
    with their own settings and clients (or a job service of their own). Returns the Lambda handler."""
    settings = settings or Settings.from_env()
    dynamodb = dynamodb or data_client("dynamodb")  # also the idempotency layer's: the same retries
    jobs = jobs or build_worker_jobs(
        settings, dynamodb=dynamodb, sqs=sqs, bedrock_factory=bedrock_factory, workflows=workflows
    )
    config = IdempotencyConfig(
        event_key_jmespath="job_id",
        expires_after_seconds=int(settings.job_max_age_s) + 3600,  # outlives any job
    )
    persistence = DynamoDBPersistenceLayer(
        table_name=settings.idempotency_table_name,
        boto3_client=dynamodb,
    )
    # A batch whose every record failed is answered with every record as a failure (each goes back to the
    # queue, towards its DLQ), not with an exception: the handler never fails as a whole.
    processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)

    def remaining_seconds() -> float:
        context = config.lambda_context
        return context.get_remaining_time_in_millis() / 1000 - 2.0 if context else settings.job_deadline_s

    # A fixed key prefix (not the function's name), so deleting a conversation can find its jobs' records.
    @idempotent_function(
        data_keyword_argument="message", config=config, persistence_store=persistence, key_prefix=JOB_IDEMPOTENCY_PREFIX
    )
    def answer_job(message: dict[str, Any]) -> dict[str, Any]:
        result = jobs.answer(message, remaining_s=remaining_seconds())
        # The tokens the job's answer used, per target: here, inside the idempotent function, so a replayed
        # result (the same answer again, no model call) is never counted twice.
        answer = result.get("answer") if result.get("outcome") == "answered" else None
        if answer:
            usage, target = answer["usage"], answer["target"]
            record_tokens(TargetRef(model_id=target["model_id"], region=target["region"]),
                          input_tokens=usage["input_tokens"], output_tokens=usage["output_tokens"])  # fmt: skip
        return result

    def dropped(message: dict[str, Any], owner_region: str) -> None:
        metrics.add_metric(name=JOB_EVENT_METRICS["owned_elsewhere"], unit=MetricUnit.Count, value=1)
        logger.info("job owned by another region: message dropped",
                    extra={"job_id": message["job_id"], "owner_region": owner_region})  # fmt: skip

    def record_handler(record: SQSRecord) -> None:
        message = parse(record)
        try:
            owner = jobs.owned_elsewhere(message)
            if owner is not None:
                dropped(message, owner)
                return
            if jobs.settle(message):  # JobsSettled: the job service's event
                logger.info("job quiet since before an outage: re-sent after the settle delay, not answered yet",
                            extra={"job_id": message["job_id"], "delay_s": jobs.settle_delay_s})  # fmt: skip
                return
            try:
                result = answer_job(message=message)
            except RetryLater as later:
                if jobs.requeue(message, later.delay_s):
                    metrics.add_metric(name="JobsRequeued", unit=MetricUnit.Count, value=1)
                    logger.info("job requeued", extra={"job_id": message["job_id"], "delay_s": later.delay_s})
                else:
                    logger.info("job not requeued: it finished or another region adopted it",
                                extra={"job_id": message["job_id"]})  # fmt: skip
                return
            except OwnedElsewhere as elsewhere:  # adopted between the check above and the job's write
                dropped(message, elsewhere.owner_region)
                return
            jobs.complete(message, result)
            metrics.add_metric(name=f"Jobs.{result['outcome']}", unit=MetricUnit.Count, value=1)
            if result.get("answer", {}).get("save_error"):  # the job has its answer; the conversation lacks the turn
                metrics.add_metric(name="TurnsNotSaved", unit=MetricUnit.Count, value=1)
        except Exception:
            receives = int(record.attributes.approximate_receive_count or 1)
            # The error's own text (table names, ARNs, provider messages) goes to the log, never to the user.
            logger.exception("job attempt failed", extra={"job_id": message["job_id"], "receives": receives})
            if receives >= settings.max_receive_count:
                jobs.fail(message, failed_reason(receives, message["job_id"]))
                metrics.add_metric(name="JobsFailed", unit=MetricUnit.Count, value=1)
            raise

    @logger.inject_lambda_context
    @tracer.capture_lambda_handler
    @metrics.log_metrics
    def handle(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        config.register_lambda_context(context)
        return process_partial_response(
            event=event, record_handler=record_handler, processor=processor, context=context
        )

    return handle


handler = restorable(bootstrap)  # cold start: settings from the environment (rebuilt after a SnapStart restore)
