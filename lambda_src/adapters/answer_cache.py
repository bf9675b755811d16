"""AnswerCache on DynamoDB: exact-match answers under an opaque scoped key, expiring by TTL."""

from __future__ import annotations

import time
from typing import Any

from adapters.aws_errors import dependency

_CACHE = "DynamoDB (the answer cache)"


class DynamoAnswerCache:
    def __init__(self, *, client: Any, table_name: str, clock: Any = time.time) -> None:
        self._client = client
        self._table = table_name
        self._clock = clock

    @dependency(_CACHE, "read the answer cache")
    def get(self, key: str) -> str | None:
        item = self._client.get_item(TableName=self._table, Key={"key": {"S": key}}).get("Item")
        # DynamoDB deletes expired items lazily (within days): expiry is checked here too.
        if item is None or int(item["expires_at"]["N"]) <= int(self._clock()):
            return None
        return str(item["text"]["S"])

    @dependency(_CACHE, "write the answer cache")
    def put(self, key: str, text: str, ttl_s: int) -> None:
        self._client.put_item(
            TableName=self._table,
            Item={
                "key": {"S": key},
                "text": {"S": text},
                "expires_at": {"N": str(int(self._clock()) + ttl_s)},
            },
        )
