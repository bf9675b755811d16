"""Cold-start cost of the chat Lambda's init phase, against a bare boto3 baseline, in one run.

Each sample is a fresh `python -X importtime`-free subprocess, timed from inside the child
(perf_counter around the import) so interpreter start-up is excluded from both sides.
  baseline: import boto3 + create one DynamoDB client
  chat:     import handlers.chat, which builds its service (DynamoDB + Bedrock clients, Powertools)
Run with the environment a deployed function has (tracing on, as in Lambda). Target ratio <= 1.5.
BENCH_INSTRUCTIONS=1 also counts the instructions each side executes under valgrind (cachegrind, no cache
simulation; interpreter start-up subtracted): slow (about a minute) but independent of what else runs on the
machine, unlike time. It leaves out what the kernel does (file reads), so it complements the times.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUNS = int(os.environ.get("BENCH_RUNS", "9"))

BASELINE = """
import time; t, cpu = time.perf_counter(), time.process_time()
import boto3
boto3.client("dynamodb", region_name="us-east-1")
print(time.perf_counter() - t, time.process_time() - cpu)
"""
CHAT = """
import time; t, cpu = time.perf_counter(), time.process_time()
import handlers.chat
print(time.perf_counter() - t, time.process_time() - cpu)
"""


def _default_chat_environment() -> dict[str, str]:
    from stacks.config import CONTEXT_KEY, AppConfig
    from stacks.lambda_settings import KnowledgeNames, TableNames, chain_settings, chat_settings

    config = AppConfig.from_context(json.loads((ROOT / "cdk.json").read_text())["context"][CONTEXT_KEY])
    region = config.primary_region
    tables = TableNames(conversations="bench", response_cache="bench-cache", jobs="bench-jobs",
                        idempotency="bench-idempotency", usage="bench-usage", documents="bench-documents",
                        prompts="bench-prompts", curated="bench-curated")  # fmt: skip
    targets = chain_settings(config, region, lambda target: (target.model_id, ("gr-bench", "1")))
    queue = f"https://sqs.{region}.amazonaws.com/123456789012/bench-jobs"
    # The default deployment has knowledge on: the chat Lambda also builds its retriever at cold start.
    knowledge = KnowledgeNames(documents_bucket="bench-docs", vector_bucket="bench-vectors", vector_index="bench-index")
    settings = chat_settings(
        config, tables=tables, targets=targets, queue_url=queue, allowed_origin="https://d.example", knowledge=knowledge
    )
    # The runtime switches (AppConfig), as the API stack sets them (RuntimeSwitches.settings()).
    switches = {"switches_application": "bench-app", "switches_environment": "bench-env",
                "switches_profile": "bench-profile", "switches_cache_s": 30}  # fmt: skip
    return settings.but(**switches).to_env()


ENV = {
    "PATH": os.environ.get("PATH", ""),
    "PYTHONPATH": str(ROOT / "lambda_src"),  # the Lambda bundle's layout: the code at the root
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
    # The chat Lambda's own variables, rendered from the default deployment's config like the stack does.
    **_default_chat_environment(),
}


def sample(code: str) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of the child's init. CPU time barely moves when other processes share the
    cores, so its ratio is the one to trust on a busy machine; the wall time is what a user waits."""
    out = subprocess.run([sys.executable, "-c", code], env=ENV, capture_output=True, text=True, check=True)
    wall, cpu = out.stdout.strip().splitlines()[-1].split()
    return float(wall), float(cpu)


def instructions(code: str) -> int:
    """Instructions the child executes in all (valgrind cachegrind's I refs)."""
    command = ["valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null"]
    out = subprocess.run([*command, sys.executable, "-c", code], env=ENV, capture_output=True, text=True, check=True)
    found = re.search(r"I\s+refs:\s+([\d,]+)", out.stderr)
    if found is None:
        raise RuntimeError(f"no instruction count in valgrind's output: {out.stderr[-500:]}")
    return int(found.group(1).replace(",", ""))


def print_instructions() -> None:
    if shutil.which("valgrind") is None:
        print("  instructions: valgrind is not installed (apt-get install valgrind)")
        return
    start = instructions("import time")  # interpreter start-up, excluded from both sides like the times
    baseline, chat = instructions(BASELINE) - start, instructions(CHAT) - start
    print(f"  instructions  baseline {baseline / 1e6:.0f} M, chat {chat / 1e6:.0f} M, ratio {chat / baseline:.2f} "
          "(valgrind; independent of the machine's load)")  # fmt: skip


def main() -> None:
    sample(BASELINE), sample(CHAT)  # warm the OS file cache and .pyc files; not counted
    samples: dict[str, list[tuple[float, float]]] = {"baseline": [], "chat": []}
    for _ in range(RUNS):  # interleaved so drift on a shared machine hits both alike
        samples["baseline"].append(sample(BASELINE))
        samples["chat"].append(sample(CHAT))
    baseline = [wall for wall, _ in samples["baseline"]]
    chat = [wall for wall, _ in samples["chat"]]
    b, c = statistics.median(baseline), statistics.median(chat)
    b_cpu = statistics.median(cpu for _, cpu in samples["baseline"])
    c_cpu = statistics.median(cpu for _, cpu in samples["chat"])
    print(f"cold start, median of {RUNS} fresh processes (init work only, interpreter start excluded)")
    print(f"  baseline  import boto3 + 1 client         {b * 1000:7.1f} ms  (min {min(baseline) * 1000:.1f})")
    print(f"  chat      import handler + build service  {c * 1000:7.1f} ms  (min {min(chat) * 1000:.1f})")
    print(f"  ratio     chat / baseline                 {c / b:7.2f}    (target <= 1.5)")
    print(f"  CPU time  baseline {b_cpu * 1000:.1f} ms, chat {c_cpu * 1000:.1f} ms, ratio {c_cpu / b_cpu:.2f} "
          "(the ratio to trust when other work shares the cores)")  # fmt: skip
    if os.environ.get("BENCH_INSTRUCTIONS") == "1":
        print_instructions()


if __name__ == "__main__":
    main()
