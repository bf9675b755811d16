"""Invoke any Lambda handler in-process with an event file: `make invoke FN=chat EVENT=events/chat-post.json`.

Against the running sandbox (default): uses the environment `make dev` wrote to .sandbox/state.json.
Against real AWS: `STACK=Bulwark-dev-Api` (your credentials; the function's environment is read from
the deployed function, so the call reaches the real tables, queue and models).

FN=ingest runs the ingest Lambda of one region (REGION=..., the primary by default) on an SQS batch whose
bodies are S3 event notifications (events/ingest-sqs.json): in the sandbox with that region's bucket, vector
index and ingest environment. The sample names a document that does not exist, so it is skipped; put an object
under documents/<owner>/<document id> and name its key and version to index it.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
from pathlib import Path
from typing import Any

from handlers.settings import IngestSettings, Settings
from local.lambda_context import LocalContext

ROOT = Path(__file__).resolve().parents[1]

STATE_FILE = ROOT / ".sandbox" / "state.json"
FUNCTIONS = {"chat": "handlers.chat", "worker": "handlers.worker", "ingest": "handlers.ingest"}


def environment_from_sandbox(function: str, region: str | None = None) -> dict[str, str]:
    if not STATE_FILE.exists():
        raise SystemExit("no sandbox is running: start it with `make dev` (or name a deployed stack with STACK=...)")
    state = json.loads(STATE_FILE.read_text())
    if function != "ingest":
        return {**state["aws_environment"], **state[f"{function}_env"]}
    knowledge = state.get("knowledge") or {}
    region = region or state["region"]
    if region not in knowledge:
        found = ", ".join(sorted(knowledge)) or "none: knowledge is off"
        raise SystemExit(f"the sandbox runs no ingest Lambda in {region} (regions with one: {found})")
    local = knowledge[region]
    return {
        **state["aws_environment"],
        **local["ingest_env"],
        "AWS_REGION": region,
        "INGEST_TABLE_REGION": local.get("table_region") or state["region"],
    }


def environment_from_stack(function: str, stack: str, region: str | None) -> dict[str, str]:
    import boto3

    resources = boto3.client("cloudformation", region_name=region).describe_stack_resources(StackName=stack)
    handler = f"{FUNCTIONS[function]}.handler"
    lam = boto3.client("lambda", region_name=region)
    for resource in resources["StackResources"]:
        if resource["ResourceType"] == "AWS::Lambda::Function":
            config = lam.get_function_configuration(FunctionName=resource["PhysicalResourceId"])
            if config.get("Handler") == handler:
                return dict(config.get("Environment", {}).get("Variables", {}))
    raise SystemExit(f"stack {stack} has no function with handler {handler}")


def ingest_handler(module: Any, env: dict[str, str], region: str | None) -> Any:
    """The ingest Lambda of `region` (or the environment's): in the sandbox its documents table is the one
    sandbox copy (INGEST_TABLE_REGION, set only there); in AWS every client is the function's own."""
    from handlers.wiring import data_client

    region = region or env.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    table_region = env.get("INGEST_TABLE_REGION")
    dynamodb = data_client("dynamodb", region_name=table_region) if table_region else None
    return module.bootstrap(IngestSettings.from_env(env), dynamodb=dynamodb, region=region)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("function", choices=sorted(FUNCTIONS))
    parser.add_argument("event", type=Path)
    parser.add_argument("--stack")
    parser.add_argument("--region")
    args = parser.parse_args(argv)
    event = json.loads(args.event.read_text())
    if args.stack:
        env = environment_from_stack(args.function, args.stack, args.region)
    else:
        env = environment_from_sandbox(args.function, args.region)
    os.environ.update(env)
    os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
    module = importlib.import_module(FUNCTIONS[args.function])
    # A fresh execution environment from the environment above (a cold start), never a handler this
    # process may have built earlier against other endpoints.
    if args.function == "ingest":
        handler = ingest_handler(module, env, args.region)
    else:
        handler = module.bootstrap(Settings.from_env(env))
    response = handler(event, LocalContext(function_name=args.function))
    print(json.dumps(response, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
