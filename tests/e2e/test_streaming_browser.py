"""Streamed answers in a real browser (ADR 0004): the text grows before the answer ends, and a stream broken after
its first tokens (the emulator's mid-stream fault) ends with the 'incomplete — retry' marker, whose retry answers."""

from __future__ import annotations

import json
import re
from typing import Any

from playwright.sync_api import expect

from tests.e2e.test_browser import page, sign_in_page  # noqa: F401 - the fixture (the sandbox's CSP enforced)
from tests.sandbox_fixture import emulator_faults, sandbox  # noqa: F401 - the fixture

PRIMARY = "us.amazon.nova-lite-v1:0@us-east-1"
QUESTION = ("Mount Everest is the highest mountain on Earth and it stands in the Himalaya between Nepal and Tibet. "
            "Which mountain is the highest?")  # fmt: skip


def test_the_answer_grows_token_by_token(page: Any, sandbox: Any) -> None:  # noqa: F811
    base = sandbox.emulator_faults
    # Slow, small deltas: the answer takes seconds to stream, so a partial one is there to be seen.
    slow = {**base.get("default", {}), "stream_chunk_words": 1, "stream_delay_ms": 150}
    with emulator_faults(sandbox, {**base, "targets": {PRIMARY: slow}}):
        sign_in_page(page, sandbox.web_url)
        page.fill("#message", QUESTION)
        page.click("#send")
        growing = page.locator(".msg.assistant.streaming")
        expect(growing).to_contain_text("Mount")  # some text while the answer still streams...
        assert growing.count() == 1
        final = page.locator(".msg.assistant:not(.streaming)")
        expect(final).to_contain_text("Himalaya", timeout=60_000)  # ...then the whole answer, with its details
        expect(growing).to_have_count(0)
        expect(final).to_contain_text("answered by")
        expect(page.locator(".incomplete-note")).to_have_count(0)


def test_a_stream_broken_mid_answer_is_marked_incomplete_and_can_be_retried(page: Any, sandbox: Any) -> None:  # noqa: F811
    base = sandbox.emulator_faults
    broken = {**base.get("default", {}), "stream_break_after": 2, "stream_break": "modelStreamErrorException"}
    with emulator_faults(sandbox, {**base, "targets": {PRIMARY: broken}}):
        sign_in_page(page, sandbox.web_url)
        page.fill("#message", QUESTION)
        page.click("#send")
        marker = page.locator(".msg.assistant .incomplete-note")
        expect(marker).to_have_text("incomplete — retry", timeout=60_000)
        partial = page.locator(".msg.assistant.incomplete").inner_text()
        assert "Mount" in partial or "Everest" in partial
    page.click(".msg.assistant.incomplete button.retry")
    expect(page.locator(".msg.assistant:not(.incomplete):not(.streaming)").last).to_contain_text(
        "Himalaya", timeout=60_000
    )


def test_a_request_the_server_never_finishes_ends_at_the_watchdog_with_a_retry(page: Any, sandbox: Any) -> None:  # noqa: F811
    # GIVEN a socket whose posts stop after the first delta (the server's posts failed: it stopped posting, ADR 0004),
    # and the browser's clock under the test's control
    page.clock.install()

    def posts_stop_after_the_first_delta(socket: Any) -> None:  # mocked: the page's socket opens, no server behind
        def on_message(message: str | bytes) -> None:
            request_id = json.loads(message)["requestId"]
            socket.send(json.dumps({"type": "start", "requestId": request_id}))
            socket.send(json.dumps({"type": "delta", "text": "Mount Everest ", "requestId": request_id}))

        socket.on_message(on_message)

    page.route_web_socket(re.compile(r"^wss?://"), posts_stop_after_the_first_delta)
    sign_in_page(page, sandbox.web_url)
    page.fill("#message", QUESTION)
    page.click("#send")
    expect(page.locator(".msg.assistant.streaming")).to_contain_text("Mount Everest")

    # WHEN the server's time limit (the stream Lambda's timeout, 120 s without config) and the margin pass
    page.clock.run_for(119_000)
    expect(page.locator(".msg.assistant.streaming")).to_have_count(1)  # still waiting inside the limit
    page.clock.run_for(7_000)

    # THEN the partial answer is marked incomplete with a retry, instead of waiting forever
    marker = page.locator(".msg.assistant.incomplete .incomplete-note")
    expect(marker).to_have_text("incomplete — retry")
    expect(marker).to_have_attribute("title", "no answer arrived in time")
    expect(page.locator(".msg.assistant.incomplete")).to_contain_text("Mount Everest")
    expect(page.locator(".msg.assistant.incomplete button.retry")).to_be_enabled()
    expect(page.locator(".msg.assistant.streaming")).to_have_count(0)
