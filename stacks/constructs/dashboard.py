"""One region's composite "region unhealthy" alarm and its dashboard (`monitoring.dashboard`): "overview" (default,
stacks/constructs/overview_dashboard.py: <= 50 metrics, inside CloudWatch's free dashboards), "detailed" (this
module's cdk-monitoring-constructs dashboard: every Lambda, service and target apart, about 250 metrics, $3 a
month) or "none".

Metric names and dimensions are the ones the Lambdas emit (namespace `Bulwark`, Powertools EMF, dimension
`service` = the Lambda's service name; the gateway's per-target metrics add `target` = `<display name>@<region>`):
lambda_src/handlers/chat.py, stream.py, worker.py, ingest.py, lambda_src/adapters/metrics.py. The gateway runs in
chat, stream (the WebSocket path, the web UI's default), worker and summarize (the workflow); answers are counted
by chat and stream, tokens by all four (record_tokens). What the gateway answers without a target (a degraded
answer, a shed request) carries `target` = `none@-` or `cache@-` (core/gateway.py NONE_TARGET, CACHE_TARGET). The
gateway's metrics and the per-target tokens are also emitted with `target` alone (every Lambda's summed), the answers'
outcomes (`Answers`, `AnswersDegraded`) with `scope` = `region` alone (chat's and stream's summed).

"Region unhealthy" = ALARM on any of
- the API's 5xx rate >= monitoring.api_5xx_percent (from monitoring.min_requests requests a minute),
- the answers' degraded rate >= monitoring.degraded_percent, over POST /chat and the WebSocket stream together
  (`AnswersDegraded` / `Answers`, scope=region; every breaker open or every target failing ends in degraded
  answers, so this is "all targets down" as users see it, whichever path they use),
- the jobs path stuck: the oldest job older than half its age limit AND jobs parked in the DLQ (either alone is a
  slow consumer or one poison message, not a region that cannot work),
each for monitoring.unhealthy_minutes consecutive minutes.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import Any

import cdk_monitoring_constructs as monitoring
from aws_cdk import CfnOutput, Duration
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from stacks.config import AppConfig, ModelTarget

NAMESPACE = "Bulwark"  # POWERTOOLS_METRICS_NAMESPACE (stacks/constructs/python_function.py)
PRICES = Path(__file__).resolve().parents[1] / "config" / "prices.json"
_MINUTE = Duration.minutes(1)
_FIVE_MINUTES = Duration.minutes(5)
_QUIET = cloudwatch.TreatMissingData.NOT_BREACHING

# The gateway's per-target metrics (adapters/metrics.py), by widget.
TARGET_WIDGETS: dict[str, tuple[str, ...]] = {
    "Model calls per target": ("ModelAttempts", "ModelRetries"),
    "Throttles per target": ("Errors.ThrottlingException", "CapacitySkips"),
    "Breakers per target (opened, calls skipped while open)": ("BreakerOpened", "BreakerSkips"),
    "Failovers and hedges per target": ("Failovers", "Hedges"),
}
# The gateway's answers without a model target (core/gateway.py): `DegradedAnswers` with the canned text (none@-) or
# a cached answer (cache@-); `Shed` (none@-): refused at once, every breaker open or every target at capacity.
NO_TARGET = "none@-"  # core.gateway.NONE_TARGET
CACHE_TARGET = "cache@-"  # core.gateway.CACHE_TARGET
NO_TARGET_METRICS: tuple[tuple[str, str], ...] = (
    ("DegradedAnswers", NO_TARGET), ("DegradedAnswers", CACHE_TARGET), ("Shed", NO_TARGET),
)  # fmt: skip
# Answers, by the Lambda that counts them (handlers/chat.py, handlers/stream.py).
ANSWER_METRICS: dict[str, tuple[str, ...]] = {
    "chat": ("ChatAnswered", "ChatDegraded", "CuratedAnswers", "ChatShed", "ModelUnavailable"),
    "stream": ("StreamAnswered", "StreamIncomplete", "ChatDegraded", "CuratedAnswers", "StreamRefused"),
}
# The region's answers, POST /chat and the stream together (adapters/metrics.py record_outcome).
REGION = {"scope": "region"}  # adapters.metrics.REGION_SCOPE
INGEST_METRICS = ("Documents.ready", "Documents.failed", "Documents.deleted", "DocumentsFailed", "EmbeddingCalls",
                  "EmbeddingRetries")  # fmt: skip
# The Lambdas that call models through the gateway, and those that count answers and their tokens (record_answer).
SERVICES = ("chat", "stream", "worker", "summarize")
ANSWER_SERVICES = ("chat", "stream")


@cache
def load_prices(path: Path = PRICES) -> dict[str, Any]:
    """The dated list-price table (stacks/config/prices.json)."""
    prices: dict[str, Any] = json.loads(path.read_text())
    return prices


def model_price(model_id: str, prices: Mapping[str, Any]) -> dict[str, float] | None:
    """USD per 1,000 input / output tokens of a model or cross-region profile (`us.`/`eu.`/... cost the same)."""
    table = prices["bedrock"]["per_1k_tokens"]
    if model_id in table:
        return dict(table[model_id])
    base = model_id.split(".", 1)[1] if "." in model_id else model_id
    return dict(table[base]) if base in table else None


def _metric(name: str, dimensions: Mapping[str, str], *, statistic: str = "Sum", label: str | None = None,
            period: Duration = _FIVE_MINUTES) -> cloudwatch.Metric:  # fmt: skip
    return cloudwatch.Metric(
        namespace=NAMESPACE, metric_name=name, dimensions_map=dict(dimensions), statistic=statistic, period=period,
        label=label,
    )  # fmt: skip


class RegionMonitoring(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: AppConfig,
        region: str,
        api: apigw.RestApi,
        functions: Mapping[str, lambda_.IFunction],
        queues: Sequence[tuple[str, sqs.IQueue, sqs.IQueue]],
        jobs_alarms: tuple[cloudwatch.IAlarm, cloudwatch.IAlarm],
        topic: sns.ITopic,
        runtime_id: Any,
    ) -> None:
        """`functions`: service name -> Lambda (the gateway's and answers' widgets chart the services deployed
        here: SERVICES and ANSWER_SERVICES that are keys of it); `queues`: (name, queue, its DLQ); `jobs_alarms`: the
        jobs queue's (oldest message age, DLQ not empty) alarms; `runtime_id(target)`: AWS/Bedrock's ModelId."""
        super().__init__(scope, construct_id)
        settings = config.monitoring
        self.targets = [f"{target.display_name}@{target.region}" for target in config.models]
        self.services = [service for service in SERVICES if service in functions]
        self.answer_services = [service for service in ANSWER_SERVICES if service in functions]
        stage = api.deployment_stage

        # --- the composite alarm ---------------------------------------------------------------------
        per_minute = {"period": _MINUTE, "statistic": "Sum"}
        requests = stage.metric_count(**per_minute)
        errors = stage.metric_server_error(**per_minute)
        floor = settings.min_requests
        api_5xx = cloudwatch.MathExpression(
            expression=f"IF(requests >= {floor}, 100 * errors / requests, 0)",
            using_metrics={"requests": requests, "errors": errors}, period=_MINUTE, label="5xx %",
        )  # fmt: skip
        chat = {"service": "chat"}
        degraded = degraded_rate(floor=floor)
        minutes = settings.unhealthy_minutes
        board = f"the dashboard {config.prefix}-{region}" if settings.dashboard != "none" else "the alarms' metrics"

        def rate_alarm(construct_id: str, metric: cloudwatch.IMetric, threshold: float, what: str) -> cloudwatch.Alarm:
            return metric.create_alarm(
                self, construct_id, threshold=threshold, evaluation_periods=minutes, datapoints_to_alarm=minutes,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                treat_missing_data=_QUIET,
                alarm_description=f"{region}: {what} for {minutes} minutes in a row (counted from {floor} a "
                f"minute). It feeds RegionUnhealthy (runbook: docs/dr-runbook.md); {board} shows its causes",
            )  # fmt: skip

        self.api_5xx_alarm = rate_alarm(
            "Api5xxRate", api_5xx, settings.api_5xx_percent,
            f"API 5xx rate >= {settings.api_5xx_percent} % of requests (a 503 is a dependency or every model down: "
            "the Lambdas' logs name it)",
        )  # fmt: skip
        self.degraded_alarm = rate_alarm(
            "DegradedRate", degraded, settings.degraded_percent,
            f"degraded answers >= {settings.degraded_percent} % of answers (POST /chat and the stream: every target "
            "failing or its breaker open; look at the model calls, throttles and breakers per target)",
        )  # fmt: skip
        oldest, dlq = jobs_alarms
        in_alarm = cloudwatch.AlarmState.ALARM
        self.region_unhealthy = cloudwatch.CompositeAlarm(
            self,
            "RegionUnhealthy",
            alarm_description=(
                f"{config.prefix} {region} is unhealthy: the API's 5xx rate, the answers' degraded rate (chat and "
                "stream), or the jobs path stuck (old jobs AND a non-empty DLQ). Runbook: docs/dr-runbook.md "
                f"(detect, decide, fail over); {board} shows which and why"
            ),
            alarm_rule=cloudwatch.AlarmRule.any_of(
                cloudwatch.AlarmRule.from_alarm(self.api_5xx_alarm, in_alarm),
                cloudwatch.AlarmRule.from_alarm(self.degraded_alarm, in_alarm),
                cloudwatch.AlarmRule.all_of(
                    cloudwatch.AlarmRule.from_alarm(oldest, in_alarm), cloudwatch.AlarmRule.from_alarm(dlq, in_alarm)
                ),
            ),
        )
        self.alarms: list[cloudwatch.Alarm] = [self.api_5xx_alarm, self.degraded_alarm]
        action = cw_actions.SnsAction(topic)
        for alarm in (*self.alarms, self.region_unhealthy):
            alarm.add_alarm_action(action)
            alarm.add_ok_action(action)
        CfnOutput(scope, "RegionUnhealthyAlarmArn", value=self.region_unhealthy.alarm_arn)
        CfnOutput(scope, "RegionUnhealthyAlarmName", value=self.region_unhealthy.alarm_name)

        # --- the dashboard ---------------------------------------------------------------------------
        if settings.dashboard == "overview":
            # Imported here: the overview reads this module's metric names and prices.
            from stacks.constructs.overview_dashboard import OverviewDashboard

            OverviewDashboard(
                self, "Overview", config=config, region=region, stage=stage, api_5xx=api_5xx, degraded=degraded,
                queues=queues,
                alarms=[self.region_unhealthy, *self.alarms, oldest, dlq],
            )  # fmt: skip
        if settings.dashboard != "detailed":
            return
        facade = monitoring.MonitoringFacade(
            self,
            "Facade",
            alarm_factory_defaults=monitoring.AlarmFactoryDefaults(
                alarm_name_prefix=f"{config.prefix}-{region}", actions_enabled=False
            ),
            metric_factory_defaults=monitoring.MetricFactoryDefaults(),
            # One dashboard per region, $3 a month each (CloudWatch's 3 free dashboards hold up to 50 metrics
            # each; this one charts more).
            dashboard_factory=monitoring.DefaultDashboardFactory(
                self, "Dashboards", dashboard_name_prefix=f"{config.prefix}-{region}", create_dashboard=True,
                create_summary_dashboard=False, create_alarm_dashboard=False,
            ),
        )  # fmt: skip
        facade.add_large_header(f"{config.prefix} {region}")
        facade.monitor_custom(
            alarm_friendly_name="RegionHealth", human_readable_name="Region health (what the composite alarm reads)",
            metric_groups=[
                monitoring.CustomMetricGroup(title="API 5xx % and degraded %", metrics=[api_5xx, degraded]),
                monitoring.CustomMetricGroup(
                    title="Deep health failing", metrics=[_metric("DeepHealthUnhealthy", chat)]
                ),
            ],
        )  # fmt: skip
        facade.monitor_api_gateway(
            api=api, api_stage=stage.stage_name, alarm_friendly_name="Api",
            human_readable_name="API (requests, latency p50/p99, 4xx/5xx)",
            latency_types_to_render=[monitoring.LatencyType.P50, monitoring.LatencyType.P99],
        )  # fmt: skip
        facade.monitor_custom(
            alarm_friendly_name="Answers", human_readable_name="Answers",
            metric_groups=[
                monitoring.CustomMetricGroup(
                    title=f"{service} answers",
                    metrics=[_metric(n, {"service": service}, label=f"{service} {n}") for n in ANSWER_METRICS[service]],
                )
                for service in self.answer_services
            ] + [
                monitoring.CustomMetricGroup(
                    title="Guardrail interventions",
                    metrics=[_metric("GuardrailInterventions", {"service": service}, label=service)
                             for service in self.answer_services],
                ),
                monitoring.CustomMetricGroup(
                    title="Retrieval latency (ms, p50/p99: embedding, vector search, naming the cited documents)",
                    metrics=[
                        _metric("RetrievalLatency", {"scope": "region", "service": service}, statistic=statistic,
                                label=f"{service} {statistic}")
                        for service in self.answer_services for statistic in ("p50", "p99")
                    ],
                ),
            ],
        )  # fmt: skip
        facade.monitor_custom(
            alarm_friendly_name="Models",
            human_readable_name=f"Models per target (gateway: {', '.join(self.services)})",
            metric_groups=[
                monitoring.CustomMetricGroup(title=title, metrics=self._per_target(names))
                for title, names in TARGET_WIDGETS.items()
            ] + [
                monitoring.CustomMetricGroup(
                    title="Degraded answers and shed requests (no target: canned none@-, cached cache@-)",
                    metrics=[
                        _metric(name, {"service": service, "target": target}, label=f"{service} {name} {target}")
                        for name, target in NO_TARGET_METRICS for service in self.services
                    ],
                ),
                monitoring.CustomMetricGroup(
                    title="Model latency per target (ms, p50/p99; chat and stream)",
                    metrics=[
                        _metric("ModelLatency", {"service": service, "target": target}, statistic=statistic,
                                label=f"{service} {target} {statistic}")
                        for target in self.targets for service in self.answer_services for statistic in ("p50", "p99")
                    ],
                ),
                monitoring.CustomMetricGroup(
                    title="AWS/Bedrock throttles", metrics=self._bedrock_throttles(config, region, runtime_id)
                ),
            ],
        )  # fmt: skip
        facade.monitor_custom(
            alarm_friendly_name="Tokens",
            human_readable_name=f"Tokens and their cost ({', '.join(self.services)}; list prices)",
            metric_groups=[
                monitoring.CustomMetricGroup(
                    title="Tokens per target and Lambda",
                    metrics=[
                        _metric(name, {"service": service, "target": target}, label=f"{service} {target} {name}")
                        for target in self.targets for service in self.services
                        for name in ("InputTokens", "OutputTokens")
                    ],
                ),
                monitoring.CustomMetricGroup(
                    title="Token cost per target (USD, every Lambda's tokens)",
                    metrics=token_cost(config, lambda t: [{"target": t}]),
                ),
            ],
        )  # fmt: skip
        for name, queue, dead_letters in queues:
            facade.monitor_sqs_queue_with_dlq(
                queue=queue, dead_letter_queue=dead_letters, alarm_friendly_name=f"{name}Queue",
                human_readable_name=f"{name} queue (depth, oldest age) and its DLQ",
            )  # fmt: skip
        facade.monitor_custom(
            alarm_friendly_name="Ingest", human_readable_name="Ingest (documents, embeddings)",
            metric_groups=[
                monitoring.CustomMetricGroup(
                    title="Ingest progress and failures",
                    metrics=[_metric(n, {"service": "ingest"}) for n in INGEST_METRICS],
                )
            ],
        )  # fmt: skip
        for service, function in functions.items():
            facade.monitor_lambda_function(
                lambda_function=function, alarm_friendly_name=f"{service}Function",
                human_readable_name=f"{service} Lambda",
            )  # fmt: skip

    def _per_target(self, names: Sequence[str]) -> list[cloudwatch.IMetric]:
        return [
            _metric(name, {"service": service, "target": target}, label=f"{service} {target} {name}")
            for name in names for target in self.targets for service in self.services
        ]  # fmt: skip

    @staticmethod
    def _bedrock_throttles(config: AppConfig, region: str, runtime_id: Any) -> list[cloudwatch.IMetric]:
        return [
            cloudwatch.Metric(
                namespace="AWS/Bedrock", metric_name="InvocationThrottles", dimensions_map={"ModelId": runtime_id(t)},
                statistic="Sum", period=_FIVE_MINUTES, label=t.display_name,
            )
            for t in config.models if t.region == region and t.kind != "langchain"
        ]  # fmt: skip


def token_cost(config: AppConfig, sources: Callable[[str], Sequence[Mapping[str, str]]]) -> list[cloudwatch.IMetric]:
    """USD per period of each priced target, from its token counts (the dimensions `sources(<display name>@<region>)`
    gives, summed) and the dated price table (metric math)."""
    prices = load_prices()
    costs: list[cloudwatch.IMetric] = []
    for index, target in enumerate(config.models):
        price = _target_price(target, prices)
        if price is None:
            continue
        name = f"{target.display_name}@{target.region}"
        tokens: dict[str, cloudwatch.IMetric] = {}
        for s, dimensions in enumerate(sources(name)):
            tokens[f"i{index}s{s}"] = _metric("InputTokens", dimensions)
            tokens[f"o{index}s{s}"] = _metric("OutputTokens", dimensions)
        inputs = " + ".join(f"FILL({id_}, 0)" for id_ in tokens if id_.startswith("i"))
        outputs = " + ".join(f"FILL({id_}, 0)" for id_ in tokens if id_.startswith("o"))
        costs.append(
            cloudwatch.MathExpression(
                expression=f"({inputs}) * {_decimal(price['input'])} / 1000 + ({outputs}) * "
                f"{_decimal(price['output'])} / 1000",
                using_metrics=tokens, label=f"{name} USD", period=_FIVE_MINUTES,
            )
        )  # fmt: skip
    return costs


def degraded_rate(*, floor: int) -> cloudwatch.MathExpression:
    """The share of degraded answers, in %, over every answering path: POST /chat and the stream each count every
    answer (`Answers`) and whether it was degraded (`AnswersDegraded`), summed over the region (scope=region alone).
    0 under `floor` answers a minute (too few to say a region is down)."""
    answers = _metric("Answers", REGION, period=_MINUTE)
    degraded = _metric("AnswersDegraded", REGION, period=_MINUTE)
    return cloudwatch.MathExpression(
        expression=f"IF(FILL(answers, 0) >= {floor}, 100 * FILL(degraded, 0) / FILL(answers, 0), 0)",
        using_metrics={"answers": answers, "degraded": degraded}, period=_MINUTE, label="degraded %",
    )  # fmt: skip


def _target_price(target: ModelTarget, prices: Mapping[str, Any]) -> dict[str, float] | None:
    return model_price(target.model_id, prices) if target.kind != "provisioned" else None


def _decimal(value: float) -> str:
    """A price as metric math reads it: plain decimals (Python would write 6e-05)."""
    return f"{value:.10f}".rstrip("0").rstrip(".") or "0"
