"""checkov passes on every synthesized template (default regions and a primary region outside
us-east-1, which adds the Edge stack): zero failed checks, and every skip carries a reason.

checkov lives in its own venv (.venv-checkov, `make test` installs it) and runs once, offline."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.infra.conftest import Synth
from tests.infra.test_web_stack import synth_outside_us_east_1

ROOT = Path(__file__).resolve().parents[2]
CHECKOV = ROOT / ".venv-checkov" / "bin" / "checkov"


@pytest.fixture(scope="module")
def report(synth: Synth, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    if not CHECKOV.exists():
        pytest.skip("checkov is not installed: `make test` installs it into .venv-checkov (requirements-checkov.txt)")
    eu = synth_outside_us_east_1(tmp_path_factory)
    templates = sorted(str(p) for out in (synth.app.outdir, eu.app.outdir) for p in Path(out).glob("*.template.json"))
    assert len(templates) == len(synth.stacks) + len(eu.stacks)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")} | {"BC_SKIP_MAPPING": "TRUE"}
    command = [str(CHECKOV), "--framework", "cloudformation", "--skip-download", "--compact", "-o", "json", "-f"]
    result = subprocess.run([*command, *templates], capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode in (0, 1), result.stderr[-3000:]  # 1: some check failed, asserted below
    output = json.loads(result.stdout)
    return output[0] if isinstance(output, list) else output


def test_checkov_finds_no_failed_check(report: dict[str, Any]) -> None:
    failed = [
        f"{c['check_id']} {c['file_path']} {c['resource']}: {c['check_name']}"
        for c in report["results"]["failed_checks"]
    ]
    assert not failed, "\n".join(
        [*failed, "fix each, or skip it next to the resource with a reason (stacks/constructs/nag.py skip_checkov)"]
    )


def test_every_skip_says_why(report: dict[str, Any]) -> None:
    skipped = report["results"]["skipped_checks"]
    assert skipped, "the CDK providers' skips should be visible here"
    for check in skipped:
        reason = check["check_result"].get("suppress_comment") or ""
        assert len(reason) >= 40, f"{check['check_id']} on {check['resource']}: reason too thin to review"


def test_checkov_really_evaluated_the_templates(report: dict[str, Any]) -> None:
    """Guards against a silent no-op (templates not parsed, wrong framework)."""
    summary = report["summary"]
    assert summary["parsing_errors"] == 0
    assert summary["passed"] >= 300, summary
    assert summary["resource_count"] >= 200, summary
