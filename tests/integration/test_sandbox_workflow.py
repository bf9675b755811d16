"""The summarize workflow in `make dev` (ADR 0005): POST /jobs {"kind": "summarize"} through the sandbox's API, the
region's worker starting the durable function's own handler on the local runner, progress and the summary in
GET /jobs/{id}. Every wait is on an observable state, bounded by a generous guard."""

from __future__ import annotations

from typing import Any

from local.sandbox import DEMO_PASSWORD, DEMO_USER
from tests.integration.test_sandbox_knowledge import DOCUMENT, upload, wait_for
from tests.sandbox_fixture import call, sandbox, sign_in  # noqa: F401 - the fixture


def test_a_document_is_summarized_by_the_durable_workflow_in_the_sandbox(sandbox: Any) -> None:  # noqa: F811
    token = sign_in(sandbox, DEMO_USER, DEMO_PASSWORD)
    status, created, _ = call(
        sandbox, "POST", "/documents", token=token,
        body={"name": "field-notes.txt", "content_type": "text/plain", "size": len(DOCUMENT)},
    )  # fmt: skip
    assert status == 201, created
    document_id = created["document"]["document_id"]
    assert upload(created["upload"], DOCUMENT, "text/plain") in (200, 201, 204)
    wait_for(
        lambda: call(sandbox, "GET", f"/documents/{document_id}", token=token)[1].get("status") == "ready",
        "the document to be ingested",
    )

    status, job, _ = call(sandbox, "POST", "/jobs", token=token, body={"kind": "summarize", "documentId": document_id})
    assert status == 202, job
    assert job["kind"] == "summarize" and job["document_id"] == document_id

    done = wait_for(
        lambda: (
            (j := call(sandbox, "GET", f"/jobs/{job['job_id']}", token=token)[1])
            and j["status"] in ("done", "failed")
            and j
        ),
        "the summarize job to end",
    )
    assert done["status"] == "done", done
    assert done["result"]["summary"] and done["result"]["chapters"]
    total = len(done["result"]["chapters"]) + 1  # chapters and the combining step
    assert done["progress"] == {"done": total, "total": total}

    status, refused, _ = call(sandbox, "POST", "/jobs", token=token, body={"kind": "summarize", "documentId": "x"})
    assert status == 400, refused
