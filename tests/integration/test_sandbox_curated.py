"""Curated answers in the sandbox: `make curate --sandbox` answers the operators' questions through the chat
Lambda's wiring (emulator models, guardrail, the embedded AWS); then with every chat model down the API serves the
closest curated answer to a paraphrase (flagged, with the question it answers) and the canned text to an unrelated
question. Retrieval is on in the sandbox, so the question's embedding is the retrieval's."""

from __future__ import annotations

import json
from typing import Any

from core.gateway import DEGRADED_TEXT
from handlers.settings import TargetSetting
from local.sandbox import DEMO_PASSWORD, DEMO_USER
from tests.sandbox_fixture import call, emulator_faults, sandbox, sign_in  # noqa: F401 - the fixture
from tools import curate


def test_curate_then_every_model_down_serves_the_closest_curated_answer(sandbox: Any) -> None:  # noqa: F811
    from local import sandbox as sandbox_module

    assert curate.main(["--sandbox", "--state", str(sandbox_module.STATE_FILE)]) == 0

    state = json.loads(sandbox_module.STATE_FILE.read_text())
    chat_env = state["regions"][state["region"]]["chat_env"]
    chain = [TargetSetting.from_json(raw) for raw in json.loads(chat_env["MODEL_TARGETS"])]
    down = {f"{target.model_id}@{target.region}": {"down": True} for target in chain}
    with emulator_faults(sandbox, {**sandbox.emulator_faults, "targets": down}):
        token = sign_in(sandbox, DEMO_USER, DEMO_PASSWORD)
        status, near, _ = call(sandbox, "POST", "/chat", token=token, body={"message": "How can I reset my password?"})
        status_far, far, _ = call(sandbox, "POST", "/chat", token=token, body={"message": "Why is the sky blue?"})

    assert status == 200 and near["degraded"] is True, near

    assert near["target"] == {"model_id": "curated", "region": "-"}
    assert near["matchedQuestion"] == "How do I reset my password?"
    assert status_far == 200 and far["answer"] == DEGRADED_TEXT and "matchedQuestion" not in far
