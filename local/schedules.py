"""EventBridge's part for scheduled Lambdas, locally: the handler called on its rate with a scheduled event.

The template's rule or schedule says the period (local/templates.py reads `rate(...)`); the sandbox may run it
more often (a drill cannot wait minutes). `trigger()` runs it now and waits for that run, for tests and drills
that need a sweep to have happened rather than a time to have passed.
"""

from __future__ import annotations

import threading
import uuid
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from local.lambda_context import LocalContext

Handler = Callable[[dict[str, Any], Any], Any]


def scheduled_event(*, region: str, rule_arn: str, now: datetime | None = None) -> dict[str, Any]:
    """The event EventBridge sends a Lambda for a scheduled rule."""
    at = now or datetime.now(UTC)
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "123456789012",
        "time": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [rule_arn],
        "detail": {},
    }


class ScheduledHandler:
    """Calls `handler` every `every_s` seconds (one run at a time, as a reserved concurrency of 1 would), until
    stopped; `pause()` / `resume()` for a regional outage. `runs` and `errors` say what happened."""

    def __init__(self, handler: Handler, *, name: str, region: str, every_s: float, timeout_s: float = 60.0) -> None:
        if every_s <= 0:
            raise ValueError(f"a schedule needs a positive period, got {every_s}")
        self._handler = handler
        self.name = name
        self.region = region
        self.every_s = every_s
        self._timeout_s = timeout_s
        self._rule_arn = f"arn:aws:events:{region}:123456789012:rule/{name}"
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._run_lock = threading.Lock()
        self._done = threading.Condition()
        self._paused = False
        self._thread: threading.Thread | None = None
        self.runs = 0
        self.errors: list[BaseException] = []
        self.last_result: Any = None
        self.results: deque[Any] = deque(maxlen=1000)  # the last runs' return values (a sweep's counts)

    def start(self) -> ScheduledHandler:
        def loop() -> None:
            while not self._stop.is_set():
                self._wake.wait(self.every_s)
                self._wake.clear()
                if self._stop.is_set():
                    return
                if not self._paused:
                    self._run()

        self._thread = threading.Thread(target=loop, name=f"schedule-{self.name}", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        with self._run_lock:
            try:
                event = scheduled_event(region=self.region, rule_arn=self._rule_arn)
                self.last_result = self._handler(
                    event, LocalContext(function_name=self.name, timeout_s=self._timeout_s)
                )
                self.results.append(self.last_result)
            except Exception as error:  # a failed run is the function's error; the schedule keeps going
                self.errors.append(error)
                del self.errors[:-20]
            finally:
                with self._done:
                    self.runs += 1
                    self._done.notify_all()

    def trigger(self, *, timeout_s: float = 60.0) -> bool:
        """Run it now (outside its period) and wait until that run has finished; False if it did not in time."""
        if self._paused:
            raise RuntimeError(f"{self.name} in {self.region} is paused (the region is down)")
        with self._done:
            target = self.runs + (2 if self._run_lock.locked() else 1)  # a run already under way does not count
        self._wake.set()
        with self._done:
            return self._done.wait_for(lambda: self.runs >= target, timeout=timeout_s)

    def pause(self) -> None:
        self._paused = True
        with self._run_lock:  # a run in progress finishes first
            pass

    def resume(self) -> None:
        self._paused = False

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=self._timeout_s)
