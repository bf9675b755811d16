"""The gateway's decisions as pure functions: numbers in, a decision out; no clock, no I/O, no threads.

`core.gateway` runs lanes on threads and reads the clock; every choice it makes (which target
next, how long an attempt may take, when to hedge, whether to retry, how long to back off) is
taken here from the settings, what has been observed of the target and the time left. So each
decision can be tested scenario by scenario on plain numbers, whatever the machine's speed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Generic, TypeVar

from core.resilience import Action, BreakerSettings, CapacitySettings, classify

# Below this an attempt cannot succeed, so it is not made. Fixed rather than `min_timeout_s`, so a
# half-open probe (whose timeout may be below the minimum) is still really attempted.
SHORTEST_ATTEMPT_S = 0.25
# A target is started only if more than `margin_s` plus this is left: less cannot carry a call.
START_SLACK_S = 0.05
# With retries before failover, each later target keeps this much of the deadline for itself.
LATER_TARGET_SHARE_S = 0.5
# A later target's reserve never takes more than this share of what is left.
RESERVE_CAP_RATIO = 0.4


@dataclass(frozen=True, kw_only=True)
class GatewaySettings:
    deadline_s: float = 25.0
    margin_s: float = 0.25  # kept back from every attempt so the caller can still answer
    cold_timeout_s: float = 8.0  # attempt timeout before a target has latency samples
    min_timeout_s: float = 1.0
    latency_factor: float = 4.0  # attempt timeout = factor x observed p99 (clamped)
    probe_timeout_s: float = 2.0
    reserve_s: float = 3.0  # time kept for the rest of the chain while later targets remain
    max_attempts: int = 3  # per target, first call included
    backoff_base_s: float = 0.05
    backoff_cap_s: float = 1.0
    hedging: bool = True
    hedge_after_s: float = 1.5  # before the target has latency samples
    hedge_factor: float = 3.0  # hedge delay = factor x observed p95 (at least hedge_min_s)
    hedge_min_s: float = 0.2
    retry_ratio: float = 0.1
    # A transient error (throttle, 503, reset) retries on the same target only when no later target
    # can take the request; with one waiting, failing over at once beats sleeping on a backoff.
    retry_before_failover: bool = False
    cache_ttl_s: int = 86_400
    prompt_version: str = "v1"
    guardrail_version: str = "none"
    breaker: BreakerSettings = field(default_factory=BreakerSettings)
    capacity: CapacitySettings = field(default_factory=CapacitySettings)
    # The behaviour before adaptive capacity, kept as bench/burst.py's baseline: no concurrency limit, and a
    # throttle counts toward the breaker like any failure (so a saturated target gets its breaker opened).
    throttle_as_failure: bool = False


# --- which target next ------------------------------------------------------------------------
T = TypeVar("T")
P = TypeVar("P")


class Refusal(Enum):
    """Why a target was passed over without a call."""

    BREAKER_OPEN = "breaker open"  # it is failing: wait for the breaker's probe
    AT_CAPACITY = "at capacity"  # it is healthy but full (throttling): back-pressure


@dataclass(frozen=True)
class Selection(Generic[T, P]):
    """The outcome of looking down the chain for the next target to start."""

    target: T | None  # None: nothing can be started now
    permit: P | None
    skipped: tuple[tuple[T, Refusal], ...]  # passed over without a call, and why
    waiting: tuple[T, ...]  # still to try after this one
    out_of_time: bool  # stopped because the deadline cannot carry another call

    @property
    def shed(self) -> bool:
        """Every target was passed over (breaker open or full): refuse at once rather than fail slowly."""
        return self.target is None and not self.out_of_time and bool(self.skipped)

    @property
    def at_capacity(self) -> bool:
        """Some target was passed over only for being full: the refusal is back-pressure (429), not an outage."""
        return any(refusal is Refusal.AT_CAPACITY for _, refusal in self.skipped)


def can_start_target(settings: GatewaySettings, *, remaining_s: float) -> bool:
    return remaining_s > settings.margin_s + START_SLACK_S


def select_next_target(
    settings: GatewaySettings,
    waiting: Sequence[T],
    *,
    remaining_s: float,
    admit: Callable[[T], P | Refusal],
) -> Selection[T, P]:
    """The first target in order that admits a call, if the deadline still allows one.

    `admit` asks the target's breaker (it may hand out a half-open probe) and its concurrency limit,
    in chain order and only as far as needed, so a probe or a place is never taken for a target that
    is not then called.
    """
    skipped: list[tuple[T, Refusal]] = []
    for index, candidate in enumerate(waiting):
        if not can_start_target(settings, remaining_s=remaining_s):
            return Selection(None, None, tuple(skipped), (), out_of_time=True)
        permit = admit(candidate)
        if isinstance(permit, Refusal):
            skipped.append((candidate, permit))
            continue
        return Selection(candidate, permit, tuple(skipped), tuple(waiting[index + 1 :]), out_of_time=False)
    return Selection(None, None, tuple(skipped), (), out_of_time=False)


# --- how long one attempt may take ------------------------------------------------------------
def attempt_timeout(
    settings: GatewaySettings, *, p99_s: float | None, probe: bool, remaining_s: float, later_targets: int
) -> float:
    """A few times the target's observed p99 (cold: `cold_timeout_s`), never past the deadline.

    A probe gets at most `probe_timeout_s` (a target still dead must not hold the user); while
    later targets remain, part of what is left is kept for them.
    """
    s = settings
    if p99_s is None:
        adaptive = s.cold_timeout_s
    else:
        adaptive = min(max(s.latency_factor * p99_s, s.min_timeout_s), s.cold_timeout_s)
    if probe:
        adaptive = min(adaptive, s.probe_timeout_s)
    available = remaining_s - s.margin_s
    if later_targets:
        available -= min(s.reserve_s, available * RESERVE_CAP_RATIO)
    return max(0.0, min(adaptive, available))


def worth_attempting(timeout_s: float) -> bool:
    return timeout_s >= SHORTEST_ATTEMPT_S


def slow_threshold(settings: GatewaySettings, *, p95_s: float | None) -> float:
    """A success slower than this counts as slow for the breaker's slow-call rule."""
    if p95_s is None:
        return settings.cold_timeout_s / 2
    return max(3 * p95_s, settings.min_timeout_s)


# --- when to hedge ----------------------------------------------------------------------------
def hedge_delay(settings: GatewaySettings, *, p95_s: float | None) -> float:
    """How long a running target may go unanswered before the next one starts beside it."""
    if p95_s is None:
        return settings.hedge_after_s
    return max(settings.hedge_min_s, settings.hedge_factor * p95_s)


def may_hedge(settings: GatewaySettings, *, targets_waiting: bool) -> bool:
    return settings.hedging and targets_waiting


def wait_timeout(
    settings: GatewaySettings, *, remaining_s: float, until_hedge_s: float, targets_waiting: bool
) -> float:
    """How long the runner waits for a lane: until the deadline, or the hedge if one may come first."""
    if may_hedge(settings, targets_waiting=targets_waiting):
        return min(remaining_s, max(0.0, until_hedge_s))
    return remaining_s


def hedge_due(settings: GatewaySettings, *, until_hedge_s: float, targets_waiting: bool) -> bool:
    return may_hedge(settings, targets_waiting=targets_waiting) and until_hedge_s <= 0.0


# --- retry here or give up on this target -----------------------------------------------------
class GiveUp(Enum):
    NOT_RETRYABLE = "the error is not transient on this target"
    PROBE = "a half-open probe gets one try"
    ATTEMPTS_USED = "max attempts on this target"
    LATER_TARGET_WAITING = "a later target can take the request now"
    DEADLINE = "no time for the backoff and another attempt"
    BREAKER_OPEN = "the target's breaker opened"
    PAUSED = "the target asked to be left alone for now (throttled at its concurrency floor)"
    BUDGET_SPENT = "the retry budget is spent"


@dataclass(frozen=True)
class RetryDecision:
    give_up: GiveUp | None  # None: retry on the same target after `backoff_s`
    backoff_s: float = 0.0

    @property
    def retry(self) -> bool:
        return self.give_up is None


def backoff_ceiling(settings: GatewaySettings, *, attempt: int) -> float:
    """Full jitter's upper bound after `attempt` calls: min(cap, base x 2^attempt)."""
    return min(settings.backoff_cap_s, settings.backoff_base_s * 2.0**attempt)


def decide_retry(
    settings: GatewaySettings,
    *,
    code: str,
    attempt: int,
    probe: bool,
    later_targets: int,
    remaining_s: float,
    breaker_open: bool,
    draw_backoff: Callable[[float], float],
    spend_retry: Callable[[], bool],
    paused: bool = False,
) -> RetryDecision:
    """After a failed attempt: retry on this target, or give up on it (fail over, or reject).

    Checks run cheapest first and the two with effects last: `draw_backoff(ceiling)` picks the
    jittered pause only for a retry still possible, and `spend_retry()` takes from the retry
    budget only when nothing else forbids the retry, so a retry not made costs no budget.
    """
    s = settings
    if classify(code).action is not Action.RETRY:
        return RetryDecision(GiveUp.NOT_RETRYABLE)
    if probe:
        return RetryDecision(GiveUp.PROBE)
    if attempt >= s.max_attempts:
        return RetryDecision(GiveUp.ATTEMPTS_USED)
    if later_targets and not s.retry_before_failover:
        return RetryDecision(GiveUp.LATER_TARGET_WAITING)
    if paused:  # retrying into the pause would undo the back-pressure it applies
        return RetryDecision(GiveUp.PAUSED)
    backoff = draw_backoff(backoff_ceiling(s, attempt=attempt))
    if remaining_s - backoff < s.min_timeout_s + later_targets * LATER_TARGET_SHARE_S:
        return RetryDecision(GiveUp.DEADLINE)
    if breaker_open:
        return RetryDecision(GiveUp.BREAKER_OPEN)
    if not spend_retry():
        return RetryDecision(GiveUp.BUDGET_SPENT)
    return RetryDecision(None, backoff)
