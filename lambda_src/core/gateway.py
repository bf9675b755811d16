"""The model gateway: an ordered failover chain that always answers inside the deadline.

For each request: try targets in order, skipping those whose breaker is open; on a target,
retry transient errors with jittered backoff while the retry budget and the deadline allow;
each attempt's timeout is derived from what is left of the deadline and from the target's
observed latency; a half-open probe gets a short timeout. If the running target has not
answered within its hedge delay (a few times its observed p95), the next target is started
alongside it and the first answer wins, so a slow or hanging target cannot hold the user.
When every target fails: a cached answer if one exists (exact match, scoped), otherwise an
honest degraded answer. Validation errors are never retried anywhere.
"""

from __future__ import annotations

import hashlib
import json
import random
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field

from core.errors import ModelRejected, Overloaded, TargetCallError
from core.models import Message, ModelReply, TargetRef, Usage
from core.ports import AnswerCache, GatewayMetrics, TargetModel
from core.resilience import (
    Action,
    BreakerSettings,
    BreakerState,
    CircuitBreaker,
    Clock,
    Deadline,
    LatencyTracker,
    Permit,
    RetryBudget,
    classify,
)

DEGRADED_TEXT = (
    "I can't reach the language model right now, so I can't answer this properly. "
    "Nothing you sent was lost: please try again in a minute."
)
CACHE_TARGET = TargetRef(model_id="cache", region="-")
_SHORTEST_ATTEMPT_S = 0.25  # below this an attempt cannot succeed, so it is not made
NONE_TARGET = TargetRef(model_id="none", region="-")


@dataclass(frozen=True, kw_only=True)
class GatewaySettings:
    deadline_s: float = 25.0
    margin_s: float = 0.25  # kept back from every attempt so the caller can still answer
    cold_timeout_s: float = 8.0  # attempt timeout before a target has latency samples
    min_timeout_s: float = 1.0
    latency_factor: float = 4.0  # attempt timeout = factor x observed p99 (clamped)
    probe_timeout_s: float = 2.0
    reserve_s: float = 3.0  # time kept for the rest of the chain while later targets remain
    max_attempts: int = 3  # per target, first call included
    backoff_base_s: float = 0.05
    backoff_cap_s: float = 1.0
    hedging: bool = True
    hedge_after_s: float = 1.5  # before the target has latency samples
    hedge_factor: float = 3.0  # hedge delay = factor x observed p95 (at least hedge_min_s)
    hedge_min_s: float = 0.2
    retry_ratio: float = 0.1
    # A transient error (throttle, 503, reset) retries on the same target only when no later target
    # can take the request; with one waiting, failing over at once beats sleeping on a backoff.
    retry_before_failover: bool = False
    cache_ttl_s: int = 86_400
    prompt_version: str = "v1"
    guardrail_version: str = "none"
    breaker: BreakerSettings = field(default_factory=BreakerSettings)


@dataclass
class _Target:
    model: TargetModel
    breaker: CircuitBreaker
    latency: LatencyTracker


class ModelGateway:
    """Implements the ChatModel port over a chain of TargetModels."""

    def __init__(
        self,
        *,
        targets: Sequence[TargetModel],
        settings: GatewaySettings | None = None,
        cache: AnswerCache | None = None,
        metrics: GatewayMetrics | None = None,
        clock: Clock = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        if not targets:
            raise ValueError("a gateway needs at least one target")
        self.settings = settings or GatewaySettings()
        self._cache = cache
        self._metrics = metrics
        self._clock = clock
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._budget = RetryBudget(ratio=self.settings.retry_ratio)
        # Lanes (one target's attempts) run here so a hedge can start beside a slow one. A lane
        # left behind by a faster answer ends by its own attempt timeout, inside the deadline.
        self._pool = ThreadPoolExecutor(max_workers=4 * len(targets), thread_name_prefix="gateway")
        self._targets = [
            _Target(
                model=model,
                breaker=CircuitBreaker(self.settings.breaker, clock, self._transition_hook(model.target)),
                latency=LatencyTracker(),
            )
            for model in targets
        ]

    @property
    def target(self) -> TargetRef:
        return self._targets[0].model.target

    def breaker_state(self, index: int) -> BreakerState:
        return self._targets[index].breaker.state

    def converse(
        self, *, system: str, messages: Sequence[Message], deadline_s: float, scope: str = "anonymous"
    ) -> ModelReply:
        deadline = Deadline(min(deadline_s, self.settings.deadline_s), self._clock)
        queue = list(self._targets)
        pending: dict[Future[ModelReply], _Target] = {}
        reasons: list[str] = []

        def launch() -> _Target | None:
            while queue:
                if deadline.remaining() <= self.settings.margin_s + 0.05:
                    reasons.append("deadline reached")
                    queue.clear()
                    return None
                target = queue.pop(0)
                permit = target.breaker.allow()
                if permit is None:
                    reasons.append(f"{_name(target)}: breaker open")
                    self._emit("skipped", target.model.target)
                    continue
                future = self._pool.submit(self._try_target, target, permit, system, messages, deadline, len(queue))
                pending[future] = target
                return target
            return None

        running = launch()
        if running is None and all("breaker open" in reason for reason in reasons) and reasons:
            return self._shed(scope, messages, "; ".join(reasons))
        hedge_at = self._clock() + self._hedge_delay(running) if running else 0.0
        while pending:
            wait_s = deadline.remaining()
            if queue and self.settings.hedging:
                wait_s = min(wait_s, max(0.0, hedge_at - self._clock()))
            done, _ = wait(pending, timeout=wait_s, return_when=FIRST_COMPLETED)
            for future in done:
                target = pending.pop(future)
                try:
                    reply = future.result()
                except TargetCallError as error:
                    if classify(error.code).action is Action.REJECT:
                        raise ModelRejected(_rejection_message(error)) from error
                    reasons.append(f"{_name(target)}: {error.code}")
                    if queue:
                        self._emit("failover", target.model.target, error.code)
                    continue
                if not reply.guardrail_intervened:
                    self._remember(scope, messages, reply)
                return reply
            if deadline.remaining() <= 0.0:
                reasons.append("deadline reached")
                break
            if not pending:
                running = launch()
                hedge_at = self._clock() + self._hedge_delay(running) if running else 0.0
            elif not done and queue and self.settings.hedging and self._clock() >= hedge_at:
                slow = next(iter(pending.values()))
                hedge = launch()
                if hedge is not None:
                    self._emit("hedge", slow.model.target)
                    hedge_at = self._clock() + self._hedge_delay(hedge)
        return self._degraded(scope, messages, "; ".join(reasons) or "no target available")

    def _hedge_delay(self, target: _Target | None) -> float:
        if target is None:
            return 0.0
        p95 = target.latency.quantile(0.95)
        if p95 is None:
            return self.settings.hedge_after_s
        return max(self.settings.hedge_min_s, self.settings.hedge_factor * p95)

    # --- one target ---------------------------------------------------------------------------
    def _try_target(
        self,
        target: _Target,
        permit: Permit,
        system: str,
        messages: Sequence[Message],
        deadline: Deadline,
        later_targets: int,
    ) -> ModelReply:
        attempt = 0
        while True:
            attempt += 1
            timeout = self._attempt_timeout(target, permit, deadline, later_targets)
            if timeout < _SHORTEST_ATTEMPT_S:
                raise TargetCallError("Timeout", "not enough time left for an attempt")
            self._budget.on_call()
            started = self._clock()
            try:
                reply = target.model.call(system=system, messages=messages, timeout_s=timeout)
            except TargetCallError as error:
                elapsed = self._clock() - started
                rule = classify(error.code)
                target.breaker.record(failed=rule.counts_as_failure, slow=False, probe=permit.probe)
                self._emit("attempt", target.model.target, error.code, elapsed)
                if rule.alarm:
                    self._emit("misconfigured", target.model.target, error.code)
                if rule.action is not Action.RETRY or permit.probe or attempt >= self.settings.max_attempts:
                    raise
                if later_targets and not self.settings.retry_before_failover:
                    raise
                backoff = self._backoff(attempt)
                if deadline.remaining() - backoff < self.settings.min_timeout_s + later_targets * 0.5:
                    raise
                if target.breaker.state is BreakerState.OPEN or not self._budget.try_spend():
                    raise
                self._emit("retry", target.model.target, error.code)
                self._sleep(backoff)
                continue
            elapsed = self._clock() - started
            target.breaker.record(failed=False, slow=elapsed > self._slow_threshold(target), probe=permit.probe)
            target.latency.add(elapsed)
            self._emit("attempt", target.model.target, "ok", elapsed)
            return reply

    def _attempt_timeout(self, target: _Target, permit: Permit, deadline: Deadline, later: int) -> float:
        s = self.settings
        p99 = target.latency.quantile(0.99)
        adaptive = (
            s.cold_timeout_s if p99 is None else min(max(s.latency_factor * p99, s.min_timeout_s), s.cold_timeout_s)
        )
        if permit.probe:
            adaptive = min(adaptive, s.probe_timeout_s)
        available = deadline.remaining() - s.margin_s
        if later:
            available -= min(s.reserve_s, available * 0.4)
        return max(0.0, min(adaptive, available))

    def _slow_threshold(self, target: _Target) -> float:
        p95 = target.latency.quantile(0.95)
        return self.settings.cold_timeout_s / 2 if p95 is None else max(3 * p95, self.settings.min_timeout_s)

    def _backoff(self, attempt: int) -> float:
        """Full jitter: uniform in [0, min(cap, base * 2^attempt)]."""
        return self._rng.uniform(0, min(self.settings.backoff_cap_s, self.settings.backoff_base_s * 2**attempt))

    # --- degraded path ------------------------------------------------------------------------
    def _shed(self, scope: str, messages: Sequence[Message], reason: str) -> ModelReply:
        """Every breaker is open: a cached answer if there is one, else refuse at once (no waiting)."""
        cached = self._from_cache(scope, messages, reason)
        if cached is not None:
            return cached
        wait_s = min(t.breaker.seconds_until_probe() for t in self._targets)
        self._emit("shed", NONE_TARGET, "breakers open")
        raise Overloaded(
            "every model target is failing right now, so this request was not attempted",
            retry_after=max(1, round(wait_s)),
        )

    def _degraded(self, scope: str, messages: Sequence[Message], reason: str) -> ModelReply:
        cached = self._from_cache(scope, messages, reason)
        if cached is not None:
            return cached
        self._emit("degraded", NONE_TARGET, "canned")
        return ModelReply(
            text=DEGRADED_TEXT, usage=Usage(), target=NONE_TARGET, degraded=True, degraded_reason=f"no model: {reason}"
        )

    def _cache_key(self, scope: str, messages: Sequence[Message]) -> str:
        question = " ".join(messages[-1].text.lower().split()) if messages else ""
        identity = {
            "scope": scope,
            "model": self.target.model_id,
            "prompt": self.settings.prompt_version,
            "guardrail": self.settings.guardrail_version,
            "question": question,
        }
        return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()

    def _remember(self, scope: str, messages: Sequence[Message], reply: ModelReply) -> None:
        if self._cache is None:
            return
        try:
            self._cache.put(self._cache_key(scope, messages), reply.text, self.settings.cache_ttl_s)
        except Exception:
            self._emit("cache_error", reply.target)

    def _from_cache(self, scope: str, messages: Sequence[Message], reason: str) -> ModelReply | None:
        if self._cache is None:
            return None
        try:
            text = self._cache.get(self._cache_key(scope, messages))
        except Exception:
            return None
        if text is None:
            return None
        self._emit("degraded", CACHE_TARGET, "cache")
        return ModelReply(
            text=text, usage=Usage(), target=CACHE_TARGET, degraded=True, degraded_reason=f"cached answer: {reason}"
        )

    # --- metrics ------------------------------------------------------------------------------
    def _emit(self, event: str, target: TargetRef, detail: str = "", latency_s: float | None = None) -> None:
        if self._metrics is not None:
            self._metrics.record(event=event, target=target, detail=detail, latency_s=latency_s)

    def _transition_hook(self, target: TargetRef) -> Callable[[BreakerState, BreakerState], None]:
        def hook(old: BreakerState, new: BreakerState) -> None:
            self._emit("breaker", target, f"{old.value}->{new.value}")

        return hook


def _name(target: _Target) -> str:
    ref = target.model.target
    return f"{ref.model_id}@{ref.region}"


def _rejection_message(error: TargetCallError) -> str:
    if error.code == "ContextWindowExceeded" or "too long" in error.detail.lower():
        return "the conversation is too long for the model: start a new conversation or send a shorter message"
    return f"the model rejected the request: {error.detail or error.code}"
