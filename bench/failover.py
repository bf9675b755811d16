"""Failover benchmark: the gateway against a naive single-target baseline, on the emulator.

Scenarios (the primary's faults; the secondary stays healthy): healthy, 50 % throttled,
100 % throttled, down (503), resetting connections, hanging 30 s. Each runs back to back and
paced (one request every 3 s for a window that crosses the breaker's 30 s open time), through
  gateway:  ModelGateway over [primary us-east-1, secondary us-west-2], default settings
            (throttles are back-pressure: each target's adaptive concurrency limit)
  before:   the same gateway as it was before that (throttles counted as breaker failures), so a
            change in the figures shows within one run, whatever the machine's load
  baseline: langchain-aws ChatBedrockConverse on the primary alone, default botocore settings
Each system gets its own emulator so per-target call counts are its own. Printed: success rate,
p50/p99 latency, calls to each target per request, and ratios. Also the healthy-path overhead
of the gateway over a direct boto3 converse call (p50, same emulator, zero injected latency).

    make bench            # full run (about 10 minutes)
    BENCH_QUICK=1 make bench   # shorter windows, same scenarios
    BENCH_CLAIMS_ONLY=1 python bench/failover.py   # only the timing claims (about half a minute)

Last, the timing claims the tests leave to this bench (tests assert behaviour, never the wall
clock): how soon a hedge answers, how long a timed-out primary holds the user, a half-open probe
into a dead target, skipping an open breaker, shedding (goal <= 100 ms), a deadline with every
target hanging, and a hung LangChain provider abandoned at its timeout.
"""

from __future__ import annotations

import os
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "BulwarkBench")  # before Powertools is imported

import botocore.session

from adapters.bedrock import BedrockTarget, client_config
from core.gateway import GatewaySettings, ModelGateway
from core.models import Message
from local.bedrock_emulator import BedrockEmulator

QUICK = bool(os.environ.get("BENCH_QUICK"))
PRIMARY = ("us.amazon.nova-lite-v1:0", "us-east-1")
SECONDARY = ("us.amazon.nova-pro-v1:0", "us-west-2")
LATENCY = {"latency_ms": [20, 60]}
SCENARIOS: dict[str, dict[str, Any]] = {
    "healthy": {},
    "throttled 50%": {"errors": {"ThrottlingException": 0.5}},
    "throttled 100%": {"errors": {"ThrottlingException": 1.0}},
    "down (503)": {"down": True},
    "resetting": {"reset_rate": 1.0},
    "hanging 30 s": {"hang_s": 30},
}
BACK_TO_BACK = 100 if QUICK else 200
SYSTEMS = ("gateway", "before", "baseline")
PACED_EVERY_S = 3.0
PACED_WINDOW_S = 66.0 if QUICK else 150.0  # crosses the 30 s open window several times
# The baseline spends seconds per failing request (default botocore retries, 60 s read timeout):
# fewer requests for it in failing scenarios; its figures are per request, so they compare.
BASELINE_FAILING_CAP = 20
BASELINE_HANGING_CAP = 3
SYSTEM = "Paris is the capital of France. Berlin is the capital of Germany."
QUESTION = [Message(role="user", text="What is the capital of France?")]
CREDS = {"aws_access_key_id": "bench", "aws_secret_access_key": "bench"}


@dataclass
class Result:
    latencies: list[float]
    ok: int
    requests: int
    primary_calls: int
    secondary_calls: int

    def row(self) -> dict[str, float]:
        ordered = sorted(self.latencies) or [0.0]
        return {
            "success": self.ok / max(1, self.requests),
            "p50": statistics.median(ordered),
            "p99": ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))],
            "primary/req": self.primary_calls / max(1, self.requests),
            "secondary/req": self.secondary_calls / max(1, self.requests),
        }


def emulator_for(faults: dict[str, Any]) -> BedrockEmulator:
    return BedrockEmulator(
        {"seed": 11, "default": LATENCY, "targets": {f"{PRIMARY[0]}@{PRIMARY[1]}": {**LATENCY, **faults}}}
    ).start()


def make_gateway(url: str, *, before: bool = False) -> Callable[[], bool]:
    session = botocore.session.get_session()

    settings = GatewaySettings(throttle_as_failure=before)

    def target(model: tuple[str, str]) -> BedrockTarget:
        return BedrockTarget(
            prewarm=(settings.cold_timeout_s, settings.min_timeout_s, settings.probe_timeout_s),
            client_factory=lambda config: session.create_client(
                "bedrock-runtime", region_name=model[1], endpoint_url=url, config=config, **CREDS
            ),
            model_id=model[0],
            region=model[1],
            max_tokens=256,
        )

    gateway = ModelGateway(targets=[target(PRIMARY), target(SECONDARY)], settings=settings)

    def ask() -> bool:
        reply = gateway.converse(system=SYSTEM, messages=QUESTION, deadline_s=25.0, scope="bench")
        return not reply.degraded

    return ask


def make_baseline(url: str) -> Callable[[], bool]:
    from langchain_aws import ChatBedrockConverse

    model = ChatBedrockConverse(
        model=PRIMARY[0],
        region_name=PRIMARY[1],
        endpoint_url=url,
        max_tokens=256,
        **CREDS,  # type: ignore[arg-type]
    )

    def ask() -> bool:
        try:
            model.invoke([("system", SYSTEM), ("human", QUESTION[0].text)])
            return True
        except Exception:
            return False

    return ask


def run(ask: Callable[[], bool], emulator: BedrockEmulator, *, paced: bool, cap: int | None = None) -> Result:
    latencies, ok, requests = [], 0, 0
    started = time.monotonic()
    while True:
        if paced and time.monotonic() - started >= PACED_WINDOW_S:
            break
        if not paced and requests >= (cap or BACK_TO_BACK):
            break
        if cap is not None and requests >= cap:
            break
        begin = time.monotonic()
        success = ask()
        took = time.monotonic() - begin
        latencies.append(took)
        ok += success
        requests += 1
        if paced:
            time.sleep(max(0.0, PACED_EVERY_S - took))
    return Result(latencies, ok, requests, emulator.calls(*PRIMARY), emulator.calls(*SECONDARY))


def measure(system: str, scenario: str, paced: bool) -> Result:
    emulator = emulator_for(SCENARIOS[scenario])
    cap = None
    if system == "baseline" and scenario != "healthy":
        cap = BASELINE_HANGING_CAP if scenario == "hanging 30 s" else BASELINE_FAILING_CAP
    try:
        if system == "baseline":
            ask = make_baseline(emulator.url)
        else:
            ask = make_gateway(emulator.url, before=system == "before")
        return run(ask, emulator, paced=paced, cap=cap)
    finally:
        emulator.stop()


def measure_both(scenario: str, paced: bool) -> dict[str, Result]:
    """Gateway, the gateway as before and baseline side by side, each on its own emulator."""
    results: dict[str, Result] = {}

    def one(system: str) -> None:
        results[system] = measure(system, scenario, paced)

    threads = [threading.Thread(target=one, args=(system,)) for system in SYSTEMS]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def overhead() -> tuple[float, float]:
    emulator = BedrockEmulator({"default": {"latency_ms": [0, 0]}}).start()
    try:
        session = botocore.session.get_session()
        # The same transport settings the gateway's clients use, so only the gateway's own work differs.
        direct = session.create_client(
            "bedrock-runtime", region_name=PRIMARY[1], endpoint_url=emulator.url, config=client_config(8.0), **CREDS
        )
        ask = make_gateway(emulator.url)
        request = {
            "modelId": PRIMARY[0],
            "system": [{"text": SYSTEM}],
            "messages": [{"role": "user", "content": [{"text": QUESTION[0].text}]}],
            "inferenceConfig": {"maxTokens": 256},
        }
        for _ in range(20):  # warm both paths
            direct.converse(**request)
            ask()
        d, g = [], []
        for _ in range(300):
            t = time.perf_counter()
            direct.converse(**request)
            d.append(time.perf_counter() - t)
            t = time.perf_counter()
            ask()
            g.append(time.perf_counter() - t)
        return statistics.median(d), statistics.median(g)
    finally:
        emulator.stop()


# --- timing claims: the figures the contract tests no longer assert against the wall clock ---------
CLAIM_REPEATS = 5 if QUICK else 20


def claim_gateway(url: str, *models: tuple[str, str], **settings: Any) -> ModelGateway:
    session = botocore.session.get_session()
    gateway_settings = GatewaySettings(**settings)
    targets = [
        BedrockTarget(
            prewarm=(gateway_settings.cold_timeout_s, gateway_settings.probe_timeout_s),
            client_factory=lambda config, m=m: session.create_client(
                "bedrock-runtime", region_name=m[1], endpoint_url=url, config=config, **CREDS
            ),
            model_id=m[0],
            region=m[1],
            max_tokens=256,
        )
        for m in models
    ]
    return ModelGateway(targets=targets, settings=gateway_settings)


def timed(call: Callable[[], Any]) -> tuple[Any, float]:
    started = time.perf_counter()
    try:
        result: Any = call()
    except Exception as error:  # the shed path raises Overloaded: its latency is the figure
        result = error
    return result, time.perf_counter() - started


def figure(name: str, samples: list[float], goal: str) -> str:
    return (
        f"{name}: p50 {statistics.median(samples) * 1000:.1f} ms, max {max(samples) * 1000:.1f} ms "
        f"over {len(samples)} (goal {goal})"
    )


def claims() -> list[str]:
    """Each claim on a fresh emulator (latency 5-15 ms), a few times over: figures, not verdicts."""
    from core.errors import AtCapacity, Overloaded
    from core.resilience import BreakerSettings

    ask = {"system": SYSTEM, "messages": QUESTION, "deadline_s": 25.0, "scope": "bench"}
    fast = {"default": {"latency_ms": [5, 15]}}
    primary_key = f"{PRIMARY[0]}@{PRIMARY[1]}"
    lines: list[str] = []

    def on(faults: dict[str, Any], run: Callable[[BedrockEmulator], list[float]]) -> list[float]:
        emulator = BedrockEmulator({**fast, "targets": {primary_key: {**fast["default"], **faults}}}).start()
        try:
            return run(emulator)
        finally:
            emulator.stop()

    def hedged(emulator: BedrockEmulator) -> list[float]:
        gw = claim_gateway(emulator.url, PRIMARY, SECONDARY, hedge_after_s=0.4)
        return [timed(lambda: gw.converse(**ask))[1] for _ in range(CLAIM_REPEATS)]

    lines.append(figure("hanging primary hedged after 400 ms, answered", on({"hang_s": 30}, hedged), "<= 500 ms"))

    def healthy_hedges(emulator: BedrockEmulator) -> list[float]:
        gw = claim_gateway(emulator.url, PRIMARY, SECONDARY, hedge_after_s=0.4)
        for _ in range(CLAIM_REPEATS * 5):
            gw.converse(**ask)
        return [float(emulator.calls(*SECONDARY))]

    [secondary_calls] = on({}, healthy_hedges)
    lines.append(
        f"healthy primary, hedge delay 400 ms (then 3x p95, >= 200 ms): {secondary_calls:.0f} hedges "
        f"in {CLAIM_REPEATS * 5} requests (goal 0)"
    )

    def timed_out(emulator: BedrockEmulator) -> list[float]:
        gw = claim_gateway(emulator.url, PRIMARY, SECONDARY, cold_timeout_s=2.0, hedging=False)
        return [timed(lambda: gw.converse(**{**ask, "deadline_s": 5.0}))[1] for _ in range(min(CLAIM_REPEATS, 5))]

    lines.append(
        figure("hanging primary cut at its 2 s attempt timeout, then answered", on({"hang_s": 30}, timed_out), "< 3 s")
    )

    def probe(emulator: BedrockEmulator) -> list[float]:
        samples = []
        for _ in range(min(CLAIM_REPEATS, 5)):
            gw = claim_gateway(
                emulator.url, PRIMARY, SECONDARY, probe_timeout_s=0.5, breaker=BreakerSettings(open_s=0.3)
            )
            emulator.set_faults({**fast, "targets": {primary_key: {"down": True}}})
            for _ in range(5):
                gw.converse(**ask)
            emulator.set_faults({**fast, "targets": {primary_key: {"hang_s": 10}}})
            time.sleep(0.35)  # past the open time: the next request carries the half-open probe
            samples.append(timed(lambda gw=gw: gw.converse(**ask))[1])
        return samples

    lines.append(figure("probe into a still-dead primary (probe timeout 500 ms), answered", on({}, probe), "< 1 s"))

    def skipped(emulator: BedrockEmulator) -> list[float]:
        gw = claim_gateway(emulator.url, PRIMARY, SECONDARY)
        for _ in range(5):
            gw.converse(**ask)
        return [timed(lambda: gw.converse(**ask))[1] for _ in range(CLAIM_REPEATS)]

    lines.append(figure("primary's breaker open: skipped, secondary answered", on({"down": True}, skipped), "< 500 ms"))

    def shed(emulator: BedrockEmulator) -> list[float]:
        gw = claim_gateway(emulator.url, PRIMARY)
        for _ in range(5):
            gw.converse(**ask)
        outcomes = [timed(lambda: gw.converse(**ask)) for _ in range(CLAIM_REPEATS)]
        if not all(isinstance(outcome, Overloaded) for outcome, _ in outcomes):
            raise RuntimeError("the single target's breaker did not shed")
        return [took for _, took in outcomes]

    lines.append(figure("single target, breaker open: shed (503 Retry-After)", on({"down": True}, shed), "<= 100 ms"))

    def full(emulator: BedrockEmulator) -> list[float]:
        gw = claim_gateway(emulator.url, PRIMARY)
        outcomes = [timed(lambda: gw.converse(**ask)) for _ in range(CLAIM_REPEATS * 5)]
        if not all(isinstance(outcome, AtCapacity) for outcome, _ in outcomes):
            raise RuntimeError("the fully throttled single target did not shed as back-pressure")
        return [took for _, took in outcomes]

    lines.append(
        figure(
            "single target fully throttled: shed (429 Retry-After), at its limit or after the throttle",
            on({"errors": {"ThrottlingException": 1.0}}, full),
            "<= 100 ms",
        )
    )

    def all_down(emulator: BedrockEmulator) -> list[float]:
        emulator.set_faults({"default": {"hang_s": 30}})
        gw = claim_gateway(emulator.url, PRIMARY, SECONDARY)
        return [timed(lambda: gw.converse(**{**ask, "deadline_s": 3.0}))[1] for _ in range(min(CLAIM_REPEATS, 3))]

    lines.append(figure("every target hanging, deadline 3 s: degraded answer", on({}, all_down), "< 3 s"))
    lines.append(langchain_abandon())
    return lines


def langchain_abandon() -> str:
    from langchain_core.language_models.fake_chat_models import FakeListChatModel

    from adapters.langchain_target import LangChainTarget
    from core.errors import TargetCallError

    release = threading.Event()

    class Hung(FakeListChatModel):
        def invoke(self, *args: Any, **kwargs: Any) -> Any:
            release.wait(30)
            return super().invoke(*args, **kwargs)

    target = LangChainTarget(chat_model=Hung(responses=["late"]), name="hung")
    samples = []
    try:
        for _ in range(CLAIM_REPEATS):
            outcome, took = timed(lambda: target.call(system=SYSTEM, messages=QUESTION, timeout_s=0.2))
            if not isinstance(outcome, TargetCallError):
                raise RuntimeError("the hung LangChain provider was not abandoned")
            samples.append(took)
    finally:
        release.set()
    return figure("hung LangChain provider abandoned at a 200 ms timeout", samples, "< 500 ms")


def only(names: list[str]) -> None:
    """Re-run some scenarios: BENCH_ONLY="down (503)" python bench/failover.py"""
    for name in list(SCENARIOS):
        if name not in names:
            del SCENARIOS[name]


def print_claims() -> None:
    print("timing claims (each on its own emulator, figures from this machine):")
    for line in claims():
        print("  " + line)


def main() -> None:
    if os.environ.get("BENCH_CLAIMS_ONLY"):
        print_claims()
        return
    if os.environ.get("BENCH_ONLY"):
        only(["healthy", *os.environ["BENCH_ONLY"].split(",")])
    print(f"failover benchmark ({'quick' if QUICK else 'full'}): back-to-back {BACK_TO_BACK} requests; "
          f"paced 1 per {PACED_EVERY_S:.0f} s for {PACED_WINDOW_S:.0f} s; "
          f"emulator latency {LATENCY['latency_ms']} ms")  # fmt: skip
    header = (f"{'scenario':16} {'mode':6} {'system':8} {'ok':>6} {'p50 ms':>8} {'p99 ms':>8} "
              f"{'prim/req':>8} {'sec/req':>8}")  # fmt: skip
    print(header)
    print("-" * len(header))
    healthy_p99: dict[str, float] = {}
    verdicts: list[str] = []
    against_before: list[str] = []  # the gateway against itself as it was, same run
    for scenario in SCENARIOS:
        for paced in (False, True):
            mode = "paced" if paced else "b2b"
            results = measure_both(scenario, paced)
            for system in SYSTEMS:
                row = results[system].row()
                print(f"{scenario:16} {mode:6} {system:8} {row['success']:6.0%} {row['p50'] * 1000:8.0f} "
                      f"{row['p99'] * 1000:8.0f} {row['primary/req']:8.2f} {row['secondary/req']:8.2f}")  # fmt: skip
            g, b, old = results["gateway"].row(), results["baseline"].row(), results["before"].row()
            print(f"{'':16} {mode:6} {'ratio':8} {'':6} {g['p50'] / max(b['p50'], 1e-9):8.2f} "
                  f"{g['p99'] / max(b['p99'], 1e-9):8.2f}   (gateway / baseline)")  # fmt: skip
            print(f"{'':16} {mode:6} {'ratio':8} {'':6} {g['p50'] / max(old['p50'], 1e-9):8.2f} "
                  f"{g['p99'] / max(old['p99'], 1e-9):8.2f}   (gateway / before)")  # fmt: skip
            if scenario == "healthy":
                healthy_p99[mode] = g["p99"]
            elif scenario == "hanging 30 s":
                verdicts.append(f"hanging primary {mode}: gateway p99 {g['p99']:.2f} s (goal <= 5 s)")
            else:
                goal = 1.2 * healthy_p99[mode] + 0.05
                verdicts.append(
                    f"{scenario} {mode}: gateway p99 {g['p99'] * 1000:.0f} ms (goal <= {goal * 1000:.0f} ms)"
                )
            if scenario in {"down (503)", "resetting", "hanging 30 s"}:
                limit = 0.2 if paced else 0.05
                verdicts.append(f"{scenario} {mode}: primary calls/request {g['primary/req']:.3f} (goal <= {limit})")
            against_before.append(
                f"{scenario:16} {mode:6} success {g['success']:.0%} vs {old['success']:.0%}, p50 x"
                f"{g['p50'] / max(old['p50'], 1e-9):.2f}, p99 x{g['p99'] / max(old['p99'], 1e-9):.2f}, primary "
                f"calls/request {g['primary/req']:.2f} vs {old['primary/req']:.2f}"
            )
    direct, through = overhead()
    print()
    print(f"healthy path overhead: direct boto3 p50 {direct * 1000:.2f} ms, gateway p50 {through * 1000:.2f} ms, "
          f"overhead {(through - direct) * 1000:.2f} ms (goal <= 5 ms)")  # fmt: skip
    print()
    for line in verdicts:
        print("  " + line)
    print()
    print("gateway against the gateway before throttles were back-pressure (goal: no regression):")
    for line in against_before:
        print("  " + line)
    print()
    print_claims()  # last, so their leftover hanging calls cannot touch the scenarios' figures


if __name__ == "__main__":
    main()
