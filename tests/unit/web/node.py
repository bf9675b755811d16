"""Runs the web UI's ES modules in Node for the tests: a script that imports one module and prints one JSON value."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

WEB = Path(__file__).resolve().parents[3] / "web"


def run_module(name: str, alias: str, script: str) -> Any:
    """Runs `script` as an ES module that imports web/`name` as `alias`; returns the JSON it printed."""
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not installed: `make install` needs it for the CDK CLI")
    source = f'import * as {alias} from "{(WEB / name).as_uri()}";\n{script}'
    done = subprocess.run(
        [node, "--input-type=module", "-e", source], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)
