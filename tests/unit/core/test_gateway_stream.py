"""The gateway's streaming path on simulated time: the chain's rules up to the first token, honesty after it.

Targets are scripted streams: so long to the first token (or a failure before it), then chunks so far apart,
then perhaps a break. The gateway runs its real lanes on `SimulatedTime`, so every time asserted is exact.
"""

from __future__ import annotations

import math
import random
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

from core.errors import ModelRejected, Overloaded, TargetCallError
from core.gateway import CACHE_TARGET, DEGRADED_TEXT, NONE_TARGET, GatewaySettings, ModelGateway
from core.models import Message, ModelReply, TargetRef, Usage
from core.resilience import BreakerSettings, BreakerState
from tests.fakes import MemoryCache
from tests.unit.core.simulated_time import SimulatedTarget, SimulatedTime, answers

ASK = [Message(role="user", text="What is the capital of France?")]


def exactly(seconds: float) -> Any:
    return pytest.approx(seconds, abs=1e-9)


@dataclass(frozen=True)
class Script:
    """One stream: the first chunk after `first_s` (or `error` then), then `chunks` every `gap_s`; with
    `break_code`, the stream breaks after `break_after` chunks."""

    first_s: float = 0.2
    error: str | None = None
    chunks: tuple[str, ...] = ("Paris ", "is the ", "capital.")
    gap_s: float = 0.05
    break_after: int | None = None
    break_code: str = "ModelStreamErrorException"


HANGS = Script(first_s=math.inf)


class _Stream:
    def __init__(self, owner: StreamTarget, script: Script, timeout_s: float) -> None:
        self._owner, self._script, self._timeout = owner, script, timeout_s
        self.closed = False
        self._sent: list[str] = []

    def __iter__(self) -> Iterator[str]:
        sim, script = self._owner.sim, self._script
        for index, chunk in enumerate(script.chunks):
            if script.break_after is not None and index == script.break_after:
                raise TargetCallError(script.break_code, "emulated break")
            wait = script.first_s if index == 0 else script.gap_s
            if wait > self._timeout:  # botocore's read timeout, per read
                sim.sleep(self._timeout)
                raise TargetCallError("Timeout", "read timed out")
            sim.sleep(wait)
            if self.closed:
                return
            self._sent.append(chunk)
            yield chunk

    def reply(self) -> ModelReply:
        text = "".join(self._sent)
        return ModelReply(
            text=text, usage=Usage(input_tokens=7, output_tokens=len(self._sent)), target=self._owner.target,
            guardrail_checked=True,
        )  # fmt: skip

    def close(self) -> None:
        self.closed = True
        self._owner.closed += 1


@dataclass
class StreamTarget:
    """A StreamingTargetModel on simulated time: `scripts` call by call, then `script`."""

    name: str
    sim: SimulatedTime
    script: Script = field(default_factory=Script)
    scripts: list[Script] = field(default_factory=list)
    opened: list[float] = field(default_factory=list)  # simulated times its streams were requested
    closed: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def target(self) -> TargetRef:
        return TargetRef(model_id=self.name, region="sim")

    def call(self, *, system: str, messages: Sequence[Message], timeout_s: float) -> ModelReply:
        raise AssertionError("a streaming request must not call converse")

    def stream(self, *, system: str, messages: Sequence[Message], timeout_s: float) -> _Stream:
        with self._lock:
            script = self.scripts.pop(0) if self.scripts else self.script
            self.opened.append(self.sim.clock())
        if script.error is not None:
            self.sim.sleep(script.first_s)
            raise TargetCallError(script.error, "before the stream")
        return _Stream(self, script, timeout_s)


class Events:
    def __init__(self, sim: SimulatedTime) -> None:
        self.sim = sim
        self.events: list[tuple[float, str, str, str]] = []

    def record(self, *, event: str, target: TargetRef, detail: str = "", latency_s: float | None = None) -> None:
        self.events.append((self.sim.clock(), event, target.model_id, detail))

    def of(self, event: str) -> list[tuple[str, str]]:
        return [(model, detail) for _, name, model, detail in self.events if name == event]


@pytest.fixture
def sim() -> Iterator[SimulatedTime]:
    sim = SimulatedTime()
    yield sim
    sim.settle()


def gateway_on(sim: SimulatedTime, *targets: Any, metrics: Events | None = None, **settings: Any) -> ModelGateway:
    cache = settings.pop("cache", None)
    return ModelGateway(
        targets=list(targets),
        settings=GatewaySettings(**settings),
        cache=cache,
        metrics=metrics,
        clock=sim.clock,
        sleep=sim.sleep,
        rng=random.Random(7),
        executor=sim,
        wait=sim.wait,
    )


def read(sim: SimulatedTime, gateway: ModelGateway, deadline_s: float = 25.0) -> tuple[list[str], ModelReply, float]:
    """Open a stream, note when its first token was known, read it to the end."""
    started = sim.clock()
    stream = gateway.stream(system="s", messages=ASK, deadline_s=deadline_s, scope="alice")
    first_at = sim.clock() - started
    chunks = list(stream)
    return chunks, stream.reply(), first_at


def test_a_healthy_stream_commits_to_the_primary_and_gives_every_chunk(sim: SimulatedTime) -> None:
    primary, secondary = StreamTarget("primary", sim), StreamTarget("secondary", sim)
    events = Events(sim)
    gateway = gateway_on(sim, primary, secondary, metrics=events)

    chunks, reply, first_at = read(sim, gateway)

    assert first_at == exactly(0.2)  # returned at the first token, not at the end
    assert chunks == ["Paris ", "is the ", "capital."] and reply.text == "".join(chunks)
    assert reply.target == primary.target and not reply.incomplete and reply.usage.output_tokens == 3
    assert secondary.opened == []
    assert events.of("attempt") == [("primary", "ok")]  # settled once, at the end of the stream
    assert gateway.capacity_state(0).in_flight == 0


def test_a_target_that_fails_before_its_first_token_fails_over(sim: SimulatedTime) -> None:
    primary = StreamTarget("primary", sim, Script(error="ModelErrorException", first_s=0.1))
    secondary = StreamTarget("secondary", sim)
    events = Events(sim)
    gateway = gateway_on(sim, primary, secondary, metrics=events)

    _chunks, reply, first_at = read(sim, gateway)

    assert reply.target == secondary.target and not reply.incomplete
    assert first_at == exactly(0.3)
    assert events.of("failover") == [("primary", "ModelErrorException")]


def test_a_throttled_stream_is_retried_on_the_same_target_before_its_first_token(sim: SimulatedTime) -> None:
    primary = StreamTarget("primary", sim, scripts=[Script(error="ThrottlingException", first_s=0.01)])
    gateway = gateway_on(sim, primary)  # alone: a throttle is retried here (with others it moves on)
    for _ in range(20):  # earn budget: 20 calls x 0.1 = 2 retries (a warm environment has earned some)
        gateway._budget.on_call()

    chunks, reply, _ = read(sim, gateway)

    assert reply.target == primary.target and len(primary.opened) == 2 and chunks


def test_a_break_after_the_first_token_ends_the_answer_incomplete_without_failover(sim: SimulatedTime) -> None:
    primary = StreamTarget("primary", sim, Script(break_after=2, break_code="ModelStreamErrorException"))
    secondary = StreamTarget("secondary", sim)
    events = Events(sim)
    gateway = gateway_on(sim, primary, secondary, metrics=events)

    chunks, reply, _ = read(sim, gateway)

    assert chunks == ["Paris ", "is the "] and reply.text == "Paris is the "
    assert reply.incomplete and "ModelStreamErrorException" in (reply.incomplete_reason or "")
    assert reply.target == primary.target and secondary.opened == []  # the user already read the primary's text
    assert primary.closed == 1
    assert events.of("stream_broken") == [("primary", "ModelStreamErrorException")]
    assert gateway.capacity_state(0).in_flight == 0
    # Bedrock reports usage only at a stream's end: the token budget is charged an estimate (4 characters a token)
    # of the prompt the model read and the text it wrote, never nothing.
    prompt_chars = sum(len(message.text) for message in ASK)
    assert reply.usage.input_tokens == -(-prompt_chars // 4) > 0
    assert reply.usage.output_tokens == -(-len("Paris is the ") // 4) == 4


def test_breaks_after_the_first_token_count_toward_the_breaker_like_failed_calls(sim: SimulatedTime) -> None:
    primary = StreamTarget("primary", sim, Script(break_after=1))
    gateway = gateway_on(sim, primary, breaker=BreakerSettings(consecutive_failures=3))

    for _ in range(3):
        read(sim, gateway)

    assert gateway.breaker_state(0) is BreakerState.OPEN
    with pytest.raises(Overloaded):  # every breaker open and nothing cached: refused at once
        gateway.stream(system="s", messages=ASK, deadline_s=25.0, scope="alice")


def test_a_stall_mid_stream_ends_at_the_read_timeout_incomplete(sim: SimulatedTime) -> None:
    primary = StreamTarget("primary", sim, Script(gap_s=30.0))
    gateway = gateway_on(sim, primary, StreamTarget("secondary", sim))

    started = sim.clock()
    chunks, reply, _ = read(sim, gateway)

    assert chunks == ["Paris "] and reply.incomplete and "timeout" in (reply.incomplete_reason or "")
    assert sim.clock() - started < 25.0  # the per-read timeout ended it inside the deadline


def test_the_deadline_before_the_first_token_gives_the_degraded_answer(sim: SimulatedTime) -> None:
    primary, secondary = StreamTarget("primary", sim, HANGS), StreamTarget("secondary", sim, HANGS)
    gateway = gateway_on(sim, primary, secondary, hedge_after_s=100.0)

    started = sim.clock()
    chunks, reply, _ = read(sim, gateway, deadline_s=3.0)

    assert reply.degraded and reply.target == NONE_TARGET and chunks == [DEGRADED_TEXT]
    assert sim.clock() - started <= 3.0 + 1e-9
    sim.settle()
    assert gateway.capacity_state(0).in_flight == 0 and gateway.capacity_state(1).in_flight == 0


def test_the_deadline_after_the_first_token_ends_the_answer_incomplete(sim: SimulatedTime) -> None:
    slow = Script(chunks=tuple(f"w{i} " for i in range(100)), gap_s=0.5)
    gateway = gateway_on(sim, StreamTarget("primary", sim, slow))

    chunks, reply, _ = read(sim, gateway, deadline_s=5.0)

    assert reply.incomplete and reply.incomplete_reason == "the answer ran out of time"
    assert 1 < len(chunks) < 100 and reply.text == "".join(chunks)
    assert sim.clock() <= 5.0 + 0.5 + 1e-9  # at most one chunk's wait past it


def test_a_primary_slow_to_its_first_token_is_hedged_and_the_loser_is_closed(sim: SimulatedTime) -> None:
    primary = StreamTarget("primary", sim, Script(first_s=2.0))
    secondary = StreamTarget("secondary", sim, Script(first_s=0.25))
    events = Events(sim)
    gateway = gateway_on(sim, primary, secondary, metrics=events, hedge_after_s=0.5)

    _chunks, reply, first_at = read(sim, gateway)

    assert reply.target == secondary.target and first_at == exactly(0.75)
    assert events.of("hedge") == [("primary", "")]
    sim.settle()  # the primary's first token comes at 2.0: its stream is closed, never read
    assert primary.closed == 1
    assert gateway.capacity_state(0).in_flight == 0 and gateway.capacity_state(1).in_flight == 0
    assert gateway.breaker_state(0) is BreakerState.CLOSED


def test_a_target_that_cannot_stream_answers_in_one_chunk(sim: SimulatedTime) -> None:
    gateway = gateway_on(sim, SimulatedTarget("plain", sim, answers(0.3)))

    chunks, reply, first_at = read(sim, gateway)

    assert chunks == ["from plain"] and reply.text == "from plain" and first_at == exactly(0.3)


def test_validation_errors_before_the_stream_are_rejected_not_failed_over(sim: SimulatedTime) -> None:
    secondary = StreamTarget("secondary", sim)
    gateway = gateway_on(sim, StreamTarget("primary", sim, Script(error="ValidationException")), secondary)

    with pytest.raises(ModelRejected):
        gateway.stream(system="s", messages=ASK, deadline_s=25.0, scope="alice")
    assert secondary.opened == []


def test_only_complete_streams_are_cached_and_the_cache_answers_when_no_target_can(sim: SimulatedTime) -> None:
    cache = MemoryCache()
    primary = StreamTarget("primary", sim, scripts=[Script(break_after=1), Script()])
    gateway = gateway_on(sim, primary, cache=cache, breaker=BreakerSettings(consecutive_failures=1))

    _, broken, _ = read(sim, gateway)
    assert broken.incomplete and broken.cache_key is None and cache.items == {}

    gateway = gateway_on(sim, primary, cache=cache)
    _, whole, _ = read(sim, gateway)
    assert whole.cache_key is not None

    primary.script = Script(error="ModelErrorException")
    chunks, cached, _ = read(sim, gateway)
    assert cached.target == CACHE_TARGET and chunks == ["Paris is the capital."]


def test_closing_a_stream_early_frees_the_target_without_blaming_it(sim: SimulatedTime) -> None:
    primary = StreamTarget("primary", sim)
    events = Events(sim)
    gateway = gateway_on(sim, primary, metrics=events)

    stream = gateway.stream(system="s", messages=ASK, deadline_s=25.0, scope="alice")
    next(iter(stream))
    stream.close()

    assert primary.closed == 1 and stream.reply().incomplete
    assert gateway.capacity_state(0).in_flight == 0 and gateway.breaker_state(0) is BreakerState.CLOSED
    assert events.of("stream_abandoned") == [("primary", "")] and events.of("attempt") == []


def test_hedges_and_first_token_timeouts_follow_the_time_to_first_token_not_the_whole_stream(
    sim: SimulatedTime,
) -> None:
    # GIVEN a primary whose answers take 5 s to stream but whose first token comes in 0.2 s
    long = Script(first_s=0.2, chunks=tuple(f"w{i} " for i in range(50)), gap_s=0.1)
    primary = StreamTarget("primary", sim, long)
    secondary = StreamTarget("secondary", sim, Script(first_s=0.25))
    events = Events(sim)
    gateway = gateway_on(sim, primary, secondary, metrics=events, hedge_after_s=10.0)
    for _ in range(10):
        _, reply, first_at = read(sim, gateway)
        assert first_at == exactly(0.2) and not reply.incomplete
    assert secondary.opened == [] and events.of("hedge") == []

    # WHEN its next first token is slow (2 s)
    primary.scripts.append(Script(first_s=2.0))
    started = sim.clock()
    _, reply, first_at = read(sim, gateway)

    # THEN the hedge starts after 3 x the first-token p95 (0.6 s), not 3 x the 5 s streams (or the 10 s cold delay)
    assert events.of("hedge") == [("primary", "")]
    assert secondary.opened == [pytest.approx(started + 0.6, abs=1e-9)]
    assert reply.target == secondary.target and first_at == exactly(0.85)
    # and the primary's first-token timeout is 4 x that p99 (at least min_timeout_s, 1 s), not 4 x 5 s
    sim.settle()
    assert events.of("attempt")[-2:] == [("secondary", "ok"), ("primary", "Timeout")]
    assert gateway.breaker_state(0) is BreakerState.CLOSED  # the long streams were never "slow calls"
