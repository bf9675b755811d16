"""Cold-start cost of the chat Lambda's init phase, against a bare boto3 baseline, in one run.

Each sample is a fresh `python -X importtime`-free subprocess, timed from inside the child
(perf_counter around the import) so interpreter start-up is excluded from both sides.
  baseline: import boto3 + create one DynamoDB client
  chat:     import handlers.chat, which builds its service (DynamoDB + Bedrock clients, Powertools)
Run with the environment a deployed function has (tracing on, as in Lambda). Target ratio <= 1.5.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUNS = int(os.environ.get("BENCH_RUNS", "9"))

BASELINE = """
import time; t = time.perf_counter()
import boto3
boto3.client("dynamodb", region_name="us-east-1")
print(time.perf_counter() - t)
"""
CHAT = """
import time; t = time.perf_counter()
import handlers.chat
print(time.perf_counter() - t)
"""

ENV = {
    "PATH": os.environ.get("PATH", ""),
    "PYTHONPATH": str(ROOT / "lambda_src"),
    "PYTHONDONTWRITEBYTECODE": "",
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    # What Lambda sets: Powertools sees a Lambda environment, so the tracer really loads X-Ray.
    "AWS_LAMBDA_FUNCTION_NAME": "bench-chat",
    "LAMBDA_TASK_ROOT": str(ROOT / "lambda_src"),  # the X-Ray SDK keys its Lambda mode on this
    "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13",
    "AWS_XRAY_CONTEXT_MISSING": "IGNORE_ERROR",
    "POWERTOOLS_SERVICE_NAME": "chat",
    "POWERTOOLS_METRICS_NAMESPACE": "Bulwark",
    "TABLE_NAME": "bench",
    # The default chain: the same inference profile from both regions, each with its guardrail.
    "MODEL_TARGETS": json.dumps(
        [
            {
                "model_id": "us.amazon.nova-lite-v1:0",
                "region": region,
                "max_tokens": 1024,
                "guardrail_id": "gr-bench",
                "guardrail_version": "1",
            }
            for region in ("us-east-1", "us-west-2")
        ]
    ),
    "CACHE_TABLE_NAME": "bench-cache",
    "JOBS_TABLE_NAME": "bench-jobs",
    "JOBS_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/bench-jobs",
}


def sample(code: str) -> float:
    out = subprocess.run([sys.executable, "-c", code], env=ENV, capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    sample(BASELINE), sample(CHAT)  # warm the OS file cache and .pyc files; not counted
    baseline, chat = [], []
    for _ in range(RUNS):  # interleaved so drift on a shared machine hits both alike
        baseline.append(sample(BASELINE))
        chat.append(sample(CHAT))
    b, c = statistics.median(baseline), statistics.median(chat)
    print(f"cold start, median of {RUNS} fresh processes (init work only, interpreter start excluded)")
    print(f"  baseline  import boto3 + 1 client         {b * 1000:7.1f} ms  (min {min(baseline) * 1000:.1f})")
    print(f"  chat      import handler + build service  {c * 1000:7.1f} ms  (min {min(chat) * 1000:.1f})")
    print(f"  ratio     chat / baseline                 {c / b:7.2f}    (target <= 1.5)")


if __name__ == "__main__":
    main()
