"""The static fallback in a real browser (Debian's Chromium driven by Playwright) on the two-region sandbox, its
web UI served apart from both APIs as CloudFront is: both regions' APIs down -> the static help page shows the
status and the operators' curated answers (no API involved, nothing the user typed); one region back -> the app
returns on its own, signed in, and answers from that region."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.e2e.test_browser import (
    OUTPUT,
    page,  # noqa: F401 - the fixture (CSP violations fail the test)
    sign_in_page,
)
from tests.sandbox_fixture import started_sandbox

CURATED = json.loads((Path(__file__).resolve().parents[2] / "web" / "curated.json").read_text())["answers"]
SECRET_QUESTION = "Kestrel-7 is the codename of my private project. What is its codename?"


@pytest.fixture(scope="module")
def sandbox(synth: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """Both regions, and the web UI on its own port (it stays up when a region goes down)."""
    yield from started_sandbox(synth, tmp_path_factory, dr=True, site_port=0)


def test_both_apis_down_shows_the_static_page_and_one_region_back_returns_to_the_app(
    page: Any,  # noqa: F811
    sandbox: Any,
) -> None:
    primary, dr = sandbox.region, sandbox.dr_region
    site = sandbox.web_url.rstrip("/")
    assert site not in (sandbox.api_url, sandbox.dr_api_url) and dr
    OUTPUT.mkdir(parents=True, exist_ok=True)
    sign_in_page(page, site + "/")
    page.fill("#message", "Mount Everest is the highest mountain. Which mountain is the highest?")
    page.click("#send")
    # The answer streams in: wait for its text, not for its first words.
    expect(page.locator(".msg.assistant").first).to_contain_text("Mount Everest is the highest mountain.")
    # Nothing left in flight (the conversation list and the documents panel have loaded): the outage below
    # meets the question the user asks next, not a background refresh.
    expect(page.locator("#conversations")).to_contain_text("Mount Everest")
    page.wait_for_selector("#documents:not([hidden])")
    assert sandbox.wait_replicated(), "the conversation reaches DR before the outage (the tables' RPO is ~1 s)"

    try:
        # GIVEN neither region's API answers
        sandbox.outage(primary)
        sandbox.outage(dr)

        # WHEN the user asks something
        page.fill("#message", SECRET_QUESTION)
        page.click("#send")

        # THEN the static help page takes over: the status, the curated answers, and nothing the user typed
        page.wait_for_url(f"{site}/fallback.html")
        expect(page.locator("#curated dt")).to_have_count(len(CURATED))
        for entry in CURATED:
            expect(page.locator("#curated")).to_contain_text(entry["question"])
            expect(page.locator("#curated")).to_contain_text(entry["answer"])
        expect(page.locator("#outage")).to_contain_text("Neither region's API is answering")
        # Its first probe of both /health routes comes a few seconds later, and fails.
        expect(page.locator("#probe-status")).to_contain_text("not answering", timeout=30_000)
        assert "Kestrel" not in page.content()
        page.screenshot(path=str(OUTPUT / "static-fallback.png"), full_page=True)

        # WHEN one region comes back, THEN the page's next probe finds it and the app returns, still signed in
        sandbox.recover(dr)
        page.wait_for_url(re.compile(re.escape(site) + r"/(index\.html)?$"), timeout=60_000)
        page.wait_for_selector("#app:not([hidden])")
        expect(page.locator("#messages")).to_contain_text("Mount Everest")  # the conversation, read from DR
        page.fill("#message", "The Pacific is the largest ocean. Which ocean is the largest?")
        page.click("#send")
        answer = page.locator(".msg.assistant").nth(1)
        expect(answer).to_contain_text("The Pacific is the largest ocean.")
        expect(answer).to_contain_text(dr)  # shown once the streamed answer has ended
    finally:
        for region in (dr, primary):
            if not sandbox.regions[region].up:
                sandbox.recover(region)


def test_the_static_page_reads_only_public_files_and_keeps_the_sites_policy(sandbox: Any) -> None:
    """What the static page needs is served by the site alone, under the same Content-Security-Policy."""
    import urllib.request

    sandbox.outage(sandbox.region)
    sandbox.outage(sandbox.dr_region)
    try:
        for name in ("fallback.html", "fallback.js", "outage.js", "curated.json", "config.json"):
            with urllib.request.urlopen(f"{sandbox.web_url}/{name}") as response:
                assert response.status == 200, name
        with urllib.request.urlopen(f"{sandbox.web_url}/fallback.html") as response:
            policy = response.headers["Content-Security-Policy"]
        assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy and "'unsafe" not in policy
    finally:
        sandbox.recover(sandbox.dr_region)
        sandbox.recover(sandbox.region)
