"""GatewayMetrics on Powertools EMF metrics, with a `target` dimension per model x region.

EphemeralMetrics keeps these apart from the handler's own metric set (which has no dimension).
"""

from __future__ import annotations

from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

from core.models import TargetRef


class PowertoolsGatewayMetrics:
    def record(self, *, event: str, target: TargetRef, detail: str = "", latency_s: float | None = None) -> None:
        name = {
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
        }.get(event, event)
        single = EphemeralMetrics()
        single.add_dimension(name="target", value=f"{target.model_id}@{target.region}")
        single.add_metric(name=name, unit=MetricUnit.Count, value=1)
        if event == "attempt" and detail != "ok":
            single.add_metric(name=f"Errors.{detail}", unit=MetricUnit.Count, value=1)
        if event == "breaker" and detail.endswith("->open"):
            single.add_metric(name="BreakerOpened", unit=MetricUnit.Count, value=1)
        if latency_s is not None and detail == "ok":
            single.add_metric(name="ModelLatency", unit=MetricUnit.Milliseconds, value=latency_s * 1000)
        single.flush_metrics()
