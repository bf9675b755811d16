"""The drift job: daily in each region (stacks/constructs/drift_job.py). Records the chat path's baseline on its
first run (or when `drift.baseline_version` changes), otherwise emits each signal's drift against it and how many
signals passed their bounds (`DriftBeyondBounds`, the region's one drift alarm). Refreshes the corpus centroid the
chat path compares questions with.

Invoked with `{"rebaseline": true}` (e.g. `aws lambda invoke`) it records a new baseline from the current window
whatever the stored version; the scheduled event carries no such field. It logs numbers and signal names only: one
"drift job" line per run, a WARNING naming the signals past their bounds (`breached`) when the alarm's figure is
above 0, each compared signal's drift and bound under `drift`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext

from adapters.drift_store import (
    CloudWatchDriftEmitter,
    CloudWatchSignalWindow,
    DynamoBaselineStore,
    S3VectorsCorpus,
)
from core.drift import DEFAULT_BOUNDS, DriftRun, DriftSettings, run_drift_job
from handlers.entry import built_on_first_call
from handlers.settings import DriftJobSettings
from handlers.wiring import data_client, shared_session

logger = Logger()
tracer = Tracer(patch_modules=["botocore"])


def run(
    settings: DriftJobSettings,
    *,
    cloudwatch: Any,
    dynamodb: Any,
    s3vectors: Any = None,
    rebaseline: bool = False,
    now: datetime | None = None,
) -> DriftRun:
    """One run over the given clients (tests pass moto's; the handler botocore's)."""
    at = now or datetime.now(UTC)
    region = str(dynamodb.meta.region_name)
    store = DynamoBaselineStore(client=dynamodb, table_name=settings.prompts_table_name, region=region)
    corpus = None
    if settings.vector_bucket_name and settings.vector_index_name and s3vectors is not None:
        corpus = S3VectorsCorpus(
            client=s3vectors, bucket_name=settings.vector_bucket_name, index_name=settings.vector_index_name
        )
    version = settings.baseline_version
    if rebaseline:
        version = f"{version}@{at.isoformat(timespec='seconds')}"  # differs from any stored one: records anew
    return run_drift_job(
        window=CloudWatchSignalWindow(
            client=cloudwatch,
            namespace=settings.namespace,
            dimension_sets=[{"service": service} for service in settings.source_services],
            now=lambda: at,
        ),
        store=store,
        emitter=CloudWatchDriftEmitter(client=cloudwatch, namespace=settings.namespace),
        settings=DriftSettings(bounds={**DEFAULT_BOUNDS, **settings.bounds}, min_samples=settings.min_samples),
        version=version,
        now=at.isoformat(timespec="seconds"),
        hours=settings.window_hours,
        corpus=corpus,
        centroid_limit=settings.centroid_vectors,
    )


def bootstrap(
    settings: DriftJobSettings | None = None,
    *,
    cloudwatch: Any = None,
    dynamodb: Any = None,
    s3vectors: Any = None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> Any:
    """The job's composition root: `handler` calls it on the first run; tests with their settings, clients and clock.
    A deployment with a broken environment fails that run loudly (KeyError/ValueError naming the variable)."""
    settings = settings or DriftJobSettings.from_env()
    dynamodb = dynamodb or data_client("dynamodb")
    region = str(dynamodb.meta.region_name)
    # CloudWatch: botocore's standard retries (its own single retry layer); the job has minutes, not seconds.
    cloudwatch = cloudwatch or shared_session().create_client("cloudwatch", region_name=region)
    if s3vectors is None and settings.vector_bucket_name and settings.vector_index_name:
        s3vectors = data_client("s3vectors", region_name=region)
    job_settings = settings

    @logger.inject_lambda_context
    @tracer.capture_lambda_handler
    def handle(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        outcome = run(
            job_settings,
            cloudwatch=cloudwatch,
            dynamodb=dynamodb,
            s3vectors=s3vectors,
            rebaseline=isinstance(event, dict) and event.get("rebaseline") is True,
            now=clock(),
        )
        report = {
            "action": outcome.action,
            "centroid_vectors": outcome.centroid_vectors,
            "beyond_bounds": outcome.beyond_bounds,  # the DriftBeyondBounds datapoint of a comparison
            "breached": outcome.breached,  # which signals: what the engineer the alarm woke looks for
            "drift": {r.signal: {"drift": round(r.drift, 4), "bound": r.bound} for r in outcome.results},
        }
        (logger.warning if outcome.breached else logger.info)("drift job", extra=report)
        return report

    return handle


handler = built_on_first_call(bootstrap)  # a daily job: no request waits on its cold start
