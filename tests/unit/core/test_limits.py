"""Per-user request rate and daily token budget: fixed windows, exact reset times, regions summed, fail open."""

from __future__ import annotations

import pytest

from core.errors import DependencyUnavailable, TooManyRequests
from core.limits import DAY_S, TokenBudgetExceeded, TokenDay, UserLimits, UserLimitSettings


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

    def increment(self, user_id: str, counter: str, *, amount: int, expires_at: int) -> None:
        if self.down:
            raise DependencyUnavailable("down")
        self.counts[(user_id, counter)] = self.counts.get((user_id, counter), 0) + amount

    def total(self, user_id: str, prefix: str) -> int:
        if self.down:
            raise DependencyUnavailable("down")
        return sum(n for (user, name), n in self.counts.items() if user == user_id and name.startswith(prefix))


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


# --- daily token budget -------------------------------------------------------------------------------------------
MIDNIGHT = 1_795_305_600  # 2026-11-22T00:00:00Z
MAX_OUTPUT = 1024  # the target's max output tokens


def budget(counters: MemoryCounters, now: list[float], *, daily: int = 1000, region: str = "us-east-1") -> UserLimits:
    return UserLimits(
        counters=counters, settings=UserLimitSettings(daily_tokens=daily), region=region, clock=lambda: now[0]
    )


def test_the_day_is_a_utc_day_named_by_its_date_and_resets_at_the_next_midnight() -> None:
    assert TokenDay.at(MIDNIGHT) == TokenDay(label="2026-11-22", resets_at=MIDNIGHT + DAY_S)
    assert TokenDay.at(MIDNIGHT + DAY_S - 0.5) == TokenDay(label="2026-11-22", resets_at=MIDNIGHT + DAY_S)
    assert TokenDay.at(MIDNIGHT + DAY_S).label == "2026-11-23"
    assert TokenDay.at(MIDNIGHT - 1).label == "2026-11-21"
    day = TokenDay.at(MIDNIGHT + 3600)
    assert day.retry_after(MIDNIGHT + 3600) == 23 * 3600
    assert day.retry_after(MIDNIGHT + DAY_S - 0.2) == 1  # never 0: a client retrying at once is refused again
    assert day.counter("eu-west-1") == "tokens#2026-11-22#eu-west-1" and day.counter("x").startswith(day.prefix)


def test_a_user_is_admitted_below_the_budget_and_refused_with_the_reset_time_once_it_is_spent() -> None:
    counters, now = MemoryCounters(), [MIDNIGHT + 20 * 3600.0]  # 20:00 UTC
    limits = budget(counters, now)

    admitted = limits.admit_tokens("alice")
    after = limits.spend_tokens("alice", 600, admitted=admitted)
    second = limits.admit_tokens("alice")
    limits.spend_tokens("alice", 400, admitted=second)

    assert admitted is not None and admitted.used == 0
    assert after is not None and after.to_api() == {"used": 600, "limit": 1000, "resets_at": "2026-11-23T00:00:00Z"}
    with pytest.raises(TokenBudgetExceeded) as refused:
        limits.admit_tokens("alice")
    assert refused.value.status == 429 and refused.value.retry_after == 4 * 3600
    assert refused.value.budget.to_api() == {"used": 1000, "limit": 1000, "resets_at": "2026-11-23T00:00:00Z"}
    assert "1000 of 1000 tokens" in refused.value.message and "2026-11-23T00:00:00Z" in refused.value.message
    assert limits.admit_tokens("bob") is not None  # another user is not affected
    now[0] = MIDNIGHT + DAY_S  # the next UTC day
    fresh = limits.admit_tokens("alice")
    assert fresh is not None and fresh.used == 0


def test_one_admitted_request_overruns_the_budget_by_at_most_one_answer() -> None:
    counters, now = MemoryCounters(), [MIDNIGHT + 60.0]
    limits = budget(counters, now)
    limits.spend_tokens("alice", 999, admitted=None)  # one token left

    admitted = limits.admit_tokens("alice")  # still below: admitted
    answer_tokens = 300 + MAX_OUTPUT  # its input, and at most the target's max output
    after = limits.spend_tokens("alice", answer_tokens, admitted=admitted)

    assert after is not None and after.used == 999 + answer_tokens
    assert after.used - after.limit < answer_tokens  # the overrun is less than the one answer's tokens
    with pytest.raises(TokenBudgetExceeded):
        limits.admit_tokens("alice")


def test_the_regions_items_are_summed_and_each_region_writes_only_its_own() -> None:
    counters, now = MemoryCounters(), [MIDNIGHT + 60.0]
    east, west = budget(counters, now, region="us-east-1"), budget(counters, now, region="us-west-2")

    for _ in range(3):  # interleaved, as a user failing over and back would
        east.spend_tokens("alice", 200, admitted=None)
        west.spend_tokens("alice", 100, admitted=None)

    assert counters.counts == {
        ("alice", "tokens#2026-11-22#us-east-1"): 600,
        ("alice", "tokens#2026-11-22#us-west-2"): 300,
    }
    reading = west.admit_tokens("alice")
    assert reading is not None and reading.used == 900
    west.spend_tokens("alice", 100, admitted=None)
    with pytest.raises(TokenBudgetExceeded):
        east.admit_tokens("alice")


def test_an_answer_no_model_wrote_spends_nothing_and_no_budget_counts_nothing() -> None:
    counters, now = MemoryCounters(), [MIDNIGHT + 60.0]
    limits = budget(counters, now)
    admitted = limits.admit_tokens("alice")

    after = limits.spend_tokens("alice", 0, admitted=admitted)  # degraded, curated or cached: usage 0
    off = budget(counters, now, daily=0)

    assert after is not None and after.used == 0 and counters.counts == {}
    assert off.admit_tokens("alice") is None and off.spend_tokens("alice", 500, admitted=None) is None
    assert counters.counts == {}


def test_token_counters_that_are_down_admit_the_request_and_say_so() -> None:
    unavailable: list[int] = []
    limits = UserLimits(
        counters=MemoryCounters(down=True),
        settings=UserLimitSettings(daily_tokens=10),
        on_unavailable=lambda: unavailable.append(1),
    )

    admitted = limits.admit_tokens("alice")
    after = limits.spend_tokens("alice", 50, admitted=admitted)

    assert admitted is None and after is None and unavailable == [1, 1]


def test_a_reading_from_yesterday_is_not_reported_as_todays_budget() -> None:
    counters, now = MemoryCounters(), [MIDNIGHT - 1.0]
    limits = budget(counters, now)
    admitted = limits.admit_tokens("alice")
    now[0] = MIDNIGHT + 1.0  # the answer came after midnight: its tokens count for the new day

    after = limits.spend_tokens("alice", 70, admitted=admitted)

    assert after is None and counters.counts == {("alice", "tokens#2026-11-22#us-east-1"): 70}
