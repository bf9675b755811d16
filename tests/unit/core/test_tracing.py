"""Traces: one span per gateway attempt (and per target passed over), per retrieval and per embedding call, with the
attributes that explain a slow answer, and never the text of a prompt.

The gateway runs on simulated time (tests/unit/core/simulated_time.py), so timeouts and latencies are exact."""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.gateway import GatewaySettings, ModelGateway
from core.models import Message
from core.ports import NO_TRACING, SpanValue
from core.retrieval import Retriever
from core.switches import Switches
from tests.unit.core.simulated_time import HANGS, SimulatedTarget, SimulatedTime, answers, fails
from tests.unit.core.test_retrieval import FakeEmbedder, FakeIndex, passage


class RecordedSpan:
    def __init__(self, name: str) -> None:
        self.name = name
        self.attributes: dict[str, SpanValue] = {}

    def set(self, key: str, value: SpanValue) -> None:
        self.attributes[key] = value


class RecordingTracing:
    """A span sink: every span opened, in order, with its attributes (lanes record from their own threads)."""

    def __init__(self) -> None:
        self.spans: list[RecordedSpan] = []
        self._lock = threading.Lock()

    @contextmanager
    def span(self, name: str) -> Iterator[RecordedSpan]:
        span = RecordedSpan(name)
        with self._lock:
            self.spans.append(span)
        yield span

    def named(self, name: str) -> list[dict[str, SpanValue]]:
        return [span.attributes for span in self.spans if span.name == name]


def gateway(sim: SimulatedTime, *targets: SimulatedTarget, tracing: RecordingTracing, **options: Any) -> ModelGateway:
    switches = options.pop("switches", None)
    return ModelGateway(
        targets=list(targets),
        settings=GatewaySettings(**options),
        clock=sim.clock,
        sleep=sim.sleep,
        rng=random.Random(7),
        executor=sim,
        wait=sim.wait,
        tracing=tracing,
        switches=switches,
    )


def test_a_failover_then_a_hedge_gives_one_span_per_attempt_with_lane_outcome_and_timeout() -> None:
    # GIVEN a primary that fails (fail over), a secondary that hangs (hedged) and a tertiary that answers
    sim, tracing = SimulatedTime(), RecordingTracing()
    primary = SimulatedTarget("primary", sim, fails("ModelErrorException", after_s=0.1))
    secondary = SimulatedTarget("secondary", sim, HANGS)
    tertiary = SimulatedTarget("tertiary", sim, answers(0.25))
    gw = gateway(sim, primary, secondary, tertiary, tracing=tracing, hedge_after_s=0.5)

    # WHEN one request runs (and the hedged lane left behind ends at its own timeout)
    reply = gw.converse(system="s", messages=[Message(role="user", text="q")], deadline_s=25.0, scope="alice")
    sim.settle()

    # THEN the tertiary answered, and each call has exactly one span saying what happened
    assert reply.target == tertiary.target
    spans = {span["target"]: span for span in tracing.named("model_attempt")}
    assert len(tracing.named("model_attempt")) == 3 == len(primary.calls) + len(secondary.calls) + len(tertiary.calls)
    assert spans["primary"] | {} == {
        "target": "primary", "region": "sim", "lane": "primary", "attempt": 1, "probe": False,
        "timeout_ms": round(primary.timeouts[0] * 1000), "outcome": "error", "code": "ModelErrorException",
    }  # fmt: skip
    assert spans["secondary"]["lane"] == "failover" and spans["secondary"]["outcome"] == "timeout"
    assert spans["secondary"]["timeout_ms"] == round(secondary.timeouts[0] * 1000)
    assert spans["tertiary"]["lane"] == "hedge" and spans["tertiary"]["outcome"] == "ok"
    assert spans["tertiary"]["latency_ms"] == 250 and spans["tertiary"]["attempt"] == 1


def test_retried_throttles_are_spans_of_their_own_numbered_by_attempt() -> None:
    sim, tracing = SimulatedTime(), RecordingTracing()
    only = SimulatedTarget("only", sim, answers(0.1), script=[fails("ThrottlingException", after_s=0.05)])
    gw = gateway(sim, only, tracing=tracing, hedging=False)
    for _ in range(20):  # earn retry budget: 20 requests x 0.1 = 2 retries
        gw._budget.on_call()

    gw.converse(system="s", messages=[Message(role="user", text="q")], deadline_s=25.0)

    attempts = tracing.named("model_attempt")
    assert [(a["attempt"], a["outcome"]) for a in attempts] == [(1, "throttled"), (2, "ok")]
    assert attempts[0]["code"] == "ThrottlingException"


def test_a_target_whose_breaker_is_open_is_a_span_without_a_call() -> None:
    sim, tracing = SimulatedTime(), RecordingTracing()
    primary, secondary = SimulatedTarget("primary", sim), SimulatedTarget("secondary", sim)
    forced = Switches(force_open=frozenset({"primary"}))
    gw = gateway(sim, primary, secondary, tracing=tracing, switches=lambda: forced)

    gw.converse(system="s", messages=[Message(role="user", text="q")], deadline_s=25.0)

    assert primary.calls == []
    assert [(a["target"], a["attempt"], a["outcome"]) for a in tracing.named("model_attempt")] == [
        ("primary", 0, "breaker_open"),
        ("secondary", 1, "ok"),
    ]


def test_retrieval_has_an_embedding_span_and_a_search_span_with_hits_and_top_score() -> None:
    tracing = RecordingTracing()
    # started, embedded (40 ms), searched (60 ms later)
    ticks = iter([0.0, 0.04, 0.1])
    index = FakeIndex({"alice": [passage("d1", "text one", 0.82), passage("d2", "text two", 0.61)]})
    retriever = Retriever(
        embedder=FakeEmbedder(), index=index, top_k=5, context_chars=1000, deadline_s=3.0,
        timer=lambda: next(ticks, 0.1), tracing=tracing,
    )  # fmt: skip

    retriever.retrieve("alice", "what does the contract say?")

    assert tracing.named("embedding") == [{"timeout_ms": 3000, "outcome": "ok", "latency_ms": 40}]
    (search,) = tracing.named("retrieval")
    assert search == {"latency_ms": 60, "outcome": "ok", "hits": 2, "top_score": 0.82}


def test_a_failed_embedding_is_a_span_with_its_outcome_and_no_search() -> None:
    tracing = RecordingTracing()
    retriever = Retriever(
        embedder=FakeEmbedder(fail=RuntimeError("down")), index=FakeIndex(), top_k=5, context_chars=1000,
        deadline_s=3.0, timer=lambda: 0.0, tracing=tracing,
    )  # fmt: skip

    retriever.retrieve("alice", "question")

    assert [s.name for s in tracing.spans] == ["embedding"]
    assert tracing.named("embedding")[0]["outcome"] == "error"


def test_the_default_tracing_records_nothing_and_costs_no_setup() -> None:
    with NO_TRACING.span("anything") as span:
        span.set("key", "value")  # accepted and dropped


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(prompt=st.text(min_size=12, max_size=200).filter(lambda t: t.strip() != ""))
def test_no_span_attribute_carries_the_prompt_or_a_piece_of_it(prompt: str) -> None:
    sim, tracing = SimulatedTime(), RecordingTracing()
    primary = SimulatedTarget("primary", sim, fails("ModelErrorException", after_s=0.1))
    secondary = SimulatedTarget("secondary", sim, answers(0.2))
    gw = gateway(sim, primary, secondary, tracing=tracing, hedging=False)
    index = FakeIndex({"alice": [passage("d1", "passage text", 0.7)]})
    retriever = Retriever(
        embedder=FakeEmbedder(), index=index, top_k=5, context_chars=1000, deadline_s=3.0, timer=lambda: 0.0,
        tracing=tracing,
    )  # fmt: skip

    retriever.retrieve("alice", prompt)
    gw.converse(system=prompt, messages=[Message(role="user", text=prompt)], deadline_s=25.0, scope="alice")
    sim.settle()

    values = [value for span in tracing.spans for value in span.attributes.values()]
    assert len(tracing.spans) == 4
    assert all(not isinstance(value, str) or (prompt not in value and prompt[:12] not in value) for value in values)
    assert all(isinstance(value, (int, float, bool)) or len(value) <= 64 for value in values)
