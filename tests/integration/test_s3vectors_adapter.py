"""The S3 Vectors adapter against the emulator, through a real botocore client: the code that runs on AWS.

Embeddings are the Bedrock emulator's (hashed bags of words: texts that share words are close), so ranking
assertions read like retrieval: the passage that shares the question's words comes first.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config

from adapters.s3vectors import NON_FILTERABLE_KEYS, TEXT_KEY, S3VectorIndex
from core.errors import DependencyUnavailable
from core.knowledge import ChunkVector, VectorIndex, VectorIndexMisconfigured, VectorRejected, chunk_key
from local.bedrock_emulator import embedding
from local.processes import free_port
from local.s3vectors_emulator import S3VectorsEmulator

BUCKET = "bulwark-knowledge"
INDEX = "chunks"
DIMENSION = 256
ALICE = "0b5e2a8c-1111-4c3e-9a0e-aaaaaaaaaaaa"
BOB = "7f3d9b1e-2222-4d8f-8b1a-bbbbbbbbbbbb"


def vector(text: str) -> list[float]:
    return embedding(text, DIMENSION, normalize=True)


def chunks(owner: str, document_id: str, version: str, texts: list[str], *, first_page: int = 1) -> list[ChunkVector]:
    return [
        ChunkVector(
            owner=owner,
            document_id=document_id,
            version=version,
            chunk_index=i,
            vector=vector(text),
            text=text,
            page=first_page + i,
        )
        for i, text in enumerate(texts)
    ]


def botocore_client(url: str, region: str = "eu-west-1") -> Any:
    return boto3.client(
        "s3vectors",
        region_name=region,
        endpoint_url=url,
        aws_access_key_id="emulator",
        aws_secret_access_key="emulator",
        config=Config(retries={"total_max_attempts": 1}, connect_timeout=2, read_timeout=5),
    )


def create_index(client: Any, *, non_filterable: tuple[str, ...] = NON_FILTERABLE_KEYS) -> None:
    client.create_vector_bucket(vectorBucketName=BUCKET)
    client.create_index(
        vectorBucketName=BUCKET,
        indexName=INDEX,
        dataType="float32",
        dimension=DIMENSION,
        distanceMetric="cosine",
        metadataConfiguration={"nonFilterableMetadataKeys": list(non_filterable)},
    )


@pytest.fixture
def emulator() -> Iterator[S3VectorsEmulator]:
    with S3VectorsEmulator() as emu:
        yield emu


@pytest.fixture
def client(emulator: S3VectorsEmulator) -> Any:
    c = botocore_client(emulator.url)
    create_index(c)
    return c


@pytest.fixture
def index(client: Any) -> S3VectorIndex:
    return S3VectorIndex(client=client, bucket_name=BUCKET, index_name=INDEX, dimension=DIMENSION)


def stored_keys(client: Any) -> list[str]:
    pages = client.get_paginator("list_vectors").paginate(vectorBucketName=BUCKET, indexName=INDEX)
    return sorted(v["key"] for page in pages for v in page["vectors"])


def test_the_adapter_is_a_vector_index(index: S3VectorIndex) -> None:
    port: VectorIndex = index  # checked by mypy: the adapter implements the core's port
    assert port is index


def test_upsert_then_query_returns_cited_passages_best_first(index: S3VectorIndex) -> None:
    index.upsert(
        chunks(
            ALICE,
            "doc-rivers",
            "v1",
            [
                "The Tagus is the longest river of the Iberian peninsula.",
                "Lisbon lies where the Tagus meets the Atlantic ocean.",
                "Porto is famous for its port wine cellars.",
            ],
        )
    )

    passages = index.query(ALICE, vector("Which city makes port wine?"), k=3)

    best = passages[0]
    assert best.chunk_index == 2 and best.version == "v1"  # the answer cache keys on each passage's version
    assert (best.document_id, best.page, best.text) == ("doc-rivers", 3, "Porto is famous for its port wine cellars.")
    assert [p.score for p in passages] == sorted((p.score for p in passages), reverse=True)
    assert 0.0 < best.score <= 1.0


def test_keys_are_deterministic_and_text_is_stored_as_non_filterable_metadata(
    index: S3VectorIndex, client: Any
) -> None:
    long_text = "word " * 1000  # 5 KB: would break the 2 KB filterable cap if it were filterable
    index.upsert(chunks(ALICE, "doc-1", "v7", [long_text]))

    [stored] = client.get_vectors(
        vectorBucketName=BUCKET, indexName=INDEX, keys=[chunk_key(ALICE, "doc-1", "v7", 0)], returnMetadata=True
    )["vectors"]

    assert stored["key"] == f"{ALICE}/doc-1/v7/0"
    assert stored["metadata"] == {
        "owner": ALICE,
        "document_id": "doc-1",
        "version": "v7",
        "chunk_index": 0,
        "page": 1,
        TEXT_KEY: long_text,
    }


def test_re_upserting_the_same_version_is_idempotent(index: S3VectorIndex, client: Any) -> None:
    document = chunks(ALICE, "doc-1", "v1", ["alpha beta", "gamma delta", "epsilon zeta"])
    index.upsert(document)
    first = index.query(ALICE, vector("gamma delta"), k=10)

    index.upsert(document)

    assert len(stored_keys(client)) == 3
    assert index.query(ALICE, vector("gamma delta"), k=10) == first


def test_an_owner_never_gets_another_owners_passages(index: S3VectorIndex) -> None:
    secret = "The merger with Contoso closes on March 3rd at a price of 41 dollars a share."
    index.upsert(chunks(ALICE, "shared-id", "v1", [secret]))
    index.upsert(chunks(BOB, "shared-id", "v1", ["Bob's grocery list: apples, bread, coffee."]))

    for k in (1, 5, 100):
        passages = index.query(BOB, vector(secret), k=k)  # Bob asks with Alice's very words
        assert [p.text for p in passages] == ["Bob's grocery list: apples, bread, coffee."]
    assert index.query("nobody-at-all", vector(secret), k=100) == []


def test_deleting_a_document_is_scoped_to_its_owner(index: S3VectorIndex, client: Any) -> None:
    index.upsert(chunks(ALICE, "shared-id", "v1", ["alice one", "alice two"]))
    index.upsert(chunks(BOB, "shared-id", "v1", ["bob one"]))

    assert index.delete_document(BOB, "shared-id") == 1

    assert stored_keys(client) == [f"{ALICE}/shared-id/v1/0", f"{ALICE}/shared-id/v1/1"]


def test_a_new_version_replaces_the_previous_ones(index: S3VectorIndex, client: Any) -> None:
    index.upsert(chunks(ALICE, "handbook", "v1", [f"old rule number {i}" for i in range(5)]))
    index.upsert(chunks(ALICE, "handbook", "v2", ["new rule one", "new rule two", "new rule three"]))
    index.upsert(chunks(ALICE, "other-doc", "v1", ["unrelated old rule"]))

    deleted = index.delete_document(ALICE, "handbook", keep_version="v2")

    assert deleted == 5
    assert stored_keys(client) == sorted([f"{ALICE}/handbook/v2/{i}" for i in range(3)] + [f"{ALICE}/other-doc/v1/0"])
    texts = [p.text for p in index.query(ALICE, vector("old rule"), k=10)]
    assert not any(t.startswith("old rule number") for t in texts)
    assert index.delete_document(ALICE, "handbook", keep_version="v2") == 0  # idempotent


def test_deleting_a_large_document_takes_several_rounds(
    index: S3VectorIndex, client: Any, emulator: S3VectorsEmulator
) -> None:
    index.upsert(chunks(ALICE, "big", "v1", [f"paragraph {i} about topic {i % 7}" for i in range(250)]))
    index.upsert(chunks(ALICE, "small", "v1", ["keep me"]))

    assert index.delete_document(ALICE, "big") == 250

    assert stored_keys(client) == [f"{ALICE}/small/v1/0"]
    assert emulator.calls("DeleteVectors", "eu-west-1") == 3  # 100 per round: 100 + 100 + 50
    assert index.delete_document(ALICE, "never-uploaded") == 0


def test_upserts_are_batched_within_the_api_limit(
    index: S3VectorIndex, client: Any, emulator: S3VectorsEmulator
) -> None:
    index.upsert(chunks(ALICE, "book", "v1", [f"sentence number {i}" for i in range(1001)]))

    assert emulator.calls("PutVectors", "eu-west-1") == 3  # 500 + 500 + 1
    assert len(stored_keys(client)) == 1001


def test_upserts_are_batched_within_the_payload_limit() -> None:
    with S3VectorsEmulator({"max_payload_bytes": 64 * 1024}) as emu:  # a small service limit, to need few vectors
        c = botocore_client(emu.url)
        create_index(c)
        small_requests = S3VectorIndex(
            client=c, bucket_name=BUCKET, index_name=INDEX, dimension=DIMENSION, max_request_bytes=60 * 1024
        )

        small_requests.upsert(chunks(ALICE, "report", "v1", [f"chunk {i} " + "text " * 400 for i in range(40)]))

        assert emu.calls("PutVectors", "eu-west-1") > 1
        assert emu.stats()["operations"]["PutVectors@eu-west-1"]["outcomes"] == {
            "ok": emu.calls("PutVectors", "eu-west-1")
        }
        assert len(stored_keys(c)) == 40


@pytest.mark.parametrize("code", ["TooManyRequestsException", "ServiceUnavailableException", "InternalServerException"])
def test_throttling_and_server_errors_surface_as_dependency_unavailable(code: str) -> None:
    with S3VectorsEmulator() as emu:
        c = botocore_client(emu.url)
        create_index(c)
        index = S3VectorIndex(client=c, bucket_name=BUCKET, index_name=INDEX, dimension=DIMENSION)
        emu.set_faults({"operations": {"*@eu-west-1": {"errors": {code: 1.0}}}})

        with pytest.raises(DependencyUnavailable) as query_error:
            index.query(ALICE, vector("anything"), k=5)
        with pytest.raises(DependencyUnavailable):
            index.upsert(chunks(ALICE, "doc", "v1", ["text"]))
        with pytest.raises(DependencyUnavailable):
            index.delete_document(ALICE, "doc")

    assert query_error.value.status == 503 and query_error.value.retry_after > 0
    assert "vector index" in query_error.value.message


def test_botocore_is_the_only_retry_layer() -> None:
    with S3VectorsEmulator({"operations": {"QueryVectors": {"errors": {"TooManyRequestsException": 1.0}}}}) as emu:
        c = boto3.client(
            "s3vectors",
            region_name="eu-west-1",
            endpoint_url=emu.url,
            aws_access_key_id="emulator",
            aws_secret_access_key="emulator",
            config=Config(retries={"mode": "standard", "total_max_attempts": 2}),
        )
        create_index(c)
        index = S3VectorIndex(client=c, bucket_name=BUCKET, index_name=INDEX, dimension=DIMENSION)

        with pytest.raises(DependencyUnavailable):
            index.query(ALICE, vector("anything"), k=5)

        assert emu.calls("QueryVectors", "eu-west-1") == 2  # botocore's two attempts, none added here


# --- the retrieval deadline bounds the query ---------------------------------------------------------------
class RecordingFactory:
    """Makes the emulator's clients with the Config the adapter asks for, and keeps each Config."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.configs: list[Config] = []

    def __call__(self, config: Config) -> Any:
        self.configs.append(config)
        return boto3.client("s3vectors", region_name="eu-west-1", endpoint_url=self.url,
                            aws_access_key_id="emulator", aws_secret_access_key="emulator", config=config)  # fmt: skip


def test_a_query_given_a_timeout_makes_one_attempt_on_a_client_that_ends_within_it(
    emulator: S3VectorsEmulator, client: Any
) -> None:
    factory = RecordingFactory(emulator.url)
    index = S3VectorIndex(client=client, bucket_name=BUCKET, index_name=INDEX, dimension=DIMENSION,
                          client_factory=factory)  # fmt: skip
    index.upsert(chunks(ALICE, "doc-rivers", "v1", ["The Tagus is the longest river of Iberia."]))

    assert index.query(ALICE, vector("longest river"), k=1, timeout_s=2.9)[0].document_id == "doc-rivers"
    index.query(ALICE, vector("longest river"), k=1, timeout_s=2.8)  # the same quarter second: the same client
    (config,) = factory.configs
    assert config.connect_timeout + config.read_timeout <= 2.75
    assert config.retries == {"mode": "standard", "total_max_attempts": 1}

    # WHEN the index hangs far longer than the time left
    emulator.set_faults({"operations": {"QueryVectors": {"hang_s": 120}}})
    calls = emulator.calls("QueryVectors", "eu-west-1")
    with pytest.raises(DependencyUnavailable, match="did not answer in time"):
        index.query(ALICE, vector("longest river"), k=1, timeout_s=0.6)

    # THEN the one attempt was cut by its own timeouts (0.5 s for 0.6 s left), never retried
    assert emulator.calls("QueryVectors", "eu-west-1") == calls + 1
    assert factory.configs[-1].connect_timeout + factory.configs[-1].read_timeout == 0.5


def test_a_query_with_almost_no_time_left_is_not_started(emulator: S3VectorsEmulator, client: Any) -> None:
    index = S3VectorIndex(client=client, bucket_name=BUCKET, index_name=INDEX, dimension=DIMENSION,
                          client_factory=RecordingFactory(emulator.url))  # fmt: skip

    with pytest.raises(DependencyUnavailable, match="of the search's deadline was left"):
        index.query(ALICE, vector("anything"), k=1, timeout_s=0.2)

    assert emulator.calls("QueryVectors", "eu-west-1") == 0


def test_an_unreachable_endpoint_is_dependency_unavailable() -> None:
    index = S3VectorIndex(
        client=botocore_client(f"http://127.0.0.1:{free_port()}"),
        bucket_name=BUCKET,
        index_name=INDEX,
        dimension=DIMENSION,
    )
    with pytest.raises(DependencyUnavailable, match="did not answer"):
        index.query(ALICE, vector("anything"), k=1)


def test_a_missing_index_is_a_configuration_error(emulator: S3VectorsEmulator, client: Any) -> None:
    wrong = S3VectorIndex(client=client, bucket_name=BUCKET, index_name="no-such-index", dimension=DIMENSION)
    with pytest.raises(VectorIndexMisconfigured, match=r"no-such-index.*NotFoundException"):
        wrong.query(ALICE, vector("anything"), k=1)
    elsewhere = S3VectorIndex(
        client=botocore_client(emulator.url, region="us-east-1"),
        bucket_name=BUCKET,
        index_name=INDEX,
        dimension=DIMENSION,
    )
    with pytest.raises(VectorIndexMisconfigured):  # the index exists, but in another region
        elsewhere.upsert(chunks(ALICE, "doc", "v1", ["text"]))


def test_an_index_without_the_non_filterable_text_key_rejects_long_chunks(emulator: S3VectorsEmulator) -> None:
    c = botocore_client(emulator.url)
    create_index(c, non_filterable=("something-else",))
    index = S3VectorIndex(client=c, bucket_name=BUCKET, index_name=INDEX, dimension=DIMENSION)

    with pytest.raises(VectorRejected, match="Filterable metadata must have at most 2048 bytes"):
        index.upsert(chunks(ALICE, "doc", "v1", ["word " * 1000]))


def test_bad_input_is_refused_before_any_call(index: S3VectorIndex, emulator: S3VectorsEmulator) -> None:
    wrong_size = ChunkVector(owner=ALICE, document_id="d", version="v1", chunk_index=0, vector=[1.0, 0.0], text="t")
    with pytest.raises(VectorRejected, match="2 dimensions"):
        index.upsert([wrong_size])
    with pytest.raises(VectorRejected, match="bytes of text"):
        index.upsert(chunks(ALICE, "d", "v1", ["x" * 40_000]))
    with pytest.raises(ValueError, match="k must be"):
        index.query(ALICE, vector("q"), k=101)
    with pytest.raises(ValueError, match="without '/'"):
        chunks("alice/evil", "d", "v1", ["t"])
    assert emulator.calls("PutVectors", "eu-west-1") == 0 and emulator.calls("QueryVectors", "eu-west-1") == 0


class ForeignAnswers:
    """A client whose service ignored the owner filter: the adapter must still not leak."""

    def query_vectors(self, **request: Any) -> dict[str, Any]:
        assert {"owner": {"$eq": BOB}} in [request["filter"], *request["filter"].get("$and", [])]
        metadata = {"owner": ALICE, "document_id": "d", "chunk_index": 0, TEXT_KEY: "Alice's secret"}
        return {
            "vectors": [{"key": f"{ALICE}/d/v1/0", "distance": 0.0, "metadata": metadata}],
            "distanceMetric": "cosine",
        }

    def delete_vectors(self, **request: Any) -> None:
        raise AssertionError(f"must not delete another owner's chunks: {request['keys']}")


def test_results_of_another_owner_are_dropped_even_if_the_service_returns_them() -> None:
    index = S3VectorIndex(client=ForeignAnswers(), bucket_name=BUCKET, index_name=INDEX, dimension=DIMENSION)
    assert index.query(BOB, vector("secret"), k=5) == []
    assert index.delete_document(BOB, "d") == 0
