"""Deep health of one region's API, for failover routing (Route 53 health checks, clients' probes).

GET /health (a mock in API Gateway) says the API is reachable; GET /health/deep says whether this region
can answer: its conversations table answers a read, its jobs queue answers, and the model gateway of this
execution environment has at least one target whose breaker is not open. The checks run side by side
within a time budget (Route 53 wants an answer within 2 s of connecting) and the result is cached for a
few seconds, so a crowd of probes costs one round of checks. The report names checks and states only:
no user data, no error text, no resource names.

Breakers are per execution environment (each Lambda instance has its own gateway): a probe sees the
breakers of whichever environment answers it, which is what the next request there would meet.
"""

from __future__ import annotations

import concurrent.futures
import math
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol

OK = "ok"
UNAVAILABLE = "unavailable"
TIMEOUT = "timeout"
DEGRADED = "degraded"  # models: some targets' breakers are open, the chain still has one to try
_OPEN = "open"


class DependencyProbe(Protocol):
    """One cheap call to a dependency; raises (anything) when it is not answering."""

    name: str

    def check(self) -> None: ...


WaitForFutures = Callable[..., tuple[set[Future[None]], set[Future[None]]]]


@dataclass(frozen=True, kw_only=True)
class HealthSettings:
    ttl_s: float = 5.0  # a report is reused this long (healthy or not)
    budget_s: float = 1.5  # all probes together; a probe still running then counts as down
    retry_after_s: int = 5  # what an unhealthy answer tells the caller (Retry-After)


@dataclass(frozen=True, kw_only=True)
class HealthReport:
    region: str
    checks: tuple[tuple[str, str], ...]  # (dependency, ok | unavailable | timeout), in probe order
    breakers: tuple[str, ...]  # each target's breaker state, in chain order (no model names)
    checked_at: float  # on the service's clock

    @property
    def models(self) -> str:
        if not self.breakers or all(state != _OPEN for state in self.breakers):
            return OK
        return UNAVAILABLE if all(state == _OPEN for state in self.breakers) else DEGRADED

    @property
    def healthy(self) -> bool:
        return all(state == OK for _, state in self.checks) and self.models != UNAVAILABLE

    @property
    def failing(self) -> tuple[str, ...]:
        """The names of what is down (for the log and the metric), models included."""
        down = tuple(name for name, state in self.checks if state != OK)
        return down + (("models",) if self.models == UNAVAILABLE else ())

    def to_api(self, *, now: float) -> dict[str, Any]:
        return {
            "status": OK if self.healthy else UNAVAILABLE,
            "region": self.region,
            "checks": {**dict(self.checks), "models": self.models},
            "breakers": list(self.breakers),
            "age_s": round(max(0.0, now - self.checked_at), 3),
        }


class DeepHealth:
    def __init__(
        self,
        *,
        region: str,
        probes: Sequence[DependencyProbe],
        breakers: Callable[[], Iterable[str]],
        settings: HealthSettings | None = None,
        clock: Callable[[], float] = time.monotonic,
        executor: Executor | None = None,
        wait: WaitForFutures = concurrent.futures.wait,
    ) -> None:
        """`breakers`: the gateway's breaker states now ("closed", "open", "half_open"), in chain order."""
        self.settings = settings or HealthSettings()
        self._region = region
        self._probes = tuple(probes)
        self._breakers = breakers
        self._clock = clock
        self._wait = wait
        # A probe left running past the budget ends by its client's own timeouts; a fresh round (after the
        # cache expires) never waits behind it while there is a worker per probe to spare.
        self._executor = executor or ThreadPoolExecutor(
            max_workers=max(1, 2 * len(self._probes)), thread_name_prefix="health"
        )
        self._lock = threading.Lock()
        self._last: HealthReport | None = None

    def report(self) -> tuple[HealthReport, bool]:
        """The current report and whether it was measured now (False: served from the cache)."""
        with self._lock:
            last = self._last
            if last is not None and self._clock() - last.checked_at < self.settings.ttl_s:
                return last, False
            self._last = fresh = self._measure()
            return fresh, True

    def now(self) -> float:
        return self._clock()

    @property
    def retry_after(self) -> int:
        return max(1, math.ceil(self.settings.retry_after_s))

    def _measure(self) -> HealthReport:
        futures = [(probe.name, self._executor.submit(probe.check)) for probe in self._probes]
        if futures:
            self._wait([future for _, future in futures], timeout=self.settings.budget_s)
        checks = tuple((name, _state(future)) for name, future in futures)
        breakers = tuple(str(state) for state in self._breakers())
        return HealthReport(region=self._region, checks=checks, breakers=breakers, checked_at=self._clock())


def _state(future: Future[None]) -> str:
    if not future.done():
        return TIMEOUT
    return UNAVAILABLE if future.exception() is not None else OK
