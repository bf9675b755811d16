"""Load test of the sandbox itself: many signed-in users at once through the local API of `make dev`.

Starts a real sandbox (`local.sandbox.start`: moto's server, the Bedrock emulator, the local API, the
worker pump), creates USERS users in its user pool and signs each in, then CLIENTS client threads send
ROUNDS rounds of requests: mostly POST /chat (new conversations and follow-ups that read the history
back), with GET /conversations, GET /conversations/{id}, POST /jobs and GET /jobs/{id} mixed in. The
tables grow from round to round, which is what broke the sandbox before (moto's DynamoDB cost grew with
the table, and concurrent transactions raced). The clients run in their own process, so the load
generator does not share the sandbox's GIL, as a browser would not.

Printed per round: requests, throughput, p50/p99 latency, counts per status and the conversations
table's size; then per route over the whole run, the most common refusals and any answer not saved.
Goal: 0 5xx. BENCH_QUICK=1 runs a short version (3 rounds of 300).
"""

from __future__ import annotations

import http.client
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
QUICK = bool(os.environ.get("BENCH_QUICK"))
CLIENTS = 48  # one signed-in user each, with their own conversations (so no 409 by design), and each user
USERS = CLIENTS  # well under the per-user request rate (a user is one browser tab sending a request a second)
ROUNDS = 3
REQUESTS_PER_ROUND = 300 if QUICK else 1200
PASSWORD = "Load-Passw0rd!2026"
REPORT: Any = sys.stdout  # where the figures go (the sandbox's own stdout is silenced)
# (weight, route) of one client step; follow-ups dominate, as in a chat UI.
MIX = [(45, "chat_follow_up"), (15, "chat_new"), (10, "list"), (10, "read"), (12, "job_submit"), (8, "job_status")]


# --- the client side (its own process) --------------------------------------------------------------
class Client:
    """One user's session over a keep-alive connection, like a browser tab."""

    def __init__(self, api_url: str, token: str, seed: int) -> None:
        parts = urlsplit(api_url)
        self.host, self.port, self.prefix = parts.hostname or "127.0.0.1", parts.port or 80, parts.path
        self.token = token
        self.random = random.Random(seed)
        self.connection: http.client.HTTPConnection | None = None
        self.conversation: str | None = None
        self.turns = 0
        self.conversations: list[str] = []
        self.jobs: list[str] = []

    def request(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Authorization": self.token, "Content-Type": "application/json"}
        failures: list[str] = []
        for attempt in (1, 2):  # a keep-alive connection the server closed is reopened once
            if self.connection is None:
                self.connection = http.client.HTTPConnection(self.host, self.port, timeout=90)
            try:
                self.connection.request(method, self.prefix + path, body=data, headers=headers)
                response = self.connection.getresponse()
                text = response.read()
                if response.getheader("Connection", "").lower() == "close":
                    self.connection.close()
                    self.connection = None
                try:
                    return response.status, json.loads(text) if text else None
                except json.JSONDecodeError:
                    return response.status, {"message": text[:200].decode("utf-8", "replace")}
            except (OSError, http.client.HTTPException) as error:
                self.connection.close()
                self.connection = None
                failures.append(f"{type(error).__name__}: {error}")
                if attempt == 2 or isinstance(error, TimeoutError):
                    return 0, {"message": " then ".join(failures)}
        raise AssertionError("unreachable")

    def step(self, index: int) -> dict[str, Any]:
        route = self.random.choices([name for _, name in MIX], weights=[weight for weight, _ in MIX])[0]
        if route == "chat_follow_up" and (self.conversation is None or self.turns >= 12):
            route = "chat_new"
        if route in ("read", "job_status") and not (self.conversations if route == "read" else self.jobs):
            route = "list"
        started = time.monotonic()
        if route in ("chat_new", "chat_follow_up"):
            body: dict[str, Any] = {"message": f"Paris is in France. Question {index}: where is Paris?"}
            if route == "chat_follow_up":
                body["conversation_id"] = self.conversation
            status, answer = self.request("POST", "/chat", body)
            if status == 200 and answer.get("conversation_id"):
                if route == "chat_new":
                    self.conversations.append(answer["conversation_id"])
                    self.turns = 0
                self.conversation = answer["conversation_id"]
                self.turns += 1
        elif route == "list":
            status, answer = self.request("GET", "/conversations")
        elif route == "read":
            status, answer = self.request("GET", f"/conversations/{self.random.choice(self.conversations)}")
        elif route == "job_submit":
            status, answer = self.request("POST", "/jobs", {"message": f"Rome is in Italy. Job {index}?"})
            if status == 202:
                self.jobs.append(answer["job_id"])
        else:
            status, answer = self.request("GET", f"/jobs/{self.random.choice(self.jobs)}")
        result = {"route": route, "status": status, "latency_s": time.monotonic() - started}
        if status >= 400 or status == 0:
            result["message"] = str((answer or {}).get("message", ""))[:300]
        if status == 200 and route.startswith("chat") and answer.get("saved") is False:
            result["unsaved"] = str(answer.get("save_error") or answer.get("degraded_reason") or "")[:300]
        return result


def run_round(clients: list[Client], requests: int, first_index: int) -> list[dict[str, Any]]:
    """Every client sends requests back to back until the round's count is used up."""
    lock = threading.Lock()
    results: list[dict[str, Any]] = []
    indexes = iter(range(first_index, first_index + requests))

    def session(client: Client) -> None:
        while True:
            with lock:
                index = next(indexes, None)
            if index is None:
                return
            outcome = client.step(index)
            with lock:
                results.append(outcome)

    with ThreadPoolExecutor(max_workers=len(clients)) as pool:
        list(pool.map(session, clients))
    return results


def drive() -> None:
    """Client process: read the plan on stdin, run each round on a go, write one JSON line per round."""
    plan = json.loads(sys.stdin.readline())
    clients = [Client(plan["api_url"], token, seed) for seed, token in enumerate(plan["tokens"])]
    for number in range(plan["rounds"]):
        sys.stdin.readline()  # the sandbox side says go (after it counted the table's items)
        started = time.monotonic()
        results = run_round(clients, plan["requests"], number * plan["requests"])
        print(json.dumps({"elapsed_s": time.monotonic() - started, "results": results}), flush=True)


# --- the sandbox side -------------------------------------------------------------------------------
def templates_dir(tmp: Path) -> Path:
    """cdk.out.local when `make dev` synthesized it from the current sources, else a fresh synth."""
    local = ROOT / "cdk.out.local"
    stamp = local / ".stamp"
    sources = [ROOT / "app.py", ROOT / "cdk.json", *(ROOT / "stacks").rglob("*.py")]
    if stamp.exists() and all(source.stat().st_mtime <= stamp.stat().st_mtime for source in sources):
        return local
    out = tmp / "cdk.out"
    subprocess.run(
        [sys.executable, str(ROOT / "tools" / "synth_templates.py"), str(out)],
        check=True,
        stdout=subprocess.DEVNULL,
        env={**os.environ, "CDK_DISABLE_VERSION_CHECK": "1"},
    )
    return out


def table_items(sandbox: Any) -> int:
    import boto3

    dynamodb = boto3.client("dynamodb", endpoint_url=sandbox.aws_url, region_name=sandbox.region)
    name = sandbox.chat_env["TABLE_NAME"]
    total, start = 0, None
    while True:
        page = dynamodb.scan(TableName=name, Select="COUNT", **({"ExclusiveStartKey": start} if start else {}))
        total += page["Count"]
        start = page.get("LastEvaluatedKey")
        if not start:
            return total


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else float("nan")


def statuses(results: list[dict[str, Any]]) -> str:
    counts = Counter(r["status"] for r in results)
    return " ".join(f"{status or 'conn'}:{n}" for status, n in sorted(counts.items()))


def say(text: str = "") -> None:
    print(text, file=REPORT, flush=True)


def quiet_stdout() -> Any:
    """The report's own stream; the sandbox's logs and EMF lines (stdout, as in Lambda) go to /dev/null."""
    report = os.fdopen(os.dup(1), "w", buffering=1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.close(devnull)
    return report


def main() -> None:
    from local import sandbox as sandbox_module
    from local.users import signed_in_users

    warnings.filterwarnings("ignore")
    global REPORT
    REPORT = quiet_stdout()
    say(f"sandbox load test: {USERS} users, {CLIENTS} parallel clients, {ROUNDS} rounds of {REQUESTS_PER_ROUND} "
        f"requests (mix: {', '.join(f'{name} {weight}%' for weight, name in MIX)})")  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        sandbox_module.STATE_FILE = Path(tmp) / "state.json"  # never clobber a running `make dev`'s state
        sandbox = sandbox_module.start(cdk_out=templates_dir(Path(tmp)), progress=lambda message: None)
        try:
            tokens = signed_in_users(sandbox, USERS, prefix="load", password=PASSWORD)
            plan = {
                "api_url": sandbox.api_url,
                "tokens": [tokens[i % USERS] for i in range(CLIENTS)],
                "rounds": ROUNDS,
                "requests": REQUESTS_PER_ROUND,
            }
            limit = sandbox.chat_env.get("USER_REQUESTS_PER_MINUTE", "0")
            say(f"  per-user limit in the sandbox: {limit} requests/min (0: none); 429s are that limit, not errors")
            rows, everything = run_rounds(sandbox, plan)
        finally:
            sandbox.stop()
    say(f"{'round':>5} {'items before':>12} {'requests':>8} {'seconds':>7} {'req/s':>6} {'p50 ms':>7} {'p99 ms':>7} "
          f"{'5xx':>4}  statuses")  # fmt: skip
    for row in rows:
        say(f"{row['round']:5d} {row['items']:12d} {row['requests']:8d} {row['elapsed_s']:7.1f} "
              f"{row['requests'] / row['elapsed_s']:6.1f} {row['p50'] * 1000:7.0f} {row['p99'] * 1000:7.0f} "
              f"{row['5xx']:4d}  {row['statuses']}")  # fmt: skip
    say()
    say(f"{'route':>15} {'requests':>8} {'p50 ms':>7} {'p99 ms':>7}  statuses")
    by_route: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for result in everything:
        by_route[result["route"]].append(result)
    for route, results in sorted(by_route.items()):
        latencies = [r["latency_s"] for r in results]
        say(f"{route:>15} {len(results):8d} {percentile(latencies, 0.5) * 1000:7.0f} "
              f"{percentile(latencies, 0.99) * 1000:7.0f}  {statuses(results)}")  # fmt: skip
    failures = [r for r in everything if r["status"] >= 500 or r["status"] == 0]
    unsaved = [r for r in everything if "unsaved" in r]
    total = len(everything)
    elapsed = sum(row["elapsed_s"] for row in rows)
    say()
    say(f"  {total} requests in {elapsed:.1f} s ({total / elapsed:.1f}/s), 5xx or no answer: {len(failures)} "
        f"(goal 0), answers not saved: {len(unsaved)}")  # fmt: skip
    refused = [r for r in everything if r["status"] >= 400 or r["status"] == 0]
    for message, count in Counter(f"{r['status']} {r.get('message', '')}" for r in refused).most_common(5):
        say(f"  {count} x {message}")
    for message, count in Counter(r["unsaved"] for r in unsaved).most_common(2):
        say(f"  {count} x not saved: {message}")


def run_rounds(sandbox: Any, plan: dict[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    clients = subprocess.Popen(
        [sys.executable, __file__, "--drive"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert clients.stdin is not None and clients.stdout is not None
    clients.stdin.write(json.dumps(plan) + "\n")
    rows, everything = [], []
    try:
        for number in range(1, plan["rounds"] + 1):
            items = table_items(sandbox)
            clients.stdin.write("go\n")
            clients.stdin.flush()
            line = clients.stdout.readline()
            if not line:
                raise RuntimeError("the client process ended early")
            report = json.loads(line)
            results = report["results"]
            latencies = [r["latency_s"] for r in results]
            rows.append(
                {
                    "round": number,
                    "items": items,
                    "requests": len(results),
                    "elapsed_s": report["elapsed_s"],
                    "p50": percentile(latencies, 0.5),
                    "p99": percentile(latencies, 0.99),
                    "5xx": sum(r["status"] >= 500 or r["status"] == 0 for r in results),
                    "statuses": statuses(results),
                }
            )
            everything.extend(results)
            say(f"  round {number}: {len(results)} requests in {report['elapsed_s']:.1f} s")
    finally:
        clients.stdin.close()
        clients.wait(timeout=30)
    return rows, everything


if __name__ == "__main__":
    if sys.argv[1:] == ["--drive"]:
        drive()
    else:
        main()
