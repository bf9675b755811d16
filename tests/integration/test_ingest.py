"""The ingest Lambda end to end: moto S3 (a versioned documents bucket) and DynamoDB, the Bedrock emulator
(Titan embeddings) and the S3 Vectors emulator, the same adapters as in AWS. S3 event notifications are built
from the upload's own response (version id) as S3 would send them through SQS."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote_plus

import pytest

from adapters.s3vectors import S3VectorIndex
from core.documents import DocumentState, RegionStatus
from handlers.settings import IngestSettings
from local.bedrock_emulator import BedrockEmulator, embedding
from tests.knowledge_fixtures import deliver, ingest_stack
from tests.unit.adapters.corpus import encrypted_pdf, text_pdf

REGION = "us-east-1"
BUCKET = "documents-test"
ALICE = "0b5e2a8c-1111-4c3e-9a0e-aaaaaaaaaaaa"
BOB = "7f3d9b1e-2222-4d8f-8b1a-bbbbbbbbbbbb"
DIMENSIONS = 256
SETTINGS = IngestSettings(
    documents_table_name="documents-test",
    documents_bucket=BUCKET,
    vector_bucket_name="knowledge-test",
    vector_index_name="chunks",
    embedding_dimensions=DIMENSIONS,
    chunk_chars=300,
    chunk_overlap=30,
    max_receive_count=3,
    ingest_deadline_s=120.0,
)


@dataclass
class IngestWorld:
    s3: Any
    dynamodb: Any
    s3vectors: Any
    bedrock: BedrockEmulator
    handler: Any
    sequencer: Iterator[int]

    def upload(self, owner: str, document_id: str, data: bytes, content_type: str) -> dict[str, Any]:
        response = self.s3.put_object(
            Bucket=BUCKET, Key=f"documents/{owner}/{document_id}", Body=data, ContentType=content_type
        )
        return self.record("ObjectCreated:Put", owner, document_id, version_id=response["VersionId"], size=len(data))

    def delete(self, owner: str, document_id: str) -> dict[str, Any]:
        response = self.s3.delete_object(Bucket=BUCKET, Key=f"documents/{owner}/{document_id}")
        return self.record("ObjectRemoved:DeleteMarkerCreated", owner, document_id, version_id=response["VersionId"])

    def record(
        self, name: str, owner: str, document_id: str, *, version_id: str, size: int | None = None
    ) -> dict[str, Any]:
        obj: dict[str, Any] = {
            "key": quote_plus(f"documents/{owner}/{document_id}"),
            "versionId": version_id,
            "sequencer": f"{next(self.sequencer):018X}",
        }
        if size is not None:
            obj.update(size=size, eTag="0123456789abcdef")
        return {
            "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": REGION, "eventName": name,
            "eventTime": "2027-01-01T00:00:00.000Z",
            "s3": {"s3SchemaVersion": "1.0", "bucket": {"name": BUCKET, "arn": f"arn:aws:s3:::{BUCKET}"},
                   "object": obj},
        }  # fmt: skip

    def deliver(self, *bodies: Any, receives: int = 1) -> list[str]:
        """One SQS batch, one message per body (a dict is an S3 notification body); the failed message ids."""
        return deliver(self.handler, *bodies, region=REGION, receives=receives)

    def status(self, owner: str, document_id: str) -> RegionStatus:
        from adapters.documents import DynamoDocumentStore

        record = DynamoDocumentStore(client=self.dynamodb, table_name="documents-test").get(owner, document_id)
        assert record is not None
        return record.status[REGION]

    def index(self) -> S3VectorIndex:
        return S3VectorIndex(client=self.s3vectors, bucket_name="knowledge-test", index_name="chunks",
                             dimension=DIMENSIONS)  # fmt: skip


def notification(*records: dict[str, Any]) -> dict[str, Any]:
    return {"Records": list(records)}


@pytest.fixture
def world() -> Iterator[IngestWorld]:
    with ingest_stack(SETTINGS, REGION) as stack:
        yield IngestWorld(
            stack.s3, stack.dynamodb, stack.s3vectors, stack.bedrock, stack.handler,
            itertools.count(0x0055AED6DCD90281E5),
        )  # fmt: skip


def search(world: IngestWorld, owner: str, question: str) -> list[Any]:
    return world.index().query(owner, embedding(question, DIMENSIONS, True), 5)


HTML = b"""<!doctype html><html><head><title>Runbook</title><script>var secret = 1;</script></head>
<body><h1>Failover runbook</h1><p>When the primary region is down, the web client probes the standby API
and moves every user there within sixty seconds.</p><p>Warm standby keeps the DR stack deployed.</p></body></html>"""


@pytest.mark.parametrize(
    ("data", "content_type", "question", "page"),
    [
        (b"Penguins huddle together through the antarctic winter to share warmth.", "text/plain",
         "how do penguins share warmth", None),
        (HTML, "text/html", "standby API probes failover", None),
        (text_pdf([["Introduction to the quarterly report."], ["Revenue grew by forty percent in the north."]]),
         "application/pdf", "revenue grew north", 2),
    ],
    ids=["text", "html", "pdf"],
)  # fmt: skip
def test_a_document_reaches_ready_and_is_searchable_by_its_owner_only(
    world: IngestWorld, data: bytes, content_type: str, question: str, page: int | None
) -> None:
    document_id = "5d1c7f0e-3333-4a2b-9c4d-cccccccccccc"
    assert world.deliver(notification(world.upload(ALICE, document_id, data, content_type))) == []

    status = world.status(ALICE, document_id)
    assert status.state is DocumentState.READY and status.chunk_count and status.chunk_count >= 1
    passages = search(world, ALICE, question)
    assert passages and passages[0].document_id == document_id and passages[0].page == page
    assert "var secret" not in " ".join(p.text for p in passages)  # script text is never indexed
    assert search(world, BOB, question) == []


def test_a_bad_document_reaches_failed_with_its_reason(world: IngestWorld) -> None:
    document_id = "6e2d8a1f-4444-4b3c-8d5e-dddddddddddd"
    assert world.deliver(notification(world.upload(ALICE, document_id, encrypted_pdf(), "application/pdf"))) == []

    status = world.status(ALICE, document_id)
    assert (status.state, status.code) == (DocumentState.FAILED, "encrypted")
    assert status.reason and "without a password" in status.reason
    assert world.bedrock.calls("amazon.titan-embed-text-v2:0", REGION) == 0


def test_a_new_version_replaces_the_old_one_and_a_delete_removes_it(world: IngestWorld) -> None:
    document_id = "7f3e9b2a-5555-4c4d-9e6f-eeeeeeeeeeee"
    world.deliver(notification(world.upload(ALICE, document_id, b"Old text about zebras grazing.", "text/plain")))
    second = world.upload(ALICE, document_id, b"New text about volcanoes erupting.", "text/plain")
    assert world.deliver(notification(second)) == []

    assert world.status(ALICE, document_id).version_id == second["s3"]["object"]["versionId"]
    texts = [p.text for p in search(world, ALICE, "zebras grazing volcanoes erupting")]
    assert texts == ["New text about volcanoes erupting."]

    assert world.deliver(notification(world.delete(ALICE, document_id))) == []
    assert world.status(ALICE, document_id).state is DocumentState.DELETED
    assert search(world, ALICE, "volcanoes erupting") == []


def test_a_poison_body_is_a_batch_item_failure_and_the_test_event_is_not(world: IngestWorld) -> None:
    test_event = {"Service": "Amazon S3", "Event": "s3:TestEvent", "Time": "2027-01-01T00:00:00.000Z",
                  "Bucket": BUCKET, "RequestId": "r", "HostId": "h"}  # fmt: skip
    failed = world.deliver("not json at all", test_event, {"Records": "nope"})
    assert failed == ["m0", "m2"]


def test_one_message_may_hold_several_documents(world: IngestWorld) -> None:
    first = world.upload(ALICE, "8a4f0c3b-6666-4d5e-af70-ffffffffffff", b"Lighthouses guide ships.", "text/plain")
    second = world.upload(BOB, "9b5a1d4c-7777-4e6f-b081-000000000000", b"Bakeries sell bread.", "text/plain")
    assert world.deliver(notification(first, second)) == []
    assert [p.text for p in search(world, ALICE, "lighthouses")] == ["Lighthouses guide ships."]
    assert [p.text for p in search(world, BOB, "bread")] == ["Bakeries sell bread."]


def test_an_unavailable_model_retries_and_the_last_receive_fails_the_document(world: IngestWorld) -> None:
    document_id = "0c6b2e5d-8888-4f70-8192-111111111111"
    world.bedrock.set_faults({"default": {"down": True}})
    body = notification(world.upload(ALICE, document_id, b"Glaciers carve valleys slowly.", "text/plain"))

    assert world.deliver(body, receives=1) == ["m0"]
    assert world.status(ALICE, document_id).state is DocumentState.INGESTING

    assert world.deliver(body, receives=SETTINGS.max_receive_count) == ["m0"]  # still failing: towards the DLQ
    status = world.status(ALICE, document_id)
    assert (status.state, status.code) == (DocumentState.FAILED, "not_processed")
    assert status.reason and "set aside for an operator" in status.reason

    world.bedrock.set_faults({"default": {"latency_ms": [0, 0]}})
    assert world.deliver(body, receives=1) == []  # `make redrive` brings it back: it is indexed
    assert world.status(ALICE, document_id).state is DocumentState.READY
