"""Simulated time for the gateway's thread runner: a test double (clock, sleep, executor, wait).

The gateway's lanes still run on real threads, but time is a number that moves only when every
thread taking part (the test's own thread and every lane) is blocked on simulated time: sleeping,
or waiting for futures with a timeout. Then it jumps to the earliest wake-up. A scripted target
that "takes 0.3 s" therefore takes exactly 0.3 simulated seconds on any machine, and the order
of events is fixed by the script, not by the scheduler: no verdict depends on the machine's speed.

    sim = SimulatedTime()
    gateway = ModelGateway(targets=..., clock=sim.clock, sleep=sim.sleep, executor=sim, wait=sim.wait)

Only the test's thread and the threads started by `submit` may call `sleep` or `wait`. Events at
the very same simulated instant on different lanes are not ordered: scripts keep them apart.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future
from dataclasses import dataclass, field
from typing import Any, TypeVar

from core.errors import TargetCallError
from core.models import Message, ModelReply, TargetRef, Usage

R = TypeVar("R")


class SimulationStuck(RuntimeError):
    """Every thread waits and nothing can wake it: a bug in the code under test or in its script."""


@dataclass(eq=False)
class _Block:
    wake_at: float  # simulated time at which it wakes (inf: only a future can wake it)
    futures: tuple[Future[Any], ...] = ()
    released: bool = False


class SimulatedTime:
    def __init__(self, start: float = 0.0, *, stuck_after_real_s: float = 30.0) -> None:
        self._cv = threading.Condition()
        self._now = start
        self._runnable = 1  # the thread that made this one (the test's) takes part from the start
        self._blocked: list[_Block] = []
        self._pending: set[Future[Any]] = set()
        self._stuck: SimulationStuck | None = None
        # Only a guard against a hang in a broken test: a correct run never comes near it.
        self._stuck_after_real_s = stuck_after_real_s

    # --- the clock and sleep the gateway takes ---------------------------------------------------
    def clock(self) -> float:
        with self._cv:
            return self._now

    def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            return
        with self._cv:
            self._block(_Block(self._now + seconds))

    def advance(self, seconds: float) -> None:
        """Let `seconds` pass for the test's thread; lanes still running go on meanwhile."""
        self.sleep(seconds)

    # --- the executor and wait the gateway takes -------------------------------------------------
    def submit(self, fn: Callable[..., R], /, *args: Any, **kwargs: Any) -> Future[R]:
        future: Future[R] = Future()
        future.set_running_or_notify_cancel()
        with self._cv:
            self._runnable += 1  # counted before it starts, so time cannot move past its start
            self._pending.add(future)

        def run() -> None:
            failure: BaseException | None = None
            try:
                result = fn(*args, **kwargs)
            except BaseException as error:
                failure = error
            with self._cv:
                if failure is None:
                    future.set_result(result)
                else:
                    future.set_exception(failure)
                self._pending.discard(future)
                self._release([b for b in self._blocked if future in b.futures])
                self._runnable -= 1
                self._advance_if_idle()

        threading.Thread(target=run, name="simulated-lane", daemon=True).start()
        return future

    def wait(
        self, fs: Iterable[Future[R]], timeout: float | None = None, return_when: str = FIRST_COMPLETED
    ) -> tuple[set[Future[R]], set[Future[R]]]:
        if return_when != FIRST_COMPLETED:
            raise NotImplementedError("the gateway only waits for the first completed lane")
        futures = set(fs)
        with self._cv:
            if not any(f.done() for f in futures) and (timeout is None or timeout > 0):
                wake_at = math.inf if timeout is None else self._now + timeout
                self._block(_Block(wake_at, tuple(futures)))
            done = {f for f in futures if f.done()}
        return done, futures - done

    def settle(self) -> None:
        """Run simulated time on until every lane has ended (lanes left behind by a faster answer)."""
        while True:
            with self._cv:
                pending = set(self._pending)
            if not pending:
                return
            self.wait(pending)

    # --- the scheduler ---------------------------------------------------------------------------
    def _block(self, block: _Block) -> None:
        """Called with the lock held: park this thread until time or a future releases it."""
        self._blocked.append(block)
        self._runnable -= 1
        self._advance_if_idle()
        give_up_at = time.monotonic() + self._stuck_after_real_s
        while not block.released:
            if self._stuck is not None:
                raise self._stuck
            left = give_up_at - time.monotonic()
            if left <= 0:
                self._stuck = SimulationStuck(f"no progress for {self._stuck_after_real_s} real seconds")
                self._cv.notify_all()
                raise self._stuck
            self._cv.wait(left)

    def _advance_if_idle(self) -> None:
        """With the lock held: if nobody can run, jump to the earliest wake-up and release it."""
        if self._runnable > 0 or not self._blocked:
            return
        ready = [b for b in self._blocked if any(f.done() for f in b.futures)]
        if not ready:
            wake_at = min(b.wake_at for b in self._blocked)
            if math.isinf(wake_at):
                self._stuck = SimulationStuck("every thread waits for a future that nothing will complete")
                self._cv.notify_all()
                return
            self._now = max(self._now, wake_at)
            ready = [b for b in self._blocked if b.wake_at <= self._now]
        self._release(ready)

    def _release(self, blocks: Sequence[_Block]) -> None:
        for block in blocks:
            if not block.released:
                block.released = True
                self._blocked.remove(block)
                self._runnable += 1
        if blocks:
            self._cv.notify_all()


# --- scripted targets ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Behaviour:
    """What one call does: take `takes_s` simulated seconds, then answer or fail with `error`."""

    takes_s: float
    error: str | None = None


def answers(after_s: float) -> Behaviour:
    return Behaviour(after_s)


def fails(code: str, after_s: float = 0.01) -> Behaviour:
    return Behaviour(after_s, code)


HANGS = Behaviour(math.inf)  # never answers: the call ends at its timeout, as a read timeout would


@dataclass(frozen=True)
class Call:
    at: float  # simulated time the call started
    timeout_s: float


@dataclass
class SimulatedTarget:
    """A TargetModel that spends simulated time: answers, fails with a runtime code, or hangs.

    `script` is used call by call, then `behaviour` for every call after; a call that would take
    longer than its timeout ends at the timeout with "Timeout", like botocore's read timeout.
    """

    name: str
    sim: SimulatedTime
    behaviour: Behaviour = field(default_factory=lambda: answers(0.1))
    script: list[Behaviour] = field(default_factory=list)
    calls: list[Call] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def target(self) -> TargetRef:
        return TargetRef(model_id=self.name, region="sim")

    @property
    def timeouts(self) -> list[float]:
        return [call.timeout_s for call in self.calls]

    def behave(self, behaviour: Behaviour) -> None:
        """From the next call on (the script, if any is left, goes first)."""
        with self._lock:
            self.behaviour = behaviour

    def call(self, *, system: str, messages: Sequence[Message], timeout_s: float) -> ModelReply:
        with self._lock:
            behaviour = self.script.pop(0) if self.script else self.behaviour
            self.calls.append(Call(at=self.sim.clock(), timeout_s=timeout_s))
        if behaviour.takes_s > timeout_s:
            self.sim.sleep(timeout_s)
            raise TargetCallError("Timeout", f"no answer within {timeout_s} s")
        self.sim.sleep(behaviour.takes_s)
        if behaviour.error is not None:
            raise TargetCallError(behaviour.error)
        # As a guarded target answers (Converse with a guardrail): the gateway caches only such answers.
        return ModelReply(text=f"from {self.name}", usage=Usage(), target=self.target, guardrail_checked=True)


@dataclass
class QuotaTarget:
    """A TargetModel behind a request quota, as Bedrock's: a token bucket on simulated time.

    `rate_per_s` requests a second with `burst` requests' worth of headroom (full at the start); a call
    that finds a token answers after `takes_s`, one that finds none is throttled after `throttle_s`.
    """

    name: str
    sim: SimulatedTime
    rate_per_s: float
    burst: float
    takes_s: float = 0.047
    throttle_s: float = 0.0013
    answered: int = 0
    throttled: int = 0
    _tokens: float | None = None
    _stamp: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def target(self) -> TargetRef:
        return TargetRef(model_id=self.name, region="sim")

    @property
    def calls(self) -> int:
        return self.answered + self.throttled

    def call(self, *, system: str, messages: Sequence[Message], timeout_s: float) -> ModelReply:
        with self._lock:
            now = self.sim.clock()
            if self._tokens is None:
                self._tokens, self._stamp = self.burst, now
            self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate_per_s)
            self._stamp = now
            admitted = self._tokens >= 1.0
            if admitted:
                self._tokens -= 1.0
                self.answered += 1
            else:
                self.throttled += 1
        if not admitted:
            self.sim.sleep(self.throttle_s)
            raise TargetCallError("ThrottlingException", "Too many requests")
        self.sim.sleep(self.takes_s)
        return ModelReply(text=f"from {self.name}", usage=Usage(), target=self.target, guardrail_checked=True)
