"""The chat Lambda's init loads only what every request needs (issue 8's cold-start budget, bench/cold_start.py):
deep health, the jobs side and curated answers are loaded by the first request that uses them."""

from __future__ import annotations

import json
import subprocess
import sys
import threading

from bench.cold_start import ENV
from handlers.wiring import Deferred

DEFERRED = ["core.health", "adapters.health", "core.jobs", "adapters.jobs", "core.curated", "adapters.curated_answers",
            # Powertools' feature flags (and the parameters utility and boto3 its package imports): the first
            # switch read, in the first request, loads them (adapters/feature_flags.py).
            "aws_lambda_powertools.utilities.feature_flags", "aws_lambda_powertools.utilities.parameters",
            "boto3"]  # fmt: skip
# (The prompt catalog is read by every request: it is loaded at init, as it should be.)


def test_a_cold_start_with_the_default_deployments_environment_leaves_route_specific_modules_unloaded() -> None:
    code = f"import handlers.chat, json, sys; print(json.dumps([m for m in {DEFERRED!r} if m in sys.modules]))"
    out = subprocess.run([sys.executable, "-c", code], env=ENV, capture_output=True, text=True, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


def test_init_runs_with_the_collector_paused_and_leaves_it_on_with_what_init_built_frozen() -> None:
    code = "import gc, handlers.chat; print(gc.isenabled(), gc.get_freeze_count())"
    out = subprocess.run([sys.executable, "-c", code], env=ENV, capture_output=True, text=True, check=True)
    enabled, frozen = out.stdout.split()[-2:]
    assert enabled == "True" and int(frozen) > 10_000


def test_a_deferred_part_is_built_once_on_first_use_even_by_concurrent_requests() -> None:
    built: list[int] = []
    release = threading.Event()

    def build() -> str:
        release.wait(timeout=5)
        built.append(1)
        return "part"

    part = Deferred(build)
    assert built == []  # nothing at init
    results: list[str] = []
    threads = [threading.Thread(target=lambda: results.append(part.get())) for _ in range(4)]
    for thread in threads:
        thread.start()
    release.set()
    for thread in threads:
        thread.join()
    assert results == ["part"] * 4 and built == [1]


def test_a_deferred_none_stays_none_without_building_again() -> None:
    calls: list[int] = []
    part: Deferred[None] = Deferred(lambda: calls.append(1))
    assert part.get() is None and part.get() is None and calls == [1]
