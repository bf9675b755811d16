"""The S3 Vectors emulator answers like the service, bad requests included, to unmodified botocore clients.

Messages quoted as the service's own come from AWS-verified tests (moto's s3vectors suite) and published
measurements of the live service (the metadata size model, the 50-key limit, "Invalid use of
non-filterable metadata in filter"); the others follow the service's validation wording. The last tests
run the same calls against moto, which implements the shared operations but not QueryVectors.
"""

from __future__ import annotations

import json
import math
import struct
import sys
import urllib.request
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError, ConnectionClosedError
from moto import mock_aws

from local.processes import child, free_port
from local.s3vectors_emulator import ERROR_STATUS, S3VectorsEmulator, metadata_size
from tests.fakes import emulator_client

BUCKET = "kb-test"
INDEX = "chunks"
ACCOUNT = "123456789012"


@pytest.fixture
def emulator() -> Iterator[S3VectorsEmulator]:
    with S3VectorsEmulator() as emu:
        yield emu


def client(emulator: S3VectorsEmulator, region: str = "us-east-1", *, validate: bool = True) -> Any:
    return emulator_client("s3vectors", emulator, region, parameter_validation=validate)


def error_of(call: Any, *args: Any, **kwargs: Any) -> tuple[str, str, int]:
    """(code, message, HTTP status) of the ClientError the call raises."""
    with pytest.raises(ClientError) as caught:
        call(*args, **kwargs)
    response = caught.value.response
    return response["Error"]["Code"], response["Error"]["Message"], response["ResponseMetadata"]["HTTPStatusCode"]


def make_index(c: Any, *, dimension: int = 3, metric: str = "cosine", non_filterable: list[str] | None = None) -> None:
    c.create_vector_bucket(vectorBucketName=BUCKET)
    extra = {"metadataConfiguration": {"nonFilterableMetadataKeys": non_filterable}} if non_filterable else {}
    c.create_index(
        vectorBucketName=BUCKET,
        indexName=INDEX,
        dataType="float32",
        dimension=dimension,
        distanceMetric=metric,
        **extra,
    )


def put(c: Any, *vectors: tuple[str, list[float], dict[str, Any]]) -> None:
    c.put_vectors(
        vectorBucketName=BUCKET,
        indexName=INDEX,
        vectors=[{"key": k, "data": {"float32": v}, "metadata": m} for k, v, m in vectors],
    )


def query(c: Any, vector: list[float], **kwargs: Any) -> dict[str, Any]:
    return c.query_vectors(vectorBucketName=BUCKET, indexName=INDEX, queryVector={"float32": vector}, **kwargs)  # type: ignore[no-any-return]


def f32(value: float) -> float:
    return float(struct.unpack("f", struct.pack("f", value))[0])


# --- buckets -------------------------------------------------------------------------------------------
def test_bucket_lifecycle_by_name_and_arn(emulator: S3VectorsEmulator) -> None:
    c = client(emulator)
    arn = c.create_vector_bucket(vectorBucketName=BUCKET)["vectorBucketArn"]
    assert arn == f"arn:aws:s3vectors:us-east-1:{ACCOUNT}:bucket/{BUCKET}"

    by_name = c.get_vector_bucket(vectorBucketName=BUCKET)["vectorBucket"]
    by_arn = c.get_vector_bucket(vectorBucketArn=arn)["vectorBucket"]
    assert by_name == by_arn
    assert by_name["encryptionConfiguration"] == {"sseType": "AES256"} and by_name["creationTime"]

    c.delete_vector_bucket(vectorBucketName=BUCKET)
    assert error_of(c.get_vector_bucket, vectorBucketName=BUCKET) == (
        "NotFoundException",
        "The specified vector bucket could not be found",
        404,
    )
    c.delete_vector_bucket(vectorBucketName=BUCKET)  # deleting what is not there succeeds, as on AWS


def test_creating_a_bucket_twice_is_a_conflict(emulator: S3VectorsEmulator) -> None:
    c = client(emulator)
    c.create_vector_bucket(vectorBucketName=BUCKET)
    assert error_of(c.create_vector_bucket, vectorBucketName=BUCKET) == (
        "ConflictException",
        "A vector bucket with the specified name already exists",
        409,
    )


@pytest.mark.parametrize("name", ["sh", "x" * 64])
def test_bucket_name_length_is_validated_by_the_service_too(emulator: S3VectorsEmulator, name: str) -> None:
    c = client(emulator, validate=False)  # botocore checks the minimum itself; the service checks both
    assert error_of(c.create_vector_bucket, vectorBucketName=name) == (
        "ValidationException",
        f"1 validation error detected. Value with length {len(name)} at '/vectorBucketName' failed to satisfy "
        "constraint: Member must have length between 3 and 63, inclusive",
        400,
    )


@pytest.mark.parametrize("name", ["with_under_score", "special&char", "Upper-Case", "-leading"])
def test_bucket_name_characters_are_validated(emulator: S3VectorsEmulator, name: str) -> None:
    assert error_of(client(emulator).create_vector_bucket, vectorBucketName=name) == (
        "ValidationException",
        "Invalid vector bucket name",
        400,
    )


def test_list_buckets_by_prefix_and_page(emulator: S3VectorsEmulator) -> None:
    c = client(emulator)
    for name in ["alpha-1", "alpha-2", "alpha-3", "beta-1"]:
        c.create_vector_bucket(vectorBucketName=name)

    pages = list(c.get_paginator("list_vector_buckets").paginate(prefix="alpha", PaginationConfig={"PageSize": 2}))

    assert [[b["vectorBucketName"] for b in p["vectorBuckets"]] for p in pages] == [["alpha-1", "alpha-2"], ["alpha-3"]]


def test_a_bucket_with_indexes_cannot_be_deleted(emulator: S3VectorsEmulator) -> None:
    c = client(emulator)
    make_index(c)
    assert error_of(c.delete_vector_bucket, vectorBucketName=BUCKET) == (
        "ConflictException",
        "The specified vector bucket is not empty",
        409,
    )
    c.delete_index(vectorBucketName=BUCKET, indexName=INDEX)
    c.delete_vector_bucket(vectorBucketName=BUCKET)


def test_state_is_per_region(emulator: S3VectorsEmulator) -> None:
    east, west = client(emulator, "us-east-1"), client(emulator, "eu-west-1")
    make_index(east)
    arn = east.get_index(vectorBucketName=BUCKET, indexName=INDEX)["index"]["indexArn"]

    assert error_of(west.get_vector_bucket, vectorBucketName=BUCKET)[0] == "NotFoundException"
    assert error_of(west.get_index, indexArn=arn)[:2] == ("NotFoundException", "The specified index could not be found")
    make_index(west)  # the same names in another region are another bucket
    assert west.get_vector_bucket(vectorBucketName=BUCKET)["vectorBucket"]["vectorBucketArn"].startswith(
        "arn:aws:s3vectors:eu-west-1:"
    )
    assert emulator.stats()["regions"]["eu-west-1"] == {"buckets": 1, "indexes": 1, "vectors": 0}


# --- indexes -------------------------------------------------------------------------------------------
def test_index_lifecycle(emulator: S3VectorsEmulator) -> None:
    c = client(emulator)
    c.create_vector_bucket(vectorBucketName=BUCKET)
    arn = c.create_index(
        vectorBucketName=BUCKET,
        indexName=INDEX,
        dataType="float32",
        dimension=1024,
        distanceMetric="cosine",
        metadataConfiguration={"nonFilterableMetadataKeys": ["_page_content"]},
    )["indexArn"]
    assert arn == f"arn:aws:s3vectors:us-east-1:{ACCOUNT}:bucket/{BUCKET}/index/{INDEX}"

    index = c.get_index(indexArn=arn)["index"]
    assert {k: v for k, v in index.items() if k != "creationTime"} == {
        "vectorBucketName": BUCKET,
        "indexName": INDEX,
        "indexArn": arn,
        "dataType": "float32",
        "dimension": 1024,
        "distanceMetric": "cosine",
        "metadataConfiguration": {"nonFilterableMetadataKeys": ["_page_content"]},
        "encryptionConfiguration": {"sseType": "AES256"},
    }
    bucket_arn = c.get_vector_bucket(vectorBucketName=BUCKET)["vectorBucket"]["vectorBucketArn"]
    assert [i["indexName"] for i in c.list_indexes(vectorBucketArn=bucket_arn)["indexes"]] == [INDEX]

    c.delete_index(indexArn=arn)
    assert c.list_indexes(vectorBucketName=BUCKET)["indexes"] == []
    assert error_of(c.get_index, vectorBucketName=BUCKET, indexName=INDEX) == (
        "NotFoundException",
        "The specified index could not be found",
        404,
    )


def test_creating_an_index_twice_is_a_conflict_and_keeps_the_vectors(emulator: S3VectorsEmulator) -> None:
    c = client(emulator)
    make_index(c)
    put(c, ("a", [1.0, 0.0, 0.0], {}))

    code, _, status = error_of(
        c.create_index,
        vectorBucketName=BUCKET,
        indexName=INDEX,
        dataType="float32",
        dimension=3,
        distanceMetric="cosine",
    )

    assert (code, status) == ("ConflictException", 409)
    assert c.list_vectors(vectorBucketName=BUCKET, indexName=INDEX)["vectors"] == [{"key": "a"}]


def test_an_index_needs_an_existing_bucket(emulator: S3VectorsEmulator) -> None:
    c = client(emulator)
    assert error_of(
        c.create_index,
        vectorBucketName="nope",
        indexName=INDEX,
        dataType="float32",
        dimension=3,
        distanceMetric="cosine",
    ) == ("NotFoundException", "The specified vector bucket could not be found", 404)
    assert error_of(c.list_indexes, vectorBucketName="nope")[:2] == (
        "NotFoundException",
        "The specified vector bucket could not be found",
    )


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("dimension", 4097, "Value at '/dimension' failed to satisfy constraint: Member must be between 1 and 4096"),
        ("dimension", 0, "Value at '/dimension' failed to satisfy constraint: Member must be between 1 and 4096"),
        ("dataType", "int", "Value at '/dataType' failed to satisfy constraint: Member must satisfy enum value set"),
        ("distanceMetric", "dot", "Member must satisfy enum value set: [euclidean, cosine]"),
        ("indexName", "Bad_Name", "Invalid index name"),
        (
            "metadataConfiguration",
            {"nonFilterableMetadataKeys": [f"k{i}" for i in range(11)]},
            "Value with length 11 at '/metadataConfiguration/nonFilterableMetadataKeys' failed to satisfy constraint: "
            "Member must have length between 1 and 10, inclusive",
        ),
    ],
)
def test_index_settings_are_validated(emulator: S3VectorsEmulator, field: str, value: Any, message: str) -> None:
    c = client(emulator, validate=False)
    c.create_vector_bucket(vectorBucketName=BUCKET)
    request = {"vectorBucketName": BUCKET, "indexName": INDEX, "dataType": "float32", "dimension": 3}
    request |= {"distanceMetric": "cosine", field: value}

    code, text, status = error_of(c.create_index, **request)

    assert (code, status) == ("ValidationException", 400) and message in text


def test_the_largest_dimension_is_allowed(emulator: S3VectorsEmulator) -> None:
    c = client(emulator)
    make_index(c, dimension=4096)
    put(c, ("big", [1.0] * 4096, {}))
    assert query(c, [1.0] * 4096, topK=1)["vectors"] == [{"key": "big"}]


def test_an_index_is_named_either_by_arn_or_by_bucket_and_name(emulator: S3VectorsEmulator) -> None:
    c = client(emulator)
    make_index(c)
    arn = c.get_index(vectorBucketName=BUCKET, indexName=INDEX)["index"]["indexArn"]
    expected = ("ValidationException", "Must specify either indexArn or both vectorBucketName and indexName", 400)

    assert error_of(c.get_index, vectorBucketName=BUCKET, indexArn=arn) == expected
    assert error_of(c.get_vectors, vectorBucketName=BUCKET, indexArn=arn, indexName=INDEX, keys=["a"]) == expected
    assert error_of(c.list_vectors, indexName=INDEX) == expected
    assert error_of(c.list_indexes, vectorBucketName=BUCKET, vectorBucketArn=arn.split("/index/")[0]) == (
        "ValidationException",
        "Must specify either vectorBucketName or vectorBucketArn but not both",
        400,
    )


# --- vectors -------------------------------------------------------------------------------------------
def test_put_and_get_store_float32_and_return_only_what_is_asked(emulator: S3VectorsEmulator) -> None:
    c = client(emulator)
    make_index(c)
    put(c, ("a", [0.1, 0.2, 0.3], {"owner": "u1", "page": 2}), ("b", [1.0, 0.0, 0.0], {}))

    plain = c.get_vectors(vectorBucketName=BUCKET, indexName=INDEX, keys=["a", "missing", "b"])["vectors"]
    full = c.get_vectors(
        vectorBucketName=BUCKET, indexName=INDEX, keys=["a", "b"], returnData=True, returnMetadata=True
    )["vectors"]

    assert plain == [{"key": "a"}, {"key": "b"}]  # unknown keys are left out, not an error
    assert full[0] == {
        "key": "a",
        "data": {"float32": [f32(0.1), f32(0.2), f32(0.3)]},
        "metadata": {"owner": "u1", "page": 2},
    }
    assert full[1]["metadata"] == {}  # no metadata reads back as an empty object


def test_put_on_an_existing_key_replaces_the_vector(emulator: S3VectorsEmulator) -> None:
    c = client(emulator)
    make_index(c)
    put(c, ("a", [1.0, 0.0, 0.0], {"first": "metadata"}))
    put(c, ("a", [0.0, 1.0, 0.0], {"second": "metadata"}))

    [vector] = c.get_vectors(
        vectorBucketName=BUCKET, indexName=INDEX, keys=["a"], returnData=True, returnMetadata=True
    )["vectors"]

    assert vector == {"key": "a", "data": {"float32": [0.0, 1.0, 0.0]}, "metadata": {"second": "metadata"}}


def test_wrong_dimension_is_refused_with_the_services_message(emulator: S3VectorsEmulator) -> None:
    c = client(emulator)
    make_index(c, dimension=5)
    assert error_of(
        c.put_vectors, vectorBucketName=BUCKET, indexName=INDEX, vectors=[{"key": "v1", "data": {"float32": [1.0]}}]
    ) == ("ValidationException", "Invalid record for key 'v1': vector must have length 5, but has length 1", 400)


@pytest.mark.parametrize(
    ("data", "metric", "message"),
    [
        ([0.0, 0.0, 0.0], "cosine", "must not be a zero vector"),
        ([math.nan, 1.0, 1.0], "euclidean", "no NaN or Infinity"),
        ([1e39, 1.0, 1.0], "euclidean", "no NaN or Infinity"),  # beyond float32
    ],
)
def test_invalid_vector_values_are_refused(
    emulator: S3VectorsEmulator, data: list[float], metric: str, message: str
) -> None:
    c = client(emulator)
    make_index(c, metric=metric)
    code, text, _ = error_of(
        c.put_vectors, vectorBucketName=BUCKET, indexName=INDEX, vectors=[{"key": "v", "data": {"float32": data}}]
    )
    assert code == "ValidationException" and text.startswith("Invalid record for key 'v'") and message in text


def test_a_put_is_all_or_nothing(emulator: S3VectorsEmulator) -> None:
    c = client(emulator)
    make_index(c)
    good = {"key": "good", "data": {"float32": [1.0, 0.0, 0.0]}}
    bad = {"key": "bad", "data": {"float32": [1.0]}}

    error_of(c.put_vectors, vectorBucketName=BUCKET, indexName=INDEX, vectors=[good, bad])

    assert c.list_vectors(vectorBucketName=BUCKET, indexName=INDEX)["vectors"] == []


def test_request_sizes_follow_the_documented_limits(emulator: S3VectorsEmulator) -> None:
    c = client(emulator)
    make_index(c, dimension=1)
    too_many = [{"key": f"k{i}", "data": {"float32": [1.0]}} for i in range(501)]
    long_key = [{"key": "k" * 1025, "data": {"float32": [1.0]}}]

    put_code, put_text, _ = error_of(c.put_vectors, vectorBucketName=BUCKET, indexName=INDEX, vectors=too_many)
    get_code, get_text, _ = error_of(
        c.get_vectors, vectorBucketName=BUCKET, indexName=INDEX, keys=[f"k{i}" for i in range(101)]
    )
    del_code, del_text, _ = error_of(
        c.delete_vectors, vectorBucketName=BUCKET, indexName=INDEX, keys=[f"k{i}" for i in range(501)]
    )
    key_code, key_text, _ = error_of(c.put_vectors, vectorBucketName=BUCKET, indexName=INDEX, vectors=long_key)

    assert put_code == get_code == del_code == key_code == "ValidationException"
    assert "Value with length 501 at '/vectors'" in put_text and "between 1 and 500" in put_text
    assert "Value with length 101 at '/keys'" in get_text and "between 1 and 100" in get_text
    assert "Value with length 501 at '/keys'" in del_text
    assert "Value with length 1025 at '/vectors/0/key'" in key_text and "between 1 and 1024" in key_text
    c.put_vectors(vectorBucketName=BUCKET, indexName=INDEX, vectors=too_many[:500])  # the limit itself is fine


def test_metadata_is_counted_with_the_services_size_model() -> None:
    # Boundaries measured against the live service: 2035 one-byte characters under a one-letter key fit in
    # 2048 bytes, 1017 two-byte characters do, 1018 do not; numbers count 4, booleans 0, list elements 4 + size.
    assert metadata_size({"f": "x" * 2035}) == 2048
    assert metadata_size({"f": "é" * 1017}) == 2047
    assert metadata_size({"n": 0.1234567890123456, "b": True, "a": ["ab", 1.5]}) == 4 + (8 + 1 + 4) + (8 + 1 + 0) + (
        8 + 1 + (4 + 2) + (4 + 4)
    )


def test_filterable_and_total_metadata_limits(emulator: S3VectorsEmulator) -> None:
    c = client(emulator)
    make_index(c, dimension=1, non_filterable=["bulk"])

    def attempt(metadata: dict[str, Any]) -> str | None:
        try:
            put(c, ("probe", [1.0], metadata))
            return None
        except ClientError as error:
            return str(error.response["Error"]["Message"])

    assert attempt({"f": "x" * 2035}) is None
    assert (
        attempt({"f": "x" * 2036}) == "Invalid record for key 'probe': Filterable metadata must have at most 2048 bytes"
    )
    assert attempt({"f": "é" * 1018}) is not None
    assert attempt({"bulk": "x" * 40944}) is None  # non-filterable text may be large...
    assert (
        attempt({"bulk": "x" * 40945})
        == "Invalid record for key 'probe': Metadata object must have at most 40960 bytes"
    )
    assert attempt({f"k{i:02}": 1 for i in range(50)}) is None
    assert (
        attempt({f"k{i:02}": 1 for i in range(51)})
        == "Invalid record for key 'probe': Metadata object must have at most 50 keys"
    )
    assert attempt({"nested": {"no": "objects"}}) is not None


def test_list_vectors_pages_through_everything_once(emulator: S3VectorsEmulator) -> None:
    c = client(emulator)
    make_index(c, dimension=1)
    keys = [f"key-{i:03}" for i in range(25)]
    put(c, *[(k, [1.0], {"n": i}) for i, k in enumerate(keys)])

    pages = list(
        c.get_paginator("list_vectors").paginate(
            vectorBucketName=BUCKET, indexName=INDEX, returnMetadata=True, PaginationConfig={"PageSize": 7}
        )
    )

    assert [len(p["vectors"]) for p in pages] == [7, 7, 7, 4]
    assert [v["key"] for p in pages for v in p["vectors"]] == keys
    assert pages[0]["vectors"][0] == {"key": "key-000", "metadata": {"n": 0}}
    assert "nextToken" not in pages[-1]


def test_parallel_list_segments_split_the_index_without_overlap(emulator: S3VectorsEmulator) -> None:
    c = client(emulator)
    make_index(c, dimension=1)
    keys = {f"k{i}" for i in range(60)}
    put(c, *[(k, [1.0], {}) for k in keys])

    segments = [
        {
            v["key"]
            for p in c.get_paginator("list_vectors").paginate(
                vectorBucketName=BUCKET,
                indexName=INDEX,
                segmentCount=4,
                segmentIndex=s,
                PaginationConfig={"PageSize": 5},
            )
            for v in p["vectors"]
        }
        for s in range(4)
    ]

    assert set().union(*segments) == keys and sum(len(s) for s in segments) == len(keys)
    assert all(segments)
    assert error_of(c.list_vectors, vectorBucketName=BUCKET, indexName=INDEX, segmentCount=2, segmentIndex=2)[0] == (
        "ValidationException"
    )
    assert (
        error_of(c.list_vectors, vectorBucketName=BUCKET, indexName=INDEX, segmentCount=2)[0] == "ValidationException"
    )
    assert (
        error_of(c.list_vectors, vectorBucketName=BUCKET, indexName=INDEX, maxResults=1001)[0] == "ValidationException"
    )
    assert error_of(c.list_vectors, vectorBucketName=BUCKET, indexName=INDEX, nextToken="garbage")[0] == (
        "ValidationException"
    )


def test_delete_vectors_ignores_unknown_keys(emulator: S3VectorsEmulator) -> None:
    c = client(emulator)
    make_index(c)
    put(c, ("a", [1.0, 0.0, 0.0], {}), ("b", [0.0, 1.0, 0.0], {}))

    c.delete_vectors(vectorBucketName=BUCKET, indexName=INDEX, keys=["b", "never-there"])

    assert c.list_vectors(vectorBucketName=BUCKET, indexName=INDEX)["vectors"] == [{"key": "a"}]


# --- queries -------------------------------------------------------------------------------------------
def test_query_ranks_by_cosine_distance(emulator: S3VectorsEmulator) -> None:
    c = client(emulator)
    make_index(c, metric="cosine")
    put(
        c,
        ("same", [2.0, 0.0, 0.0], {}),
        ("near", [1.0, 1.0, 0.0], {}),
        ("far", [-1.0, 0.0, 0.0], {}),
        ("orthogonal", [0.0, 0.0, 3.0], {}),
    )

    response = query(c, [1.0, 0.0, 0.0], topK=3, returnDistance=True)

    assert response["distanceMetric"] == "cosine"
    assert [(v["key"], round(v["distance"], 5)) for v in response["vectors"]] == [
        ("same", 0.0),
        ("near", round(1 - 1 / math.sqrt(2), 5)),
        ("orthogonal", 1.0),
    ]


def test_query_ranks_by_euclidean_distance(emulator: S3VectorsEmulator) -> None:
    c = client(emulator)
    make_index(c, metric="euclidean")
    put(c, ("origin", [0.0, 0.0, 0.0], {}), ("three", [3.0, 4.0, 0.0], {}), ("one", [1.0, 0.0, 0.0], {}))

    response = query(c, [0.0, 0.0, 0.0], topK=100, returnDistance=True)

    assert response["distanceMetric"] == "euclidean"
    assert [(v["key"], v["distance"]) for v in response["vectors"]] == [("origin", 0.0), ("one", 1.0), ("three", 5.0)]


def test_query_returns_keys_only_unless_asked(emulator: S3VectorsEmulator) -> None:
    c = client(emulator)
    make_index(c, non_filterable=["text"])
    put(c, ("a", [1.0, 0.0, 0.0], {"owner": "u1", "text": "x" * 3000}))

    assert query(c, [1.0, 0.0, 0.0], topK=1)["vectors"] == [{"key": "a"}]
    [found] = query(c, [1.0, 0.0, 0.0], topK=1, returnMetadata=True)["vectors"]
    assert found == {"key": "a", "metadata": {"owner": "u1", "text": "x" * 3000}}  # non-filterable comes back too


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"topK": 101}, "Value at '/topK' failed to satisfy constraint: Member must be between 1 and 100, inclusive"),
        ({"topK": 0}, "Value at '/topK' failed to satisfy constraint: Member must be between 1 and 100, inclusive"),
        ({"topK": 1, "queryVector": {"float32": [1.0, 0.0]}}, "Query vector must have length 3, but has length 2"),
        ({"topK": 1, "queryVector": {"float32": [0.0, 0.0, 0.0]}}, "must not be a zero vector"),
        ({"topK": 1, "filter": {"text": "x"}}, "Invalid use of non-filterable metadata in filter"),
        ({"topK": 1, "filter": {"owner": {"$regex": "u"}}}, "unsupported operator $regex"),
        ({"topK": 1, "filter": {"$not": {"owner": "u1"}}}, "unsupported operator $not"),
        ({"topK": 1, "filter": {"owner": {"$in": []}}}, "$in requires a non-empty array"),
        ({"topK": 1, "filter": {"page": {"$gt": "2"}}}, "$gt requires a number"),
        ({"topK": 1, "filter": {"$and": []}}, "$and requires a non-empty array"),
        ({"topK": 1, "filter": {"owner": {"$exists": "yes"}}}, "$exists requires a boolean"),
        ({"topK": 1, "queryTexts": [{"text": "hi", "metadataKey": "text"}]}, "not full-text searchable"),
    ],
)
def test_bad_queries_are_validation_errors(emulator: S3VectorsEmulator, kwargs: dict[str, Any], message: str) -> None:
    c = client(emulator, validate=False)
    make_index(c, non_filterable=["text"])
    request = {"vectorBucketName": BUCKET, "indexName": INDEX, "queryVector": {"float32": [1.0, 0.0, 0.0]}} | kwargs

    code, text, status = error_of(c.query_vectors, **request)

    assert (code, status) == ("ValidationException", 400) and message in text


def test_query_on_an_unknown_index_is_not_found(emulator: S3VectorsEmulator) -> None:
    c = client(emulator)
    c.create_vector_bucket(vectorBucketName=BUCKET)
    assert error_of(
        c.query_vectors, vectorBucketName=BUCKET, indexName="nope", queryVector={"float32": [1.0]}, topK=1
    ) == ("NotFoundException", "The specified index could not be found", 404)


DOCS = [
    ("a1", {"owner": "alice", "page": 1, "tags": ["draft", "finance"], "public": True}),
    ("a2", {"owner": "alice", "page": 5, "tags": ["finance"]}),
    ("b1", {"owner": "bob", "page": 2, "public": False}),
    ("b2", {"owner": "bob", "page": "2"}),
    ("c1", {"owner": "carol", "level": 1}),
]


@pytest.mark.parametrize(
    ("flt", "expected"),
    [
        ({"owner": "alice"}, {"a1", "a2"}),
        ({"owner": {"$eq": "bob"}}, {"b1", "b2"}),
        ({"owner": {"$ne": "alice"}}, {"b1", "b2", "c1"}),
        ({"owner": {"$in": ["alice", "carol"]}}, {"a1", "a2", "c1"}),
        ({"owner": {"$nin": ["alice", "carol"]}}, {"b1", "b2"}),
        ({"page": {"$gt": 1}}, {"a2", "b1"}),  # "2" is a string: never a number
        ({"page": {"$gte": 2, "$lt": 5}}, {"b1"}),
        ({"page": {"$lte": 1}}, {"a1"}),
        ({"page": 2}, {"b1"}),
        ({"page": "2"}, {"b2"}),
        ({"public": True}, {"a1"}),
        ({"level": True}, set()),  # true never equals 1
        ({"public": {"$exists": True}}, {"a1", "b1"}),
        ({"public": {"$exists": False}}, {"a2", "b2", "c1"}),
        ({"public": {"$ne": True}}, {"a2", "b1", "b2", "c1"}),  # a missing field is "not equal"
        ({"tags": "finance"}, {"a1", "a2"}),  # $eq against a list matches any element
        ({"tags": {"$in": ["draft", "legal"]}}, {"a1"}),
        ({"tags": {"$nin": ["draft"]}}, {"a2", "b1", "b2", "c1"}),
        ({"$and": [{"owner": "alice"}, {"page": {"$gt": 1}}]}, {"a2"}),
        ({"$or": [{"owner": "carol"}, {"page": 2}]}, {"b1", "c1"}),
        ({"owner": "alice", "page": 1}, {"a1"}),  # several keys: AND
        ({"$or": [{"$and": [{"owner": "bob"}, {"public": False}]}, {"level": {"$gte": 1}}]}, {"b1", "c1"}),
    ],
)
def test_metadata_filter_language(emulator: S3VectorsEmulator, flt: dict[str, Any], expected: set[str]) -> None:
    c = client(emulator)
    make_index(c, dimension=2)
    put(c, *[(key, [1.0, float(i)], metadata) for i, (key, metadata) in enumerate(DOCS)])

    found = {v["key"] for v in query(c, [1.0, 0.0], topK=100, filter=flt)["vectors"]}

    assert found == expected


def test_filters_apply_before_top_k(emulator: S3VectorsEmulator) -> None:
    """A selective filter still yields top-k matches, however far they are (exact search, filter first)."""
    c = client(emulator)
    make_index(c, dimension=2)
    put(c, *[(f"near{i}", [1.0, 0.001 * i], {"owner": "other"}) for i in range(50)])
    put(c, ("far", [-1.0, 0.5], {"owner": "me"}))

    assert query(c, [1.0, 0.0], topK=1, filter={"owner": "me"})["vectors"] == [{"key": "far"}]


# --- faults, admin and the process ---------------------------------------------------------------------
@pytest.mark.parametrize("code", ["TooManyRequestsException", "ServiceUnavailableException", "InternalServerException"])
def test_injected_errors_have_the_services_code_and_status(code: str) -> None:
    with S3VectorsEmulator({"operations": {"QueryVectors": {"errors": {code: 1.0}}}}) as emu:
        c = client(emu)
        make_index(c)  # other operations are unaffected
        assert error_of(query, c, [1.0, 0.0, 0.0], topK=1)[::2] == (code, ERROR_STATUS[code])


def test_faults_are_scoped_by_region_and_the_write_group() -> None:
    config = {"operations": {"writes@eu-west-1": {"errors": {"TooManyRequestsException": 1.0}}}}
    with S3VectorsEmulator(config) as emu:
        east, west = client(emu, "us-east-1"), client(emu, "eu-west-1")
        make_index(east)
        make_index(west)
        put(east, ("a", [1.0, 0.0, 0.0], {}))

        assert error_of(put, west, ("a", [1.0, 0.0, 0.0], {}))[0] == "TooManyRequestsException"
        assert error_of(west.delete_vectors, vectorBucketName=BUCKET, indexName=INDEX, keys=["a"])[0] == (
            "TooManyRequestsException"
        )
        assert query(west, [1.0, 0.0, 0.0], topK=1)["vectors"] == []
        assert emu.stats()["operations"]["PutVectors@eu-west-1"] == {
            "calls": 1,
            "outcomes": {"TooManyRequestsException": 1},
        }


def test_write_quota_is_a_token_bucket_per_index() -> None:
    # One request of burst, refilled at one per 1000 s: the second write is throttled whatever the machine's speed.
    with S3VectorsEmulator({"operations": {"writes": {"rps": 0.001}}}) as emu:
        c = client(emu)
        make_index(c)
        put(c, ("a", [1.0, 0.0, 0.0], {}))
        assert error_of(put, c, ("b", [1.0, 0.0, 0.0], {}))[::2] == ("TooManyRequestsException", 429)
        c.create_index(
            vectorBucketName=BUCKET, indexName="other", dataType="float32", dimension=3, distanceMetric="cosine"
        )
        c.put_vectors(
            vectorBucketName=BUCKET, indexName="other", vectors=[{"key": "a", "data": {"float32": [1.0, 0, 0]}}]
        )


def test_outages_and_connection_resets() -> None:
    with S3VectorsEmulator({"operations": {"GetIndex": {"down": True}, "ListIndexes": {"reset_rate": 1.0}}}) as emu:
        c = client(emu)
        c.create_vector_bucket(vectorBucketName=BUCKET)
        assert error_of(c.get_index, vectorBucketName=BUCKET, indexName=INDEX)[::2] == (
            "ServiceUnavailableException",
            503,
        )
        with pytest.raises(ConnectionClosedError):
            c.list_indexes(vectorBucketName=BUCKET)


def test_admin_endpoints_change_faults_report_stats_and_reset(emulator: S3VectorsEmulator) -> None:
    def post(path: str, payload: dict[str, Any]) -> None:
        request = urllib.request.Request(emulator.url + path, data=json.dumps(payload).encode(), method="POST")
        with urllib.request.urlopen(request) as response:
            assert response.status == 200

    c = client(emulator)
    make_index(c)
    put(c, ("a", [1.0, 0.0, 0.0], {}))
    post("/_emulator/faults", {"default": {"down": True}})
    assert error_of(query, c, [1.0, 0.0, 0.0], topK=1)[0] == "ServiceUnavailableException"

    with urllib.request.urlopen(emulator.url + "/_emulator/stats") as response:
        stats = json.load(response)
    assert stats["regions"]["us-east-1"] == {"buckets": 1, "indexes": 1, "vectors": 1}
    assert stats["operations"]["QueryVectors@us-east-1"] == {"calls": 1, "outcomes": {"ServiceUnavailableException": 1}}

    post("/_emulator/reset", {})
    assert emulator.stats() == {"operations": {}, "regions": {}}
    assert c.list_vector_buckets()["vectorBuckets"] == []  # data gone, faults back to the initial config


def test_bad_fault_config_is_refused_with_a_message() -> None:
    with pytest.raises(ValueError, match="unknown error code"):
        S3VectorsEmulator({"default": {"errors": {"Nope": 1.0}}})
    with pytest.raises(ValueError, match="unknown config keys"):
        S3VectorsEmulator({"targets": {}})


def test_runs_as_a_process() -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    args = [sys.executable, "-m", "local.s3vectors_emulator", "--port", str(port)]
    with child(args, health_url=url + "/_emulator/health"):
        c = boto3.client(
            "s3vectors", region_name="eu-west-1", endpoint_url=url, aws_access_key_id="x", aws_secret_access_key="y"
        )
        assert c.create_vector_bucket(vectorBucketName=BUCKET)["vectorBucketArn"].startswith(
            "arn:aws:s3vectors:eu-west-1:"
        )


# --- the same calls against moto (which has no QueryVectors) -------------------------------------------
def _shared_operations(c: Any) -> list[Any]:
    """The operations both implement, as comparable answers (creation times left out: moto has none)."""
    answers: list[Any] = []

    def record(call: Any, **kwargs: Any) -> None:
        try:
            response = call(**kwargs)
        except ClientError as error:
            answers.append((error.response["Error"], error.response["ResponseMetadata"]["HTTPStatusCode"]))
            return
        response.pop("ResponseMetadata")
        answers.append(json.loads(json.dumps(response, default=lambda _: "<time>").replace('"<time>"', "null")))

    c.create_vector_bucket(vectorBucketName=BUCKET)
    record(c.create_vector_bucket, vectorBucketName=BUCKET)
    record(c.get_vector_bucket, vectorBucketName="nope")
    c.create_index(vectorBucketName=BUCKET, indexName=INDEX, dataType="float32", dimension=2, distanceMetric="cosine")
    record(
        c.put_vectors,
        vectorBucketName=BUCKET,
        indexName=INDEX,
        vectors=[{"key": "a", "data": {"float32": [1.0, 0.5]}, "metadata": {"owner": "u1", "page": 3}}],
    )
    record(c.put_vectors, vectorBucketName=BUCKET, indexName=INDEX, vectors=[{"key": "b", "data": {"float32": [1.0]}}])
    record(c.get_vectors, vectorBucketName=BUCKET, indexName=INDEX, keys=["a", "zz"])
    record(c.get_vectors, vectorBucketName=BUCKET, indexName=INDEX, keys=["a"], returnData=True, returnMetadata=True)
    record(c.list_vectors, vectorBucketName=BUCKET, indexName=INDEX, returnMetadata=True)
    record(c.get_vectors, vectorBucketName=BUCKET, indexName="nope", keys=["a"])
    record(
        c.get_index,
        vectorBucketName=BUCKET,
        indexName=INDEX,
        indexArn=f"arn:aws:s3vectors:us-east-1:{ACCOUNT}:bucket/{BUCKET}/index/{INDEX}",
    )
    record(c.delete_vectors, vectorBucketName=BUCKET, indexName=INDEX, keys=["a", "never-there"])
    record(c.list_vectors, vectorBucketName=BUCKET, indexName=INDEX)
    record(c.delete_vector_bucket, vectorBucketName=BUCKET)
    return answers


def test_shared_operations_answer_as_moto_does(emulator: S3VectorsEmulator) -> None:
    ours = _shared_operations(client(emulator))
    with mock_aws():
        theirs = _shared_operations(boto3.client("s3vectors", region_name="us-east-1"))
    assert ours == theirs


def test_where_moto_differs_the_emulator_follows_the_model_and_the_service(emulator: S3VectorsEmulator) -> None:
    """moto 5.2.5 leaves out required output members and some checks; these are the emulator's answers."""
    c = client(emulator)
    assert "vectorBucketArn" in c.create_vector_bucket(vectorBucketName=BUCKET)  # required in the model
    assert "creationTime" in c.get_vector_bucket(vectorBucketName=BUCKET)["vectorBucket"]
    assert "indexArn" in c.create_index(
        vectorBucketName=BUCKET, indexName="max", dataType="float32", dimension=4096, distanceMetric="cosine"
    )  # moto refuses 4096
    c.delete_vector_bucket(vectorBucketName="never-there")  # 200 on AWS (moto: 404)
