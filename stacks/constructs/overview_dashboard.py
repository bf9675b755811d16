"""One region's overview dashboard (`monitoring.dashboard: overview`, the default): issue 12's list on one page of
at most 50 metrics, so it is one of CloudWatch's 3 free dashboards per account ($3 a month otherwise).

It reads the region-wide metrics rather than one per Lambda: the gateway's per-target metrics and tokens with the
dimension `target` alone (chat, stream, worker and summarize summed), the answers' `Answers` / `AnswersDegraded`
and the curated answers, guardrail interventions and retrieval latency with `scope` = `region` alone
(adapters/metrics.py). Plain CloudWatch widgets, not cdk-monitoring-constructs: a
graph widget lists a metric once even when a math expression beside it uses it too (the 5xx %, the degraded % and
the token cost cost no more than their inputs), and nothing is added that the count has to pay for. Metrics, with
T model targets (default 2): 26 + 8 T, 8 of them (ingest's and retrieval latency) only when knowledge is on: the
default 42, 50 with three targets. Past 50 (a fourth target) synth warns: the dashboard then costs $3 a month. The
detailed dashboard (`monitoring.dashboard: detailed`, stacks/constructs/dashboard.py) has every Lambda, service and
target apart."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aws_cdk import Annotations, Duration, Stack
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from stacks.config import AppConfig
from stacks.constructs.dashboard import CACHE_TARGET, NO_TARGET, REGION, _metric, load_prices, token_cost

_MINUTE = Duration.minutes(1)  # the composite's rates, and the counts beside them, as the alarms read them
_WIDTH, _HEIGHT = 8, 6


class OverviewDashboard(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: AppConfig,
        region: str,
        stage: apigw.Stage,
        api_5xx: cloudwatch.IMetric,
        degraded: cloudwatch.IMetric,
        queues: Sequence[tuple[str, sqs.IQueue, sqs.IQueue]],
        alarms: Sequence[cloudwatch.IAlarm],
    ) -> None:
        """`api_5xx`, `degraded`: the rates the composite alarm reads (1-minute math over the stage's Count and
        5XXError, and the region's Answers and AnswersDegraded); `alarms`: RegionUnhealthy and the alarms it reads;
        `queues`: (name, queue, its DLQ), the jobs queue's and, with knowledge on, ingest's."""
        super().__init__(scope, construct_id)
        targets = [f"{target.display_name}@{target.region}" for target in config.models]

        def per_target(name: str, what: str = "") -> list[cloudwatch.IMetric]:
            return [_metric(name, {"target": target}, label=f"{target} {what}".strip()) for target in targets]

        per_minute: dict[str, Any] = {"period": _MINUTE, "statistic": "Sum"}
        widgets: list[cloudwatch.IWidget] = [
            cloudwatch.AlarmStatusWidget(
                title="Region health: RegionUnhealthy and the alarms it reads",
                alarms=list(alarms),
                width=_WIDTH,
                height=_HEIGHT,
            ),
            graph(
                "API requests, 4xx, 5xx (left); 5xx % (right, RegionUnhealthy reads it)",
                left=[
                    stage.metric_count(**per_minute, label="requests"),
                    stage.metric_client_error(**per_minute, label="4xx"),
                    stage.metric_server_error(**per_minute, label="5xx"),
                ],
                right=[api_5xx],
            ),
            graph(
                "Answers (POST /chat and stream): all, degraded, curated (left); degraded % (right, RegionUnhealthy "
                "reads it)",
                left=[
                    _metric("Answers", REGION, period=_MINUTE, label="answers"),
                    _metric("AnswersDegraded", REGION, period=_MINUTE, label="degraded"),
                    _metric("CuratedAnswers", REGION, label="curated"),
                ],
                right=[degraded],
            ),
            graph(
                "API latency (ms, p50 / p99)",
                left=[stage.metric_latency(statistic=p, label=p) for p in ("p50", "p99")],
            ),
            graph(
                "Deep health failing (GET /health/deep: table, jobs queue or every breaker down)",
                left=[_metric("DeepHealthUnhealthy", {"service": "chat"}, label="unhealthy probes")],
            ),
            graph(
                "Guardrail interventions (POST /chat and stream)",
                left=[_metric("GuardrailInterventions", REGION, label="interventions")],
            ),
            graph("Model calls per target (every Lambda)", left=per_target("ModelAttempts")),
            graph("Throttles per target (every Lambda)", left=per_target("Errors.ThrottlingException")),
            graph("Breakers opened per target (every Lambda)", left=per_target("BreakerOpened")),
            graph(
                "Failovers and hedges per target (every Lambda)",
                left=[*per_target("Failovers", "failovers"), *per_target("Hedges", "hedges")],
            ),
            graph(
                "Shed requests and degraded answers without a model (none@-: canned, cache@-: cached)",
                left=[
                    _metric("Shed", {"target": NO_TARGET}, label="shed"),
                    _metric("DegradedAnswers", {"target": NO_TARGET}, label="degraded, canned"),
                    _metric("DegradedAnswers", {"target": CACHE_TARGET}, label="degraded, cached"),
                ],
            ),
            graph(
                "Tokens per target (left); their cost, USD at list prices (right)",
                left=[*per_target("InputTokens", "in"), *per_target("OutputTokens", "out")],
                right=token_cost(config, lambda target: [{"target": target}]),
            ),
            graph(
                "Queues: depth (left), oldest message age (s, right)",
                left=[
                    queue.metric_approximate_number_of_messages_visible(statistic="Maximum", label=f"{name} depth")
                    for name, queue, _ in queues
                ],
                right=[
                    queue.metric_approximate_age_of_oldest_message(statistic="Maximum", label=f"{name} oldest")
                    for name, queue, _ in queues
                ],
            ),
            graph(
                "Dead-letter queues (messages)",
                left=[
                    dlq.metric_approximate_number_of_messages_visible(statistic="Maximum", label=f"{name} DLQ")
                    for name, _, dlq in queues
                ],
            ),
        ]
        if any(name == "Ingest" for name, _, _ in queues):
            widgets.append(
                graph(
                    "Retrieval latency (ms, p50 / p99: embedding, vector search, naming the cited documents)",
                    left=[_metric("RetrievalLatency", REGION, statistic=p, label=p) for p in ("p50", "p99")],
                )
            )
            widgets.append(
                graph(
                    "Ingest: documents ready, failed (a terminal reason) and given up (after every retry)",
                    left=[
                        _metric("Documents.ready", {"service": "ingest"}, label="ready"),
                        _metric("Documents.failed", {"service": "ingest"}, label="failed"),
                        _metric("DocumentsFailed", {"service": "ingest"}, label="given up"),
                    ],
                )
            )
        self.dashboard = cloudwatch.Dashboard(
            # Not the detailed dashboard's name: CloudFormation creates a replacement before it deletes the old
            # one, so switching monitoring.dashboard (or upgrading from the detailed default) would otherwise fail
            # with "already exists".
            self, "Dashboard", dashboard_name=f"{config.prefix}-{region}-overview",
            widgets=[
                [cloudwatch.TextWidget(markdown=_header(config, region, targets), width=24, height=2)],
                *(widgets[start : start + 3] for start in range(0, len(widgets), 3)),
            ],
        )  # fmt: skip
        self.widgets = widgets
        self.metric_count = sum(
            len(part.get("properties", {}).get("metrics", []))
            for widget in widgets
            for part in Stack.of(self).resolve(widget.to_json())
        )
        free = load_prices()["cloudwatch"]["free_dashboard_max_metrics"]
        if self.metric_count > free:
            Annotations.of(self).add_warning_v2(
                "bulwark:overview-dashboard-metrics",
                f"the overview dashboard charts {self.metric_count} metrics, more than the {free} of a free "
                "CloudWatch dashboard: it costs $3 a month (each model target adds 8)",
            )


def graph(
    title: str, *, left: Sequence[cloudwatch.IMetric], right: Sequence[cloudwatch.IMetric] = ()
) -> cloudwatch.GraphWidget:
    return cloudwatch.GraphWidget(title=title, left=list(left), right=list(right), width=_WIDTH, height=_HEIGHT)


def _header(config: AppConfig, region: str, targets: Sequence[str]) -> str:
    return (
        f"# {config.prefix} {region}: overview\n"
        f"Models per target ({', '.join(targets)}) sum chat, stream, worker and summarize. Every Lambda, service and "
        "target apart: `monitoring.dashboard: detailed` (about 250 metrics, $3 a month). Runbook: docs/dr-runbook.md"
    )
