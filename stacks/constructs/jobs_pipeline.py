"""The queue between the application and the model: SQS (+DLQ), the worker Lambda, and the recovery sweep that
adopts the jobs a lost region had accepted (every minute, into this region's queue)."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from aws_cdk import CfnOutput, Duration, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from stacks.config import AppConfig
from stacks.constructs.nag import suppress
from stacks.constructs.python_function import PythonFunction, lambda_code
from stacks.constructs.regional_tables import RegionalTables
from stacks.constructs.scheduled_function import ScheduledFunction
from stacks.data_stack import OPEN_JOBS_INDEX
from stacks.lambda_settings import RECOVERY_TIMEOUT_SECONDS


class JobsPipeline(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: AppConfig,
        key: kms.IKey,
        log_retention: logs.RetentionDays,
        worker_environment: Callable[[str], Mapping[str, str]],
        tables: RegionalTables,
        recovery_environment: Callable[[str], Mapping[str, str]],
        log_key: kms.IKey | None = None,
    ) -> None:
        """`worker_environment(queue_url)` / `recovery_environment(queue_url)`: the worker's and the recovery
        sweep's environments (their Settings contracts, rendered). `tables`: this region's replicas (the sweep
        reads the jobs table's recovery index and updates jobs). `key` encrypts the queues, `log_key` (default:
        `key`) the log groups."""
        super().__init__(scope, construct_id)
        self._key = key
        jobs = config.jobs
        sizing = config.worker_sizing()
        self.dlq = sqs.Queue(
            self,
            "Dlq",
            encryption=sqs.QueueEncryption.KMS,
            encryption_master_key=key,
            enforce_ssl=True,
            retention_period=Duration.days(14),  # the longest SQS allows: time to fix and redrive
        )
        self.queue = sqs.Queue(
            self,
            "Requests",
            encryption=sqs.QueueEncryption.KMS,
            encryption_master_key=key,
            enforce_ssl=True,
            visibility_timeout=Duration.seconds(jobs.visibility_timeout_s),
            retention_period=Duration.days(jobs.retention_days),
            dead_letter_queue=sqs.DeadLetterQueue(queue=self.dlq, max_receive_count=jobs.max_receive_count),
        )
        suppress(
            self.dlq,
            "This queue is itself the dead-letter queue of the requests queue.",
            "AwsSolutions-SQS3",
        )
        self.worker = PythonFunction(
            self,
            "Worker",
            handler="handlers.worker.handler",
            service_name="worker",
            code=lambda_code(),
            log_key=log_key or key,
            log_retention=log_retention,
            reserved_concurrency=sizing.max_concurrency,
            timeout=Duration.seconds(jobs.worker_timeout_s),
            no_dlq_reason="Invoked by an SQS event source mapping: failed messages go to the requests queue's own "
            "DLQ (redrive policy), which a Lambda DLQ would not see.",
            environment=dict(worker_environment(self.queue.queue_url)),
            cold_start=config.cold_start.worker,
            primary=Stack.of(self).region == config.primary_region,
        )
        # The mapping without CDK's SqsEventSource, whose grant would add kms:Decrypt without kms:ViaService:
        # the worker's exact queue and key permissions are granted below.
        # On the "live" alias when a cold-start option is on (worker.target), else on the function.
        self.worker.target.add_event_source_mapping(
            "Requests",
            event_source_arn=self.queue.queue_arn,
            batch_size=sizing.batch_size,
            max_concurrency=sizing.max_concurrency,
            report_batch_item_failures=True,
        )
        self.worker.role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="ConsumeRequests",
                actions=[
                    "sqs:ReceiveMessage",
                    "sqs:DeleteMessage",
                    "sqs:ChangeMessageVisibility",
                    "sqs:GetQueueAttributes",
                ],
                resources=[self.queue.queue_arn],
            )
        )
        self.worker.role.add_to_principal_policy(self._queue_key_statement("QueueKeyToReceive", ["kms:Decrypt"]))

        self.recovery = self._recovery(
            tables=tables, log_key=log_key or key, log_retention=log_retention,
            environment=recovery_environment(self.queue.queue_url),
        )  # fmt: skip

        self.alarms = [
            self.dlq.metric_approximate_number_of_messages_visible(period=Duration.minutes(1)).create_alarm(
                self,
                "DlqNotEmpty",
                alarm_description="jobs parked in the DLQ: fix the cause, then `make redrive`",
                threshold=1,
                evaluation_periods=1,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            ),
            self.queue.metric_approximate_age_of_oldest_message(period=Duration.minutes(1)).create_alarm(
                self,
                "OldestMessageAge",
                alarm_description="jobs are waiting longer than half their age limit",
                threshold=jobs.max_age_s // 2,
                evaluation_periods=3,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            ),
            self.recovery.function.metric_errors(period=Duration.minutes(1)).create_alarm(
                self,
                "RecoveryFailing",
                alarm_description="the jobs recovery sweep keeps failing: a lost region's jobs are not being "
                "adopted here (read the sweep's log)",
                threshold=1,
                evaluation_periods=5,
                datapoints_to_alarm=3,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            ),
        ]
        CfnOutput(self, "JobsQueueUrl", value=self.queue.queue_url)
        CfnOutput(self, "JobsDlqUrl", value=self.dlq.queue_url)

    def _recovery(
        self,
        *,
        tables: RegionalTables,
        log_key: kms.IKey,
        log_retention: logs.RetentionDays,
        environment: Mapping[str, str],
    ) -> PythonFunction:
        """The sweep (handlers/recovery.py), every minute, one pass at a time; a failed pass is not retried
        (the next one a minute later does the same work). Exact IAM: Query on the recovery index only,
        UpdateItem on the jobs table (adopt, re-send, fail a too-old job, give its slot back), SendMessage on
        this region's queue only; the keys only through DynamoDB and SQS in this region."""
        sweep = ScheduledFunction(
            self,
            "Recovery",
            handler="handlers.recovery.handler",
            service_name="jobs-recovery",
            environment=environment,
            every=Duration.minutes(1),
            description="Jobs recovery: adopt the open jobs of a region that went quiet (issue 10)",
            log_key=log_key,
            log_retention=log_retention,
            timeout=Duration.seconds(RECOVERY_TIMEOUT_SECONDS),
            no_dlq_reason="Invoked every minute by a schedule with no payload: a failed pass has nothing to keep, "
            "the next pass repeats its work (and an alarm watches its errors).",
            schedule_id="RecoverySchedule",
            rule_scope=self,
        )
        region = Stack.of(self).region
        sweep.role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="FindOpenJobs",
                actions=["dynamodb:Query"],
                resources=[f"{tables.jobs.table_arn}/index/{OPEN_JOBS_INDEX}"],
            )
        )
        sweep.role.add_to_principal_policy(
            iam.PolicyStatement(sid="AdoptJobs", actions=["dynamodb:UpdateItem"], resources=[tables.jobs.table_arn])
        )
        sweep.role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="TableKey",
                actions=["kms:Decrypt", "kms:DescribeKey"],
                resources=[tables.key.key_arn],
                conditions={"StringEquals": {"kms:ViaService": f"dynamodb.{region}.amazonaws.com"}},
            )
        )
        self.grant_send(sweep.role)
        return sweep

    def grant_send(self, role: iam.IRole) -> None:
        """Exactly SendMessage on the requests queue, and the key use SSE-KMS needs for it, only through SQS."""
        role.add_to_principal_policy(
            iam.PolicyStatement(sid="SendRequests", actions=["sqs:SendMessage"], resources=[self.queue.queue_arn])
        )
        role.add_to_principal_policy(
            self._queue_key_statement("QueueKeyToSend", ["kms:GenerateDataKey", "kms:Decrypt"])
        )

    def _queue_key_statement(self, sid: str, actions: list[str]) -> iam.PolicyStatement:
        region = Stack.of(self).region
        return iam.PolicyStatement(
            sid=sid,
            actions=actions,
            resources=[self._key.key_arn],
            conditions={"StringEquals": {"kms:ViaService": f"sqs.{region}.amazonaws.com"}},
        )
