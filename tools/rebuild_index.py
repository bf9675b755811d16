"""Rebuild one region's vector index from its documents bucket (the knowledge RTO: a lost or corrupt index).

    python tools/rebuild_index.py --stack Bulwark-dev-Knowledge-us-west-2 --region us-west-2 [--table NAME]
    python tools/rebuild_index.py --bucket B --queue-url URL --endpoint-url URL [--table NAME]   # the sandbox

Lists the current objects under documents/ (a deleted document's key has a delete marker: not listed), and
sends each through the ingest path as an S3 notification marked `"force": true`: the ingest Lambda embeds
and indexes a version that is already `ready` again (deterministic vector keys; the document is `ingesting`
meanwhile, under the lease of the event that recorded it, and other versions' chunks are deleted) and ingests
one this region never saw. No synthetic sequencer: a later upload still wins. A document re-uploaded while the
rebuild runs is never left with the old version's chunks: if the upload's event comes first, the rebuild's
message finds another version recorded and writes nothing; if it comes during the rebuild, it waits for the
lease (SQS brings it back) and then replaces the rebuilt chunks. Then waits until the ingest queue is empty
and prints documents, chunks (from the Documents table, with --table) and elapsed time.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote_plus

import boto3

from adapters.document_catalog import document_views  # lambda_src is on the path (the venv's .pth)
from tools.stack_outputs import outputs_by_prefix

PREFIX = "documents/"


def outputs_from_stack(stack: str, region: str | None) -> tuple[str, str]:
    bucket, queue = outputs_by_prefix(
        stack, region, ("DocumentsBucketName", "IngestQueueUrl"), kind="a knowledge stack"
    )
    return bucket, queue


def current_documents(s3: Any, bucket: str) -> Iterator[dict[str, Any]]:
    """The current version of every document (key, version id, size); keys with a delete marker are skipped."""
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=PREFIX):
        for version in page.get("Versions", []):
            if version.get("IsLatest") and version["Key"].count("/") == 2:
                yield {"key": version["Key"], "version_id": version.get("VersionId"), "size": version.get("Size", 0)}


def rebuild_message(bucket: str, document: dict[str, Any], region: str) -> str:
    """An S3 ObjectCreated notification body for the document's current version, forced; no sequencer (the
    handler reads that as the oldest event, so it never outranks a real upload)."""
    obj: dict[str, Any] = {"key": quote_plus(document["key"]), "size": document["size"]}
    if document.get("version_id") and document["version_id"] != "null":
        obj["versionId"] = document["version_id"]
    record = {
        "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": region, "eventName": "ObjectCreated:Put",
        "eventTime": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
        "s3": {"s3SchemaVersion": "1.0", "bucket": {"name": bucket, "arn": f"arn:aws:s3:::{bucket}"}, "object": obj},
    }  # fmt: skip
    return json.dumps({"Records": [record], "force": True})


def enqueue(sqs: Any, queue_url: str, bodies: list[str]) -> int:
    """Send in batches of 10; the number sent (a failed entry is reported on stderr)."""
    sent = 0
    for start in range(0, len(bodies), 10):
        entries = [{"Id": str(i), "MessageBody": body} for i, body in enumerate(bodies[start : start + 10])]
        response = sqs.send_message_batch(QueueUrl=queue_url, Entries=entries)
        sent += len(response.get("Successful", []))
        for failure in response.get("Failed", []):
            print(f"  could not send {failure.get('Id')}: {failure.get('Message')}", file=sys.stderr)
    return sent


def wait_drained(sqs: Any, queue_url: str, *, timeout_s: float, poll_s: float = 2.0) -> bool:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        attributes = sqs.get_queue_attributes(
            QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        )["Attributes"]
        waiting = int(attributes["ApproximateNumberOfMessages"])
        if not waiting + int(attributes["ApproximateNumberOfMessagesNotVisible"]):
            return True
        time.sleep(poll_s)
    return False


def ready_chunks(dynamodb: Any, table: str, region: str) -> tuple[int, int]:
    """(documents ready in the region, their chunks) from the Documents table: each document's metadata item and
    the region's status item (or, for a record written before status items, its `status.<region>` entry), read
    as the API reads them (adapters.document_catalog)."""
    items = [
        item for page in dynamodb.get_paginator("scan").paginate(TableName=table) for item in page.get("Items", [])
    ]
    ready = [view for view in document_views(items, region) if view.status == "ready"]
    return len(ready), sum(view.chunk_count or 0 for view in ready)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stack", help="the region's knowledge stack (reads the bucket and queue from its outputs)")
    parser.add_argument("--region")
    parser.add_argument("--bucket")
    parser.add_argument("--queue-url")
    parser.add_argument("--table", help="the Documents table: count the chunks indexed")
    parser.add_argument("--endpoint-url", help="e.g. the sandbox's moto server")
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds to wait for the queue to drain")
    args = parser.parse_args(argv)
    if args.stack:
        bucket, queue_url = outputs_from_stack(args.stack, args.region)
    elif args.bucket and args.queue_url:
        bucket, queue_url = args.bucket, args.queue_url
    else:
        parser.error("give --stack, or both --bucket and --queue-url")
    s3 = boto3.client("s3", region_name=args.region, endpoint_url=args.endpoint_url)
    sqs = boto3.client("sqs", region_name=args.region, endpoint_url=args.endpoint_url)
    region = args.region or s3.meta.region_name
    started = time.monotonic()
    bodies = [rebuild_message(bucket, document, region) for document in current_documents(s3, bucket)]
    sent = enqueue(sqs, queue_url, bodies)
    drained = wait_drained(sqs, queue_url, timeout_s=args.timeout)
    elapsed = time.monotonic() - started
    line = f"rebuild-index: {sent} of {len(bodies)} document(s) sent from {bucket}"
    if args.table:
        documents, chunks = ready_chunks(boto3.client("dynamodb", region_name=args.region,
                                                      endpoint_url=args.endpoint_url), args.table, region)  # fmt: skip
        line += f"; {documents} ready, {chunks} chunks"
        if chunks:
            line += f" ({elapsed / chunks * 1000:.0f} s per 1,000 chunks)"
    print(f"{line}; {'drained' if drained else 'NOT drained'} in {elapsed:.1f} s (the knowledge RTO)")
    return 0 if drained and sent == len(bodies) else 1


if __name__ == "__main__":
    sys.exit(main())
