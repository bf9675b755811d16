"""The sandbox status page (web/status.html) in Chromium: linked from the app in local mode, one card per region,
and the primary target's breaker light turns open once its model fails (the page refreshes itself)."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import expect

from local.polling import wait_until
from local.sandbox import DEMO_PASSWORD, DEMO_USER, _post_json
from tests.e2e.test_browser import page, sign_in_page  # noqa: F401 - the fixture (the sandbox's CSP, violations fail the test)
from tests.sandbox_fixture import call, sandbox, sign_in  # noqa: F401 - the fixture

PRIMARY = "us.amazon.nova-lite-v1:0@us-east-1"
CEILING_S = 90.0


def test_status_page_draws_the_regions_and_a_breaker_opens_after_faults(page: Any, sandbox: Any) -> None:  # noqa: F811
    # The app links to it in local mode.
    sign_in_page(page, sandbox.web_url)
    page.click("#status-link")

    cards = page.locator(".region-card")
    expect(cards).to_have_count(len(sandbox.regions))
    card = page.locator(f'.region-card[data-region="{sandbox.region}"]')
    expect(card.locator(".light").first).to_have_attribute("data-state", "closed")
    expect(card.locator(".badge")).to_have_text("up")

    token = sign_in(sandbox, DEMO_USER, DEMO_PASSWORD)
    _post_json(
        f"{sandbox.emulator_url}/_emulator/faults",
        {**sandbox.emulator_faults, "targets": {PRIMARY: {"errors": {"ModelErrorException": 1.0}}}},
    )
    try:
        asked = iter(range(1000))

        def chat_until_open() -> bool:
            number = next(asked)
            code, _, _ = call(sandbox, "POST", "/chat", token=token, body={"message": f"Spell the number {number}."})
            assert code == 200
            return card.locator('.light[data-state="open"]').count() > 0  # the page's own 2 s refresh shows it

        assert wait_until(chat_until_open, ceiling_s=CEILING_S, poll_s=0.5), "the breaker light never turned open"
    finally:
        _post_json(f"{sandbox.emulator_url}/_emulator/faults", sandbox.emulator_faults)
    expect(card.locator(".light").first).to_have_attribute("data-state", "open")
    expect(card.locator('.count[data-metric="Failovers"] dd')).not_to_have_text("0")
