"""The API's side of the caller's documents: their records (DynamoDB), their files (S3) and the question's
embedding (Titan Text Embeddings v2 on Bedrock).

Record layout (the documents global table, partitioned by the caller's Cognito `sub`, so a user can only
ever address their own records). A document is one metadata item plus one status item per region:
    pk=<sub>  sk=<document id>                    name, content_type, size, created_at, updated_at,
                                                  deleted_at (once deleted): written by the API only
    pk=<sub>  sk=<document id>#status#<region>    document_id, region, state, version_id, sequencer,
                                                  chunk_count | code + reason, updated_at, lease_until, and the
                                                  object's name, content_type, size, created_at: written by
                                                  that region's ingest pipeline only (adapters.documents)
Why one item per writer: a global table resolves concurrent writes to one ITEM by last writer wins, for the
whole item. With every region's status in a map on one item (the layout before), region A's status write and
region B's, a moment apart, replicated crosswise and one region's status was lost for good (the DR drill saw
documents searchable but `ingesting` forever). Now no two regions ever write the same item, so nothing a
region writes can be overwritten by the other's replication; the API (any region) writes the metadata item
only, and only on upload and delete, never at the same moment as another writer of it.

The API reads its own region's status (a region that has not seen the file yet reads `uploading`); a document
is `deleted` once the metadata says so (the user deleted it, in any region) or this region's pipeline saw its
object removed. A document uploaded by other means (no metadata item) is read from its status item alone.
Reads stay one request: a document's items share the partition and the `<document id>` prefix of the sort
key (one Query), and a list is one Query of the owner's partition (paginated), the other regions' status items
filtered out on the server.

Migration: items written by the old layout keep their `status` map (`status.<region>` on the metadata item).
A region with no status item of its own is read from that map (`legacy_status`), so a table deployed before
the upgrade reads as it did; the pipeline copies a region's old entry into the region's status item the first
time it writes that document (adapters.documents), and never writes the map again.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from typing import Any

from adapters.aws_errors import dependency
from core.retrieval import DocumentView

_DYNAMODB = "DynamoDB (the documents table)"
_S3 = "S3 (the documents bucket)"
_BEDROCK = "Bedrock (the embedding model)"
STATUS_MARK = "#status#"  # document ids are UUIDs (API) or S3 key segments; regions never contain '#'


def status_key(document_id: str, region: str) -> str:
    """The sort key of `region`'s status item of a document."""
    return f"{document_id}{STATUS_MARK}{region}"


def split_key(sk: str) -> tuple[str, str | None]:
    """(document id, region) of a status item's sort key; (document id, None) for a metadata item."""
    document_id, mark, region = sk.rpartition(STATUS_MARK)
    return (document_id, region) if mark and document_id and region else (sk, None)


def legacy_status(metadata: dict[str, Any] | None, region: str) -> dict[str, Any] | None:
    """`region`'s entry of the old layout's status map on the metadata item (DynamoDB JSON), if any."""
    if not metadata:
        return None
    entry = metadata.get("status", {}).get("M", {}).get(region, {}).get("M")
    return dict(entry) if entry is not None else None


Items = tuple[dict[str, Any] | None, dict[str, dict[str, Any]]]  # (metadata item, region -> status item)


def group_items(items: Iterable[dict[str, Any]]) -> dict[tuple[str, str], Items]:
    """(owner, document id) -> (its metadata item or None, region -> its status item), in the order first seen."""
    documents: dict[tuple[str, str], Items] = {}
    for item in items:
        document_id, region = split_key(item["sk"]["S"])
        key = (item["pk"]["S"], document_id)
        metadata, statuses = documents.get(key, (None, {}))
        if region is None:
            metadata = item
        else:
            statuses[region] = item
        documents[key] = (metadata, statuses)
    return documents


def region_status(metadata: dict[str, Any] | None, statuses: dict[str, dict[str, Any]], region: str) -> dict[str, Any]:
    """`region`'s status attributes (DynamoDB JSON): its status item, else the old layout's entry, else {}."""
    item = statuses.get(region)
    if item is not None:
        return item
    return legacy_status(metadata, region) or {}


def document_view(
    owner: str, document_id: str, metadata: dict[str, Any] | None, statuses: dict[str, dict[str, Any]], region: str
) -> DocumentView:
    """The API's view of one document in `region`."""
    status = region_status(metadata, statuses, region)
    about = metadata or status  # a document uploaded by other means has no metadata item: its object's
    deleted_at = (metadata or {}).get("deleted_at", {}).get("S")
    state = status.get("state", {}).get("S", "uploading")
    deleted = deleted_at is not None or state == "deleted"
    chunks = status.get("chunk_count", {}).get("N")
    return DocumentView(
        owner=owner,
        document_id=document_id,
        name=about.get("name", {}).get("S", "") or document_id,
        content_type=about.get("content_type", {}).get("S", ""),
        size=int(about.get("size", {}).get("N", "0")),
        created_at=about.get("created_at", {}).get("S", ""),
        updated_at=(deleted_at if deleted_at is not None else status.get("updated_at", {}).get("S"))
        or about.get("updated_at", {}).get("S"),
        status="deleted" if deleted else state,
        chunk_count=None if deleted or chunks is None else int(chunks),
        reason=None if deleted else status.get("reason", {}).get("S"),
    )


def document_views(items: Iterable[dict[str, Any]], region: str) -> list[DocumentView]:
    """Every document among `items` (any owners: tools scan the table), as the API in `region` shows it."""
    return [
        document_view(owner, document_id, metadata, statuses, region)
        for (owner, document_id), (metadata, statuses) in group_items(items).items()
    ]


class DynamoDocumentCatalog:
    """core.retrieval.DocumentCatalog on the documents table, seen from `region`."""

    def __init__(self, *, client: Any, table_name: str, region: str) -> None:
        self._client = client
        self._table = table_name
        self._region = region

    @dependency(_DYNAMODB, "record your document")
    def create(self, record: DocumentView) -> None:
        """The metadata item only: no status item until this region's pipeline sees the object (`uploading`)."""
        self._client.put_item(
            TableName=self._table,
            Item={
                "pk": {"S": record.owner},
                "sk": {"S": record.document_id},
                "name": {"S": record.name},
                "content_type": {"S": record.content_type},
                "size": {"N": str(record.size)},
                "created_at": {"S": record.created_at},
                "updated_at": {"S": record.updated_at or record.created_at},
            },
            ConditionExpression="attribute_not_exists(sk)",
        )

    @dependency(_DYNAMODB, "read your document")
    def get(self, owner: str, document_id: str) -> DocumentView | None:
        """One Query: the metadata item and this region's status item (the key prefix is the document id)."""
        items = self._query(
            KeyConditionExpression="pk = :pk AND begins_with(sk, :id)",
            ExpressionAttributeValues={":pk": {"S": owner}, ":id": {"S": document_id}},
            ConsistentRead=True,
        )
        found = group_items(items).get((owner, document_id))
        return document_view(owner, document_id, *found, self._region) if found else None

    @dependency(_DYNAMODB, "list your documents")
    def list(self, owner: str) -> list[DocumentView]:
        """One Query of the owner's partition (every page of it); grouping happens after the last page, so a page
        boundary between a document's items changes nothing."""
        items = self._query(
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": owner}},
        )
        return [view for view in document_views(items, self._region) if view.owner == owner]

    @dependency(_DYNAMODB, "delete your document")
    def mark_deleted(self, owner: str, document_id: str, *, at: str) -> None:
        """`deleted_at` on the metadata item (created if the document came by other means and has none). The
        status items stay, each its region's pipeline's: they read `deleted` through the metadata, the
        pipelines write no status item for a deleted document (adapters.documents), and each region's delete
        event marks its own item `deleted`, so no item is left saying the document lives."""
        self._client.update_item(
            TableName=self._table,
            Key={"pk": {"S": owner}, "sk": {"S": document_id}},
            UpdateExpression="SET deleted_at = if_not_exists(deleted_at, :at), updated_at = :at",
            ExpressionAttributeValues={":at": {"S": at}},
        )

    def _query(self, **query: Any) -> Any:
        """Every page; other regions' status items are dropped by the server (metadata items have no `region`)."""
        query.update(TableName=self._table, FilterExpression="attribute_not_exists(#region) OR #region = :region")
        query["ExpressionAttributeNames"] = {"#region": "region"}
        query["ExpressionAttributeValues"] = {**query["ExpressionAttributeValues"], ":region": {"S": self._region}}
        return query_all(self._client, query)


def query_all(client: Any, query: dict[str, Any]) -> list[dict[str, Any]]:
    """The items of every page of one Query."""
    items: list[dict[str, Any]] = []
    while True:
        page = client.query(**query)
        items.extend(page.get("Items", []))
        if "LastEvaluatedKey" not in page:
            return items
        query["ExclusiveStartKey"] = page["LastEvaluatedKey"]


class S3DocumentFiles:
    """core.retrieval.DocumentFiles on this region's documents bucket."""

    def __init__(self, *, client: Any, bucket: str) -> None:
        self._client = client
        self._bucket = bucket

    def presigned_post(self, key: str, *, content_type: str, max_bytes: int, expires_s: int) -> dict[str, Any]:
        """Signed locally (no call): S3 accepts exactly this key, this Content-Type and 1..max_bytes bytes.
        The bucket's default encryption (KMS) applies; the form needs no encryption field."""
        post: dict[str, Any] = self._client.generate_presigned_post(
            Bucket=self._bucket,
            Key=key,  # an exact-match condition on the key is added by botocore
            Fields={"Content-Type": content_type},
            Conditions=[{"Content-Type": content_type}, ["content-length-range", 1, max_bytes]],
            ExpiresIn=expires_s,
        )
        return post

    @dependency(_S3, "delete your document's file")
    def delete(self, key: str) -> None:
        self._client.delete_object(Bucket=self._bucket, Key=key)


class TitanQuestionEmbedder:
    """core.retrieval.Embedder: one InvokeModel call on Titan Text Embeddings v2, no retries (a question that
    cannot be embedded at once is answered without documents). `client_factory(config)` gives a
    bedrock-runtime client; one is kept per timeout, so the call never outlives the retrieval deadline."""

    def __init__(self, *, client_factory: Any, model_id: str, dimensions: int) -> None:
        self._client_factory = client_factory
        self._model_id = model_id
        self._dimensions = dimensions
        self._clients: dict[float, Any] = {}

    def _client(self, timeout_s: float) -> Any:
        bucket = max(0.5, math.floor(timeout_s * 2) / 2)  # a few clients at most: timeouts in half seconds
        if bucket not in self._clients:
            from botocore.config import Config

            config = Config(
                retries={"mode": "standard", "total_max_attempts": 1},
                connect_timeout=min(1.0, bucket),
                read_timeout=bucket,
            )
            self._clients[bucket] = self._client_factory(config)
        return self._clients[bucket]

    def embed(self, text: str, *, timeout_s: float) -> list[float]:
        body = json.dumps({"inputText": text, "dimensions": self._dimensions, "normalize": True})
        with dependency(_BEDROCK, "embed your question"):
            response = self._client(timeout_s).invoke_model(
                modelId=self._model_id, body=body, contentType="application/json", accept="application/json"
            )
        payload = json.loads(response["body"].read())
        return [float(value) for value in payload["embedding"]]
