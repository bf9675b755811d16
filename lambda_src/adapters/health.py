"""The deep health route's probes (core.health.DependencyProbe): one cheap call each, no retries.

The clients they use are made for probing: one attempt, short timeouts (handlers.chat builds them), so a
probe reports a slow dependency as down instead of waiting through retries a user request would make.
"""

from __future__ import annotations

from typing import Any

from botocore.config import Config

# A key no user has (a user's partition key is their Cognito sub, a UUID): the read finds nothing and
# returns no data, but it proves the table, its key and this region's replica answer.
PROBE_KEY = "health#probe"


def probe_client_config(*, connect_timeout_s: float = 0.5, read_timeout_s: float = 1.0) -> Config:
    return Config(
        retries={"mode": "standard", "total_max_attempts": 1},
        connect_timeout=connect_timeout_s,
        read_timeout=read_timeout_s,
    )


class DynamoTableProbe:
    """A GetItem of a key that does not exist, projecting only the key: the cheapest read (0.5 RCU)."""

    name = "dynamodb"

    def __init__(self, *, client: Any, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def check(self) -> None:
        self._client.get_item(
            TableName=self._table,
            Key={"pk": {"S": PROBE_KEY}, "sk": {"S": PROBE_KEY}},
            ProjectionExpression="pk",
        )


class SqsQueueProbe:
    """GetQueueAttributes of one attribute: the jobs queue answers (where POST /jobs sends)."""

    name = "queue"

    def __init__(self, *, client: Any, queue_url: str) -> None:
        self._client = client
        self._queue_url = queue_url

    def check(self) -> None:
        self._client.get_queue_attributes(QueueUrl=self._queue_url, AttributeNames=["QueueArn"])
