"""Curated answers (issue 11): the model answers the operators' critical questions ahead of an outage.

    python tools/curate.py --sandbox                       # the running sandbox (make dev): its state file
    python tools/curate.py --region eu-west-1              # AWS: the deployed chat Lambda's settings
    python tools/curate.py --region eu-west-1 --function Bulwark-dev-Api-ChatXXXX --questions my.json

Each question of curated/questions.json is answered through the gateway the chat Lambda builds
(handlers.wiring.build_chat_service: its targets, guardrails, failover, the active prompt), with no history and
no documents. Only answers a guardrail checked and let pass, written by a model (not degraded, not from the
cache), are stored, each with the prompt version and the model that produced it and the question's embedding
(Titan v2, as the chat path embeds questions). Against AWS the settings are the chat function's environment
(found by name: the one function whose name holds "Chat" and that names a curated table); against the sandbox,
its state file names the endpoints and the chat environment. Exit 1 when a question could not be curated.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from adapters.curated_answers import DynamoCuratedAnswers
from core.curated import curate, parse_questions
from core.errors import DomainError
from handlers.settings import Settings
from handlers.wiring import build_chat_service, question_embedder

ROOT = Path(__file__).resolve().parents[1]
QUESTIONS = ROOT / "curated" / "questions.json"
SANDBOX_STATE = ROOT / ".sandbox" / "state.json"
FUNCTION_MARK = "Chat"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def run(
    settings: Settings,
    questions_file: Path,
    *,
    dynamodb: Any = None,
    bedrock_factory: Any = None,
    region: str,
    out: Any = sys.stdout,
) -> int:
    if not settings.curated_table_name:
        print("curate: the chat function names no curated answers table (CURATED_TABLE_NAME)", file=sys.stderr)
        return 1
    questions = parse_questions(json.loads(questions_file.read_text()))
    # No answer cache: a curated answer is not a user's cached answer (and the scheduled job may not write it).
    service = build_chat_service(
        settings.but(cache_table_name=None), dynamodb=dynamodb, bedrock_factory=bedrock_factory
    )
    if dynamodb is None:
        from handlers.wiring import data_client

        dynamodb = data_client("dynamodb", region_name=region)
    store = DynamoCuratedAnswers(client=dynamodb, table_name=settings.curated_table_name)
    for question in questions:  # the list the scheduled job answers again when another prompt is activated
        store.put_question(question)
    results = curate(
        questions,
        model=service.model,
        prompts=service.prompts,
        embedder=question_embedder(settings, region=region, bedrock_factory=bedrock_factory),
        store=store,
        deadline_s=settings.deadline_s,
        clock=_now,
    )
    for result in results:
        if result.stored and result.target is not None:
            where = f"{result.target.model_id}@{result.target.region}, prompt version {result.prompt_version}"
            print(f"{result.question_id}: stored ({where})", file=out)
        else:
            print(f"{result.question_id}: not stored: {result.reason}", file=out)
    stored = sum(result.stored for result in results)
    print(f"{stored} of {len(results)} questions curated", file=out)
    return 0 if stored == len(results) else 1


def sandbox_settings(state_file: Path) -> tuple[Settings, str]:
    """The sandbox's chat environment (primary region) and endpoints, from the state file `make dev` writes."""
    if not state_file.exists():
        raise SystemExit(f"no sandbox state at {state_file}: start it with make dev")
    state = json.loads(state_file.read_text())
    os.environ.update(state["aws_environment"])
    region = state["region"]
    return Settings.from_env(state["regions"][region]["chat_env"]), region


def aws_settings(region: str | None, function: str | None, client: Any = None) -> tuple[Settings, str]:
    """The deployed chat function's settings: its environment, read with your credentials."""
    import boto3

    client = client or boto3.client("lambda", region_name=region)
    region = str(client.meta.region_name)
    if function is None:
        names: list[str] = []
        for page in client.get_paginator("list_functions").paginate():
            for fn in page["Functions"]:
                env = fn.get("Environment", {}).get("Variables", {})
                if FUNCTION_MARK in fn["FunctionName"] and "CURATED_TABLE_NAME" in env:
                    names.append(fn["FunctionName"])
        if len(names) != 1:
            found = ", ".join(names) or "none"
            raise SystemExit(
                f"expected one chat function (name containing {FUNCTION_MARK!r}), found {found}: give --function"
            )
        function = names[0]
    env = client.get_function_configuration(FunctionName=function).get("Environment", {}).get("Variables", {})
    return Settings.from_env(env), region


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--questions", type=Path, default=QUESTIONS, help="the operators' list (default: %(default)s)")
    p.add_argument("--sandbox", action="store_true", help="the running sandbox (its state file)")
    p.add_argument("--state", type=Path, default=SANDBOX_STATE, help="the sandbox's state file")
    p.add_argument("--region", help="AWS: the region whose chat function answers")
    p.add_argument("--function", help="AWS: the chat function's name (default: found by name)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    settings, region = sandbox_settings(args.state) if args.sandbox else aws_settings(args.region, args.function)
    os.environ.setdefault("AWS_DEFAULT_REGION", region)  # the clients the chat wiring makes
    try:
        return run(settings, args.questions, region=region)
    except DomainError as error:
        print(f"curate: {error.message}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
