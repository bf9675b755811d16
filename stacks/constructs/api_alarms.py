"""Alarms of one region's API, to one topic: AWS/Bedrock throttles per local target, every Lambda's breakers per
target, deep health; the jobs and ingest queues' alarms come in as `extra`.

Degraded answers and refusals are not alarmed one by one here: the DegradedRate alarm (both answer paths, POST
/chat and the stream, a stream refused for want of a model or a dependency counted as degraded) and Api5xxRate (a
REST 503) of stacks/constructs/dashboard.py watch them as rates from monitoring.min_requests requests a minute and
feed the composite RegionUnhealthy; one degraded answer pages nobody, every breaker open pages through BreakerOpened.
A 429 at capacity is back-pressure, not an outage: the throttles alarm and the dashboards show it."""

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
        """AWS/Bedrock throttles for each Bedrock target in this region (server errors and latency are the
        gateway's to handle: its retries, deadlines and breakers, whose opening alarms below)."""
        alarms = []
        for index, target in enumerate(config.models):
            if target.region != region or target.kind == "langchain":
                continue
            metric = cloudwatch.Metric(
                namespace="AWS/Bedrock", metric_name="InvocationThrottles", statistic="Sum", period=_FIVE_MINUTES,
                dimensions_map={"ModelId": runtime_id(target)},
            )  # fmt: skip
            alarms.append(
                metric.create_alarm(
                    self, f"Model{index}Throttles", threshold=10, evaluation_periods=1, treat_missing_data=_QUIET,
                    alarm_description=(
                        f"{target.model_id} in {target.region}: >= 10 throttled invocations in 5 minutes (the model's "
                        "quota is short of the traffic). Look at Bulwark's ModelAttempts and "
                        "Errors.ThrottlingException by target; raise the quota (Service Quotas) or lower the Lambdas' "
                        "concurrency / the API's throttling"
                    ),
                )
            )  # fmt: skip
        return alarms

    def _gateway(self, config: AppConfig) -> list[cloudwatch.Alarm]:
        """The region's deep health failing, and each target's breaker opening in any Lambda of the region (chat,
        stream, worker, summarize: the gateway's metrics' dimension set [target] sums them)."""

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
            # GET /health/deep found the table, the queue or every model breaker down (what Route 53 and the
            # clients fail over on): the on-call engineer hears it from the region itself too.
            alarm(
                "DeepHealthUnhealthy",
                "DeepHealthUnhealthy",
                "deep health: a dependency of this region is down (the table, the jobs queue, or every model breaker "
                "open). GET /health/deep names it; the clients (and Route 53, with a failover domain) move to the "
                "other region. Runbook: docs/dr-runbook.md",
                {"service": "chat"},
            ),
        ]
        for index, target in enumerate(config.models):
            name = f"{target.display_name}@{target.region}"
            alarms.append(
                alarm(
                    f"Breaker{index}Open",
                    "BreakerOpened",
                    f"breaker opened for {name} in a Lambda of this region: its calls fail over to the next "
                    f"target for {config.gateway.breaker_open_s:g} s. Look at Bulwark's ModelAttempts, Errors.<code> "
                    "(which error) and BreakerOpened "
                    "by target; Errors.AccessDeniedException or ResourceNotFoundException is a configuration fault "
                    "(model access, the target's id)",
                    {"target": name},
                )
            )
        return alarms
