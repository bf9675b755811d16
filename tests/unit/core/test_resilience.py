"""Taxonomy entry by entry, the retry budget, and the breaker on a fake clock."""

from __future__ import annotations

import pytest

from core.resilience import (
    TAXONOMY,
    Action,
    BreakerSettings,
    BreakerState,
    CircuitBreaker,
    Deadline,
    LatencyTracker,
    RetryBudget,
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
