"""make cost (tools/cost.py) on the session's synthesized templates."""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from typing import Any

import pytest

from stacks.config import AppConfig, CostConfig
from tests.infra.conftest import Synth, cdk_context
from tools.cost import (
    IDLE_GOAL_USD,
    dashboard_metrics,
    estimate,
    free_dashboards_credit,
    load_prices,
    per_1k_chats,
    render,
)


def templates(synth: Synth) -> dict[str, tuple[str, dict[str, Any]]]:
    return {name: (stack.region, synth.template(name).to_json()) for name, stack in synth.stacks.items()}


def config() -> AppConfig:
    return AppConfig.from_context(cdk_context()["bulwark"])


def test_idle_lines_count_the_templates_resources_per_region(synth: Synth) -> None:
    found = templates(synth)
    report = estimate(found, config())
    expected: Counter[tuple[str, str]] = Counter()
    for region, template in found.values():
        for resource in template["Resources"].values():
            kind = resource["Type"]
            if kind in ("AWS::KMS::Key", "AWS::KMS::ReplicaKey"):
                expected[(region, "KMS keys")] += 1
            elif kind == "AWS::WAFv2::WebACL":
                expected[(region, "WAF web ACLs + rules")] += 1
            elif kind == "AWS::CloudWatch::Dashboard":
                expected[(region, "CloudWatch dashboards")] += 1
            elif kind == "AWS::CloudWatch::CompositeAlarm":
                expected[(region, "CloudWatch composite alarms")] += 1
    counted = {(line.region, line.item): line.count for line in report.idle}
    assert {key: counted.get(key) for key in expected} == dict(expected)
    assert counted[("us-east-1", "CloudWatch dashboards")] == counted[("us-west-2", "CloudWatch dashboards")] == 1
    waf = [line for line in report.idle if line.item == "WAF web ACLs + rules"]
    # Each ACL: $5 + $1 a rule, counted from the template: the regional ones 4 rules (rate limit, IP reputation,
    # common rules, known bad inputs); CloudFront's (2 rules) only with cloudfront_waf: true.
    by_region: Counter[str] = Counter()
    for region, template in found.values():
        by_region[region] += sum(
            5.0 + len(r["Properties"]["Rules"])
            for r in template["Resources"].values()
            if r["Type"] == "AWS::WAFv2::WebACL"
        )
    assert {line.region: line.monthly for line in waf} == {r: v for r, v in by_region.items() if v}
    assert sorted(line.monthly for line in waf) == pytest.approx([9.0, 9.0])  # each region: its API (primary: + pool)
    assert set(report.idle_by_region()) == {"us-east-1", "us-west-2"}


def test_the_default_overview_dashboards_are_free_and_a_dashboard_past_50_metrics_is_not(synth: Synth) -> None:
    found = templates(synth)
    bodies = [r["Properties"]["DashboardBody"] for _, t in found.values() for r in t["Resources"].values()
              if r["Type"] == "AWS::CloudWatch::Dashboard"]  # fmt: skip
    assert len(bodies) == 2 and all(dashboard_metrics(body) <= 50 for body in bodies)  # monitoring.dashboard: overview
    prices = load_prices()

    report = estimate(found, config())

    assert report.free_dashboards_credit == 2 * prices["cloudwatch"]["dashboard_month"]  # $6 a month saved
    assert report.idle_total == pytest.approx(sum(line.monthly for line in report.idle) - report.free_dashboards_credit)

    def dashboard(count: int) -> dict[str, Any]:
        """A dashboard of `count` metrics, one of them with a token (its region) inside a string, as CDK writes."""
        metrics = [["Bulwark", "ChatAnswered", "region", "@REGION@"]] + [["Bulwark", "ChatAnswered"]] * (count - 1)
        head, tail = json.dumps({"widgets": [{"type": "metric", "properties": {"metrics": metrics}}]}).split("@REGION@")
        return {"Resources": {"D": {"Type": "AWS::CloudWatch::Dashboard", "Properties": {
            "DashboardBody": {"Fn::Join": ["", [head, {"Ref": "AWS::Region"}, tail]]}
        }}}}  # fmt: skip

    assert dashboard_metrics(dashboard(50)["Resources"]["D"]["Properties"]["DashboardBody"]) == 50
    month = prices["cloudwatch"]["dashboard_month"]
    assert free_dashboards_credit({"a": ("us-east-1", dashboard(50))}, prices) == month
    assert free_dashboards_credit({"a": ("us-east-1", dashboard(51))}, prices) == 0


def test_per_1000_chats_prices_the_streamed_path_the_ui_uses_and_names_it(synth: Synth) -> None:
    found, base = templates(synth), config()
    prices = load_prices()
    report = estimate(found, base, prices)

    assert report.per_1k_chats_path == "stream"  # streaming on (cdk.json): the web UI streams by default
    stream, rest = report.per_1k_chats, report.per_1k_chats_other
    assert rest == per_1k_chats(found, base, prices, "rest")
    assert any(item.startswith("API Gateway WebSocket messages") for item in stream)
    assert any(item.startswith("API Gateway WebSocket connection minutes") for item in stream)
    assert any(item.startswith("Lambda (stream") for item in stream)
    assert "API Gateway REST" in rest and "WAF requests" in rest and "API Gateway REST" not in stream
    (messages,) = [cost for item, cost in stream.items() if item.startswith("API Gateway WebSocket messages")]
    # Per chat at least the question, start, end and budget, and at most one post per model delta ($1 per million).
    assert 4 * 1.0 / 1000 <= messages <= (4 + base.cost.chat_output_tokens) * 1.0 / 1000
    text = render(report, base, prices)
    assert "Per 1,000 chats streamed over the WebSocket API (the web UI's default)" in text
    assert "over POST /chat (REST)" in text
    off = dataclasses.replace(base, streaming=dataclasses.replace(base.streaming, enabled=False))
    assert estimate(found, off, prices).per_1k_chats_path == "rest"


def test_a_change_in_config_changes_the_figures(synth: Synth) -> None:
    found = templates(synth)
    base = config()
    report = estimate(found, base)
    more_tokens = dataclasses.replace(base, cost=CostConfig(chat_input_tokens=5000))
    more_logs = dataclasses.replace(base, cost=CostConfig(idle_log_gb=100))

    assert sum(estimate(found, more_tokens).per_1k_chats.values()) > sum(report.per_1k_chats.values())
    assert estimate(found, more_logs).idle_total == pytest.approx(report.idle_total + (100 - 0.5) * 2 * 0.03)
    text = render(report, base, load_prices())
    assert "Idle monthly cost, us-east-1" in text and "Per 1,000 chats" in text and "Per 1,000 ingested pages" in text
    assert "as of 2026-11-22" in text


def test_a_variant_is_priced_with_set_and_bad_assignments_are_refused(capsys: pytest.CaptureFixture[str]) -> None:
    from tools import cost

    for argv in (["--set", "cloudfront_waf=nope"], ["--cdk-out", "x", "--set", "cloudfront_waf=false"]):
        with pytest.raises(SystemExit) as exit_:
            cost.main(argv)
        assert exit_.value.code == 2
    assert "must be JSON" in capsys.readouterr().err


def test_the_default_two_region_deployment_idles_within_the_goal(synth: Synth) -> None:
    """Issue 12's goal, on the synthesized default templates: idle <= $30 a month over both regions, the one
    dashboard per region within CloudWatch's free tier, and the text says so. Adding the CloudFront ACL (the
    documented opt-in) is what takes it over."""
    found, base = templates(synth), config()
    prices = load_prices()
    report = estimate(found, base, prices)

    assert report.idle_total <= IDLE_GOAL_USD
    assert report.free_dashboards_credit == 2 * prices["cloudwatch"]["dashboard_month"]
    text = render(report, base, prices)
    assert f"Idle monthly total, all regions: ${report.idle_total:.2f} (within the $30 goal)" in text
    waf = prices["waf"]
    cdn_acl = waf["web_acl_month"] + 2 * waf["rule_month"]  # rate limit + IP reputation (stacks/constructs/web_acl.py)
    assert report.idle_total + cdn_acl > IDLE_GOAL_USD
