"""Per-user counters (UsageCounters) on DynamoDB: pk = the user's sub, sk = counter name and window.

Token items are per region (`tokens#<day>#<region>`): each region ADDs only to its own, so global-table
replication (last writer wins per item) never drops a count; `total` sums them with one Query.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from core.errors import DependencyUnavailable


class DynamoUsageCounters:
    def __init__(self, *, client: Any, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def add(self, user_id: str, counter: str, *, amount: int, limit: int, expires_at: int) -> bool:
        try:
            self._client.update_item(
                TableName=self._table,
                Key={"pk": {"S": user_id}, "sk": {"S": counter}},
                UpdateExpression="ADD #n :amount SET expires_at = if_not_exists(expires_at, :expires)",
                # One atomic check-and-add: concurrent requests can never pass the limit together.
                ConditionExpression="attribute_not_exists(#n) OR #n <= :most",
                ExpressionAttributeNames={"#n": "count"},
                ExpressionAttributeValues={
                    ":amount": {"N": str(amount)},
                    ":most": {"N": str(limit - amount)},
                    ":expires": {"N": str(expires_at)},
                },
            )
        except ClientError as error:
            if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise DependencyUnavailable("the usage counters could not be updated") from error
        except BotoCoreError as error:
            raise DependencyUnavailable("the usage counters could not be reached") from error
        return amount <= limit

    def increment(self, user_id: str, counter: str, *, amount: int, expires_at: int) -> None:
        try:
            self._client.update_item(
                TableName=self._table,
                Key={"pk": {"S": user_id}, "sk": {"S": counter}},
                UpdateExpression="ADD #n :amount SET expires_at = if_not_exists(expires_at, :expires)",
                ExpressionAttributeNames={"#n": "count"},
                ExpressionAttributeValues={":amount": {"N": str(amount)}, ":expires": {"N": str(expires_at)}},
            )
        except ClientError as error:
            raise DependencyUnavailable("the usage counters could not be updated") from error
        except BotoCoreError as error:
            raise DependencyUnavailable("the usage counters could not be reached") from error

    def total(self, user_id: str, prefix: str) -> int:
        query: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :prefix)",
            "ProjectionExpression": "#n",
            "ExpressionAttributeNames": {"#n": "count"},
            "ExpressionAttributeValues": {":pk": {"S": user_id}, ":prefix": {"S": prefix}},
        }
        total = 0
        try:
            while True:  # one page in practice: one item per region
                page = self._client.query(**query)
                total += sum(int(item["count"]["N"]) for item in page.get("Items", []) if "count" in item)
                if "LastEvaluatedKey" not in page:
                    return total
                query["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        except ClientError as error:
            raise DependencyUnavailable("the usage counters could not be read") from error
        except BotoCoreError as error:
            raise DependencyUnavailable("the usage counters could not be reached") from error
