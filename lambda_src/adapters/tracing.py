"""core.ports.Tracing on the Powertools Tracer: each span is an X-Ray subsegment whose attributes are annotations
(indexed, so traces can be searched by target, outcome or lane).

Only numbers, booleans and short strings pass: an attribute that is not one of these, or a string longer than
`MAX_TEXT`, is dropped rather than sent, so a mistake in the core cannot ship a prompt to X-Ray. Lanes of the
gateway run on worker threads: in Lambda the X-Ray SDK gives each thread the invocation's segment (from the trace
header in the environment), so their subsegments land in the same trace.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

from core.ports import Span, SpanValue

MAX_TEXT = 128  # model names, regions, outcomes and error codes fit; a sentence of user text would not


class _Subsegment:
    def __init__(self, subsegment: Any) -> None:
        self._subsegment = subsegment

    def set(self, key: str, value: SpanValue) -> None:
        if isinstance(value, str) and len(value) > MAX_TEXT:
            return
        if not isinstance(value, (str, int, float, bool)):
            return
        self._subsegment.put_annotation(key, value)


class PowertoolsTracing:
    """Spans as subsegments of the handler's trace (`tracer` is the handler's Powertools Tracer)."""

    def __init__(self, tracer: Any) -> None:
        self._provider = tracer.provider

    def span(self, name: str) -> AbstractContextManager[Span]:
        return self._span(name)

    @contextmanager
    def _span(self, name: str) -> Iterator[Span]:
        with self._provider.in_subsegment(name=f"## {name}") as subsegment:
            yield _Subsegment(subsegment)
