"""Powertools' per-process request state, made per thread for execution environments that share a process.

Powertools keeps part of a request's state in class attributes, that is once per process: the REST
resolver's current event and Lambda context (`BaseRouter.current_event`, set by every `resolve()`), and
the metric set that every `Metrics()` shares. In Lambda a process is one execution environment serving
one request at a time, so that is right. The sandbox runs many environments as threads of one process,
where those attributes mix concurrent requests: a route reading `app.current_event` sees another
request's body and another user's claims, and a flush serializes metrics another request is adding
(`RuntimeError: dictionary changed size during iteration`). A sandbox request runs on one thread from
start to end, so `isolate()` gives each thread its own copy of that state: nothing changes in the
Lambda code, nor for a single thread. `local.lambda_pool.ExecutionEnvironments` calls it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

_lock = threading.Lock()
_isolated: list[str] = []


class _PerThread:
    """A data descriptor whose value is per thread; unset, it reads as a missing attribute."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._values = threading.local()

    def __get__(self, instance: Any, owner: Any = None) -> Any:
        try:
            return self._values.value
        except AttributeError:
            raise AttributeError(self._name) from None

    def __set__(self, instance: Any, value: Any) -> None:
        self._values.value = value


class _PerThreadWhenShared:
    """An instance attribute that, while it holds the process-wide `shared` dict, reads as this thread's
    own dict instead (a fresh copy of `shared` the first time)."""

    def __init__(self, name: str, shared: dict[Any, Any]) -> None:
        self._name = name
        self._shared = shared
        self._values = threading.local()
        self._copies: list[dict[Any, Any]] = []  # every thread's copy (kept: their ids stay unique)
        self._copies_lock = threading.Lock()

    def __get__(self, instance: Any, owner: Any = None) -> Any:
        if instance is None:
            return self
        try:
            stored = instance.__dict__[self._name]
        except KeyError:
            raise AttributeError(self._name) from None
        if stored is not self._shared:
            return stored
        try:
            return self._values.value
        except AttributeError:
            self._values.value = dict(self._shared)
            with self._copies_lock:
                self._copies.append(self._values.value)
            return self._values.value

    def __set__(self, instance: Any, value: Any) -> None:
        # Metrics() hands its provider `metric_set=self.metric_set`, which reads as the constructing thread's
        # copy: stored as it is, that copy would become one dict shared by every thread. Store the shared
        # dict instead, so each thread keeps reading its own.
        with self._copies_lock:
            if any(value is copy for copy in self._copies):
                value = self._shared
        instance.__dict__[self._name] = value


def isolate() -> list[str]:
    """Make Powertools' process-wide request state per thread (once per process); what was isolated."""
    with _lock:
        if not _isolated:
            for name, step in (("resolver event and context", _isolate_resolver), ("metric sets", _isolate_metrics)):
                if step():
                    _isolated.append(name)
        return list(_isolated)


def _isolate_resolver() -> bool:
    from aws_lambda_powertools.event_handler.api_gateway import BaseRouter

    names = ("current_event", "lambda_context")
    descriptors = {name: _PerThread(name) for name in names}
    for name, descriptor in descriptors.items():
        setattr(BaseRouter, name, descriptor)  # reads and writes through an instance
    # resolve() assigns `BaseRouter.current_event = ...` on the class: only a metaclass sees that.
    metaclass = type(BaseRouter)
    BaseRouter.__class__ = type(f"PerThread{metaclass.__name__}", (metaclass,), dict(descriptors))
    return True


def _isolate_metrics() -> bool:
    from aws_lambda_powertools.metrics import Metrics
    from aws_lambda_powertools.metrics.provider.cloudwatch_emf.cloudwatch import AmazonCloudWatchEMFProvider

    shared = {"metric_set": Metrics._metrics, "dimension_set": Metrics._dimensions, "metadata_set": Metrics._metadata}
    owners: tuple[Callable[..., Any], ...] = (Metrics, AmazonCloudWatchEMFProvider)
    for name, values in shared.items():
        descriptor = _PerThreadWhenShared(name, values)  # one per name: it knows every copy it handed out
        for owner in owners:
            setattr(owner, name, descriptor)
    return True
