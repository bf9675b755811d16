"""Each region's dashboard (the overview by default, the detailed one, or none), its alarms, its composite
"region unhealthy" alarm and the account's budget, in the templates.

The metric names and dimensions asserted here are the ones the Lambdas emit: the gateway's event names
(adapters/metrics.py EVENT_METRICS), its target-less answers (core/gateway.py NONE_TARGET, CACHE_TARGET), the
answer counters of handlers/chat.py and handlers/stream.py (read from their source), the region-wide dimension
sets (`target` alone, `scope` = adapters.metrics.REGION_SCOPE alone)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, NamedTuple

import pytest
from aws_cdk import App, Stack
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_sqs as sqs
from aws_cdk.assertions import Annotations, Match

from adapters.metrics import EVENT_METRICS, REGION_SCOPE
from app import build_app
from core.gateway import CACHE_TARGET, NONE_TARGET
from stacks.config import AppConfig, ConfigError
from stacks.constructs.dashboard import ANSWER_METRICS, TARGET_WIDGETS
from stacks.constructs.overview_dashboard import OverviewDashboard
from tests.conftest import ROOT
from tests.infra.conftest import Synth, cdk_context
from tools.cost import dashboard_metrics

API_STACKS = [("Bulwark-dev-Api", "us-east-1"), ("Bulwark-dev-Api-DR", "us-west-2")]
TARGETS = ("us.amazon.nova-lite-v1:0@us-east-1", "us.amazon.nova-lite-v1:0@us-west-2")
GATEWAY_SERVICES = ("chat", "stream", "worker", "summarize")  # every Lambda that builds the chat service
ANSWERING_SERVICES = ("chat", "stream")  # every Lambda that counts answers and their tokens (record_answer)
# AWS's own metrics the dashboard charts, and the ingest Lambda's.
AWS_METRICS = ("InvocationThrottles", "Count", "Latency", "4XXError", "5XXError", "ApproximateNumberOfMessagesVisible",
               "ApproximateAgeOfOldestMessage")  # fmt: skip
OTHER_METRICS = ("GuardrailInterventions", "DeepHealthUnhealthy", "Documents.ready", "Documents.failed",
                 "DocumentsFailed", "EmbeddingCalls")  # fmt: skip


class Charted(NamedTuple):
    title: str
    namespace: str
    name: str
    dimensions: dict[str, str]


def with_dashboard(value: Any) -> dict[str, Any]:
    """cdk.json's context with monitoring.dashboard set to `value` (the other monitoring keys kept)."""
    return cdk_context(monitoring={**cdk_context()["bulwark"]["monitoring"], "dashboard": value})


@pytest.fixture(scope="module")
def variants(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Synth]:
    """The app with monitoring.dashboard "detailed" (cdk-monitoring-constructs) and "none" (nag off: the default
    synth runs every pack over the same constructs)."""
    found = {}
    for value in ("detailed", "none"):
        app = App(context=with_dashboard(value), outdir=str(tmp_path_factory.mktemp(f"cdk.out.{value}")))
        build_app(app, nag=False)
        app.synth()
        found[value] = Synth(app)
    return found


@pytest.fixture(scope="module")
def detailed(variants: dict[str, Synth]) -> Synth:
    return variants["detailed"]


def resources(synth: Synth, stack: str, kind: str) -> dict[str, Any]:
    found: dict[str, Any] = synth.template(stack).find_resources(kind)
    return found


def dashboard_body(synth: Synth, stack: str) -> str:
    (dashboard,) = resources(synth, stack, "AWS::CloudWatch::Dashboard").values()
    return json.dumps(dashboard["Properties"]["DashboardBody"])


def dashboard_widgets(synth: Synth, stack: str) -> list[dict[str, Any]]:
    """The dashboard's widgets, its Fn::Join resolved with each token written `REF:<logical id>`."""
    (dashboard,) = resources(synth, stack, "AWS::CloudWatch::Dashboard").values()
    body = dashboard["Properties"]["DashboardBody"]
    parts = body["Fn::Join"][1] if isinstance(body, dict) else [body]
    text = "".join(part if isinstance(part, str) else f"REF:{next(iter(part.values()))}" for part in parts)
    widgets: list[dict[str, Any]] = json.loads(text)["widgets"]
    return widgets


def charted(synth: Synth, stack: str) -> Iterator[Charted]:
    for widget in dashboard_widgets(synth, stack):
        properties = widget.get("properties", {})
        for entry in properties.get("metrics", []):
            if isinstance(entry[0], dict):
                continue  # a math expression: its inputs are listed beside it
            values = [value for value in entry if not isinstance(value, dict)]
            namespace, name, pairs = values[0], values[1], values[2:]
            dimensions = dict(zip(pairs[::2], pairs[1::2], strict=True))
            yield Charted(properties.get("title", ""), namespace, name, dimensions)


def emitted_by(handler: str) -> str:
    return (ROOT / "lambda_src" / "handlers" / handler).read_text()


@pytest.mark.parametrize(("stack", "region"), API_STACKS)
def test_detailed_each_region_has_one_dashboard_with_every_widget_metric(
    detailed: Synth, stack: str, region: str
) -> None:
    names = {metric.name for metric in charted(detailed, stack)}

    gateway = {name for names_ in TARGET_WIDGETS.values() for name in names_}
    assert gateway <= {*EVENT_METRICS.values(), "BreakerOpened", "ModelLatency", "Errors.ThrottlingException"}
    expected = {*gateway, *AWS_METRICS, *OTHER_METRICS, "DegradedAnswers", "Shed", "ModelLatency", "InputTokens",
                "OutputTokens", *(n for metrics in ANSWER_METRICS.values() for n in metrics)}  # fmt: skip
    assert expected - names == set()
    body = dashboard_body(detailed, stack)
    assert "0.00006" in body and "0.00024" in body  # token cost: Nova Lite's price per 1,000 tokens in / out
    (dashboard,) = resources(detailed, stack, "AWS::CloudWatch::Dashboard").values()
    assert dashboard["Properties"]["DashboardName"] == f"Bulwark-dev-{region}"


@pytest.mark.parametrize(("stack", "region"), API_STACKS)
def test_detailed_per_target_widgets_chart_every_gateway_service_by_the_targets_the_gateway_names(
    detailed: Synth, stack: str, region: str
) -> None:
    found = {(m.name, m.dimensions.get("service"), m.dimensions.get("target")) for m in charted(detailed, stack)
             if m.namespace == "Bulwark"}  # fmt: skip

    for names in TARGET_WIDGETS.values():
        for name in names:
            assert {(name, s, t) for s in GATEWAY_SERVICES for t in TARGETS} <= found, name
    for target in TARGETS:
        for service in ANSWERING_SERVICES:
            assert ("ModelLatency", service, target) in found
        # Every model-calling Lambda's tokens (the worker's jobs and the summarize workflow's steps too), and
        # their cost from the tokens summed over the region (target alone).
        for service in GATEWAY_SERVICES:
            assert {("InputTokens", service, target), ("OutputTokens", service, target)} <= found
        assert {("InputTokens", None, target), ("OutputTokens", None, target)} <= found


@pytest.mark.parametrize(("stack", "region"), API_STACKS)
def test_detailed_degraded_answers_are_charted_by_the_target_the_gateway_gives_them(
    detailed: Synth, stack: str, region: str
) -> None:
    none, cache = (f"{t.model_id}@{t.region}" for t in (NONE_TARGET, CACHE_TARGET))
    degraded = [m for m in charted(detailed, stack) if m.name == "DegradedAnswers"]
    shed = [m for m in charted(detailed, stack) if m.name == "Shed"]

    assert {m.dimensions["target"] for m in degraded} == {none, cache}
    assert {m.dimensions["target"] for m in shed} == {none}
    assert {m.dimensions["service"] for m in degraded} == set(GATEWAY_SERVICES)


@pytest.mark.parametrize(("stack", "region"), API_STACKS)
def test_detailed_the_stream_path_is_on_the_dashboard_as_its_lambda_emits_it(
    detailed: Synth, stack: str, region: str
) -> None:
    stream_source = emitted_by("stream.py")
    stream = {m.name for m in charted(detailed, stack) if m.dimensions == {"service": "stream"}}

    assert set(ANSWER_METRICS["stream"]) <= stream
    assert all(f'"{name}"' in stream_source for name in ANSWER_METRICS["stream"] if name != "CuratedAnswers")
    assert all(f'"{name}"' in emitted_by("chat.py") for name in ANSWER_METRICS["chat"] if name != "CuratedAnswers")
    assert "GuardrailInterventions" in stream


@pytest.mark.parametrize(("stack", "region"), API_STACKS)
def test_detailed_every_lambda_on_the_request_path_has_its_widgets(detailed: Synth, stack: str, region: str) -> None:
    functions = {
        props["Handler"]: logical
        for logical, resource in resources(detailed, stack, "AWS::Lambda::Function").items()
        if (props := resource["Properties"]).get("Handler", "").startswith("handlers.")
    }
    charted_functions = {m.dimensions["FunctionName"] for m in charted(detailed, stack) if m.namespace == "AWS/Lambda"}

    for handler in ("chat.handler", "stream.handler", "ws_authorizer.handler", "worker.handler",
                    "workflow.lambda_handler", "ingest.handler"):  # fmt: skip
        assert f"REF:{functions[f'handlers.{handler}']}" in charted_functions, handler


@pytest.mark.parametrize(("stack", "region"), API_STACKS)
def test_region_unhealthy_reads_5xx_degraded_and_a_stuck_jobs_path(synth: Synth, stack: str, region: str) -> None:
    template = synth.template(stack)
    (composite,) = resources(synth, stack, "AWS::CloudWatch::CompositeAlarm").values()
    rule = json.dumps(composite["Properties"]["AlarmRule"])
    alarms = resources(synth, stack, "AWS::CloudWatch::Alarm")
    ids = {name: logical for logical in alarms for name in ("Api5xxRate", "DegradedRate", "DlqNotEmpty",
                                                            "OldestMessageAge") if (name in logical and "Jobs" in
           logical) or (name in logical and name in ("Api5xxRate", "DegradedRate"))}  # fmt: skip
    assert set(ids) == {"Api5xxRate", "DegradedRate", "DlqNotEmpty", "OldestMessageAge"}
    assert all(logical in rule for logical in ids.values())
    assert " OR " in rule and " AND " in rule  # (5xx OR degraded OR (old jobs AND DLQ))

    rate = alarms[ids["Api5xxRate"]]["Properties"]
    metrics = {m["MetricStat"]["Metric"]["MetricName"] for m in rate["Metrics"] if "MetricStat" in m}
    assert metrics == {"Count", "5XXError"}
    assert rate["Threshold"] == 5 and rate["EvaluationPeriods"] == 3 and rate["DatapointsToAlarm"] == 3
    degraded = alarms[ids["DegradedRate"]]["Properties"]
    read = {m["MetricStat"]["Metric"]["MetricName"]: m for m in degraded["Metrics"] if "MetricStat" in m}
    # Both answering paths at once (POST /chat and the stream each count every answer and whether it was
    # degraded, handlers/test_answer_outcomes.py): 2 metrics, summed over the region's Lambdas.
    assert set(read) == {"Answers", "AnswersDegraded"}
    assert all(m["MetricStat"]["Metric"]["Dimensions"] == [{"Name": "scope", "Value": REGION_SCOPE}] and
               m["MetricStat"]["Stat"] == "Sum" and m["MetricStat"]["Period"] == 60 for m in read.values())  # fmt: skip
    (expression,) = [m["Expression"] for m in degraded["Metrics"] if "Expression" in m]
    answers, bad = read["Answers"]["Id"], read["AnswersDegraded"]["Id"]
    assert expression == f"IF(FILL({answers}, 0) >= 10, 100 * FILL({bad}, 0) / FILL({answers}, 0), 0)"
    assert degraded["Threshold"] == 50 and degraded["EvaluationPeriods"] == 3
    assert "docs/dr-runbook.md" in json.dumps(composite["Properties"]["AlarmDescription"])

    template.has_output("RegionUnhealthyAlarmArn", {"Value": {"Fn::GetAtt": [Match.any_value(), "Arn"]}})


@pytest.mark.parametrize(("stack", "region"), API_STACKS)
def test_every_alarm_goes_to_the_alarm_topic(synth: Synth, stack: str, region: str) -> None:
    (topic,) = resources(synth, stack, "AWS::SNS::Topic")
    expected = {"Ref": topic}
    for kind in ("AWS::CloudWatch::Alarm", "AWS::CloudWatch::CompositeAlarm"):
        for logical, alarm in resources(synth, stack, kind).items():
            if logical.startswith("MonitoringFacade"):
                continue
            assert expected in alarm["Properties"].get("AlarmActions", []), logical
            assert expected in alarm["Properties"].get("OKActions", []), logical


def test_the_budget_is_the_primary_regions_alone_with_two_alerts_to_the_topic(synth: Synth) -> None:
    assert resources(synth, "Bulwark-dev-Api-DR", "AWS::Budgets::Budget") == {}
    (budget,) = resources(synth, "Bulwark-dev-Api", "AWS::Budgets::Budget").values()
    (topic,) = resources(synth, "Bulwark-dev-Api", "AWS::SNS::Topic")
    props = budget["Properties"]
    assert props["Budget"] == {
        "BudgetType": "COST",
        "TimeUnit": "MONTHLY",
        "BudgetLimit": {"Amount": 100, "Unit": "USD"},
    }
    alerts = {(n["Notification"]["NotificationType"], n["Notification"]["Threshold"]) for n in
              props["NotificationsWithSubscribers"]}  # fmt: skip
    assert alerts == {("ACTUAL", 80), ("FORECASTED", 100)}
    assert all(n["Subscribers"] == [{"SubscriptionType": "SNS", "Address": {"Ref": topic}}]
               for n in props["NotificationsWithSubscribers"])  # fmt: skip
    (policy,) = resources(synth, "Bulwark-dev-Api", "AWS::SNS::TopicPolicy").values()
    statements = {s.get("Sid"): s for s in policy["Properties"]["PolicyDocument"]["Statement"]}
    assert statements["BudgetsPublish"]["Principal"] == {"Service": "budgets.amazonaws.com"}
    assert statements["BudgetsPublish"]["Action"] == "sns:Publish"


# --- the alarms ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("stack", "region"), API_STACKS)
def test_the_regions_model_alarms_are_local_throttles_and_every_lambdas_breakers(
    synth: Synth, stack: str, region: str
) -> None:
    alarms = resources(synth, stack, "AWS::CloudWatch::Alarm")
    watched = [(a["Properties"].get("Namespace"), a["Properties"].get("MetricName"), a["Properties"].get("Dimensions"))
               for a in alarms.values() if "MetricName" in a["Properties"]]  # fmt: skip
    names = {name for _, name, _ in watched}

    # One throttles alarm per Bedrock target of this region; no server-error or latency alarms (the gateway's
    # retries, deadlines and breakers act on those; the dashboards chart them).
    assert [name for namespace, name, _ in watched if namespace == "AWS/Bedrock"] == ["InvocationThrottles"]
    # A breaker alarm per target, whichever Lambda's breaker opened (the dimension target alone).
    breakers = [dims for _, name, dims in watched if name == "BreakerOpened"]
    assert sorted(json.dumps(dims) for dims in breakers) == sorted(
        json.dumps([{"Name": "target", "Value": target}]) for target in TARGETS
    )
    # No alarm on a single degraded answer or refusal: DegradedRate and Api5xxRate watch them as rates.
    assert {"ChatDegraded", "ModelUnavailable", "InvocationServerErrors", "InvocationLatency"} & names == set()
    assert "DeepHealthUnhealthy" in names
    ours = {logical: a for logical, a in alarms.items() if logical.startswith(("Alarms", "Monitoring"))}
    assert len(ours) == 1 + len(TARGETS) + 1 + 2  # throttles (1 local target), breakers, deep health, 2 rates
    for logical, alarm in ours.items():  # each says what it means and where to look
        description = alarm["Properties"]["AlarmDescription"]
        assert any(hint in json.dumps(description) for hint in ("by target", "dashboard", "/health/deep")), logical


# --- the dashboards -------------------------------------------------------------------------------------------------
OVERVIEW_ITEMS = {  # issue 12's list, each in the title of an overview widget
    "requests": "API requests", "latency p50/p99": "API latency (ms, p50 / p99)", "4xx/5xx": "4xx, 5xx",
    "model calls": "Model calls per target", "throttles": "Throttles per target", "breakers": "Breakers opened",
    "failovers, hedges": "Failovers and hedges", "degraded rate, curated": "all, degraded, curated",
    "shed": "Shed requests", "tokens and cost": "Tokens per target (left); their cost", "jobs queue": "Queues: depth",
    "oldest age": "oldest message age", "DLQs": "Dead-letter queues", "ingest": "Ingest: documents ready, failed",
    "guardrail": "Guardrail interventions", "5xx %": "5xx % (right, RegionUnhealthy reads it)",
    "degraded %": "degraded % (right, RegionUnhealthy reads it)", "deep health": "Deep health failing",
    "region health": "Region health: RegionUnhealthy and the alarms it reads",
    "retrieval latency": "Retrieval latency (ms, p50 / p99",
}  # fmt: skip


@pytest.mark.parametrize(("stack", "region"), API_STACKS)
def test_by_default_each_region_has_one_free_overview_dashboard(synth: Synth, stack: str, region: str) -> None:
    (dashboard,) = resources(synth, stack, "AWS::CloudWatch::Dashboard").values()
    titles = [w["properties"].get("title", "") for w in dashboard_widgets(synth, stack) if w["type"] != "text"]

    # Counted as make cost counts them (every `metrics` entry, math inputs included): inside the free tier.
    assert dashboard_metrics(dashboard["Properties"]["DashboardBody"]) <= 50
    # Its own name, never the detailed one's (Bulwark-dev-<region>): a switch between them (and the upgrade from
    # the detailed default) creates the new dashboard before CloudFormation deletes the old, so equal names fail.
    assert dashboard["Properties"]["DashboardName"] == f"Bulwark-dev-{region}-overview"
    missing = {item: words for item, words in OVERVIEW_ITEMS.items() if not any(words in t for t in titles)}
    assert missing == {}
    assert len(titles) == 16  # the alarms, 15 graphs


@pytest.mark.parametrize(("stack", "region"), API_STACKS)
def test_the_overview_reads_the_region_wide_metrics_the_lambdas_emit(synth: Synth, stack: str, region: str) -> None:
    found = list(charted(synth, stack))
    bulwark = {(m.name, json.dumps(m.dimensions, sort_keys=True)) for m in found if m.namespace == "Bulwark"}

    for name in ("ModelAttempts", "Errors.ThrottlingException", "BreakerOpened", "Failovers", "Hedges",
                 "InputTokens", "OutputTokens"):  # fmt: skip
        assert {(name, json.dumps({"target": t})) for t in TARGETS} <= bulwark, name
    region = json.dumps({"scope": REGION_SCOPE})
    assert {("Answers", region), ("AnswersDegraded", region), ("Shed", json.dumps({"target": "none@-"})),
            ("DegradedAnswers", json.dumps({"target": "cache@-"})), ("CuratedAnswers", region),
            ("GuardrailInterventions", region), ("RetrievalLatency", region)} <= bulwark  # fmt: skip
    # One Lambda's figures only where one Lambda has them: the chat Lambda's deep health, the ingest Lambda's counts.
    assert {json.loads(dims)["service"] for _, dims in bulwark if '"service"' in dims} == {"chat", "ingest"}
    assert {name for name, dims in bulwark if '"chat"' in dims} == {"DeepHealthUnhealthy"}
    gateway = {*EVENT_METRICS.values(), "BreakerOpened", "Errors.ThrottlingException", "InputTokens", "OutputTokens"}
    assert {name for name, dims in bulwark if '"target"' in dims} <= gateway
    assert all('"service"' not in dims for name, dims in bulwark if '"target"' in dims)  # never one Lambda's
    body = dashboard_body(synth, stack)
    assert "0.00006" in body and "0.00024" in body  # token cost: Nova Lite's price per 1,000 tokens in / out
    (status,) = [w for w in dashboard_widgets(synth, stack) if w["type"] == "alarm"]
    assert len(status["properties"]["alarms"]) == 5  # RegionUnhealthy, its two rates and the jobs path's two


def test_the_detailed_dashboard_is_todays_and_none_leaves_the_alarms(variants: dict[str, Synth]) -> None:
    for stack, _ in API_STACKS:
        (dashboard,) = resources(variants["detailed"], stack, "AWS::CloudWatch::Dashboard").values()
        assert dashboard_metrics(dashboard["Properties"]["DashboardBody"]) > 200  # every Lambda, service, target
        assert resources(variants["none"], stack, "AWS::CloudWatch::Dashboard") == {}
        assert len(resources(variants["none"], stack, "AWS::CloudWatch::CompositeAlarm")) == 1
        none_alarms = resources(variants["none"], stack, "AWS::CloudWatch::Alarm")
        assert len(none_alarms) == len(resources(variants["detailed"], stack, "AWS::CloudWatch::Alarm"))
        ours = [a for kind in ("AWS::CloudWatch::Alarm", "AWS::CloudWatch::CompositeAlarm")
                for logical, a in resources(variants["none"], stack, kind).items()
                if logical.startswith(("Alarms", "Monitoring"))]  # fmt: skip
        assert len(ours) == 7 and all("dashboard" not in json.dumps(a["Properties"]["AlarmDescription"]) for a in ours)


@pytest.mark.parametrize(
    ("value", "expected"),
    [("overview", "overview"), ("detailed", "detailed"), ("none", "none"), (True, "overview"), (False, "none")],
)
def test_monitoring_dashboard_takes_the_three_modes_and_the_old_switch(value: Any, expected: str) -> None:
    assert AppConfig.from_context(with_dashboard(value)["bulwark"]).monitoring.dashboard == expected


def test_the_default_dashboard_is_the_overview() -> None:
    assert AppConfig.from_context(cdk_context()["bulwark"]).monitoring.dashboard == "overview"


@pytest.mark.parametrize("value", ["full", "", 1, None, ["overview"]])
def test_a_bad_monitoring_dashboard_fails_synth_naming_the_key_and_the_choices(value: Any) -> None:
    with pytest.raises(ConfigError, match=r"monitoring\.dashboard must be one of overview, detailed, none"):
        AppConfig.from_context(with_dashboard(value)["bulwark"])


def test_an_overview_past_50_metrics_warns_at_synth() -> None:
    # GIVEN four model targets (8 metrics each) and knowledge on: 26 + 32 metrics
    models = [{"model_id": f"us.amazon.nova-{size}-v1:0", "region": region} for size in ("lite", "pro")
              for region in ("us-east-1", "us-west-2")]  # fmt: skip
    config = AppConfig.from_context(cdk_context(models=models)["bulwark"])
    stack = Stack(App(), "S")
    api = apigw.RestApi(stack, "Api")
    api.root.add_method("GET")
    queues = [(name, sqs.Queue(stack, name), sqs.Queue(stack, f"{name}Dlq")) for name in ("Jobs", "Ingest")]
    rate = cloudwatch.MathExpression(expression="0", using_metrics={})

    overview = OverviewDashboard(
        stack, "Overview", config=config, region="us-east-1", stage=api.deployment_stage, api_5xx=rate,
        degraded=rate, queues=queues, alarms=[],
    )  # fmt: skip

    assert overview.metric_count == 26 + 8 * 4
    Annotations.from_stack(stack).has_warning("*", Match.string_like_regexp("charts 58 metrics, more than the 50"))
