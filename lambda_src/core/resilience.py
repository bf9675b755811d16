"""The resilience contract's building blocks: taxonomy, deadline, retry budget, breaker, capacity, latency.

Pure and thread-safe; time comes from an injectable monotonic clock so tests control it.
"""

from __future__ import annotations

import math
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
    # The target is healthy but full: a caller that adapts its concurrency (AdaptiveLimit) takes this as
    # back-pressure instead of a failure. Callers without one keep counting it toward their breaker.
    back_pressure: bool = False


# DESIGN "Error taxonomy (Bedrock runtime)", entry by entry. Transport codes come from adapters.
TAXONOMY: dict[str, Rule] = {
    "ThrottlingException": Rule(Action.RETRY, True, back_pressure=True),
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

    def release(self, *, probe: bool = False) -> None:
        """A call that says nothing about the target's health (it was throttled: back-pressure, not a
        fault): it counts nowhere, and a half-open probe's slot is given back for the next request."""
        if probe:
            with self._lock:
                self._probes = max(0, self._probes - 1)

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


@dataclass(frozen=True)
class CapacitySettings:
    """How one target's concurrency limit adapts to throttling (see AdaptiveLimit)."""

    ceiling: int = 16  # most calls in flight to one target from this execution environment
    increase: float = 1.0  # additive increase: the limit grows by about this much per limit's worth of successes
    decrease: float = 0.5  # multiplicative decrease: the limit is multiplied by this on a throttle
    pause_s: float = 0.05  # at the floor, the first pause a throttle imposes
    pause_factor: float = 4.0  # the next pause is this many times longer after a throttle, shorter after a success
    max_pause_s: float = 30.0  # a target that throttles everything is tried again this often at least

    def __post_init__(self) -> None:
        if self.ceiling < 1:
            raise ValueError(f"ceiling must be at least 1, got {self.ceiling}")
        if not 0 < self.increase <= self.ceiling:
            raise ValueError(f"increase must be in (0, ceiling], got {self.increase}")
        if not 0 < self.decrease < 1:
            raise ValueError(f"decrease must be in (0, 1), got {self.decrease}")
        if self.pause_factor <= 1:
            raise ValueError(f"pause_factor must be above 1, got {self.pause_factor}")
        if not 0 < self.pause_s <= self.max_pause_s:
            raise ValueError(f"need 0 < pause_s <= max_pause_s, got {self.pause_s} and {self.max_pause_s}")


class Signal(Enum):
    """What one attempt's outcome says about the target's capacity."""

    OK = "ok"  # answered: room for more
    THROTTLED = "throttled"  # full: back off
    NONE = "none"  # failed for another reason: says nothing about capacity (the breaker judges it)


@dataclass
class Slot:
    """One lane's place in a target's concurrency limit, held from its first attempt to its last."""

    epoch: int  # the limit's reaction count when the current attempt started


@dataclass(frozen=True)
class CapacityState:
    limit: float
    in_flight: int
    paused_s: float  # > 0: every call is refused for this long yet


class AdaptiveLimit:
    """Per target (model x region): how many calls may be in flight, learnt from throttles (AIMD).

    A success that used the limit raises it by `increase / limit` (about `increase` per round of
    calls), a throttle multiplies it by `decrease`, between the floor (one call) and the ceiling;
    calls over it are refused at once, so the excess is shed instead of queued or sent to be throttled.
    As in TCP, the limit reacts once per round: a throttle of a call started before the last reaction
    is the same congestion, already answered. Below one call in flight the limit works in time: at the
    floor a throttle pauses the target (`pause_s`, then `pause_factor` times longer while throttles go
    on, up to `max_pause_s`), a success makes the next pause as much shorter, and the limit grows again
    only once the pause is back to nothing. That keeps an execution environment that serves one request
    at a time (a Lambda) backing off too, and a target that throttles everything is left alone about as
    long as an open breaker would leave it.
    """

    def __init__(self, settings: CapacitySettings | None = None, clock: Clock = time.monotonic) -> None:
        self.settings = settings or CapacitySettings()
        self._clock = clock
        self._lock = threading.Lock()
        self._limit = float(self.settings.ceiling)
        self._in_flight = 0
        self._epoch = 0
        self._pause = 0.0  # the next pause at the floor (0: none, the limit is in concurrency)
        self._resume_at = -math.inf

    def acquire(self) -> Slot | None:
        """A place for one lane, or None when the target is full or paused (refuse at once)."""
        with self._lock:
            if self._clock() < self._resume_at or self._in_flight >= max(1, math.floor(self._limit)):
                return None
            self._in_flight += 1
            return Slot(self._epoch)

    def record(self, slot: Slot, signal: Signal) -> None:
        """One attempt's outcome; the slot is kept (the lane may retry) and stamped for its next attempt."""
        with self._lock:
            s = self.settings
            if signal is Signal.OK:
                if self._pause > 0:
                    self._pause = self._pause / s.pause_factor if self._pause / s.pause_factor >= s.pause_s else 0.0
                elif 2 * self._in_flight >= self._limit:  # only a limit in use is known to be enough
                    self._limit = min(float(s.ceiling), self._limit + s.increase / self._limit)
            elif signal is Signal.THROTTLED and slot.epoch == self._epoch:
                self._epoch += 1
                if self._limit > 1.0:
                    # From what was in flight, not from the limit, which may never have been used (RFC 5681's
                    # FlightSize): one throttled call in flight brings the limit down to the floor at once.
                    self._limit = max(1.0, min(self._limit, self._in_flight) * s.decrease)
                else:
                    self._pause = min(s.max_pause_s, max(s.pause_s, s.pause_factor * self._pause))
                    self._resume_at = self._clock() + self._pause
            slot.epoch = self._epoch

    def release(self, slot: Slot) -> None:
        """The lane is over (answered, failed or given up): its place is free."""
        with self._lock:
            self._in_flight = max(0, self._in_flight - 1)

    def paused_for(self) -> float:
        """How long every call is still refused (0: not paused)."""
        with self._lock:
            return max(0.0, self._resume_at - self._clock())

    @property
    def state(self) -> CapacityState:
        with self._lock:
            return CapacityState(self._limit, self._in_flight, max(0.0, self._resume_at - self._clock()))


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
