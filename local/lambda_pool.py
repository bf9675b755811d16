"""Lambda's concurrency model for handlers run in-process (the sandbox, its SQS pump, tests).

In Lambda an execution environment serves one event at a time, and more environments start (cold)
when events arrive together, up to the function's reserved concurrency. Handlers rely on that: a
Powertools resolver or batch processor keeps the current event on itself. Calling one handler from
several threads at once would mix requests, so the sandbox never does: each call borrows a whole
environment, built by the Lambda's own `bootstrap()`. What Powertools keeps once per process (the
resolver's current event, the metric set) is made per thread first (local/request_state.py), since
here a process holds many environments.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from local.request_state import isolate

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]


class ExecutionEnvironments:
    """A handler-shaped callable over up to `limit` environments made by `factory` on demand."""

    def __init__(self, factory: Callable[[], Handler], *, limit: int) -> None:
        if limit < 1:
            raise ValueError("an execution environment pool needs a limit of at least 1")
        isolate()
        self._factory = factory
        self._limit = limit
        self._free: list[Handler] = []
        self._created = 0
        self._ready = threading.Condition()

    @property
    def cold_starts(self) -> int:
        return self._created

    def __call__(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        handler = self._borrow()
        try:
            return handler(event, context)
        finally:
            with self._ready:
                self._free.append(handler)
                self._ready.notify()

    def _borrow(self) -> Handler:
        with self._ready:
            while not self._free and self._created >= self._limit:
                self._ready.wait()  # every environment is busy: wait as a queued event would
            if self._free:
                return self._free.pop()
            self._created += 1
        try:
            return self._factory()  # a cold start, outside the lock so others keep flowing
        except BaseException:
            with self._ready:
                self._created -= 1
                self._ready.notify()
            raise
