"""Per-user counters (UsageCounters) on DynamoDB: pk = the user's sub, sk = counter name and window."""

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
