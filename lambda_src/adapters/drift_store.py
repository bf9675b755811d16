"""The drift baselines' adapters: CloudWatch (the chat path's signals in, the Drift and DriftBeyondBounds metrics out),
the baseline and the corpus centroid in the prompt catalog's table, and the corpus's vectors from S3 Vectors.

Items in the prompts table (global, backed up like the catalog): pk `drift#<region>` (each region's traffic has its
own baseline; a region never reads another's), sk `baseline` (JSON of the observations) and `centroid` (the
vector as little-endian float32 bytes: 4 KB for 1024 dimensions). The catalog's own items have a prompt's name as
their pk, which never starts with `drift#`.
"""

from __future__ import annotations

import json
import struct
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from core.drift import SIGNALS, Observation, RequestSignals, SignalDrift, StoredBaseline, beyond_bounds

DRIFT_METRIC = "Drift"
BEYOND_BOUNDS_METRIC = "DriftBeyondBounds"
SIGNAL_DIMENSION = "Signal"
_PK_PREFIX = "drift#"


def drift_partition(region: str) -> str:
    return f"{_PK_PREFIX}{region}"


class EmfSignalSink:
    """The chat path's per-request signals as one EMF record (namespace and `service` dimension: the function's
    Powertools settings). Numbers only: no user, no conversation, no text."""

    def record(self, signals: RequestSignals) -> None:
        from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit  # loaded already by the handler

        single = EphemeralMetrics()
        for name, value in signals.values().items():
            single.add_metric(name=name, unit=MetricUnit.NoUnit, value=value)
        single.flush_metrics()


class CloudWatchSignalWindow:
    """Each signal's Average and SampleCount over the window (GetMetricData), from the answering Lambdas' EMF
    metrics: one query per dimension set (e.g. service=chat, service=stream), pooled into one mean and count."""

    def __init__(
        self,
        *,
        client: Any,
        namespace: str,
        dimension_sets: Sequence[Mapping[str, str]],
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        if not dimension_sets:
            raise ValueError("the drift window needs at least one dimension set (e.g. service=chat)")
        self._client = client
        self._namespace = namespace
        self._dimension_sets = [
            [{"Name": name, "Value": value} for name, value in dimensions.items()] for dimensions in dimension_sets
        ]
        self._now = now

    def read(self, *, hours: int) -> dict[str, Observation]:
        end = self._now().replace(minute=0, second=0, microsecond=0)
        start = end - timedelta(hours=hours)
        names = list(SIGNALS)
        queries = [
            {
                "Id": f"{stat[0].lower()}{index}_{source}",
                "MetricStat": {
                    "Metric": {
                        "Namespace": self._namespace,
                        "MetricName": SIGNALS[name].metric,
                        "Dimensions": dimensions,
                    },
                    "Period": hours * 3600,
                    "Stat": stat,
                },
                "ReturnData": True,
            }
            for index, name in enumerate(names)
            for source, dimensions in enumerate(self._dimension_sets)
            for stat in ("Average", "SampleCount")
        ]
        values: dict[str, list[float]] = {}
        request: dict[str, Any] = {"MetricDataQueries": queries, "StartTime": start, "EndTime": end}
        while True:
            page = self._client.get_metric_data(**request)
            for result in page.get("MetricDataResults", []):
                values.setdefault(result["Id"], []).extend(float(v) for v in result.get("Values", []))
            if not page.get("NextToken"):
                break
            request["NextToken"] = page["NextToken"]
        observations: dict[str, Observation] = {}
        for index, name in enumerate(names):
            weighted, total = 0.0, 0.0
            for source in range(len(self._dimension_sets)):
                averages, counts = values.get(f"a{index}_{source}", []), values.get(f"s{index}_{source}", [])
                if len(averages) != len(counts):
                    continue  # a source whose two series disagree is left out, not guessed at
                weighted += sum(a * n for a, n in zip(averages, counts, strict=True))
                total += sum(counts)
            if total <= 0:
                continue
            observations[name] = Observation(mean=weighted / total, count=int(total))
        return observations


class CloudWatchDriftEmitter:
    """One `Drift` datapoint per compared signal (dimension Signal: what the dashboards chart), and one
    `DriftBeyondBounds` datapoint per comparison (no dimension: CloudWatch keeps each region's apart), how many
    signals passed their bounds, 0 included: the figure the region's one drift alarm watches."""

    def __init__(self, *, client: Any, namespace: str) -> None:
        self._client = client
        self._namespace = namespace

    def emit(self, results: Sequence[SignalDrift]) -> None:
        data = [
            {
                "MetricName": DRIFT_METRIC,
                "Dimensions": [{"Name": SIGNAL_DIMENSION, "Value": result.signal}],
                "Value": result.drift,
                "Unit": "None",
            }
            for result in results
        ]
        data.append({"MetricName": BEYOND_BOUNDS_METRIC, "Value": float(beyond_bounds(results)), "Unit": "Count"})
        for start in range(0, len(data), 20):
            self._client.put_metric_data(Namespace=self._namespace, MetricData=data[start : start + 20])


class DynamoBaselineStore:
    """The baseline and the centroid of this region, in the prompts table."""

    def __init__(self, *, client: Any, table_name: str, region: str) -> None:
        self._client = client
        self._table = table_name
        self._pk = drift_partition(region)

    def load(self) -> StoredBaseline | None:
        item = self._client.get_item(TableName=self._table, Key=self._key("baseline"), ConsistentRead=True).get("Item")
        if item is None:
            return None
        raw = json.loads(item["observations"]["S"])
        return StoredBaseline(
            observations={name: Observation(mean=float(o["mean"]), count=int(o["count"])) for name, o in raw.items()},
            version=item["version"]["S"],
            recorded_at=item["recorded_at"]["S"],
        )

    def save(self, baseline: StoredBaseline) -> None:
        observations = {name: {"mean": o.mean, "count": o.count} for name, o in baseline.observations.items()}
        self._client.put_item(
            TableName=self._table,
            Item={
                **self._key("baseline"),
                "observations": {"S": json.dumps(observations, sort_keys=True)},
                "version": {"S": baseline.version},
                "recorded_at": {"S": baseline.recorded_at},
            },
        )

    def save_centroid(self, vector: Sequence[float]) -> None:
        self._client.put_item(
            TableName=self._table, Item={**self._key("centroid"), "vector": {"B": encode_vector(vector)}}
        )

    def _key(self, sk: str) -> dict[str, Any]:
        return {"pk": {"S": self._pk}, "sk": {"S": sk}}


def encode_vector(vector: Sequence[float]) -> bytes:
    return struct.pack(f"<{len(vector)}f", *vector)


def decode_vector(raw: bytes) -> tuple[float, ...]:
    return struct.unpack(f"<{len(raw) // 4}f", raw)


class DynamoCentroid:
    """The chat path's view of the corpus centroid: read on first use, then again every `ttl_s` (a failed read is
    retried after the same wait, answering None meanwhile: the similarity signal is skipped, never the answer)."""

    def __init__(
        self, *, client: Any, table_name: str, region: str, ttl_s: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._client = client
        self._table = table_name
        self._pk = drift_partition(region)
        self._ttl_s = ttl_s
        self._clock = clock
        self._value: tuple[float, ...] | None = None
        self._read_at: float | None = None
        self._lock = threading.Lock()

    def __call__(self) -> tuple[float, ...] | None:
        now = self._clock()
        if self._read_at is not None and now - self._read_at < self._ttl_s:
            return self._value
        with self._lock:
            if self._read_at is None or now - self._read_at >= self._ttl_s:
                self._read_at = now
                try:
                    key = {"pk": {"S": self._pk}, "sk": {"S": "centroid"}}
                    item = self._client.get_item(TableName=self._table, Key=key).get("Item")
                    self._value = decode_vector(item["vector"]["B"]) if item else None
                except Exception:
                    pass  # keep the last value; try again after ttl_s
        return self._value


class S3VectorsCorpus:
    """Vectors of this region's index, read in storage order (ListVectors with their data, no metadata)."""

    def __init__(self, *, client: Any, bucket_name: str, index_name: str) -> None:
        self._client = client
        self._bucket = bucket_name
        self._index = index_name

    def sample(self, limit: int) -> list[list[float]]:
        vectors: list[list[float]] = []
        request: dict[str, Any] = {
            "vectorBucketName": self._bucket,
            "indexName": self._index,
            "returnData": True,
            "returnMetadata": False,
        }
        while len(vectors) < limit:
            page = self._client.list_vectors(**request, maxResults=min(1000, limit - len(vectors)))
            for vector in page.get("vectors", []):
                data = vector.get("data", {}).get("float32")
                if data:
                    vectors.append([float(x) for x in data])
            if not page.get("nextToken"):
                break
            request["nextToken"] = page["nextToken"]
        return vectors[:limit]
