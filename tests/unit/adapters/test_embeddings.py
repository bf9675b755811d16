"""TitanEmbedder against the Bedrock emulator through a real botocore client.

No test depends on the machine's speed: quotas are buckets that do not refill within a run, a retry's backoff
goes through an injected sleep (which also changes the emulator's faults, to make "throttled, then fine"
exact), and the assertions count calls, retries and breaker states, never elapsed time.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from adapters.embeddings import TitanEmbedder
from core.errors import DependencyUnavailable
from core.ingest import Embedder, EmbeddingRejected, IngestDeadlineExceeded
from core.resilience import BreakerSettings, BreakerState, CircuitBreaker, Deadline, RateLimiter, RetryBudget
from local.bedrock_emulator import BedrockEmulator

MODEL = "amazon.titan-embed-text-v2:0"
REGION = "us-east-1"
THROTTLED = {"default": {"latency_ms": [0, 0], "errors": {"ThrottlingException": 1.0}}}
FINE = {"default": {"latency_ms": [0, 0]}}


@pytest.fixture
def emulator() -> Iterator[BedrockEmulator]:
    with BedrockEmulator(FINE) as emu:
        yield emu


def factory(emulator: BedrockEmulator) -> Any:
    def make(config: Any) -> Any:
        return boto3.client(
            "bedrock-runtime", region_name=REGION, endpoint_url=emulator.url, config=config,
            aws_access_key_id="e", aws_secret_access_key="e",
        )  # fmt: skip

    return make


def embedder(emulator: BedrockEmulator, *, dimensions: int = 256, sleeps: list[float] | None = None,
             on_sleep: Any = None, **kwargs: Any) -> TitanEmbedder:  # fmt: skip
    def sleep(seconds: float) -> None:
        if sleeps is not None:
            sleeps.append(seconds)
        if on_sleep is not None:
            on_sleep()

    return TitanEmbedder(
        client_factory=factory(emulator), model_id=MODEL, dimensions=dimensions, sleep=sleep,
        jitter=lambda: 1.0, **kwargs,
    )  # fmt: skip


def deadline() -> Deadline:
    return Deadline(120.0)


def test_the_adapter_is_an_embedder(emulator: BedrockEmulator) -> None:
    port: Embedder = embedder(emulator)  # checked by mypy
    assert port is not None


@pytest.mark.parametrize("dimensions", [256, 512, 1024])
def test_returns_a_normalized_vector_of_the_configured_dimensions(emulator: BedrockEmulator, dimensions: int) -> None:
    vector = embedder(emulator, dimensions=dimensions).embed("resilient serverless answers", deadline=deadline())
    assert len(vector) == dimensions
    assert math.isclose(math.fsum(v * v for v in vector), 1.0, rel_tol=1e-6)
    assert emulator.calls(MODEL, REGION) == 1


def test_throttling_is_retried_within_the_budget(emulator: BedrockEmulator) -> None:
    sleeps: list[float] = []
    budget = RetryBudget(ratio=0.1)
    titan = embedder(emulator, sleeps=sleeps, budget=budget, on_sleep=lambda: emulator.set_faults(FINE))
    for i in range(10):  # ten offered calls earn one retry
        titan.embed(f"passage {i}", deadline=deadline())

    emulator.set_faults(THROTTLED)  # the next call is throttled; the backoff's sleep lifts the throttle
    vector = titan.embed("passage ten", deadline=deadline())

    assert len(vector) == 256
    assert (titan.calls, titan.retries, len(sleeps)) == (12, 1, 1)
    assert 0 < sleeps[0] <= 5.0
    assert emulator.stats()[f"{MODEL}@{REGION}"]["outcomes"] == {"ok": 11, "ThrottlingException": 1}


def test_throttling_past_the_budget_goes_back_to_the_queue(emulator: BedrockEmulator) -> None:
    emulator.set_faults(THROTTLED)
    titan = embedder(emulator, sleeps=[])
    calls_offered = 20
    failures = 0
    for i in range(calls_offered):
        with pytest.raises(DependencyUnavailable):
            titan.embed(f"passage {i}", deadline=deadline())
        failures += 1
    # The contract: under 100 % throttling the model sees at most 1.1x the offered requests.
    assert emulator.calls(MODEL, REGION) <= 1.1 * calls_offered
    assert titan.retries <= 0.1 * calls_offered
    assert failures == calls_offered


def test_validation_is_never_retried(emulator: BedrockEmulator) -> None:
    titan = embedder(emulator, dimensions=300, sleeps=[], budget=RetryBudget(ratio=1.0))  # room to retry: unused
    with pytest.raises(EmbeddingRejected):
        titan.embed("any passage", deadline=deadline())
    assert emulator.calls(MODEL, REGION) == 1
    assert titan.breaker.state is BreakerState.CLOSED


def test_the_breaker_opens_and_stops_calling_the_model(emulator: BedrockEmulator) -> None:
    now = [0.0]
    breaker = CircuitBreaker(BreakerSettings(open_s=30.0), clock=lambda: now[0])
    titan = embedder(emulator, sleeps=[], breaker=breaker, budget=RetryBudget(ratio=0.1))
    emulator.set_faults({"default": {"down": True}})
    for i in range(5):  # five consecutive failures open it
        with pytest.raises(DependencyUnavailable):
            titan.embed(f"passage {i}", deadline=deadline())
    assert breaker.state is BreakerState.OPEN
    calls = emulator.calls(MODEL, REGION)

    with pytest.raises(DependencyUnavailable) as raised:
        titan.embed("one more", deadline=deadline())
    assert emulator.calls(MODEL, REGION) == calls  # no call while open
    assert raised.value.retry_after == 30

    emulator.set_faults(FINE)
    now[0] += 30.0  # half-open: one probe goes through and closes it
    assert len(titan.embed("the model is back", deadline=deadline())) == 256
    assert breaker.state is BreakerState.CLOSED


def test_pacing_waits_for_the_quota_share_instead_of_being_throttled(emulator: BedrockEmulator) -> None:
    now = [0.0]
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        now[0] += seconds

    pacing = RateLimiter(2.0, clock=lambda: now[0], sleep=sleep)  # 2 embeddings per second, no burst
    titan = embedder(emulator, pacing=pacing)
    for i in range(5):
        titan.embed(f"passage {i}", deadline=deadline())
    assert waits == pytest.approx([0.5] * 4)  # the first goes at once, each next one waits its turn
    assert emulator.calls(MODEL, REGION) == 5


def test_pacing_that_outlasts_the_deadline_is_a_retry_later(emulator: BedrockEmulator) -> None:
    now = [0.0]
    pacing = RateLimiter(0.01, clock=lambda: now[0], sleep=lambda s: None)  # one call per 100 s
    titan = embedder(emulator, pacing=pacing)
    titan.embed("first", deadline=Deadline(10.0, clock=lambda: now[0]))
    with pytest.raises(IngestDeadlineExceeded):
        titan.embed("second", deadline=Deadline(10.0, clock=lambda: now[0]))
    assert emulator.calls(MODEL, REGION) == 1
