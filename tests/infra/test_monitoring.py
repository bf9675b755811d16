"""Each region's dashboard, its composite "region unhealthy" alarm and the account's budget, in the templates.

The metric names and dimensions asserted here are the ones the Lambdas emit: the gateway's event names
(adapters/metrics.py EVENT_METRICS), its target-less answers (core/gateway.py NONE_TARGET, CACHE_TARGET), the
answer counters of handlers/chat.py and handlers/stream.py (read from their source)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, NamedTuple

import pytest
from aws_cdk.assertions import Match

from adapters.metrics import EVENT_METRICS
from core.gateway import CACHE_TARGET, NONE_TARGET
from stacks.constructs.dashboard import ANSWER_METRICS, TARGET_WIDGETS
from tests.conftest import ROOT
from tests.infra.conftest import Synth

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
def test_each_region_has_one_dashboard_with_every_widget_metric(synth: Synth, stack: str, region: str) -> None:
    names = {metric.name for metric in charted(synth, stack)}

    gateway = {name for names_ in TARGET_WIDGETS.values() for name in names_}
    assert gateway <= {*EVENT_METRICS.values(), "BreakerOpened", "ModelLatency", "Errors.ThrottlingException"}
    expected = {*gateway, *AWS_METRICS, *OTHER_METRICS, "DegradedAnswers", "Shed", "ModelLatency", "InputTokens",
                "OutputTokens", *(n for metrics in ANSWER_METRICS.values() for n in metrics)}  # fmt: skip
    assert expected - names == set()
    body = dashboard_body(synth, stack)
    assert "0.00006" in body and "0.00024" in body  # token cost: Nova Lite's price per 1,000 tokens in / out
    (dashboard,) = resources(synth, stack, "AWS::CloudWatch::Dashboard").values()
    assert dashboard["Properties"]["DashboardName"] == f"Bulwark-dev-{region}"


@pytest.mark.parametrize(("stack", "region"), API_STACKS)
def test_per_target_widgets_chart_every_gateway_service_by_the_targets_the_gateway_names(
    synth: Synth, stack: str, region: str
) -> None:
    found = {(m.name, m.dimensions.get("service"), m.dimensions.get("target")) for m in charted(synth, stack)
             if m.namespace == "Bulwark"}  # fmt: skip

    for names in TARGET_WIDGETS.values():
        for name in names:
            assert {(name, s, t) for s in GATEWAY_SERVICES for t in TARGETS} <= found, name
    for service in ANSWERING_SERVICES:
        for target in TARGETS:
            assert {("InputTokens", service, target), ("OutputTokens", service, target),
                    ("ModelLatency", service, target)} <= found  # fmt: skip


@pytest.mark.parametrize(("stack", "region"), API_STACKS)
def test_degraded_answers_are_charted_by_the_target_the_gateway_gives_them(
    synth: Synth, stack: str, region: str
) -> None:
    none, cache = (f"{t.model_id}@{t.region}" for t in (NONE_TARGET, CACHE_TARGET))
    degraded = [m for m in charted(synth, stack) if m.name == "DegradedAnswers"]
    shed = [m for m in charted(synth, stack) if m.name == "Shed"]

    assert {m.dimensions["target"] for m in degraded} == {none, cache}
    assert {m.dimensions["target"] for m in shed} == {none}
    assert {m.dimensions["service"] for m in degraded} == set(GATEWAY_SERVICES)


@pytest.mark.parametrize(("stack", "region"), API_STACKS)
def test_the_stream_path_is_on_the_dashboard_as_its_lambda_emits_it(synth: Synth, stack: str, region: str) -> None:
    stream_source = emitted_by("stream.py")
    stream = {m.name for m in charted(synth, stack) if m.dimensions == {"service": "stream"}}

    assert set(ANSWER_METRICS["stream"]) <= stream
    assert all(f'"{name}"' in stream_source for name in ANSWER_METRICS["stream"] if name != "CuratedAnswers")
    assert all(f'"{name}"' in emitted_by("chat.py") for name in ANSWER_METRICS["chat"] if name != "CuratedAnswers")
    assert "GuardrailInterventions" in stream


@pytest.mark.parametrize(("stack", "region"), API_STACKS)
def test_every_lambda_on_the_request_path_has_its_widgets(synth: Synth, stack: str, region: str) -> None:
    functions = {
        props["Handler"]: logical
        for logical, resource in resources(synth, stack, "AWS::Lambda::Function").items()
        if (props := resource["Properties"]).get("Handler", "").startswith("handlers.")
    }
    charted_functions = {m.dimensions["FunctionName"] for m in charted(synth, stack) if m.namespace == "AWS/Lambda"}

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
    read = {(m["MetricStat"]["Metric"]["MetricName"], json.dumps(m["MetricStat"]["Metric"]["Dimensions"]))
            for m in degraded["Metrics"] if "MetricStat" in m}  # fmt: skip
    chat = json.dumps([{"Name": "service", "Value": "chat"}])
    stream = json.dumps([{"Name": "service", "Value": "stream"}])
    # Both answering paths: POST /chat (answered or degraded) and the stream (answered or incomplete; degraded)
    assert read == {("ChatAnswered", chat), ("ChatDegraded", chat), ("StreamAnswered", stream),
                    ("StreamIncomplete", stream), ("ChatDegraded", stream)}  # fmt: skip
    (expression,) = [m["Expression"] for m in degraded["Metrics"] if "Expression" in m]
    ids_by_read = {(m["MetricStat"]["Metric"]["MetricName"], json.dumps(m["MetricStat"]["Metric"]["Dimensions"])):
                   m["Id"] for m in degraded["Metrics"] if "MetricStat" in m}  # fmt: skip
    numerator = expression.split("100 * (", 1)[1].split(") / (", 1)[0]
    assert ids_by_read[("ChatDegraded", chat)] in numerator and ids_by_read[("ChatDegraded", stream)] in numerator
    assert degraded["Threshold"] == 50

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
