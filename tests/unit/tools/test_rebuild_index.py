"""tools/rebuild_index.py on moto: which objects it sends (current versions under documents/, never a deleted
key), the forced notification's shape (no sequencer: it never outranks a real upload) and the batches."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from handlers.ingest import object_events
from local.resources import create_table
from tools.rebuild_index import current_documents, enqueue, ready_chunks, rebuild_message

BUCKET = "documents-rebuild"


@pytest.fixture
def s3() -> Iterator[Any]:
    from moto import mock_aws

    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        client.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
        yield client


def test_only_current_documents_are_listed(s3: Any) -> None:
    s3.put_object(Bucket=BUCKET, Key="documents/alice/one", Body=b"old")
    newest = s3.put_object(Bucket=BUCKET, Key="documents/alice/one", Body=b"newer text")
    s3.put_object(Bucket=BUCKET, Key="documents/bob/gone", Body=b"x")
    s3.delete_object(Bucket=BUCKET, Key="documents/bob/gone")
    s3.put_object(Bucket=BUCKET, Key="other/alice/one", Body=b"x")

    assert list(current_documents(s3, BUCKET)) == [
        {"key": "documents/alice/one", "version_id": newest["VersionId"], "size": len(b"newer text")}
    ]


def test_the_message_is_a_forced_created_event_without_a_sequencer() -> None:
    body = rebuild_message(BUCKET, {"key": "documents/alice/my doc", "version_id": "v1", "size": 3}, "us-west-2")
    (event,) = object_events(body)
    assert (event.created, event.force, event.owner, event.document_id) == (True, True, "alice", "my doc")
    assert (event.version_id, event.sequencer) == ("v1", "0")
    assert json.loads(body)["Records"][0]["awsRegion"] == "us-west-2"


def test_an_s3_notification_is_never_forced() -> None:
    body = json.loads(rebuild_message(BUCKET, {"key": "documents/a/b", "version_id": "v", "size": 1}, "us-east-1"))
    del body["force"]
    assert [e.force for e in object_events(json.dumps(body))] == [False]
    body["force"] = "true"  # only the JSON literal true
    assert [e.force for e in object_events(json.dumps(body))] == [False]


def test_messages_go_in_batches_of_ten_and_chunks_are_counted() -> None:
    from moto import mock_aws

    with mock_aws():
        sqs = boto3.client("sqs", region_name="us-east-1")
        url = sqs.create_queue(QueueName="ingest")["QueueUrl"]
        assert enqueue(sqs, url, [json.dumps({"n": i}) for i in range(23)]) == 23
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
        assert attributes["Attributes"]["ApproximateNumberOfMessages"] == "23"

        dynamodb = boto3.client("dynamodb", region_name="us-east-1")
        create_table(dynamodb, "docs", [("pk", "HASH"), ("sk", "RANGE")])

        def status(document: str, state: str, chunks: int, region: str = "us-east-1") -> dict[str, Any]:
            return {"pk": {"S": "u"}, "sk": {"S": f"{document}#status#{region}"}, "region": {"S": region},
                    "state": {"S": state}, "chunk_count": {"N": str(chunks)}}  # fmt: skip

        for document in "abcd":
            dynamodb.put_item(TableName="docs", Item={"pk": {"S": "u"}, "sk": {"S": document}})
        dynamodb.put_item(TableName="docs", Item=status("a", "ready", 4))
        dynamodb.put_item(TableName="docs", Item=status("a", "failed", 0, region="us-west-2"))  # not this region's
        dynamodb.put_item(TableName="docs", Item=status("b", "ready", 3))
        dynamodb.put_item(TableName="docs", Item=status("c", "failed", 0))
        dynamodb.put_item(TableName="docs", Item=status("d", "ready", 9))
        dynamodb.update_item(TableName="docs", Key={"pk": {"S": "u"}, "sk": {"S": "d"}},
                             UpdateExpression="SET deleted_at = :t",
                             ExpressionAttributeValues={":t": {"S": "2027-01-01T00:00:00Z"}})  # fmt: skip
        dynamodb.put_item(TableName="docs", Item={  # a record of the old layout: status map on the metadata item
            "pk": {"S": "u"}, "sk": {"S": "e"},
            "status": {"M": {"us-east-1": {"M": {"state": {"S": "ready"}, "chunk_count": {"N": "2"}}}}},
        })  # fmt: skip
        assert ready_chunks(dynamodb, "docs", "us-east-1") == (3, 9)
