"""core.ingest.Embedder on Amazon Titan Text Embeddings v2 (Bedrock InvokeModel), under the resilience contract.

The same rules as the chat path, for a pipeline whose throughput the embedding quota dictates:
- client-side pacing first (`RateLimiter` at this environment's share of the quota), so the pipeline waits
  for its turn instead of being throttled; waiting counts against the document's deadline.
- one retry layer: botocore's retries are off (adapters.bedrock.client_config); this loop retries what the
  taxonomy says to retry on the same target (throttling, 5xx, model not ready, a reset connection) with
  full-jitter exponential backoff, only while the `RetryBudget` has room (retries <= 10 % of calls) and the
  deadline leaves time; ValidationException is never retried (EmbeddingRejected: the document fails).
- a `CircuitBreaker` on the model: when it is open, a document goes back to the queue at once instead of
  spending its attempts on a model that is failing.
- each call's read timeout is the time left in the deadline (capped), so no call outlives the document.
There is no other target to fail over to (another model's vectors would not match the index), so what the
taxonomy calls "fail over" leaves as DependencyUnavailable: the message is retried later.
"""

from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Callable
from typing import Any

from adapters.bedrock import ClientFactory, ClientsByTimeout, runtime_errors
from core.errors import DependencyUnavailable, TargetCallError
from core.ingest import EmbeddingRejected, IngestDeadlineExceeded
from core.ports import NO_TRACING, Tracing
from core.resilience import Action, CircuitBreaker, Clock, Deadline, RateLimiter, RetryBudget, classify

MAX_CALL_TIMEOUT_S = 10.0  # one embedding of a chunk takes well under a second; a hung call is cut here
PROBE_TIMEOUT_S = 3.0  # a half-open probe learns quickly whether the model is back
MARGIN_S = 0.25  # kept free of every call, for recording the outcome
BACKOFF_BASE_S = 0.25
BACKOFF_CAP_S = 5.0
VALID_DIMENSIONS = (256, 512, 1024)  # what Titan Text Embeddings v2 accepts


class TitanEmbedder:
    def __init__(
        self,
        *,
        client_factory: ClientFactory,
        model_id: str,
        dimensions: int,
        pacing: RateLimiter | None = None,
        breaker: CircuitBreaker | None = None,
        budget: RetryBudget | None = None,
        max_call_timeout_s: float = MAX_CALL_TIMEOUT_S,
        clock: Clock = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        jitter: Callable[[], float] = random.random,
        tracing: Tracing | None = None,
    ) -> None:
        self._clients = ClientsByTimeout(client_factory)
        self._model_id = model_id
        self._dimensions = dimensions
        self._pacing = pacing
        self._breaker = breaker or CircuitBreaker(clock=clock)
        self._budget = budget or RetryBudget()
        self._max_call_timeout_s = max_call_timeout_s
        self._clock = clock
        self._sleep = sleep
        self._jitter = jitter
        self._tracing = tracing or NO_TRACING  # a span per call to the model (numbers and codes only)
        self.calls = 0  # requests sent to the model (retries included): for metrics and benchmarks
        self.retries = 0

    @property
    def breaker(self) -> CircuitBreaker:
        return self._breaker

    def embed(self, text: str, *, deadline: Deadline) -> list[float]:
        self._budget.on_call()
        attempt = 0
        while True:
            self._pace(deadline)
            if deadline.remaining() - MARGIN_S <= 0:
                raise _out_of_time()
            permit = self._breaker.allow()
            if permit is None:
                wait = self._breaker.seconds_until_probe()
                raise DependencyUnavailable(
                    "could not embed the document: the embedding model is failing and calls to it are paused; "
                    f"try again in {math.ceil(wait)} s",
                    retry_after=max(1, math.ceil(wait)),
                )
            timeout = min(self._max_call_timeout_s, deadline.remaining() - MARGIN_S)
            if permit.probe:
                timeout = min(timeout, PROBE_TIMEOUT_S)
            try:
                vector = self._traced_call(text, timeout, attempt)
            except TargetCallError as error:
                rule = classify(error.code)
                self._breaker.record(failed=rule.counts_as_failure, probe=permit.probe)
                if rule.action is Action.REJECT:
                    raise EmbeddingRejected(
                        f"the embedding model refused a passage: {error.detail or error.code}"
                    ) from error
                if rule.action is Action.RETRY:
                    delay = self._jitter() * min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2**attempt)
                    if delay < deadline.remaining() - MARGIN_S and self._budget.try_spend():
                        self._sleep(delay)
                        attempt += 1
                        self.retries += 1
                        continue
                raise _unavailable(error.code) from error
            self._breaker.record(failed=False, probe=permit.probe)
            return vector

    def _pace(self, deadline: Deadline) -> None:
        if self._pacing is None:
            return
        if not self._pacing.acquire(timeout_s=max(0.0, deadline.remaining() - MARGIN_S)):
            raise _out_of_time(" at the embedding quota's pace")

    def _traced_call(self, text: str, timeout_s: float, attempt: int) -> list[float]:
        with self._tracing.span("embedding") as span:
            span.set("target", self._model_id)
            span.set("attempt", attempt + 1)
            span.set("timeout_ms", round(timeout_s * 1000))
            started = self._clock()
            try:
                vector = self._call(text, timeout_s)
            except TargetCallError as error:
                span.set("outcome", "throttled" if classify(error.code).back_pressure else "error")
                span.set("code", error.code)
                raise
            finally:
                span.set("latency_ms", round((self._clock() - started) * 1000))
            span.set("outcome", "ok")
            return vector

    def _call(self, text: str, timeout_s: float) -> list[float]:
        body = json.dumps({"inputText": text, "dimensions": self._dimensions, "normalize": True})
        self.calls += 1
        with runtime_errors():
            response = self._clients.client(timeout_s).invoke_model(
                modelId=self._model_id, body=body, contentType="application/json", accept="application/json"
            )
            payload: dict[str, Any] = json.loads(response["body"].read())
        vector = payload.get("embedding")
        if not isinstance(vector, list) or len(vector) != self._dimensions:
            got = len(vector) if isinstance(vector, list) else "no"
            raise EmbeddingRejected(f"the embedding model answered {got} dimensions, expected {self._dimensions}")
        return [float(value) for value in vector]


def _out_of_time(where: str = "") -> IngestDeadlineExceeded:
    return IngestDeadlineExceeded(f"the document could not be embedded inside its deadline{where}; it will be retried")


def _unavailable(code: str) -> DependencyUnavailable:
    return DependencyUnavailable(
        f"could not embed the document: the embedding model is unavailable ({code}); it will be retried",
        retry_after=5,
    )
