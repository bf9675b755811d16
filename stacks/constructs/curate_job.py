"""The scheduled curate job (lambda_src/handlers/curate.py): every hour in the primary region, answers the curated
questions that have no answer for the active prompt version yet. Exact IAM: the curated table (Scan, PutItem),
the prompt catalog's pointer (GetItem), the table key through DynamoDB, InvokeModel on the Titan v2 model; the
caller grants the model chain (the same as the chat Lambda's)."""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import Duration
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from constructs import Construct

from stacks.constructs.regional_tables import RegionalTables
from stacks.constructs.scheduled_function import ScheduledFunction

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
        job = ScheduledFunction(
            self,
            "Function",
            handler="handlers.curate.handler",
            service_name="curate",
            environment=environment,
            every=CURATE_EVERY,
            description="Curated answers: answer the operators' questions for the active prompt (issue 11)",
            log_key=log_key,
            log_retention=log_retention,
            timeout=Duration.seconds(CURATE_TIMEOUT_SECONDS),
            no_dlq_reason="Invoked every hour by a schedule with no payload: a failed run has nothing to keep, the "
            "next run answers the same questions (they are still due).",
            rule_scope=self,
        )
        tables.grant_curate_job(job.role)
        job.role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="InvokeEmbeddingModel", actions=["bedrock:InvokeModel"], resources=[embedding_model_arn]
            )
        )
        self.function = job.function
        self.role = job.role
