"""make cost: idle monthly cost per region, cost per 1,000 chats and per 1,000 ingested pages.

Reads the synthesized templates (cdk.out or cdk.out.local: manifest.json says each stack's region) and the config
(cdk.json), and prices them with the dated list-price table stacks/config/prices.json. Usage-priced services
(Lambda, API Gateway, DynamoDB on demand, S3 Vectors, Bedrock, Cognito, CloudFront, SQS) cost nothing idle except
what runs on a schedule or polls: those are counted from the templates too.

python tools/cost.py [--cdk-out DIR]     (default: synthesize into a temporary directory, no bundling)
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
import tempfile
from collections import defaultdict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stacks.config import AppConfig
from stacks.constructs.dashboard import load_prices, model_price

ROOT = Path(__file__).resolve().parents[1]
MONTH_HOURS = 730
IDLE_GOAL_USD = 30.0  # issue 12: the default two-region deployment idles at or under this a month
MONTH_MINUTES = MONTH_HOURS * 60
# Per chat, beyond the config's assumptions: DynamoDB items (turn, history, cache, limits, token budget), the
# question's embedding, log bytes.
CHAT_WRITE_UNITS = 5
CHAT_READ_UNITS = 8
QUESTION_TOKENS = 60
CHAT_LOG_BYTES = 3000
CHARS_PER_TOKEN = 4
VECTOR_BYTES_OVERHEAD = 2500  # the chunk text and metadata stored with each vector
# The streamed path (WebSocket, the web UI's default; handlers/stream.py): the stream Lambda posts `start`, the
# answer's deltas (coalesced: a post at most every FLUSH_S or FLUSH_CHARS characters), `end` and `budget`; the
# question is the one message in. The model sends a delta about every MODEL_DELTA_CHARS characters. A session keeps
# its socket open between questions (the UI opens one per sign-in; API Gateway closes it after 10 idle minutes):
# CHATS_PER_CONNECTION questions over CONNECTION_MINUTES_PER_CHAT minutes each, and per connection the authorizer,
# $connect and $disconnect invocations.
STREAM_FLUSH_S = 0.040  # handlers/stream.py FLUSH_S
STREAM_FLUSH_CHARS = 200  # handlers/stream.py FLUSH_CHARS
MODEL_DELTA_CHARS = 12
STREAM_FIXED_MESSAGES = 4  # the question in; start, end, budget out
CHATS_PER_CONNECTION = 5
CONNECTION_MINUTES_PER_CHAT = 2.0
CONNECTION_INVOCATIONS = 3  # the authorizer, $connect, $disconnect (about 100 ms each)
WEBSOCKET_MESSAGE_UNIT_BYTES = 32 * 1024  # messages are metered in 32 KB units


@dataclass
class Line:
    region: str
    item: str
    count: int
    monthly: float
    note: str = ""


@dataclass
class Report:
    idle: list[Line] = field(default_factory=list)
    per_1k_chats: dict[str, float] = field(default_factory=dict)
    per_1k_pages: dict[str, float] = field(default_factory=dict)
    per_1k_chats_path: str = "rest"  # which path per_1k_chats prices: "stream" (WebSocket) or "rest" (POST /chat)
    per_1k_chats_other: dict[str, float] = field(default_factory=dict)  # the other path's lines, if deployed
    free_dashboards_credit: float = 0.0

    def idle_by_region(self) -> dict[str, float]:
        totals: dict[str, float] = defaultdict(float)
        for line in self.idle:
            totals[line.region] += line.monthly
        return dict(totals)

    @property
    def idle_total(self) -> float:
        return sum(line.monthly for line in self.idle) - self.free_dashboards_credit


def load_templates(cdk_out: Path) -> dict[str, tuple[str, dict[str, Any]]]:
    """stack name -> (region, template), from the cloud assembly's manifest."""
    manifest = json.loads((cdk_out / "manifest.json").read_text())
    found = {}
    for name, artifact in manifest["artifacts"].items():
        if artifact.get("type") != "aws:cloudformation:stack":
            continue
        region = artifact["environment"].rsplit("/", 1)[-1]
        template = json.loads((cdk_out / artifact["properties"]["templateFile"]).read_text())
        found[artifact.get("displayName", name)] = (region, template)
    return found


def _resources(template: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    for resource in template.get("Resources", {}).values():
        yield resource["Type"], resource.get("Properties", {})


def _schedule_runs_per_month(expression: Any) -> float:
    match = re.fullmatch(r"rate\((\d+) (minute|minutes|hour|hours|day|days)\)", str(expression))
    if not match:
        return 30.0 if str(expression).startswith("cron(") else 0.0  # a cron: about daily
    every = int(match.group(1)) * {"m": 1, "h": 60, "d": 1440}[match.group(2)[0]]
    return MONTH_MINUTES / every


def dashboard_metrics(body: Any) -> int:
    """How many metrics a DashboardBody charts (graph and single-value widgets' `metrics` entries, the math
    expressions' hidden inputs included), its Fn::Join's tokens read as plain text."""
    if isinstance(body, dict) and "Fn::Join" in body:
        separator, parts = body["Fn::Join"]
        text = separator.join(part if isinstance(part, str) else "token" for part in parts)
    else:
        text = str(body)
    widgets = json.loads(text).get("widgets", [])
    return sum(len(widget.get("properties", {}).get("metrics", [])) for widget in widgets)


def _memory_gb(template: Mapping[str, Any], handler_prefix: str) -> float:
    for kind, props in _resources(template):
        if kind == "AWS::Lambda::Function" and str(props.get("Handler", "")).startswith(handler_prefix):
            return float(props.get("MemorySize", 128)) / 1024
    return 0.5


_CRON_DAYS = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")  # AWS cron: 1 = SUN ... 7 = SAT


def _scheduled_actions(template: Mapping[str, Any], alias: str) -> list[tuple[str, float, float]]:
    """The scheduled actions (schedule, min, max) of the scalable target on `alias` (a logical id)."""
    for kind, props in _resources(template):
        if kind == "AWS::ApplicationAutoScaling::ScalableTarget" and alias in json.dumps(props.get("ResourceId")):
            actions = [(a["Schedule"], a["ScalableTargetAction"]) for a in props.get("ScheduledActions", [])]
            return [(when, to.get("MinCapacity", 0), to.get("MaxCapacity", 1e9)) for when, to in actions]
    return []


def _hours_of_week(expression: str) -> list[int] | None:
    """When a cron(M H ? * DAYS *) fires, as hours of the week (0 = Sunday 00:00 UTC); None: not that shape."""
    match = re.fullmatch(r"cron\(\d+ (\d+) [?*] \* (\S+) \*\)", expression)
    if not match:
        return None
    days: set[int] = set()
    for part in match.group(2).split(","):
        if part in ("*", "?"):
            days |= set(range(7))
            continue
        first, _, last = part.partition("-")
        ends = [_day_index(day) for day in (first, last or first)]
        if min(ends) < 0 or max(ends) > 6:
            return None
        start, end = ends
        days |= set(range(start, end + 1)) if start <= end else set(range(start, 7)) | set(range(end + 1))
    return sorted(day * 24 + int(match.group(1)) for day in days)


def _day_index(day: str) -> int:
    if day in _CRON_DAYS:
        return _CRON_DAYS.index(day)
    return int(day) - 1 if day.isdigit() else -1


def _provisioned_units(deployed: float, actions: list[tuple[str, float, float]]) -> tuple[float, str]:
    """The average provisioned concurrency over a week the scheduled actions shape (each sets the capacity into
    its [min, max]); the deployed figure all month when there are none, or one cannot be read."""
    if not actions:
        return deployed, "always on"
    events: dict[int, tuple[float, float]] = {}
    for expression, low, high in actions:
        hours = _hours_of_week(expression)
        if hours is None:
            return deployed, "schedule not priced: always-on upper bound"
        events.update({hour: (low, high) for hour in hours})
    capacity, week = deployed, []
    for hour in range(2 * 168):  # the second week starts from where the first one ended
        low, high = events.get(hour % 168, (0, 1e9))
        capacity = min(max(capacity, low), high)
        week.append(capacity)
    return sum(week[168:]) / 168, "scheduled"


def idle_lines(
    templates: Mapping[str, tuple[str, Mapping[str, Any]]], config: AppConfig, prices: Mapping[str, Any]
) -> list[Line]:
    counts: dict[tuple[str, str], list[float]] = defaultdict(lambda: [0, 0.0])
    notes: dict[tuple[str, str], str] = {}

    def add(region: str, item: str, monthly: float, count: int = 1, note: str = "") -> None:
        counts[(region, item)][0] += count
        counts[(region, item)][1] += monthly
        if note:
            notes[(region, item)] = note

    cw, lam = prices["cloudwatch"], prices["lambda"]
    functions: dict[str, dict[str, float]] = {}
    for _, (_, template) in templates.items():
        for logical, resource in template.get("Resources", {}).items():
            if resource["Type"] == "AWS::Lambda::Function":
                memory = float(resource.get("Properties", {}).get("MemorySize", 128)) / 1024
                functions[logical] = {"memory": memory}
    for _, (region, template) in templates.items():
        for kind, props in _resources(template):
            if kind in ("AWS::KMS::Key", "AWS::KMS::ReplicaKey"):
                add(region, "KMS keys", prices["kms"]["key_month"])
            elif kind == "AWS::WAFv2::WebACL":
                rules = len(props.get("Rules", []))
                waf = prices["waf"]
                add(region, "WAF web ACLs + rules", waf["web_acl_month"] + rules * waf["rule_month"],
                    note=f"${waf['web_acl_month']:.0f}/ACL + ${waf['rule_month']:.0f}/rule")  # fmt: skip
            elif kind == "AWS::CloudWatch::Alarm":
                metrics = [m for m in props.get("Metrics", []) if "MetricStat" in m] or [None]
                add(region, "CloudWatch alarms", cw["alarm_metric_month"] * len(metrics), note="$0.10 per metric")
            elif kind == "AWS::CloudWatch::CompositeAlarm":
                add(region, "CloudWatch composite alarms", cw["composite_alarm_month"])
            elif kind == "AWS::CloudWatch::Dashboard":
                metrics = dashboard_metrics(props.get("DashboardBody", "{}"))
                add(region, "CloudWatch dashboards", cw["dashboard_month"], note=f"{metrics} metrics")
            elif kind == "AWS::Logs::LogGroup":
                add(region, "CloudWatch log groups (storage baseline)", 0.0)
            elif kind == "AWS::Route53::HealthCheck":
                check = props.get("HealthCheckConfig", {})
                r53 = prices["route53"]
                monthly = r53["health_check_month"]
                monthly += r53["health_check_https_month"] if str(check.get("Type", "")).startswith("HTTPS") else 0
                monthly += r53["health_check_fast_interval_month"] if check.get("RequestInterval") == 10 else 0
                add(region, "Route 53 health checks", monthly)
            elif kind == "AWS::SecretsManager::Secret":
                add(region, "Secrets Manager secrets", prices["secretsmanager"]["secret_month"])
            elif kind == "AWS::Backup::BackupVault":
                add(
                    region,
                    "Backup vault storage (baseline)",
                    config.cost.idle_data_gb * prices["backup"]["dynamodb_warm_gb_month"],
                )
            elif kind == "AWS::AppConfig::Application":
                add(region, "AppConfig (requests only while Lambdas run)", 0.0)
            elif kind == "AWS::DynamoDB::GlobalTable":
                ddb = prices["dynamodb"]
                per_gb = ddb["storage_gb_month"] + ddb["pitr_gb_month"]
                for replica in props.get("Replicas", [{"Region": region}]):
                    add(replica.get("Region", region), "DynamoDB on-demand tables (storage baseline)",
                        config.cost.idle_data_gb / 8 * per_gb)  # fmt: skip
            elif kind == "AWS::S3Vectors::VectorBucket":
                add(
                    region,
                    "S3 Vectors (storage baseline)",
                    config.cost.idle_data_gb * prices["s3vectors"]["storage_gb_month"],
                )
            elif kind == "AWS::S3::Bucket":
                add(
                    region,
                    "S3 buckets (storage baseline)",
                    config.cost.idle_data_gb / 4 * prices["s3"]["storage_gb_month"],
                )
            elif kind == "AWS::Lambda::EventSourceMapping":
                polls = prices["sqs"]["idle_polls_per_event_source_month"]
                add(
                    region,
                    "SQS long polls by Lambda event sources",
                    polls / 1e6 * prices["sqs"]["per_million_requests"],
                )
            elif kind == "AWS::Events::Rule" and props.get("ScheduleExpression"):
                runs = _schedule_runs_per_month(props["ScheduleExpression"])
                # A scheduled Lambda run: one request and about half a second at its memory.
                target = (props.get("Targets") or [{}])[0].get("Arn", {})
                logical = target.get("Fn::GetAtt", [""])[0] if isinstance(target, dict) else ""
                memory = functions.get(logical, {"memory": 0.5})["memory"]
                monthly = runs * (lam["per_million_requests"] / 1e6 + 0.5 * memory * lam["gb_second"])
                add(region, "scheduled Lambdas (recovery sweep, curate job, drift job)", monthly)
            elif kind in ("AWS::Lambda::Alias", "AWS::Lambda::Version") and props.get("ProvisionedConcurrencyConfig"):
                # Billed per GB-second provisioned, whether used or not, at the function's memory; a schedule
                # (Application Auto Scaling scheduled actions) is priced as the week it makes.
                units = props["ProvisionedConcurrencyConfig"].get("ProvisionedConcurrentExecutions", 0)
                logical = next(k for k, r in template["Resources"].items() if r.get("Properties") is props)
                units, note = _provisioned_units(units, _scheduled_actions(template, logical))
                function = props.get("FunctionName", {})
                memory = functions.get(function.get("Ref", "") if isinstance(function, dict) else "", {"memory": 0.5})
                monthly = units * memory["memory"] * MONTH_HOURS * 3600 * lam["provisioned_gb_second"]
                add(region, "Lambda provisioned concurrency", monthly, note=note)
            elif kind == "AWS::Lambda::Function" and props.get("SnapStart", {}).get("ApplyOn") == "PublishedVersions":
                # Python SnapStart: the live version's snapshot is cached (per GB-second of memory) all month;
                # restores are billed per GB restored, with use, not idle.
                memory = float(props.get("MemorySize", 128)) / 1024
                monthly = memory * MONTH_HOURS * 3600 * lam["snapstart_cache_gb_second"]
                add(region, "Lambda SnapStart snapshot cache", monthly, note="restores extra, per GB")
    for region in config.regions:
        add(region, "CloudWatch log groups (storage baseline)", config.cost.idle_log_gb * cw["log_storage_gb_month"], 0)
        secrets = sum(1 for target in config.models if target.secret)
        if secrets:
            monthly = secrets * prices["secretsmanager"]["secret_month"]
            add(region, "provider secrets (kept outside the stacks)", monthly,
                secrets)  # fmt: skip
    return [
        Line(region=region, item=item, count=int(count), monthly=monthly, note=notes.get((region, item), ""))
        for (region, item), (count, monthly) in sorted(counts.items())
    ]


def chat_paths(config: AppConfig) -> tuple[str, ...]:
    """The chat paths deployed, the web UI's default first: the WebSocket stream when streaming is on."""
    return ("stream", "rest") if config.streaming.enabled else ("rest",)


def per_1k_chats(
    templates: Mapping[str, tuple[str, Mapping[str, Any]]],
    config: AppConfig,
    prices: Mapping[str, Any],
    path: str = "rest",
) -> dict[str, float]:
    """One chat over `path`: "stream" (the WebSocket API and the stream Lambda, the web UI's default) or "rest"
    (POST /chat through the REST API, its WAF and the chat Lambda)."""
    assumptions = config.cost
    primary = config.models[0]
    price = model_price(primary.model_id, prices) or {"input": 0.0, "output": 0.0}
    api = next(t for _, (r, t) in templates.items() if r == config.primary_region and any(
        k == "AWS::ApiGateway::RestApi" for k, _ in _resources(t)))  # fmt: skip
    lam, ddb, gateway = prices["lambda"], prices["dynamodb"], prices["apigateway"]
    lines = {
        f"model tokens ({primary.model_id}: {assumptions.chat_input_tokens} in / {assumptions.chat_output_tokens} out)":
            assumptions.chat_input_tokens / 1000 * price["input"]
            + assumptions.chat_output_tokens / 1000 * price["output"],
        "DynamoDB (on demand, replicated writes)": (CHAT_WRITE_UNITS * (ddb["per_million_write_units"]
            + ddb["per_million_replicated_write_units"]) + CHAT_READ_UNITS * ddb["per_million_read_units"]) / 1e6,
        "CloudWatch Logs ingestion": CHAT_LOG_BYTES / 1e9 * prices["cloudwatch"]["log_ingest_gb"],
        "X-Ray traces": prices["xray"]["per_million_traces"] / 1e6,
    }  # fmt: skip
    seconds = assumptions.chat_lambda_ms / 1000
    if path == "stream":
        memory = _memory_gb(api, "handlers.stream")
        chars = assumptions.chat_output_tokens * CHARS_PER_TOKEN
        deltas = min(math.ceil(chars / MODEL_DELTA_CHARS),
                     math.ceil(seconds / STREAM_FLUSH_S) + math.ceil(chars / STREAM_FLUSH_CHARS))  # fmt: skip
        messages = STREAM_FIXED_MESSAGES + deltas  # each well under 32 KB: one metered unit
        connect_memory = (_memory_gb(api, "handlers.ws_authorizer") + 2 * memory) / CONNECTION_INVOCATIONS
        per_connection = CONNECTION_INVOCATIONS * (lam["per_million_requests"] / 1e6 + 0.1 * connect_memory
                                                   * lam["gb_second"])  # fmt: skip
        lines.update({
            f"Lambda (stream: request + {seconds:g} s)": lam["per_million_requests"] / 1e6
                + seconds * memory * lam["gb_second"],
            f"API Gateway WebSocket messages ({messages}: the question, start/end/budget, {deltas} delta posts)":
                messages * gateway["websocket_per_million_messages"] / 1e6,
            f"API Gateway WebSocket connection minutes ({CONNECTION_MINUTES_PER_CHAT:g} per chat)":
                CONNECTION_MINUTES_PER_CHAT * gateway["websocket_per_million_connection_minutes"] / 1e6,
            f"connect/authorize/disconnect Lambdas (1 connection per {CHATS_PER_CONNECTION} chats)":
                per_connection / CHATS_PER_CONNECTION,
        })  # fmt: skip
    else:
        memory = _memory_gb(api, "handlers.chat")
        lines.update({
            f"Lambda (chat: request + {seconds:g} s)": lam["per_million_requests"] / 1e6
                + seconds * memory * lam["gb_second"],
            "API Gateway REST": gateway["rest_per_million_requests"] / 1e6,
            "WAF requests": prices["waf"]["per_million_requests"] / 1e6,
        })  # fmt: skip
    if config.knowledge.enabled:
        embed = model_price(config.knowledge.embedding_model_id, prices) or {"input": 0.0}
        lines["retrieval (question embedding + S3 Vectors query)"] = (
            QUESTION_TOKENS / 1000 * embed["input"] + prices["s3vectors"]["per_million_queries"] / 1e6
        )
    if config.guardrail.enabled:
        # Upper bound: the guardrail assesses the whole prompt and the answer (1 text unit = 1,000 characters).
        chars = (assumptions.chat_input_tokens + assumptions.chat_output_tokens) * CHARS_PER_TOKEN
        units = math.ceil(chars / prices["bedrock"]["guardrail_text_unit_chars"])
        rates = prices["bedrock"]["guardrail_per_1k_text_units"]
        lines[f"guardrail ({units} text units, content filters + PII)"] = (
            units / 1000 * (rates["content_filters"] + rates["sensitive_information"])
        )
    return {item: cost * 1000 for item, cost in lines.items()}


def per_1k_pages(
    templates: Mapping[str, tuple[str, Mapping[str, Any]]], config: AppConfig, prices: Mapping[str, Any]
) -> dict[str, float]:
    assumptions, knowledge = config.cost, config.knowledge
    regions = len(config.regions)  # each region ingests the replicated documents itself
    chunks = max(1.0, assumptions.page_tokens / knowledge.expected_tokens_per_chunk)
    embed = model_price(knowledge.embedding_model_id, prices) or {"input": 0.0}
    vector_gb = chunks * (knowledge.dimensions * 4 + VECTOR_BYTES_OVERHEAD) / 1e9
    page_gb = assumptions.page_tokens * CHARS_PER_TOKEN / 1e9
    lam = prices["lambda"]
    memory = max((_memory_gb(t, "handlers.ingest") for _, (_, t) in templates.items()), default=1.0)
    lines = {
        f"embeddings ({knowledge.embedding_model_id}, {regions} regions)": regions * assumptions.page_tokens / 1000
            * embed["input"],
        "ingest Lambda": regions * assumptions.ingest_lambda_ms_per_page / 1000 * memory * lam["gb_second"],
        "S3 Vectors PUT + storage (first month)": regions * vector_gb * (
            prices["s3vectors"]["put_per_gb"] + prices["s3vectors"]["storage_gb_month"]),
        "S3 (document storage, replication with RTC)": page_gb * (
            regions * prices["s3"]["storage_gb_month"] + prices["s3"]["replication_rtc_gb"]),
    }  # fmt: skip
    return {item: cost * 1000 for item, cost in lines.items()}


def estimate(templates: Mapping[str, tuple[str, Mapping[str, Any]]], config: AppConfig,
             prices: Mapping[str, Any] | None = None) -> Report:  # fmt: skip
    prices = prices or load_prices()
    default, *others = chat_paths(config)
    report = Report(
        idle=idle_lines(templates, config, prices),
        per_1k_chats=per_1k_chats(templates, config, prices, default),
        per_1k_pages=per_1k_pages(templates, config, prices),
        per_1k_chats_path=default,
        per_1k_chats_other=per_1k_chats(templates, config, prices, others[0]) if others else {},
    )
    report.free_dashboards_credit = free_dashboards_credit(templates, prices)
    return report


def free_dashboards_credit(templates: Mapping[str, tuple[str, Mapping[str, Any]]], prices: Mapping[str, Any]) -> float:
    """CloudWatch's free tier: 3 dashboards of up to 50 metrics each per account; a larger one is billed in full."""
    cw = prices["cloudwatch"]
    small = sum(
        1
        for _, (_, template) in templates.items()
        for kind, props in _resources(template)
        if kind == "AWS::CloudWatch::Dashboard"
        and dashboard_metrics(props.get("DashboardBody", "{}")) <= cw["free_dashboard_max_metrics"]
    )
    return min(small, cw["free_dashboards_per_account"]) * cw["dashboard_month"]


def render(report: Report, config: AppConfig, prices: Mapping[str, Any]) -> str:
    cw = prices["cloudwatch"]
    free_tier = (f"CloudWatch's {cw['free_dashboards_per_account']} free dashboards of up to "
                 f"{cw['free_dashboard_max_metrics']} metrics each")  # fmt: skip
    out = [f"Bulwark cost estimate: list prices as of {prices['as_of']} ({', '.join(prices['regions'])}), "
           f"USD, no free tier except {free_tier}", ""]  # fmt: skip
    by_region = report.idle_by_region()
    for region in sorted(by_region, key=lambda r: (r != config.primary_region, r)):
        out.append(f"Idle monthly cost, {region}: ${by_region[region]:.2f} (before the account's free dashboards)")
        for line in sorted((x for x in report.idle if x.region == region), key=lambda x: -x.monthly):
            note = f"  ({line.note})" if line.note else ""
            out.append(f"  {line.item:<58} {line.count:>3}  ${line.monthly:7.2f}{note}")
    credit = f"-${report.free_dashboards_credit:.2f}"
    free = f"Account: {free_tier} (per AWS Organization)"
    out.append(f"{free:<74} {credit:>8}")
    verdict = "within" if report.idle_total <= IDLE_GOAL_USD else "OVER"
    out.append(f"Idle monthly total, all regions: ${report.idle_total:.2f} ({verdict} the ${IDLE_GOAL_USD:.0f} goal)")
    top = defaultdict(float)
    for line in report.idle:
        top[line.item] += line.monthly
    top["CloudWatch dashboards"] -= report.free_dashboards_credit  # what is billed, after the free tier
    dominant = sorted(top.items(), key=lambda kv: -kv[1])[:3]
    out.append("Dominated by: " + ", ".join(f"{item} ${cost:.2f}" for item, cost in dominant))
    out.append("Lowered by: fewer WAF rules (each regional ACL $5 + $1 a rule: the API's in each region, the primary's "
               "shared with Cognito), knowledge off (its queues' event-source polling), drift.enabled=false, "
               "monitoring.dashboard \"none\" (if the account's free dashboards are used elsewhere), "
               "log_retention_days (log storage), no failover_domain (health checks)")  # fmt: skip
    custom = cw["custom_metric_month"]
    out.append(
        f"Not in these figures: CloudWatch custom metrics (the Lambdas' EMF), ${custom:.2f} a "
        "month for each metric that receives data, prorated by the hour: nothing while idle, a few dollars a "
        "month per region under steady traffic (more while failovers, breakers and errors add their own)"
    )
    out.append("Raised by: cloudfront_waf=true (+$7: an ACL in front of the site, rate limit + IP reputation), "
               "monitoring.dashboard \"detailed\" (+$3 a month per region: more than 50 metrics), more model targets "
               "(alarms and overview metrics per target), failover_domain (Route 53 health checks)")  # fmt: skip
    out.append("")
    paths = {"stream": "streamed over the WebSocket API (the web UI's default)", "rest": "over POST /chat (REST)"}
    chats = f"Per 1,000 chats {paths[report.per_1k_chats_path]}"
    for title, lines in ((chats, report.per_1k_chats), ("Per 1,000 ingested pages", report.per_1k_pages)):
        out.append(f"{title}: ${sum(lines.values()):.2f}")
        for item, cost in sorted(lines.items(), key=lambda kv: -kv[1]):
            out.append(f"  {item:<88} ${cost:8.4f}")
        if lines is report.per_1k_chats and report.per_1k_chats_other:
            other = "rest" if report.per_1k_chats_path == "stream" else "stream"
            out.append(f"  (the same 1,000 chats {paths[other]}: ${sum(report.per_1k_chats_other.values()):.2f})")
        out.append("")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cdk-out", type=Path, help="a synthesized cloud assembly (default: synthesize now)")
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=JSON",
        help="price a variant of cdk.json's config: a dotted key and a JSON value, e.g. cloudfront_waf=false "
        "or monitoring.dashboard='\"detailed\"' (repeatable; not with --cdk-out)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    context = json.loads((ROOT / "cdk.json").read_text())["context"]
    if args.set and args.cdk_out is not None:
        parser.error("--set prices a fresh synth: leave out --cdk-out")
    for assignment in args.set:
        key, _, value = assignment.partition("=")
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError:
            parser.error(f'--set {assignment!r}: the value must be JSON (true, 3, "text", {{...}})')
        section = context["bulwark"]
        *parents, leaf = key.split(".")
        for name in parents:
            section = section.setdefault(name, {})
        section[leaf] = parsed
    config = AppConfig.from_context(context["bulwark"])
    cdk_out = args.cdk_out
    if cdk_out is None:
        from aws_cdk import App

        from app import build_app

        cdk_out = Path(tempfile.mkdtemp(prefix="bulwark-cost-"))
        app = App(context={**context, "aws:cdk:bundling-stacks": []}, outdir=str(cdk_out))
        build_app(app, nag=False)
        app.synth()
    prices = load_prices()
    print(render(estimate(load_templates(cdk_out), config, prices), config, prices))
    return 0


if __name__ == "__main__":
    sys.exit(main())
