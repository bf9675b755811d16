"""Alarms of one region's API: model health (AWS/Bedrock) and the gateway's own signals, to one topic."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from aws_cdk import CfnOutput, Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from constructs import Construct

from stacks.config import AppConfig, ModelTarget

Alarm = cloudwatch.Alarm
_FIVE_MINUTES = Duration.minutes(5)
_QUIET = cloudwatch.TreatMissingData.NOT_BREACHING


class ApiAlarms(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: AppConfig,
        region: str,
        runtime_id: Callable[[ModelTarget], str],
        key: kms.IKey,
        extra: Sequence[cloudwatch.Alarm] = (),
    ) -> None:
        """`runtime_id` gives the id a target is invoked with (AWS/Bedrock's ModelId dimension); the gateway's
        own metrics name a target by what users see (`ModelTarget.display_name`, never an ARN)."""
        super().__init__(scope, construct_id)
        self.topic = sns.Topic(self, "Topic", master_key=key, enforce_ssl=True)
        self.alarms: list[cloudwatch.Alarm] = [
            *self._bedrock(config, region, runtime_id),
            *self._gateway(config),
            *extra,
        ]
        action = cw_actions.SnsAction(self.topic)
        for alarm in self.alarms:
            alarm.add_alarm_action(action)
            alarm.add_ok_action(action)
        CfnOutput(scope, "AlarmTopicArn", value=self.topic.topic_arn)

    def _bedrock(
        self, config: AppConfig, region: str, runtime_id: Callable[[ModelTarget], str]
    ) -> list[cloudwatch.Alarm]:
        """AWS/Bedrock throttles, server errors and p99 latency for each Bedrock target in this region."""
        alarms = []
        for index, target in enumerate(config.models):
            if target.region != region or target.kind == "langchain":
                continue
            model = {"ModelId": runtime_id(target)}
            for name, metric_name, statistic, threshold in (
                ("Throttles", "InvocationThrottles", "Sum", 10),
                ("ServerErrors", "InvocationServerErrors", "Sum", 1),
                ("LatencyP99", "InvocationLatency", "p99", 20_000),
            ):
                metric = cloudwatch.Metric(
                    namespace="AWS/Bedrock", metric_name=metric_name, dimensions_map=model, statistic=statistic,
                    period=_FIVE_MINUTES,
                )  # fmt: skip
                alarms.append(
                    metric.create_alarm(
                        self, f"Model{index}{name}", alarm_description=f"{target.model_id} in {target.region}: {name}",
                        threshold=threshold, evaluation_periods=1, treat_missing_data=_QUIET,
                    )
                )  # fmt: skip
        return alarms

    def _gateway(self, config: AppConfig) -> list[cloudwatch.Alarm]:
        """The chat path's degraded answers and refusals, its deep health failing, each target's breaker opening."""
        service = {"service": "chat"}

        def alarm(construct_id: str, metric_name: str, description: str, dimensions: dict[str, str]) -> Alarm:
            metric = cloudwatch.Metric(
                namespace="Bulwark", metric_name=metric_name, dimensions_map=dimensions, statistic="Sum",
                period=_FIVE_MINUTES,
            )  # fmt: skip
            return metric.create_alarm(
                self, construct_id, alarm_description=description, threshold=1, evaluation_periods=1,
                treat_missing_data=_QUIET,
            )  # fmt: skip

        alarms = [
            alarm("GatewayDegraded", "ChatDegraded", "chat answers degraded (gateway)", service),
            alarm("GatewayModelUnavailable", "ModelUnavailable", "chat answers modelunavailable (gateway)", service),
            # GET /health/deep found the table, the queue or every model breaker down (what Route 53 and the
            # clients fail over on): the on-call engineer hears it from the region itself too.
            alarm(
                "DeepHealthUnhealthy",
                "DeepHealthUnhealthy",
                "deep health: a dependency of this region is down",
                service,
            ),
        ]
        for index, target in enumerate(config.models):
            dimensions = {**service, "target": f"{target.display_name}@{target.region}"}
            alarms.append(alarm(f"Breaker{index}Open", "BreakerOpened", f"breaker opened for {target.key}", dimensions))
        return alarms
