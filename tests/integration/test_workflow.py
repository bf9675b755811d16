"""The summarize workflow end to end on moto (DynamoDB, SQS), the S3 Vectors and Bedrock emulators and the durable
execution SDK's local runner: POST /jobs -> worker -> durable execution -> progress and the summary in GET /jobs/{id}.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config

from adapters.documents import DynamoDocumentStore
from adapters.s3vectors import NON_FILTERABLE_KEYS, TEXT_KEY
from core.knowledge import chunk_key
from core.workflow import WorkflowSettings
from handlers import worker
from handlers import workflow as workflow_handler
from local.durable_runner import LocalDurableFunctions, LocalWorkflowStarter
from local.resources import create_table
from local.s3vectors_emulator import S3VectorsEmulator
from tests.integration.test_jobs import call
from tests.jobs_fixtures import MODEL, JobsWorld, jobs_world
from tests.unit.handlers.test_chat import ALICE, BOB

REGION = MODEL[1]
DOC = "0b8e6f1c-2d3a-4e5f-8a9b-0c1d2e3f4a5b"
DIMENSION = 4


@dataclass
class WorkflowWorld:
    jobs: JobsWorld
    s3vectors: Any
    functions: LocalDurableFunctions
    workflow: Any  # the SummaryWorkflow the durable handler runs


def add_document(world: JobsWorld, s3vectors: Any, *, owner: str, chunks: list[tuple[int, str]]) -> None:
    """A ready document as ingest leaves it: the region's status item and its chunks' vectors (page, text)."""
    store = DynamoDocumentStore(client=world.dynamodb, table_name=world.settings.documents_table_name or "")
    store.claim(owner, DOC, REGION, sequencer="0A", version_id="v1", name="book.txt", content_type="text/plain",
                size=100, lease_until=time.time() + 60)  # fmt: skip
    store.mark_ready(owner, DOC, REGION, sequencer="0A", chunk_count=len(chunks))
    s3vectors.put_vectors(
        vectorBucketName=world.settings.vector_bucket_name,
        indexName=world.settings.vector_index_name,
        vectors=[
            {
                "key": chunk_key(owner, DOC, "v1", i),
                "data": {"float32": [1.0, 0.0, 0.0, float(i)]},
                "metadata": {
                    "owner": owner,
                    "document_id": DOC,
                    "version": "v1",
                    "chunk_index": i,
                    "page": page,
                    TEXT_KEY: text,
                },
            }
            for i, (page, text) in enumerate(chunks)
        ],
    )


CHAPTERS = [(p, f"Page {p} paragraph {n}: " + "lorem ipsum dolor sit amet " * 25) for p in (1, 2, 3) for n in (1, 2)]


@contextmanager
def workflow_world(*, model_wrapper: Any = None, **settings: Any) -> Iterator[WorkflowWorld]:
    with (
        jobs_world(
            documents_table_name="documents", vector_bucket_name="vectors", vector_index_name="chunks",
            embedding_dimensions=DIMENSION, **settings,
        ) as world,
        S3VectorsEmulator() as vectors,
    ):  # fmt: skip
        create_table(world.dynamodb, "documents", [("pk", "HASH"), ("sk", "RANGE")])
        s3vectors = boto3.client(
            "s3vectors", region_name=REGION, endpoint_url=vectors.url, aws_access_key_id="e",
            aws_secret_access_key="e", config=Config(retries={"total_max_attempts": 1}),
        )  # fmt: skip
        s3vectors.create_vector_bucket(vectorBucketName="vectors")
        s3vectors.create_index(
            vectorBucketName="vectors", indexName="chunks", dataType="float32", dimension=DIMENSION,
            distanceMetric="cosine", metadataConfiguration={"nonFilterableMetadataKeys": list(NON_FILTERABLE_KEYS)},
        )  # fmt: skip
        flow = workflow_handler.build_workflow(
            world.settings, dynamodb=world.dynamodb, s3vectors=s3vectors, bedrock_factory=world.bedrock,
            workflow_settings=WorkflowSettings(chapter_chars=1500, retry_base_s=30),
        )  # fmt: skip
        if model_wrapper is not None:
            flow._model = model_wrapper(flow._model, world)  # fault injection around the gateway
        with LocalDurableFunctions({"summarize": workflow_handler.bootstrap(flow)}) as functions:
            world.worker = worker.bootstrap(
                world.settings, dynamodb=world.dynamodb, sqs=world.sqs, bedrock_factory=world.bedrock,
                workflows=LocalWorkflowStarter(functions),
            )  # fmt: skip
            yield WorkflowWorld(world, s3vectors, functions, flow)


def summarize(w: WorkflowWorld, *, sub: str = ALICE) -> tuple[int, dict[str, Any]]:
    status, body, _ = call(w.jobs, "POST", "/jobs", body={"kind": "summarize", "documentId": DOC}, sub=sub,
                           headers={"Idempotency-Key": str(uuid.uuid4())})  # fmt: skip
    return status, body


def finished(w: WorkflowWorld, job_id: str, *, sub: str = ALICE) -> dict[str, Any]:
    """Deliver the job's message to the worker, then wait for the durable execution to end; the job's status
    (with the execution's history under `_history`)."""
    assert w.jobs.pump().run_until(lambda: _status(w, job_id, sub) not in ("queued",), timeout_s=60)
    history = w.functions.result("summarize", job_id, timeout_s=60)
    return {**call(w.jobs, "GET", f"/jobs/{job_id}", sub=sub)[1], "_history": history}


def _status(w: WorkflowWorld, job_id: str, sub: str) -> str:
    return str(w.jobs.jobs.status(user_id=sub, job_id=job_id).status)


def test_summary_chapter_by_chapter_with_progress_and_result() -> None:
    with workflow_world() as w:
        add_document(w.jobs, w.s3vectors, owner=ALICE, chunks=CHAPTERS)

        status, body = summarize(w)
        assert status == 202 and body["kind"] == "summarize" and body["document_id"] == DOC
        job = finished(w, body["job_id"])

        assert job["status"] == "done", job
        chapters = job["result"]["chapters"]
        assert len(chapters) == 3  # one per page: 2 chunks of ~700 chars each, 1500 chars per chapter
        assert job["progress"] == {"done": 4, "total": 4}  # 3 chapters + the combining call
        assert job["result"]["summary"] and job["result"]["target"]["model_id"] == MODEL[0]
        assert w.jobs.emulator.calls(*MODEL) == 4


class CrashAfter:
    """Fault injection around the gateway: the (k+1)th call fails once before reaching the model (the invocation
    dies mid-step). The SDK records the failed attempt and ends the invocation; the next invocation replays."""

    def __init__(self, model: Any, world: JobsWorld, *, calls: int) -> None:
        self._model, self._left, self.crashed = model, calls, False

    def converse(self, **kwargs: Any) -> Any:
        if self._left == 0 and not self.crashed:
            self.crashed = True
            raise RuntimeError("simulated crash of the execution environment")
        self._left -= 1
        return self._model.converse(**kwargs)


def test_a_crash_after_two_chapters_resumes_without_summarizing_them_again() -> None:
    crash: list[CrashAfter] = []

    def wrap(model: Any, world: JobsWorld) -> CrashAfter:
        crash.append(CrashAfter(model, world, calls=2))
        return crash[0]

    with workflow_world(model_wrapper=wrap) as w:
        add_document(w.jobs, w.s3vectors, owner=ALICE, chunks=CHAPTERS)
        _, body = summarize(w)
        job = finished(w, body["job_id"])

        assert crash[0].crashed and job["status"] == "done", job
        # 3 chapters + 1 combine, each asked once: chapters 1-2 came from their checkpoints after the crash.
        assert w.jobs.emulator.calls(*MODEL) == 4
        history = job["_history"]
        assert history.get_step("chapter-3").attempt == 2  # type: ignore[attr-defined]


class ThrottledOnce:
    """The model is throttled (emulator: ThrottlingException on every call) for the first chapter's first try."""

    def __init__(self, model: Any, world: JobsWorld) -> None:
        self._model, self._world, self.throttled = model, world, 0

    def converse(self, **kwargs: Any) -> Any:
        if self.throttled == 0:
            self._world.emulator.set_faults({"default": {"errors": {"ThrottlingException": 1.0}, "latency_ms": [0, 0]}})
            try:
                return self._model.converse(**kwargs)
            finally:
                self.throttled += 1
                self._world.emulator.set_faults({"default": {"latency_ms": [0, 1]}})
        return self._model.converse(**kwargs)


def test_a_throttled_chapter_waits_durably_then_succeeds() -> None:
    with workflow_world(model_wrapper=ThrottledOnce) as w:
        add_document(w.jobs, w.s3vectors, owner=ALICE, chunks=CHAPTERS)
        _, body = summarize(w)
        job = finished(w, body["job_id"])

        assert job["status"] == "done", job
        history = job["_history"]
        assert history.get_step("chapter-1").attempt == 2  # type: ignore[attr-defined]  # retried after a wait


def test_another_users_document_fails_the_job_as_not_found() -> None:
    with workflow_world() as w:
        add_document(w.jobs, w.s3vectors, owner=ALICE, chunks=CHAPTERS)
        _, body = summarize(w, sub=BOB)
        job = finished(w, body["job_id"], sub=BOB)

        assert job["status"] == "failed" and "was not found" in job["reason"], job
        assert w.jobs.emulator.calls(*MODEL) == 0
        assert call(w.jobs, "GET", f"/jobs/{body['job_id']}")[0] == 404  # nor can Alice see Bob's job


def test_bad_summarize_requests_are_400() -> None:
    with workflow_world() as w:
        assert call(w.jobs, "POST", "/jobs", body={"kind": "summarize"})[0] == 400
        assert call(w.jobs, "POST", "/jobs", body={"kind": "translate", "documentId": DOC})[0] == 400


def tokens_today(w: WorkflowWorld, user: str = ALICE) -> int:
    from handlers.wiring import build_user_limits

    limits = build_user_limits(w.jobs.settings.but(daily_tokens_per_user=10**9), dynamodb=w.jobs.dynamodb)
    assert limits is not None
    status = limits.admit_tokens(user)
    assert status is not None
    return status.used


def test_every_model_step_spends_the_users_daily_token_budget_once() -> None:
    with workflow_world(daily_tokens_per_user=1_000_000) as w:
        add_document(w.jobs, w.s3vectors, owner=ALICE, chunks=CHAPTERS)
        _, body = summarize(w)
        job = finished(w, body["job_id"])

        assert job["status"] == "done", job
        usage = job["result"]["usage"]
        assert usage["input_tokens"] > 0 and tokens_today(w) == usage["input_tokens"] + usage["output_tokens"]


def test_a_budget_spent_midway_fails_the_summary_with_the_reset_time() -> None:
    with workflow_world(daily_tokens_per_user=1) as w:  # admitted at POST /jobs and for the first chapter only
        add_document(w.jobs, w.s3vectors, owner=ALICE, chunks=CHAPTERS)
        status, body = summarize(w)
        job = finished(w, body["job_id"])

        assert status == 202 and job["status"] == "failed", job
        assert job["reason"].startswith("the summary stopped before part 2 of 3: your daily token budget is used")
        assert "resets at" in job["reason"] and w.jobs.emulator.calls(*MODEL) == 1
        assert tokens_today(w) > 1  # the chapter the model did summarize is counted
