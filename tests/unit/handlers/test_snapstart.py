"""SnapStart runtime hooks (handlers/snapstart.py): registered only in a SnapStart init; before the snapshot they
close every client's connection pools; after a restore they close them again, reseed `random` and build the handler
again (new clients, fresh breakers, limiters and TTL caches). The hooks are run here as Lambda would run them."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from typing import Any

import pytest

from bench.cold_start import ENV
from handlers import snapstart
from handlers.wiring import shared_session


@pytest.fixture
def hooks(monkeypatch: pytest.MonkeyPatch) -> snapstart._LocalHooks:
    fresh = snapstart._LocalHooks()
    monkeypatch.setattr(snapstart, "local_hooks", fresh)
    return fresh


def _pool_count(client: Any) -> int:
    return len(client._endpoint.http_session._manager.pools)


def test_outside_a_snapstart_init_the_built_handler_is_returned_as_is(
    hooks: snapstart._LocalHooks, monkeypatch: pytest.MonkeyPatch
) -> None:
    for initialization in (None, "on-demand", "provisioned-concurrency"):
        if initialization is None:
            monkeypatch.delenv(snapstart.INITIALIZATION_TYPE, raising=False)
        else:
            monkeypatch.setenv(snapstart.INITIALIZATION_TYPE, initialization)
        built: list[int] = []

        def handler(event: dict[str, Any], context: Any) -> str:
            return "answer"

        def build(built: list[int] = built) -> Any:
            built.append(1)
            return handler

        assert snapstart.restorable(build) is handler
        assert built == [1]
    assert hooks.before_snapshot == [] and hooks.after_restore == []


def test_hooks_close_pools_reseed_random_and_rebuild_the_handler(
    hooks: snapstart._LocalHooks, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(snapstart.INITIALIZATION_TYPE, snapstart.SNAP_START)
    built: list[Any] = []

    def build() -> Any:
        client = shared_session().create_client("dynamodb", region_name="us-east-1")
        generation = len(built)
        built.append(client)
        return lambda event, context: (generation, client)

    handler = snapstart.restorable(build)
    assert len(hooks.before_snapshot) == 1 and len(hooks.after_restore) == 1
    assert handler({}, None)[0] == 0
    init_client = built[0]
    # A connection pool opened during init (no network needed to create the pool).
    init_client._endpoint.http_session._manager.connection_from_url("https://dynamodb.us-east-1.amazonaws.com")
    assert _pool_count(init_client) == 1

    for hook in hooks.before_snapshot:
        hook()
    assert _pool_count(init_client) == 0  # nothing of it is in the snapshot

    random.seed(1234)
    snapshot_draw = random.random()
    random.seed(1234)  # the state every restored environment would share
    init_client._endpoint.http_session._manager.connection_from_url("https://dynamodb.us-east-1.amazonaws.com")
    for hook in hooks.after_restore:
        hook()
    assert random.random() != snapshot_draw
    assert _pool_count(init_client) == 0
    generation, client = handler({}, None)
    assert generation == 1 and client is built[1] and client is not init_client


def test_the_real_hook_library_is_used_when_the_runtime_provides_it(
    hooks: snapstart._LocalHooks, monkeypatch: pytest.MonkeyPatch
) -> None:
    recorded: list[str] = []
    library = type(sys)("snapshot_restore_py")
    library.register_before_snapshot = lambda func: recorded.append("before")  # type: ignore[attr-defined]
    library.register_after_restore = lambda func: recorded.append("after")  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "snapshot_restore_py", library)
    monkeypatch.setenv(snapstart.INITIALIZATION_TYPE, snapstart.SNAP_START)
    snapstart.restorable(lambda: lambda event, context: None)
    assert recorded == ["before", "after"]
    assert hooks.before_snapshot == [] and hooks.after_restore == []


_HANDLER_CHECK = """
import json, sys
import handlers.{module} as module, handlers.snapstart as snapstart
hooks = snapstart.local_hooks
first = {{id(c) for c in snapstart._clients}}
for hook in hooks.before_snapshot:
    hook()
for hook in hooks.after_restore:
    hook()
after = {{id(c) for c in snapstart._clients}}
print(json.dumps([len(hooks.before_snapshot), len(hooks.after_restore), len(first), len(after - first),
                  module.handler.__name__]))
"""


@pytest.mark.parametrize("module", ["chat", "worker"])
def test_each_handler_registers_the_hooks_in_a_snapstart_init(module: str) -> None:
    """In a SnapStart init (the deployment's environment), the module's handler is restorable: one hook each,
    the clients its bootstrap made are tracked, and the restore builds new ones."""
    env = {**ENV, snapstart.INITIALIZATION_TYPE: snapstart.SNAP_START}
    out = subprocess.run(
        [sys.executable, "-c", _HANDLER_CHECK.format(module=module)], env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr[-2000:]
    before, after, clients, new_clients, name = json.loads(out.stdout.strip().splitlines()[-1])
    assert (before, after, name) == (1, 1, "handle")
    assert clients >= 1 and new_clients >= 1


def test_on_demand_init_registers_nothing() -> None:
    code = (
        "import handlers.chat as c, handlers.snapstart as s; print(len(s.local_hooks.after_restore), len(s._clients))"
    )
    out = subprocess.run([sys.executable, "-c", code], env=ENV, capture_output=True, text=True, check=True)
    assert out.stdout.split()[-2:] == ["0", "0"]
