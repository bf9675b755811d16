"""The drift job (lambda_src/handlers/drift.py) in each region: every `drift.every_hours`, reads the chat path's
signals (GetMetricData), records or compares the baseline, emits `Drift` (PutMetricData, dimension Signal) and
`DriftBeyondBounds` (no dimension: how many signals passed their bounds, 0 included), and refreshes the corpus
centroid from the vector index. Two alarms per region: `DriftBeyondBounds >= 1` (one alarm, not one per signal: each
costs $0.10 a month, issue 12's idle goal; the job compares with the bounds it gets in DRIFT_BOUNDS) and the job's
errors.

Exact IAM: GetMetricData (no resource-level permissions exist for it), PutMetricData only into the app's namespace
(condition cloudwatch:namespace), GetItem/PutItem on the prompts table only for this region's `drift#<region>`
items (condition dynamodb:LeadingKeys), the table key only through DynamoDB; with knowledge, ListVectors and
GetVectors (ListVectors returns the data only with both) on this region's index and its key through S3 Vectors."""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import Duration, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from constructs import Construct

from adapters.drift_store import BEYOND_BOUNDS_METRIC, DRIFT_METRIC, SIGNAL_DIMENSION
from stacks.constructs.nag import suppress
from stacks.constructs.regional_tables import RegionalTables
from stacks.constructs.scheduled_function import ScheduledFunction

DRIFT_TIMEOUT_SECONDS = 300  # a few CloudWatch and DynamoDB calls and up to a few thousand vectors read
NAMESPACE = "Bulwark"  # POWERTOOLS_METRICS_NAMESPACE of every function (stacks/constructs/python_function.py)


def beyond_bounds_description(bounds: Mapping[str, float], log_group_name: str) -> str:
    """What the engineer the drift alarm wakes reads first: which signal is in the job's log, the bounds it used."""
    listed = ", ".join(f"{signal} {bound:g}" for signal, bound in bounds.items())
    return (
        f"drift: chat-path signal(s) moved past their bound from this region's baseline. Which: the job's log "
        f'({log_group_name}), its "drift job" WARNING names them under "breached" (drift and bound under "drift"); '
        f"the {DRIFT_METRIC} metric by {SIGNAL_DIMENSION} ({NAMESPACE}) charts each. Bounds (drift.bounds): {listed}. "
        'A planned change: re-record with a new drift.baseline_version (or invoke the job with {"rebaseline": true}).'
    )


class DriftJob(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        tables: RegionalTables,
        environment: Mapping[str, str],
        every_hours: int,
        bounds: Mapping[str, float],
        topic: sns.ITopic,
        log_key: kms.IKey,
        log_retention: logs.RetentionDays,
        vector_index_arn: str | None = None,
        vectors_key: kms.IKey | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        if tables.prompts is None:
            raise ValueError("the drift job keeps its baseline in the prompts table: configure one")
        region = Stack.of(self).region
        job = ScheduledFunction(
            self,
            "Function",
            handler="handlers.drift.handler",
            service_name="drift",
            environment=environment,
            every=Duration.hours(every_hours),
            description="Drift baselines: compare the chat path's signals with their baseline (issue 12)",
            log_key=log_key,
            log_retention=log_retention,
            timeout=Duration.seconds(DRIFT_TIMEOUT_SECONDS),
            memory_size=512,
            no_dlq_reason="Invoked on a schedule with no payload: a failed run has nothing to keep, the next run "
            "compares the same signals (and an alarm watches its errors).",
        )
        role = job.role
        role.add_to_principal_policy(
            iam.PolicyStatement(sid="ReadSignals", actions=["cloudwatch:GetMetricData"], resources=["*"])
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="EmitDrift",
                actions=["cloudwatch:PutMetricData"],
                resources=["*"],
                conditions={"StringEquals": {"cloudwatch:namespace": NAMESPACE}},
            )
        )
        suppress(
            role,
            "CloudWatch GetMetricData and PutMetricData support no resource-level permissions; PutMetricData is "
            "limited to the app's namespace by the cloudwatch:namespace condition.",
            "AwsSolutions-IAM5",
            applies_to=["Resource::*"],
            children=True,
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="DriftBaseline",
                actions=["dynamodb:GetItem", "dynamodb:PutItem"],
                resources=[tables.prompts.table_arn],
                conditions={"ForAllValues:StringEquals": {"dynamodb:LeadingKeys": [f"drift#{region}"]}},
            )
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="TableKey",
                actions=["kms:Decrypt", "kms:DescribeKey"],
                resources=[tables.key.key_arn],
                conditions={"StringEquals": {"kms:ViaService": f"dynamodb.{region}.amazonaws.com"}},
            )
        )
        if vector_index_arn is not None:
            role.add_to_principal_policy(
                iam.PolicyStatement(
                    sid="CorpusVectors",
                    actions=["s3vectors:ListVectors", "s3vectors:GetVectors"],
                    resources=[vector_index_arn],
                )
            )
            if vectors_key is not None:
                role.add_to_principal_policy(
                    iam.PolicyStatement(
                        sid="VectorsKey",
                        actions=["kms:Decrypt"],
                        resources=[vectors_key.key_arn],
                        conditions={"StringEquals": {"kms:ViaService": f"s3vectors.{region}.amazonaws.com"}},
                    )
                )

        # --- alarms: any signal past its bound (one alarm for all), and the job failing ---------------------------
        period = Duration.hours(every_hours)
        action = cw_actions.SnsAction(topic)
        beyond = cloudwatch.Metric(
            namespace=NAMESPACE, metric_name=BEYOND_BOUNDS_METRIC, statistic="Maximum", period=period
        )
        self.alarms: list[cloudwatch.Alarm] = [
            beyond.create_alarm(
                self,
                "BeyondBounds",
                alarm_description=beyond_bounds_description(bounds, job.log_group.log_group_name),
                threshold=1,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                evaluation_periods=1,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            )
        ]
        self.alarms.append(
            job.function.metric_errors(period=period).create_alarm(
                self,
                "JobErrors",
                alarm_description="the drift job failed: drift is not being measured",
                threshold=1,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                evaluation_periods=1,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            )
        )
        for alarm in self.alarms:  # like every other alarm: the topic hears when it fires and when it clears
            alarm.add_alarm_action(action)
            alarm.add_ok_action(action)
        self.function = job.function
        self.role = role
        self.rule = job.rule
