"""The sandbox's embedded AWS: one request at a time, transactions that roll back only what they touched,
queries that read one partition, long polls that hold no one up. Outcomes only, never elapsed times."""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from local.embedded_aws import OneAtATime
from local.processes import moto_server
from local.resources import create_conversations_table


# --- the middleware on its own ------------------------------------------------------------------------
def test_requests_reach_the_wrapped_app_one_at_a_time_with_their_own_bodies() -> None:
    inside, most = [0], [0]
    lock = threading.Lock()

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        with lock:
            inside[0] += 1
            most[0] = max(most[0], inside[0])
        time.sleep(0.002)  # long enough for other threads to arrive
        body = environ["wsgi.input"].read(int(environ["CONTENT_LENGTH"]))
        with lock:
            inside[0] -= 1
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "999")])
        return [b"echo:", body]

    wrapped = OneAtATime(app)

    def call(index: int) -> tuple[str, bytes, dict[str, str]]:
        body = f"request {index}".encode()
        answer: dict[str, Any] = {}

        def start_response(status: str, headers: list[tuple[str, str]]) -> None:
            answer.update(status=status, headers=dict(headers))

        environ = {"wsgi.input": io.BytesIO(body), "CONTENT_LENGTH": str(len(body)), "REQUEST_METHOD": "POST"}
        data = b"".join(wrapped(environ, start_response))
        return answer["status"], data, answer["headers"]

    with ThreadPoolExecutor(max_workers=16) as pool:
        results = list(pool.map(call, range(64)))

    assert most[0] == 1
    assert [data for _, data, _ in results] == [f"echo:request {i}".encode() for i in range(64)]
    assert all(headers["Content-Length"] == str(len(data)) for _, data, headers in results)  # recomputed


# --- moto's server behind it, as the sandbox runs it --------------------------------------------------
@pytest.fixture(scope="module")
def aws() -> Iterator[dict[str, Any]]:
    with moto_server() as url:
        clients = {
            name: boto3.client(name, endpoint_url=url, region_name="us-east-1", aws_access_key_id="x",
                               aws_secret_access_key="x")
            for name in ("dynamodb", "sqs", "s3")
        }  # fmt: skip
        create_conversations_table(clients["dynamodb"], "t")
        yield clients


def _key(user: str, sk: str) -> dict[str, Any]:
    return {"pk": {"S": user}, "sk": {"S": sk}}


def _turn(user: str, index: int) -> list[dict[str, Any]]:
    """A chat turn's transaction: bump the header's count (conditionally) and add the turn item."""
    header: dict[str, Any]
    if index == 0:
        item = {**_key(user, "C#1"), "n": {"N": "1"}}
        header = {"Put": {"TableName": "t", "Item": item, "ConditionExpression": "attribute_not_exists(sk)"}}
    else:
        values = {":n": {"N": str(index)}, ":next": {"N": str(index + 1)}}
        header = {
            "Update": {
                "TableName": "t",
                "Key": _key(user, "C#1"),
                "UpdateExpression": "SET n = :next",
                "ConditionExpression": "n = :n",
                "ExpressionAttributeValues": values,
            }
        }
    item = {**_key(user, f"T#1#{index:06d}"), "text": {"S": "x" * 200}}
    return [header, {"Put": {"TableName": "t", "Item": item, "ConditionExpression": "attribute_not_exists(sk)"}}]


def test_concurrent_transactions_and_queries_on_a_growing_table_lose_nothing(aws: dict[str, Any]) -> None:
    dynamodb = aws["dynamodb"]
    users, turns = 16, 20

    def converse(user: str) -> int:
        for index in range(turns):
            dynamodb.transact_write_items(TransactItems=_turn(user, index))
            history = dynamodb.query(
                TableName="t", KeyConditionExpression="pk = :pk AND begins_with(sk, :t)",
                ExpressionAttributeValues={":pk": {"S": user}, ":t": {"S": "T#1#"}}, ScanIndexForward=False, Limit=3,
            )["Items"]  # fmt: skip
            assert [item["sk"]["S"] for item in history] == [
                f"T#1#{i:06d}" for i in range(index, max(-1, index - 3), -1)
            ]
        return turns

    with ThreadPoolExecutor(max_workers=users) as pool:
        assert sum(pool.map(converse, [f"user-{i}" for i in range(users)])) == users * turns

    for i in range(users):
        header = dynamodb.get_item(TableName="t", Key={"pk": {"S": f"user-{i}"}, "sk": {"S": "C#1"}})["Item"]
        assert header["n"]["N"] == str(turns)
    assert dynamodb.scan(TableName="t", Select="COUNT")["Count"] == users * (turns + 1)


def test_a_cancelled_transaction_undoes_its_own_writes_and_no_one_elses(aws: dict[str, Any]) -> None:
    dynamodb = aws["dynamodb"]
    dynamodb.transact_write_items(TransactItems=_turn("rollback", 0))
    dynamodb.put_item(TableName="t", Item={"pk": {"S": "rollback"}, "sk": {"S": "other"}, "v": {"N": "1"}})

    # The header's update succeeds, then the turn's put fails its condition (turn 0 exists already).
    update, put = _turn("rollback", 1)
    put["Put"]["Item"]["sk"] = {"S": "T#1#000000"}
    with pytest.raises(ClientError) as raised:
        dynamodb.transact_write_items(TransactItems=[update, put])

    assert raised.value.response["Error"]["Code"] == "TransactionCanceledException"
    item = dynamodb.get_item(TableName="t", Key={"pk": {"S": "rollback"}, "sk": {"S": "C#1"}})["Item"]
    assert item["n"]["N"] == "1"  # the update was rolled back
    assert dynamodb.get_item(TableName="t", Key={"pk": {"S": "rollback"}, "sk": {"S": "other"}})["Item"]["v"] == {
        "N": "1"
    }
    dynamodb.transact_write_items(TransactItems=_turn("rollback", 1))  # and the next one goes through
    assert dynamodb.get_item(TableName="t", Key={"pk": {"S": "rollback"}, "sk": {"S": "C#1"}})["Item"]["n"]["N"] == "2"


def test_a_new_item_of_a_cancelled_transaction_is_removed(aws: dict[str, Any]) -> None:
    dynamodb = aws["dynamodb"]
    fresh = {"Put": {"TableName": "t", "Item": {"pk": {"S": "fresh"}, "sk": {"S": "a"}}}}
    failing = {"ConditionCheck": {"TableName": "t", "Key": {"pk": {"S": "fresh"}, "sk": {"S": "missing"}},
                                  "ConditionExpression": "attribute_exists(sk)"}}  # fmt: skip

    with pytest.raises(ClientError):
        dynamodb.transact_write_items(TransactItems=[fresh, failing])

    assert "Item" not in dynamodb.get_item(TableName="t", Key={"pk": {"S": "fresh"}, "sk": {"S": "a"}})


def test_query_pages_through_one_partition_in_order(aws: dict[str, Any]) -> None:
    dynamodb = aws["dynamodb"]
    for i in range(7):
        dynamodb.put_item(TableName="t", Item={"pk": {"S": "pages"}, "sk": {"S": f"s{i}"}})
        dynamodb.put_item(TableName="t", Item={"pk": {"S": "pages-other"}, "sk": {"S": f"s{i}"}})
    seen, start = [], None
    while True:
        page = dynamodb.query(
            TableName="t", KeyConditionExpression="pk = :pk", ExpressionAttributeValues={":pk": {"S": "pages"}},
            Limit=3, **({"ExclusiveStartKey": start} if start else {}),
        )  # fmt: skip
        seen += [item["sk"]["S"] for item in page["Items"]]
        start = page.get("LastEvaluatedKey")
        if not start:
            break

    assert seen == [f"s{i}" for i in range(7)]


def test_a_long_poll_waits_for_its_message_without_holding_up_other_requests(aws: dict[str, Any]) -> None:
    sqs, dynamodb = aws["sqs"], aws["dynamodb"]
    url = sqs.create_queue(QueueName="long-poll")["QueueUrl"]
    events: list[str] = []

    def poll() -> list[dict[str, Any]]:
        messages = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=10).get("Messages", [])
        events.append("poll answered")
        return messages  # type: ignore[no-any-return]

    with ThreadPoolExecutor(max_workers=1) as pool:
        polling = pool.submit(poll)
        time.sleep(0.2)  # most likely waiting by now (if not, the test still holds, it just proves less)
        dynamodb.put_item(TableName="t", Item={"pk": {"S": "while-polling"}, "sk": {"S": "x"}})
        events.append("put answered")  # the poll's wait did not hold the put up
        sqs.send_message(QueueUrl=url, MessageBody="hello")
        messages = polling.result(timeout=30)

    assert events == ["put answered", "poll answered"]
    assert [message["Body"] for message in messages] == ["hello"]


def test_an_s3_head_keeps_the_objects_length_and_a_get_its_bytes(aws: dict[str, Any]) -> None:
    s3 = aws["s3"]
    s3.create_bucket(Bucket="documents")
    s3.put_object(Bucket="documents", Key="a.txt", Body=b"hello world")

    assert s3.head_object(Bucket="documents", Key="a.txt")["ContentLength"] == 11
    assert s3.get_object(Bucket="documents", Key="a.txt")["Body"].read() == b"hello world"


def test_a_retried_transaction_with_the_same_token_is_answered_once_as_dynamodb_does(aws: dict[str, Any]) -> None:
    # GIVEN a transaction that committed, whose answer the client lost (a read timeout) and retries
    dynamodb = aws["dynamodb"]
    items = _turn("idem-user", 0)
    dynamodb.transact_write_items(TransactItems=items, ClientRequestToken="token-1")

    # WHEN the same request comes again: the same answer, not a cancellation by its own first run
    dynamodb.transact_write_items(TransactItems=items, ClientRequestToken="token-1")

    # THEN it ran once; the same token with another request is refused as DynamoDB refuses it
    assert dynamodb.get_item(TableName="t", Key=_key("idem-user", "C#1"))["Item"]["n"] == {"N": "1"}
    with pytest.raises(ClientError) as mismatch:
        dynamodb.transact_write_items(TransactItems=_turn("idem-user", 1), ClientRequestToken="token-1")
    assert mismatch.value.response["Error"]["Code"] == "IdempotentParameterMismatchException"
    with pytest.raises(ClientError) as again:  # a new token runs it again: the condition now fails
        dynamodb.transact_write_items(TransactItems=items, ClientRequestToken="token-2")
    assert again.value.response["Error"]["Code"] == "TransactionCanceledException"
