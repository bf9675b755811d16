"""Retrieval quality smoke test: a small corpus with known source passages, ingested through the real ingest
handler (moto S3 + DynamoDB, the Bedrock emulator's hashed bag-of-words embeddings, the S3 Vectors emulator),
asked a question set through the chat path's Retriever. recall@k is asserted at a level those embeddings
honestly reach (measured: 11/12 at k=1 and k=3, 12/12 at k=5; asserted with a margin). The index rebuild
(tools/rebuild_index.py's forced messages) is checked here too: a wiped index answers as before."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from bench.corpus import QUALITY_PASSAGES, QUALITY_QUESTIONS, recall_at_k
from core.documents import DocumentState
from handlers.settings import IngestSettings
from tests.knowledge_fixtures import create_index, deliver, ingest_stack
from tools.rebuild_index import current_documents, rebuild_message

REGION = "us-east-1"
BUCKET = "documents-quality"
OWNER = "0b5e2a8c-1111-4c3e-9a0e-aaaaaaaaaaaa"
DIMENSIONS = 256
SETTINGS = IngestSettings(
    documents_table_name="documents-quality",
    documents_bucket=BUCKET,
    vector_bucket_name="knowledge-quality",
    vector_index_name="chunks",
    embedding_dimensions=DIMENSIONS,
    chunk_chars=400,
    chunk_overlap=40,
    max_receive_count=3,
    ingest_deadline_s=120.0,
)


def _create_index(s3vectors: Any) -> None:
    create_index(s3vectors, SETTINGS)


@pytest.fixture(scope="module")
def world() -> Iterator[dict[str, Any]]:
    with ingest_stack(SETTINGS, REGION) as stack:
        s3 = stack.s3

        def deliver_one(body: str) -> list[str]:
            return deliver(stack.handler, body, region=REGION)

        for sequencer, (name, text) in enumerate(QUALITY_PASSAGES.items(), start=1):
            response = s3.put_object(Bucket=BUCKET, Key=f"documents/{OWNER}/{name}", Body=text.encode(),
                                     ContentType="text/plain")  # fmt: skip
            obj = {"key": f"documents/{OWNER}/{name}", "versionId": response["VersionId"],
                   "sequencer": f"{0x0055AED6DCD9000000 + sequencer:018X}", "size": len(text)}  # fmt: skip
            body = {"Records": [{"eventName": "ObjectCreated:Put", "awsRegion": REGION,
                                 "s3": {"bucket": {"name": BUCKET}, "object": obj}}]}  # fmt: skip
            assert deliver_one(json.dumps(body)) == []

        yield {"s3": s3, "s3vectors": stack.s3vectors, "dynamodb": stack.dynamodb, "deliver": deliver_one}


def ranked(world: dict[str, Any]) -> dict[str, list[str]]:
    """Question -> the document ids of its passages, best first (the chat path's retrieval)."""
    from adapters.s3vectors import S3VectorIndex
    from local.bedrock_emulator import embedding

    index = S3VectorIndex(client=world["s3vectors"], bucket_name="knowledge-quality", index_name="chunks",
                          dimension=DIMENSIONS)  # fmt: skip
    return {
        question: [p.document_id for p in index.query(OWNER, embedding(question, DIMENSIONS, True), 5)]
        for question, _ in QUALITY_QUESTIONS
    }


def test_recall_at_k_over_the_emulators_embeddings(world: dict[str, Any]) -> None:
    results = ranked(world)
    assert recall_at_k(results, 1) >= 0.75
    assert recall_at_k(results, 3) >= 0.8
    assert recall_at_k(results, 5) >= 0.9


def test_the_retriever_cites_the_source_passage(world: dict[str, Any]) -> None:
    question, source = QUALITY_QUESTIONS[0]
    assert source in ranked(world)[question][:3]


def test_a_rebuild_from_the_bucket_restores_a_wiped_index(world: dict[str, Any]) -> None:
    before = ranked(world)
    world["s3vectors"].delete_index(vectorBucketName="knowledge-quality", indexName="chunks")
    _create_index(world["s3vectors"])
    assert all(not ids for ids in ranked(world).values())

    documents = list(current_documents(world["s3"], BUCKET))
    assert len(documents) == len(QUALITY_PASSAGES)
    for document in documents:  # forced: the versions are `ready`, a plain event would be skipped
        assert world["deliver"](rebuild_message(BUCKET, document, REGION)) == []

    assert ranked(world) == before
    from adapters.documents import DynamoDocumentStore

    store = DynamoDocumentStore(client=world["dynamodb"], table_name="documents-quality")
    record = store.get(OWNER, "penguins")
    assert record is not None and record.status[REGION].state is DocumentState.READY


def test_an_unforced_replay_of_a_ready_version_is_skipped(world: dict[str, Any]) -> None:
    world["s3vectors"].delete_index(vectorBucketName="knowledge-quality", indexName="chunks")
    _create_index(world["s3vectors"])
    document = next(d for d in current_documents(world["s3"], BUCKET) if d["key"].endswith("/bread"))
    unforced = json.loads(rebuild_message(BUCKET, document, REGION))
    del unforced["force"]
    assert world["deliver"](json.dumps(unforced)) == []
    assert ranked(world)["what makes sourdough bread rise"] == []
    assert world["deliver"](rebuild_message(BUCKET, document, REGION)) == []
    assert ranked(world)["what makes sourdough bread rise"][0] == "bread"
