"""Jobs recovery sweep Lambda: every minute in each region, so an accepted job is never lost to a region outage.

A job waits in the queue of the region that accepted it. When that region is lost, the jobs table (a global
table) still shows the job in the other region, with its owner region and a heartbeat the owner stopped
refreshing. Each pass (core.jobs.JobService.sweep): the peers' open jobs quiet for longer than
JOB_STRANDED_AFTER_SECONDS are adopted (a conditional write: owner := this region, only if owner and
heartbeat are unchanged) and sent to this region's queue; this region's jobs that were never sent (a submit
or an adoption that crashed between its write and its send) are sent; jobs older than JOB_MAX_AGE_SECONDS
fail with their reason. The worker answers adopted jobs inside its idempotency records (a global table too),
so a job the lost region had already answered is replayed, not answered again.

Reads only the recovery index (keys, status, times: never a job's text); writes counts as metrics.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext

from adapters.jobs import DynamoJobStore, DynamoOpenJobSlots, PowertoolsJobEvents, SqsJobQueue
from core.jobs import JobService, JobSettings
from core.ports import JobEvents
from handlers.entry import built_on_first_call
from handlers.settings import RecoverySettings
from handlers.wiring import data_client

logger = Logger()
tracer = Tracer(patch_modules=["botocore"])
metrics = Metrics()

Handler = Callable[[dict[str, Any], LambdaContext], dict[str, Any]]
# Of the Lambda's remaining time, what a pass leaves unused: its last conditional write and send must finish.
RESERVE_S = 5.0


def build_recovery_jobs(
    settings: RecoverySettings,
    *,
    dynamodb: Any = None,
    sqs: Any = None,
    clock: Callable[[], float] = time.time,
    events: JobEvents | None = None,
) -> JobService:
    """The sweep's job service: this region's replica of the jobs table (the region is the client's) and queue."""
    dynamodb = dynamodb or data_client("dynamodb")
    return JobService(
        store=DynamoJobStore(client=dynamodb, table_name=settings.jobs_table_name, clock=clock),
        queue=SqsJobQueue(client=sqs, client_factory=lambda: data_client("sqs"), queue_url=settings.jobs_queue_url),
        chat=None,
        settings=JobSettings(
            max_age_s=settings.job_max_age_s,
            stranded_after_s=settings.stranded_after_s,
            max_open_per_user=settings.max_open_jobs_per_user,
        ),
        clock=clock,
        slots=DynamoOpenJobSlots(client=dynamodb, table_name=settings.jobs_table_name),
        events=events or PowertoolsJobEvents(metrics),
    )


def bootstrap(
    settings: RecoverySettings | None = None,
    *,
    dynamodb: Any = None,
    sqs: Any = None,
    clock: Callable[[], float] = time.time,
    jobs: JobService | None = None,
) -> Handler:
    """The sweep's composition root: the module calls it once at cold start, the sandbox and the tests with their
    own settings, clients (their region is the sweeping region) and clock. Returns the Lambda handler."""
    settings = settings or RecoverySettings.from_env()
    jobs = jobs or build_recovery_jobs(settings, dynamodb=dynamodb, sqs=sqs, clock=clock)
    peers = settings.peer_regions
    budget_s = settings.sweep_budget_s

    @logger.inject_lambda_context
    @tracer.capture_lambda_handler
    @metrics.log_metrics
    def handle(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        remaining_s = context.get_remaining_time_in_millis() / 1000 - RESERVE_S if context else budget_s
        report = jobs.sweep(peers=peers, budget_s=max(1.0, min(budget_s, remaining_s)))
        summary = {**asdict(report), "region": jobs.region, "peers": list(peers)}
        logger.info("jobs recovery pass", extra=summary)
        return summary

    return handle


handler = built_on_first_call(bootstrap)  # a scheduled sweep: no request waits on its cold start
