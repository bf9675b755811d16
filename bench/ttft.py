"""Time to first token (issue 13): streamed answers over the sandbox's WebSocket API against POST /chat, same run.

Starts a real sandbox (moto, the Bedrock emulator with its ConverseStream pacing from local/emulator.json, the local
API and the WebSocket gateway per region) and asks the same questions, one at a time, in two scenarios:

  healthy          every target answers
  primary failing  the primary target answers every call with ThrottlingException (the gateway fails over to the
                   secondary before the first token: failover acts before the stream commits)

For each path it prints p50/p99 of the time to first token (WebSocket: the first `delta` message; POST /chat: the
whole body, which is when its first token reaches the user) and of the full answer (WebSocket: the `end` message),
and the ratio of the stream's first token to /chat's answer. Wall-clock figures on a shared machine: compare the
two paths of one run, not runs with each other.

    make bench             # part of the benchmarks
    BENCH_QUICK=1 python bench/ttft.py
"""

from __future__ import annotations

import json
import os
import tempfile
import time
import urllib.error
import urllib.request
import warnings
from pathlib import Path
from typing import Any

QUICK = bool(os.environ.get("BENCH_QUICK"))
REQUESTS = 8 if QUICK else 30
PRIMARY = "us.amazon.nova-lite-v1:0@us-east-1"
# The per-user request rate (limits.user_requests_per_minute, 60) would refuse one user's 2 x REQUESTS x 2 calls:
# questions go round-robin over enough bench users to stay under it.
USERS = 6
PASSWORD = "Ttft-Passw0rd!2026"
QUESTIONS = [
    "Mount Everest is the highest mountain on Earth, in the Himalaya between Nepal and Tibet. Which is the highest?",
    "The Pacific is the largest and deepest ocean, larger than all land together. Which ocean is the largest?",
    "Paris is the capital of France and its largest city, on the Seine. What is the capital of France?",
]


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else float("nan")


def set_faults(sandbox: Any, settings: dict[str, Any]) -> None:
    request = urllib.request.Request(sandbox.emulator_url + "/_emulator/faults", data=json.dumps(settings).encode())
    urllib.request.urlopen(request).close()


def ask_stream(url: str, token: str, question: str) -> tuple[float, float, bool]:
    """(seconds to the first delta, seconds to the end, incomplete) over a fresh connection per question, as a
    page would reuse one: the connect is timed apart and left out (the UI opens the socket before the first ask)."""
    from websockets.sync.client import connect

    with connect(f"{url}?token={token}") as socket:
        started = time.perf_counter()
        socket.send(json.dumps({"action": "chat", "message": question, "requestId": "b"}))
        first = None
        while True:
            message = json.loads(socket.recv(timeout=120))
            now = time.perf_counter() - started
            if message["type"] == "delta" and first is None:
                first = now
            if message["type"] == "error":
                raise RuntimeError(f"stream refused: {message['status']} {message['message']}")
            if message["type"] == "end":
                return (first if first is not None else now), now, bool(message.get("incomplete"))


def ask_rest(api_url: str, token: str, question: str) -> float:
    body = json.dumps({"message": question}).encode()
    request = urllib.request.Request(
        api_url + "/chat", data=body, headers={"Authorization": token, "Content-Type": "application/json"}
    )
    started = time.perf_counter()
    with urllib.request.urlopen(request, timeout=120) as response:
        response.read()
    return time.perf_counter() - started


def run(sandbox: Any, tokens: list[str]) -> dict[str, dict[str, list[float]]]:
    url = sandbox.regions[sandbox.region].stream.url
    results: dict[str, dict[str, list[float]]] = {}
    base = sandbox.emulator_faults
    scenarios = {
        "healthy": base,
        "primary failing": {
            **base,
            "targets": {PRIMARY: {**base.get("default", {}), "errors": {"ThrottlingException": 1.0}}},
        },
    }
    for name, faults in scenarios.items():
        set_faults(sandbox, faults)
        first, full, rest, incomplete = [], [], [], 0
        try:
            for index in range(REQUESTS):
                question = QUESTIONS[index % len(QUESTIONS)]
                token = tokens[index % len(tokens)]
                # Alternate the order so neither path always runs on a warmer environment.
                if index % 2:
                    rest.append(ask_rest(sandbox.api_url, token, question))
                    ttft, end, broken = ask_stream(url, token, question)
                else:
                    ttft, end, broken = ask_stream(url, token, question)
                    rest.append(ask_rest(sandbox.api_url, token, question))
                first.append(ttft)
                full.append(end)
                incomplete += broken
        finally:
            set_faults(sandbox, base)
        results[name] = {"first": first, "full": full, "rest": rest, "incomplete": [float(incomplete)]}
    return results


def main() -> None:
    from bench.load import quiet_stdout, templates_dir
    from local import sandbox as sandbox_module
    from local.users import signed_in_users

    warnings.filterwarnings("ignore")
    report = quiet_stdout()

    def say(text: str = "") -> None:
        print(text, file=report, flush=True)

    say(f"time to first token: {REQUESTS} questions per scenario, WebSocket stream vs POST /chat, same sandbox")
    with tempfile.TemporaryDirectory() as tmp:
        sandbox_module.STATE_FILE = Path(tmp) / "state.json"  # never clobber a running `make dev`'s state
        sandbox = sandbox_module.start(cdk_out=templates_dir(Path(tmp)), progress=lambda message: None)
        try:
            if sandbox.regions[sandbox.region].stream is None:
                say("  streaming is off in this configuration (streaming.enabled): nothing to measure")
                return
            tokens = signed_in_users(sandbox, USERS, prefix="ttft", password=PASSWORD)
            ask_rest(sandbox.api_url, tokens[0], QUESTIONS[0])  # cold starts out of the figures
            ask_stream(sandbox.regions[sandbox.region].stream.url, tokens[0], QUESTIONS[0])
            results = run(sandbox, tokens)
        finally:
            sandbox.stop()
    say(f"{'scenario':<16} {'path':<22} {'p50 ms':>7} {'p99 ms':>7}")
    for name, series in results.items():
        rows = [
            ("stream first token", series["first"]),
            ("stream full answer", series["full"]),
            ("POST /chat answer", series["rest"]),
        ]
        for label, values in rows:
            say(f"{name:<16} {label:<22} {percentile(values, 0.5) * 1000:7.0f} {percentile(values, 0.99) * 1000:7.0f}")
        ratio = percentile(series["first"], 0.5) / percentile(series["rest"], 0.5)
        say(f"{name:<16} {'first token / /chat':<22} {ratio:7.2f}   (p50; incomplete streams: "
            f"{int(series['incomplete'][0])})")  # fmt: skip


if __name__ == "__main__":
    main()
