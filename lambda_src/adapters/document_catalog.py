"""The API's side of the caller's documents: their records (DynamoDB), their files (S3) and the question's
embedding (Titan Text Embeddings v2 on Bedrock).

Record layout (the documents global table, partitioned by the caller's Cognito `sub`, so a user can only
ever address their own records):
    pk=<sub>  sk=<document id>   name, content_type, size, created_at, updated_at,
                                 status = {<region>: {state, chunk_count, reason, updated_at}},
                                 deleted_at (once deleted, in every region)
Each region's ingest pipeline writes only its own `status.<region>`; the API reads the status of the region
it runs in (a region that has not seen the file yet reads `uploading`).
"""

from __future__ import annotations

import json
import math
from typing import Any

from adapters.aws_errors import dependency
from core.retrieval import DocumentView

_DYNAMODB = "DynamoDB (the documents table)"
_S3 = "S3 (the documents bucket)"
_BEDROCK = "Bedrock (the embedding model)"


class DynamoDocumentCatalog:
    """core.retrieval.DocumentCatalog on the documents table, seen from `region`."""

    def __init__(self, *, client: Any, table_name: str, region: str) -> None:
        self._client = client
        self._table = table_name
        self._region = region

    @dependency(_DYNAMODB, "record your document")
    def create(self, record: DocumentView) -> None:
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
                "status": {
                    "M": {self._region: {"M": {"state": {"S": record.status}, "updated_at": {"S": record.created_at}}}}
                },
            },
            ConditionExpression="attribute_not_exists(sk)",
        )

    @dependency(_DYNAMODB, "read your document")
    def get(self, owner: str, document_id: str) -> DocumentView | None:
        item = self._client.get_item(
            TableName=self._table, Key={"pk": {"S": owner}, "sk": {"S": document_id}}, ConsistentRead=True
        ).get("Item")
        return self._record(item) if item else None

    @dependency(_DYNAMODB, "list your documents")
    def list(self, owner: str) -> list[DocumentView]:
        query: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": {"S": owner}},
        }
        records: list[DocumentView] = []
        while True:
            page = self._client.query(**query)
            records.extend(self._record(item) for item in page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                return records
            query["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    @dependency(_DYNAMODB, "delete your document")
    def mark_deleted(self, owner: str, document_id: str, *, at: str) -> None:
        self._client.update_item(
            TableName=self._table,
            Key={"pk": {"S": owner}, "sk": {"S": document_id}},
            UpdateExpression="SET deleted_at = :at, updated_at = :at",
            ConditionExpression="attribute_exists(sk)",
            ExpressionAttributeValues={":at": {"S": at}},
        )

    def _record(self, item: dict[str, Any]) -> DocumentView:
        status = item.get("status", {}).get("M", {}).get(self._region, {}).get("M", {})
        chunks = status.get("chunk_count", {}).get("N")
        deleted = "deleted_at" in item
        return DocumentView(
            owner=item["pk"]["S"],
            document_id=item["sk"]["S"],
            name=item.get("name", {}).get("S", ""),
            content_type=item.get("content_type", {}).get("S", ""),
            size=int(item.get("size", {}).get("N", "0")),
            created_at=item.get("created_at", {}).get("S", ""),
            updated_at=(item["deleted_at"]["S"] if deleted else status.get("updated_at", {}).get("S"))
            or item.get("updated_at", {}).get("S"),
            status="deleted" if deleted else status.get("state", {}).get("S", "uploading"),
            chunk_count=int(chunks) if chunks is not None else None,
            reason=None if deleted else status.get("reason", {}).get("S"),
        )


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
