"""Per-user limits: one user must not starve everyone (request rate) nor spend without bound (token budget).

Request rate: counters in fixed windows keyed by the window's start, so the check is one atomic conditional
add and the reset time is exact.

Token budget: input + output tokens per user per UTC day. Tokens are known only after the answer, so a
request is admitted while the tokens spent today are below the budget (a read), and the answer's real
usage is added afterwards (an unconditional atomic ADD). One request can therefore pass the budget by one
answer's tokens (its input, and at most the target's max output tokens); requests of one user in flight
together can each do so, which the request rate bounds. Answers no model wrote (degraded, curated, cached:
usage 0) spend nothing.

The usage table is a global table, and concurrent ADDs to one item in two regions are last-writer-wins
per item: counts would be lost. So each region adds to its own item (`tokens#<day>#<region>`) and the
check sums the day's items of every region (one Query on the day's prefix).

A counter store that is down does not stop the app: the stage and WAF limits still protect it, so every
limit fails open and says so in the logs and metrics.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from core.errors import DependencyUnavailable, TooManyRequests
from core.ports import UsageCounters

_log = logging.getLogger(__name__)

DAY_S = 86_400
# A day's token items outlive the day by this much (TTL), so a reader just past midnight never misses them.
TOKEN_ITEM_GRACE_S = DAY_S


@dataclass(frozen=True, kw_only=True)
class UserLimitSettings:
    requests_per_minute: int = 0  # 0: no limit
    daily_tokens: int = 0  # input + output tokens per user per UTC day; 0: no budget

    @property
    def enabled(self) -> bool:
        return self.requests_per_minute > 0 or self.daily_tokens > 0


@dataclass(frozen=True, kw_only=True)
class TokenDay:
    """The budget's window: one UTC day, named by its date; it resets at the next UTC midnight."""

    label: str  # "2026-11-22"
    resets_at: int  # epoch seconds of the next UTC midnight

    @classmethod
    def at(cls, now: float) -> TokenDay:
        start = int(now // DAY_S) * DAY_S
        return cls(label=datetime.fromtimestamp(start, UTC).strftime("%Y-%m-%d"), resets_at=start + DAY_S)

    @property
    def prefix(self) -> str:
        """Every region's item of this day (the Query's begins_with)."""
        return f"tokens#{self.label}#"

    def counter(self, region: str) -> str:
        return f"{self.prefix}{region}"

    def retry_after(self, now: float) -> int:
        return max(1, math.ceil(self.resets_at - now))


@dataclass(frozen=True, kw_only=True)
class TokenBudgetStatus:
    used: int
    limit: int
    resets_at: int  # epoch seconds

    @property
    def exhausted(self) -> bool:
        return self.used >= self.limit

    def to_api(self) -> dict[str, Any]:
        resets = datetime.fromtimestamp(self.resets_at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return {"used": self.used, "limit": self.limit, "resets_at": resets}


class TokenBudgetExceeded(TooManyRequests):
    """The user's tokens of the day are spent: 429 with the budget and the seconds to its reset."""

    def __init__(self, status: TokenBudgetStatus, *, retry_after: int) -> None:
        resets = status.to_api()["resets_at"]
        super().__init__(
            f"your daily token budget is used: {status.used} of {status.limit} tokens; it resets at {resets} "
            f"(in {retry_after} s)",
            retry_after=retry_after,
        )
        self.budget = status


class UserLimits:
    def __init__(
        self,
        *,
        counters: UsageCounters,
        settings: UserLimitSettings,
        region: str = "local",
        clock: Callable[[], float] = time.time,
        on_unavailable: Callable[[], None] = lambda: None,
    ) -> None:
        self._counters = counters
        self._settings = settings
        self._region = region  # this region's own token item
        self._clock = clock
        self._on_unavailable = on_unavailable

    @property
    def settings(self) -> UserLimitSettings:
        return self._settings

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

    def admit_tokens(self, user_id: str) -> TokenBudgetStatus | None:
        """The user's budget today, summed over every region; TokenBudgetExceeded when it is spent. None: no
        budget configured, or the counters are down (admitted)."""
        limit = self._settings.daily_tokens
        if limit <= 0:
            return None
        now = self._clock()
        day = TokenDay.at(now)
        try:
            used = self._counters.total(user_id, day.prefix)
        except DependencyUnavailable:
            _log.warning("per-user token budget unavailable: request admitted")
            self._on_unavailable()
            return None
        status = TokenBudgetStatus(used=used, limit=limit, resets_at=day.resets_at)
        if status.exhausted:
            raise TokenBudgetExceeded(status, retry_after=day.retry_after(now))
        return status

    def admit(self, user_id: str, *, spends_tokens: bool = True) -> TokenBudgetStatus | None:
        """One request of `user_id`: for a request a model will answer, the daily token budget first (a refused
        request does not count against the rate), then the request rate. Returns the budget as read, or None."""
        budget = self.admit_tokens(user_id) if spends_tokens else None
        self.admit_request(user_id)
        return budget

    def spend_answer(self, user_id: str, answer: Any, admitted: TokenBudgetStatus | None) -> TokenBudgetStatus | None:
        """An answer's model tokens (a ChatAnswer: `degraded`, `usage`); a degraded answer (no model wrote it)
        spends none."""
        return self.spend_tokens(user_id, 0 if answer.degraded else answer.usage.total_tokens, admitted=admitted)

    def spend_tokens(
        self, user_id: str, tokens: int, *, admitted: TokenBudgetStatus | None = None
    ) -> TokenBudgetStatus | None:
        """Add an answer's real tokens to this region's item of today (unconditional: the answer is given).
        Returns the budget as the caller can tell it (`admitted`'s reading plus these tokens), or None."""
        limit = self._settings.daily_tokens
        if limit <= 0:
            return None
        now = self._clock()
        day = TokenDay.at(now)
        if tokens > 0:
            try:
                self._counters.increment(
                    user_id, day.counter(self._region), amount=tokens, expires_at=day.resets_at + TOKEN_ITEM_GRACE_S
                )
            except DependencyUnavailable:
                _log.warning("per-user token budget unavailable: tokens not counted")
                self._on_unavailable()
        if admitted is None or admitted.resets_at != day.resets_at:  # fail-open admit, or a new day began
            return None
        return TokenBudgetStatus(used=admitted.used + max(0, tokens), limit=limit, resets_at=day.resets_at)
