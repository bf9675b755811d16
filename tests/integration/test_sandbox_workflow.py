"""The summarize workflow in `make dev` (ADR 0005): POST /jobs {"kind": "summarize"} through the sandbox's API, the
region's worker starting the durable function's own handler on the local runner, progress and the summary in
GET /jobs/{id}. Every wait is on an observable state, bounded by a generous guard."""

from __future__ import annotations

from typing import Any

from local.sandbox import DEMO_PASSWORD, DEMO_USER
from tests.integration.test_sandbox_knowledge import upload_document, wait_final
from tests.sandbox_fixture import call, sandbox, sign_in  # noqa: F401 - the fixture


def test_a_document_is_summarized_by_the_durable_workflow_in_the_sandbox(sandbox: Any) -> None:  # noqa: F811
    token = sign_in(sandbox, DEMO_USER, DEMO_PASSWORD)
    document_id = upload_document(sandbox, token, name="field-notes.txt")["document_id"]
    ingested = wait_final(sandbox, token, f"/documents/{document_id}", "the document to be ingested")
    assert ingested["status"] == "ready", ingested

    status, job, _ = call(sandbox, "POST", "/jobs", token=token, body={"kind": "summarize", "documentId": document_id})
    assert status == 202, job
    assert job["kind"] == "summarize" and job["document_id"] == document_id

    done = wait_final(sandbox, token, f"/jobs/{job['job_id']}", "the summarize job to end")
    assert done["status"] == "done", done
    assert done["result"]["summary"] and done["result"]["chapters"]
    total = len(done["result"]["chapters"]) + 1  # chapters and the combining step
    assert done["progress"] == {"done": total, "total": total}

    status, refused, _ = call(sandbox, "POST", "/jobs", token=token, body={"kind": "summarize", "documentId": "x"})
    assert status == 400, refused
