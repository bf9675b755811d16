"""Infra tests share the session-wide synth from tests/conftest.py, and the checks every synth variant passes."""

from __future__ import annotations

import subprocess
from collections.abc import Iterable, Mapping
from typing import Any

from aws_cdk import Stack
from aws_cdk.assertions import Annotations, Match, Template

from tests.conftest import ROOT, Synth, cdk_context, synth

__all__ = ["NAG_RULES", "Synth", "cdk_context", "cfn_lint", "open_nag_findings", "statements", "synth"]

NAG_RULES = Match.string_like_regexp(r"^(AwsSolutions|NIST\.800\.53\.R5|HIPAA\.Security)-")


def statements(template: Template, sid: str | None = None) -> list[dict[str, Any]]:
    """Every IAM policy statement of `template` (only those with `sid`, when given)."""
    return [
        s
        for policy in template.find_resources("AWS::IAM::Policy").values()
        for s in policy["Properties"]["PolicyDocument"]["Statement"]
        if sid is None or s.get("Sid") == sid
    ]


def open_nag_findings(stacks: Mapping[str, Stack]) -> list[str]:
    """Every unsuppressed cdk-nag error and warning (the three packs) of `stacks`, one line each."""
    found = []
    for name, stack in stacks.items():
        annotations = Annotations.from_stack(stack)
        for level, findings in (
            ("error", annotations.find_error("*", NAG_RULES)),
            ("warning", annotations.find_warning("*", NAG_RULES)),
        ):
            found += [f"{name} {level} {f.id}: {str(f.entry.data)[:160]}" for f in findings]
    return found


def cfn_lint(templates: Iterable[str]) -> subprocess.CompletedProcess[str]:
    """cfn-lint over template files, as `make lint-templates` runs it (W3005, the redundant DependsOn CDK emits
    for its own providers, ignored)."""
    return subprocess.run(
        [str(ROOT / ".venv" / "bin" / "cfn-lint"), *templates, "--format", "parseable", "--ignore-checks", "W3005"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
