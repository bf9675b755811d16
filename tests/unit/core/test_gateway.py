"""The whole gateway runner (lanes, hedging, timeouts, retries, breakers) on simulated time.

Targets are scripted to take so many simulated seconds, hang, throttle or fail; the gateway runs
its real thread runner on `SimulatedTime`, so every time asserted here is exact and no verdict
depends on the machine's speed. The decisions themselves are tested one by one in test_policy.py.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from concurrent.futures import Future
from dataclasses import dataclass, replace
from typing import Any

import pytest

from core.errors import AtCapacity, ModelRejected, Overloaded, TargetCallError
from core.gateway import CACHE_TARGET, DEGRADED_TEXT, NONE_TARGET, GatewaySettings, ModelGateway
from core.models import Message, ModelReply, TargetRef
from core.resilience import BreakerSettings, BreakerState, CapacitySettings
from tests.fakes import MemoryCache
from tests.unit.core.simulated_time import (
    HANGS,
    QuotaTarget,
    SimulatedTarget,
    SimulatedTime,
    SimulationStuck,
    answers,
    fails,
)

ASK = [Message(role="user", text="What is the capital of France?")]


def exactly(seconds: float) -> Any:
    """Simulated times are exact up to float rounding of the sums that make them."""
    return pytest.approx(seconds, abs=1e-9)


class RecordedMetrics:
    """Every gateway event with the simulated time it happened at."""

    def __init__(self, sim: SimulatedTime) -> None:
        self._sim = sim
        self.events: list[tuple[float, str, str, str]] = []

    def record(self, *, event: str, target: TargetRef, detail: str = "", latency_s: float | None = None) -> None:
        self.events.append((self._sim.clock(), event, target.model_id, detail))

    def of(self, event: str) -> list[tuple[float, str, str]]:
        return [(at, model, detail) for at, name, model, detail in self.events if name == event]


@pytest.fixture
def sim() -> Iterator[SimulatedTime]:
    sim = SimulatedTime()
    yield sim
    sim.settle()  # lanes left behind by a faster answer end on simulated time too


@pytest.fixture
def metrics(sim: SimulatedTime) -> RecordedMetrics:
    return RecordedMetrics(sim)


def gateway_on(
    sim: SimulatedTime,
    *targets: SimulatedTarget,
    metrics: RecordedMetrics | None = None,
    cache: MemoryCache | None = None,
    **settings: Any,
) -> ModelGateway:
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


def ask(
    sim: SimulatedTime, gateway: ModelGateway, *, deadline_s: float = 25.0, text: str = ""
) -> tuple[ModelReply, float]:
    """One request; the reply and how many simulated seconds it took."""
    messages = [Message(role="user", text=text)] if text else ASK
    started = sim.clock()
    reply = gateway.converse(system="s", messages=messages, deadline_s=deadline_s, scope="alice")
    return reply, sim.clock() - started


# --- hedging ------------------------------------------------------------------------------------
def test_a_healthy_primary_is_not_hedged_even_just_inside_the_hedge_delay(
    sim: SimulatedTime, metrics: RecordedMetrics
) -> None:
    primary, secondary = SimulatedTarget("primary", sim, answers(1.4)), SimulatedTarget("secondary", sim)
    gateway = gateway_on(sim, primary, secondary, metrics=metrics, hedge_after_s=1.5)

    reply, took = ask(sim, gateway)

    assert reply.target == primary.target and not reply.degraded
    assert took == exactly(1.4)
    assert secondary.calls == [] and metrics.of("hedge") == []


def test_a_hanging_primary_is_hedged_at_the_hedge_delay_and_the_hedge_answers(
    sim: SimulatedTime, metrics: RecordedMetrics
) -> None:
    primary = SimulatedTarget("primary", sim, HANGS)
    secondary = SimulatedTarget("secondary", sim, answers(0.25))
    gateway = gateway_on(sim, primary, secondary, metrics=metrics, hedge_after_s=0.5)

    reply, took = ask(sim, gateway)

    assert reply.target == secondary.target and not reply.degraded
    assert took == exactly(0.75)  # hedge at 0.5, the secondary's 0.25
    assert [c.at for c in primary.calls] == [0.0] and [c.at for c in secondary.calls] == [exactly(0.5)]
    assert metrics.of("hedge") == [(exactly(0.5), "primary", "")]


def test_when_the_hedged_primary_answers_before_the_hedge_the_first_answer_wins(
    sim: SimulatedTime, metrics: RecordedMetrics
) -> None:
    primary = SimulatedTarget("primary", sim, answers(1.0))
    secondary = SimulatedTarget("secondary", sim, answers(0.75))
    gateway = gateway_on(sim, primary, secondary, metrics=metrics, hedge_after_s=0.5)

    reply, took = ask(sim, gateway)

    assert reply.target == primary.target and took == exactly(1.0)  # the hedge would have answered at 1.25
    assert len(primary.calls) == 1 and len(secondary.calls) == 1
    assert metrics.of("hedge") == [(exactly(0.5), "primary", "")]


@pytest.mark.parametrize(
    ("primary_takes", "answered_by", "took"),
    [
        (0.5, "primary", 0.5),  # under 3 x p95 (0.75): not hedged
        (2.0, "secondary", 1.0),  # hedged at 0.75, the secondary's 0.25
    ],
)
def test_the_hedge_delay_adapts_to_the_primarys_observed_latency(
    sim: SimulatedTime, primary_takes: float, answered_by: str, took: float
) -> None:
    primary = SimulatedTarget("primary", sim, answers(0.25))
    secondary = SimulatedTarget("secondary", sim, answers(0.25))
    gateway = gateway_on(sim, primary, secondary, hedge_after_s=1.5, hedge_factor=3.0)
    for _ in range(5):  # p95 = 0.25 s, so the hedge delay becomes 0.75 s instead of 1.5 s
        ask(sim, gateway)
    primary.behave(answers(primary_takes))

    reply, elapsed = ask(sim, gateway)

    assert reply.target.model_id == answered_by and elapsed == exactly(took)


# --- attempt timeouts and failover --------------------------------------------------------------
def test_a_slow_primary_times_out_at_its_attempt_timeout_then_fails_over(
    sim: SimulatedTime, metrics: RecordedMetrics
) -> None:
    primary = SimulatedTarget("primary", sim, HANGS)
    secondary = SimulatedTarget("secondary", sim, answers(0.25))
    gateway = gateway_on(sim, primary, secondary, metrics=metrics, cold_timeout_s=2.0, hedging=False)

    reply, took = ask(sim, gateway, deadline_s=5.0)

    assert reply.target == secondary.target and not reply.degraded
    assert primary.timeouts == [2.0]  # the cold timeout; 2.85 s was left before the secondary's reserve
    assert [c.at for c in secondary.calls] == [exactly(2.0)] and secondary.timeouts == [exactly(2.0)]
    assert took == exactly(2.25)
    assert metrics.of("failover") == [(exactly(2.0), "primary", "Timeout")]


THROTTLES = pytest.mark.parametrize(
    "throttle_as_failure", [True, False], ids=["throttles as failures (before)", "throttles as back-pressure"]
)


@THROTTLES
@pytest.mark.parametrize("retry_before_failover", [False, True])
def test_a_fully_throttled_primary_fails_over_and_the_model_sees_at_most_1_1x_the_offered_calls(
    sim: SimulatedTime, retry_before_failover: bool, throttle_as_failure: bool
) -> None:
    primary = SimulatedTarget("primary", sim, fails("ThrottlingException", after_s=0.05))
    secondary = SimulatedTarget("secondary", sim, answers(0.1))
    never_opens = BreakerSettings(consecutive_failures=10_000, min_calls=10_000)  # the budget alone limits
    gateway = gateway_on(
        sim,
        primary,
        secondary,
        retry_before_failover=retry_before_failover,
        breaker=never_opens,
        hedging=False,
        throttle_as_failure=throttle_as_failure,
    )
    offered = 200

    replies = [ask(sim, gateway)[0] for _ in range(offered)]

    assert all(r.target == secondary.target and not r.degraded for r in replies)
    assert len(primary.calls) <= 1.1 * offered
    assert len(secondary.calls) == offered
    if throttle_as_failure:
        assert offered <= len(primary.calls)
        if not retry_before_failover:
            assert len(primary.calls) == offered  # with a later target waiting, a throttle fails over at once
    else:
        # Back-pressure: at the floor each throttle pauses the primary longer, so it is passed over at no cost
        assert len(primary.calls) <= 10
        assert gateway.breaker_state(0) is BreakerState.CLOSED


@THROTTLES
def test_a_single_fully_throttled_target_sees_at_most_1_1x_the_offered_calls(
    sim: SimulatedTime, throttle_as_failure: bool
) -> None:
    only = SimulatedTarget("only", sim, fails("ThrottlingException", after_s=0.05))
    gateway = gateway_on(
        sim,
        only,
        breaker=BreakerSettings(consecutive_failures=10_000, min_calls=10_000),
        throttle_as_failure=throttle_as_failure,
    )
    offered = 200

    outcomes: list[str] = []
    for _ in range(offered):
        try:
            outcomes.append("degraded" if ask(sim, gateway)[0].degraded else "answered")
        except AtCapacity as shed:
            outcomes.append(f"shed {shed.status}")
        sim.advance(0.1)

    assert len(only.calls) <= 1.1 * offered
    if throttle_as_failure:
        assert outcomes == ["degraded"] * offered
        assert offered < len(only.calls)  # some retries were made, within the budget
    else:
        assert outcomes == ["shed 429"] * offered  # back-pressure: refused with Retry-After, not a canned answer
        assert len(only.calls) <= 10 and gateway.breaker_state(0) is BreakerState.CLOSED


def test_the_last_target_retries_transient_errors_after_a_backoff_but_earlier_ones_fail_over(
    sim: SimulatedTime,
) -> None:
    first = SimulatedTarget("first", sim, answers(0.1), script=[fails("ThrottlingException")])
    last = SimulatedTarget("last", sim, answers(0.1), script=[fails("ThrottlingException", after_s=0.1)])
    gateway = gateway_on(sim, first, last, hedging=False)
    for _ in range(20):  # earn budget: 20 calls x 0.1 = 2 retries
        gateway._budget.on_call()

    reply, _ = ask(sim, gateway)

    assert reply.target == last.target
    assert len(first.calls) == 1  # failed over at once
    assert len(last.calls) == 2  # retried once on the last target
    backoff = last.calls[1].at - (last.calls[0].at + 0.1)
    assert 0.0 <= backoff <= 0.1  # full jitter under the first ceiling, base 0.05 x 2


# --- breakers -----------------------------------------------------------------------------------
def test_a_hard_down_primary_opens_its_breaker_is_skipped_then_probed_and_closes_on_recovery(
    sim: SimulatedTime, metrics: RecordedMetrics
) -> None:
    primary = SimulatedTarget("primary", sim, fails("ServiceUnavailableException"))
    secondary = SimulatedTarget("secondary", sim, answers(0.1))
    gateway = gateway_on(sim, primary, secondary, metrics=metrics, probe_timeout_s=0.5)

    # GIVEN five failures in a row (one request a second): the breaker opens
    for _ in range(5):
        assert ask(sim, gateway)[0].target == secondary.target
        sim.advance(1.0)
    assert gateway.breaker_state(0) is BreakerState.OPEN
    [(opened_at, _, _)] = [e for e in metrics.of("breaker") if e[2] == "closed->open"]

    # WHEN requests arrive while it is open THEN the primary is skipped at no cost in time
    for _ in range(10):
        reply, took = ask(sim, gateway)
        assert reply.target == secondary.target and took == exactly(0.1)
    assert len(primary.calls) == 5

    # WHEN the open time has passed and the primary now hangs THEN the probe's short timeout frees the user
    primary.behave(HANGS)
    sim.advance(opened_at + 30.0 - sim.clock())
    reply, took = ask(sim, gateway)
    assert reply.target == secondary.target and took == exactly(0.5 + 0.1)
    assert primary.timeouts[-1] == 0.5 and gateway.breaker_state(0) is BreakerState.OPEN

    # WHEN it has recovered by the next probe THEN the probe closes the breaker and it answers again
    primary.behave(answers(0.25))
    sim.advance(30.0)
    reply, took = ask(sim, gateway)
    assert reply.target == primary.target and took == exactly(0.25)
    assert primary.timeouts[-1] == 0.5 and gateway.breaker_state(0) is BreakerState.CLOSED
    assert [detail for _, _, detail in metrics.of("breaker")] == [
        "closed->open", "open->half_open", "half_open->open", "open->half_open", "half_open->closed",
    ]  # fmt: skip


def test_a_half_open_probe_is_really_made_even_when_its_timeout_is_below_the_minimum(sim: SimulatedTime) -> None:
    only = SimulatedTarget("only", sim, answers(0.1), script=[fails("ServiceUnavailableException")] * 5)
    gateway = gateway_on(
        sim, only, min_timeout_s=10.0, probe_timeout_s=2.0, hedging=False, breaker=BreakerSettings(open_s=1.0)
    )
    for _ in range(5):
        assert ask(sim, gateway)[0].degraded
    assert gateway.breaker_state(0) is BreakerState.OPEN
    sim.advance(1.5)

    reply, _ = ask(sim, gateway)

    assert reply.text == "from only" and only.timeouts[-1] == 2.0
    assert gateway.breaker_state(0) is BreakerState.CLOSED


def test_a_single_target_breaker_opens_then_sheds_in_zero_simulated_seconds(
    sim: SimulatedTime, metrics: RecordedMetrics
) -> None:
    only = SimulatedTarget("only", sim, fails("ServiceUnavailableException"))
    gateway = gateway_on(sim, only, metrics=metrics)
    for _ in range(5):
        assert ask(sim, gateway, deadline_s=3.0)[0].degraded
    assert gateway.breaker_state(0) is BreakerState.OPEN

    for _ in range(3):
        started = sim.clock()
        with pytest.raises(Overloaded) as shed:
            ask(sim, gateway, deadline_s=3.0)
        assert sim.clock() - started == 0.0  # refused without waiting for anything
        assert 1 <= shed.value.retry_after <= 30
        assert not isinstance(shed.value, AtCapacity) and shed.value.status == 503  # failing, not full
        sim.advance(1.0)

    assert len(only.calls) == 5  # 5 to open (no budget yet for retries), then none
    assert len(metrics.of("shed")) == 3


# --- throttles are back-pressure: they adapt the concurrency limit, not the breaker ---------------
@dataclass(frozen=True)
class Outcome:
    kind: str  # "answered", "degraded", "shed 429" or "shed 503"
    took: float
    target: str = ""


def burst(sim: SimulatedTime, gateway: ModelGateway, *, per_s: float, seconds: float) -> list[Outcome]:
    """Requests arriving `per_s` a second for `seconds`, each on its own simulated thread (a caller)."""
    outcomes: list[Outcome] = []

    def one() -> None:
        started = sim.clock()
        try:
            reply = gateway.converse(system="s", messages=ASK, deadline_s=25.0, scope="alice")
            kind, target = ("degraded" if reply.degraded else "answered"), reply.target.model_id
        except Overloaded as shed:
            kind, target = f"shed {shed.status}", ""
        outcomes.append(Outcome(kind, sim.clock() - started, target))

    for _ in range(round(per_s * seconds)):
        sim.submit(one)
        sim.advance(1 / per_s)
    sim.settle()
    return outcomes


def kinds(outcomes: list[Outcome]) -> dict[str, int]:
    return {kind: sum(o.kind == kind for o in outcomes) for kind in sorted({o.kind for o in outcomes})}


@THROTTLES
def test_a_burst_at_3x_a_single_targets_quota_uses_the_quota_and_sheds_the_rest_at_once(
    sim: SimulatedTime, throttle_as_failure: bool
) -> None:
    quota = QuotaTarget("only", sim, rate_per_s=10, burst=10)  # 10 requests/s, a second's worth of headroom
    gateway = gateway_on(sim, quota, throttle_as_failure=throttle_as_failure)

    outcomes = burst(sim, gateway, per_s=30, seconds=10)

    allowed = 10 * 10 + 10  # what the quota lets through in the window, the initial headroom included
    answered = kinds(outcomes).get("answered", 0)
    assert quota.calls <= 1.1 * len(outcomes)
    if throttle_as_failure:
        # Before: the throttles opened the breaker, which then refused what the quota could have answered
        assert answered < 0.3 * allowed
        assert any(o.kind == "shed 503" for o in outcomes)
        return
    assert answered >= 0.9 * allowed
    assert kinds(outcomes) == {"answered": answered, "shed 429": len(outcomes) - answered}
    refused = [o.took for o in outcomes if o.kind == "shed 429"]
    # Over the limit: refused without a call; after a throttle: its 1.3 ms and at most one 0.1 s backoff
    assert sum(took == 0.0 for took in refused) >= len(refused) / 2
    assert max(refused) <= 0.1 + 2 * quota.throttle_s
    assert gateway.breaker_state(0) is BreakerState.CLOSED


def test_a_burst_over_the_primarys_quota_goes_to_the_secondary_without_opening_the_primarys_breaker(
    sim: SimulatedTime, metrics: RecordedMetrics
) -> None:
    primary = QuotaTarget("primary", sim, rate_per_s=10, burst=10)
    secondary = SimulatedTarget("secondary", sim, answers(0.061))
    gateway = gateway_on(sim, primary, secondary, metrics=metrics)

    outcomes = burst(sim, gateway, per_s=30, seconds=10)

    assert kinds(outcomes) == {"answered": 300}
    assert sum(o.target == "primary" for o in outcomes) >= 0.9 * (10 * 10 + 10)
    assert primary.calls <= 1.1 * 300 and gateway.breaker_state(0) is BreakerState.CLOSED
    assert metrics.of("at_capacity") and not metrics.of("skipped")  # passed over for being full, not failing


def test_a_request_over_a_targets_limit_passes_it_over_without_a_call(
    sim: SimulatedTime, metrics: RecordedMetrics
) -> None:
    primary = SimulatedTarget("primary", sim, answers(1.0))
    secondary = SimulatedTarget("secondary", sim, answers(0.25))
    gateway = gateway_on(sim, primary, secondary, metrics=metrics, capacity=CapacitySettings(ceiling=1))

    first = sim.submit(ask, sim, gateway)  # holds the primary's only place for 1 s
    sim.advance(0.1)
    reply, took = ask(sim, gateway)

    assert reply.target == secondary.target and took == exactly(0.25)  # no wait, no hedge delay
    sim.settle()
    assert len(primary.calls) == 1 and first.result()[0].target == primary.target
    assert metrics.of("at_capacity") == [(exactly(0.1), "primary", "")]
    assert gateway.capacity_state(0).in_flight == 0


def test_a_full_single_target_sheds_with_429_and_a_retry_after_from_its_pause(sim: SimulatedTime) -> None:
    only = SimulatedTarget("only", sim, fails("ThrottlingException", after_s=0.01))
    gateway = gateway_on(sim, only, capacity=CapacitySettings(max_pause_s=12.0))
    pauses: list[float] = []
    while not pauses or pauses[-1] < 12.0:  # throttle after throttle, each once the pause before it is over
        sim.advance(pauses[-1] if pauses else 0.0)
        with pytest.raises(AtCapacity):
            ask(sim, gateway)
        pauses.append(gateway.capacity_state(0).paused_s)
    assert pauses == pytest.approx([0.0, 0.05, 0.2, 0.8, 3.2, 12.0])  # to the floor, then paused 4x longer
    calls = len(only.calls)
    sim.advance(2.4)

    started = sim.clock()
    with pytest.raises(AtCapacity) as shed:
        ask(sim, gateway)

    assert sim.clock() == started and len(only.calls) == calls  # refused at once, no call
    assert shed.value.status == 429 and shed.value.retry_after == round(12.0 - 2.4)
    assert gateway.breaker_state(0) is BreakerState.CLOSED


def test_a_throttle_that_leaves_no_time_for_the_next_target_is_a_degraded_answer_not_a_shed(
    sim: SimulatedTime,
) -> None:
    primary = SimulatedTarget("primary", sim, fails("ThrottlingException", after_s=2.71))
    secondary = SimulatedTarget("secondary", sim)
    gateway = gateway_on(sim, primary, secondary, hedging=False, reserve_s=0.0)  # the primary may take it all

    reply, took = ask(sim, gateway, deadline_s=3.0)

    assert reply.degraded and "deadline reached" in (reply.degraded_reason or "")  # out of time, not full
    assert took == exactly(2.71) and secondary.calls == []


@pytest.mark.parametrize(
    "failure",
    [
        fails("ServiceUnavailableException"),
        fails("InternalServerException"),
        fails("ModelTimeoutException"),
        fails("ModelErrorException"),
        fails("AccessDeniedException"),
        HANGS,
    ],
    ids=["503", "500", "model timeout", "model error", "access denied", "read timeout"],
)
def test_real_failures_still_open_the_breaker_and_then_shed_with_503(sim: SimulatedTime, failure: Any) -> None:
    only = SimulatedTarget("only", sim, failure)
    gateway = gateway_on(sim, only, cold_timeout_s=1.0)
    for _ in range(5):
        assert ask(sim, gateway, deadline_s=3.0)[0].degraded
        sim.advance(1.0)

    assert gateway.breaker_state(0) is BreakerState.OPEN
    with pytest.raises(Overloaded) as shed:
        ask(sim, gateway)
    assert shed.value.status == 503 and not isinstance(shed.value, AtCapacity)


def test_throttles_between_failures_neither_count_nor_break_the_run_of_failures(sim: SimulatedTime) -> None:
    down = fails("ServiceUnavailableException")
    only = SimulatedTarget("only", sim, script=[down, down, fails("ThrottlingException"), down, down, down])
    gateway = gateway_on(sim, only)
    outcomes, states = [], []

    for _ in range(6):
        try:
            outcomes.append("degraded" if ask(sim, gateway)[0].degraded else "answered")
        except AtCapacity:
            outcomes.append("shed 429")
        states.append(gateway.breaker_state(0))
        sim.advance(1.0)

    assert outcomes == ["degraded", "degraded", "shed 429", "degraded", "degraded", "degraded"]
    # Open on the fifth failure in a row: the throttle between them neither counted nor reset the run
    assert states == [BreakerState.CLOSED] * 5 + [BreakerState.OPEN]


def test_a_throttled_half_open_probe_leaves_the_breaker_half_open_for_the_next_probe(sim: SimulatedTime) -> None:
    down = fails("ServiceUnavailableException")
    only = SimulatedTarget("only", sim, answers(0.1), script=[down] * 5 + [fails("ThrottlingException")])
    gateway = gateway_on(sim, only, breaker=BreakerSettings(open_s=1.0))
    for _ in range(5):
        ask(sim, gateway)
    sim.advance(1.5)

    with pytest.raises(AtCapacity):
        ask(sim, gateway)  # the probe is throttled: says nothing about the target's health
    assert gateway.breaker_state(0) is BreakerState.HALF_OPEN
    reply, _ = ask(sim, gateway)

    assert reply.target == only.target and gateway.breaker_state(0) is BreakerState.CLOSED
    assert only.timeouts[-2:] == [2.0, 2.0]  # both were probes, with the probe timeout


# --- the end of the chain -----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("down", "took"),
    [
        (HANGS, 2.75),  # primary cut at 1.65 (reserve kept), hedge at 1.5 cut at 2.75: margin kept
        (fails("ServiceUnavailableException"), 0.02),
    ],
    ids=["hanging", "503"],
)
def test_all_targets_down_gives_the_cached_answer_else_the_degraded_one_inside_the_deadline(
    sim: SimulatedTime, down: Any, took: float
) -> None:
    primary, secondary = SimulatedTarget("primary", sim, down), SimulatedTarget("secondary", sim, down)
    cache = MemoryCache()
    gateway = gateway_on(sim, primary, secondary, cache=cache)
    # An earlier answer to this question in this scope (which answers get cached is not this test's concern).
    cache.items[gateway._cache_key("alice", ASK)] = "Paris, from an earlier answer."

    cached, took_cached = ask(sim, gateway, deadline_s=3.0)
    other, took_other = ask(sim, gateway, deadline_s=3.0, text="And Germany?")

    assert cached.degraded and cached.text == "Paris, from an earlier answer." and cached.target == CACHE_TARGET
    assert other.degraded and other.text == DEGRADED_TEXT and other.target == NONE_TARGET
    assert took_cached == exactly(took) and took_other == exactly(took)
    assert took <= 3.0 - GatewaySettings().margin_s


@pytest.mark.parametrize(
    ("code", "message"),
    [("ValidationException", "rejected"), ("ContextWindowExceeded", "too long for the model")],
)
@pytest.mark.parametrize("retry_before_failover", [False, True])
def test_a_rejected_request_is_never_retried_nor_failed_over(
    sim: SimulatedTime, code: str, message: str, retry_before_failover: bool
) -> None:
    primary = SimulatedTarget("primary", sim, fails(code))
    secondary = SimulatedTarget("secondary", sim)
    gateway = gateway_on(sim, primary, secondary, retry_before_failover=retry_before_failover)
    for _ in range(100):  # a full retry budget: it must not be used
        gateway._budget.on_call()

    with pytest.raises(ModelRejected, match=message):
        ask(sim, gateway)

    assert len(primary.calls) == 1 and secondary.calls == []
    assert gateway.breaker_state(0) is BreakerState.CLOSED


# --- the harness itself -------------------------------------------------------------------------
def test_simulated_time_runs_lanes_side_by_side_and_moves_only_when_all_wait(sim: SimulatedTime) -> None:
    ends: list[float] = []

    def lane(seconds: float) -> float:
        sim.sleep(seconds)
        ends.append(sim.clock())
        return seconds

    slow, fast = sim.submit(lane, 2.0), sim.submit(lane, 0.5)
    done, not_done = sim.wait({slow, fast}, timeout=10.0)

    assert done == {fast} and not_done == {slow} and sim.clock() == 0.5
    assert sim.wait({slow}, timeout=1.0) == (set(), {slow}) and sim.clock() == 1.5
    sim.settle()
    assert ends == [0.5, 2.0] and slow.result() == 2.0


def test_a_simulation_where_nothing_can_ever_wake_fails_instead_of_hanging() -> None:
    sim = SimulatedTime()  # not the fixture: this one is left stuck on purpose
    orphan: Future[str] = Future()  # no lane will ever complete it

    with pytest.raises(SimulationStuck, match="nothing will complete"):
        sim.wait({orphan})


# --- the answer cache: only answers a guardrail checked and let pass --------------------------------------
class Wrapped:
    """A target whose replies (or errors) are changed on the way out."""

    def __init__(self, inner: SimulatedTarget, **changes: Any) -> None:
        self._inner = inner
        self._changes = changes
        self.calls = inner.calls

    @property
    def target(self) -> TargetRef:
        return self._inner.target

    def call(self, **kwargs: Any) -> ModelReply:
        if "raises" in self._changes:
            raise self._changes["raises"]
        return replace(self._inner.call(**kwargs), **self._changes)


def test_a_checked_answer_is_cached_and_carries_its_key_so_its_conversation_can_delete_it(sim: SimulatedTime) -> None:
    cache = MemoryCache()
    gateway = gateway_on(sim, SimulatedTarget("primary", sim), cache=cache)

    reply, _ = ask(sim, gateway)

    assert reply.guardrail_checked and reply.cache_key is not None
    assert cache.items == {reply.cache_key: reply.text}


@pytest.mark.parametrize(
    "changes",
    [{"guardrail_checked": False}, {"stop_reason": "guardrail_intervened", "text": "blocked"}],
    ids=["no guardrail covered it", "the guardrail intervened"],
)
def test_an_unchecked_answer_or_an_intervention_is_returned_but_never_cached(
    sim: SimulatedTime, changes: dict[str, Any]
) -> None:
    cache = MemoryCache()
    gateway = gateway_on(sim, Wrapped(SimulatedTarget("primary", sim), **changes), cache=cache)

    reply, _ = ask(sim, gateway)

    assert not reply.degraded and reply.cache_key is None and cache.items == {}
    assert reply.guardrail_intervened == (changes.get("stop_reason") == "guardrail_intervened")


def test_a_rejection_says_what_to_do_and_keeps_the_providers_text_for_the_logs(sim: SimulatedTime) -> None:
    detail = "Malformed input for arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/abc"
    primary = Wrapped(SimulatedTarget("primary", sim), raises=TargetCallError("ValidationException", detail))
    gateway = gateway_on(sim, primary)

    with pytest.raises(ModelRejected) as raised:
        ask(sim, gateway)

    assert "rephrase" in raised.value.message
    assert "123456789012" not in raised.value.message and "arn:" not in raised.value.message
    assert detail in str(raised.value.__cause__)  # the handler logs the cause, the user never reads it
