"""`make curate` on moto (DynamoDB) and the Bedrock emulator: the chat Lambda's own wiring answers the operators'
questions, only guardrail-passed answers are stored; then, with every model down, the chat path (the same wiring)
serves the closest curated answer to a paraphrase and the canned text to an unrelated question."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import botocore.session
import pytest

from adapters.curated_answers import MAX_PAGES, DynamoCuratedAnswers, pack, unpack
from core.gateway import DEGRADED_TEXT
from core.models import ChatRequest
from handlers.settings import TargetSetting
from handlers.wiring import build_chat_service
from local.bedrock_emulator import BedrockEmulator, embedding
from local.resources import create_table, create_tables
from tests.conftest import TEST_SETTINGS
from tests.fakes import fixture_aws  # noqa: F401 - the fixture `aws`
from tools import curate

TABLE = "curated-test"
PRIMARY = TargetSetting(model_id="us.amazon.nova-lite-v1:0", region="us-east-1", max_tokens=256, guardrail=("gr1", "1"))
SETTINGS = TEST_SETTINGS.but(targets=(PRIMARY,), curated_table_name=TABLE, cache_table_name=None)


@pytest.fixture(scope="module")
def emulator() -> Iterator[BedrockEmulator]:
    with BedrockEmulator({"default": {"latency_ms": [0, 1]}}) as emu:
        yield emu


def bedrock_factory(emulator: BedrockEmulator) -> Any:
    session = botocore.session.get_session()

    def factory(region: str, config: Any) -> Any:
        return session.create_client(
            "bedrock-runtime",
            region_name=region,
            endpoint_url=emulator.url,
            aws_access_key_id="emulator",
            aws_secret_access_key="emulator",
            config=config,
        )

    return factory


@pytest.fixture
def table(aws: dict[str, Any], emulator: BedrockEmulator) -> DynamoCuratedAnswers:
    emulator.reset({"default": {"latency_ms": [0, 1]}})
    create_tables(aws["dynamodb"], SETTINGS)
    create_table(aws["dynamodb"], TABLE, [("pk", "HASH"), ("sk", "RANGE")])
    return DynamoCuratedAnswers(client=aws["dynamodb"], table_name=TABLE)


def run(aws: dict[str, Any], emulator: BedrockEmulator, questions: Path = curate.QUESTIONS) -> tuple[int, str]:
    out = io.StringIO()
    code = curate.run(
        SETTINGS, questions, dynamodb=aws["dynamodb"], bedrock_factory=bedrock_factory(emulator), region="us-east-1",
        out=out,
    )  # fmt: skip
    return code, out.getvalue()


def test_curate_stores_guardrail_passed_answers_with_prompt_version_model_and_embedding(
    aws: dict[str, Any], emulator: BedrockEmulator, table: DynamoCuratedAnswers
) -> None:
    code, printed = run(aws, emulator)

    entries = {entry.question_id: entry for entry in table.load(limit=100)}
    assert code == 0, printed
    assert "6 of 6 questions curated" in printed
    reset = entries["reset-password"]
    assert reset.question == "How do I reset my password?"
    assert (reset.prompt_version, reset.target.model_id, reset.target.region) == (
        "builtin", PRIMARY.model_id, "us-east-1"
    )  # fmt: skip
    assert reset.answer and reset.answer != DEGRADED_TEXT
    assert reset.embedding == pytest.approx(embedding(reset.question, 1024, True), abs=1e-6)  # float32


def test_blocked_or_degraded_answers_are_not_stored(
    aws: dict[str, Any], emulator: BedrockEmulator, table: DynamoCuratedAnswers, tmp_path: Path
) -> None:
    questions = tmp_path / "q.json"
    questions.write_text('{"questions": [{"id": "blocked", "question": "tell me the forbidden secret"}]}')
    emulator.reset({"default": {"latency_ms": [0, 1]}, "guardrail_patterns": ["forbidden"]})
    code, printed = run(aws, emulator, questions)
    assert code == 1 and "blocked: not stored: the guardrail intervened" in printed

    emulator.reset({"default": {"down": True}})
    code, printed = run(aws, emulator, questions)
    assert code == 1 and "blocked: not stored: degraded" in printed
    assert table.load(limit=10) == []


def test_with_every_model_down_the_chat_path_serves_the_closest_curated_answer(
    aws: dict[str, Any], emulator: BedrockEmulator, table: DynamoCuratedAnswers
) -> None:
    # GIVEN the questions curated while the model was up
    assert run(aws, emulator)[0] == 0
    stored = {entry.question_id: entry.answer for entry in table.load(limit=100)}
    # WHEN every model is down (embeddings still answer: Titan is a different model)
    emulator.reset({"targets": {f"{PRIMARY.model_id}@us-east-1": {"down": True}}})
    service = build_chat_service(SETTINGS, dynamodb=aws["dynamodb"], bedrock_factory=bedrock_factory(emulator))

    near = service.answer(user_id="alice", request=ChatRequest(message="How can I reset my password?")).to_api()
    far = service.answer(user_id="alice", request=ChatRequest(message="What is the capital of France?")).to_api()

    # THEN a paraphrase gets the curated answer, flagged; an unrelated question the canned text
    assert near["answer"] == stored["reset-password"]
    assert near["degraded"] is True and near["target"] == {"model_id": "curated", "region": "-"}
    assert near["matchedQuestion"] == "How do I reset my password?"
    assert far["answer"] == DEGRADED_TEXT and "matchedQuestion" not in far


def test_embedding_down_too_means_no_curated_answer(
    aws: dict[str, Any], emulator: BedrockEmulator, table: DynamoCuratedAnswers
) -> None:
    assert run(aws, emulator)[0] == 0
    emulator.reset({"default": {"down": True}})
    service = build_chat_service(SETTINGS, dynamodb=aws["dynamodb"], bedrock_factory=bedrock_factory(emulator))

    answer = service.answer(user_id="alice", request=ChatRequest(message="How do I reset my password?"))

    assert answer.answer == DEGRADED_TEXT and answer.matched_question is None


def test_the_embedding_round_trips_as_float32() -> None:
    vector = tuple(embedding("How do I reset my password?", 1024, True))

    assert len(pack(vector)) == 4096
    assert unpack(pack(vector)) == pytest.approx(vector, abs=1e-6)


def test_the_load_is_bounded(aws: dict[str, Any], table: DynamoCuratedAnswers) -> None:
    scans: list[dict[str, Any]] = []

    class Counting:
        def scan(self, **request: Any) -> dict[str, Any]:
            scans.append(request)
            return {"Items": [], "LastEvaluatedKey": {"pk": {"S": "x"}, "sk": {"S": "y"}}}

    DynamoCuratedAnswers(client=Counting(), table_name=TABLE).load(limit=50)

    assert len(scans) == MAX_PAGES == 2  # however many pages the table has
