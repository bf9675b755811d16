"""JobStore on DynamoDB (pk = the user's sub, sk = job id) and JobQueue on SQS.

Disaster recovery attributes: `owner_region` (the region whose queue holds the job), `heartbeat_at` (when the
owner last worked on it; removed when the job finishes) and `accepted_in`. The index OPEN_JOBS_INDEX (partition
owner_region, sort heartbeat_at) is therefore sparse: it holds open jobs only, without their text.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from typing import Any

from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit
from botocore.exceptions import ClientError

from adapters.aws_errors import dependency
from core.models import Job, OpenJob

_JOBS = "DynamoDB (the jobs table)"
# The jobs table's sparse index of open jobs by owner region and heartbeat (stacks/data_stack.py declares it).
OPEN_JOBS_INDEX = "OpenJobsByOwner"
OPEN_JOBS_INDEX_ATTRIBUTES = ("status", "created_at", "enqueued")  # projected besides the keys; never the text
# A job is open in these states; the index and every ownership condition only concern open jobs.
_OPEN_STATES = "#s = :queued OR #s = :running"
_OPEN = f"({_OPEN_STATES})"
_OWNED_HERE = "(attribute_not_exists(owner_region) OR owner_region = :me)"


def _used(values: dict[str, Any], *expressions: str) -> dict[str, Any]:
    """The values the expressions name (DynamoDB refuses a request that passes one it does not use)."""
    text = " ".join(expressions)
    return {name: value for name, value in values.items() if re.search(rf"{re.escape(name)}(?![A-Za-z0-9_])", text)}


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
        owner_region=item.get("owner_region", {}).get("S"),
        heartbeat_at=float(item["heartbeat_at"]["N"]) if "heartbeat_at" in item else None,
        accepted_in=item.get("accepted_in", {}).get("S"),
        kind=item.get("kind", {}).get("S", "chat"),
        document_id=item.get("document_id", {}).get("S"),
        progress={k: int(v["N"]) for k, v in item["progress"]["M"].items()} if "progress" in item else None,
    )


def _open_job(item: dict[str, Any]) -> OpenJob:
    return OpenJob(
        job_id=item["sk"]["S"],
        user_id=item["pk"]["S"],
        status=item["status"]["S"],
        created_at=float(item["created_at"]["N"]),
        owner_region=item["owner_region"]["S"],
        heartbeat_at=float(item["heartbeat_at"]["N"]),
        enqueued=item.get("enqueued", {}).get("BOOL", False),
    )


class DynamoJobStore:
    def __init__(
        self, *, client: Any, table_name: str, clock: Callable[[], float] = time.time, region: str | None = None
    ) -> None:
        """`region`: this replica's region (default: the client's, the Lambda's own)."""
        self._client = client
        self._table = table_name
        self._clock = clock
        self._region = region or str(client.meta.region_name)

    @property
    def region(self) -> str:
        return self._region

    def _open_values(self) -> dict[str, Any]:
        return {":queued": {"S": "queued"}, ":running": {"S": "running"}, ":me": {"S": self._region}}

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
        if job.kind != "chat":  # a workflow job (core.workflow): its kind and the document it works on
            item["kind"] = {"S": job.kind}
            item["document_id"] = {"S": job.document_id or ""}
        for name, value in (("owner_region", job.owner_region), ("accepted_in", job.accepted_in)):
            if value is not None:
                item[name] = {"S": value}
        if job.heartbeat_at is not None:
            item["heartbeat_at"] = {"N": repr(job.heartbeat_at)}
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

    def mark_enqueued(self, user_id: str, job_id: str) -> None:
        # Only while open and ours: a finished job must not get a heartbeat back (it would re-enter the index).
        self._update_if(
            user_id, job_id, "SET enqueued = :t, heartbeat_at = :now", f"{_OPEN} AND {_OWNED_HERE}",
            {":t": {"BOOL": True}},
        )  # fmt: skip

    def heartbeat(self, user_id: str, job_id: str) -> bool:
        return self._update_if(user_id, job_id, "SET heartbeat_at = :now", f"{_OPEN} AND {_OWNED_HERE}", {})

    def claim(self, user_id: str, job_id: str, *, owner_region: str | None, heartbeat_at: float | None) -> bool:
        values: dict[str, Any] = {":f": {"BOOL": False}}
        if owner_region is None:
            owner = "attribute_not_exists(owner_region)"
        else:
            owner, values[":seen_owner"] = "owner_region = :seen_owner", {"S": owner_region}
        if heartbeat_at is None:
            beat = "attribute_not_exists(heartbeat_at)"
        else:
            beat, values[":seen_beat"] = "heartbeat_at = :seen_beat", {"N": repr(heartbeat_at)}
        return self._update_if(
            user_id, job_id, "SET owner_region = :me, heartbeat_at = :now, enqueued = :f",
            f"{_OPEN} AND {owner} AND {beat}", values,
        )  # fmt: skip

    @dependency(_JOBS, "update the job")
    def _update_if(self, user_id: str, job_id: str, update: str, condition: str, values: dict[str, Any]) -> bool:
        """One conditional update of an existing job; False when the condition did not hold."""
        try:
            self._client.update_item(
                TableName=self._table,
                Key=_key(user_id, job_id),
                UpdateExpression=update,
                ConditionExpression=f"attribute_exists(sk) AND {condition}",
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues=_used(
                    {**self._open_values(), ":now": {"N": repr(self._clock())}, **values}, update, condition
                ),
            )
        except ClientError as error:
            if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def open_jobs(self, owner_region: str, *, heartbeat_before: float) -> Iterator[OpenJob]:
        start: dict[str, Any] | None = None
        while True:
            with dependency(_JOBS, "list the open jobs"):
                page = self._client.query(
                    TableName=self._table,
                    IndexName=OPEN_JOBS_INDEX,
                    KeyConditionExpression="owner_region = :o AND heartbeat_at <= :before",
                    ExpressionAttributeValues={":o": {"S": owner_region}, ":before": {"N": repr(heartbeat_before)}},
                    ScanIndexForward=True,  # the longest quiet first
                    **({"ExclusiveStartKey": start} if start else {}),
                )
            yield from (_open_job(item) for item in page.get("Items", []))
            start = page.get("LastEvaluatedKey")
            if not start:
                return

    def mark_running(self, user_id: str, job_id: str, *, reopen: bool = False) -> str | None:
        # An open job only if it is ours (or nobody's: from before owners); a redriven failed job whoever had
        # it. Either way this region owns it from now on and its heartbeat starts again.
        condition = f"({_OPEN} AND {_OWNED_HERE} OR #s = :failed)" if reopen else f"{_OPEN} AND {_OWNED_HERE}"
        running, refused = self._transition(
            user_id, job_id, "running", {"owner_region": {"S": self._region}}, condition=condition, heartbeat=True,
            values={":failed": {"S": "failed"}} if reopen else {},
        )  # fmt: skip
        if running is not None:
            return None
        if refused is None:  # the service did not return the item: read it
            with dependency(_JOBS, "read the job"):
                refused = self._client.get_item(TableName=self._table, Key=_key(user_id, job_id), ConsistentRead=True)
            refused = refused.get("Item")
            if refused is None:
                return None
        owner = refused.get("owner_region", {}).get("S")
        if refused.get("status", {}).get("S") in ("queued", "running") and owner not in (None, self._region):
            return str(owner)
        return None  # finished meanwhile: as before, the caller goes on (its own writes are conditional too)

    def progress(self, user_id: str, job_id: str, *, done: int, total: int) -> bool:
        """A workflow job's steps done of total (running, heartbeat refreshed): only while it is open and ours."""
        progress = {"M": {"done": {"N": str(done)}, "total": {"N": str(total)}}}
        running, _ = self._transition(user_id, job_id, "running", {"progress": progress},
                                      condition=f"{_OPEN} AND {_OWNED_HERE}", heartbeat=True)  # fmt: skip
        return running is not None

    def finish(self, user_id: str, job_id: str, answer: dict[str, Any], *, ttl_s: int) -> Job | None:
        done, _ = self._transition(user_id, job_id, "done", {"answer": {"S": json.dumps(answer)}}, condition=_OPEN,
                                   ttl_s=ttl_s)  # fmt: skip
        return done

    def fail(self, user_id: str, job_id: str, reason: str, *, ttl_s: int, reopen: bool = False) -> Job | None:
        condition = f"({_OPEN_STATES} OR #s = :failed)" if reopen else _OPEN
        failed, _ = self._transition(
            user_id, job_id, "failed", {"reason": {"S": reason}}, condition=condition, ttl_s=ttl_s,
            values={":failed": {"S": "failed"}} if reopen else {},
        )  # fmt: skip
        return failed

    @dependency(_JOBS, "update the job")
    def _transition(
        self,
        user_id: str,
        job_id: str,
        status: str,
        extra: dict[str, Any],
        *,
        condition: str,
        values: dict[str, Any] | None = None,
        heartbeat: bool = False,
        ttl_s: int | None = None,
    ) -> tuple[Job | None, dict[str, Any] | None]:
        """Set `status` (and `extra`) where `condition` holds: (the job now, None), or (None, the item as it was,
        if it exists) when it did not. An open status keeps a heartbeat; a finished one drops it (and so
        leaves the recovery index)."""
        now = self._clock()
        names = {"#s": "status"}
        values = {**self._open_values(), ":s": {"S": status}, ":now": {"N": repr(now)}, **(values or {})}
        sets = ["#s = :s", "updated_at = :now"]
        for index, (name, value) in enumerate(extra.items()):
            names[f"#x{index}"] = name
            values[f":x{index}"] = value
            sets.append(f"#x{index} = :x{index}")
        if heartbeat:
            sets.append("heartbeat_at = :now")
        if ttl_s is not None:
            values[":exp"] = {"N": str(int(now) + ttl_s)}
            sets.append("expires_at = :exp")
        update = "SET " + ", ".join(sets) + ("" if heartbeat else " REMOVE heartbeat_at")
        condition = f"attribute_exists(sk) AND {condition}"
        try:
            result = self._client.update_item(
                TableName=self._table,
                Key=_key(user_id, job_id),
                UpdateExpression=update,
                ConditionExpression=condition,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=_used(values, update, condition),
                ReturnValues="ALL_NEW",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as error:
            if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return None, error.response.get("Item")  # already finished, owned elsewhere or gone
            raise
        return _job(result["Attributes"]), None


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


# What disaster recovery did, as metric names (counts only; no dimension that could carry user data).
JOB_EVENT_METRICS = {
    "adopted": "JobsAdopted",  # taken over from a region that went quiet
    "resent": "JobsResent",  # this region's own job, never sent (a crashed submit or adoption), sent now
    "stale_failed": "JobsFailedStale",  # failed for its age by the sweep or a status read
    "claim_lost": "JobClaimsLost",  # another pass or the owner changed the job first (a race, resolved)
    "owned_elsewhere": "JobsOwnedElsewhere",  # a worker dropped a message of a job another region adopted
    "settled": "JobsSettled",  # a worker delayed its own long-quiet job until replication converged (failback)
}


class PowertoolsJobEvents:
    """JobEvents as EMF metrics: into `metrics` (the handler's set, flushed with it) when given, otherwise each
    flushed on its own, as the gateway's metrics are."""

    def __init__(self, metrics: Any = None) -> None:
        self._metrics = metrics

    def record(self, event: str) -> None:
        name = JOB_EVENT_METRICS.get(event, event)
        if self._metrics is not None:
            self._metrics.add_metric(name=name, unit=MetricUnit.Count, value=1)
            return
        single = EphemeralMetrics()
        single.add_metric(name=name, unit=MetricUnit.Count, value=1)
        single.flush_metrics()
