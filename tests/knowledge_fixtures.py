"""The ingest Lambda wired on moto (a versioned documents bucket, the documents table), the Bedrock emulator
(Titan embeddings) and the S3 Vectors emulator, the same adapters as in AWS; shared by the ingest and the
retrieval quality integration tests."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config

from adapters.s3vectors import NON_FILTERABLE_KEYS
from handlers.settings import IngestSettings
from local.bedrock_emulator import BedrockEmulator
from local.lambda_context import LocalContext
from local.resources import create_table
from local.s3vectors_emulator import S3VectorsEmulator


@dataclass
class IngestStack:
    s3: Any
    dynamodb: Any
    s3vectors: Any
    bedrock: BedrockEmulator
    handler: Any


def create_index(s3vectors: Any, settings: IngestSettings) -> None:
    s3vectors.create_index(
        vectorBucketName=settings.vector_bucket_name, indexName=settings.vector_index_name, dataType="float32",
        dimension=settings.embedding_dimensions, distanceMetric="cosine",
        metadataConfiguration={"nonFilterableMetadataKeys": list(NON_FILTERABLE_KEYS)},
    )  # fmt: skip


@contextmanager
def ingest_stack(settings: IngestSettings, region: str) -> Iterator[IngestStack]:
    """moto and both emulators running, the settings' bucket (versioned), table, vector bucket and index created,
    and the ingest handler bootstrapped on them."""
    from moto import mock_aws

    from handlers import ingest

    with (
        mock_aws(),
        BedrockEmulator({"default": {"latency_ms": [0, 0]}}) as bedrock,
        S3VectorsEmulator() as vectors,
    ):
        s3 = boto3.client("s3", region_name=region)
        s3.create_bucket(Bucket=settings.documents_bucket)
        s3.put_bucket_versioning(Bucket=settings.documents_bucket, VersioningConfiguration={"Status": "Enabled"})
        dynamodb = boto3.client("dynamodb", region_name=region)
        create_table(dynamodb, settings.documents_table_name, [("pk", "HASH"), ("sk", "RANGE")])
        s3vectors = boto3.client(
            "s3vectors", region_name=region, endpoint_url=vectors.url, aws_access_key_id="e",
            aws_secret_access_key="e", config=Config(retries={"total_max_attempts": 1}),
        )  # fmt: skip
        s3vectors.create_vector_bucket(vectorBucketName=settings.vector_bucket_name)
        create_index(s3vectors, settings)

        def bedrock_client(config: Any) -> Any:
            return boto3.client(
                "bedrock-runtime", region_name=region, endpoint_url=bedrock.url, config=config,
                aws_access_key_id="e", aws_secret_access_key="e",
            )  # fmt: skip

        handler = ingest.bootstrap(
            settings, dynamodb=dynamodb, s3=s3, s3vectors=s3vectors, bedrock=bedrock_client, region=region
        )
        yield IngestStack(s3, dynamodb, s3vectors, bedrock, handler)


def deliver(handler: Any, *bodies: Any, region: str, receives: int = 1) -> list[str]:
    """One SQS batch to the ingest handler, one message per body (a dict is an S3 notification body); the
    failed message ids."""
    records = [
        {
            "messageId": f"m{i}", "receiptHandle": f"r{i}", "eventSource": "aws:sqs",
            "body": body if isinstance(body, str) else json.dumps(body),
            "attributes": {"ApproximateReceiveCount": str(receives)},
            "messageAttributes": {}, "md5OfBody": "", "eventSourceARN": "arn:aws:sqs:us-east-1:1:ingest",
            "awsRegion": region,
        }
        for i, body in enumerate(bodies)
    ]  # fmt: skip
    response = handler({"Records": records}, LocalContext(function_name="ingest", timeout_s=300))
    return [failure["itemIdentifier"] for failure in response["batchItemFailures"]]
