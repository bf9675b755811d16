"""JobStore on DynamoDB (pk = the user's sub, sk = job id) and JobQueue on SQS."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError

from adapters.aws_errors import dependency
from core.models import Job

_JOBS = "DynamoDB (the jobs table)"


def _key(user_id: str, job_id: str) -> dict[str, Any]:
    return {"pk": {"S": user_id}, "sk": {"S": job_id}}


def _job(item: dict[str, Any]) -> Job:
    return Job(
        job_id=item["sk"]["S"],
        user_id=item["pk"]["S"],
        message=item["message"]["S"],
        conversation_id=item.get("conversation_id", {}).get("S"),
        status=item["status"]["S"],
        created_at=float(item["created_at"]["N"]),
        updated_at=float(item["updated_at"]["N"]),
        enqueued=item.get("enqueued", {}).get("BOOL", False),
        answer=json.loads(item["answer"]["S"]) if "answer" in item else None,
        reason=item.get("reason", {}).get("S"),
    )


class DynamoJobStore:
    def __init__(self, *, client: Any, table_name: str, clock: Callable[[], float] = time.time) -> None:
        self._client = client
        self._table = table_name
        self._clock = clock

    @dependency(_JOBS, "store your job")
    def create(self, job: Job) -> tuple[Job, bool]:
        item: dict[str, Any] = {
            **_key(job.user_id, job.job_id),
            "message": {"S": job.message},
            "status": {"S": job.status},
            "created_at": {"N": repr(job.created_at)},
            "updated_at": {"N": repr(job.updated_at)},
            "enqueued": {"BOOL": False},
            # Unfinished jobs also expire eventually (long after they would be reported stale).
            "expires_at": {"N": str(int(job.created_at) + 30 * 86_400)},
        }
        if job.conversation_id is not None:
            item["conversation_id"] = {"S": job.conversation_id}
        try:
            self._client.put_item(
                TableName=self._table,
                Item=item,
                ConditionExpression="attribute_not_exists(sk)",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as error:
            if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
            existing = (
                error.response.get("Item")
                or self._client.get_item(TableName=self._table, Key=_key(job.user_id, job.job_id), ConsistentRead=True)[
                    "Item"
                ]
            )
            return _job(existing), False
        return job, True

    @dependency(_JOBS, "read the job")
    def get(self, user_id: str, job_id: str) -> Job | None:
        item = self._client.get_item(TableName=self._table, Key=_key(user_id, job_id), ConsistentRead=True).get("Item")
        return None if item is None else _job(item)

    @dependency(_JOBS, "update the job")
    def mark_enqueued(self, user_id: str, job_id: str) -> None:
        self._client.update_item(
            TableName=self._table,
            Key=_key(user_id, job_id),
            UpdateExpression="SET enqueued = :t",
            ConditionExpression="attribute_exists(sk)",
            ExpressionAttributeValues={":t": {"BOOL": True}},
        )

    def mark_running(self, user_id: str, job_id: str, *, reopen: bool = False) -> None:
        allowed = ("queued", "running", "failed") if reopen else ("queued", "running")
        self._transition(user_id, job_id, "running", {}, allowed=allowed)

    def finish(self, user_id: str, job_id: str, answer: dict[str, Any], *, ttl_s: int) -> Job | None:
        return self._transition(
            user_id, job_id, "done", {"answer": {"S": json.dumps(answer)}}, ttl_s=ttl_s, allowed=("queued", "running")
        )

    def fail(self, user_id: str, job_id: str, reason: str, *, ttl_s: int, reopen: bool = False) -> Job | None:
        allowed = ("queued", "running", "failed") if reopen else ("queued", "running")
        return self._transition(user_id, job_id, "failed", {"reason": {"S": reason}}, ttl_s=ttl_s, allowed=allowed)

    @dependency(_JOBS, "update the job")
    def _transition(
        self,
        user_id: str,
        job_id: str,
        status: str,
        extra: dict[str, Any],
        *,
        allowed: tuple[str, ...],
        ttl_s: int | None = None,
    ) -> Job | None:
        now = self._clock()
        names = {"#s": "status"}
        values: dict[str, Any] = {":s": {"S": status}, ":now": {"N": repr(now)}}
        sets = ["#s = :s", "updated_at = :now"]
        for index, (name, value) in enumerate(extra.items()):
            names[f"#x{index}"] = name
            values[f":x{index}"] = value
            sets.append(f"#x{index} = :x{index}")
        if ttl_s is not None:
            values[":exp"] = {"N": str(int(now) + ttl_s)}
            sets.append("expires_at = :exp")
        conditions = []
        for index, state in enumerate(allowed):
            values[f":a{index}"] = {"S": state}
            conditions.append(f"#s = :a{index}")
        try:
            result = self._client.update_item(
                TableName=self._table,
                Key=_key(user_id, job_id),
                UpdateExpression="SET " + ", ".join(sets),
                ConditionExpression=f"attribute_exists(sk) AND ({' OR '.join(conditions)})",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
                ReturnValues="ALL_NEW",
            )
        except ClientError as error:
            if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return None  # already finished (or gone): a repeat is a no-op
            raise
        return _job(result["Attributes"])


class DynamoOpenJobSlots:
    """OpenJobSlots in the jobs table: one item per user (sk "#open-jobs") holding a string set of job ids.

    A set, not a counter, so every call is idempotent: a retried reserve or a repeated release changes
    nothing, and a slot held by a job that is gone can be found and freed."""

    _SK = "#open-jobs"

    def __init__(self, *, client: Any, table_name: str) -> None:
        self._client = client
        self._table = table_name

    @dependency(_JOBS, "count your open jobs")
    def reserve(self, user_id: str, job_id: str, *, cap: int) -> bool:
        try:
            self._client.update_item(
                TableName=self._table,
                Key=_key(user_id, self._SK),
                UpdateExpression="ADD #j :ids",
                ConditionExpression="attribute_not_exists(#j) OR size(#j) < :cap OR contains(#j, :id)",
                ExpressionAttributeNames={"#j": "open_jobs"},
                ExpressionAttributeValues={":ids": {"SS": [job_id]}, ":cap": {"N": str(cap)}, ":id": {"S": job_id}},
            )
        except ClientError as error:
            if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise
        return True

    @dependency(_JOBS, "update your open jobs")
    def release(self, user_id: str, job_id: str) -> None:
        try:
            self._client.update_item(
                TableName=self._table,
                Key=_key(user_id, self._SK),
                UpdateExpression="DELETE #j :ids",
                ConditionExpression="attribute_exists(pk)",
                ExpressionAttributeNames={"#j": "open_jobs"},
                ExpressionAttributeValues={":ids": {"SS": [job_id]}},
            )
        except ClientError as error:
            if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise

    @dependency(_JOBS, "read your open jobs")
    def held(self, user_id: str) -> list[str]:
        item = self._client.get_item(TableName=self._table, Key=_key(user_id, self._SK), ConsistentRead=True)
        return sorted(item.get("Item", {}).get("open_jobs", {}).get("SS", []))


class SqsJobQueue:
    """Sends to the requests queue. The client may be a factory: the chat Lambda then pays for the
    SQS client on its first job, not on every cold start."""

    def __init__(self, *, client: Any = None, client_factory: Callable[[], Any] | None = None, queue_url: str) -> None:
        self._client = client
        self._factory = client_factory
        self._url = queue_url

    @dependency("SQS (the jobs queue)", "queue the job")
    def send(self, body: dict[str, Any], *, delay_s: int = 0) -> None:
        if self._client is None:
            assert self._factory is not None, "SqsJobQueue needs a client or a client_factory"
            self._client = self._factory()
        self._client.send_message(QueueUrl=self._url, MessageBody=json.dumps(body), DelaySeconds=min(900, delay_s))
