"""DynamoConversationResidue on moto: a deleted conversation's cached answers, jobs and job records go too."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer, IdempotencyConfig
from moto import mock_aws

from adapters.residue import JOB_IDEMPOTENCY_PREFIX, DynamoConversationResidue, job_idempotency_key
from local.resources import create_table

CID, OTHER = "0b0e3f5e-6a3c-4d8e-9b52-1f2a3b4c5d6e", "9f9e3f5e-6a3c-4d8e-9b52-1f2a3b4c5d6e"


@pytest.fixture
def dynamodb() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        create_table(client, "cache", [("key", "HASH")])
        create_table(client, "jobs", [("pk", "HASH"), ("sk", "RANGE")])
        create_table(client, "idem", [("id", "HASH")])
        yield client


def put_job(client: Any, user: str, job_id: str, *, conversation: str | None = None, answer: str | None = None) -> None:
    item: dict[str, Any] = {"pk": {"S": user}, "sk": {"S": job_id}, "message": {"S": "q"}}
    if conversation:
        item["conversation_id"] = {"S": conversation}
    if answer:
        item["answer"] = {"S": json.dumps({"conversation_id": answer, "answer": "a"})}
    client.put_item(TableName="jobs", Item=item)
    client.put_item(TableName="idem", Item={"id": {"S": job_idempotency_key(job_id)}, "data": {"S": "answer"}})


def keys(client: Any, table: str, name: str) -> set[str]:
    return {item[name]["S"] for item in client.scan(TableName=table)["Items"]}


def test_purge_removes_the_conversations_cache_entries_jobs_and_job_records_only(dynamodb: Any) -> None:
    for key in ("k1", "k2", "other"):
        dynamodb.put_item(TableName="cache", Item={"key": {"S": key}, "text": {"S": "t"}})
    put_job(dynamodb, "u", "job-for-it", conversation=CID)
    put_job(dynamodb, "u", "job-that-started-it", answer=CID)  # submitted without an id; its answer created CID
    put_job(dynamodb, "u", "job-for-another", conversation=OTHER)
    put_job(dynamodb, "v", "someone-elses", conversation=CID)  # the same id under another user is not touched
    dynamodb.put_item(TableName="jobs", Item={"pk": {"S": "u"}, "sk": {"S": "#open-jobs"}, "open_jobs": {"SS": ["x"]}})
    residue = DynamoConversationResidue(
        client=dynamodb, cache_table="cache", jobs_table="jobs", idempotency_table="idem"
    )

    residue.purge("u", CID, cache_keys=["k1", "k2", "k2"])
    residue.purge("u", CID, cache_keys=["k1"])  # again: nothing left, no error

    assert keys(dynamodb, "cache", "key") == {"other"}
    assert keys(dynamodb, "jobs", "sk") == {"job-for-another", "someone-elses", "#open-jobs"}
    assert keys(dynamodb, "idem", "id") == {
        job_idempotency_key("job-for-another"),
        job_idempotency_key("someone-elses"),
    }


def test_purge_pages_through_a_user_with_many_jobs(dynamodb: Any) -> None:
    for index in range(60):
        put_job(dynamodb, "u", f"job-{index:03d}", conversation=CID if index % 2 else OTHER)
    residue = DynamoConversationResidue(client=dynamodb, cache_table=None, jobs_table="jobs", idempotency_table=None)
    original = dynamodb.query

    def small_pages(**query: Any) -> Any:
        return original(**{**query, "Limit": 7})

    dynamodb.query = small_pages
    residue.purge("u", CID, cache_keys=[])

    assert len(keys(dynamodb, "jobs", "sk")) == 30 and all(int(k[-3:]) % 2 == 0 for k in keys(dynamodb, "jobs", "sk"))


def test_the_job_record_key_is_the_one_the_worker_stores_under() -> None:
    persistence = DynamoDBPersistenceLayer(table_name="idem")
    persistence.configure(IdempotencyConfig(event_key_jmespath="job_id"), key_prefix=JOB_IDEMPOTENCY_PREFIX)

    job_id = "6a1f7c62-8d8b-5a55-9d7e-1f2a3b4c5d6e"
    assert persistence._get_hashed_idempotency_key({"job_id": job_id, "user_id": "u"}) == job_idempotency_key(job_id)


def test_a_throttled_cleanup_is_a_503_the_client_can_retry() -> None:
    from botocore.exceptions import ClientError

    from core.errors import DependencyUnavailable

    class Throttled:
        def delete_item(self, **_: Any) -> None:
            raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "slow down"}}, "DeleteItem")

    residue = DynamoConversationResidue(
        client=Throttled(), cache_table="cache", jobs_table=None, idempotency_table=None
    )

    with pytest.raises(DependencyUnavailable) as raised:
        residue.purge("u", CID, cache_keys=["k1"])

    assert raised.value.retry_after > 0 and "slow down" not in raised.value.message
