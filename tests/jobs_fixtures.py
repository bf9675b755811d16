"""The jobs path wired on moto (DynamoDB, SQS) and the Bedrock emulator, as the stacks define it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

import boto3

from handlers.settings import Settings
from local.bedrock_emulator import BedrockEmulator
from local.sqs_pump import SqsPump
from tests.unit.dynamo_table import create_conversations_table

MODEL = ("us.amazon.nova-lite-v1:0", "us-east-1")


@dataclass
class JobsWorld:
    settings: Settings
    dynamodb: Any
    sqs: Any
    queue_url: str
    queue_arn: str
    dlq_url: str
    emulator: BedrockEmulator
    worker: Any

    def pump(self, *, max_concurrency: int = 2, batch_size: int = 1) -> SqsPump:
        return SqsPump(
            client=self.sqs,
            queue_url=self.queue_url,
            queue_arn=self.queue_arn,
            handler=self.worker,
            batch_size=batch_size,
            max_concurrency=max_concurrency,
        )

    def depth(self, url: str) -> int:
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
                            "ApproximateNumberOfMessagesDelayed"],
        )["Attributes"]  # fmt: skip
        return sum(int(v) for v in attributes.values())


def create_tables(dynamodb: Any, settings: Settings) -> None:
    create_conversations_table(dynamodb, settings.table_name)
    for name, keys in (
        (settings.cache_table_name, [("key", "HASH")]),
        (settings.jobs_table_name, [("pk", "HASH"), ("sk", "RANGE")]),
        (settings.idempotency_table_name, [("id", "HASH")]),
    ):
        dynamodb.create_table(
            TableName=name,
            KeySchema=[{"AttributeName": k, "KeyType": t} for k, t in keys],
            AttributeDefinitions=[{"AttributeName": k, "AttributeType": "S"} for k, _ in keys],
            BillingMode="PAY_PER_REQUEST",
        )


def provision_queues(sqs: Any, *, visibility_s: int, max_receives: int) -> tuple[str, str, str]:
    """The requests queue and its DLQ as the stack defines them: (queue url, queue arn, dlq url)."""
    dlq_url = sqs.create_queue(QueueName="jobs-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    queue_url = sqs.create_queue(
        QueueName="jobs",
        Attributes={
            "VisibilityTimeout": str(visibility_s),
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(max_receives)}),
        },
    )["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return queue_url, queue_arn, dlq_url


@contextmanager
def jobs_world(
    faults: dict[str, Any] | None = None, *, visibility_s: int = 1, max_receives: int = 4, **overrides: Any
) -> Iterator[JobsWorld]:
    from moto import mock_aws

    from handlers.worker import build_handler

    with mock_aws(), BedrockEmulator(faults or {"default": {"latency_ms": [1, 3]}}) as emulator:
        dynamodb = boto3.client("dynamodb", region_name="us-east-1")
        sqs = boto3.client("sqs", region_name="us-east-1")
        queue_url, queue_arn, dlq_url = provision_queues(sqs, visibility_s=visibility_s, max_receives=max_receives)
        settings = replace(
            Settings.from_env(),
            targets=(replace(Settings.from_env().targets[0], model_id=MODEL[0], region=MODEL[1]),),
            cache_table_name="cache-test",
            jobs_table_name="jobs-test",
            jobs_queue_url=queue_url,
            idempotency_table_name="idempotency-test",
            max_receive_count=max_receives,
            **overrides,
        )
        create_tables(dynamodb, settings)

        def bedrock(region: str, config: Any) -> Any:
            return boto3.client(
                "bedrock-runtime", region_name=region, endpoint_url=emulator.url, config=config,
                aws_access_key_id="e", aws_secret_access_key="e",
            )  # fmt: skip

        worker = build_handler(settings, dynamodb=dynamodb, sqs=sqs, bedrock_factory=bedrock)
        yield JobsWorld(settings, dynamodb, sqs, queue_url, queue_arn, dlq_url, emulator, worker)
