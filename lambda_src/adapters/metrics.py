"""GatewayMetrics on Powertools EMF metrics, with a `target` dimension per model x region.

EphemeralMetrics keeps these apart from the handler's own metric set (which has no dimension). The gateway's and
the answers' metrics carry a second dimension set without `service` (`add_dimensions`): one metric per target (or
per region) sums every Lambda's, so an alarm or the overview dashboard reads one metric where it would read one per
Lambda.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

from core.models import TargetRef

if TYPE_CHECKING:
    from aws_lambda_powertools import Metrics

    from core.models import ChatAnswer

CURATED_TARGET_ID = "curated"  # core.curated.CURATED_TARGET_ID (not imported: core.curated is off the cold path)
# The region-wide answer counts (record_outcome): Powertools emits no empty dimension set, hence a constant one.
REGION_SCOPE = "region"


# The gateway's events (core/gateway.py `_emit`) as metric names, with `target` = `<model>@<region>` (the gateway's
# own `none@-` / `cache@-` for an answer or a refusal without a model). The dashboard charts these names.
EVENT_METRICS: dict[str, str] = {
    "attempt": "ModelAttempts",
    "retry": "ModelRetries",
    "failover": "Failovers",
    "hedge": "Hedges",
    "shed": "Shed",
    "skipped": "BreakerSkips",
    "at_capacity": "CapacitySkips",
    "breaker": "BreakerTransitions",
    "degraded": "DegradedAnswers",
    "misconfigured": "TargetMisconfigured",
    "cache_error": "CacheErrors",
    "stream_broken": "StreamBreaks",  # a streamed answer broke after its first token (incomplete)
    "stream_abandoned": "StreamsAbandoned",  # a stream closed unread: a hedge lost, the caller left
}


class PowertoolsGatewayMetrics:
    def record(self, *, event: str, target: TargetRef, detail: str = "", latency_s: float | None = None) -> None:
        name = EVENT_METRICS.get(event, event)
        single = _per_target(f"{target.model_id}@{target.region}")
        single.add_metric(name=name, unit=MetricUnit.Count, value=1)
        if event == "attempt" and detail != "ok":
            single.add_metric(name=f"Errors.{detail}", unit=MetricUnit.Count, value=1)
        if event == "breaker" and detail.endswith("->open"):
            single.add_metric(name="BreakerOpened", unit=MetricUnit.Count, value=1)
        if latency_s is not None and detail == "ok":
            single.add_metric(name="ModelLatency", unit=MetricUnit.Milliseconds, value=latency_s * 1000)
        single.flush_metrics()


def record_answer(metrics: Metrics, answer: ChatAnswer) -> None:
    """What the dashboard shows of one answer: tokens (per handler and per target, for their cost), guardrail
    interventions, curated answers and how long the documents' search took (RetrievalLatency, this Lambda's and
    the region's). Counts and times only: never the question or the answer."""
    region = _also_alone("scope", REGION_SCOPE)  # the same figures summed over the region's answering Lambdas
    if answer.target.model_id == CURATED_TARGET_ID:
        metrics.add_metric(name="CuratedAnswers", unit=MetricUnit.Count, value=1)
        region.add_metric(name="CuratedAnswers", unit=MetricUnit.Count, value=1)
    if answer.guardrail_intervened:
        metrics.add_metric(name="GuardrailInterventions", unit=MetricUnit.Count, value=1)
        region.add_metric(name="GuardrailInterventions", unit=MetricUnit.Count, value=1)
    searched = answer.retrieval
    if searched is not None and searched.latency_ms is not None:  # the documents were searched (or tried)
        region.add_metric(name="RetrievalLatency", unit=MetricUnit.Milliseconds, value=searched.latency_ms)
    if region.metric_set:
        region.flush_metrics()
    usage = answer.usage
    if not usage.input_tokens and not usage.output_tokens:
        return
    metrics.add_metric(name="InputTokens", unit=MetricUnit.Count, value=usage.input_tokens)
    metrics.add_metric(name="OutputTokens", unit=MetricUnit.Count, value=usage.output_tokens)
    record_tokens(answer.target, input_tokens=usage.input_tokens, output_tokens=usage.output_tokens)


def record_tokens(target: TargetRef, *, input_tokens: int, output_tokens: int) -> None:
    """One answer's or model step's tokens per target (this Lambda's and summed over the region's), what the
    dashboards price: record_answer's (chat, stream), each answered job's (worker) and each model step's (the
    summarize workflow). Nothing when no model was called."""
    if not input_tokens and not output_tokens:
        return
    single = _per_target(f"{target.model_id}@{target.region}")
    single.add_metric(name="InputTokens", unit=MetricUnit.Count, value=input_tokens)
    single.add_metric(name="OutputTokens", unit=MetricUnit.Count, value=output_tokens)
    single.flush_metrics()


def record_outcome(*, degraded: bool) -> None:
    """One answer of POST /chat or the stream (chat and stream call it once per answer, degraded or not):
    `Answers` = 1 and `AnswersDegraded` = 1 or 0, per Lambda and summed over the region (scope=region alone), the
    degraded-rate alarm's two metrics. Counts only: never the question or the answer."""
    single = _also_alone("scope", REGION_SCOPE)
    single.add_metric(name="Answers", unit=MetricUnit.Count, value=1)
    single.add_metric(name="AnswersDegraded", unit=MetricUnit.Count, value=1 if degraded else 0)
    single.flush_metrics()


def _per_target(target: str) -> EphemeralMetrics:
    """A metric set with the dimension sets [target, service] (this Lambda's) and [target] (every Lambda's)."""
    return _also_alone("target", target)


def _also_alone(name: str, value: str) -> EphemeralMetrics:
    """A metric set with the dimension sets [name, service] (this Lambda's) and [name] alone (the region's, every
    Lambda summed). Without a service name (never in AWS: every function sets POWERTOOLS_SERVICE_NAME) the first set
    already is [name]: no second, identical set."""
    single = EphemeralMetrics()
    single.add_dimension(name=name, value=value)
    if single.service:
        single.add_dimensions(**{name: value})
    return single


def record_greeting(kind: str) -> None:
    """GreetingAnswered, by kind (greeting, thanks, goodbye): a model call saved. Never the message itself."""
    single = EphemeralMetrics()
    single.add_dimension(name="kind", value=kind)
    single.add_metric(name="GreetingAnswered", unit=MetricUnit.Count, value=1)
    single.flush_metrics()
