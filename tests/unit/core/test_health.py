"""core.health: the deep health report, its time budget and its cache, on a fake clock."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from typing import Any

import pytest

from core.health import DeepHealth, HealthSettings


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class InlineExecutor(Executor):
    """Runs each probe at once on the calling thread: no timing in the test."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        future: Future[Any] = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except Exception as error:
            future.set_exception(error)
        return future


class Probe:
    def __init__(self, name: str, error: Exception | None = None) -> None:
        self.name = name
        self.error = error
        self.calls = 0

    def check(self) -> None:
        self.calls += 1
        if self.error is not None:
            raise self.error


def health(
    probes: list[Any], breakers: Iterable[str] = ("closed", "closed"), clock: FakeClock | None = None, **kwargs: Any
) -> DeepHealth:
    states = list(breakers)
    return DeepHealth(
        region="us-west-2",
        probes=probes,
        breakers=lambda: states,
        settings=HealthSettings(ttl_s=5, budget_s=1.5, retry_after_s=5),
        clock=clock or FakeClock(),
        executor=kwargs.pop("executor", InlineExecutor()),
        **kwargs,
    )


def test_healthy_when_every_dependency_answers_and_a_breaker_is_closed() -> None:
    clock = FakeClock()
    service = health([Probe("dynamodb"), Probe("queue")], clock=clock)

    report, fresh = service.report()
    clock.now += 1.25

    assert fresh and report.healthy
    assert report.to_api(now=clock()) == {
        "status": "ok",
        "region": "us-west-2",
        "checks": {"dynamodb": "ok", "queue": "ok", "models": "ok"},
        "breakers": ["closed", "closed"],
        "age_s": 1.25,
    }


def test_a_failing_dependency_makes_the_region_unavailable_without_its_error_text() -> None:
    secret = "ResourceNotFoundException: table conversations-test for user alice@example.com"
    report, _ = health([Probe("dynamodb", RuntimeError(secret)), Probe("queue")]).report()

    body = report.to_api(now=report.checked_at)
    assert not report.healthy and body["status"] == "unavailable"
    assert body["checks"] == {"dynamodb": "unavailable", "queue": "ok", "models": "ok"}
    assert report.failing == ("dynamodb",)
    assert "alice" not in repr(body) and "conversations-test" not in repr(body)


@pytest.mark.parametrize(
    ("breakers", "models", "healthy"),
    [
        (("closed", "open"), "degraded", True),  # the chain still has a target to try
        (("half_open", "open"), "degraded", True),
        (("open", "open"), "unavailable", False),  # this environment sheds every chat request now
        ((), "ok", True),  # no gateway to read (a fake model)
    ],
)
def test_breakers_decide_the_models_check(breakers: tuple[str, ...], models: str, healthy: bool) -> None:
    report, _ = health([Probe("dynamodb")], breakers=breakers).report()

    assert report.models == models and report.healthy is healthy
    assert report.to_api(now=0)["checks"]["models"] == models
    assert ("models" in report.failing) is (not healthy)


def test_a_probe_still_running_when_the_budget_ends_is_a_timeout() -> None:
    release = threading.Event()
    budgets: list[float] = []

    class Hanging:
        name = "queue"

        def check(self) -> None:
            release.wait()

    def budget_spent(futures: list[Future[None]], timeout: float) -> tuple[set[Future[None]], set[Future[None]]]:
        budgets.append(timeout)  # the budget is over at once: whatever has not finished is late
        return {f for f in futures if f.done()}, {f for f in futures if not f.done()}

    with ThreadPoolExecutor(max_workers=2) as executor:
        service = health([Probe("dynamodb"), Hanging()], executor=executor, wait=budget_spent)
        try:
            report, _ = service.report()
        finally:
            release.set()

    assert budgets == [1.5]
    assert dict(report.checks)["queue"] == "timeout" and not report.healthy
    assert report.failing == ("queue",)


def test_reports_are_cached_for_the_ttl_healthy_or_not() -> None:
    clock = FakeClock()
    probe = Probe("dynamodb", RuntimeError("down"))
    service = health([probe], clock=clock)

    first, fresh = service.report()
    clock.now += 4.9
    second, again = service.report()

    assert fresh and not again and second is first and probe.calls == 1
    assert second.to_api(now=clock())["age_s"] == pytest.approx(4.9)

    probe.error = None
    clock.now += 0.1
    third, measured = service.report()
    assert measured and third.healthy and probe.calls == 2
    assert service.retry_after == 5
