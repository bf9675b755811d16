"""An Amazon S3 Vectors-compatible HTTP server for loopback, with fault injection.

moto implements S3 Vectors buckets, indexes and put/get/list/delete, but not `QueryVectors`, and the
sandbox must run the same adapter code as AWS (DESIGN: local mode swaps endpoints, not code). So this
server answers the `s3vectors` REST-JSON API (botocore's model `s3vectors/2025-07-15`: every operation is
`POST /<OperationName>` with a JSON body) to unmodified boto3 clients given `endpoint_url`:

    CreateVectorBucket GetVectorBucket ListVectorBuckets DeleteVectorBucket
    CreateIndex GetIndex ListIndexes DeleteIndex
    PutVectors GetVectors ListVectors DeleteVectors QueryVectors

QueryVectors is an exact nearest-neighbour search (cosine or euclidean, as the index declares) with the
documented metadata filter language ($eq $ne $gt $gte $lt $lte $in $nin $exists $and $or) over filterable
metadata only. Limits and messages follow the API reference and the published measurements of the
service (quoted where a message is the service's own, see `tests/unit/local/test_s3vectors_emulator.py`):
top-k 1..100, dimension 1..4096, 500 vectors per PutVectors/DeleteVectors, 100 per GetVectors, keys of
1..1024 characters, at most 50 metadata keys, 2,048 bytes of filterable and 40,960 bytes of total
metadata per vector (counted with the service's size model, not the JSON text), 10 non-filterable keys.
Vectors are stored as float32, as the service does. State is in memory, per region (read from the SigV4
credential scope) and guarded by one lock.

Faults are set per operation (`QueryVectors`, `PutVectors@eu-west-1`, `writes` = Put+DeleteVectors,
`*@eu-west-1`, or `default`): error probabilities (429 TooManyRequestsException, 503
ServiceUnavailableException, ...), a request-rate quota per index (token bucket, 429), latency, hangs,
connection resets and hard outages. `POST /_emulator/faults` changes them at run time, `GET
/_emulator/stats` reads per-operation counters and data sizes, `POST /_emulator/reset` clears data,
counters and quotas.

    python -m local.s3vectors_emulator --port 8090 --config faults.json
"""

from __future__ import annotations

import base64
import bisect
import json
import math
import random
import re
import struct
import threading
import time
import zlib
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from local.emulator_server import EmulatorHandler, EmulatorServer, Faults, FaultState, LoopbackEmulator, TokenBucket

# Error codes of the s3vectors model and the HTTP status the service answers them with.
ERROR_STATUS = {
    "ValidationException": 400,
    "AccessDeniedException": 403,
    "NotFoundException": 404,
    "RequestTimeoutException": 408,
    "ConflictException": 409,
    "ServiceQuotaExceededException": 402,
    "TooManyRequestsException": 429,
    "InternalServerException": 500,
    "ServiceUnavailableException": 503,
}
# Documented limits (S3 User Guide, "Limitations and restrictions"; botocore's model for list sizes).
MAX_DIMENSION = 4096
MAX_TOP_K = 100
MAX_PUT_VECTORS = 500
MAX_DELETE_VECTORS = 500
MAX_GET_VECTORS = 100
MAX_LIST_VECTORS = 1000
DEFAULT_LIST_VECTORS = 500
MAX_LIST_BUCKETS_OR_INDEXES = 500
MAX_SEGMENTS = 16
MAX_KEY_CHARS = 1024
MAX_METADATA_KEYS = 50
MAX_FILTERABLE_BYTES = 2048
MAX_METADATA_BYTES = 40960
MAX_NON_FILTERABLE_KEYS = 10
MAX_PAYLOAD_BYTES = 20 * 1024 * 1024
DEFAULT_ACCOUNT = "123456789012"  # moto's default account, so ARNs agree with the embedded AWS

WRITE_OPERATIONS = frozenset({"PutVectors", "DeleteVectors"})  # share the per-index write quota
_BUCKET_NAME = re.compile(r"[a-z0-9][a-z0-9-]*[a-z0-9]")
_INDEX_NAME = re.compile(r"[a-z0-9][a-z0-9.-]*[a-z0-9]")
_NAME = r"[a-z0-9][a-z0-9-.]{1,61}[a-z0-9]"
_BUCKET_ARN = re.compile(rf"arn:aws[-a-z0-9]*:s3vectors:([a-z0-9-]+):([0-9]{{12}}):bucket/({_NAME})")
_INDEX_ARN = re.compile(rf"arn:aws[-a-z0-9]*:s3vectors:([a-z0-9-]+):([0-9]{{12}}):bucket/({_NAME})/index/({_NAME})")
_NON_FINITE = ("NaN", "Infinity", "-Infinity")
_INDEX_REF = "Must specify either indexArn or both vectorBucketName and indexName"
_BUCKET_REF = "Must specify either vectorBucketName or vectorBucketArn but not both"
_NO_INDEX = "The specified index could not be found"
_NO_BUCKET = "The specified vector bucket could not be found"


class ApiError(Exception):
    """An error answer: the code (a key of ERROR_STATUS) and the service's message."""

    def __init__(self, code: str, message: str, *, path: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.path = path


def _invalid(message: str, path: str | None = None) -> ApiError:
    return ApiError("ValidationException", message, path=path)


# --- request validation, in the wording of the service's own validation errors ------------------------
def _required(body: dict[str, Any], name: str) -> Any:
    if body.get(name) is None:
        raise _invalid(
            f"1 validation error detected. Value null at '/{name}' failed to satisfy constraint: "
            "Member must not be null",
            f"/{name}",
        )
    return body[name]


def _length(value: Any, path: str, low: int, high: int) -> None:
    if len(value) < low or len(value) > high:
        raise _invalid(
            f"1 validation error detected. Value with length {len(value)} at '{path}' failed to satisfy "
            f"constraint: Member must have length between {low} and {high}, inclusive",
            path,
        )


def _string(body: dict[str, Any], name: str, low: int, high: int) -> str:
    value = _required(body, name)
    if not isinstance(value, str):
        raise _invalid(f"Value at '/{name}' must be a string", f"/{name}")
    _length(value, f"/{name}", low, high)
    return value


def _integer(body: dict[str, Any], name: str, low: int, high: int, default: int | None = None) -> int:
    value = body.get(name, default)
    if value is None:
        value = _required(body, name)
    if isinstance(value, bool) or not isinstance(value, int):
        raise _invalid(f"Value at '/{name}' must be an integer", f"/{name}")
    if not low <= value <= high:
        raise _invalid(
            f"1 validation error detected. Value at '/{name}' failed to satisfy constraint: "
            f"Member must be between {low} and {high}, inclusive",
            f"/{name}",
        )
    return value


def _enum(value: Any, path: str, allowed: list[str]) -> str:
    if value not in allowed:
        raise _invalid(
            f"1 validation error detected. Value at '{path}' failed to satisfy constraint: "
            f"Member must satisfy enum value set: [{', '.join(allowed)}]",
            path,
        )
    return str(value)


def _flag(body: dict[str, Any], name: str) -> bool:
    value = body.get(name, False)
    if not isinstance(value, bool):
        raise _invalid(f"Value at '/{name}' must be a boolean", f"/{name}")
    return value


def _list(body: dict[str, Any], name: str, high: int) -> list[Any]:
    value = _required(body, name)
    if not isinstance(value, list):
        raise _invalid(f"Value at '/{name}' must be a list", f"/{name}")
    _length(value, f"/{name}", 1, high)
    return value


# --- metadata: the service's size model and its filter language ------------------------------------
def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _value_size(value: Any) -> int:
    """Bytes the service counts for one metadata value (strings by UTF-8 length, numbers 4, booleans 0)."""
    if isinstance(value, str):
        return len(value.encode())
    if isinstance(value, bool):
        return 0
    if _is_number(value):
        return 4
    return sum(4 + _value_size(element) for element in value)


def metadata_size(metadata: dict[str, Any]) -> int:
    """The service's size model (measured against the live service, not JSON text length):
    4 + sum over entries of (8 + UTF-8 bytes of the key + the value's size)."""
    return 4 + sum(8 + len(key.encode()) + _value_size(value) for key, value in metadata.items())


def _valid_metadata_value(value: Any) -> bool:
    primitive = (str, int, float)  # bool is an int
    if isinstance(value, primitive):
        return not (isinstance(value, float) and not math.isfinite(value))
    return isinstance(value, list) and all(
        isinstance(v, primitive) and not (isinstance(v, float) and not math.isfinite(v)) for v in value
    )


def _same(a: Any, b: Any) -> bool:
    """Equality without Python's bool/int mixing: true never equals 1, "1" never equals 1."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if _is_number(a) and _is_number(b):
        return float(a) == float(b)
    return isinstance(a, str) and isinstance(b, str) and a == b


def _elements(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


_Predicate = Callable[[dict[str, Any]], bool]
_MISSING = object()
_COMPARE: dict[str, Callable[[float, float], bool]] = {
    "$gt": lambda v, x: v > x,
    "$gte": lambda v, x: v >= x,
    "$lt": lambda v, x: v < x,
    "$lte": lambda v, x: v <= x,
}


def compile_filter(raw: Any, non_filterable: frozenset[str]) -> _Predicate:
    """A predicate over a vector's filterable metadata, or a ValidationException for a malformed filter.

    Semantics (Mongo-like, as documented): a bare value means $eq; several keys in one object are ANDed;
    $eq/$in against a list-valued field match if any element matches; $ne and $nin are their negations,
    so they also match vectors that lack the field.
    """
    if not isinstance(raw, dict):
        raise _invalid("Invalid filter: a filter must be a JSON object", "/filter")
    clauses: list[_Predicate] = []
    for name, operand in raw.items():
        if name in ("$and", "$or"):
            if not isinstance(operand, list) or not operand:
                raise _invalid(f"Invalid filter: {name} requires a non-empty array of filters", "/filter")
            clauses.append(
                _combined(all if name == "$and" else any, [compile_filter(p, non_filterable) for p in operand])
            )
        elif name.startswith("$"):
            raise _invalid(f"Invalid filter: unsupported operator {name}", "/filter")
        else:
            if name in non_filterable:
                raise _invalid("Invalid use of non-filterable metadata in filter", "/filter")
            clauses.append(_field_predicate(name, operand))
    return lambda md: all(clause(md) for clause in clauses)


def _combined(how: Callable[[Any], bool], parts: list[_Predicate]) -> _Predicate:
    return lambda md: how(part(md) for part in parts)


def _field_predicate(name: str, operand: Any) -> _Predicate:
    if not isinstance(operand, dict):
        operand = {"$eq": operand}
    if not operand:
        raise _invalid(f"Invalid filter: no operator for metadata key {name}", "/filter")
    for op, expected in operand.items():
        _check_operand(op, expected)
    conditions = list(operand.items())
    return lambda md: all(_holds(op, expected, md.get(name, _MISSING)) for op, expected in conditions)


def _check_operand(op: str, expected: Any) -> None:
    primitive = (str, int, float)
    if op in ("$eq", "$ne") and not isinstance(expected, primitive):
        raise _invalid(f"Invalid filter: {op} requires a string, number or boolean", "/filter")
    if op in _COMPARE and not _is_number(expected):
        raise _invalid(f"Invalid filter: {op} requires a number", "/filter")
    if op in ("$in", "$nin") and (
        not isinstance(expected, list) or not expected or not all(isinstance(x, primitive) for x in expected)
    ):
        raise _invalid(f"Invalid filter: {op} requires a non-empty array of primitives", "/filter")
    if op == "$exists" and not isinstance(expected, bool):
        raise _invalid("Invalid filter: $exists requires a boolean", "/filter")
    if op not in ("$eq", "$ne", "$in", "$nin", "$exists", *_COMPARE):
        raise _invalid(f"Invalid filter: unsupported operator {op}", "/filter")


def _holds(op: str, expected: Any, value: Any) -> bool:
    """One condition on one (possibly missing, possibly list-valued) metadata value."""
    if op == "$exists":
        return (value is not _MISSING) is expected
    if op in ("$ne", "$nin"):
        return not _holds("$eq" if op == "$ne" else "$in", expected, value)
    if value is _MISSING:
        return False
    if op == "$eq":
        return any(_same(element, expected) for element in _elements(value))
    if op == "$in":
        return any(_same(element, x) for element in _elements(value) for x in expected)
    compare = _COMPARE[op]
    return any(_is_number(element) and compare(element, expected) for element in _elements(value))


# --- the data ----------------------------------------------------------------------------------------
@dataclass
class StoredVector:
    data: tuple[float, ...]  # float32 values, as the service stores them
    metadata: dict[str, Any]
    filterable: dict[str, Any]  # the part of the metadata that filters see
    norm: float


@dataclass
class Index:
    bucket: str
    name: str
    arn: str
    created: float
    dimension: int
    metric: str
    non_filterable: frozenset[str]
    encryption: dict[str, str]
    vectors: dict[str, StoredVector] = field(default_factory=dict)
    keys: list[str] = field(default_factory=list)  # sorted, for stable pagination

    def describe(self) -> dict[str, Any]:
        described: dict[str, Any] = {
            "vectorBucketName": self.bucket,
            "indexName": self.name,
            "indexArn": self.arn,
            "creationTime": self.created,
            "dataType": "float32",
            "dimension": self.dimension,
            "distanceMetric": self.metric,
            "encryptionConfiguration": self.encryption,
        }
        if self.non_filterable:
            described["metadataConfiguration"] = {"nonFilterableMetadataKeys": sorted(self.non_filterable)}
        return described


@dataclass
class Bucket:
    name: str
    arn: str
    created: float
    encryption: dict[str, str]
    indexes: dict[str, Index] = field(default_factory=dict)


def _float32(values: list[Any], dimension: int, cosine: bool, what: str) -> tuple[tuple[float, ...], float]:
    if len(values) != dimension:
        raise _invalid(f"{what} must have length {dimension}, but has length {len(values)}")
    # REST-JSON (Smithy) sends non-finite floats as strings; they are floats, and refused below as such.
    values = [float(v) if v in _NON_FINITE else v for v in values]
    if not all(_is_number(v) for v in values):
        raise _invalid(f"{what} must contain only numbers")
    try:
        data = struct.unpack(f"{dimension}f", struct.pack(f"{dimension}f", *values))
    except OverflowError:
        data = (math.inf,)
    if not all(math.isfinite(v) for v in data):
        raise _invalid(f"{what} must contain only valid floating-point values (no NaN or Infinity)")
    norm = math.sqrt(math.fsum(v * v for v in data))
    if cosine and norm == 0.0:
        raise _invalid(f"{what} must not be a zero vector with the cosine distance metric")
    return data, norm


def _distance(index: Index, query: tuple[float, ...], query_norm: float, stored: StoredVector) -> float:
    if index.metric == "cosine":
        dot = math.fsum(map(float.__mul__, query, stored.data))
        value = 1.0 - dot / (query_norm * stored.norm)
    else:
        value = math.sqrt(math.fsum((a - b) * (a - b) for a, b in zip(query, stored.data, strict=True)))
    return float(struct.unpack("f", struct.pack("f", value))[0])


def _token(payload: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(payload, separators=(",", ":")).encode()).decode()


def _untoken(raw: Any, scope: str) -> dict[str, Any]:
    try:
        payload = json.loads(base64.urlsafe_b64decode(str(raw).encode()))
    except (ValueError, TypeError) as error:
        raise _invalid("Invalid nextToken", "/nextToken") from error
    if not isinstance(payload, dict) or payload.get("scope") != scope:
        raise _invalid("Invalid nextToken", "/nextToken")
    return payload


class VectorStore:
    """Buckets, indexes and vectors of every region; the operations are the API's, minus transport."""

    def __init__(self, account_id: str = DEFAULT_ACCOUNT) -> None:
        self.account_id = account_id
        self._lock = threading.RLock()
        self._regions: dict[str, dict[str, Bucket]] = defaultdict(dict)

    def clear(self) -> None:
        with self._lock:
            self._regions = defaultdict(dict)

    def sizes(self) -> dict[str, dict[str, int]]:
        with self._lock:
            return {
                region: {
                    "buckets": len(buckets),
                    "indexes": sum(len(b.indexes) for b in buckets.values()),
                    "vectors": sum(len(i.vectors) for b in buckets.values() for i in b.indexes.values()),
                }
                for region, buckets in self._regions.items()
            }

    def call(self, region: str, operation: str, body: dict[str, Any]) -> dict[str, Any]:
        handler = getattr(self, f"_op_{operation}", None)
        if handler is None:
            raise ApiError("ValidationException", f"The S3 Vectors emulator does not implement {operation}")
        with self._lock:
            result: dict[str, Any] = handler(self._regions[region], region, body)
            return result

    # --- lookups ---------------------------------------------------------------------------------------
    def _bucket_arn(self, region: str, name: str) -> str:
        return f"arn:aws:s3vectors:{region}:{self.account_id}:bucket/{name}"

    def _bucket(self, buckets: dict[str, Bucket], region: str, body: dict[str, Any]) -> Bucket:
        name, arn = body.get("vectorBucketName"), body.get("vectorBucketArn")
        if bool(name) == bool(arn):
            raise _invalid(_BUCKET_REF)
        if arn:
            match = _BUCKET_ARN.fullmatch(str(arn))
            if match is None:
                raise _invalid(f"Invalid vector bucket ARN: {arn}", "/vectorBucketArn")
            if (match.group(1), match.group(2)) != (region, self.account_id):
                raise ApiError("NotFoundException", _NO_BUCKET)
            name = match.group(3)
        bucket = buckets.get(str(name))
        if bucket is None:
            raise ApiError("NotFoundException", _NO_BUCKET)
        return bucket

    def _index(self, buckets: dict[str, Bucket], region: str, body: dict[str, Any]) -> Index:
        arn, bucket_name, index_name = body.get("indexArn"), body.get("vectorBucketName"), body.get("indexName")
        if arn and not bucket_name and not index_name:
            match = _INDEX_ARN.fullmatch(str(arn))
            if match is None:
                raise _invalid(f"Invalid index ARN: {arn}", "/indexArn")
            if (match.group(1), match.group(2)) != (region, self.account_id):
                raise ApiError("NotFoundException", _NO_INDEX)
            bucket_name, index_name = match.group(3), match.group(4)
        elif not (bucket_name and index_name and not arn):
            raise _invalid(_INDEX_REF)
        bucket = buckets.get(str(bucket_name))
        index = bucket.indexes.get(str(index_name)) if bucket else None
        if index is None:
            raise ApiError("NotFoundException", _NO_INDEX)
        return index

    @staticmethod
    def _encryption(raw: Any, default: dict[str, str]) -> dict[str, str]:
        if raw is None:
            return dict(default)
        if not isinstance(raw, dict):
            raise _invalid("Value at '/encryptionConfiguration' must be an object", "/encryptionConfiguration")
        sse = _enum(raw.get("sseType", "AES256"), "/encryptionConfiguration/sseType", ["AES256", "aws:kms"])
        key = raw.get("kmsKeyArn")
        if (sse == "aws:kms") != bool(key):
            raise _invalid("kmsKeyArn is required with, and only allowed with, sseType aws:kms")
        return {"sseType": sse, "kmsKeyArn": str(key)} if key else {"sseType": sse}

    @staticmethod
    def _page(names: list[str], body: dict[str, Any], scope: str, high: int) -> tuple[list[str], str | None]:
        limit = _integer(body, "maxResults", 1, high, default=high)
        prefix = body.get("prefix") or ""
        after = _untoken(body["nextToken"], scope)["after"] if body.get("nextToken") else None
        chosen = [n for n in sorted(names) if n.startswith(prefix) and (after is None or n > after)]
        page = chosen[:limit]
        token = _token({"scope": scope, "after": page[-1]}) if len(chosen) > limit else None
        return page, token

    # --- buckets ---------------------------------------------------------------------------------------
    def _op_CreateVectorBucket(self, buckets: dict[str, Bucket], region: str, body: dict[str, Any]) -> dict[str, Any]:
        name = _string(body, "vectorBucketName", 3, 63)
        if _BUCKET_NAME.fullmatch(name) is None:
            raise _invalid("Invalid vector bucket name", "/vectorBucketName")
        if name in buckets:
            raise ApiError("ConflictException", "A vector bucket with the specified name already exists")
        encryption = self._encryption(body.get("encryptionConfiguration"), {"sseType": "AES256"})
        bucket = Bucket(name, self._bucket_arn(region, name), time.time(), encryption)
        buckets[name] = bucket
        return {"vectorBucketArn": bucket.arn}

    def _op_GetVectorBucket(self, buckets: dict[str, Bucket], region: str, body: dict[str, Any]) -> dict[str, Any]:
        bucket = self._bucket(buckets, region, body)
        return {
            "vectorBucket": {
                "vectorBucketName": bucket.name,
                "vectorBucketArn": bucket.arn,
                "creationTime": bucket.created,
                "encryptionConfiguration": bucket.encryption,
            }
        }

    def _op_ListVectorBuckets(self, buckets: dict[str, Bucket], region: str, body: dict[str, Any]) -> dict[str, Any]:
        page, token = self._page(list(buckets), body, f"buckets@{region}", MAX_LIST_BUCKETS_OR_INDEXES)
        summaries = [
            {"vectorBucketName": n, "vectorBucketArn": buckets[n].arn, "creationTime": buckets[n].created} for n in page
        ]
        return {"vectorBuckets": summaries, **({"nextToken": token} if token else {})}

    def _op_DeleteVectorBucket(self, buckets: dict[str, Bucket], region: str, body: dict[str, Any]) -> dict[str, Any]:
        try:
            bucket = self._bucket(buckets, region, body)
        except ApiError as error:
            if error.code == "NotFoundException":
                return {}  # the service answers 200 for a bucket that does not exist
            raise
        if bucket.indexes:
            raise ApiError("ConflictException", "The specified vector bucket is not empty")
        del buckets[bucket.name]
        return {}

    # --- indexes ---------------------------------------------------------------------------------------
    def _op_CreateIndex(self, buckets: dict[str, Bucket], region: str, body: dict[str, Any]) -> dict[str, Any]:
        name = _string(body, "indexName", 3, 63)
        if _INDEX_NAME.fullmatch(name) is None:
            raise _invalid("Invalid index name", "/indexName")
        _enum(_required(body, "dataType"), "/dataType", ["float32"])
        dimension = _integer(body, "dimension", 1, MAX_DIMENSION)
        metric = _enum(_required(body, "distanceMetric"), "/distanceMetric", ["euclidean", "cosine"])
        config = body.get("metadataConfiguration") or {}
        if not isinstance(config, dict):
            raise _invalid("Value at '/metadataConfiguration' must be an object", "/metadataConfiguration")
        if config.get("textSearchConfigurations"):
            raise _invalid("textSearchConfigurations (full-text search) is not supported by the S3 Vectors emulator")
        keys = config.get("nonFilterableMetadataKeys")
        if keys is not None:
            path = "/metadataConfiguration/nonFilterableMetadataKeys"
            if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
                raise _invalid(f"Value at '{path}' must be a list of strings", path)
            _length(keys, path, 1, MAX_NON_FILTERABLE_KEYS)
            for position, key in enumerate(keys):
                _length(key, f"{path}/{position}", 1, 63)
        bucket = self._bucket(buckets, region, body)
        if name in bucket.indexes:
            raise ApiError("ConflictException", "An index with the specified name already exists")
        encryption = self._encryption(body.get("encryptionConfiguration"), bucket.encryption)
        index = Index(
            bucket.name,
            name,
            f"{bucket.arn}/index/{name}",
            time.time(),
            dimension,
            metric,
            frozenset(keys or ()),
            encryption,
        )
        bucket.indexes[name] = index
        return {"indexArn": index.arn}

    def _op_GetIndex(self, buckets: dict[str, Bucket], region: str, body: dict[str, Any]) -> dict[str, Any]:
        return {"index": self._index(buckets, region, body).describe()}

    def _op_ListIndexes(self, buckets: dict[str, Bucket], region: str, body: dict[str, Any]) -> dict[str, Any]:
        bucket = self._bucket(buckets, region, body)
        page, token = self._page(list(bucket.indexes), body, f"indexes@{bucket.arn}", MAX_LIST_BUCKETS_OR_INDEXES)
        summary = ("vectorBucketName", "indexName", "indexArn", "creationTime")
        summaries = [{k: bucket.indexes[n].describe()[k] for k in summary} for n in page]
        return {"indexes": summaries, **({"nextToken": token} if token else {})}

    def _op_DeleteIndex(self, buckets: dict[str, Bucket], region: str, body: dict[str, Any]) -> dict[str, Any]:
        try:
            index = self._index(buckets, region, body)
        except ApiError as error:
            if error.code == "NotFoundException":
                return {}  # idempotent, like DeleteVectorBucket (moto answers 404 here)
            raise
        del buckets[index.bucket].indexes[index.name]
        return {}

    # --- vectors ---------------------------------------------------------------------------------------
    def _op_PutVectors(self, buckets: dict[str, Bucket], region: str, body: dict[str, Any]) -> dict[str, Any]:
        index = self._index(buckets, region, body)
        entries = _list(body, "vectors", MAX_PUT_VECTORS)
        accepted: dict[str, StoredVector] = {}
        for position, entry in enumerate(entries):  # validate all, then write all: a request is atomic
            key, stored = self._validated(index, position, entry)
            accepted[key] = stored
        for key, stored in accepted.items():
            if key not in index.vectors:
                bisect.insort(index.keys, key)
            index.vectors[key] = stored
        return {}

    def _validated(self, index: Index, position: int, entry: Any) -> tuple[str, StoredVector]:
        path = f"/vectors/{position}"
        if not isinstance(entry, dict):
            raise _invalid(f"Value at '{path}' must be an object", path)
        key = entry.get("key")
        if not isinstance(key, str):
            raise _invalid(
                f"1 validation error detected. Value null at '{path}/key' failed to satisfy "
                "constraint: Member must not be null",
                f"{path}/key",
            )
        _length(key, f"{path}/key", 1, MAX_KEY_CHARS)
        record = f"Invalid record for key '{key}'"
        data = entry.get("data")
        if not isinstance(data, dict) or not isinstance(data.get("float32"), list):
            raise _invalid(f'{record}: data must be {{"float32": [...]}}', f"{path}/data")
        try:
            values, norm = _float32(data["float32"], index.dimension, index.metric == "cosine", "vector")
        except ApiError as error:
            raise _invalid(f"{record}: {error.message}", f"vectors[{position}].data") from error
        metadata = entry.get("metadata", {})
        if metadata is None:
            metadata = {}
        at = f"vectors[{position}].metadata"
        if not isinstance(metadata, dict):
            raise _invalid(f"{record}: metadata must be a JSON object", at)
        if not all(_valid_metadata_value(v) for v in metadata.values()):
            raise _invalid(f"{record}: metadata values must be strings, numbers, booleans or lists of them", at)
        if len(metadata) > MAX_METADATA_KEYS:
            raise _invalid(f"{record}: Metadata object must have at most {MAX_METADATA_KEYS} keys", at)
        if metadata_size(metadata) > MAX_METADATA_BYTES:
            raise _invalid(f"{record}: Metadata object must have at most {MAX_METADATA_BYTES} bytes", at)
        filterable = {k: v for k, v in metadata.items() if k not in index.non_filterable}
        if metadata_size(filterable) > MAX_FILTERABLE_BYTES:
            raise _invalid(f"{record}: Filterable metadata must have at most {MAX_FILTERABLE_BYTES} bytes", at)
        copy = json.loads(json.dumps(metadata))
        return key, StoredVector(values, copy, {k: v for k, v in copy.items() if k in filterable}, norm)

    @staticmethod
    def _output(key: str, stored: StoredVector, data: bool, metadata: bool) -> dict[str, Any]:
        out: dict[str, Any] = {"key": key}
        if data:
            out["data"] = {"float32": list(stored.data)}
        if metadata:
            out["metadata"] = stored.metadata
        return out

    def _op_GetVectors(self, buckets: dict[str, Bucket], region: str, body: dict[str, Any]) -> dict[str, Any]:
        index = self._index(buckets, region, body)
        keys = _list(body, "keys", MAX_GET_VECTORS)
        data, metadata = _flag(body, "returnData"), _flag(body, "returnMetadata")
        found = [k for k in dict.fromkeys(keys) if isinstance(k, str) and k in index.vectors]
        return {"vectors": [self._output(k, index.vectors[k], data, metadata) for k in found]}

    def _op_ListVectors(self, buckets: dict[str, Bucket], region: str, body: dict[str, Any]) -> dict[str, Any]:
        index = self._index(buckets, region, body)
        limit = _integer(body, "maxResults", 1, MAX_LIST_VECTORS, default=DEFAULT_LIST_VECTORS)
        count, segment = body.get("segmentCount"), body.get("segmentIndex")
        if (count is None) != (segment is None):
            raise _invalid("segmentCount and segmentIndex must be specified together")
        if count is not None:
            count = _integer(body, "segmentCount", 1, MAX_SEGMENTS)
            segment = _integer(body, "segmentIndex", 0, MAX_SEGMENTS - 1)
            if segment >= count:
                raise _invalid("segmentIndex must be less than segmentCount", "/segmentIndex")
        data, metadata = _flag(body, "returnData"), _flag(body, "returnMetadata")
        scope = f"{index.arn}#{count}/{segment}"
        after = _untoken(body["nextToken"], scope)["after"] if body.get("nextToken") else None
        start = bisect.bisect_right(index.keys, after) if after is not None else 0
        page: list[str] = []
        more = False
        for position in range(start, len(index.keys)):
            key = index.keys[position]
            if count is None or zlib.crc32(key.encode()) % count == segment:
                if len(page) == limit:
                    more = True
                    break
                page.append(key)
        token = _token({"scope": scope, "after": page[-1]}) if more else None
        vectors = [self._output(k, index.vectors[k], data, metadata) for k in page]
        return {"vectors": vectors, **({"nextToken": token} if token else {})}

    def _op_DeleteVectors(self, buckets: dict[str, Bucket], region: str, body: dict[str, Any]) -> dict[str, Any]:
        index = self._index(buckets, region, body)
        keys = _list(body, "keys", MAX_DELETE_VECTORS)
        for key in dict.fromkeys(keys):
            if isinstance(key, str) and index.vectors.pop(key, None) is not None:
                index.keys.pop(bisect.bisect_left(index.keys, key))
        return {}  # unknown keys are not an error

    def _op_QueryVectors(self, buckets: dict[str, Bucket], region: str, body: dict[str, Any]) -> dict[str, Any]:
        index = self._index(buckets, region, body)
        top_k = _integer(body, "topK", 1, MAX_TOP_K)
        if body.get("queryMode") is not None:
            _enum(body["queryMode"], "/queryMode", ["CLASSIC", "ENHANCED"])
        if body.get("queryTexts"):
            keys = [str(q.get("metadataKey")) for q in body["queryTexts"] if isinstance(q, dict)]
            raise _invalid(
                f"Metadata keys {keys} are not full-text searchable in this index "
                "(the S3 Vectors emulator has no full-text search)",
                "/queryTexts",
            )
        if body.get("nextToken"):
            _untoken(body["nextToken"], f"query@{index.arn}")  # this server never hands one out
        raw = body.get("queryVector")
        if raw is None:
            raise _invalid("A request must include queryVector, queryTexts, or both", "/queryVector")
        if not isinstance(raw, dict) or not isinstance(raw.get("float32"), list):
            raise _invalid('queryVector must be {"float32": [...]}', "/queryVector")
        query, norm = _float32(raw["float32"], index.dimension, index.metric == "cosine", "Query vector")
        matches = (
            (lambda _md: True) if body.get("filter") is None else compile_filter(body["filter"], index.non_filterable)
        )
        with_distance, with_metadata = _flag(body, "returnDistance"), _flag(body, "returnMetadata")
        scored = []
        for key, stored in index.vectors.items():
            if matches(stored.filterable):
                scored.append((_distance(index, query, norm, stored), key))
        scored.sort()
        results = []
        for distance, key in scored[:top_k]:
            result = self._output(key, index.vectors[key], False, with_metadata)
            if with_distance:
                result["distance"] = distance
            results.append(result)
        return {"vectors": results, "distanceMetric": index.metric}


# --- faults ------------------------------------------------------------------------------------------
@dataclass
class OperationFaults(Faults):
    """Fault settings for one operation (optionally one region): the shared ones and a request-rate quota."""

    KNOWN_ERRORS: ClassVar[Mapping[str, int]] = ERROR_STATUS

    rps: float | None = None  # requests per second per index (token bucket), as the service's write quota
    burst_s: float = 1.0  # bucket size in seconds of quota


class EmulatorState(FaultState):
    """The data, the faults and the counters, shared by the server's threads."""

    def __init__(self, config: dict[str, Any] | None = None) -> None:
        self.store = VectorStore()
        super().__init__(config)

    def reset(self, config: dict[str, Any]) -> None:
        """Back to empty: no buckets, no counters, full quotas, the given faults."""
        super().reset(config)
        self.store.clear()

    def configure(self, config: dict[str, Any]) -> None:
        """Replace the faults (quota buckets restart full); data and counters are kept."""
        unknown = set(config) - {"seed", "account_id", "default", "operations", "max_payload_bytes"}
        if unknown:
            raise ValueError(f"unknown config keys: {sorted(unknown)}")
        with self._lock:
            self.default = OperationFaults.parse(config.get("default", {}))
            self.operations = {k: OperationFaults.parse(v) for k, v in config.get("operations", {}).items()}
            self.random = random.Random(config.get("seed", 7))
            self.max_payload_bytes = int(config.get("max_payload_bytes", MAX_PAYLOAD_BYTES))
            self.buckets = {}
        self.store.account_id = str(config.get("account_id", DEFAULT_ACCOUNT))

    def faults_for(self, operation: str, region: str) -> tuple[str, OperationFaults]:
        candidates = [f"{operation}@{region}", operation]
        if operation in WRITE_OPERATIONS:
            candidates += [f"writes@{region}", "writes"]
        candidates.append(f"*@{region}")
        for key in candidates:
            if key in self.operations:
                return key, self.operations[key]
        return "default", self.default

    def admit(self, key: str, region: str, scope: str, faults: OperationFaults) -> bool:
        if faults.rps is None:
            return True
        with self._lock:
            bucket = self.buckets.setdefault((key, region, scope), TokenBucket(faults.rps, faults.burst_s))
            return bucket.take()

    def stats(self) -> dict[str, Any]:
        return {"operations": self.calls(), "regions": self.store.sizes()}


class _Handler(EmulatorHandler):
    server: EmulatorServer[EmulatorState]

    def _refuse(self, error: ApiError) -> None:
        payload: dict[str, Any] = {"message": error.message}
        if error.code == "ValidationException" and error.path:
            payload["fieldList"] = [{"path": error.path, "message": error.message}]
        self._send(ERROR_STATUS[error.code], payload, {"x-amzn-ErrorType": error.code})

    def _error(self, code: str, message: str) -> None:
        self._refuse(ApiError(code, message))

    def _no_route(self, method: str) -> None:
        self._error("ValidationException", f"The S3 Vectors emulator does not implement {method} {self.path}")

    def do_DELETE(self) -> None:
        self._raw_body()
        self._no_route("DELETE")

    def do_POST(self) -> None:
        state = self.server.state
        raw = self._raw_body()
        if self.path.startswith("/_emulator/"):
            self._admin(raw)
            return
        operation, region = self.path.strip("/").split("?")[0], self._region()
        state.arrive(operation, region)
        key, faults = state.faults_for(operation, region)
        if self._injected(faults, operation, region, "Service is unavailable (emulated)"):
            return
        try:
            if len(raw) > state.max_payload_bytes:
                raise _invalid(f"Request payload size {len(raw)} exceeds the limit of {state.max_payload_bytes} bytes")
            body = json.loads(raw) if raw else {}
            if not isinstance(body, dict):
                raise _invalid("The request body must be a JSON object")
        except (ValueError, ApiError) as error:
            problem = error if isinstance(error, ApiError) else _invalid(f"Malformed JSON request body: {error}")
            self._fail(operation, region, problem)
            return
        scope = str(body.get("indexArn") or f"{body.get('vectorBucketName')}/{body.get('indexName')}")
        if not state.admit(key, region, scope, faults):
            self._fail(operation, region, ApiError("TooManyRequestsException", "Rate exceeded (emulated quota)."))
            return
        self._delay(faults)
        try:
            result = state.store.call(region, operation, body)
        except ApiError as error:
            self._fail(operation, region, error)
            return
        state.count(operation, region, "ok")
        self._send(200, result)

    def _fail(self, operation: str, region: str, error: ApiError) -> None:
        self.server.state.count(operation, region, error.code)
        self._refuse(error)

    def _delay(self, faults: OperationFaults) -> None:
        low, high = faults.latency_ms
        if high > 0:
            time.sleep((low + (high - low) * self.server.state.roll()) / 1000.0)
        if faults.hang_s:
            time.sleep(faults.hang_s)


class S3VectorsEmulator(LoopbackEmulator):
    NAME = "s3vectors emulator"
    HANDLER = _Handler
    STATE = EmulatorState
    POLL_INTERVAL_S = 0.05  # a short poll: tests start and stop one per test

    def calls(self, operation: str, region: str = "us-east-1") -> int:
        return int(self.stats()["operations"].get(f"{operation}@{region}", {}).get("calls", 0))


def main() -> None:
    S3VectorsEmulator.main(__doc__, default_port=8090)


if __name__ == "__main__":
    main()
