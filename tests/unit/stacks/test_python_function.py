"""The Lambda bundle installs exactly the hash-locked set the tests ran with, as `make install` downloads it."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from stacks.constructs.python_function import LAMBDA_SRC, REQUIREMENTS_LOCK, PipLocalBundling

ROOT = Path(__file__).resolve().parents[3]


def pins(path: Path) -> dict[str, str]:
    """name -> version of every `name==version` line (continuation lines and comments skipped)."""
    found = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip().rstrip("\\").strip()
        if not line or line.startswith("--"):
            continue
        requirement = Requirement(line)
        (spec,) = requirement.specifier
        found[canonicalize_name(requirement.name)] = spec.version
    return found


def test_the_lock_pins_every_requirement_and_transitive_package_at_the_tested_version_with_a_hash() -> None:
    lock = pins(REQUIREMENTS_LOCK)
    direct = pins(LAMBDA_SRC / "requirements.txt")
    tested = pins(ROOT / "constraints.txt")

    assert direct.items() <= lock.items()  # what requirements.txt asks for, at its version
    assert {name: tested.get(name) for name in lock} == lock  # every package at the version the tests ran with
    entries = re.findall(r"^(\S+)==\S+ \\\n    --hash=sha256:([0-9a-f]{64})$", REQUIREMENTS_LOCK.read_text(), re.M)
    assert len(entries) == len(lock)  # one sha256 per package


def test_bundling_installs_from_the_lock_with_hashes_required(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    commands: list[list[str]] = []

    def run(command: list[str], **_: Any) -> None:
        commands.append(command)

    monkeypatch.setattr(subprocess, "run", run)
    PipLocalBundling._pip(tmp_path, ["--no-index", "--find-links", "wheels"])

    (command,) = commands
    assert "--require-hashes" in command
    assert command[command.index("--requirement") + 1] == str(REQUIREMENTS_LOCK)
    assert command[command.index("--platform") + 1] == "manylinux2014_x86_64"
    assert command[command.index("--python-version") + 1] == "3.13"


def test_make_install_downloads_the_same_locked_set_with_hashes() -> None:
    makefile = (ROOT / "Makefile").read_text()
    rule = makefile[makefile.index("$(WHEELS)/.fetched:") :].split("\n\n", 1)[0]

    assert "lambda_src/requirements.lock" in rule.splitlines()[0]  # re-fetched when the lock changes
    assert "--require-hashes -r lambda_src/requirements.lock" in rule
    assert "requirements.txt" not in rule
    assert "lock-lambda:" in makefile and "tools/lock_lambda.py" in makefile
