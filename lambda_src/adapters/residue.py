"""ConversationResidue on DynamoDB: what a deleted conversation leaves outside its own table.

- response-cache entries its answers were stored under (their keys are listed on the conversation);
- its jobs (the job row holds the question and the answer): those submitted for it, and those whose answer
  started it (a job without a conversation id creates one; its answer names it);
- the worker's idempotency record of each such job (it holds the answer).
Each delete is idempotent, so a retried DELETE finishes a cleanup that failed half-way.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

from adapters.aws_errors import dependency

# The worker keys its idempotency records "<prefix>#<md5 of the JSON job id>" (Powertools, event key
# "job_id", this key_prefix), so the API can find a job's record without knowing the worker's name.
JOB_IDEMPOTENCY_PREFIX = "bulwark-job"


def job_idempotency_key(job_id: str) -> str:
    digest = hashlib.md5(json.dumps(job_id, sort_keys=True).encode(), usedforsecurity=False).hexdigest()
    return f"{JOB_IDEMPOTENCY_PREFIX}#{digest}"


class DynamoConversationResidue:
    def __init__(
        self,
        *,
        client: Any,
        cache_table: str | None,
        jobs_table: str | None,
        idempotency_table: str | None,
    ) -> None:
        self._client = client
        self._cache_table = cache_table
        self._jobs_table = jobs_table
        self._idempotency_table = idempotency_table

    @dependency("DynamoDB (the answer cache, jobs and job records)", "delete the conversation's copies")
    def purge(self, user_id: str, conversation_id: str, *, cache_keys: Sequence[str]) -> None:
        if self._cache_table:
            for key in dict.fromkeys(cache_keys):
                self._client.delete_item(TableName=self._cache_table, Key={"key": {"S": key}})
        if not self._jobs_table:
            return
        for job_id in self._jobs_of(user_id, conversation_id):
            if self._idempotency_table:
                self._client.delete_item(
                    TableName=self._idempotency_table, Key={"id": {"S": job_idempotency_key(job_id)}}
                )
            self._client.delete_item(TableName=self._jobs_table, Key={"pk": {"S": user_id}, "sk": {"S": job_id}})

    def _jobs_of(self, user_id: str, conversation_id: str) -> list[str]:
        """The user's jobs for this conversation. A filter on the user's partition: a user has few jobs
        (finished ones expire after a week), and a delete is rare."""
        query: dict[str, Any] = {
            "TableName": self._jobs_table,
            "KeyConditionExpression": "pk = :pk",
            "FilterExpression": "conversation_id = :c OR contains(answer, :c)",
            "ExpressionAttributeValues": {":pk": {"S": user_id}, ":c": {"S": conversation_id}},
            "ProjectionExpression": "sk",
        }
        found: list[str] = []
        while True:
            page = self._client.query(**query)
            found += [item["sk"]["S"] for item in page.get("Items", [])]
            if "LastEvaluatedKey" not in page:
                return found
            query["ExclusiveStartKey"] = page["LastEvaluatedKey"]
