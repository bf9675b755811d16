"""A Lambda run by an EventBridge schedule with no payload, one run at a time, never retried: the shape of the jobs
recovery sweep, the curate job and the drift job.

A failed run has nothing to keep (no DLQ: the next run does the same work) and is not retried, neither by the rule
nor by Lambda's asynchronous invocation; reserved concurrency 1 keeps two runs from overlapping. It is a
PythonFunction, so its function, role and log group keep the paths they had before this was extracted."""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import Duration
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from constructs import Construct

from stacks.constructs.python_function import PythonFunction, lambda_code

MAX_EVENT_AGE = Duration.seconds(60)  # a run that could not start within a minute is dropped: the next one comes


class ScheduledFunction(PythonFunction):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        handler: str,
        service_name: str,
        environment: Mapping[str, str],
        every: Duration,
        description: str,
        log_key: kms.IKey,
        log_retention: logs.RetentionDays,
        timeout: Duration,
        no_dlq_reason: str,
        memory_size: int = 256,
        schedule_id: str = "Schedule",
        rule_scope: Construct | None = None,
    ) -> None:
        """`schedule_id` / `rule_scope`: where the rule sits (default: inside this construct)."""
        super().__init__(
            scope,
            construct_id,
            handler=handler,
            service_name=service_name,
            code=lambda_code(),
            log_key=log_key,
            log_retention=log_retention,
            reserved_concurrency=1,
            timeout=timeout,
            memory_size=memory_size,
            no_dlq_reason=no_dlq_reason,
            environment=dict(environment),
        )
        self.function.configure_async_invoke(retry_attempts=0, max_event_age=MAX_EVENT_AGE)
        self.rule = events.Rule(
            rule_scope or self,
            schedule_id,
            description=description,
            schedule=events.Schedule.rate(every),
            targets=[targets.LambdaFunction(self.function, retry_attempts=0, max_event_age=MAX_EVENT_AGE)],
        )
