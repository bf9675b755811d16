"""One sandbox per test module, built from the session's synthesized templates."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest


def started_sandbox(synth: Any, tmp_path_factory: pytest.TempPathFactory, **options: Any) -> Iterator[Any]:
    """A sandbox from the session's templates with its own state file, stopped at the end with the process's
    environment as it was; `options` go to local.sandbox.start (dr, site_port, env_overrides...)."""
    import os

    from local import sandbox as sandbox_module

    saved = dict(os.environ)
    sandbox_module.STATE_FILE = tmp_path_factory.mktemp("sandbox") / "state.json"
    running = sandbox_module.start(cdk_out=Path(synth.app.outdir), progress=lambda message: None, **options)
    try:
        yield running
    finally:
        running.stop()
        os.environ.clear()
        os.environ.update(saved)


@pytest.fixture(scope="module")
def sandbox(synth: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    yield from started_sandbox(synth, tmp_path_factory)


@contextmanager
def emulator_faults(sandbox: Any, faults: dict[str, Any]) -> Iterator[None]:
    """The sandbox's Bedrock emulator answers with `faults` inside the block, then with the sandbox's own again."""
    from local.sandbox import _post_json

    _post_json(f"{sandbox.emulator_url}/_emulator/faults", faults)
    try:
        yield
    finally:
        _post_json(f"{sandbox.emulator_url}/_emulator/faults", sandbox.emulator_faults)


def sign_in(sandbox: Any, username: str, password: str) -> str:
    request = urllib.request.Request(
        sandbox.aws_url + "/",
        data=json.dumps(
            {"AuthFlow": "USER_PASSWORD_AUTH", "ClientId": sandbox.client_id,
             "AuthParameters": {"USERNAME": username, "PASSWORD": password}}
        ).encode(),
        headers={"Content-Type": "application/x-amz-json-1.1",
                 "X-Amz-Target": "AWSCognitoIdentityProviderService.InitiateAuth"},
    )  # fmt: skip
    with urllib.request.urlopen(request) as response:
        return str(json.loads(response.read())["AuthenticationResult"]["IdToken"])


def call(sandbox: Any, method: str, path: str, *, token: str | None = None, body: Any = None) -> tuple[int, Any, Any]:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = token
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(sandbox.api_url + path, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request) as response:
            text = response.read()
            return response.status, json.loads(text) if text else None, response.headers
    except urllib.error.HTTPError as error:
        text = error.read()
        return error.code, json.loads(text) if text else None, error.headers
