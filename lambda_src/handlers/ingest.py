"""Ingest Lambda: SQS records whose bodies are S3 event notifications of this region's documents bucket.

Per SQS record (Powertools BatchProcessor, partial batch failures): every S3 record in its body (S3 may put
several in one message; `s3:TestEvent` has none) for an object under `documents/<owner sub>/<document id>`:
- ObjectCreated:* -> HEAD that version (the size is checked before anything is downloaded; the content type
  is the object's Content-Type), then core.ingest: parse, chunk, embed, index, `ready` or `failed`.
- ObjectRemoved:* (Delete, DeleteMarkerCreated) -> if the key has no current object left, the document's
  vectors go and it is `deleted`; if another version became current again, that version is ingested.
A failure that may pass (throttling past the retry budget, an open breaker, a store that does not answer)
fails the record, so SQS redelivers it; on its last receive the document is marked `failed` with a reason
first, then the message parks in the DLQ (`make redrive`). A body that is not an S3 notification is a
poison message: a batch item failure, towards the DLQ.

No idempotency table: the processing is idempotent by construction. Vector keys are deterministic per
document, version and chunk (a redelivery overwrites the same vectors), and every status change is a
conditional write on the event's S3 sequencer (a duplicate finds its work recorded, a late event is
skipped). Document text is never logged: only ids, versions, codes and counts.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.config import Config
from botocore.exceptions import ClientError

from adapters.aws_errors import dependency
from adapters.bedrock import ClientFactory
from adapters.chunking import RecursiveTextChunker
from adapters.documents import DynamoDocumentStore
from adapters.embeddings import TitanEmbedder
from adapters.parsing import SniffingDocumentParser
from adapters.s3vectors import S3VectorIndex
from adapters.tracing import PowertoolsTracing
from core.documents import DocumentLimits
from core.ingest import IngestOutcome, IngestResult, IngestService, ObjectVersion
from core.resilience import BreakerSettings, CircuitBreaker, RateLimiter, RetryBudget
from handlers.settings import IngestSettings
from handlers.snapstart import restorable
from handlers.wiring import data_call_worst_case_s, data_client, shared_session

logger = Logger()
tracer = Tracer(patch_modules=["botocore"])
metrics = Metrics()

Handler = Callable[[dict[str, Any], LambdaContext], dict[str, Any]]

_KEY = re.compile(r"documents/([^/]+)/([^/]+)")
_S3 = "S3 (the documents bucket)"
# Kept free of the document's deadline at the end of the Lambda's time: the last receive's `failed` write.
RESERVE_S = data_call_worst_case_s()
# Object reads and vector writes move megabytes: longer read timeouts than the data clients' 1 s.
_TRANSFER_CONFIG = Config(retries={"mode": "standard", "total_max_attempts": 3}, connect_timeout=1.0, read_timeout=10.0)


class PoisonMessage(ValueError):
    """A record that can never be processed as it is: it must reach the DLQ."""


@dataclass(frozen=True, kw_only=True)
class ObjectEvent:
    created: bool  # ObjectCreated:*; otherwise ObjectRemoved:*
    bucket: str
    key: str
    owner: str
    document_id: str
    version_id: str | None
    sequencer: str
    etag: str | None
    force: bool = False  # an index rebuild (tools/rebuild_index.py): re-embed a version already `ready`


def object_events(body: str) -> list[ObjectEvent]:
    """The document events in one SQS body; [] for S3's test event and for objects outside `documents/`."""
    try:
        message = json.loads(body)
    except json.JSONDecodeError as error:
        raise PoisonMessage(f"message body is not JSON: {error.msg}") from error
    if not isinstance(message, dict):
        raise PoisonMessage("message body is not a JSON object")
    if message.get("Event") == "s3:TestEvent":
        return []
    records = message.get("Records")
    if not isinstance(records, list):
        raise PoisonMessage("message body is not an S3 event notification (no Records)")
    force = message.get("force") is True  # set only by tools/rebuild_index.py, never by S3
    events = []
    for record in records:
        try:
            name = str(record["eventName"])
            s3 = record["s3"]
            bucket, obj = str(s3["bucket"]["name"]), s3["object"]
            key = unquote_plus(str(obj["key"]))  # keys arrive URL-encoded, spaces as '+'
        except (KeyError, TypeError) as error:
            raise PoisonMessage(f"S3 record lacks {error}") from error
        if not name.startswith(("ObjectCreated:", "ObjectRemoved:")):
            continue
        match = _KEY.fullmatch(key)
        if match is None:
            logger.warning("object outside documents/<owner>/<id> ignored", extra={"bucket": bucket})
            continue
        events.append(
            ObjectEvent(
                created=name.startswith("ObjectCreated:"),
                bucket=bucket,
                key=key,
                owner=match.group(1),
                document_id=match.group(2),
                version_id=obj.get("versionId") or None,
                sequencer=str(obj.get("sequencer") or "0"),
                etag=str(obj["eTag"]).strip('"') if obj.get("eTag") else None,
                force=force,
            )
        )
    return events


class DocumentObjects:
    """The documents bucket as the handler reads it: HEAD before GET, GET bounded by the size limit."""

    def __init__(self, *, client: Any, max_bytes: int) -> None:
        self._client = client
        self._max_bytes = max_bytes

    def head(self, bucket: str, key: str, version_id: str | None = None) -> dict[str, Any] | None:
        """The object's (or that version's) metadata; None if it is gone or a delete marker is current."""
        extra = {"VersionId": version_id} if version_id else {}
        try:
            with dependency(_S3, "read the document"):
                head: dict[str, Any] = self._client.head_object(Bucket=bucket, Key=key, **extra)
        except ClientError as error:
            status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
            code = str(error.response.get("Error", {}).get("Code", ""))
            if status in (404, 405) or code in ("404", "NoSuchKey", "NoSuchVersion", "MethodNotAllowed"):
                return None
            raise
        if head.get("DeleteMarker"):
            return None
        return head

    def read(self, bucket: str, key: str, version_id: str | None) -> bytes:
        extra = {"VersionId": version_id} if version_id else {}
        with dependency(_S3, "read the document"):
            body = self._client.get_object(Bucket=bucket, Key=key, **extra)["Body"]
            try:
                return bytes(body.read(self._max_bytes + 1))  # never more than the limit (+1 to see it was over)
            finally:
                body.close()


def object_version(event: ObjectEvent, head: dict[str, Any]) -> ObjectVersion:
    version = head.get("VersionId") or event.version_id
    if not version or version == "null":  # an unversioned bucket: the content's hash names the version
        version = "e" + str(head.get("ETag") or event.etag or "0").strip('"')
    metadata = head.get("Metadata") or {}
    return ObjectVersion(
        owner=event.owner,
        document_id=event.document_id,
        version_id=str(version),
        sequencer=event.sequencer,
        size=int(head.get("ContentLength", 0)),
        content_type=str(head.get("ContentType") or ""),
        name=str(metadata.get("name") or event.document_id),
    )


def build_ingest_service(
    settings: IngestSettings,
    *,
    region: str,
    dynamodb: Any = None,
    s3vectors: Any = None,
    bedrock: ClientFactory | None = None,
) -> tuple[IngestService, TitanEmbedder]:
    """The pipeline wired once per execution environment: one breaker, budget and pacer for all documents."""
    if not (settings.documents_table_name and settings.vector_bucket_name and settings.vector_index_name):
        raise RuntimeError("the ingest Lambda needs DOCUMENTS_TABLE_NAME, VECTOR_BUCKET_NAME and VECTOR_INDEX_NAME")
    session = shared_session()
    limits = DocumentLimits(
        max_bytes=settings.max_document_bytes,
        max_pages=settings.max_document_pages,
        max_characters=settings.max_document_characters,
        chunk_size=settings.chunk_chars,
        chunk_overlap=settings.chunk_overlap,
        # A document that takes this long to parse is refused (terminal), not timed out and retried.
        max_parse_seconds=min(DocumentLimits().max_parse_seconds, settings.ingest_deadline_s / 2),
    )
    embedder = TitanEmbedder(
        client_factory=bedrock
        or (lambda config: session.create_client("bedrock-runtime", region_name=region, config=config)),
        model_id=settings.embedding_model_id,
        dimensions=settings.embedding_dimensions,
        pacing=RateLimiter(settings.embed_rate_per_s) if settings.embed_rate_per_s else None,
        breaker=CircuitBreaker(BreakerSettings(open_s=settings.breaker_open_s)),
        tracing=PowertoolsTracing(tracer),  # a subsegment per embedding call (numbers and codes only)
        budget=RetryBudget(),
    )
    service = IngestService(
        documents=DynamoDocumentStore(
            client=dynamodb or data_client("dynamodb"), table_name=settings.documents_table_name
        ),
        index=S3VectorIndex(
            client=s3vectors or session.create_client("s3vectors", region_name=region, config=_TRANSFER_CONFIG),
            bucket_name=settings.vector_bucket_name,
            index_name=settings.vector_index_name,
            dimension=settings.embedding_dimensions,
        ),
        parser=SniffingDocumentParser(limits),
        chunker=RecursiveTextChunker(limits),
        embedder=embedder,
        limits=limits,
        region=region,
        deadline_s=settings.ingest_deadline_s,
    )
    return service, embedder


def bootstrap(
    settings: IngestSettings | None = None,
    *,
    dynamodb: Any = None,
    s3: Any = None,
    s3vectors: Any = None,
    bedrock: ClientFactory | None = None,
    region: str | None = None,
) -> Handler:
    """The ingest Lambda's composition root: the module calls it once at cold start, the sandbox and the tests
    with their own settings and clients (`bedrock` makes a bedrock-runtime client from a botocore Config)."""
    settings = settings or IngestSettings.from_env()
    region = region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    try:
        service, embedder = build_ingest_service(
            settings, region=region, dynamodb=dynamodb, s3vectors=s3vectors, bedrock=bedrock
        )
    except RuntimeError as error:
        return _unconfigured(str(error))
    objects = DocumentObjects(
        client=s3 or shared_session().create_client("s3", region_name=region, config=_TRANSFER_CONFIG),
        max_bytes=settings.max_document_bytes,
    )
    processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
    clock: dict[str, LambdaContext | None] = {"context": None}

    def remaining_s() -> float:
        context = clock["context"]
        if context is None:
            return settings.ingest_deadline_s
        return context.get_remaining_time_in_millis() / 1000 - RESERVE_S

    def handle_event(event: ObjectEvent) -> IngestResult:
        # Created: that version. Removed: whatever is current now (nothing, or an older version that became
        # current again when the newest was deleted) decides, under the removal's (newer) sequencer.
        head = objects.head(event.bucket, event.key, event.version_id if event.created else None)
        if head is None:
            if event.created:  # that version is gone already: its removal event decides, not this one
                return IngestResult(outcome=IngestOutcome.SKIPPED)
            return service.remove(event.owner, event.document_id, sequencer=event.sequencer)
        obj = object_version(event, head)
        read_version = head.get("VersionId") if head.get("VersionId") not in (None, "null") else None
        return service.ingest(
            obj,
            lambda: objects.read(event.bucket, event.key, read_version),
            deadline_s=remaining_s(),
            force=event.force and event.created,
        )

    def record_handler(record: SQSRecord) -> None:
        for event in object_events(record.body):
            where = {
                "document_id": event.document_id,
                "version_id": event.version_id,
                "event": "created" if event.created else "removed",  # not "created": a LogRecord attribute
            }
            calls, retries = embedder.calls, embedder.retries
            try:
                result = handle_event(event)
            except Exception:
                receives = int(record.attributes.approximate_receive_count or 1)
                logger.exception("document attempt failed", extra={**where, "receives": receives})
                if receives >= settings.max_receive_count and service.give_up(
                    event.owner,
                    event.document_id,
                    sequencer=event.sequencer,
                    receives=receives,
                    rebuilt_version=event.version_id if event.force else None,
                ):
                    metrics.add_metric(name="DocumentsFailed", unit=MetricUnit.Count, value=1)
                raise
            finally:
                metrics.add_metric(name="EmbeddingCalls", unit=MetricUnit.Count, value=embedder.calls - calls)
                metrics.add_metric(name="EmbeddingRetries", unit=MetricUnit.Count, value=embedder.retries - retries)
            metrics.add_metric(name=f"Documents.{result.outcome.value}", unit=MetricUnit.Count, value=1)
            logger.info(
                "document processed",
                extra={**where, "outcome": result.outcome.value, "chunks": result.chunks, "code": result.code},
            )

    @logger.inject_lambda_context
    @tracer.capture_lambda_handler
    @metrics.log_metrics
    def handle(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        clock["context"] = context
        return process_partial_response(
            event=event, record_handler=record_handler, processor=processor, context=context
        )

    return handle


def _unconfigured(problem: str) -> Handler:
    """Importing the module without the knowledge settings (tests of other Lambdas) must not fail; invoking it does."""

    def handle(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        raise RuntimeError(problem)

    return handle


handler = restorable(bootstrap)  # cold start: settings from the environment (rebuilt after a SnapStart restore)
