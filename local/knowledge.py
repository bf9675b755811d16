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
- S3 replication (moto has none), both ways: the primary bucket's rule (from its template) copies new versions
  and, as the rule says, delete markers under the rule's prefix to the DR bucket, oldest first; the DR bucket's
  rule back to the primary (fail-back: the primary's Knowledge stack puts it with a custom resource, as the
  primary's rule reversed, stacks/knowledge_stack.py `_replicate_back`; tests/infra checks they agree) copies
  what is written in DR. A replica is never replicated again (S3 marks it REPLICA; here the Replicator
  remembers the versions it wrote), so the two rules make no loop. Copies run on the Replicator's own thread,
  `replication_lag_s` after the notifier saw the version (0: at once; a drill can set a lag, or pause a region),
  and S3's notification for the replica follows at once (the notifier is woken, not left to its next poll).
  Replicas get new version ids there (S3 keeps the source's); nothing reads them across regions, each region's
  pipeline uses its own bucket's ids.
- the ingest Lambda of each region: `handlers.ingest.bootstrap` with that region's settings (the template's
  environment, local names) in execution environments fed by an SQS pump sized like the event source mapping.
  The documents table is a global table: each region's pipeline writes only its own status item of a document
  (adapters.document_catalog), in its own region's replica when the sandbox runs both regions' tables (else in
  the one table); local/global_tables.py replicates whole items with
  last writer wins per item, as DynamoDB does, so the sandbox shows what AWS would (it found the lost statuses
  of the layout with one item per document).
"""

from __future__ import annotations

import heapq
import itertools
import json
import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
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
    table_region: str = ""  # where its ingest Lambda reads and writes the documents table
    ingest_env: dict[str, str] = field(default_factory=dict)  # its ingest Lambda's environment (make invoke)


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
        replicate: Callable[[_Entry, float], None] | None = None,
        sequencer: Callable[[], int],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """`notifications`: each queue configuration with its queue's URL. `replicate` sees each new entry, with
        the time.monotonic() of the poll that saw it."""
        self._s3 = s3
        self._sqs = sqs
        self._bucket = bucket
        self._region = region
        self._notifications = notifications
        self._replicate = replicate
        self._sequencer = sequencer
        self._clock = clock
        self._seen: dict[tuple[str, str], _Entry] = {}
        self.sent = 0

    def poll(self) -> int:
        """Compare the version listing with the last one; send and replicate what changed. The number of events."""
        seen_at = self._clock()
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
                self._replicate(entry, seen_at)
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
    """One replication rule: new versions (and delete markers, if the rule says so) under its prefix, from one
    region's bucket to another's."""

    def __init__(
        self,
        *,
        source: Any,
        source_bucket: str,
        target: Any,
        target_bucket: str,
        prefix: str,
        delete_markers: bool,
        source_region: str = "",
        target_region: str = "",
    ) -> None:
        self._source = source
        self.source_bucket = source_bucket
        self._target = target
        self.target_bucket = target_bucket
        self._prefix = prefix
        self._delete_markers = delete_markers
        self.source_region = source_region
        self.target_region = target_region
        self.replicated = 0

    def covers(self, entry: _Entry) -> bool:
        return entry.key.startswith(self._prefix) and (self._delete_markers or not entry.delete_marker)

    def __call__(self, entry: _Entry) -> str | None:
        """Copy `entry` now; the version id of the replica (or of the replicated delete marker)."""
        if not self.covers(entry):
            return None
        if entry.delete_marker:
            marker = self._target.delete_object(Bucket=self.target_bucket, Key=entry.key)
            self.replicated += 1
            return str(marker.get("VersionId") or "") or None
        obj = self._source.get_object(Bucket=self.source_bucket, Key=entry.key, VersionId=entry.version_id)
        extra = {"ContentType": obj["ContentType"]} if obj.get("ContentType") else {}
        written = self._target.put_object(
            Bucket=self.target_bucket,
            Key=entry.key,
            Body=obj["Body"].read(),
            Metadata=obj.get("Metadata", {}),
            **extra,
        )
        self.replicated += 1
        return str(written.get("VersionId") or "") or None


@dataclass(frozen=True)
class ReplicationEvent:
    """One copy the sandbox's S3 replication made; times are time.monotonic()."""

    source_region: str
    target_region: str
    key: str
    delete_marker: bool
    seen_at: float  # the notifier saw the version in the source bucket
    replicated_at: float  # the replica (or the delete marker) was written in the target bucket


class Replicator(PollingThread):
    """S3 replication's asynchronous side for every rule: each version a rule covers is copied `lag_s` after the
    notifier saw it, oldest first, on this thread; a copy that fails is tried again a second later (S3 retries
    too). A replica is never replicated again: the versions written here are remembered (S3 marks them REPLICA),
    and one lock covers writing a replica and remembering it, so a poll that sees the replica already knows it.

    `lag_s` may change while running (later copies use the new value); `pause(region)` holds every copy into or
    out of that region until `resume(region)` (a regional outage: S3 catches up afterwards). `events` keeps the
    last copies made (ReplicationEvent), `on_replicated` is told of each. `clock` is time.monotonic unless a
    test drives it (then it calls `run_due` itself instead of starting the thread)."""

    RETRY_S = 1.0

    def __init__(
        self,
        *,
        lag_s: float = 0.0,
        on_replicated: Callable[[ReplicationEvent], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        keep: int = 10_000,
    ) -> None:
        super().__init__("s3-replication")
        if lag_s < 0:
            raise ValueError(f"lag_s must be >= 0, got {lag_s}")
        self.lag_s = lag_s
        self._on_replicated = on_replicated
        self._clock = clock
        self._queue: list[tuple[float, int, Replication, _Entry, float]] = []  # (due, order, rule, entry, seen)
        self._order = itertools.count()
        self._cv = threading.Condition()
        self._written = threading.Lock()
        self._replicas: set[tuple[str, str]] = set()  # (bucket, version id) written by replication
        self._paused: set[str] = set()
        self.events: deque[ReplicationEvent] = deque(maxlen=keep)
        self.wake: Callable[[], None] = lambda: None  # the notifier's: S3 notifies a replica at once

    def submit(self, replication: Replication, entry: _Entry, seen_at: float) -> None:
        """Queue `entry` (a new version the notifier saw in `replication`'s source bucket), unless it is a replica."""
        if not replication.covers(entry):
            return
        with self._written:
            if (replication.source_bucket, entry.version_id) in self._replicas:
                return
        with self._cv:
            heapq.heappush(self._queue, (seen_at + self.lag_s, next(self._order), replication, entry, seen_at))
            self._cv.notify()

    def pause(self, region: str) -> None:
        with self._cv:
            self._paused.add(region)

    def resume(self, region: str) -> None:
        with self._cv:
            self._paused.discard(region)
            self._cv.notify()

    def pending(self) -> int:
        with self._cv:
            return len(self._queue)

    def run_due(self) -> int:
        """Make every copy that is due and not paused, oldest first; the number made."""
        made = 0
        while (item := self._take_due()) is not None:
            made += self._copy(*item)
        return made

    def _take_due(self) -> tuple[Replication, _Entry, float] | None:
        with self._cv:
            first = self._first_ready()
            if first is None or first[0] > self._clock():
                return None
            self._queue.remove(first)
            heapq.heapify(self._queue)
            return first[2], first[3], first[4]

    def _first_ready(self) -> tuple[float, int, Replication, _Entry, float] | None:
        ready = [item for item in self._queue if not {item[2].source_region, item[2].target_region} & self._paused]
        return min(ready, default=None)

    def _copy(self, replication: Replication, entry: _Entry, seen_at: float) -> int:
        try:
            with self._written:
                version = replication(entry)
                if version:
                    self._replicas.add((replication.target_bucket, version))
        except Exception as error:  # the target was unreachable: S3 retries a failed replication
            _log.warning("sandbox S3 replication failed; retrying", exc_info=True)
            self.errors.append(error)
            with self._cv:
                due = self._clock() + self.RETRY_S
                heapq.heappush(self._queue, (due, next(self._order), replication, entry, seen_at))
            return 0
        event = ReplicationEvent(
            source_region=replication.source_region,
            target_region=replication.target_region,
            key=entry.key,
            delete_marker=entry.delete_marker,
            seen_at=seen_at,
            replicated_at=self._clock(),
        )
        self.events.append(event)
        self.wake()
        if self._on_replicated is not None:
            self._on_replicated(event)
        return 1

    def start(self) -> Replicator:
        def loop() -> None:
            while not self._stop.is_set():
                self.run_due()
                with self._cv:
                    first = self._first_ready()
                    wait = 1.0 if first is None else first[0] - self._clock()
                    if wait > 0 and not self._stop.is_set():
                        self._cv.wait(timeout=min(wait, 1.0))

        self._start_thread(loop)
        return self

    def stop(self) -> None:
        with self._cv:
            self._stop.set()
            self._cv.notify_all()
        super().stop()


class Notifier(PollingThread):
    """One thread that polls every bucket's BucketEvents, as S3 would deliver them (asynchronously): every
    `interval_s`, or at once when woken (a replica was just written)."""

    def __init__(self, buckets: list[BucketEvents], *, interval_s: float = POLL_INTERVAL_S) -> None:
        super().__init__("s3-notifier")
        self._buckets = buckets
        self._interval_s = interval_s
        self._wake = threading.Event()
        self._lock = threading.Lock()  # one poll at a time

    def wake(self) -> None:
        self._wake.set()

    def poll(self) -> int:
        with self._lock:
            return self._poll()

    def _poll(self) -> int:
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
            while not self._stop.is_set():
                self._wake.wait(self._interval_s)
                self._wake.clear()
                if not self._stop.is_set():
                    self.poll()

        for bucket in self._buckets:
            bucket.poll()  # the starting state (fresh buckets: empty), nothing to send
        self._start_thread(loop)
        return self

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        super().stop()


# --- the whole knowledge side ---------------------------------------------------------------------------------
def start_knowledge(
    templates: Templates,
    *,
    stack: ExitStack,
    tables: dict[str, str],
    table_region: str,
    origin: str | None = None,
    progress: Callable[[str], None] = lambda message: None,
    replication_lag_s: float = 0.0,
    replicator: Replicator | None = None,
    poll_interval_s: float = POLL_INTERVAL_S,
    regional_tables: bool = False,
) -> dict[str, LocalKnowledge]:
    """Provision both regions' knowledge resources, start the notifier, S3 replication (both ways) and both ingest
    pumps. Clients come from the environment's endpoints (AWS_ENDPOINT_URL_S3 / _SQS / _S3VECTORS). Region -> names.

    `replication_lag_s`: extra delay of every S3 replication copy (0: copied as soon as the notifier sees the
    version). `replicator`: a Replicator the caller keeps (to change its lag, pause a region, read its events);
    given, it is started here and `replication_lag_s` is not used. `poll_interval_s`: how often the notifier lists
    the buckets (S3 delivers notifications in about a second). `regional_tables`: each region's ingest Lambda uses
    its own region's replica of the documents table (the sandbox runs both regions' tables, replicated); otherwise
    both use the one table in `table_region`."""
    import boto3

    if not templates.knowledge:
        return {}
    started = {}
    clients: dict[str, dict[str, Any]] = {}
    for spec in templates.knowledge:
        session = boto3.Session(region_name=spec.region)
        clients[spec.region] = {name: session.client(name) for name in ("s3", "sqs", "s3vectors")}
        started[spec.stack_name] = provision(spec, origin=origin, **clients[spec.region])
    replicator = replicator or Replicator(lag_s=replication_lag_s)
    rules = _replication_rules(templates, started, clients)
    counter = itertools.count(time.time_ns())
    watchers = []
    for spec in templates.knowledge:
        names = started[spec.stack_name]
        rule = rules.get(spec.stack_name)
        watchers.append(
            BucketEvents(
                s3=clients[spec.region]["s3"],
                sqs=clients[spec.region]["sqs"],
                bucket=names.documents_bucket,
                region=spec.region,
                notifications=[(n, names.queue_url) for n in spec.notifications],
                replicate=_submitter(replicator, rule) if rule else None,
                sequencer=lambda: next(counter),
            )
        )
    notifier = Notifier(watchers, interval_s=poll_interval_s).start()
    replicator.wake = notifier.wake
    replicator.start()
    stack.callback(notifier.stop)
    stack.callback(replicator.stop)  # first: no copy is made into a bucket nobody watches any more
    for spec in templates.knowledge:
        env = ingest_environment(templates, spec, tables)
        region_of_table = spec.region if regional_tables else table_region
        names = started[spec.stack_name] = replace(
            started[spec.stack_name], table_region=region_of_table, ingest_env=env
        )
        pump = _start_ingest(spec, names, env, region_of_table, clients[spec.region])
        stack.callback(pump.stop)
        rule = rules.get(spec.stack_name)
        progress(
            f"{spec.region}: documents bucket {names.documents_bucket}, vector index "
            f"{names.vector_bucket}/{names.vector_index}, ingest pump "
            f"(batch {spec.batch_size}, max concurrency {spec.max_concurrency})"
            + (f", replicated to {rule.target_region}" if rule else "")
            + (f" after {replicator.lag_s:g} s" if rule and replicator.lag_s else "")
        )
    return {names.region: names for names in started.values()}


def _submitter(replicator: Replicator, rule: Replication) -> Callable[[_Entry, float], None]:
    def submit(entry: _Entry, seen_at: float) -> None:
        replicator.submit(rule, entry, seen_at)

    return submit


def _replication_rules(
    templates: Templates, started: dict[str, LocalKnowledge], clients: dict[str, dict[str, Any]]
) -> dict[str, Replication]:
    """Each documents bucket's replication rule, by stack name: the ones in the templates, and for a bucket a
    rule replicates into without a rule of its own, that rule reversed (the fail-back rule the primary stack
    puts on the DR bucket with a custom resource, stacks/knowledge_stack.py `_replicate_back`)."""
    rules: dict[str, Replication] = {}
    for spec in templates.knowledge:
        if spec.replication is None:
            continue
        target = templates.knowledge_for(spec.replication.destination)
        for source, destination in ((spec, target), (target, spec)):
            if source.stack_name in rules or (source is target and target.replication is not None):
                continue
            rules[source.stack_name] = Replication(
                source=clients[source.region]["s3"],
                source_bucket=started[source.stack_name].documents_bucket,
                target=clients[destination.region]["s3"],
                target_bucket=started[destination.stack_name].documents_bucket,
                prefix=spec.replication.prefix,
                delete_markers=spec.replication.delete_markers,
                source_region=source.region,
                target_region=destination.region,
            )
    return rules


def _start_ingest(
    spec: KnowledgeSpec, names: LocalKnowledge, env: dict[str, str], table_region: str, clients: dict[str, Any]
) -> Any:
    from handlers import ingest
    from handlers.settings import IngestSettings
    from handlers.wiring import data_client
    from local.lambda_pool import ExecutionEnvironments

    settings = IngestSettings.from_env(env)

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
