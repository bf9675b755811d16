"""The scheduled curate job (lambda_src/handlers/curate.py): every hour in the primary region, answers the curated
questions that have no answer for the active prompt version yet. Exact IAM: the curated table (Scan, PutItem),
the prompt catalog's pointer (GetItem), the table key through DynamoDB, InvokeModel on the Titan v2 model; the
caller grants the model chain (the same as the chat Lambda's)."""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import Duration
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from constructs import Construct

from stacks.constructs.python_function import PythonFunction, lambda_code
from stacks.constructs.regional_tables import RegionalTables

CURATE_TIMEOUT_SECONDS = 900  # about 34 questions of 25 s each per run; the next run does the rest
CURATE_EVERY = Duration.hours(1)


class CurateJob(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        tables: RegionalTables,
        environment: Mapping[str, str],
        embedding_model_arn: str,
        log_key: kms.IKey,
        log_retention: logs.RetentionDays,
    ) -> None:
        super().__init__(scope, construct_id)
        job = PythonFunction(
            self,
            "Function",
            handler="handlers.curate.handler",
            service_name="curate",
            code=lambda_code(),
            log_key=log_key,
            log_retention=log_retention,
            reserved_concurrency=1,
            timeout=Duration.seconds(CURATE_TIMEOUT_SECONDS),
            memory_size=256,
            no_dlq_reason="Invoked every hour by a schedule with no payload: a failed run has nothing to keep, the "
            "next run answers the same questions (they are still due).",
            environment=dict(environment),
        )
        job.function.configure_async_invoke(retry_attempts=0, max_event_age=Duration.seconds(60))
        events.Rule(
            self,
            "Schedule",
            description="Curated answers: answer the operators' questions for the active prompt (issue 11)",
            schedule=events.Schedule.rate(CURATE_EVERY),
            targets=[targets.LambdaFunction(job.function, retry_attempts=0, max_event_age=Duration.seconds(60))],
        )
        tables.grant_curate_job(job.role)
        job.role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="InvokeEmbeddingModel", actions=["bedrock:InvokeModel"], resources=[embedding_model_arn]
            )
        )
        self.function = job.function
        self.role = job.role
