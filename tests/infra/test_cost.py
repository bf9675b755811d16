"""make cost (tools/cost.py) on the session's synthesized templates."""

from __future__ import annotations

import dataclasses
from collections import Counter
from typing import Any

from stacks.config import AppConfig, CostConfig
from tests.infra.conftest import Synth, cdk_context
from tools.cost import estimate, load_prices, render


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
    # common rules, known bad inputs), CloudFront's 2 (static files: rate limit, IP reputation).
    by_region: Counter[str] = Counter()
    for region, template in found.values():
        by_region[region] += sum(
            5.0 + len(r["Properties"]["Rules"])
            for r in template["Resources"].values()
            if r["Type"] == "AWS::WAFv2::WebACL"
        )
    assert {line.region: line.monthly for line in waf} == {r: v for r, v in by_region.items() if v}
    assert sorted(line.monthly for line in waf) == [9.0, 16.0]  # DR: its API's; primary: API + user pool, CloudFront
    assert set(report.idle_by_region()) == {"us-east-1", "us-west-2"}


def test_a_change_in_config_changes_the_figures(synth: Synth) -> None:
    found = templates(synth)
    base = config()
    report = estimate(found, base)
    more_tokens = dataclasses.replace(base, cost=CostConfig(chat_input_tokens=5000))
    more_logs = dataclasses.replace(base, cost=CostConfig(idle_log_gb=100))

    assert sum(estimate(found, more_tokens).per_1k_chats.values()) > sum(report.per_1k_chats.values())
    assert estimate(found, more_logs).idle_total == report.idle_total + (100 - 0.5) * 2 * 0.03
    text = render(report, base, load_prices())
    assert "Idle monthly cost, us-east-1" in text and "Per 1,000 chats" in text and "Per 1,000 ingested pages" in text
    assert "as of 2026-11-22" in text
