"""Per-user limits: one user must not starve everyone (request rate now, token budgets later).

Counters live in fixed windows keyed by the window's start, so the check is one atomic conditional
add and the reset time is exact. A counter store that is down does not stop the app: the stage and
WAF limits still protect it, so the limit fails open and says so in the logs and metrics.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from core.errors import DependencyUnavailable, TooManyRequests
from core.ports import UsageCounters

_log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class UserLimitSettings:
    requests_per_minute: int = 0  # 0: no limit


class UserLimits:
    def __init__(
        self,
        *,
        counters: UsageCounters,
        settings: UserLimitSettings,
        clock: Callable[[], float] = time.time,
        on_unavailable: Callable[[], None] = lambda: None,
    ) -> None:
        self._counters = counters
        self._settings = settings
        self._clock = clock
        self._on_unavailable = on_unavailable

    def admit_request(self, user_id: str) -> None:
        """Count one request of `user_id`; TooManyRequests (with the seconds to the reset) past the limit."""
        limit = self._settings.requests_per_minute
        if limit <= 0:
            return
        now = self._clock()
        window = int(now // 60) * 60
        try:
            added = self._counters.add(user_id, f"requests#{window}", amount=1, limit=limit, expires_at=window + 3600)
        except DependencyUnavailable:
            _log.warning("per-user rate limit unavailable: request admitted")
            self._on_unavailable()
            return
        if not added:
            retry_after = max(1, math.ceil(window + 60 - now))
            raise TooManyRequests(
                f"you sent more than {limit} requests in a minute; try again in {retry_after} s",
                retry_after=retry_after,
            )
