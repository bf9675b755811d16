"""The sandbox's status page data (GET /_sandbox/status, web/status.html): a picture of both regions, not logs.

Where each figure comes from, so nothing here is a sandbox-only code path in the Lambdas:
- breakers and AIMD limits: read from the chat Lambda's execution environments themselves (the pool's
  environments, local/lambda_pool.py), through the gateway the deep health route reads (`service.model`:
  `breaker_state(i)`, `capacity_state(i)`), every environment of the region, in chain order;
- failovers, hedges, degraded, curated and greeting answers: the EMF records the Lambdas print (Powertools'
  `flush_metrics`). In Lambda, stdout goes to CloudWatch Logs, which turns EMF into metrics; here the records a
  sandbox environment prints are taken by `EmfRecords` instead (numbers and dimensions only, never a message),
  stamped with the function (`chat@us-east-1`) whose environment printed them. Metrics printed outside a
  sandbox environment (unit tests, make invoke) are left exactly as Powertools handles them;
- queue depth and DLQ depth: the region's SQS attributes; the oldest waiting job: the jobs table (SQS has no
  attribute for the oldest message's age, which CloudWatch computes in AWS);
- ingest progress: the documents table's status items of that region (adapters/document_catalog.py's layout);
- token use: today's `tokens#<day>#<region>` items of the usage table (core/limits.py), summed over regions,
  users shown by their email (a local sandbox: its own demo users).
"""

from __future__ import annotations

import builtins
import json
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from local.lambda_pool import current_function

WINDOW_S = 300.0  # the answers' counts cover the last 5 minutes
BUCKET_S = 15.0  # the failovers' bars: one per 15 s
ANSWER_METRICS = ("Failovers", "Hedges", "DegradedAnswers", "CuratedAnswers", "GreetingAnswered", "BreakerOpened")
_SEVERITY = {"closed": 0, "half_open": 1, "open": 2}
INGEST_STATES = ("uploading", "ingesting", "ready", "failed")


class EmfRecords:
    """The EMF records printed inside sandbox environments: (when, function, metric -> value), bounded."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic, keep: int = 20_000) -> None:
        self._clock = clock
        self._records: deque[tuple[float, str, dict[str, float]]] = deque(maxlen=keep)
        self._lock = threading.Lock()

    def add(self, function: str, line: str) -> bool:
        """Keep the metric values of one printed line if it is an EMF record (True); anything else is ignored."""
        try:
            record = json.loads(line)
            definitions = record["_aws"]["CloudWatchMetrics"]
        except (ValueError, TypeError, KeyError):
            return False
        values: dict[str, float] = {}
        for definition in definitions if isinstance(definitions, list) else ():
            for metric in definition.get("Metrics", ()):
                name = metric.get("Name") if isinstance(metric, dict) else None
                value = _number(record.get(name)) if isinstance(name, str) else None
                if value is not None:
                    values[name] = values.get(name, 0.0) + value
        if not values:
            return False
        with self._lock:
            self._records.append((self._clock(), function, values))
        return True

    def counts(self, region: str, names: Iterable[str], *, window_s: float = WINDOW_S) -> dict[str, int]:
        """Each metric's total over the last `window_s` in `region`'s functions."""
        since = self._clock() - window_s
        totals = dict.fromkeys(names, 0.0)
        for at, function, values in self._snapshot():
            if at >= since and _region_of(function) == region:
                for name in totals:
                    totals[name] += values.get(name, 0.0)
        return {name: round(total) for name, total in totals.items()}

    def series(self, region: str, name: str, *, window_s: float = WINDOW_S, bucket_s: float = BUCKET_S) -> list[int]:
        """`name`'s totals in `region` per bucket over the last `window_s`, oldest first."""
        now = self._clock()
        buckets = [0.0] * max(1, round(window_s / bucket_s))
        for at, function, values in self._snapshot():
            age = now - at
            if 0 <= age < window_s and _region_of(function) == region and name in values:
                buckets[len(buckets) - 1 - int(age // bucket_s)] += values[name]
        return [round(value) for value in buckets]

    def _snapshot(self) -> list[tuple[float, str, dict[str, float]]]:
        with self._lock:
            return list(self._records)


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, list) and value and all(isinstance(v, int | float) and not isinstance(v, bool) for v in value):
        return float(sum(value))
    return None


def _region_of(function: str) -> str:
    return function.rpartition("@")[2]


RECORDS = EmfRecords()
_capture_lock = threading.Lock()
_captured: list[bool] = []


def capture_emf(records: EmfRecords = RECORDS) -> EmfRecords:
    """Take the EMF records that sandbox environments print (once per process). Powertools prints a record
    from its EMF provider module only when metrics are enabled; inside a sandbox environment they are (as in
    Lambda, where POWERTOOLS_METRICS_DISABLED is not set) and the line goes to `records`, not to the terminal.
    Outside one, nothing changes."""
    from aws_lambda_powertools.metrics.provider.cloudwatch_emf import cloudwatch

    with _capture_lock:
        if _captured:
            return records
        disabled = cloudwatch.is_metrics_disabled

        def is_metrics_disabled() -> bool:
            if current_function() is not None and os.environ.get("POWERTOOLS_METRICS_NAMESPACE"):
                return False
            return disabled()

        def emit(*args: Any, **kwargs: Any) -> None:
            function = current_function()
            if function is not None and len(args) == 1 and isinstance(args[0], str) and records.add(function, args[0]):
                return
            builtins.print(*args, **kwargs)

        cloudwatch.is_metrics_disabled = is_metrics_disabled  # type: ignore[attr-defined]
        cloudwatch.print = emit  # type: ignore[attr-defined]  # the module's global shadows the builtin
        _captured.append(True)
    return records


# --- the execution environments' gateways --------------------------------------------------------------------------
def gateway_of(handler: Any) -> Any:
    """The model gateway of one chat execution environment: the object its deep health route reads
    (`ChatApi.service.model`), found in the handler bootstrap returned. None when it has none."""
    import inspect

    function = inspect.unwrap(handler)
    for cell in getattr(function, "__closure__", None) or ():
        try:
            value = cell.cell_contents
        except ValueError:  # an empty cell
            continue
        model = getattr(getattr(value, "service", None), "model", None)
        if hasattr(model, "breaker_state") and hasattr(model, "capacity_state"):
            return model
    return None


def target_states(environments: Iterable[Any], targets: list[str]) -> list[dict[str, Any]]:
    """Per target (chain order): its breaker in each environment (counts and the worst), its AIMD limit."""
    gateways = [g for g in (gateway_of(handler) for handler in environments) if g is not None]
    rows = []
    for index, name in enumerate(targets):
        states: dict[str, int] = {}
        limits: list[float] = []
        in_flight, paused = 0, 0.0
        for gateway in gateways:
            state = str(gateway.breaker_state(index).value)
            states[state] = states.get(state, 0) + 1
            capacity = gateway.capacity_state(index)
            limits.append(round(float(capacity.limit), 2))
            in_flight += int(capacity.in_flight)
            paused = max(paused, float(capacity.paused_s))
        worst = max(states, key=lambda s: _SEVERITY.get(s, 0)) if states else "closed"
        rows.append(
            {
                "target": name,
                "breaker": worst,
                "breakers": states,
                "limit": min(limits) if limits else None,
                "limits": limits,
                "in_flight": in_flight,
                "paused_s": round(paused, 1),
            }
        )
    return rows


# --- the region's stores ------------------------------------------------------------------------------------------
def _scan(dynamodb: Any, table: str | None, **kwargs: Any) -> list[dict[str, Any]]:
    if not table:
        return []
    items: list[dict[str, Any]] = []
    query: dict[str, Any] = {"TableName": table, **kwargs}
    while True:
        page = dynamodb.scan(**query)
        items += page.get("Items", [])
        if "LastEvaluatedKey" not in page:
            return items
        query["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def queue_state(
    sqs: Any, dynamodb: Any, *, queue_url: str, dlq_url: str, jobs_table: str | None, region: str, now: float
) -> dict[str, Any]:
    names = [
        "ApproximateNumberOfMessages",
        "ApproximateNumberOfMessagesNotVisible",
        "ApproximateNumberOfMessagesDelayed",
    ]
    main = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=names)["Attributes"]
    dlq = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=names[:1])["Attributes"]
    jobs = _scan(
        dynamodb,
        jobs_table,
        ProjectionExpression="#s, created_at, owner_region",
        ExpressionAttributeNames={"#s": "status"},
    )
    queued = [
        float(item["created_at"]["N"])
        for item in jobs
        if item.get("status", {}).get("S") == "queued"
        and item.get("owner_region", {}).get("S", region) == region
        and "created_at" in item
    ]
    return {
        "depth": int(main.get("ApproximateNumberOfMessages", 0)),
        "in_flight": int(main.get("ApproximateNumberOfMessagesNotVisible", 0)),
        "delayed": int(main.get("ApproximateNumberOfMessagesDelayed", 0)),
        "dlq_depth": int(dlq.get("ApproximateNumberOfMessages", 0)),
        "oldest_queued_job_s": round(max(0.0, now - min(queued)), 1) if queued else None,
    }


def ingest_state(dynamodb: Any, *, documents_table: str | None, region: str) -> dict[str, int]:
    """Documents by this region's state: a document whose status item this region has not written yet reads
    `uploading`, as the API says; deleted documents are not counted."""
    from adapters.document_catalog import group_items

    counts = dict.fromkeys(INGEST_STATES, 0)
    for metadata, statuses in group_items(_scan(dynamodb, documents_table)).values():
        if metadata is not None and "deleted_at" in metadata:
            continue
        status = statuses.get(region)
        state = status.get("state", {}).get("S", "uploading") if status else "uploading"
        if state in counts:
            counts[state] += 1
    return counts


def token_use(tables: Mapping[str, tuple[Any, str | None]], *, now: float) -> dict[str, dict[str, int]]:
    """Today's tokens per user sub and region, read from every region's usage table (a replica may lag: the
    larger count of an item wins)."""
    from core.limits import TokenDay

    prefix = TokenDay.at(now).prefix
    seen: dict[tuple[str, str], int] = {}
    for dynamodb, table in tables.values():
        for item in _scan(
            dynamodb, table, FilterExpression="begins_with(sk, :day)",
            ExpressionAttributeValues={":day": {"S": prefix}},
        ):  # fmt: skip
            key = (item["pk"]["S"], item["sk"]["S"])
            seen[key] = max(seen.get(key, 0), int(item.get("count", {}).get("N", "0")))
    users: dict[str, dict[str, int]] = {}
    for (sub, sk), count in seen.items():
        users.setdefault(sub, {})[sk.removeprefix(prefix)] = count
    return users


class StatusBoard:
    """GET /_sandbox/status for a running sandbox: `snapshot()` is the whole page's data."""

    def __init__(
        self,
        sandbox: Any,
        *,
        records: EmfRecords = RECORDS,
        clock: Callable[[], float] = time.time,
        window_s: float = WINDOW_S,
    ) -> None:
        import boto3

        from handlers.settings import Settings

        self._sandbox = sandbox
        self._records = records
        self._clock = clock
        self._window_s = window_s
        self._clients = {
            name: (boto3.Session(region_name=name).client("dynamodb"), boto3.Session(region_name=name).client("sqs"))
            for name in sandbox.regions
        }
        self._cognito = boto3.Session(region_name=sandbox.region).client("cognito-idp")
        self._settings = {name: Settings.from_env(runtime.chat_env) for name, runtime in sandbox.regions.items()}
        self._emails: dict[str, str] = {}

    def snapshot(self) -> dict[str, Any]:
        now = self._clock()
        regions = {name: self._region(name, runtime, now) for name, runtime in self._sandbox.regions.items()}
        usage = token_use(
            {name: (self._clients[name][0], s.usage_table_name) for name, s in self._settings.items()}, now=now
        )
        budget = next(iter(self._settings.values())).daily_tokens_per_user
        users = [
            {"user": self._email(sub), "used": sum(by_region.values()), "by_region": by_region}
            for sub, by_region in usage.items()
        ]
        users.sort(key=lambda user: (-user["used"], user["user"]))
        return {
            "generated_at": datetime.fromtimestamp(now, UTC).isoformat(timespec="seconds"),
            "window_s": round(self._window_s),
            "bucket_s": round(BUCKET_S),
            "regions": regions,
            "tokens": {"budget": budget, "users": users},
        }

    def _region(self, name: str, runtime: Any, now: float) -> dict[str, Any]:
        dynamodb, sqs = self._clients[name]
        settings = self._settings[name]
        targets = [f"{t.model_id}@{t.region}" for t in settings.targets]
        pool = runtime.pools.get("chat")
        return {
            "up": bool(runtime.up),
            "environments": len(pool.environments()) if pool is not None else 0,
            "targets": target_states(pool.environments() if pool is not None else (), targets),
            "answers": self._records.counts(name, ANSWER_METRICS, window_s=self._window_s),
            "failovers": self._records.series(name, "Failovers", window_s=self._window_s),
            "queue": queue_state(
                sqs,
                dynamodb,
                queue_url=runtime.queue_url,
                dlq_url=runtime.dlq_url,
                jobs_table=settings.jobs_table_name,
                region=name,
                now=now,
            ),
            "ingest": ingest_state(dynamodb, documents_table=settings.documents_table_name, region=name),
        }

    def _email(self, sub: str) -> str:
        if sub not in self._emails:
            self._emails.update(self._users())
        return self._emails.get(sub, "unknown user")

    def _users(self) -> dict[str, str]:
        found: dict[str, str] = {}
        for page in self._cognito.get_paginator("list_users").paginate(UserPoolId=self._sandbox.user_pool_id):
            for user in page.get("Users", []):
                attributes = {a["Name"]: a["Value"] for a in user.get("Attributes", [])}
                if "sub" in attributes:
                    found[attributes["sub"]] = attributes.get("email", user.get("Username", ""))
        return found
