"""The sandbox serves the runtime switches like AppConfig (local/appconfig_emulator.py): the chat Lambda reads them
through the same Powertools code path as in AWS. Its cache interval is set to 0 here (a variable override, as a
drill does), so a flip is seen by the next request without waiting on a clock."""

from __future__ import annotations

import json
import os
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from core.switches import FORCE_DEGRADED, default_document
from local.sandbox import DEMO_PASSWORD, DEMO_USER
from tests.sandbox_fixture import call, sign_in, started_sandbox

QUESTION = {"message": "The Nile is the longest river. Which river is the longest?"}


@pytest.fixture(scope="module")
def sandbox(synth: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    yield from started_sandbox(synth, tmp_path_factory, env_overrides={"SWITCHES_CACHE_SECONDS": "0"})


def deploy(document: dict[str, Any]) -> None:
    request = urllib.request.Request(
        os.environ["AWS_ENDPOINT_URL_APPCONFIGDATA"] + "/_emulator/configuration",
        data=json.dumps(document).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request) as response:
        assert response.status == 200


def test_flip_degraded_mode_in_the_sandbox_then_back(sandbox: Any) -> None:
    token = sign_in(sandbox, DEMO_USER, DEMO_PASSWORD)
    status, answer, _ = call(sandbox, "POST", "/chat", token=token, body=QUESTION)
    assert status == 200 and answer["answer"] == "The Nile is the longest river." and not answer["degraded"]

    flipped = default_document()
    flipped[FORCE_DEGRADED]["default"] = True
    deploy(flipped)
    status, answer, _ = call(sandbox, "POST", "/chat", token=token, body=QUESTION)
    assert status == 200 and answer["degraded"]

    deploy(default_document())
    status, answer, _ = call(sandbox, "POST", "/chat", token=token, body=QUESTION)
    assert status == 200 and answer["answer"] == "The Nile is the longest river." and not answer["degraded"]
