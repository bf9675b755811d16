"""Lambda entry points that build their handler on the first invocation instead of at import.

For the functions no user waits on at a cold start (the scheduled jobs, the durable workflow) or whose set-up
calls out (the WebSocket authorizer fetches the pool's keys): importing the module never needs its settings,
and a deployment with a broken environment fails its first invocation loudly, naming what is missing. A build
that fails keeps nothing: the next invocation tries again.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Handler = Callable[[Any, Any], Any]


def built_on_first_call(build: Callable[[], Handler]) -> Handler:
    """A handler that calls `build()` on its first invocation and then serves with what it returned."""
    built: list[Handler] = []

    def handle(event: Any, context: Any) -> Any:
        if not built:
            built.append(build())  # Lambda runs one invocation at a time per environment: no lock needed
        return built[0](event, context)

    return handle
