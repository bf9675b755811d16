"""The web UI in a real browser (Debian's Chromium driven by Playwright) against the sandbox."""

from __future__ import annotations

import json
import re
import shutil
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from local.sandbox import DEMO_PASSWORD, DEMO_USER
from tests.sandbox_fixture import sandbox  # noqa: F401 - the fixture

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
OUTPUT = Path(__file__).resolve().parents[2] / "test-results" / "e2e"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]  # fmt: skip


@pytest.fixture
def page() -> Any:
    """A page under the sandbox's Content-Security-Policy (the AWS one's shape): nothing the UI does may violate
    it. Tests wait with locators, never with page-side string evaluation, which the policy forbids."""
    if not Path(CHROMIUM).exists():
        pytest.fail("chromium is not installed: `make test` installs it (make browser)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_page(viewport={"width": 1200, "height": 800})
        violations: list[str] = []
        page.on(
            "console",
            lambda message: violations.append(message.text) if "Content Security Policy" in message.text else None,
        )
        yield page
        browser.close()
        assert violations == [], "the web UI violated its Content-Security-Policy"


def sign_in_page(page: Any, url: str) -> None:
    """The demo user signs in through the web UI at `url`; returns once the app is shown."""
    page.goto(url)
    page.fill("#email", DEMO_USER)
    page.fill("#password", DEMO_PASSWORD)
    page.click("#sign-in-form button[type=submit]")
    page.wait_for_selector("#app:not([hidden])")


def test_sign_in_chat_reload_and_see_the_fallback_when_the_primary_is_throttled(page: Any, sandbox: Any) -> None:  # noqa: F811
    OUTPUT.mkdir(parents=True, exist_ok=True)
    sign_in_page(page, sandbox.web_url)
    assert page.is_hidden("#sign-in")

    page.fill("#message", "Mount Everest is the highest mountain. Which mountain is the highest?")
    page.click("#send")
    first = page.locator(".msg.assistant").first
    # The answer streams in: its model and region are shown once it has ended (wait for them, not for the first text).
    expect(first).to_contain_text(re.compile(r"us-(east-1|west-2)"))
    assert "Mount Everest is the highest mountain." in first.inner_text()
    # The primary answers; on a slow machine the gateway may hedge to the DR target, and the UI must say so.
    shown = first.inner_text()
    assert ("us-east-1" in shown and "fallback" not in shown) or ("us-west-2" in shown and "fallback" in shown)
    # The daily token budget (issue 12; the reference deployment's 200,000) is shown after the answer.
    expect(page.locator("#budget")).to_contain_text("tokens today: ")
    expect(page.locator("#budget")).to_contain_text(" / 200000")

    page.reload()
    page.wait_for_selector(".msg.assistant")
    assert "Mount Everest" in page.inner_text("#messages")
    expect(page.locator("#conversations")).to_contain_text("Mount Everest")

    faults = {"default": {"latency_ms": [50, 100]},
              "targets": {"us.amazon.nova-lite-v1:0@us-east-1": {"errors": {"ThrottlingException": 1.0}}}}  # fmt: skip
    urllib.request.urlopen(
        urllib.request.Request(sandbox.emulator_url + "/_emulator/faults", data=json.dumps(faults).encode())
    )
    try:
        page.fill("#message", "The Pacific is the largest ocean. Which ocean is the largest?")
        page.click("#send")
        second = page.locator(".msg.assistant").nth(1)
        expect(second).to_contain_text("us-west-2")  # the streamed answer has ended, its target shown
        text = second.inner_text()
        assert "The Pacific is the largest ocean." in text
        assert "us-west-2" in text and "fallback" in text
        page.screenshot(path=str(OUTPUT / "fallback.png"), full_page=True)
    finally:
        urllib.request.urlopen(
            urllib.request.Request(sandbox.emulator_url + "/_emulator/faults", data=json.dumps({}).encode())
        )


def test_errors_are_readable(page: Any, sandbox: Any) -> None:  # noqa: F811
    page.goto(sandbox.web_url)
    page.fill("#email", DEMO_USER)
    page.fill("#password", "wrong-password-1A!")
    page.click("#sign-in-form button[type=submit]")
    expect(page.locator("#sign-in-error")).not_to_be_empty()
    page.fill("#password", DEMO_PASSWORD)
    page.click("#sign-in-form button[type=submit]")
    page.wait_for_selector("#app:not([hidden])")
    page.fill("#message", "x" * 9000)  # over the 8000-character limit
    page.click("#send")
    expect(page.locator("#status")).to_contain_text("8000")  # the limit, in API Gateway's validation message
    assert "8000" in page.inner_text("#status")
