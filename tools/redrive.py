"""Move messages from the jobs DLQ back to the requests queue, after the cause is fixed.

    python tools/redrive.py --stack Bulwark-dev-Api [--region us-east-1]       # real AWS (credentials)
    python tools/redrive.py --queue-url URL --dlq-url URL --endpoint-url URL    # the sandbox (moto)

Moves in batches of 10 (send, then delete), up to --max messages, and reports what it moved:
count, and per job id when the body names one. A message that cannot be sent stays in the DLQ.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from typing import Any

import boto3

from tools.stack_outputs import outputs_by_prefix


def queue_urls_from_stack(stack: str, region: str | None) -> tuple[str, str]:
    queue, dlq = outputs_by_prefix(stack, region, ("JobsJobsQueueUrl", "JobsJobsDlqUrl"), kind="an API stack")
    return queue, dlq


def redrive(sqs: Any, *, queue_url: str, dlq_url: str, limit: int) -> dict[str, Any]:
    moved, failed, jobs = 0, 0, Counter[str]()
    while moved + failed < limit:
        batch = sqs.receive_message(QueueUrl=dlq_url, MaxNumberOfMessages=min(10, limit - moved - failed),
                                    WaitTimeSeconds=1, VisibilityTimeout=30).get("Messages", [])  # fmt: skip
        if not batch:
            break
        for message in batch:
            body = message["Body"]
            try:
                parsed = json.loads(body)
            except json.JSONDecodeError:
                parsed = None
            if isinstance(parsed, dict):  # tells the worker a failed job may run again
                body = json.dumps({**parsed, "redriven": int(parsed.get("redriven", 0)) + 1})
            try:
                sqs.send_message(QueueUrl=queue_url, MessageBody=body)
            except Exception as error:
                failed += 1
                print(f"  could not move {message['MessageId']}: {error}", file=sys.stderr)
                continue
            sqs.delete_message(QueueUrl=dlq_url, ReceiptHandle=message["ReceiptHandle"])
            moved += 1
            jobs[parsed.get("job_id", "?") if isinstance(parsed, dict) else "(not a job message)"] += 1
    return {"moved": moved, "failed": failed, "jobs": dict(jobs)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stack", help="API stack name (reads the queue URLs from its outputs)")
    parser.add_argument("--region")
    parser.add_argument("--queue-url")
    parser.add_argument("--dlq-url")
    parser.add_argument("--endpoint-url", help="e.g. the sandbox's moto server")
    parser.add_argument("--max", type=int, default=10_000)
    args = parser.parse_args(argv)
    if args.stack:
        queue_url, dlq_url = queue_urls_from_stack(args.stack, args.region)
    elif args.queue_url and args.dlq_url:
        queue_url, dlq_url = args.queue_url, args.dlq_url
    else:
        parser.error("give --stack, or both --queue-url and --dlq-url")
    sqs = boto3.client("sqs", region_name=args.region, endpoint_url=args.endpoint_url)
    report = redrive(sqs, queue_url=queue_url, dlq_url=dlq_url, limit=args.max)
    print(f"redrive: moved {report['moved']} message(s) from {dlq_url} to {queue_url}; {report['failed']} failed")
    for job, count in sorted(report["jobs"].items()):
        print(f"  {job}: {count}")
    return 1 if report["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
