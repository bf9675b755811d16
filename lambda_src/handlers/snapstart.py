"""SnapStart runtime hooks, in one place: what init built must not be shared by the environments restored from it.

With SnapStart (config `cold_start.<function>.snap_start`) Lambda runs init once per published version, snapshots
the environment and resumes every new environment from that snapshot. Whatever init holds is then the same in
all of them, and stale:
- HTTP connections (botocore's urllib3 pools): a snapshot's sockets are dead or, worse, shared; the pools of
  every client made from the shared botocore session are closed before the snapshot and again after a restore.
- `random`'s state: seeded from os.urandom at import, so every restored environment would draw the same
  "random" retry jitter (the gateway's full-jitter backoff), which is what jitter is there to prevent. Reseeded.
- Time-based state read on the monotonic clock, which jumps across a snapshot and restore (breaker windows and
  open-until times, the AIMD limiters, the retry budget, the TTL caches of prompts, switches and curated
  answers): rather than reaching into each, the handler is built again after the restore (`bootstrap()`),
  which also makes new clients. The imports, the costly part of init, stay in the snapshot; the rebuild makes
  objects only (no network: clients connect on first use).
(`uuid.uuid4` reads os.urandom on each call, so ids stay unique without help; credentials come from the
environment Lambda sets on restore, read by clients on first use.)

Off SnapStart nothing here runs: `restorable` returns the built handler itself when the environment is not a
SnapStart init (AWS_LAMBDA_INITIALIZATION_TYPE, set by Lambda), so on-demand and provisioned cold starts are
unchanged. The hooks come from `snapshot_restore_py`, which the Python managed runtime provides; where it is
absent (this machine, the sandbox) a local stand-in records the hooks so tests can run them.
"""

from __future__ import annotations

import os
import random
import weakref
from collections.abc import Callable
from typing import Any

INITIALIZATION_TYPE = "AWS_LAMBDA_INITIALIZATION_TYPE"
SNAP_START = "snap-start"

Handler = Callable[[dict[str, Any], Any], Any]

# Every botocore client made from the shared session while SnapStart hooks are installed.
_clients: weakref.WeakSet[Any] = weakref.WeakSet()


class _LocalHooks:
    """Stands in for snapshot_restore_py where the runtime does not provide it: records the hooks in order."""

    def __init__(self) -> None:
        self.before_snapshot: list[Callable[[], None]] = []
        self.after_restore: list[Callable[[], None]] = []

    def register_before_snapshot(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        self.before_snapshot.append(lambda: func(*args, **kwargs))

    def register_after_restore(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        self.after_restore.append(lambda: func(*args, **kwargs))


local_hooks = _LocalHooks()


def _hooks() -> Any:
    try:
        import snapshot_restore_py  # provided by Lambda's Python managed runtimes (3.12+)
    except ImportError:
        return local_hooks
    return snapshot_restore_py


def snapshotting() -> bool:
    """Whether this init is the one Lambda snapshots (SnapStart), from the variable Lambda sets for it."""
    return os.environ.get(INITIALIZATION_TYPE) == SNAP_START


def restorable(build: Callable[[], Handler]) -> Handler:
    """The handler `build()` makes; in a SnapStart init, a handler that is built again after each restore."""
    if not snapshotting():
        return build()
    _track_clients()
    current = [build()]

    def before_snapshot() -> None:
        close_connections()

    def after_restore() -> None:
        close_connections()  # the old handler's clients: nothing of theirs is reused
        random.seed()  # from os.urandom: each restored environment its own jitter
        current[0] = build()

    hooks = _hooks()
    hooks.register_before_snapshot(before_snapshot)
    hooks.register_after_restore(after_restore)

    def handle(event: dict[str, Any], context: Any) -> Any:
        return current[0](event, context)

    return handle


def close_connections() -> int:
    """Close the connection pools of every tracked client (each stays usable: it opens new connections on its
    next call). Returns how many clients were closed."""
    closed = 0
    for client in list(_clients):
        client.close()
        closed += 1
    return closed


def _track_clients() -> None:
    """Make every client the shared botocore session creates register itself (botocore's creating-client-class
    event lets a base class be added to each client class; that base records its instances)."""
    from handlers.wiring import shared_session

    shared_session().register("creating-client-class", _add_tracking_base, unique_id="bulwark-snapstart")


class _Tracked:
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _clients.add(self)


def _add_tracking_base(base_classes: list[type], **_: Any) -> None:
    if _Tracked not in base_classes:
        base_classes.insert(0, _Tracked)
