"""adapters/tracing.py: spans become X-Ray subsegments with annotations; text that could be user input never passes."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from aws_lambda_powertools import Tracer

from adapters.tracing import MAX_TEXT, PowertoolsTracing


class FakeSubsegment:
    def __init__(self) -> None:
        self.annotations: dict[str, Any] = {}

    def put_annotation(self, key: str, value: Any) -> None:
        self.annotations[key] = value


class FakeProvider:
    def __init__(self) -> None:
        self.opened: list[tuple[str, FakeSubsegment]] = []

    @contextmanager
    def in_subsegment(self, name: str) -> Iterator[FakeSubsegment]:
        subsegment = FakeSubsegment()
        self.opened.append((name, subsegment))
        yield subsegment


class FakeTracer:
    def __init__(self) -> None:
        self.provider = FakeProvider()


def test_a_span_is_a_subsegment_named_like_powertools_own_with_its_attributes_as_annotations() -> None:
    tracer = FakeTracer()

    with PowertoolsTracing(tracer).span("model_attempt") as span:
        span.set("target", "claude-haiku")
        span.set("attempt", 2)
        span.set("top_score", 0.82)
        span.set("probe", False)

    ((name, subsegment),) = tracer.provider.opened
    assert name == "## model_attempt"
    assert subsegment.annotations == {"target": "claude-haiku", "attempt": 2, "top_score": 0.82, "probe": False}


def test_long_strings_and_other_types_are_dropped_not_sent() -> None:
    tracer = FakeTracer()

    with PowertoolsTracing(tracer).span("retrieval") as span:
        span.set("question", "x" * (MAX_TEXT + 1))
        span.set("vector", [0.1, 0.2])  # type: ignore[arg-type]

    assert tracer.provider.opened[0][1].annotations == {}


def test_with_the_real_tracer_disabled_spans_cost_nothing_and_raise_nothing() -> None:
    with PowertoolsTracing(Tracer(service="test", disabled=True)).span("embedding") as span:
        span.set("outcome", "ok")
