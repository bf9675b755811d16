"""The ingest Lambda on one region's KnowledgeStack: S3 event -> SQS (+DLQ) -> parse, chunk, embed, store vectors.

The embedding model is the bottleneck, so the pipeline's parallelism comes from its quota (ingest_sizing):
as many documents in flight as the quota keeps busy, each execution environment paced to its share.
"""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import Duration, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from constructs import Construct

from stacks.config import AppConfig
from stacks.constructs.python_function import PythonFunction, lambda_code
from stacks.constructs.regional_tables import RegionalTables
from stacks.knowledge_stack import VISIBILITY_TIMEOUTS, KnowledgeStack
from stacks.lambda_settings import ingest_sizing

HANDLER = "handlers.ingest.handler"


class IngestPipeline(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: AppConfig,
        knowledge: KnowledgeStack,
        tables: RegionalTables,
        environment: Mapping[str, str],
        log_key: kms.IKey,
        log_retention: logs.RetentionDays,
    ) -> None:
        """`environment`: the ingest Lambda's (IngestSettings, rendered). The queue, bucket and index are
        `knowledge`'s (this region's KnowledgeStack); the documents table is `tables`'."""
        super().__init__(scope, construct_id)
        settings = config.knowledge
        sizing = ingest_sizing(config)
        self.ingest = PythonFunction(
            self,
            "Function",
            handler=HANDLER,
            service_name="ingest",
            code=lambda_code(),
            log_key=log_key,
            log_retention=log_retention,
            reserved_concurrency=sizing.max_concurrency,
            timeout=Duration.seconds(settings.ingest_timeout_s),
            no_dlq_reason="Invoked by an SQS event source mapping: failed messages go to the ingest queue's own "
            "DLQ (redrive policy), which a Lambda DLQ would not see.",
            environment=dict(environment),
            cold_start=config.cold_start.ingest,
            primary=Stack.of(self).region == config.primary_region,
        )
        self.role = self.ingest.role
        # One document per invocation: a document's embeds are paced, so a batch would only serialise them.
        # Not CDK's SqsEventSource, whose grant adds more than the statement below.
        self.ingest.target.add_event_source_mapping(
            "Ingest",
            event_source_arn=knowledge.queue.queue_arn,
            batch_size=1,
            max_concurrency=sizing.max_concurrency,
            report_batch_item_failures=True,
        )
        self.role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="ConsumeIngestQueue",
                actions=[
                    "sqs:ReceiveMessage",
                    "sqs:DeleteMessage",
                    "sqs:ChangeMessageVisibility",
                    "sqs:GetQueueAttributes",
                ],
                resources=[knowledge.queue.queue_arn],
            )
        )
        knowledge.grant_ingest(self.role)
        tables.grant_documents(self.role)

        self.alarms = [
            knowledge.dlq.metric_approximate_number_of_messages_visible(period=Duration.minutes(1)).create_alarm(
                self,
                "DlqNotEmpty",
                alarm_description="ingest messages parked in the DLQ: fix the cause, then `make redrive`",
                threshold=1,
                evaluation_periods=1,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            ),
            knowledge.queue.metric_approximate_age_of_oldest_message(period=Duration.minutes(1)).create_alarm(
                self,
                "OldestMessageAge",
                alarm_description="documents have waited longer than one visibility timeout to be ingested",
                threshold=VISIBILITY_TIMEOUTS * settings.ingest_timeout_s,
                evaluation_periods=3,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            ),
        ]
