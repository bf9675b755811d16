"""ApplyGuardrail around a target Bedrock cannot guard itself (a LangChain model of another provider).

The user's question is assessed before the model is called and the answer after, with the same
guardrail (id, version) the Bedrock targets of this region send to Converse. Either intervention is
an answer, not an error: a blocked question never reaches the other provider, a blocked or masked
answer replaces the original, and the reply says `guardrail_intervened` (so it is flagged and never
cached), as when Converse runs the guardrail. A guardrail that cannot be reached fails the target
(the gateway fails over): an unguarded answer is never returned in its place.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from adapters.bedrock import ClientFactory, ClientsByTimeout, runtime_errors
from core.errors import TargetCallError
from core.models import Message, ModelReply, TargetRef, Usage
from core.ports import TargetModel

# Each assessment gets at most this long, and at most a quarter of the call's time.
ASSESSMENT_TIMEOUT_S = 3.0
INTERVENED = "GUARDRAIL_INTERVENED"
FALLBACK_BLOCKED = "Sorry, I can't help with that request: it was blocked by the content guardrail."


class GuardedTarget:
    def __init__(
        self,
        *,
        inner: TargetModel,
        client_factory: ClientFactory,
        guardrail: tuple[str, str],
        prewarm: Sequence[float] = (),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """`client_factory` makes bedrock-runtime clients in the guardrail's region."""
        self._inner = inner
        self._identifier, self._version = guardrail
        self._clients = ClientsByTimeout(client_factory, prewarm)
        self._clock = clock

    @property
    def target(self) -> TargetRef:
        return self._inner.target

    def call(self, *, system: str, messages: Sequence[Message], timeout_s: float) -> ModelReply:
        started = self._clock()
        check_s = min(ASSESSMENT_TIMEOUT_S, timeout_s / 4)
        # The new question only: earlier turns were assessed when they were asked and answered.
        question = messages[-1].text if messages else ""
        blocked = self._assess("INPUT", question, check_s)
        if blocked is not None:
            return ModelReply(
                text=blocked,
                usage=Usage(),
                target=self.target,
                stop_reason="guardrail_intervened",
                guardrail_checked=True,
            )
        model_s = timeout_s - (self._clock() - started) - check_s  # the answer's assessment keeps its share
        if model_s <= 0:
            raise TargetCallError("Timeout", "no time left for the model after the guardrail")
        reply = self._inner.call(system=system, messages=messages, timeout_s=model_s)
        left_s = timeout_s - (self._clock() - started)
        if left_s <= 0:
            raise TargetCallError("Timeout", "no time left to assess the answer")
        changed = self._assess("OUTPUT", reply.text, min(check_s, left_s))
        if changed is not None:
            return replace(reply, text=changed, stop_reason="guardrail_intervened", guardrail_checked=True)
        return replace(reply, guardrail_checked=True)

    def _assess(self, source: str, text: str, timeout_s: float) -> str | None:
        """None when the guardrail lets `text` pass; otherwise what replaces it (the blocked message, or
        the text with PII masked)."""
        if not text.strip():
            return None  # nothing to assess (ApplyGuardrail refuses empty text)
        with runtime_errors():
            response: dict[str, Any] = self._clients.client(timeout_s).apply_guardrail(
                guardrailIdentifier=self._identifier,
                guardrailVersion=self._version,
                source=source,
                content=[{"text": {"text": text}}],
            )
        if response.get("action") != INTERVENED:
            return None
        outputs = "".join(output.get("text", "") for output in response.get("outputs", []))
        return outputs or FALLBACK_BLOCKED
