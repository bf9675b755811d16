"""Curated answers in a real browser (Debian's Chromium driven by Playwright) on the sandbox: with every chat model
down, a paraphrase of a curated question shows the operators' prepared answer, marked degraded, with the question
it answers visible, so the user can judge the match; an unrelated question shows the honest degraded message and
no matched question."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import expect

from core.gateway import DEGRADED_TEXT
from handlers.settings import TargetSetting
from local.sandbox import DEMO_PASSWORD, DEMO_USER, _post_json
from tests.e2e.test_browser import (
    OUTPUT,
    page,  # noqa: F401 - the fixture (CSP violations fail the test)
    sign_in_page,
)
from tests.sandbox_fixture import call, sandbox, sign_in  # noqa: F401 - the fixture
from tools import curate

NEAR = "How can I reset my password?"  # a paraphrase of web/curated.json's "How do I reset my password?"
MATCHED = "How do I reset my password?"
FAR = "Why is the sky blue?"


@pytest.fixture
def every_model_down(sandbox: Any) -> Iterator[None]:  # noqa: F811
    """The curated answers made (`make curate --sandbox`), then every target of the chat chain down in the
    emulator; restored afterwards."""
    from local import sandbox as sandbox_module

    assert curate.main(["--sandbox", "--state", str(sandbox_module.STATE_FILE)]) == 0
    state = json.loads(sandbox_module.STATE_FILE.read_text())
    chain = [
        TargetSetting.from_json(raw)
        for raw in json.loads(state["regions"][state["region"]]["chat_env"]["MODEL_TARGETS"])
    ]
    down = {f"{target.model_id}@{target.region}": {"down": True} for target in chain}
    _post_json(f"{sandbox.emulator_url}/_emulator/faults", {**sandbox.emulator_faults, "targets": down})
    try:
        yield
    finally:
        _post_json(f"{sandbox.emulator_url}/_emulator/faults", sandbox.emulator_faults)


def test_every_model_down_shows_the_curated_answer_with_its_question_and_the_honest_message_otherwise(
    page: Any,  # noqa: F811
    sandbox: Any,  # noqa: F811
    every_model_down: None,
) -> None:
    OUTPUT.mkdir(parents=True, exist_ok=True)
    sign_in_page(page, sandbox.web_url)

    # WHEN the user asks a question close to a curated one
    page.fill("#message", NEAR)
    page.click("#send")

    # THEN the prepared answer, marked degraded, names the question it answers
    near = page.locator(".msg.assistant").nth(0)
    expect(near).to_have_class("msg assistant degraded")
    expect(near.locator(".meta")).to_contain_text("answered by a curated answer")
    expect(near.locator(".note")).to_contain_text(f'Prepared answer to "{MATCHED}"')
    # ... and it is the curated answer the API serves (the same text, nothing else)
    status, served, _ = call(sandbox, "POST", "/chat", token=sign_in(sandbox, DEMO_USER, DEMO_PASSWORD),
                             body={"message": NEAR})  # fmt: skip
    assert status == 200 and served["target"]["model_id"] == "curated" and served["matchedQuestion"] == MATCHED
    assert served["answer"] != DEGRADED_TEXT
    expect(near).to_contain_text(served["answer"])
    page.screenshot(path=str(OUTPUT / "curated.png"), full_page=True)

    # WHEN an unrelated question follows
    page.fill("#message", FAR)
    page.click("#send")

    # THEN the honest degraded message, and no matched question anywhere in it
    far = page.locator(".msg.assistant").nth(1)
    expect(far).to_contain_text(DEGRADED_TEXT)
    expect(far).to_have_class("msg assistant degraded")
    expect(far.locator(".note")).to_contain_text("Degraded answer")
    assert "Prepared answer" not in far.inner_text() and MATCHED not in far.inner_text()
    assert served["answer"] not in far.inner_text()
