"""The app's tables and queues on any DynamoDB/SQS endpoint (moto), keyed as the Data and Api stacks
define them. For tests and benchmarks that need them without a synthesized template; the sandbox
builds its own from the templates."""

from __future__ import annotations

import json
from typing import Any

from handlers.settings import Settings

_PK_SK = [("pk", "HASH"), ("sk", "RANGE")]


def create_table(client: Any, name: str, keys: list[tuple[str, str]]) -> None:
    client.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": key, "KeyType": kind} for key, kind in keys],
        AttributeDefinitions=[{"AttributeName": key, "AttributeType": "S"} for key, _ in keys],
        BillingMode="PAY_PER_REQUEST",
    )


def create_conversations_table(client: Any, name: str) -> None:
    create_table(client, name, _PK_SK)


def create_tables(dynamodb: Any, settings: Settings) -> None:
    """Every table the settings name: conversations, response cache, jobs, idempotency records."""
    create_conversations_table(dynamodb, settings.table_name)
    for name, keys in (
        (settings.cache_table_name, [("key", "HASH")]),
        (settings.jobs_table_name, _PK_SK),
        (settings.idempotency_table_name, [("id", "HASH")]),
        (settings.usage_table_name, _PK_SK),
    ):
        if name:
            create_table(dynamodb, name, keys)


def provision_queues(sqs: Any, *, visibility_s: int, max_receives: int, name: str = "jobs") -> tuple[str, str, str]:
    """The requests queue and its DLQ as the stack defines them: (queue url, queue arn, dlq url)."""
    dlq_url = sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    queue_url = sqs.create_queue(
        QueueName=name,
        Attributes={
            "VisibilityTimeout": str(visibility_s),
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(max_receives)}),
        },
    )["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return queue_url, queue_arn, dlq_url
