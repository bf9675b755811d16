"""Taxonomy entry by entry, the retry budget, and the breaker on a fake clock."""

from __future__ import annotations

import pytest

from core.resilience import (
    TAXONOMY,
    Action,
    AdaptiveLimit,
    BreakerSettings,
    BreakerState,
    CapacitySettings,
    CircuitBreaker,
    Deadline,
    LatencyTracker,
    RetryBudget,
    Signal,
    Slot,
    classify,
)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(
    ("code", "action", "counts", "alarm"),
    [
        ("ThrottlingException", Action.RETRY, True, False),
        ("ServiceUnavailableException", Action.RETRY, True, False),
        ("InternalServerException", Action.RETRY, True, False),
        ("ModelNotReadyException", Action.RETRY, True, False),
        ("ConnectionReset", Action.RETRY, True, False),
        ("ModelTimeoutException", Action.FAIL_OVER, True, False),
        ("ModelErrorException", Action.FAIL_OVER, True, False),
        ("Timeout", Action.FAIL_OVER, True, False),
        ("AccessDeniedException", Action.FAIL_OVER, True, True),
        ("ResourceNotFoundException", Action.FAIL_OVER, True, True),
        ("ValidationException", Action.REJECT, False, False),
        ("ContextWindowExceeded", Action.REJECT, False, False),
        ("SomethingNew", Action.FAIL_OVER, True, False),
    ],
)
def test_taxonomy_entry(code: str, action: Action, counts: bool, alarm: bool) -> None:
    rule = classify(code)

    assert (rule.action, rule.counts_as_failure, rule.alarm) == (action, counts, alarm)


def test_taxonomy_table_has_no_entry_left_untested() -> None:
    assert len(TAXONOMY) == 12


def test_only_a_throttle_is_back_pressure() -> None:
    assert [code for code, rule in TAXONOMY.items() if rule.back_pressure] == ["ThrottlingException"]
    assert not classify("SomethingNew").back_pressure


def test_retry_budget_allows_at_most_ten_percent_retries() -> None:
    budget = RetryBudget(ratio=0.1)
    retries = 0
    for _ in range(1000):
        budget.on_call()
        if budget.try_spend():
            retries += 1

    assert retries == 100  # 0.1 token per call, one per retry; starts empty


def test_deadline_counts_down_on_the_clock() -> None:
    clock = FakeClock()
    deadline = Deadline(5, clock)
    clock.now += 4

    assert deadline.remaining() == pytest.approx(1)
    clock.now += 2
    assert deadline.expired() and deadline.remaining() == 0


def test_breaker_opens_after_five_consecutive_failures_even_with_few_calls() -> None:
    clock = FakeClock()
    transitions: list[tuple[BreakerState, BreakerState]] = []
    breaker = CircuitBreaker(BreakerSettings(), clock, lambda old, new: transitions.append((old, new)))
    for _ in range(4):
        breaker.record(failed=True)
    assert breaker.allow() is not None
    breaker.record(failed=True)

    assert breaker.allow() is None
    assert transitions == [(BreakerState.CLOSED, BreakerState.OPEN)]


def test_breaker_opens_on_failure_ratio_over_the_window_only() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(BreakerSettings(), clock)
    for i in range(20):
        breaker.record(failed=i % 2 == 0)  # 50 % failures, never 5 in a row
        clock.now += 1
    assert breaker.state is BreakerState.OPEN

    fresh = CircuitBreaker(BreakerSettings(), clock)
    for i in range(20):
        fresh.record(failed=i % 2 == 0)
        clock.now += 10  # spread over 200 s: the 60 s window never holds 20 calls
    assert fresh.state is BreakerState.CLOSED


def test_breaker_opens_on_mostly_slow_calls() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(BreakerSettings(), clock)
    for _ in range(20):
        breaker.record(failed=False, slow=True)

    assert breaker.state is BreakerState.OPEN


def test_half_open_lets_one_probe_through_and_closes_or_reopens_on_its_outcome() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(BreakerSettings(open_s=30), clock)
    for _ in range(5):
        breaker.record(failed=True)
    clock.now += 29
    assert breaker.allow() is None
    clock.now += 1
    probe = breaker.allow()
    assert probe is not None and probe.probe
    assert breaker.allow() is None  # only one probe in flight

    breaker.record(failed=True, probe=True)
    assert breaker.state is BreakerState.OPEN
    clock.now += 30
    probe = breaker.allow()
    assert probe is not None
    breaker.record(failed=False, probe=True)
    assert breaker.state is BreakerState.CLOSED
    assert breaker.allow() == breaker.allow()  # closed: everyone passes


def test_latency_tracker_needs_samples_before_it_answers() -> None:
    tracker = LatencyTracker()
    for value in (0.1, 0.2, 0.3, 0.4):
        tracker.add(value)
    assert tracker.quantile(0.99) is None
    tracker.add(0.5)
    assert tracker.quantile(0.99) == 0.5
    assert tracker.quantile(0.0) == 0.1


def test_rate_limiter_paces_callers_to_the_rate_and_gives_up_at_the_timeout() -> None:
    from core.resilience import RateLimiter

    clock = FakeClock()
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock.now += seconds

    limiter = RateLimiter(2.0, burst=1, clock=clock, sleep=sleep)
    assert limiter.acquire(0) is True  # the burst token
    assert limiter.acquire(1.0) is True and slept == [pytest.approx(0.5)]
    assert limiter.acquire(0.1) is False  # the next token is 0.5 s away
    start = clock.now
    for _ in range(4):
        assert limiter.acquire(10)
    assert clock.now - start == pytest.approx(2.0)  # 4 tokens at 2/s


def test_a_throttled_call_gives_a_half_open_probe_slot_back_and_counts_nowhere() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(BreakerSettings(open_s=30), clock)
    for _ in range(4):
        breaker.record(failed=True)
    breaker.release()  # a throttle in the middle of a run of failures
    breaker.record(failed=True)
    assert breaker.state is BreakerState.OPEN  # five failures in a row: the throttle did not break the run

    clock.now += 30
    probe = breaker.allow()
    assert probe is not None and probe.probe and breaker.allow() is None
    breaker.release(probe=True)

    assert breaker.state is BreakerState.HALF_OPEN
    assert breaker.allow() == probe  # the slot is free for the next request's probe


# --- the adaptive concurrency limit ------------------------------------------------------------------
def limit(clock: FakeClock, **settings: float) -> AdaptiveLimit:
    return AdaptiveLimit(CapacitySettings(**settings), clock)  # type: ignore[arg-type]


def fill(capacity: AdaptiveLimit) -> list[Slot]:
    slots = []
    while (slot := capacity.acquire()) is not None:
        slots.append(slot)
    return slots


def test_the_limit_starts_at_the_ceiling_and_refuses_past_it_until_a_place_is_free() -> None:
    capacity = limit(FakeClock(), ceiling=3)

    slots = fill(capacity)

    assert len(slots) == 3 and capacity.state.in_flight == 3
    capacity.release(slots[0])
    assert capacity.acquire() is not None and capacity.acquire() is None


def test_a_throttle_cuts_the_limit_from_what_was_in_flight_once_per_round() -> None:
    capacity = limit(FakeClock(), ceiling=16, decrease=0.5)
    slots = [capacity.acquire() for _ in range(8)]  # 8 in flight, under the ceiling

    capacity.record(slots[0], Signal.THROTTLED)  # type: ignore[arg-type]
    assert capacity.state.limit == 4.0  # 8 in flight x 0.5, not 16 x 0.5
    for slot in slots[1:]:  # the same congestion: started before the reaction
        capacity.record(slot, Signal.THROTTLED)  # type: ignore[arg-type]
    assert capacity.state.limit == 4.0

    capacity.record(slots[0], Signal.THROTTLED)  # type: ignore[arg-type]  # its retry, after the reaction
    assert capacity.state.limit == 2.0 and capacity.state.paused_s == 0.0


def test_at_the_floor_a_throttle_pauses_the_target_longer_each_time_up_to_the_cap() -> None:
    clock = FakeClock()
    capacity = limit(clock, pause_s=0.05, pause_factor=4.0, max_pause_s=1.0)
    slot = capacity.acquire()
    assert slot is not None
    capacity.record(slot, Signal.THROTTLED)  # one in flight: down to the floor, no pause yet
    assert capacity.state.limit == 1.0 and capacity.paused_for() == 0.0

    pauses = []
    for _ in range(4):
        capacity.record(slot, Signal.THROTTLED)
        pauses.append(capacity.paused_for())
        assert capacity.acquire() is None  # paused: refused at once
        clock.now += pauses[-1]

    assert pauses == pytest.approx([0.05, 0.2, 0.8, 1.0])
    capacity.release(slot)
    assert capacity.acquire() is not None  # the pause is over: one call may go


def test_successes_shorten_the_pause_then_grow_the_limit_additively_to_the_ceiling() -> None:
    clock = FakeClock()
    capacity = limit(clock, ceiling=3, increase=1.0, pause_s=0.05, pause_factor=4.0)
    slot = capacity.acquire()
    assert slot is not None
    for _ in range(3):  # to the floor, then pauses of 0.05 and 0.2 s
        capacity.record(slot, Signal.THROTTLED)
    clock.now += 1.0

    capacity.record(slot, Signal.OK)  # the last pause was 0.2 s: a throttle now would pause 0.05 s
    capacity.record(slot, Signal.OK)  # none left: the next throttle starts again at 0.05 s
    assert capacity.state.limit == 1.0
    capacity.record(slot, Signal.THROTTLED)
    assert capacity.paused_for() == pytest.approx(0.05)
    clock.now += 1.0
    capacity.record(slot, Signal.OK)  # that pause shortened to nothing
    assert capacity.state.limit == 1.0
    capacity.record(slot, Signal.OK)  # one in flight uses a limit of 1: + 1/1
    assert capacity.state.limit == 2.0
    capacity.record(slot, Signal.OK)  # one in flight uses half a limit of 2: + 1/2
    assert capacity.state.limit == 2.5
    capacity.record(slot, Signal.OK)  # but less than half of 2.5: no evidence a higher limit is needed
    assert capacity.state.limit == 2.5
    other = capacity.acquire()
    assert other is not None
    for _ in range(3):
        capacity.record(other, Signal.OK)  # + 1/2.5, then held at the ceiling
    assert capacity.state.limit == 3.0


def test_a_failure_that_is_not_a_throttle_leaves_the_limit_alone() -> None:
    capacity = limit(FakeClock(), ceiling=4)
    slot = capacity.acquire()
    assert slot is not None

    capacity.record(slot, Signal.NONE)

    assert capacity.state.limit == 4.0 and capacity.paused_for() == 0.0


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"ceiling": 0}, "ceiling must be at least 1"),
        ({"increase": 0}, "increase must be in"),
        ({"decrease": 1.0}, "decrease must be in"),
        ({"pause_factor": 1.0}, "pause_factor must be above 1"),
        ({"pause_s": 2.0, "max_pause_s": 1.0}, "pause_s <= max_pause_s"),
    ],
)
def test_capacity_settings_refuse_values_that_cannot_work(settings: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        CapacitySettings(**settings)  # type: ignore[arg-type]
