"""The jobs path wired on moto (DynamoDB, SQS) and the Bedrock emulator, as the stacks define it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

import boto3

from adapters.jobs import DynamoOpenJobSlots
from core.jobs import JobService
from handlers.settings import Settings
from local.bedrock_emulator import BedrockEmulator
from local.lambda_context import LocalContext
from local.resources import create_tables, provision_queues
from local.sqs_pump import SqsPump

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
        world = JobsWorld(
            settings, dynamodb, sqs, queue_url, queue_arn, dlq_url, emulator, worker=None,
            jobs=build_job_service(settings, chat=None, dynamodb=dynamodb, sqs=sqs),  # type: ignore[arg-type]
        )  # fmt: skip
        world.worker = worker.bootstrap(settings, dynamodb=dynamodb, sqs=sqs, bedrock_factory=world.bedrock)
        world.chat = world.api()
        yield world
