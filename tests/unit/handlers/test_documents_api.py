"""The /documents routes and retrieval in /chat, end to end in-process: moto S3 and DynamoDB, the S3 Vectors
emulator (the adapter's real botocore calls) and the Bedrock emulator (Converse answers extracted from what it
was sent, Titan embeddings as hashed bags of words)."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
import requests
from botocore.config import Config
from moto import mock_aws

from adapters.s3vectors import NON_FILTERABLE_KEYS, S3VectorIndex
from core.knowledge import ChunkVector
from handlers import chat as chat_handler
from handlers.settings import Settings
from local.apigw import rest_event
from local.bedrock_emulator import BedrockEmulator, embedding
from local.lambda_context import LocalContext
from local.resources import create_table, create_tables
from local.s3vectors_emulator import S3VectorsEmulator

ALICE = "11111111-aaaa-4aaa-8aaa-111111111111"
BOB = "22222222-bbbb-4bbb-8bbb-222222222222"
REGION = "us-east-1"
BUCKET = "documents-test"
VECTORS, INDEX, DIMENSION = "vectors-test", "chunks", 256
MAX_BYTES = 4096
DOC_A = "0b5e2a8c-1111-4c3e-9a0e-aaaaaaaaaaaa"


def api_event(method: str, path: str, *, body: Any = None, sub: str | None = ALICE) -> dict[str, Any]:
    parts = path.strip("/").split("/")
    params, resource = None, path
    if len(parts) == 2:
        name = {"documents": "document_id", "conversations": "conversation_id"}[parts[0]]
        params, resource = {name: parts[1]}, f"/{parts[0]}/{{{name}}}"
    return rest_event(
        method=method, path=path, resource=resource, path_parameters=params,
        headers={"Content-Type": "application/json"}, body=json.dumps(body) if body is not None else None,
        claims={"sub": sub} if sub else None,
    )  # fmt: skip


class World:
    def __init__(self, bedrock: BedrockEmulator, vectors: S3VectorsEmulator) -> None:
        self.emulator = bedrock
        self.bedrock_url = bedrock.url
        self.dynamodb = boto3.client("dynamodb", region_name=REGION)
        self.s3 = boto3.client("s3", region_name=REGION, config=Config(signature_version="s3v4"))
        self.s3vectors = boto3.client(
            "s3vectors", region_name=REGION, endpoint_url=vectors.url,
            aws_access_key_id="e", aws_secret_access_key="e",
        )  # fmt: skip
        self.settings = Settings.from_env().but(
            jobs_table_name=None, jobs_queue_url=None, cache_table_name=None,
            documents_table_name="documents-test", documents_bucket=BUCKET,
            vector_bucket_name=VECTORS, vector_index_name=INDEX, embedding_dimensions=DIMENSION,
            max_document_bytes=MAX_BYTES, retrieval_top_k=3, retrieval_context_chars=2000,
        )  # fmt: skip
        create_tables(self.dynamodb, self.settings)
        create_table(self.dynamodb, "documents-test", [("pk", "HASH"), ("sk", "RANGE")])
        self.s3.create_bucket(Bucket=BUCKET)
        self.s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
        self.s3vectors.create_vector_bucket(vectorBucketName=VECTORS)
        self.s3vectors.create_index(
            vectorBucketName=VECTORS, indexName=INDEX, dataType="float32", dimension=DIMENSION,
            distanceMetric="cosine", metadataConfiguration={"nonFilterableMetadataKeys": list(NON_FILTERABLE_KEYS)},
        )  # fmt: skip
        self.index = S3VectorIndex(client=self.s3vectors, bucket_name=VECTORS, index_name=INDEX, dimension=DIMENSION)
        self.configure()

    def bedrock(self, region: str, config: Any) -> Any:
        return boto3.client(
            "bedrock-runtime", region_name=region, endpoint_url=self.bedrock_url, config=config,
            aws_access_key_id="e", aws_secret_access_key="e",
        )  # fmt: skip

    def configure(self, **changes: Any) -> None:
        self.handler = chat_handler.bootstrap(
            self.settings.but(**changes), dynamodb=self.dynamodb, bedrock_factory=self.bedrock,
            s3=self.s3, s3vectors=self.s3vectors,
        )  # fmt: skip

    def call(self, method: str, path: str, *, body: Any = None, sub: str | None = ALICE) -> tuple[int, Any]:
        response = self.handler(api_event(method, path, body=body, sub=sub), LocalContext(function_name="chat"))
        return response["statusCode"], json.loads(response["body"]) if response.get("body") else None

    def put_chunks(self, owner: str, document_id: str, texts: list[str]) -> None:
        self.index.upsert(
            [
                ChunkVector(
                    owner=owner,
                    document_id=document_id,
                    version="v1",
                    chunk_index=i,
                    vector=embedding(text, DIMENSION, True),
                    text=text,
                    page=i + 1,
                )
                for i, text in enumerate(texts)
            ]
        )


@pytest.fixture
def world() -> Iterator[World]:
    with mock_aws(), BedrockEmulator({"default": {"latency_ms": [0, 1]}}) as bedrock, S3VectorsEmulator() as vectors:
        yield World(bedrock, vectors)


def upload(world: World, *, sub: str = ALICE, name: str = "notes.txt", size: int = 11) -> tuple[int, Any]:
    return world.call("POST", "/documents", body={"name": name, "content_type": "text/plain", "size": size}, sub=sub)


# --- POST /documents ------------------------------------------------------------------------------------------
def test_the_presigned_post_is_bounded_to_the_exact_key_type_and_size(world: World) -> None:
    status, body = upload(world)

    assert status == 201
    document_id = body["document"]["document_id"]
    assert body["document"]["status"] == "uploading" and body["document"]["name"] == "notes.txt"
    fields = body["upload"]["fields"]
    key = f"documents/{ALICE}/{document_id}"
    assert fields["key"] == key and fields["Content-Type"] == "text/plain"
    policy = json.loads(base64.b64decode(fields["policy"]))
    conditions = policy["conditions"]
    assert {"key": key} in conditions  # an exact match, not starts-with
    assert {"bucket": BUCKET} in conditions
    assert {"Content-Type": "text/plain"} in conditions
    assert ["content-length-range", 1, MAX_BYTES] in conditions
    assert not any(isinstance(c, list) and c[0] == "starts-with" for c in conditions)
    assert body["upload"]["expires_in"] <= 900


def test_an_upload_with_the_form_reaches_the_bucket(world: World) -> None:
    _, body = upload(world)
    form = body["upload"]

    response = requests.post(
        form["url"], data=form["fields"], files={"file": ("notes.txt", b"hello world", "text/plain")}, timeout=10
    )

    assert response.status_code in (200, 204)
    stored = world.s3.get_object(Bucket=BUCKET, Key=form["fields"]["key"])
    assert stored["Body"].read() == b"hello world"
    assert stored["ContentType"] == "text/plain"


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        ({"name": "a.exe", "content_type": "application/x-msdownload", "size": 10}, 400, "content_type must be one of"),
        ({"name": "big.txt", "content_type": "text/plain", "size": MAX_BYTES + 1}, 413, f"limit is {MAX_BYTES}"),
        ({"name": "", "content_type": "text/plain", "size": 10}, 400, "name is required"),
        ({"name": "a", "content_type": "text/plain"}, 400, "size is required"),
        ({"name": "a", "content_type": "text/plain", "size": 1, "key": "x"}, 400, "unknown field"),
    ],
)
def test_bad_upload_requests_are_4xx_with_a_message(world: World, body: Any, status: int, words: str) -> None:
    got, payload = world.call("POST", "/documents", body=body)

    assert got == status and words in payload["message"]
    _, listing = world.call("GET", "/documents")
    assert listing == {"documents": []}


def test_without_knowledge_the_routes_say_documents_are_not_enabled(world: World) -> None:
    world.configure(vector_index_name=None)

    for method, path in (("POST", "/documents"), ("GET", "/documents"), ("GET", f"/documents/{DOC_A}")):
        status, body = world.call(method, path, body={"name": "a", "content_type": "text/plain", "size": 1})
        assert status == 404 and body["message"] == "documents are not enabled in this deployment"


# --- GET / DELETE ---------------------------------------------------------------------------------------------
def test_list_get_and_delete_own_documents(world: World) -> None:
    _, first = upload(world, name="first.txt")
    _, second = upload(world, name="second.txt")
    first_id, second_id = first["document"]["document_id"], second["document"]["document_id"]
    requests.post(
        first["upload"]["url"], data=first["upload"]["fields"],
        files={"file": ("first.txt", b"hello world", "text/plain")}, timeout=10,
    )  # fmt: skip
    world.put_chunks(ALICE, first_id, ["Hello world, the first document."])

    status, listing = world.call("GET", "/documents")
    assert status == 200
    assert [d["name"] for d in listing["documents"]] == ["second.txt", "first.txt"]  # newest first
    status, one = world.call("GET", f"/documents/{first_id}")
    assert status == 200 and one["status"] == "uploading" and one["chunk_count"] is None

    status, _ = world.call("DELETE", f"/documents/{first_id}")

    assert status == 204
    assert world.call("GET", f"/documents/{first_id}")[0] == 404
    assert [d["document_id"] for d in world.call("GET", "/documents")[1]["documents"]] == [second_id]
    versions = world.s3.list_object_versions(Bucket=BUCKET, Prefix=f"documents/{ALICE}/{first_id}")
    assert [m["IsLatest"] for m in versions.get("DeleteMarkers", [])] == [True]  # what replication carries
    assert world.index.query(ALICE, embedding("hello world first document", DIMENSION, True), 10) == []


def test_status_chunk_count_and_reason_are_this_regions(world: World) -> None:
    _, created = upload(world)
    document_id = created["document"]["document_id"]
    for region, status in (
        (
            REGION,
            {
                "state": {"S": "failed"},
                "reason": {"S": "the PDF is encrypted: remove the password"},
                "updated_at": {"S": "2026-01-01T00:00:00.000+00:00"},
            },
        ),
        ("eu-west-1", {"state": {"S": "ready"}, "chunk_count": {"N": "4"}}),
    ):  # each region's pipeline writes its own status item (adapters.documents)
        world.dynamodb.put_item(TableName="documents-test", Item={
            "pk": {"S": ALICE}, "sk": {"S": f"{document_id}#status#{region}"}, "region": {"S": region}, **status,
        })  # fmt: skip
    _, one = world.call("GET", f"/documents/{document_id}")

    assert one["status"] == "failed" and one["reason"] == "the PDF is encrypted: remove the password"


def test_another_users_document_is_404_and_stays(world: World) -> None:
    _, created = upload(world)
    document_id = created["document"]["document_id"]

    assert world.call("GET", f"/documents/{document_id}", sub=BOB)[0] == 404
    assert world.call("DELETE", f"/documents/{document_id}", sub=BOB)[0] == 404
    assert world.call("GET", "/documents", sub=BOB)[1] == {"documents": []}
    assert world.call("GET", f"/documents/{document_id}")[0] == 200


def test_a_malformed_id_is_400_and_no_identity_is_401(world: World) -> None:
    status, body = world.call("GET", "/documents/not-a-uuid")
    assert status == 400 and "document_id" in body["message"]
    assert world.call("GET", "/documents", sub=None)[0] == 401


# --- retrieval end to end -------------------------------------------------------------------------------------
def test_alices_answer_cites_her_passages_and_bobs_does_not(world: World) -> None:
    world.put_chunks(
        ALICE,
        DOC_A,
        [
            "The Tagus is the longest river of the Iberian peninsula.",
            "Porto is famous for its port wine cellars.",
        ],
    )
    world.dynamodb.put_item(
        TableName="documents-test",
        Item={"pk": {"S": ALICE}, "sk": {"S": DOC_A}, "name": {"S": "iberia.md"}, "content_type": {"S": "text/plain"},
              "size": {"N": "100"}, "created_at": {"S": "t"},
              "status": {"M": {REGION: {"M": {"state": {"S": "ready"}, "chunk_count": {"N": "2"}}}}}},
    )  # fmt: skip
    question = {"message": "Which is the longest river of the Iberian peninsula?"}

    status, alice = world.call("POST", "/chat", body=question)
    _, bob = world.call("POST", "/chat", body=question, sub=BOB)

    assert status == 200 and alice["degraded"] is False
    assert alice["retrieval"]["used"] is True
    assert alice["citations"][0]["document_id"] == DOC_A
    assert alice["citations"][0]["name"] == "iberia.md" and alice["citations"][0]["page"] == 1
    assert "Tagus" in alice["citations"][0]["snippet"]
    assert "Tagus" in alice["answer"]  # the emulator answers from what it was sent: the source reached the model
    assert bob["citations"] == [] and bob["retrieval"]["used"] is False
    assert "Tagus" not in bob["answer"]
    _, stored = world.call("GET", f"/conversations/{alice['conversation_id']}")
    assert stored["turns"][0]["citations"] == alice["citations"]


def test_when_embedding_fails_the_answer_comes_without_documents_and_says_so(world: World) -> None:
    world.put_chunks(ALICE, DOC_A, ["The Tagus is the longest river of the Iberian peninsula."])
    embedder = f"{world.settings.embedding_model_id}@{REGION}"
    world.emulator.set_faults({"default": {"latency_ms": [0, 1]}, "targets": {embedder: {"down": True}}})

    status, body = world.call("POST", "/chat", body={"message": "Which is the longest river?"})

    assert status == 200 and body["degraded"] is False
    assert body["retrieval"]["used"] is False and "could not be searched" in body["retrieval"]["reason"]
    assert body["citations"] == []


def test_with_no_model_the_degraded_answer_quotes_alices_passages(world: World) -> None:
    world.put_chunks(ALICE, DOC_A, ["The Tagus is the longest river of the Iberian peninsula."])
    model = f"{world.settings.targets[0].model_id}@{world.settings.targets[0].region}"
    world.emulator.set_faults({"default": {"latency_ms": [0, 1]}, "targets": {model: {"down": True}}})

    status, body = world.call("POST", "/chat", body={"message": "Which is the longest river?"})

    assert status == 200 and body["degraded"] is True
    assert body["target"]["model_id"] == "passages"
    assert "Tagus" in body["answer"] and body["citations"][0]["document_id"] == DOC_A


def test_api_gateway_accepts_the_same_content_types_as_the_lambda() -> None:
    from core.retrieval import ALLOWED_CONTENT_TYPES, MAX_NAME_CHARS
    from stacks.constructs.chat_api import DOCUMENT_CONTENT_TYPES, MAX_DOCUMENT_NAME_CHARS

    assert tuple(DOCUMENT_CONTENT_TYPES) == ALLOWED_CONTENT_TYPES
    assert MAX_DOCUMENT_NAME_CHARS == MAX_NAME_CHARS
