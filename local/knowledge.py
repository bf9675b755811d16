"""The knowledge side of the sandbox, both regions: documents buckets, S3 event notifications, replication,
vector indexes and the ingest Lambdas, all from the synthesized Knowledge and API templates.

What stands in for what (the adapters and handlers are AWS's code, only endpoints differ):
- each region's documents bucket (versioned) is a moto bucket in that region; its ingest queue + DLQ are moto
  queues there; its vector bucket + index live in the S3 Vectors emulator (state per region, from SigV4).
- S3 event notifications: moto's server does send bucket notifications to SQS, but its records carry neither
  `versionId` nor `sequencer`, and the ingest pipeline orders a document's events by the sequencer. So the
  notifier below watches each bucket's version listing and sends what S3 sends for every new version
  (ObjectCreated:Put), delete marker (ObjectRemoved:DeleteMarkerCreated) and version or delete marker deleted
  for good (ObjectRemoved:Delete), in S3's JSON shape with a sequencer that grows per key, to the queues whose
  notification configuration (events, prefix/suffix filter) matches.
- S3 replication (moto has none): new versions and, as the template's rule says, delete markers under the
  rule's prefix are copied to the DR bucket, oldest first. Replicas get new version ids there (S3 keeps the
  source's); nothing reads them across regions, each region's pipeline uses its own bucket's ids.
- the ingest Lambda of each region: `handlers.ingest.bootstrap` with that region's settings (the template's
  environment, local names) in execution environments fed by an SQS pump sized like the event source mapping.
  The documents table is a global table: both regions' pipelines write their own `status.<region>` of the one
  sandbox table, as they would on its two replicas.
"""

from __future__ import annotations

import itertools
import json
import logging
import time
import uuid
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote_plus

from local.sqs_pump import PollingThread, SqsPump
from local.templates import KnowledgeSpec, NotificationSpec, Templates

_log = logging.getLogger(__name__)
POLL_INTERVAL_S = 0.5  # S3 delivers notifications in about a second; each poll is a moto request per bucket
# The environment variables that name knowledge resources, and which local name each gets.
KNOWLEDGE_VARIABLES = {
    "DOCUMENTS_BUCKET": "documents_bucket",
    "VECTOR_BUCKET_NAME": "vector_bucket",
    "VECTOR_INDEX_NAME": "vector_index",
}


@dataclass(frozen=True)
class LocalKnowledge:
    """One region's knowledge resources in the sandbox, by their local names."""

    region: str
    stack_name: str
    documents_bucket: str
    vector_bucket: str
    vector_index: str
    queue_url: str = ""
    dlq_url: str = ""


def local_names(spec: KnowledgeSpec) -> LocalKnowledge:
    """CloudFormation names these resources; locally they are named after their stack (unique per region)."""
    base = spec.stack_name.lower()
    return LocalKnowledge(
        region=spec.region,
        stack_name=spec.stack_name,
        documents_bucket=f"{base}-documents",
        vector_bucket=f"{base}-vectors",
        vector_index="documents",
    )


def knowledge_value(templates: Templates, name: str, value: Any) -> str:
    """The local value of a knowledge variable (DOCUMENTS_BUCKET, ...) from the stack its template value names."""
    return str(getattr(local_names(templates.knowledge_for(value)), KNOWLEDGE_VARIABLES[name]))


def ingest_environment(templates: Templates, spec: KnowledgeSpec, tables: dict[str, str]) -> dict[str, str]:
    """The ingest Lambda's environment from its template, with local names."""
    env: dict[str, str] = {}
    for name, value in spec.ingest.environment.items():
        if isinstance(value, str):
            env[name] = value
        elif name.endswith("TABLE_NAME"):
            env[name] = tables[templates.table_for(value).logical_id]
        elif name in KNOWLEDGE_VARIABLES:
            env[name] = knowledge_value(templates, name, value)
        else:
            raise KeyError(f"ingest ({spec.stack_name}): variable {name} has a value the sandbox cannot map: {value}")
    return env


# --- provisioning -----------------------------------------------------------------------------------------------
def provision(spec: KnowledgeSpec, *, s3: Any, sqs: Any, s3vectors: Any, origin: str | None = None) -> LocalKnowledge:
    """The region's bucket (versioned, CORS for the site's origin), vector bucket + index, queue + DLQ."""
    names = local_names(spec)
    extra = {} if spec.region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": spec.region}}
    s3.create_bucket(Bucket=names.documents_bucket, **extra)
    if spec.versioned:
        s3.put_bucket_versioning(Bucket=names.documents_bucket, VersioningConfiguration={"Status": "Enabled"})
    if spec.cors_rules and origin:
        rules = [{**rule, "AllowedOrigins": [origin]} for rule in spec.cors_rules]
        for rule in rules:
            if "MaxAge" in rule:
                rule["MaxAgeSeconds"] = rule.pop("MaxAge")
        s3.put_bucket_cors(Bucket=names.documents_bucket, CORSConfiguration={"CORSRules": rules})
    s3vectors.create_vector_bucket(vectorBucketName=names.vector_bucket)
    s3vectors.create_index(
        vectorBucketName=names.vector_bucket,
        indexName=names.vector_index,
        dataType=spec.data_type,
        dimension=spec.dimension,
        distanceMetric=spec.distance_metric,
        metadataConfiguration={"nonFilterableMetadataKeys": list(spec.non_filterable_keys)},
    )
    dlq_url = sqs.create_queue(
        QueueName=spec.dlq.logical_id,
        Attributes={
            "VisibilityTimeout": str(spec.dlq.visibility_timeout),
            "MessageRetentionPeriod": str(spec.dlq.retention_s),
        },
    )["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    queue_url = sqs.create_queue(
        QueueName=spec.queue.logical_id,
        Attributes={
            "VisibilityTimeout": str(spec.queue.visibility_timeout),
            "MessageRetentionPeriod": str(spec.queue.retention_s),
            "RedrivePolicy": json.dumps(
                {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(spec.queue.max_receive_count)}
            ),
        },
    )["QueueUrl"]
    return replace(names, queue_url=queue_url, dlq_url=dlq_url)


# --- S3 event notifications and replication ------------------------------------------------------------------
@dataclass(frozen=True)
class _Entry:
    key: str
    version_id: str
    delete_marker: bool
    latest: bool
    last_modified: datetime
    size: int = 0
    etag: str = ""


class BucketEvents:
    """What S3 does after a write to one versioned bucket: notifications to its queues, and replication."""

    def __init__(
        self,
        *,
        s3: Any,
        sqs: Any,
        bucket: str,
        region: str,
        notifications: list[tuple[NotificationSpec, str]],
        replicate: Callable[[_Entry], None] | None = None,
        sequencer: Callable[[], int],
    ) -> None:
        """`notifications`: each queue configuration with its queue's URL. `replicate` sees each new entry."""
        self._s3 = s3
        self._sqs = sqs
        self._bucket = bucket
        self._region = region
        self._notifications = notifications
        self._replicate = replicate
        self._sequencer = sequencer
        self._seen: dict[tuple[str, str], _Entry] = {}
        self.sent = 0

    def poll(self) -> int:
        """Compare the version listing with the last one; send and replicate what changed. The number of events."""
        current = {(entry.key, entry.version_id): entry for entry in self._listing()}
        new = [entry for ident, entry in current.items() if ident not in self._seen]
        # Deleted for good (DeleteObject with a VersionId): a version, or a delete marker (which may make an older
        # version current again: the ingest Lambda then indexes that one).
        gone = [entry for ident, entry in self._seen.items() if ident not in current]
        self._seen = current
        # Oldest first, so each key's sequencers grow in the order S3 took the writes.
        for entry in sorted(new, key=lambda e: (e.key, e.last_modified, e.latest)):
            if entry.delete_marker:
                self._send("ObjectRemoved:DeleteMarkerCreated", entry)
            else:
                self._send("ObjectCreated:Put", entry)
            if self._replicate is not None:
                self._replicate(entry)
        for entry in gone:
            self._send("ObjectRemoved:Delete", entry)
        return len(new) + len(gone)

    def _listing(self) -> list[_Entry]:
        entries: list[_Entry] = []
        for page in self._s3.get_paginator("list_object_versions").paginate(Bucket=self._bucket):
            for version in page.get("Versions", []):
                entries.append(
                    _Entry(
                        key=version["Key"],
                        version_id=version["VersionId"],
                        delete_marker=False,
                        latest=bool(version.get("IsLatest")),
                        last_modified=version["LastModified"],
                        size=int(version.get("Size", 0)),
                        etag=str(version.get("ETag", "")).strip('"'),
                    )
                )
            for marker in page.get("DeleteMarkers", []):
                entries.append(
                    _Entry(
                        key=marker["Key"],
                        version_id=marker["VersionId"],
                        delete_marker=True,
                        latest=bool(marker.get("IsLatest")),
                        last_modified=marker["LastModified"],
                    )
                )
        return entries

    def _send(self, event_name: str, entry: _Entry) -> None:
        for notification, queue_url in self._notifications:
            if notification.matches(event_name, entry.key):
                record = self.record(event_name, entry, configuration=f"local-{abs(hash(notification)) % 10**8}")
                self._sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps({"Records": [record]}))
                self.sent += 1

    def record(self, event_name: str, entry: _Entry, *, configuration: str) -> dict[str, Any]:
        """One S3 event notification record, shaped as S3 sends it (event message structure version 2.1)."""
        obj: dict[str, Any] = {"key": quote_plus(entry.key, safe="/")}  # as S3 encodes keys: slashes kept
        if event_name.startswith("ObjectCreated:"):
            obj.update(size=entry.size, eTag=entry.etag)
        obj.update(versionId=entry.version_id, sequencer=f"{self._sequencer():016X}")
        now = datetime.now(UTC)
        return {
            "eventVersion": "2.1",
            "eventSource": "aws:s3",
            "awsRegion": self._region,
            "eventTime": now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z",
            "eventName": event_name,
            "userIdentity": {"principalId": "AWS:SANDBOX"},
            "requestParameters": {"sourceIPAddress": "127.0.0.1"},
            "responseElements": {"x-amz-request-id": uuid.uuid4().hex[:16].upper(), "x-amz-id-2": "sandbox"},
            "s3": {
                "s3SchemaVersion": "1.0",
                "configurationId": configuration,
                "bucket": {
                    "name": self._bucket,
                    "ownerIdentity": {"principalId": "SANDBOX"},
                    "arn": f"arn:aws:s3:::{self._bucket}",
                },
                "object": obj,
            },
        }


class Replication:
    """S3 replication of one rule: new versions (and delete markers, if the rule says so) to the DR bucket."""

    def __init__(
        self, *, source: Any, source_bucket: str, target: Any, target_bucket: str, prefix: str, delete_markers: bool
    ) -> None:
        self._source = source
        self._source_bucket = source_bucket
        self._target = target
        self._target_bucket = target_bucket
        self._prefix = prefix
        self._delete_markers = delete_markers
        self.replicated = 0

    def __call__(self, entry: _Entry) -> None:
        if not entry.key.startswith(self._prefix):
            return
        if entry.delete_marker:
            if self._delete_markers:
                self._target.delete_object(Bucket=self._target_bucket, Key=entry.key)
                self.replicated += 1
            return
        obj = self._source.get_object(Bucket=self._source_bucket, Key=entry.key, VersionId=entry.version_id)
        extra = {"ContentType": obj["ContentType"]} if obj.get("ContentType") else {}
        self._target.put_object(
            Bucket=self._target_bucket,
            Key=entry.key,
            Body=obj["Body"].read(),
            Metadata=obj.get("Metadata", {}),
            **extra,
        )
        self.replicated += 1


class Notifier(PollingThread):
    """One thread that polls every bucket's BucketEvents, as S3 would deliver them (asynchronously)."""

    def __init__(self, buckets: list[BucketEvents], *, interval_s: float = POLL_INTERVAL_S) -> None:
        super().__init__("s3-notifier")
        self._buckets = buckets
        self._interval_s = interval_s

    def poll(self) -> int:
        events = 0
        for bucket in self._buckets:
            try:
                events += bucket.poll()
            except Exception as error:  # a failed poll is retried at the next one (the listing is compared again)
                _log.warning("S3 notifier poll failed", exc_info=True)
                self.errors.append(error)
        return events

    def start(self) -> Notifier:
        def loop() -> None:
            while not self._stop.wait(self._interval_s):
                self.poll()

        for bucket in self._buckets:
            bucket.poll()  # the starting state (fresh buckets: empty), nothing to send
        self._start_thread(loop)
        return self


# --- the whole knowledge side ---------------------------------------------------------------------------------
def start_knowledge(
    templates: Templates,
    *,
    stack: ExitStack,
    tables: dict[str, str],
    table_region: str,
    origin: str | None = None,
    progress: Callable[[str], None] = lambda message: None,
) -> dict[str, LocalKnowledge]:
    """Provision both regions' knowledge resources, start the notifier (with replication) and both ingest pumps.
    Clients come from the environment's endpoints (AWS_ENDPOINT_URL_S3 / _SQS / _S3VECTORS). Region -> names."""
    import boto3

    if not templates.knowledge:
        return {}
    started = {}
    clients: dict[str, dict[str, Any]] = {}
    for spec in templates.knowledge:
        session = boto3.Session(region_name=spec.region)
        clients[spec.region] = {name: session.client(name) for name in ("s3", "sqs", "s3vectors")}
        started[spec.stack_name] = provision(spec, origin=origin, **clients[spec.region])
    counter = itertools.count(time.time_ns())
    watchers = []
    for spec in templates.knowledge:
        names = started[spec.stack_name]
        replicate = None
        if spec.replication is not None:
            target = templates.knowledge_for(spec.replication.destination)
            replicate = Replication(
                source=clients[spec.region]["s3"],
                source_bucket=names.documents_bucket,
                target=clients[target.region]["s3"],
                target_bucket=started[target.stack_name].documents_bucket,
                prefix=spec.replication.prefix,
                delete_markers=spec.replication.delete_markers,
            )
        watchers.append(
            BucketEvents(
                s3=clients[spec.region]["s3"],
                sqs=clients[spec.region]["sqs"],
                bucket=names.documents_bucket,
                region=spec.region,
                notifications=[(n, names.queue_url) for n in spec.notifications],
                replicate=replicate,
                sequencer=lambda: next(counter),
            )
        )
    notifier = Notifier(watchers).start()
    stack.callback(notifier.stop)
    for spec in templates.knowledge:
        pump = _start_ingest(templates, spec, started[spec.stack_name], tables, table_region, clients[spec.region])
        stack.callback(pump.stop)
        progress(
            f"{spec.region}: documents bucket {started[spec.stack_name].documents_bucket}, vector index "
            f"{started[spec.stack_name].vector_bucket}/{started[spec.stack_name].vector_index}, ingest pump "
            f"(batch {spec.batch_size}, max concurrency {spec.max_concurrency})"
            + (", replicated to the DR bucket" if spec.replication else "")
        )
    return {names.region: names for names in started.values()}


def _start_ingest(
    templates: Templates,
    spec: KnowledgeSpec,
    names: LocalKnowledge,
    tables: dict[str, str],
    table_region: str,
    clients: dict[str, Any],
) -> Any:
    from handlers import ingest
    from handlers.settings import IngestSettings
    from handlers.wiring import data_client
    from local.lambda_pool import ExecutionEnvironments

    settings = IngestSettings.from_env(ingest_environment(templates, spec, tables))

    def cold_start() -> Any:
        # This region's S3, S3 Vectors and Bedrock (region passed, endpoints from the environment); the documents
        # table is the global table's one sandbox copy.
        return ingest.bootstrap(
            settings, dynamodb=data_client("dynamodb", region_name=table_region), region=spec.region
        )

    handler = ExecutionEnvironments(cold_start, limit=spec.ingest.reserved_concurrency or spec.max_concurrency)
    sqs = clients["sqs"]
    arn = sqs.get_queue_attributes(QueueUrl=names.queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return SqsPump(
        client=sqs,
        queue_url=names.queue_url,
        queue_arn=arn,
        handler=handler,
        batch_size=spec.batch_size,
        max_concurrency=spec.max_concurrency,
        timeout_s=float(spec.ingest.timeout_s),
    ).start()
