"""Invoke any Lambda handler in-process with an event file: `make invoke FN=chat EVENT=events/chat-post.json`.

Against the running sandbox (default): uses the environment `make dev` wrote to .sandbox/state.json.
Against real AWS: `STACK=Bulwark-dev-Api` (your credentials; the function's environment is read from
the deployed function, so the call reaches the real tables, queue and models).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
from pathlib import Path

from handlers.settings import Settings
from local.lambda_context import LocalContext

ROOT = Path(__file__).resolve().parents[1]

STATE_FILE = ROOT / ".sandbox" / "state.json"
FUNCTIONS = {"chat": "handlers.chat", "worker": "handlers.worker"}


def environment_from_sandbox(function: str) -> dict[str, str]:
    if not STATE_FILE.exists():
        raise SystemExit("no sandbox is running: start it with `make dev` (or name a deployed stack with STACK=...)")
    state = json.loads(STATE_FILE.read_text())
    return {**state["aws_environment"], **state[f"{function}_env"]}


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
        env = environment_from_sandbox(args.function)
    os.environ.update(env)
    os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
    module = importlib.import_module(FUNCTIONS[args.function])
    # A fresh execution environment from the environment above (a cold start), never a handler this
    # process may have built earlier against other endpoints.
    handler = module.bootstrap(Settings.from_env(env))
    response = handler(event, LocalContext(function_name=args.function))
    print(json.dumps(response, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
