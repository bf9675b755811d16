"""Lambda's concurrency model for handlers run in-process (the sandbox, its SQS pump, tests).

In Lambda an execution environment serves one event at a time, and more environments start (cold)
when events arrive together, up to the function's reserved concurrency. Handlers rely on that: a
Powertools resolver or batch processor keeps the current event on itself. Calling one handler from
several threads at once would mix requests, so the sandbox never does: each call borrows a whole
environment, built by the Lambda's own `bootstrap()`. What Powertools keeps once per process (the
resolver's current event, the metric set) is made per thread first (local/request_state.py), since
here a process holds many environments. Each pool may carry the function's name (`chat@us-east-1`): a
call runs with it as `current_function()`, which is how the sandbox tells whose stdout an EMF record is, as
Lambda tells by the log group (local/status.py).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from local.request_state import isolate

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]
_running = threading.local()


def current_function() -> str | None:
    """The name of the function whose environment this thread is serving (None: not inside one)."""
    return getattr(_running, "name", None)


class ExecutionEnvironments:
    """A handler-shaped callable over up to `limit` environments made by `factory` on demand."""

    def __init__(self, factory: Callable[[], Handler], *, limit: int, name: str | None = None) -> None:
        if limit < 1:
            raise ValueError("an execution environment pool needs a limit of at least 1")
        isolate()
        self._factory = factory
        self._limit = limit
        self._free: list[Handler] = []
        self._created = 0
        self._ready = threading.Condition()
        self._name = name
        self._all: list[Handler] = []  # every environment made, busy or not (the status page reads them)

    @property
    def cold_starts(self) -> int:
        return self._created

    def environments(self) -> list[Handler]:
        """Every environment started so far (their handlers), busy or idle."""
        with self._ready:
            return list(self._all)

    def __call__(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        handler = self._borrow()
        outer = current_function()
        _running.name = self._name if self._name is not None else outer
        try:
            return handler(event, context)
        finally:
            _running.name = outer
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
            handler = self._factory()  # a cold start, outside the lock so others keep flowing
        except BaseException:
            with self._ready:
                self._created -= 1
                self._ready.notify()
            raise
        with self._ready:
            self._all.append(handler)
        return handler
