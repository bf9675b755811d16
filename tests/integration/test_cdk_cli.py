"""The pinned CDK CLI synthesizes both regions with no credentials and, where the kernel lets us
cut the network (unshare -n), with no network at all; the Lambda bundle is built without Docker."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
STACKS = {
    "Bulwark-dev-Keys", "Bulwark-dev-Keys-DR", "Bulwark-dev-Data", "Bulwark-dev-Auth",
    "Bulwark-dev-Auth-DR", "Bulwark-dev-Api", "Bulwark-dev-Api-DR", "Bulwark-dev-Web",
    "Bulwark-dev-WebContent", "Bulwark-dev-Models", "Bulwark-dev-Models-DR", "Bulwark-dev-Knowledge",
    "Bulwark-dev-Knowledge-DR", "Bulwark-dev-Backup", "Bulwark-dev-Backup-DR", "Bulwark-dev-Web-DR",
    "Bulwark-dev-WebContent-DR",
}  # fmt: skip


def _offline_prefix() -> list[str]:
    unshare = shutil.which("unshare")
    if unshare and subprocess.run([unshare, "-n", "true"], capture_output=True).returncode == 0:
        return [unshare, "-n"]
    return []


@pytest.fixture(scope="module")
def cli_out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not (ROOT / "node_modules" / ".bin" / "cdk").exists():
        pytest.fail("the pinned CDK CLI is missing: run `make install` (make test does it)")
    out = tmp_path_factory.mktemp("cli") / "cdk.out"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env |= {"CDK_DISABLE_VERSION_CHECK": "1", "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20"}
    command = [*_offline_prefix(), "npx", "--no-install", "cdk", "--no-notices", "synth", "--quiet", "-o", str(out)]
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return out


def test_cli_synth_writes_every_stack_of_both_regions(cli_out: Path) -> None:
    manifest = json.loads((cli_out / "manifest.json").read_text())
    stacks = {
        name: artifact["environment"].rsplit("/", 1)[-1]
        for name, artifact in manifest["artifacts"].items()
        if artifact["type"] == "aws:cloudformation:stack"
    }
    assert set(stacks) == STACKS
    assert {region for name, region in stacks.items() if name.endswith("-DR")} == {"us-west-2"}
    assert {region for name, region in stacks.items() if not name.endswith("-DR")} == {"us-east-1"}


def test_lambda_bundle_holds_the_code_and_a_matched_sdk_pair(cli_out: Path) -> None:
    bundles = [p for p in cli_out.glob("asset.*") if (p / "handlers" / "chat.py").exists()]
    assert len(bundles) == 1, "one shared code asset for every function"
    bundle = bundles[0]
    assert (bundle / "core" / "chat.py").exists() and (bundle / "aws_lambda_powertools").is_dir()
    assert not list(bundle.glob("tests")) and not (bundle / "requirements.txt").exists()
    pins = dict(
        line.split("==") for line in (ROOT / "lambda_src" / "requirements.txt").read_text().splitlines() if "==" in line
    )
    for package in ("boto3", "botocore"):
        assert (bundle / f"{package}-{pins[package]}.dist-info").is_dir(), package


def test_templates_pass_cfn_lint_with_zero_errors(cli_out: Path) -> None:
    templates = sorted(str(p) for p in cli_out.glob("*.template.json"))
    assert len(templates) == len(STACKS)
    result = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "cfn-lint"), "--format", "parseable", *templates],
        capture_output=True,
        text=True,
    )
    findings = [line for line in result.stdout.splitlines() if line.strip()]
    errors = [line for line in findings if ":E" in line]
    warnings = [line for line in findings if ":W" in line and ":W3005:" not in line]
    assert errors == [] and warnings == []
