"""Polling the sandbox until something happened: one loop for the drill (tools/drill.py) and the sandbox tests.

Wall-clock polling is for what runs on other threads (pipelines, replication, the APIs); tests give it a generous
ceiling and assert outcomes, never how soon they came.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(condition: Callable[[], T], *, ceiling_s: float, poll_s: float = 0.25) -> T:
    """Poll until `condition()` is truthy (its value) or the ceiling passes (the last falsy value)."""
    end = time.monotonic() + ceiling_s
    while True:
        value = condition()
        if value or time.monotonic() >= end:
            return value
        time.sleep(poll_s)
