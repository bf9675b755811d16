"""Each region's dashboard, its composite "region unhealthy" alarm and the account's budget, in the templates."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk.assertions import Match

from tests.infra.conftest import Synth

API_STACKS = [("Bulwark-dev-Api", "us-east-1"), ("Bulwark-dev-Api-DR", "us-west-2")]
TARGETS = ("us.amazon.nova-lite-v1:0@us-east-1", "us.amazon.nova-lite-v1:0@us-west-2")
# Metric names exactly as the Lambdas emit them (namespace Bulwark) and AWS's own.
DASHBOARD_METRICS = (
    "ChatAnswered", "ChatDegraded", "CuratedAnswers", "ChatShed", "ModelUnavailable", "GuardrailInterventions",
    "DeepHealthUnhealthy", "ModelAttempts", "ModelRetries", "Errors.ThrottlingException", "BreakerOpened",
    "BreakerSkips", "Failovers", "Hedges", "DegradedAnswers", "ModelLatency", "InputTokens", "OutputTokens",
    "Documents.ready", "Documents.failed", "DocumentsFailed", "EmbeddingCalls", "InvocationThrottles",
    "Count", "Latency", "4XXError", "5XXError", "ApproximateNumberOfMessagesVisible", "ApproximateAgeOfOldestMessage",
)  # fmt: skip


def resources(synth: Synth, stack: str, kind: str) -> dict[str, Any]:
    found: dict[str, Any] = synth.template(stack).find_resources(kind)
    return found


def dashboard_body(synth: Synth, stack: str) -> str:
    (dashboard,) = resources(synth, stack, "AWS::CloudWatch::Dashboard").values()
    return json.dumps(dashboard["Properties"]["DashboardBody"])


@pytest.mark.parametrize(("stack", "region"), API_STACKS)
def test_each_region_has_one_dashboard_with_every_widget_metric(synth: Synth, stack: str, region: str) -> None:
    body = dashboard_body(synth, stack)

    missing = [name for name in DASHBOARD_METRICS if f'\\"{name}\\"' not in body]
    assert missing == []
    assert all(target in body for target in TARGETS)  # per-target widgets use the gateway's dimension value
    assert '\\"Bulwark\\"' in body and '\\"service\\"' in body
    assert "p50" in body and "p99" in body
    assert "0.00006" in body and "0.00024" in body  # token cost: Nova Lite's price per 1,000 tokens in / out
    (dashboard,) = resources(synth, stack, "AWS::CloudWatch::Dashboard").values()
    assert dashboard["Properties"]["DashboardName"] == f"Bulwark-dev-{region}"


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
    assert {m["MetricStat"]["Metric"]["MetricName"] for m in degraded["Metrics"] if "MetricStat" in m} == {
        "ChatAnswered", "ChatDegraded"}  # fmt: skip
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
