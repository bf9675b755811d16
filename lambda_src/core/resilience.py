"""The resilience contract's building blocks: taxonomy, deadline, retry budget, breaker, latency.

Pure and thread-safe; time comes from an injectable monotonic clock so tests control it.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

Clock = Callable[[], float]


class Action(Enum):
    RETRY = "retry"  # transient on this target: retry here (within budget and deadline)
    FAIL_OVER = "fail_over"  # this target cannot answer now: next target
    REJECT = "reject"  # the request itself is wrong: no retry anywhere, a 4xx


@dataclass(frozen=True)
class Rule:
    action: Action
    counts_as_failure: bool  # toward opening the target's breaker
    alarm: bool = False  # a configuration fault an operator must fix


# DESIGN "Error taxonomy (Bedrock runtime)", entry by entry. Transport codes come from adapters.
TAXONOMY: dict[str, Rule] = {
    "ThrottlingException": Rule(Action.RETRY, True),
    "ServiceUnavailableException": Rule(Action.RETRY, True),
    "InternalServerException": Rule(Action.RETRY, True),
    "ModelNotReadyException": Rule(Action.RETRY, True),
    "ConnectionReset": Rule(Action.RETRY, True),
    "ModelTimeoutException": Rule(Action.FAIL_OVER, True),
    "ModelErrorException": Rule(Action.FAIL_OVER, True),
    "Timeout": Rule(Action.FAIL_OVER, True),
    "AccessDeniedException": Rule(Action.FAIL_OVER, True, alarm=True),
    "ResourceNotFoundException": Rule(Action.FAIL_OVER, True, alarm=True),
    "ValidationException": Rule(Action.REJECT, False),
    "ContextWindowExceeded": Rule(Action.REJECT, False),
}
_UNKNOWN = Rule(Action.FAIL_OVER, True)


def classify(code: str) -> Rule:
    """Unknown codes fail over (and count): safer than retrying what we do not understand."""
    return TAXONOMY.get(code, _UNKNOWN)


class Deadline:
    """One end-to-end budget per request."""

    def __init__(self, seconds: float, clock: Clock = time.monotonic) -> None:
        self._clock = clock
        self._end = clock() + max(0.0, seconds)

    def remaining(self) -> float:
        return max(0.0, self._end - self._clock())

    def expired(self) -> bool:
        return self.remaining() <= 0.0


class RetryBudget:
    """Retries may be at most `ratio` of the requests offered (per execution environment).

    Every offered request deposits `ratio` of a token (`on_call`), every retry withdraws one; the
    balance starts at zero and is capped, so a throttled model sees at most (1 + ratio) x the
    offered requests. A deposit per call (retries and other targets included) would let it see
    1 / (1 - ratio) x or more, over the contract.
    """

    def __init__(self, ratio: float = 0.1, cap_retries: int = 10) -> None:
        # Whole units avoid float drift: a call earns 1 unit, a retry costs 1/ratio units.
        self._cost = max(1, round(1 / ratio))
        self._cap = cap_retries * self._cost
        self._balance = 0
        self._lock = threading.Lock()

    def on_call(self) -> None:
        with self._lock:
            self._balance = min(self._cap, self._balance + 1)

    def try_spend(self) -> bool:
        with self._lock:
            if self._balance >= self._cost:
                self._balance -= self._cost
                return True
            return False


class BreakerState(Enum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(frozen=True)
class BreakerSettings:
    window_s: float = 60.0
    min_calls: int = 20
    failure_ratio: float = 0.5
    consecutive_failures: int = 5
    slow_ratio: float = 0.5
    open_s: float = 30.0
    half_open_probes: int = 1  # probes allowed in flight while half-open


@dataclass(frozen=True)
class Permit:
    probe: bool  # True when this call is a half-open probe (give it a short timeout)


class CircuitBreaker:
    """Per target (model x region). Works with a single target: it only ever looks at its own calls."""

    def __init__(
        self,
        settings: BreakerSettings | None = None,
        clock: Clock = time.monotonic,
        on_transition: Callable[[BreakerState, BreakerState], None] | None = None,
    ) -> None:
        self.settings = settings or BreakerSettings()
        self._clock = clock
        self._on_transition = on_transition
        self._lock = threading.Lock()
        self._state = BreakerState.CLOSED
        self._calls: deque[tuple[float, bool, bool]] = deque()  # (when, failed, slow)
        self._consecutive = 0
        self._opened_at = 0.0
        self._probes = 0

    @property
    def state(self) -> BreakerState:
        with self._lock:
            self._advance()
            return self._state

    def seconds_until_probe(self) -> float:
        """0 unless open; then how long until a half-open probe may go through."""
        with self._lock:
            self._advance()
            if self._state is not BreakerState.OPEN:
                return 0.0
            return max(0.0, self.settings.open_s - (self._clock() - self._opened_at))

    def allow(self) -> Permit | None:
        """A permit to call, or None when the breaker is open (skip this target)."""
        with self._lock:
            self._advance()
            if self._state is BreakerState.CLOSED:
                return Permit(probe=False)
            if self._state is BreakerState.HALF_OPEN and self._probes < self.settings.half_open_probes:
                self._probes += 1
                return Permit(probe=True)
            return None

    def record(self, *, failed: bool, slow: bool = False, probe: bool = False) -> None:
        with self._lock:
            now = self._clock()
            if probe:
                self._probes = max(0, self._probes - 1)
            if self._state is BreakerState.HALF_OPEN and probe:
                self._move(BreakerState.OPEN if failed or slow else BreakerState.CLOSED, now)
                return
            self._calls.append((now, failed, slow))
            self._consecutive = self._consecutive + 1 if failed else 0
            self._trim(now)
            if self._state is BreakerState.CLOSED and self._should_open():
                self._move(BreakerState.OPEN, now)

    def _should_open(self) -> bool:
        s = self.settings
        if self._consecutive >= s.consecutive_failures:
            return True
        total = len(self._calls)
        if total < s.min_calls:
            return False
        failures = sum(1 for _, failed, _ in self._calls if failed)
        slow = sum(1 for _, _, slow in self._calls if slow)
        return failures / total >= s.failure_ratio or slow / total >= s.slow_ratio

    def _advance(self) -> None:
        if self._state is BreakerState.OPEN and self._clock() - self._opened_at >= self.settings.open_s:
            self._move(BreakerState.HALF_OPEN, self._clock())

    def _move(self, new: BreakerState, now: float) -> None:
        old, self._state = self._state, new
        if new is BreakerState.OPEN:
            self._opened_at = now
            self._probes = 0
        if new is BreakerState.CLOSED:
            self._calls.clear()
            self._consecutive = 0
        if self._on_transition and old is not new:
            self._on_transition(old, new)

    def _trim(self, now: float) -> None:
        while self._calls and now - self._calls[0][0] > self.settings.window_s:
            self._calls.popleft()


class LatencyTracker:
    """Recent successful call latencies of one target, for adaptive timeouts and hedging."""

    def __init__(self, size: int = 50) -> None:
        self._samples: deque[float] = deque(maxlen=size)
        self._lock = threading.Lock()

    def add(self, seconds: float) -> None:
        with self._lock:
            self._samples.append(seconds)

    def quantile(self, q: float) -> float | None:
        """None until there are enough samples to say anything."""
        with self._lock:
            if len(self._samples) < 5:
                return None
            ordered = sorted(self._samples)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class RateLimiter:
    """Client-side pacing to a quota (token bucket): callers wait for a token instead of being
    throttled. `burst` tokens may be spent at once; the bucket refills at `rate_per_s`."""

    def __init__(
        self,
        rate_per_s: float,
        *,
        burst: float = 1.0,
        clock: Clock = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._rate = rate_per_s
        self._capacity = max(1.0, burst)
        self._tokens = self._capacity
        self._stamp = clock()
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()

    def acquire(self, timeout_s: float) -> bool:
        """Take one token, waiting up to `timeout_s`; False if none came in time (nothing taken)."""
        deadline = self._clock() + timeout_s
        while True:
            with self._lock:
                now = self._clock()
                self._tokens = min(self._capacity, self._tokens + (now - self._stamp) * self._rate)
                self._stamp = now
                if self._tokens >= 1.0:
                    self._tokens -= 1.0
                    return True
                wait = (1.0 - self._tokens) / self._rate
            if now + wait > deadline:
                return False
            self._sleep(wait)
