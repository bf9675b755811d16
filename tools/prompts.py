"""The prompt catalog from the command line: list, show, add a version, activate, roll back (issue 11).

    python tools/prompts.py list                                  # versions and each environment's active one
    python tools/prompts.py show 3
    python tools/prompts.py add --file prompt.txt [--note "why"] [--activate]
    python tools/prompts.py activate 3 [--environment prod]
    python tools/prompts.py rollback [--environment prod]        # back to the version active before
    python tools/prompts.py seed                                  # the built-in prompt as version 1, active

Against AWS with your credentials (--region; the table is found by name, Bulwark-<env>-Data-Prompts...), or the
sandbox with --endpoint-url (the embedded AWS's URL `make dev` prints). --table names the table when several
match. The environment defaults to cdk.json's env_name. Answers with 1 and a sentence on a refused change.
The Lambdas see a change within PROMPT_CACHE_SECONDS (30 s by default); cached answers of the other version are
never served for the new one (the version is part of the cache key).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import boto3

from adapters.prompt_catalog import DynamoPromptCatalog
from core.errors import DomainError
from core.prompts import BUILTIN_PROMPT

ROOT = Path(__file__).resolve().parents[1]
TABLE_MARK = "Prompts"


def default_environment() -> str:
    context = json.loads((ROOT / "cdk.json").read_text())["context"]
    return str(context.get("bulwark", {}).get("env_name", "dev"))


def find_table(client: Any, mark: str = TABLE_MARK) -> str:
    """The one table whose name holds `mark` (CloudFormation's Bulwark-dev-Data-PromptsXXXX, the sandbox's
    PromptsXXXX)."""
    names: list[str] = []
    for page in client.get_paginator("list_tables").paginate():
        names.extend(name for name in page["TableNames"] if mark in name)
    if len(names) != 1:
        found = ", ".join(names) or "none"
        raise SystemExit(f"expected one prompt catalog table (name containing {mark!r}), found {found}: give --table")
    return names[0]


def run(catalog: DynamoPromptCatalog, args: argparse.Namespace, out: Any = sys.stdout) -> int:
    env = args.environment
    if args.command == "list":
        active = catalog.activations()
        for stored in catalog.versions():
            where = [name for name, pointer in sorted(active.items()) if pointer.version == stored.version]
            marker = f"  <- active in {', '.join(where)}" if where else ""
            first_line = stored.text.strip().splitlines()[0][:70]
            print(f"{stored.version:>4}  {stored.created_at}  {stored.note or '-'}  | {first_line}{marker}", file=out)
        for name, pointer in sorted(active.items()):
            print(f"{name}: version {pointer.version}, before it: {', '.join(pointer.history) or 'none'}", file=out)
        if not active:
            print(
                "no environment has an active version: the Lambdas use the built-in prompt (version builtin)", file=out
            )
    elif args.command == "show":
        stored = catalog.version(args.version)
        print(f"version {stored.version} ({stored.created_at}) {stored.note}\n{stored.text}", file=out)
    elif args.command == "add":
        text = Path(args.file).read_text() if args.file else args.text
        if text is None:
            raise SystemExit("add needs --file PATH or --text TEXT")
        version = catalog.add(text, note=args.note or "")
        print(f"added version {version}", file=out)
        if args.activate:
            catalog.activate(env, version)
            print(f"{env}: version {version} active", file=out)
    elif args.command == "activate":
        pointer = catalog.activate(env, args.version)
        before = pointer.history[-1] if pointer.history else "none"
        print(f"{env}: version {pointer.version} active (rollback returns to {before})", file=out)
    elif args.command == "rollback":
        pointer = catalog.rollback(env)
        print(f"{env}: rolled back to version {pointer.version}", file=out)
    elif args.command == "seed":
        if catalog.versions():
            print("the catalog has versions already: nothing seeded", file=out)
            return 0
        version = catalog.add(BUILTIN_PROMPT, note="the built-in prompt")
        catalog.activate(env, version)
        print(f"seeded version {version} (the built-in prompt), active in {env}", file=out)
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--table", help="the catalog table's name (default: the one table named *Prompts*)")
    p.add_argument("--region")
    p.add_argument("--endpoint-url", help="e.g. the sandbox's embedded AWS")
    p.add_argument("--environment", default=None, help="default: cdk.json's env_name")
    commands = p.add_subparsers(dest="command", required=True)
    commands.add_parser("list", help="versions and the active one per environment")
    commands.add_parser("show").add_argument("version")
    add = commands.add_parser("add", help="store a new version (never overwrites one)")
    add.add_argument("--file")
    add.add_argument("--text")
    add.add_argument("--note")
    add.add_argument("--activate", action="store_true", help="and make it the environment's active version")
    commands.add_parser("activate").add_argument("version")
    commands.add_parser("rollback", help="back to the version active before the current one")
    commands.add_parser("seed", help="an empty catalog gets the built-in prompt as version 1, active")
    return p


def main(argv: list[str] | None = None, *, client: Any = None, out: Any = sys.stdout) -> int:
    args = parser().parse_args(argv)
    args.environment = args.environment or default_environment()
    client = client or boto3.client("dynamodb", region_name=args.region, endpoint_url=args.endpoint_url)
    catalog = DynamoPromptCatalog(client=client, table_name=args.table or find_table(client))
    try:
        return run(catalog, args, out)
    except DomainError as error:
        print(f"prompts: {error.message}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
