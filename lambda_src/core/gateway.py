"""The model gateway: an ordered failover chain that always answers inside the deadline.

For each request: try targets in order, skipping those whose breaker is open; on a target,
retry transient errors with jittered backoff while the retry budget and the deadline allow;
each attempt's timeout is derived from what is left of the deadline and from the target's
observed latency; a half-open probe gets a short timeout. Throttles are back-pressure, not failures:
they lower the target's adaptive concurrency limit (core.resilience.AdaptiveLimit) and leave its
breaker alone; a target at its limit is passed over at no cost, and when every target is full the
request is refused at once (429 + Retry-After), as when every breaker is open (503). If the running target has not
answered within its hedge delay (a few times its observed p95), the next target is started
alongside it and the first answer wins, so a slow or hanging target cannot hold the user.
When every target fails: a cached answer if one exists (exact match, scoped), otherwise an
honest degraded answer. Validation errors are never retried anywhere.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import itertools
import json
import random
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any, Protocol, TypeVar

from core.errors import AtCapacity, ModelRejected, Overloaded, TargetCallError
from core.models import Message, ModelReply, TargetRef, Usage
from core.policy import (
    GatewaySettings,
    Refusal,
    attempt_timeout,
    decide_retry,
    hedge_delay,
    hedge_due,
    select_next_target,
    slow_threshold,
    wait_timeout,
    worth_attempting,
)
from core.ports import NO_TRACING, AnswerCache, GatewayMetrics, ReplyStream, Span, TargetModel, TargetStream, Tracing
from core.resilience import (
    Action,
    AdaptiveLimit,
    BreakerState,
    CapacityState,
    CircuitBreaker,
    Clock,
    Deadline,
    LatencyTracker,
    Permit,
    RetryBudget,
    Signal,
    Slot,
    classify,
)
from core.switches import NO_SWITCHES, Switches, arrange, matches

__all__ = [
    "CACHE_TARGET",
    "DEGRADED_TEXT",
    "NONE_TARGET",
    "GatewaySettings",
    "LaneExecutor",
    "ModelGateway",
    "WaitForFutures",
    "WholeReply",
]

DEGRADED_TEXT = (
    "I can't reach the language model right now, so I can't answer this properly. "
    "Nothing you sent was lost: please try again in a minute."
)
CACHE_TARGET = TargetRef(model_id="cache", region="-")
NONE_TARGET = TargetRef(model_id="none", region="-")

R = TypeVar("R")


class LaneExecutor(Protocol):
    """Where lanes run: a ThreadPoolExecutor in production, simulated time in tests."""

    def submit(self, fn: Callable[..., R], /, *args: Any, **kwargs: Any) -> Future[R]: ...


class WaitForFutures(Protocol):
    """The shape of `concurrent.futures.wait`, so a test can put simulated time in its place."""

    def __call__(
        self, fs: Iterable[Future[R]], timeout: float | None = ..., return_when: str = ...
    ) -> tuple[set[Future[R]], set[Future[R]]]: ...


@dataclass
class _Target:
    model: TargetModel
    breaker: CircuitBreaker
    latency: LatencyTracker  # converse: whole calls (attempt timeouts, hedges, the slow-call rule)
    capacity: AdaptiveLimit
    # Streams: the time to the first token sets their attempt (first-token) timeouts and hedges, as the whole
    # call does for converse; a stream's whole duration only feeds the breaker's slow-call rule.
    first_token: LatencyTracker = field(default_factory=LatencyTracker)
    streamed: LatencyTracker = field(default_factory=LatencyTracker)

    def timing(self, streaming: bool) -> LatencyTracker:
        """What an attempt waits for: the first token of a stream, the whole reply of a converse call."""
        return self.first_token if streaming else self.latency


@dataclass(frozen=True)
class _Admission:
    """What a lane holds while it runs: the breaker's permit and its place in the concurrency limit."""

    permit: Permit
    slot: Slot | None  # None when throttles count as failures (no limit applies)


@dataclass
class _Opened:
    """A lane's stream whose first token arrived: the target still holds its breaker permit and limit slot."""

    target: _Target
    admission: _Admission
    stream: TargetStream
    chunks: Iterator[str]  # the rest, after `first`
    started: float
    first: str = ""


def _open_stream(
    model: TargetModel, system: str, messages: Sequence[Message], timeout_s: float
) -> tuple[TargetStream, Iterator[str]]:
    """Start a stream and wait for its first chunk (an error before it is the call's failure). A target that
    cannot stream answers with one call, its whole text as one chunk."""
    opener = getattr(model, "stream", None)
    stream: TargetStream = (
        opener(system=system, messages=messages, timeout_s=timeout_s)
        if opener is not None
        else WholeReply(model.call(system=system, messages=messages, timeout_s=timeout_s))
    )
    chunks = iter(stream)
    try:
        first = next(chunks)
    except StopIteration:
        return stream, iter(())  # an empty answer: complete, nothing to show
    except BaseException:
        stream.close()
        raise
    return stream, itertools.chain((first,), chunks)


class WholeReply:
    """A reply already whole (degraded, cached, a target that cannot stream) as a stream of one chunk."""

    def __init__(self, reply: ModelReply) -> None:
        self._reply = reply

    @property
    def target(self) -> TargetRef:
        return self._reply.target

    def __iter__(self) -> Iterator[str]:
        if self._reply.text:
            yield self._reply.text

    def reply(self) -> ModelReply:
        return self._reply

    def close(self) -> None:
        return None


class _CommittedStream:
    """The winning target's stream, read by the caller: after the first token, a break or the deadline ends it
    honestly (incomplete, the text so far); never a failover. Settles the target's outcome once, at its end."""

    def __init__(
        self, gateway: ModelGateway, opened: _Opened, deadline: Deadline, scope: str, messages: Sequence[Message]
    ) -> None:
        self._gateway = gateway
        self._opened = opened
        self._deadline = deadline
        self._scope = scope
        self._messages = messages
        self._parts: list[str] = []
        self._reply: ModelReply | None = None

    @property
    def target(self) -> TargetRef:
        return self._opened.target.model.target

    def __iter__(self) -> Iterator[str]:
        if self._reply is not None:
            return
        error: TargetCallError | None = None
        try:
            for chunk in self._opened.chunks:
                self._parts.append(chunk)
                yield chunk
                if self._deadline.expired():
                    error = TargetCallError("Deadline", "the request's deadline passed mid-stream")
                    break
        except TargetCallError as broke:
            error = broke
        except GeneratorExit:
            self.close()
            raise
        self._finish(error)

    def _finish(self, error: TargetCallError | None) -> None:
        opened = self._opened
        if error is None:
            complete = opened.stream.reply()
            self._gateway._settle(opened, None)
            self._reply = self._gateway._remember(self._scope, self._messages, complete)
            return
        opened.stream.close()
        # The deadline is ours, not the target's fault: the stream is abandoned, not failed.
        self._gateway._settle(opened, error, abandoned=error.code == "Deadline")
        self._reply = ModelReply(
            text="".join(self._parts),
            usage=_estimated_usage(self._messages, self._parts),  # Bedrock sends usage only at a stream's end
            target=self.target,
            stop_reason="incomplete",
            incomplete=True,
            incomplete_reason=_incomplete_reason(error.code),
        )

    def reply(self) -> ModelReply:
        if self._reply is None:
            raise RuntimeError("read the stream to its end before asking for its reply")
        return self._reply

    def close(self) -> None:
        """The caller stopped reading before the end (its connection went away): the target is not to blame."""
        if self._reply is not None:
            return
        self._opened.stream.close()
        self._gateway._settle(self._opened, None, abandoned=True)
        self._reply = ModelReply(
            text="".join(self._parts),
            usage=_estimated_usage(self._messages, self._parts),
            target=self.target,
            stop_reason="incomplete",
            incomplete=True,
            incomplete_reason="the answer was not read to its end",
        )


_CHARS_PER_TOKEN = 4  # a common rule of thumb for English text; an estimate, never a bill


def _estimated_usage(messages: Sequence[Message], parts: Sequence[str]) -> Usage:
    """A broken stream's usage, estimated (Bedrock reports usage only in the stream's last event): the model read
    the whole prompt and wrote what was received, so the per-user token budget is charged for them too."""
    read = sum(len(message.text) for message in messages)
    written = sum(len(part) for part in parts)
    return Usage(input_tokens=-(-read // _CHARS_PER_TOKEN), output_tokens=-(-written // _CHARS_PER_TOKEN))


def _incomplete_reason(code: str) -> str:
    """What an incomplete answer says about why: the kind of break, never the provider's text."""
    if code == "Deadline":
        return "the answer ran out of time"
    if code in ("Timeout",):
        return "the model stopped sending (timeout)"
    if code == "ConnectionReset":
        return "the connection to the model was lost"
    return f"the model's stream broke ({code})"


class ModelGateway:
    """Implements the ChatModel port over a chain of TargetModels.

    Time comes in through `clock`, `sleep`, `executor` and `wait` (defaults: the real ones), so the
    whole runner can be driven on simulated time; its decisions are taken in `core.policy`.
    """

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
        executor: LaneExecutor | None = None,
        wait: WaitForFutures = concurrent.futures.wait,
        switches: Callable[[], Switches] | None = None,
        tracing: Tracing | None = None,
    ) -> None:
        if not targets:
            raise ValueError("a gateway needs at least one target")
        self.settings = settings or GatewaySettings()
        self._cache = cache
        self._metrics = metrics
        self._clock = clock
        self._sleep = sleep
        self._wait = wait
        self._rng = rng or random.Random()
        self._switches = switches  # runtime switches (core.switches), read per request
        self._tracing = tracing or NO_TRACING  # one span per attempt and per target passed over
        self._budget = RetryBudget(ratio=self.settings.retry_ratio)
        self._adaptive = not self.settings.throttle_as_failure
        # Lanes (one target's attempts) run here so a hedge can start beside a slow one. A lane
        # left behind by a faster answer ends by its own attempt timeout, inside the deadline. A lane
        # holds its target's place until it ends, so each target's lanes fit without queueing.
        workers = max(4, self.settings.capacity.ceiling) * len(targets)
        self._executor = executor or ThreadPoolExecutor(max_workers=workers, thread_name_prefix="gateway")
        self._targets = [
            _Target(
                model=model,
                breaker=CircuitBreaker(self.settings.breaker, clock, self._transition_hook(model.target)),
                latency=LatencyTracker(),
                capacity=AdaptiveLimit(self.settings.capacity, clock),
            )
            for model in targets
        ]

    @property
    def target(self) -> TargetRef:
        return self._targets[0].model.target

    def breaker_state(self, index: int) -> BreakerState:
        return self._targets[index].breaker.state

    def capacity_state(self, index: int) -> CapacityState:
        """The target's concurrency limit as learnt so far, its calls in flight and any pause."""
        return self._targets[index].capacity.state

    def converse(
        self, *, system: str, messages: Sequence[Message], deadline_s: float, scope: str = "anonymous"
    ) -> ModelReply:
        deadline = Deadline(min(deadline_s, self.settings.deadline_s), self._clock)
        outcome = self._run(system, messages, deadline, scope, streaming=False)
        assert isinstance(outcome, ModelReply)
        return outcome

    def stream(
        self, *, system: str, messages: Sequence[Message], deadline_s: float, scope: str = "anonymous"
    ) -> ReplyStream:
        """The same chain as `converse` up to the first token: a target that fails before it is a failed call
        (retry, next target, hedge, breaker, as for converse); the first target whose first token arrives wins
        and the others are closed. After it there is no failover (the user already reads the text): a break or
        the deadline ends the answer, marked incomplete. The breaker and the concurrency limit record the
        target's outcome when its stream ends."""
        deadline = Deadline(min(deadline_s, self.settings.deadline_s), self._clock)
        outcome = self._run(system, messages, deadline, scope, streaming=True)
        if isinstance(outcome, ModelReply):
            return WholeReply(outcome)  # degraded or cached: one chunk
        return _CommittedStream(self, outcome, deadline, scope, messages)

    def _run(
        self, system: str, messages: Sequence[Message], deadline: Deadline, scope: str, *, streaming: bool
    ) -> ModelReply | _Opened:
        """The failover chain. Lanes answer a ModelReply (converse) or an _Opened stream (first token in)."""
        switches = self._switches() if self._switches is not None else NO_SWITCHES
        if switches.degraded:
            return self._degraded(scope, messages, "degraded mode forced by a runtime switch")
        queue = self._chain(switches)
        pending: dict[Future[ModelReply | _Opened], _Target] = {}
        try:
            return self._race(system, messages, deadline, scope, switches, queue, pending, streaming=streaming)
        finally:
            for lane in pending:  # lanes still running (hedges that lost, past the deadline): a stream they
                lane.add_done_callback(self._abandon)  # open later is closed at once and frees its place

    def _race(
        self,
        system: str,
        messages: Sequence[Message],
        deadline: Deadline,
        scope: str,
        switches: Switches,
        queue: list[_Target],
        pending: dict[Future[ModelReply | _Opened], _Target],
        *,
        streaming: bool,
    ) -> ModelReply | _Opened:
        reasons: list[str] = []
        offered = False
        # Whether every target that was called failed only for being full: then the request is shed
        # as back-pressure (429) rather than answered with the degraded text.
        attempted, only_throttled = False, True

        def admit(target: _Target) -> _Admission | Refusal:
            ref = target.model.target
            if switches.force_open and matches(ref.model_id, ref.region, switches.force_open):
                return Refusal.BREAKER_OPEN  # forced open by a runtime switch
            return self._admit(target)

        def launch(lane: str) -> tuple[_Target | None, bool, bool]:
            """Start the next target the chain allows (`lane`: primary, failover or hedge, for its spans); also
            whether every target was passed over, and whether any of them for being full."""
            nonlocal queue, offered, attempted, only_throttled
            pick = select_next_target(self.settings, queue, remaining_s=deadline.remaining(), admit=admit)
            for skipped, refusal in pick.skipped:
                reasons.append(f"{_name(skipped)}: {refusal.value}")
                self._emit("skipped" if refusal is Refusal.BREAKER_OPEN else "at_capacity", skipped.model.target)
                self._skip_span(skipped, refusal, lane)
            if pick.out_of_time:
                reasons.append("deadline reached")
                only_throttled = False
            queue = list(pick.waiting)
            if pick.target is None or pick.permit is None:
                return None, pick.shed, pick.at_capacity
            if not offered:
                # One deposit per request that reaches a model, not per call: retries stay <= ratio x
                # requests, so under full throttling no target sees more than (1 + ratio) x them.
                self._budget.on_call()
                offered = True
            attempted = True
            future = self._executor.submit(
                self._try_target, pick.target, pick.permit, system, messages, deadline, len(queue), lane, streaming
            )
            pending[future] = pick.target
            return pick.target, False, False

        running, shed, full = launch("primary")
        if shed:
            return self._shed(scope, messages, "; ".join(reasons), at_capacity=full)
        hedge_at = self._hedge_at(running, streaming)
        while pending:
            wait_s = wait_timeout(
                self.settings,
                remaining_s=deadline.remaining(),
                until_hedge_s=hedge_at - self._clock(),
                targets_waiting=bool(queue),
            )
            done, _ = self._wait(pending, timeout=wait_s, return_when=FIRST_COMPLETED)
            for future in done:
                target = pending.pop(future)
                try:
                    reply = future.result()
                except TargetCallError as error:
                    if classify(error.code).action is Action.REJECT:
                        raise ModelRejected(_rejection_message(error)) from error
                    reasons.append(f"{_name(target)}: {error.code}")
                    only_throttled = only_throttled and self._is_back_pressure(error.code)
                    if queue:
                        self._emit("failover", target.model.target, error.code)
                    continue
                if isinstance(reply, _Opened):
                    return reply
                return self._remember(scope, messages, reply)
            if deadline.remaining() <= 0.0:
                reasons.append("deadline reached")
                only_throttled = False
                break
            if not pending:
                running, _, _ = launch("failover")
                hedge_at = self._hedge_at(running, streaming)
            elif not done and hedge_due(
                self.settings, until_hedge_s=hedge_at - self._clock(), targets_waiting=bool(queue)
            ):
                slow = next(iter(pending.values()))
                hedge, _, _ = launch("hedge")
                if hedge is not None:
                    self._emit("hedge", slow.model.target)
                    hedge_at = self._hedge_at(hedge, streaming)
        if attempted and only_throttled:
            return self._shed(scope, messages, "; ".join(reasons), at_capacity=True)
        return self._degraded(scope, messages, "; ".join(reasons) or "no target available")

    def _chain(self, switches: Switches) -> list[_Target]:
        """The targets in the order this request tries them: as configured unless a switch reorders or pins."""
        if not (switches.chain_order or switches.pins):
            return list(self._targets)
        refs = [(t.model.target.model_id, t.model.target.region) for t in self._targets]
        return [self._targets[index] for index in arrange(refs, switches)]

    def _admit(self, target: _Target) -> _Admission | Refusal:
        """A target's breaker first (an open one is skipped), then its concurrency limit, then the breaker's
        permit (it may be a half-open probe): so a probe is only taken for a call that is then made."""
        if target.breaker.state is BreakerState.OPEN:
            return Refusal.BREAKER_OPEN
        slot = None
        if self._adaptive:
            slot = target.capacity.acquire()
            if slot is None:
                return Refusal.AT_CAPACITY
        permit = target.breaker.allow()
        if permit is None:
            if slot is not None:
                target.capacity.release(slot)
            return Refusal.BREAKER_OPEN
        return _Admission(permit, slot)

    def _is_back_pressure(self, code: str) -> bool:
        return self._adaptive and classify(code).back_pressure

    def _hedge_at(self, target: _Target | None, streaming: bool = False) -> float:
        """When the next target starts beside `target` if it has not answered (0: nothing runs): for a stream,
        if its first token has not come."""
        if target is None:
            return 0.0
        return self._clock() + hedge_delay(self.settings, p95_s=target.timing(streaming).quantile(0.95))

    # --- one target ---------------------------------------------------------------------------
    def _try_target(
        self,
        target: _Target,
        admission: _Admission,
        system: str,
        messages: Sequence[Message],
        deadline: Deadline,
        later_targets: int,
        lane: str = "primary",
        streaming: bool = False,
    ) -> ModelReply | _Opened:
        try:
            outcome = self._attempts(target, admission, system, messages, deadline, later_targets, lane, streaming)
        except BaseException:
            if admission.slot is not None:
                target.capacity.release(admission.slot)
            raise
        # An opened stream keeps its place in the limit until it ends (_CommittedStream or _abandon frees it).
        if not isinstance(outcome, _Opened) and admission.slot is not None:
            target.capacity.release(admission.slot)
        return outcome

    def _attempts(
        self,
        target: _Target,
        admission: _Admission,
        system: str,
        messages: Sequence[Message],
        deadline: Deadline,
        later_targets: int,
        lane: str = "primary",
        streaming: bool = False,
    ) -> ModelReply | _Opened:
        permit, slot = admission.permit, admission.slot
        attempt = 0
        while True:
            attempt += 1
            timeout = attempt_timeout(
                self.settings,
                p99_s=target.timing(streaming).quantile(0.99),
                probe=permit.probe,
                remaining_s=deadline.remaining(),
                later_targets=later_targets,
            )
            if not worth_attempting(timeout):
                raise TargetCallError("Timeout", "not enough time left for an attempt")
            started = self._clock()
            try:
                with self._tracing.span("model_attempt") as span:
                    _describe(span, target, lane=lane, attempt=attempt, timeout_s=timeout, probe=permit.probe)
                    try:
                        if streaming:
                            opened = _open_stream(target.model, system, messages, timeout)
                            first_token_s = self._clock() - started
                            target.first_token.add(first_token_s)  # what the next stream's hedge waits for
                            span.set("outcome", "first_token")
                            span.set("latency_ms", round(first_token_s * 1000))
                            # Its outcome is recorded when the stream ends, not now.
                            return _Opened(target, admission, opened[0], opened[1], started)
                        reply = target.model.call(system=system, messages=messages, timeout_s=timeout)
                    except TargetCallError as error:
                        span.set("outcome", _outcome(error.code))
                        span.set("code", error.code)
                        raise
                    span.set("outcome", "ok")
                    span.set("latency_ms", round((self._clock() - started) * 1000))
            except TargetCallError as error:
                elapsed = self._clock() - started
                rule = classify(error.code)
                if self._is_back_pressure(error.code):
                    # Full, not failing: the limit backs off and the breaker does not count it.
                    target.breaker.release(probe=permit.probe)
                    self._signal(target, slot, Signal.THROTTLED)
                else:
                    target.breaker.record(failed=rule.counts_as_failure, slow=False, probe=permit.probe)
                    self._signal(target, slot, Signal.NONE)
                self._emit("attempt", target.model.target, error.code, elapsed)
                if rule.alarm:
                    self._emit("misconfigured", target.model.target, error.code)
                decision = decide_retry(
                    self.settings,
                    code=error.code,
                    attempt=attempt,
                    probe=permit.probe,
                    later_targets=later_targets,
                    remaining_s=deadline.remaining(),
                    breaker_open=target.breaker.state is BreakerState.OPEN,
                    draw_backoff=lambda ceiling: self._rng.uniform(0, ceiling),  # full jitter
                    spend_retry=self._budget.try_spend,
                    paused=target.capacity.paused_for() > 0.0,
                )
                if not decision.retry:
                    raise
                self._emit("retry", target.model.target, error.code)
                self._sleep(decision.backoff_s)
                continue
            elapsed = self._clock() - started
            slow = elapsed > slow_threshold(self.settings, p95_s=target.latency.quantile(0.95))
            target.breaker.record(failed=False, slow=slow, probe=permit.probe)
            self._signal(target, slot, Signal.OK)
            target.latency.add(elapsed)
            self._emit("attempt", target.model.target, "ok", elapsed)
            return reply

    @staticmethod
    def _signal(target: _Target, slot: Slot | None, signal: Signal) -> None:
        if slot is not None:
            target.capacity.record(slot, signal)

    # --- streams ------------------------------------------------------------------------------
    def _settle(self, opened: _Opened, error: TargetCallError | None, *, abandoned: bool = False) -> None:
        """A stream ended: its target's breaker and concurrency limit record the outcome as for a converse
        call (a break after the first token counts by the taxonomy; throttling is back-pressure), then its
        place in the limit is freed. `abandoned`: we stopped reading (a hedge lost, the caller went away),
        which says nothing about the target."""
        target, permit, slot = opened.target, opened.admission.permit, opened.admission.slot
        elapsed = self._clock() - opened.started
        try:
            if abandoned:
                target.breaker.release(probe=permit.probe)
                self._signal(target, slot, Signal.NONE)
                self._emit("stream_abandoned", target.model.target, "", elapsed)
            elif error is None:
                # Slow against this target's whole streams (never its converse calls, nor first tokens).
                slow = elapsed > slow_threshold(self.settings, p95_s=target.streamed.quantile(0.95))
                target.breaker.record(failed=False, slow=slow, probe=permit.probe)
                self._signal(target, slot, Signal.OK)
                target.streamed.add(elapsed)
                self._emit("attempt", target.model.target, "ok", elapsed)
            else:
                if self._is_back_pressure(error.code):
                    target.breaker.release(probe=permit.probe)
                    self._signal(target, slot, Signal.THROTTLED)
                else:
                    target.breaker.record(failed=classify(error.code).counts_as_failure, slow=False, probe=permit.probe)
                    self._signal(target, slot, Signal.NONE)
                self._emit("attempt", target.model.target, error.code, elapsed)
                self._emit("stream_broken", target.model.target, error.code)
        finally:
            if slot is not None:
                target.capacity.release(slot)

    def _abandon(self, future: Future[ModelReply | _Opened]) -> None:
        """A lane that lost the race: if its stream opened, close it (the caller reads another)."""
        if future.cancelled() or future.exception() is not None:
            return
        outcome = future.result()
        if isinstance(outcome, _Opened):
            outcome.stream.close()
            self._settle(outcome, None, abandoned=True)

    # --- degraded path ------------------------------------------------------------------------
    def _shed(self, scope: str, messages: Sequence[Message], reason: str, *, at_capacity: bool) -> ModelReply:
        """No target can take the request now (breakers open, or full): a cached answer if there is one,
        else refuse at once (no waiting), saying when a target may take a call again."""
        cached = self._from_cache(scope, messages, reason)
        if cached is not None:
            return cached
        wait_s = min(max(t.breaker.seconds_until_probe(), t.capacity.paused_for()) for t in self._targets)
        retry_after = max(1, round(wait_s))
        if at_capacity:
            self._emit("shed", NONE_TARGET, "at capacity")
            raise AtCapacity(
                "the model is at capacity right now, so this request was not answered", retry_after=retry_after
            )
        self._emit("shed", NONE_TARGET, "breakers open")
        raise Overloaded(
            "every model target is failing right now, so this request was not attempted", retry_after=retry_after
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

    def _remember(self, scope: str, messages: Sequence[Message], reply: ModelReply) -> ModelReply:
        """Cache an answer a guardrail checked and let pass (never an intervention, never an unchecked one);
        the reply then carries its cache key, so deleting the conversation can remove the entry."""
        if self._cache is None or not reply.cacheable:
            return reply
        key = self._cache_key(scope, messages)
        try:
            self._cache.put(key, reply.text, self.settings.cache_ttl_s)
        except Exception:
            self._emit("cache_error", reply.target)
            return reply
        return replace(reply, cache_key=key)

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

    # --- metrics and traces -------------------------------------------------------------------
    def _skip_span(self, target: _Target, refusal: Refusal, lane: str) -> None:
        """A target passed over without a call (breaker open, or at its concurrency limit): a span all the same,
        so a trace shows why the chain moved on."""
        with self._tracing.span("model_attempt") as span:
            _describe(span, target, lane=lane, attempt=0, timeout_s=0.0, probe=False)
            span.set("outcome", "breaker_open" if refusal is Refusal.BREAKER_OPEN else "shed")

    def _emit(self, event: str, target: TargetRef, detail: str = "", latency_s: float | None = None) -> None:
        if self._metrics is not None:
            self._metrics.record(event=event, target=target, detail=detail, latency_s=latency_s)

    def _transition_hook(self, target: TargetRef) -> Callable[[BreakerState, BreakerState], None]:
        def hook(old: BreakerState, new: BreakerState) -> None:
            self._emit("breaker", target, f"{old.value}->{new.value}")

        return hook


def _describe(span: Span, target: _Target, *, lane: str, attempt: int, timeout_s: float, probe: bool) -> None:
    """What a model attempt's span carries: the target's name (configured, never an ARN), the lane, the attempt's
    number and the timeout it was given. Nothing of the request's text."""
    ref = target.model.target
    span.set("target", ref.model_id)
    span.set("region", ref.region)
    span.set("lane", lane)  # primary | failover | hedge
    span.set("attempt", attempt)  # 0: passed over without a call
    span.set("timeout_ms", round(timeout_s * 1000))
    span.set("probe", probe)


def _outcome(code: str) -> str:
    """A failed attempt's outcome for traces: throttled, timeout or error (the code itself rides beside it)."""
    if classify(code).back_pressure:
        return "throttled"
    if code in ("Timeout", "ModelTimeoutException"):
        return "timeout"
    return "error"


def _name(target: _Target) -> str:
    ref = target.model.target
    return f"{ref.model_id}@{ref.region}"


def _rejection_message(error: TargetCallError) -> str:
    """What the user reads. The provider's own text (which may name models, ARNs or internals) stays in the
    error chain, for the logs."""
    if error.code == "ContextWindowExceeded" or "too long" in error.detail.lower():
        return "the conversation is too long for the model: start a new conversation or send a shorter message"
    return "the model rejected the request as sent: rephrase it, or start a new conversation"
