"""The gateway's decisions, scenario by scenario, on plain numbers and a fake clock."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from core.policy import (
    SHORTEST_ATTEMPT_S,
    GatewaySettings,
    GiveUp,
    Refusal,
    attempt_timeout,
    backoff_ceiling,
    can_start_target,
    decide_retry,
    hedge_delay,
    hedge_due,
    select_next_target,
    slow_threshold,
    wait_timeout,
    worth_attempting,
)
from core.resilience import TAXONOMY, Action, BreakerSettings, CircuitBreaker, Deadline, Permit, RetryBudget

DEFAULTS = GatewaySettings()


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# --- attempt timeouts ---------------------------------------------------------------------------
def timeout(
    *, p99: float | None = None, probe: bool = False, remaining: float = 25.0, later: int = 0, **settings: Any
) -> float:
    return attempt_timeout(
        GatewaySettings(**settings), p99_s=p99, probe=probe, remaining_s=remaining, later_targets=later
    )


def test_a_cold_target_gets_the_cold_timeout() -> None:
    assert timeout(p99=None) == DEFAULTS.cold_timeout_s == 8.0


@pytest.mark.parametrize(
    ("p99", "expected"),
    [
        (0.5, 2.0),  # 4 x p99
        (0.1, 1.0),  # 4 x 0.1 is under the minimum: the minimum
        (5.0, 8.0),  # 4 x 5 is over the cold timeout: never longer than cold
    ],
)
def test_a_warm_target_gets_a_few_times_its_p99_clamped(p99: float, expected: float) -> None:
    assert timeout(p99=p99) == expected


@pytest.mark.parametrize(("p99", "expected"), [(None, 2.0), (0.1, 1.0), (5.0, 2.0)])
def test_a_probe_gets_at_most_the_probe_timeout(p99: float | None, expected: float) -> None:
    assert timeout(p99=p99, probe=True) == expected


def test_a_probe_timeout_below_the_minimum_still_holds() -> None:
    assert timeout(probe=True, min_timeout_s=10.0, probe_timeout_s=2.0) == 2.0


def test_later_targets_keep_a_reserve_of_the_deadline() -> None:
    # 5 s left: 4.75 after the margin, minus min(3.0, 40 % of 4.75 = 1.9) for the later targets
    assert timeout(remaining=5.0, later=1) == pytest.approx(2.85)
    assert timeout(remaining=5.0, later=0) == 4.75
    # plenty left: the reserve (3 s) does not bite into the cold timeout
    assert timeout(remaining=25.0, later=2) == 8.0


@pytest.mark.parametrize(
    ("remaining", "expected", "worth_it"),
    [
        (1.0, 0.75, True),  # the margin is kept back
        (0.5, 0.25, True),  # just the shortest attempt
        (0.4, 0.15, False),  # below the shortest attempt: not made
        (0.1, 0.0, False),  # past the margin: never negative
    ],
)
def test_near_the_deadline_the_attempt_gets_what_is_left_minus_the_margin(
    remaining: float, expected: float, worth_it: bool
) -> None:
    got = timeout(remaining=remaining)

    assert got == pytest.approx(expected) and worth_attempting(got) is worth_it


def test_the_timeout_counts_down_with_the_deadline_on_the_clock() -> None:
    clock = FakeClock()
    deadline = Deadline(3.0, clock)
    clock.now += 2.5

    assert timeout(remaining=deadline.remaining()) == pytest.approx(0.25) == SHORTEST_ATTEMPT_S


def test_slow_calls_are_judged_against_the_targets_own_p95() -> None:
    assert slow_threshold(DEFAULTS, p95_s=None) == 4.0  # half the cold timeout
    assert slow_threshold(DEFAULTS, p95_s=1.0) == 3.0
    assert slow_threshold(DEFAULTS, p95_s=0.1) == 1.0  # never under the minimum timeout


# --- hedging ------------------------------------------------------------------------------------
@pytest.mark.parametrize(("p95", "expected"), [(None, 1.5), (0.3, 0.9), (0.01, 0.2)])
def test_hedge_delay_is_a_few_times_the_p95_with_a_floor_and_a_cold_default(p95: float | None, expected: float) -> None:
    assert hedge_delay(DEFAULTS, p95_s=p95) == pytest.approx(expected)


def test_the_runner_waits_until_the_hedge_only_when_a_hedge_can_start() -> None:
    assert wait_timeout(DEFAULTS, remaining_s=20.0, until_hedge_s=1.5, targets_waiting=True) == 1.5
    assert wait_timeout(DEFAULTS, remaining_s=1.0, until_hedge_s=1.5, targets_waiting=True) == 1.0
    assert wait_timeout(DEFAULTS, remaining_s=20.0, until_hedge_s=-0.1, targets_waiting=True) == 0.0
    assert wait_timeout(DEFAULTS, remaining_s=20.0, until_hedge_s=1.5, targets_waiting=False) == 20.0
    no_hedging = GatewaySettings(hedging=False)
    assert wait_timeout(no_hedging, remaining_s=20.0, until_hedge_s=1.5, targets_waiting=True) == 20.0


def test_a_hedge_is_due_at_its_time_when_a_target_is_waiting_and_hedging_is_on() -> None:
    assert hedge_due(DEFAULTS, until_hedge_s=0.0, targets_waiting=True)
    assert not hedge_due(DEFAULTS, until_hedge_s=0.01, targets_waiting=True)
    assert not hedge_due(DEFAULTS, until_hedge_s=0.0, targets_waiting=False)
    assert not hedge_due(GatewaySettings(hedging=False), until_hedge_s=0.0, targets_waiting=True)


# --- which target next --------------------------------------------------------------------------
def breakers(clock: FakeClock, *opened: bool) -> list[CircuitBreaker]:
    result = []
    for is_open in opened:
        breaker = CircuitBreaker(BreakerSettings(open_s=30.0), clock)
        for _ in range(5 if is_open else 0):
            breaker.record(failed=True)
        result.append(breaker)
    return result


def admit(breaker: CircuitBreaker) -> Permit | Refusal:
    return breaker.allow() or Refusal.BREAKER_OPEN


def test_the_first_target_whose_breaker_admits_is_chosen_and_open_ones_are_skipped() -> None:
    clock = FakeClock()
    first, second, third = breakers(clock, True, False, False)

    pick = select_next_target(DEFAULTS, [first, second, third], remaining_s=25.0, admit=admit)

    assert pick.target is second and pick.permit == Permit(probe=False)
    assert pick.skipped == ((first, Refusal.BREAKER_OPEN),) and pick.waiting == (third,) and not pick.shed


def test_every_breaker_open_means_shed_at_once() -> None:
    clock = FakeClock()
    chain = breakers(clock, True, True)

    pick = select_next_target(DEFAULTS, chain, remaining_s=25.0, admit=admit)

    assert pick.target is None and [t for t, _ in pick.skipped] == chain and pick.shed and not pick.at_capacity


def test_a_full_target_is_passed_over_and_a_chain_of_full_or_open_ones_is_shed_as_back_pressure() -> None:
    clock = FakeClock()
    first, second = breakers(clock, True, False)

    def full_second(breaker: CircuitBreaker) -> Permit | Refusal:
        return Refusal.AT_CAPACITY if breaker is second else admit(breaker)

    pick = select_next_target(DEFAULTS, [first, second], remaining_s=25.0, admit=full_second)

    assert pick.target is None and pick.shed and pick.at_capacity
    assert pick.skipped == ((first, Refusal.BREAKER_OPEN), (second, Refusal.AT_CAPACITY))


def test_once_open_time_has_passed_the_breaker_hands_out_one_probe() -> None:
    clock = FakeClock()
    [only] = breakers(clock, True)
    clock.now += 30.0

    pick = select_next_target(DEFAULTS, [only], remaining_s=25.0, admit=admit)
    again = select_next_target(DEFAULTS, [only], remaining_s=25.0, admit=admit)

    assert pick.target is only and pick.permit == Permit(probe=True)
    assert again.shed  # one probe in flight: the next request is shed


def test_no_target_is_started_when_the_deadline_cannot_carry_a_call() -> None:
    asked: list[CircuitBreaker] = []
    chain = breakers(FakeClock(), False, False)

    def counting_admit(breaker: CircuitBreaker) -> Permit | Refusal:
        asked.append(breaker)
        return admit(breaker)

    pick = select_next_target(DEFAULTS, chain, remaining_s=0.3, admit=counting_admit)

    assert pick.target is None and pick.out_of_time and not pick.shed and pick.waiting == ()
    assert asked == []  # no probe or permit is taken for a call that will not be made
    assert not can_start_target(DEFAULTS, remaining_s=0.3) and can_start_target(DEFAULTS, remaining_s=0.31)


# --- retry or give up ---------------------------------------------------------------------------
def decide(
    code: str = "ThrottlingException",
    *,
    attempt: int = 1,
    probe: bool = False,
    later: int = 0,
    remaining: float = 20.0,
    breaker_open: bool = False,
    spend: Callable[[], bool] = lambda: True,
    settings: GatewaySettings = DEFAULTS,
    paused: bool = False,
) -> GiveUp | None:
    return decide_retry(
        settings,
        code=code,
        attempt=attempt,
        probe=probe,
        later_targets=later,
        remaining_s=remaining,
        breaker_open=breaker_open,
        draw_backoff=lambda ceiling: ceiling,  # the worst case of the jitter
        spend_retry=spend,
        paused=paused,
    ).give_up


@pytest.mark.parametrize("code", sorted(TAXONOMY))
def test_retry_decision_follows_the_taxonomy_entry_by_entry(code: str) -> None:
    expected = None if TAXONOMY[code].action is Action.RETRY else GiveUp.NOT_RETRYABLE

    assert decide(code) is expected


def test_an_unknown_error_code_is_not_retried() -> None:
    assert decide("SomethingNew") is GiveUp.NOT_RETRYABLE


def test_a_probe_gets_one_try() -> None:
    assert decide(probe=True) is GiveUp.PROBE


def test_attempts_on_one_target_are_capped() -> None:
    assert decide(attempt=2) is None
    assert decide(attempt=3) is GiveUp.ATTEMPTS_USED


def test_a_transient_error_fails_over_at_once_while_a_later_target_waits() -> None:
    assert decide(later=1) is GiveUp.LATER_TARGET_WAITING
    # retrying first is allowed by setting, then each later target keeps 0.5 s of the deadline
    retry_first = GatewaySettings(retry_before_failover=True)
    assert decide(later=1, settings=retry_first) is None
    assert decide(later=2, remaining=2.0 + 0.1, settings=retry_first) is None  # 0.1 backoff + 1.0 + 2 x 0.5
    assert decide(later=2, remaining=2.0 + 0.09, settings=retry_first) is GiveUp.DEADLINE


def test_no_retry_when_the_backoff_leaves_less_than_the_minimum_timeout() -> None:
    # first backoff's ceiling is 0.1 s: the retry needs 0.1 s + the 1.0 s minimum timeout
    assert decide(remaining=1.1) is None
    assert decide(remaining=1.09) is GiveUp.DEADLINE


def test_no_retry_into_a_breaker_that_opened() -> None:
    assert decide(breaker_open=True) is GiveUp.BREAKER_OPEN


def test_no_retry_into_a_target_that_is_paused_for_back_pressure() -> None:
    assert decide(paused=True) is GiveUp.PAUSED
    assert decide("ServiceUnavailableException", paused=True) is GiveUp.PAUSED


def test_the_budget_is_spent_only_on_a_retry_that_nothing_else_forbids() -> None:
    spent: list[bool] = []

    def spend() -> bool:
        spent.append(True)
        return True

    for blocked in (
        {"code": "ValidationException"},
        {"probe": True},
        {"attempt": 3},
        {"later": 1},
        {"remaining": 0.5},
        {"breaker_open": True},
        {"paused": True},
    ):
        assert decide(spend=spend, **blocked) is not None
    assert spent == []
    assert decide(spend=spend) is None and spent == [True]


def test_retries_stop_when_the_budget_is_exhausted() -> None:
    budget = RetryBudget(ratio=0.1)
    for _ in range(20):  # 20 requests earn 2 retries
        budget.on_call()

    outcomes = [decide(spend=budget.try_spend) for _ in range(3)]

    assert outcomes == [None, None, GiveUp.BUDGET_SPENT]


def test_a_retry_waits_a_jittered_backoff_under_the_ceiling() -> None:
    drawn: list[float] = []

    def draw(ceiling: float) -> float:
        drawn.append(ceiling)
        return ceiling / 2

    decision = decide_retry(
        DEFAULTS,
        code="ServiceUnavailableException",
        attempt=2,
        probe=False,
        later_targets=0,
        remaining_s=20.0,
        breaker_open=False,
        draw_backoff=draw,
        spend_retry=lambda: True,
    )

    assert decision.retry and decision.backoff_s == 0.1 and drawn == [0.2]


@pytest.mark.parametrize(("attempt", "ceiling"), [(1, 0.1), (2, 0.2), (3, 0.4), (4, 0.8), (5, 1.0), (9, 1.0)])
def test_backoff_ceiling_doubles_per_attempt_up_to_the_cap(attempt: int, ceiling: float) -> None:
    assert backoff_ceiling(DEFAULTS, attempt=attempt) == pytest.approx(ceiling)
