"""core/ imports no AWS SDK and no LangChain (the conventions' hexagonal rule)."""

from __future__ import annotations

import ast
from pathlib import Path

CORE = Path(__file__).resolve().parents[3] / "lambda_src" / "core"
FORBIDDEN = ("boto3", "botocore", "langchain", "langchain_core", "langchain_aws", "aws_lambda_powertools")


def test_core_modules_import_nothing_from_the_outside_world() -> None:
    offenders = []
    for path in CORE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [f"{path.name}: {n}" for n in names if n.split(".")[0] in FORBIDDEN]
    assert offenders == []
    assert len(list(CORE.rglob("*.py"))) >= 4  # the check really looked at the core
