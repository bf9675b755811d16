"""The jobs path wired on moto (DynamoDB, SQS) and the Bedrock emulator, as the stacks define it; and the same in
two regions (`two_regions`), whose global-table replication the test plays itself (moto does none)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

import boto3

from adapters.jobs import OPEN_JOBS_INDEX, OPEN_JOBS_INDEX_ATTRIBUTES, DynamoJobStore, DynamoOpenJobSlots
from core.jobs import JobService
from handlers.settings import RecoverySettings, Settings
from local.bedrock_emulator import BedrockEmulator
from local.lambda_context import LocalContext
from local.resources import create_tables, provision_queues
from local.sqs_pump import SqsPump

MODEL = ("us.amazon.nova-lite-v1:0", "us-east-1")
PRIMARY, DR = "us-east-1", "us-west-2"


def add_open_jobs_index(dynamodb: Any, table_name: str) -> None:
    """The jobs table's recovery index as the Data stack declares it (tests/infra holds the two together)."""
    dynamodb.update_table(
        TableName=table_name,
        AttributeDefinitions=[
            {"AttributeName": "owner_region", "AttributeType": "S"},
            {"AttributeName": "heartbeat_at", "AttributeType": "N"},
        ],
        GlobalSecondaryIndexUpdates=[
            {
                "Create": {
                    "IndexName": OPEN_JOBS_INDEX,
                    "KeySchema": [
                        {"AttributeName": "owner_region", "KeyType": "HASH"},
                        {"AttributeName": "heartbeat_at", "KeyType": "RANGE"},
                    ],
                    "Projection": {"ProjectionType": "INCLUDE", "NonKeyAttributes": list(OPEN_JOBS_INDEX_ATTRIBUTES)},
                }
            }
        ],
    )


@dataclass
class JobsWorld:
    settings: Settings
    dynamodb: Any
    sqs: Any
    queue_url: str
    queue_arn: str
    dlq_url: str
    emulator: BedrockEmulator
    worker: Any  # the worker Lambda's handler
    jobs: JobService  # the API side's job service (submit, status) on the same tables and queue
    chat: Any = None  # the API Lambda's handler on this world

    def bedrock(self, region: str, config: Any) -> Any:
        return boto3.client(
            "bedrock-runtime", region_name=region, endpoint_url=self.emulator.url, config=config,
            aws_access_key_id="e", aws_secret_access_key="e",
        )  # fmt: skip

    def api(self, **changes: Any) -> Any:
        """A fresh API Lambda environment on this world (settings changed by `changes`)."""
        from handlers import chat

        return chat.bootstrap(
            self.settings.but(**changes), dynamodb=self.dynamodb, sqs=self.sqs, bedrock_factory=self.bedrock
        )

    def worker_jobs(self) -> JobService:
        """Rebuild the worker around a job service the test may patch (fault injection), and return it."""
        from handlers import worker

        clients = {"dynamodb": self.dynamodb, "sqs": self.sqs, "bedrock_factory": self.bedrock}
        jobs = worker.build_worker_jobs(self.settings, **clients)
        self.worker = worker.bootstrap(self.settings, jobs=jobs, **clients)
        return jobs

    def jobs_slots(self) -> DynamoOpenJobSlots:
        return DynamoOpenJobSlots(client=self.dynamodb, table_name=self.settings.jobs_table_name or "")

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


def worker_context() -> LocalContext:
    return LocalContext(function_name="worker", timeout_s=120)


@contextmanager
def jobs_world(
    faults: dict[str, Any] | None = None, *, visibility_s: int = 1, max_receives: int = 4, **overrides: Any
) -> Iterator[JobsWorld]:
    from moto import mock_aws

    from handlers import worker
    from handlers.wiring import build_job_service

    with mock_aws(), BedrockEmulator(faults or {"default": {"latency_ms": [1, 3]}}) as emulator:
        dynamodb = boto3.client("dynamodb", region_name="us-east-1")
        sqs = boto3.client("sqs", region_name="us-east-1")
        queue_url, queue_arn, dlq_url = provision_queues(sqs, visibility_s=visibility_s, max_receives=max_receives)
        base = Settings.from_env()
        settings = base.but(
            targets=(replace(base.targets[0], model_id=MODEL[0], region=MODEL[1]),),
            jobs_queue_url=queue_url,
            max_receive_count=max_receives,
            **overrides,
        )
        create_tables(dynamodb, settings)
        add_open_jobs_index(dynamodb, settings.jobs_table_name or "")
        world = JobsWorld(
            settings, dynamodb, sqs, queue_url, queue_arn, dlq_url, emulator, worker=None,
            jobs=build_job_service(settings, chat=None, dynamodb=dynamodb, sqs=sqs),  # type: ignore[arg-type]
        )  # fmt: skip
        world.worker = worker.bootstrap(settings, dynamodb=dynamodb, sqs=sqs, bedrock_factory=world.bedrock)
        world.chat = world.api()
        yield world


# --- two regions -------------------------------------------------------------------------------------------------
@dataclass
class Region:
    """One region of the app: its replica of every table, its jobs queue, its worker, API and recovery sweep."""

    name: str
    settings: Settings
    dynamodb: Any
    sqs: Any
    queue_url: str
    queue_arn: str
    dlq_url: str
    worker: Any = None
    chat: Any = None

    def store(self, clock: Callable[[], float] = time.time) -> DynamoJobStore:
        return DynamoJobStore(client=self.dynamodb, table_name=self.settings.jobs_table_name or "", clock=clock)

    def job(self, user_id: str, job_id: str) -> Any:
        return self.store().get(user_id, job_id)

    def recovery_settings(self, **changes: Any) -> RecoverySettings:
        return RecoverySettings(
            jobs_table_name=self.settings.jobs_table_name or "",
            jobs_queue_url=self.queue_url,
            peer_regions=tuple(r for r in (PRIMARY, DR) if r != self.name),
            stranded_after_s=600.0,
            job_max_age_s=self.settings.job_max_age_s,
        ).but(**changes)

    def sweep(self, *, clock: Callable[[], float] = time.time, **changes: Any) -> dict[str, Any]:
        """One pass of this region's recovery Lambda (a fresh environment) at the time `clock` gives."""
        from handlers import recovery

        handler = recovery.bootstrap(self.recovery_settings(**changes), dynamodb=self.dynamodb, sqs=self.sqs,
                                     clock=clock)  # fmt: skip
        return handler({"source": "aws.events", "detail-type": "Scheduled Event"}, LocalContext(timeout_s=60))  # type: ignore[no-any-return]

    def messages(self) -> int:
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=self.queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
                            "ApproximateNumberOfMessagesDelayed"],
        )["Attributes"]  # fmt: skip
        return sum(int(v) for v in attributes.values())

    def deliver(self, *, limit: int = 20) -> int:
        """Deliver this queue's messages to the worker one at a time, as the event source mapping would, deleting
        each one the worker did not report as failed; the number delivered. Synchronous: no timing involved."""
        delivered = 0
        while delivered < limit:
            received = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=1, AttributeNames=["All"])
            messages = received.get("Messages", [])
            if not messages:
                return delivered
            message = messages[0]
            result = self.worker({"Records": [self._record(message)]}, worker_context())
            if not result.get("batchItemFailures"):
                self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
            delivered += 1
        return delivered

    def _record(self, message: dict[str, Any]) -> dict[str, Any]:
        attributes = message.get("Attributes", {})
        return {
            "messageId": message["MessageId"], "receiptHandle": message["ReceiptHandle"], "body": message["Body"],
            "attributes": {
                "ApproximateReceiveCount": attributes.get("ApproximateReceiveCount", "1"),
                "SentTimestamp": attributes.get("SentTimestamp", "0"), "SenderId": "local",
                "ApproximateFirstReceiveTimestamp": attributes.get("ApproximateFirstReceiveTimestamp", "0"),
            },
            "messageAttributes": {}, "md5OfBody": message.get("MD5OfBody", ""), "eventSource": "aws:sqs",
            "eventSourceARN": self.queue_arn, "awsRegion": self.name,
        }  # fmt: skip

    def bodies(self) -> list[dict[str, Any]]:
        """The messages waiting in the queue (made visible again at once: only looked at)."""
        received = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10, VisibilityTimeout=0)
        return [json.loads(m["Body"]) for m in received.get("Messages", [])]


@dataclass
class TwoRegions:
    primary: Region
    dr: Region
    emulator: BedrockEmulator

    def bedrock(self, region: str, config: Any) -> Any:
        return boto3.client(
            "bedrock-runtime", region_name=region, endpoint_url=self.emulator.url, config=config,
            aws_access_key_id="e", aws_secret_access_key="e",
        )  # fmt: skip

    def replicate(self, source: Region, target: Region) -> int:
        """Global-table replication, played by the test: every item of every table of `source` is written to
        `target` (a later write in `source` wins, as it would by last-writer-wins once replicated). The number
        of items copied. Call it where the test says a second has passed with both regions up."""
        copied = 0
        for table in _table_names(source.settings):
            for page in source.dynamodb.get_paginator("scan").paginate(TableName=table):
                for item in page.get("Items", []):
                    target.dynamodb.put_item(TableName=table, Item=item)
                    copied += 1
        return copied


def _table_names(settings: Settings) -> list[str]:
    names = (settings.table_name, settings.cache_table_name, settings.jobs_table_name, settings.idempotency_table_name,
             settings.usage_table_name)  # fmt: skip
    return [name for name in names if name]


@contextmanager
def two_regions(faults: dict[str, Any] | None = None, **overrides: Any) -> Iterator[TwoRegions]:
    """The primary and the DR region on moto (each its own tables, queue and DLQ), one Bedrock emulator serving the
    model in the primary's region (cross-region inference: both regions call it), and each region's worker, API
    and recovery sweep wired as the stacks wire them."""
    from moto import mock_aws

    from handlers import chat, worker

    with mock_aws(), BedrockEmulator(faults or {"default": {"latency_ms": [1, 3]}}) as emulator:
        world = TwoRegions(primary=None, dr=None, emulator=emulator)  # type: ignore[arg-type]
        base = Settings.from_env()
        regions = []
        for name in (PRIMARY, DR):
            dynamodb = boto3.client("dynamodb", region_name=name)
            sqs = boto3.client("sqs", region_name=name)
            queue_url, queue_arn, dlq_url = provision_queues(sqs, visibility_s=1, max_receives=4)
            settings = base.but(
                targets=(replace(base.targets[0], model_id=MODEL[0], region=MODEL[1]),),
                jobs_queue_url=queue_url,
                **overrides,
            )
            create_tables(dynamodb, settings)
            add_open_jobs_index(dynamodb, settings.jobs_table_name or "")
            region = Region(name, settings, dynamodb, sqs, queue_url, queue_arn, dlq_url)
            clients = {"dynamodb": dynamodb, "sqs": sqs, "bedrock_factory": world.bedrock}
            region.worker = worker.bootstrap(settings, **clients)
            region.chat = chat.bootstrap(settings, **clients)
            regions.append(region)
        world.primary, world.dr = regions
        yield world
