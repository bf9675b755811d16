"""Documents in a real browser against the sandbox: upload with the file picker, watch it become ready, get an
answer that cites it, delete it. Under the page fixture's Content-Security-Policy check: the upload goes to the
documents bucket (moto's endpoint in the sandbox), which the policy must allow.

Every wait is on what the page shows (Playwright's expect with a generous timeout), never on elapsed time."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from playwright.sync_api import expect

from tests.e2e.test_browser import OUTPUT, page, sign_in_page  # noqa: F401 - the fixture
from tests.sandbox_fixture import sandbox  # noqa: F401 - the fixture

EMULATOR_CONFIG = Path(__file__).resolve().parents[2] / "local" / "emulator.json"
INGEST_TIMEOUT_MS = 120_000  # generous: ingest paces its embedding calls and the emulator adds model latency
ANSWER_TIMEOUT_MS = 60_000
NAME = "lighthouse-notes.md"
DOCUMENT = (
    b"# Lighthouse notes\n\n"
    b"The Quokkaville lighthouse keeper is named Ottoline Marsh. "
    b"She has kept the Quokkaville lighthouse since the great storm of 1987.\n\n"
    b"Tides at the harbour turn twice a day.\n"
)


@contextmanager
def models_unavailable(sandbox: Any) -> Iterator[None]:  # noqa: F811
    """Both chat targets fail (the embedding model still answers); the emulator's own config is restored after."""
    chat = "us.amazon.nova-lite-v1:0"
    faults = {"targets": {f"{chat}@{region}": {"errors": {"ServiceUnavailableException": 1.0}}
                          for region in ("us-east-1", "us-west-2")}}  # fmt: skip
    emulator_faults(sandbox, faults)
    try:
        yield
    finally:
        emulator_faults(sandbox, json.loads(EMULATOR_CONFIG.read_text()))


def emulator_faults(sandbox: Any, faults: dict[str, Any]) -> None:  # noqa: F811
    request = urllib.request.Request(sandbox.emulator_url + "/_emulator/faults", data=json.dumps(faults).encode())
    with urllib.request.urlopen(request) as response:
        assert response.status == 200


def sign_in(page: Any, sandbox: Any) -> None:  # noqa: F811
    sign_in_page(page, sandbox.web_url)
    expect(page.locator("#documents")).to_be_visible()  # GET /documents answered: knowledge is on


def test_upload_a_document_see_it_ready_get_a_cited_answer_and_delete_it(page: Any, sandbox: Any) -> None:  # noqa: F811
    sign_in(page, sandbox)

    # GIVEN a Markdown file chosen with the file picker
    page.set_input_files("#document-file", files=[{"name": NAME, "mimeType": "text/markdown", "buffer": DOCUMENT}])
    row = page.locator("#document-list li", has_text=NAME)

    # WHEN the pipeline has read it, THEN its row says so (the page polls until a terminal state)
    expect(row).to_contain_text("ready", timeout=INGEST_TIMEOUT_MS)
    expect(row).to_contain_text("passage")  # "ready · n passages"
    expect(page.locator("#documents-status")).not_to_have_class("status error")

    # WHEN a question needs it, THEN the answer cites it under itself: name and snippet
    page.fill("#message", "Who is the Quokkaville lighthouse keeper?")
    page.click("#send")
    answer = page.locator(".msg.assistant").last
    expect(answer).to_contain_text("Ottoline Marsh", timeout=ANSWER_TIMEOUT_MS)
    citations = answer.locator(".citations")
    expect(citations).to_contain_text(NAME)
    expect(citations.locator(".snippet").first).to_contain_text("Quokkaville")
    expect(answer.locator(".retrieval-note")).to_have_count(0)  # retrieval was used
    OUTPUT.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(OUTPUT / "documents.png"), full_page=True)

    # AND after a reload the stored turn still shows its citations
    page.reload()
    expect(page.locator(".msg.assistant").last.locator(".citations")).to_contain_text(NAME)

    # WHEN no model can answer, THEN the degraded answer quotes the passages, labelled as such, with their sources
    with models_unavailable(sandbox):
        page.fill("#message", "Since when has Ottoline Marsh kept the Quokkaville lighthouse?")
        page.click("#send")
        degraded = page.locator(".msg.assistant").last
        expect(degraded.locator(".note")).to_contain_text("Passages from your documents", timeout=ANSWER_TIMEOUT_MS)
        expect(degraded.locator(".meta")).to_contain_text("passages from your documents")
        expect(degraded).to_contain_text("1987")
        expect(degraded.locator(".citations")).to_contain_text(NAME)

    # WHEN it is deleted, THEN it leaves the list, and stays gone once the page lists documents again
    page.locator("#document-list li", has_text=NAME).get_by_role("button", name=f"Delete {NAME}").click()
    expect(page.locator("#document-list")).not_to_contain_text(NAME)
    expect(page.locator("#documents-status")).to_contain_text("deleted")
    page.click("#documents-refresh")
    expect(page.locator("#documents-empty")).to_be_visible()
    expect(page.locator("#document-list")).not_to_contain_text(NAME)


def test_a_refused_type_is_not_uploaded_and_an_answer_without_documents_says_why(page: Any, sandbox: Any) -> None:  # noqa: F811
    sign_in(page, sandbox)
    page.set_input_files(
        "#document-file", files=[{"name": "sheet.xlsx", "mimeType": "application/vnd.ms-excel", "buffer": b"x"}]
    )
    expect(page.locator("#documents-status")).to_contain_text("only PDF, HTML, Markdown and plain text")
    expect(page.locator("#document-list")).not_to_contain_text("sheet.xlsx")

    # GIVEN no document of this user matches, WHEN they ask, THEN the answer says it was given without them
    page.fill("#message", "The Pacific is the largest ocean. Which ocean is the largest?")
    page.click("#send")
    answer = page.locator(".msg.assistant").last
    expect(answer.locator(".retrieval-note")).to_contain_text(
        "Answered without your documents", timeout=ANSWER_TIMEOUT_MS
    )
    expect(answer.locator(".citations")).to_have_count(0)


def test_a_file_dropped_on_the_panel_is_uploaded(page: Any, sandbox: Any) -> None:  # noqa: F811
    sign_in(page, sandbox)
    # A drop as a browser delivers it: a DataTransfer holding a File (built in the page, not evaluated by the app)
    transfer = page.evaluate_handle("() => new DataTransfer()")
    transfer.evaluate(
        "(t) => t.items.add(new File(['Tides at the harbour turn twice a day.'], 'dropped.txt', {type: 'text/plain'}))"
    )
    page.dispatch_event("#drop-zone", "drop", {"dataTransfer": transfer})
    row = page.locator("#document-list li", has_text="dropped.txt")
    expect(row).to_contain_text("ready", timeout=INGEST_TIMEOUT_MS)
    row.get_by_role("button", name="Delete dropped.txt").click()
    expect(page.locator("#document-list")).not_to_contain_text("dropped.txt")
