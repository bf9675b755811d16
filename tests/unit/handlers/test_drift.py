"""The drift job against moto: the chat path's signals in CloudWatch (GetMetricData), the baseline and the corpus
centroid in the prompts table, the corpus from S3 Vectors, the Drift and DriftBeyondBounds metrics out
(PutMetricData), and the log line that names the signals past their bounds."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from moto import mock_aws

from adapters.drift_store import BEYOND_BOUNDS_METRIC, DynamoCentroid, decode_vector
from core.drift import SIGNALS
from handlers.drift import bootstrap, run
from handlers.settings import DriftJobSettings
from local.lambda_context import LocalContext

REGION = "us-east-1"
TABLE = "prompts"
DAY1 = datetime(2026, 11, 20, 6, 30, tzinfo=UTC)
DAY2 = DAY1 + timedelta(days=1)
SETTINGS = DriftJobSettings(prompts_table_name=TABLE, min_samples=20, bounds_json='{"question_chars": 0.3}')
NORMAL = {
    "question_chars": 100.0, "output_tokens": 250.0, "top_score": 0.6, "centroid_similarity": 0.5,
    "guardrail_rate": 0.0, "degraded_rate": 0.0,
}  # fmt: skip


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.setenv(name, "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name=REGION)
        dynamodb.create_table(
            TableName=TABLE,
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        yield {"dynamodb": dynamodb, "cloudwatch": boto3.client("cloudwatch", region_name=REGION)}


def chat_traffic(
    cloudwatch: Any, day: datetime, means: dict[str, float], *, requests: int = 40, service: str = "chat"
) -> None:
    """`requests` requests' signals within the 24 h before `day`, as the answering Lambda's EMF records would be
    (`service`: chat for POST /chat, stream for the WebSocket path)."""
    rng = random.Random(3)
    for i in range(requests):
        at = day - timedelta(hours=20) + timedelta(minutes=20 * i)
        cloudwatch.put_metric_data(
            Namespace="Bulwark",
            MetricData=[
                {
                    "MetricName": SIGNALS[name].metric,
                    "Dimensions": [{"Name": "service", "Value": service}],
                    "Timestamp": at,
                    # Rates are 0/1 per request; magnitudes spread evenly around their mean.
                    "Value": (1.0 if i < mean * requests else 0.0) if name.endswith("_rate")
                    else mean * (1 + rng.choice([-0.1, 0.1])),
                }
                for name, mean in means.items()
            ],
        )  # fmt: skip


def drift_points(cloudwatch: Any) -> dict[str, float]:
    listed = cloudwatch.list_metrics(Namespace="Bulwark", MetricName="Drift")["Metrics"]
    points: dict[str, float] = {}
    for metric in listed:
        signal = metric["Dimensions"][0]["Value"]
        stats = cloudwatch.get_metric_statistics(
            Namespace="Bulwark", MetricName="Drift", Dimensions=metric["Dimensions"],
            StartTime=DAY1 - timedelta(days=30), EndTime=datetime.now(UTC) + timedelta(days=1),
            Period=86400 * 60, Statistics=["Maximum"],
        )  # fmt: skip
        points[signal] = max(p["Maximum"] for p in stats["Datapoints"])
    return points


def beyond_bounds_points(cloudwatch: Any) -> list[float]:
    """Each DriftBeyondBounds datapoint of the test (one per comparison run: SampleCount), as one Maximum."""
    listed = cloudwatch.list_metrics(Namespace="Bulwark", MetricName=BEYOND_BOUNDS_METRIC)["Metrics"]
    if not listed:
        return []
    assert [metric["Dimensions"] for metric in listed] == [[]]  # one series per region, no dimension
    stats = cloudwatch.get_metric_statistics(
        Namespace="Bulwark", MetricName=BEYOND_BOUNDS_METRIC,
        StartTime=DAY1 - timedelta(days=30), EndTime=datetime.now(UTC) + timedelta(days=1),
        Period=86400 * 60, Statistics=["Maximum", "SampleCount"],
    )  # fmt: skip
    (point,) = stats["Datapoints"]
    return [point["Maximum"]] * int(point["SampleCount"])


def test_the_first_run_records_the_baseline_and_emits_nothing(aws: dict[str, Any]) -> None:
    chat_traffic(aws["cloudwatch"], DAY1, NORMAL)

    outcome = run(SETTINGS, cloudwatch=aws["cloudwatch"], dynamodb=aws["dynamodb"], now=DAY1)

    assert outcome.action == "recorded" and outcome.results == ()
    item = aws["dynamodb"].get_item(TableName=TABLE, Key={"pk": {"S": f"drift#{REGION}"}, "sk": {"S": "baseline"}})
    assert '"question_chars"' in item["Item"]["observations"]["S"] and item["Item"]["version"]["S"] == "1"
    assert aws["cloudwatch"].list_metrics(Namespace="Bulwark", MetricName="Drift")["Metrics"] == []
    assert beyond_bounds_points(aws["cloudwatch"]) == []  # no comparison yet: nothing for the alarm


def test_a_later_window_shifted_past_a_bound_emits_drift_for_every_signal_and_breaches_that_one(
    aws: dict[str, Any],
) -> None:
    chat_traffic(aws["cloudwatch"], DAY1, NORMAL)
    run(SETTINGS, cloudwatch=aws["cloudwatch"], dynamodb=aws["dynamodb"], now=DAY1)
    chat_traffic(aws["cloudwatch"], DAY2, {**NORMAL, "question_chars": 160.0})

    outcome = run(SETTINGS, cloudwatch=aws["cloudwatch"], dynamodb=aws["dynamodb"], now=DAY2)

    assert outcome.action == "compared" and outcome.breached == ["question_chars"]
    points = drift_points(aws["cloudwatch"])
    assert set(points) == set(SIGNALS)
    assert points["question_chars"] == pytest.approx(0.6, abs=0.05)
    assert all(points[name] < 0.05 for name in SIGNALS if name != "question_chars")
    assert beyond_bounds_points(aws["cloudwatch"]) == [1.0]  # the region's one drift alarm fires at >= 1


def test_the_alarms_figure_counts_every_signal_past_its_bound(aws: dict[str, Any]) -> None:
    chat_traffic(aws["cloudwatch"], DAY1, NORMAL)
    run(SETTINGS, cloudwatch=aws["cloudwatch"], dynamodb=aws["dynamodb"], now=DAY1)
    chat_traffic(aws["cloudwatch"], DAY2, {**NORMAL, "question_chars": 160.0, "output_tokens": 500.0,
                                           "degraded_rate": 0.25})  # fmt: skip

    outcome = run(SETTINGS, cloudwatch=aws["cloudwatch"], dynamodb=aws["dynamodb"], now=DAY2)

    assert sorted(outcome.breached) == ["degraded_rate", "output_tokens", "question_chars"]
    assert outcome.beyond_bounds == 3 and beyond_bounds_points(aws["cloudwatch"]) == [3.0]


def test_an_unshifted_window_emits_zero_so_the_metric_shows_the_job_compared(aws: dict[str, Any]) -> None:
    chat_traffic(aws["cloudwatch"], DAY1, NORMAL)
    run(SETTINGS, cloudwatch=aws["cloudwatch"], dynamodb=aws["dynamodb"], now=DAY1)
    chat_traffic(aws["cloudwatch"], DAY2, NORMAL)

    outcome = run(SETTINGS, cloudwatch=aws["cloudwatch"], dynamodb=aws["dynamodb"], now=DAY2)

    assert outcome.action == "compared" and outcome.breached == [] and outcome.beyond_bounds == 0
    assert beyond_bounds_points(aws["cloudwatch"]) == [0.0]
    assert set(drift_points(aws["cloudwatch"])) == set(SIGNALS)  # the per-signal figures the dashboards chart


def test_a_quiet_day_with_nothing_to_compare_still_emits_zero(aws: dict[str, Any]) -> None:
    chat_traffic(aws["cloudwatch"], DAY1, NORMAL)
    run(SETTINGS, cloudwatch=aws["cloudwatch"], dynamodb=aws["dynamodb"], now=DAY1)

    outcome = run(SETTINGS, cloudwatch=aws["cloudwatch"], dynamodb=aws["dynamodb"], now=DAY2)  # no traffic

    assert outcome.action == "compared" and outcome.results == ()
    assert beyond_bounds_points(aws["cloudwatch"]) == [0.0]


def test_the_runs_log_line_names_the_signals_past_their_bounds_with_drift_and_bound_only(
    aws: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    # GIVEN a baseline, then a day whose questions are longer
    days = iter([DAY1, DAY2])
    handler = bootstrap(SETTINGS, cloudwatch=aws["cloudwatch"], dynamodb=aws["dynamodb"], clock=lambda: next(days))
    context = LocalContext(function_name="drift", timeout_s=300)
    chat_traffic(aws["cloudwatch"], DAY1, NORMAL)
    handler({}, context)
    caplog.clear()
    chat_traffic(aws["cloudwatch"], DAY2, {**NORMAL, "question_chars": 160.0})

    # WHEN the scheduled run compares
    report = handler({"source": "aws.events"}, context)

    # THEN its one log line, a WARNING, names the signal and gives each compared signal's drift and bound
    (line,) = [record for record in caplog.records if record.getMessage() == "drift job"]
    assert line.levelname == "WARNING"
    assert line.breached == ["question_chars"] and line.beyond_bounds == 1 == report["beyond_bounds"]
    drift = line.drift
    assert drift["question_chars"]["bound"] == 0.3 and drift["question_chars"]["drift"] == pytest.approx(0.6, abs=0.05)
    assert set(drift) == set(SIGNALS) and all(set(figures) == {"drift", "bound"} for figures in drift.values())
    assert all(isinstance(value, float) for figures in drift.values() for value in figures.values())  # numbers only


def test_the_window_pools_the_chat_and_the_stream_lambdas_signals(aws: dict[str, Any]) -> None:
    # GIVEN a baseline from POST /chat alone, then a day whose streamed questions (the web UI's default) are longer
    chat_traffic(aws["cloudwatch"], DAY1, NORMAL, requests=30)
    assert SETTINGS.source_services == ("chat", "stream")
    run(SETTINGS, cloudwatch=aws["cloudwatch"], dynamodb=aws["dynamodb"], now=DAY1)
    chat_traffic(aws["cloudwatch"], DAY2, NORMAL, requests=10)
    chat_traffic(aws["cloudwatch"], DAY2, {**NORMAL, "question_chars": 220.0}, requests=30, service="stream")

    # WHEN the job compares
    outcome = run(SETTINGS, cloudwatch=aws["cloudwatch"], dynamodb=aws["dynamodb"], now=DAY2)

    # THEN it read both services (40 requests, mean (10 x 100 + 30 x 220) / 40 = 190): drift past the bound
    assert outcome.action == "compared" and outcome.breached == ["question_chars"]
    assert drift_points(aws["cloudwatch"])["question_chars"] == pytest.approx(0.9, abs=0.05)
    # and a job reading only the chat Lambda would have missed it
    only_chat = run(SETTINGS.but(source_services=("chat",)), cloudwatch=aws["cloudwatch"], dynamodb=aws["dynamodb"],
                    now=DAY2)  # fmt: skip
    assert only_chat.action == "skipped" or only_chat.breached == []


def test_a_new_baseline_version_or_a_rebaseline_event_records_anew(aws: dict[str, Any]) -> None:
    chat_traffic(aws["cloudwatch"], DAY1, NORMAL)
    run(SETTINGS, cloudwatch=aws["cloudwatch"], dynamodb=aws["dynamodb"], now=DAY1)
    chat_traffic(aws["cloudwatch"], DAY2, {**NORMAL, "question_chars": 160.0})

    assert run(SETTINGS.but(baseline_version="2"), cloudwatch=aws["cloudwatch"], dynamodb=aws["dynamodb"],
               now=DAY2).action == "recorded"  # fmt: skip
    handler = bootstrap(SETTINGS.but(baseline_version="2"), cloudwatch=aws["cloudwatch"], dynamodb=aws["dynamodb"])
    assert handler({"rebaseline": True}, LocalContext(function_name="drift", timeout_s=300))["action"] == "recorded"


def test_the_corpus_centroid_is_computed_from_the_index_and_the_chat_path_reads_it(aws: dict[str, Any]) -> None:
    s3vectors = boto3.client("s3vectors", region_name=REGION)
    s3vectors.create_vector_bucket(vectorBucketName="vectors")
    s3vectors.create_index(
        vectorBucketName="vectors", indexName="chunks", dataType="float32", dimension=2, distanceMetric="cosine"
    )
    s3vectors.put_vectors(
        vectorBucketName="vectors",
        indexName="chunks",
        vectors=[
            {"key": "a", "data": {"float32": [3.0, 0.0]}},
            {"key": "b", "data": {"float32": [0.0, 2.0]}},
        ],
    )
    settings = SETTINGS.but(vector_bucket_name="vectors", vector_index_name="chunks")

    outcome = run(settings, cloudwatch=aws["cloudwatch"], dynamodb=aws["dynamodb"], s3vectors=s3vectors, now=DAY1)

    assert outcome.centroid_vectors == 2
    item = aws["dynamodb"].get_item(TableName=TABLE, Key={"pk": {"S": f"drift#{REGION}"}, "sk": {"S": "centroid"}})
    assert decode_vector(item["Item"]["vector"]["B"]) == pytest.approx((0.5, 0.5))
    ticks = iter([0.0, 10.0, 4000.0])
    reader = DynamoCentroid(
        client=aws["dynamodb"], table_name=TABLE, region=REGION, ttl_s=3600, clock=lambda: next(ticks)
    )
    assert reader() == pytest.approx((0.5, 0.5))
    aws["dynamodb"].delete_item(TableName=TABLE, Key={"pk": {"S": f"drift#{REGION}"}, "sk": {"S": "centroid"}})
    assert reader() == pytest.approx((0.5, 0.5))  # within its TTL: not re-read
    assert reader() is None  # after it: re-read, and gone


def test_unconfigured_the_module_imports_and_its_first_run_says_what_is_missing() -> None:
    import handlers.drift as module  # no PROMPTS_TABLE_NAME in this environment: the import itself is fine

    for _ in range(2):  # nothing half-built is kept: the next run tries again, and says it again
        with pytest.raises(KeyError, match="PROMPTS_TABLE_NAME"):
            module.handler({}, LocalContext(function_name="drift", timeout_s=300))
