"""What the dashboard reads of an answer: tokens per handler and per target, guardrail interventions and
curated answers."""

from __future__ import annotations

import json

import pytest
from aws_lambda_powertools import Metrics

from adapters.metrics import record_answer, record_tokens
from core.models import ChatAnswer, RetrievalReport, TargetRef, Usage

TARGET = TargetRef(model_id="nova-lite", region="us-east-1")


def emitted(capsys: pytest.CaptureFixture[str]) -> list[dict[str, object]]:
    return [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]


def answer(**overrides: object) -> ChatAnswer:
    fields: dict[str, object] = {
        "conversation_id": None, "answer": "the secret answer", "usage": Usage(input_tokens=1200, output_tokens=300),
        "target": TARGET, "turn": 1,
    }  # fmt: skip
    return ChatAnswer(**{**fields, **overrides})  # type: ignore[arg-type]


def test_tokens_are_counted_for_the_handler_and_per_target(capsys: pytest.CaptureFixture[str]) -> None:
    metrics = Metrics(namespace="Bulwark", service="chat")
    record_answer(metrics, answer())
    metrics.flush_metrics()

    per_target, handler = emitted(capsys)
    assert per_target["target"] == "nova-lite@us-east-1"
    (directive,) = per_target["_aws"]["CloudWatchMetrics"]  # type: ignore[index]
    # This Lambda's tokens per target, and every Lambda's of the region per target (the token cost widgets)
    assert sorted(map(sorted, directive["Dimensions"])) == [["service", "target"], ["target"]]
    assert per_target["InputTokens"] in (1200.0, [1200.0]) and per_target["OutputTokens"] in (300.0, [300.0])
    assert handler["InputTokens"] in (1200.0, [1200.0]) and "target" not in handler
    assert "GuardrailInterventions" not in handler and "CuratedAnswers" not in handler
    assert all("secret" not in json.dumps(blob) for blob in (per_target, handler))


def test_interventions_and_curated_answers_are_counted_without_tokens(capsys: pytest.CaptureFixture[str]) -> None:
    metrics = Metrics(namespace="Bulwark", service="chat")
    record_answer(metrics, answer(guardrail_intervened=True))
    record_answer(metrics, answer(target=TargetRef(model_id="curated", region="-"), usage=Usage(), degraded=True))
    metrics.flush_metrics()

    blobs = emitted(capsys)
    handler = blobs[-1]
    assert handler["GuardrailInterventions"] in (1.0, [1.0]) and handler["CuratedAnswers"] in (1.0, [1.0])
    assert sum("target" in blob for blob in blobs) == 1  # the curated answer used no model: no per-target tokens


def test_a_model_steps_tokens_are_counted_per_target_and_no_call_counts_nothing(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """record_tokens (the worker's jobs, the summarize workflow's steps): per target, this Lambda's and summed."""
    record_tokens(TARGET, input_tokens=0, output_tokens=0)
    record_tokens(TARGET, input_tokens=70, output_tokens=9)

    (blob,) = emitted(capsys)
    assert blob["target"] == "nova-lite@us-east-1"
    (directive,) = blob["_aws"]["CloudWatchMetrics"]  # type: ignore[index]
    assert sorted(map(sorted, directive["Dimensions"])) == [["service", "target"], ["target"]]
    assert blob["InputTokens"] in (70.0, [70.0]) and blob["OutputTokens"] in (9.0, [9.0])


def test_curated_guardrail_and_retrieval_latency_are_also_summed_over_the_region(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The overview's figures (scope=region alone: chat's and stream's together) beside each Lambda's own."""
    metrics = Metrics(namespace="Bulwark", service="stream")
    report = RetrievalReport(used=True, passages=2, latency_ms=182)
    record_answer(metrics, answer(guardrail_intervened=True, retrieval=report))
    record_answer(metrics, answer(target=TargetRef(model_id="curated", region="-"), usage=Usage(), degraded=True))
    record_answer(metrics, answer(retrieval=RetrievalReport(used=False, reason="no passage matched")))  # untimed
    metrics.flush_metrics()

    regional = [blob for blob in emitted(capsys) if blob.get("scope") == "region"]
    assert len(regional) == 2
    for blob in regional:
        (directive,) = blob["_aws"]["CloudWatchMetrics"]  # type: ignore[index]
        assert sorted(map(sorted, directive["Dimensions"])) == [["scope"], ["scope", "service"]]
    first, curated = regional
    assert first["RetrievalLatency"] in (182.0, [182.0]) and first["GuardrailInterventions"] in (1.0, [1.0])
    assert "CuratedAnswers" not in first and curated["CuratedAnswers"] in (1.0, [1.0])
    assert "RetrievalLatency" not in curated
