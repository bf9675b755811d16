"""Per-user request rate: fixed windows, exact reset time, fail open when the counters are down."""

from __future__ import annotations

import pytest

from core.errors import DependencyUnavailable, TooManyRequests
from core.limits import UserLimits, UserLimitSettings


class MemoryCounters:
    """A test double of the UsageCounters port (the DynamoDB adapter is tested on moto)."""

    def __init__(self, *, down: bool = False) -> None:
        self.counts: dict[tuple[str, str], int] = {}
        self.down = down

    def add(self, user_id: str, counter: str, *, amount: int, limit: int, expires_at: int) -> bool:
        if self.down:
            raise DependencyUnavailable("down")
        current = self.counts.get((user_id, counter), 0)
        if current + amount > limit:
            return False
        self.counts[(user_id, counter)] = current + amount
        return True


def test_the_limit_holds_per_user_per_minute_and_says_when_it_resets() -> None:
    now = [60 * 16_666 + 20.0]  # 20 s into a minute
    limits = UserLimits(
        counters=MemoryCounters(), settings=UserLimitSettings(requests_per_minute=3), clock=lambda: now[0]
    )
    for _ in range(3):
        limits.admit_request("alice")

    with pytest.raises(TooManyRequests) as refused:
        limits.admit_request("alice")
    limits.admit_request("bob")  # another user is not affected

    assert refused.value.status == 429 and refused.value.retry_after == 40
    assert "more than 3 requests in a minute" in refused.value.message
    now[0] += 40  # the next window
    limits.admit_request("alice")


def test_no_limit_configured_counts_nothing() -> None:
    counters = MemoryCounters()
    limits = UserLimits(counters=counters, settings=UserLimitSettings(requests_per_minute=0))

    for _ in range(100):
        limits.admit_request("alice")

    assert counters.counts == {}


def test_counters_that_are_down_admit_the_request_and_say_so() -> None:
    unavailable = []
    limits = UserLimits(
        counters=MemoryCounters(down=True),
        settings=UserLimitSettings(requests_per_minute=1),
        on_unavailable=lambda: unavailable.append(1),
    )

    limits.admit_request("alice")
    limits.admit_request("alice")

    assert unavailable == [1, 1]
