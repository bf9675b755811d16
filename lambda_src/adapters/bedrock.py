"""TargetModel on Amazon Bedrock Converse and ConverseStream (botocore bedrock-runtime).

botocore's own retries are off (one attempt per call): the gateway is the single retry layer,
with a budget. Each call's read timeout comes from the gateway; botocore fixes timeouts per
client, so clients are kept per timeout step and a call uses the largest step that fits.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from typing import Any

from botocore.config import Config
from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError
from urllib3 import exceptions as urllib3_exceptions

from core.errors import TargetCallError
from core.models import Message, ModelReply, TargetRef, Usage

CONNECT_TIMEOUT_S = 1.0
# Read-timeout steps (seconds). A call gets the largest step <= the time the gateway allows,
# so no call outlives its deadline; the smallest step is the floor for very short budgets.
TIMEOUT_STEPS = (0.5, 1.0, 1.5, 2.0, 3.0, 5.0, 8.0, 13.0, 20.0, 25.0)

ClientFactory = Callable[[Config], Any]


def client_config(read_timeout: float) -> Config:
    return Config(
        connect_timeout=min(CONNECT_TIMEOUT_S, read_timeout),
        read_timeout=read_timeout,
        retries={"total_max_attempts": 1},  # the gateway's loop is the only retry layer
        tcp_keepalive=True,
    )


def timeout_step(timeout_s: float) -> float:
    fitting = [step for step in TIMEOUT_STEPS if step <= timeout_s]
    return fitting[-1] if fitting else TIMEOUT_STEPS[0]


class ClientsByTimeout:
    """bedrock-runtime clients, one per read-timeout step (botocore fixes timeouts per client)."""

    def __init__(self, factory: ClientFactory, prewarm: Sequence[float] = ()) -> None:
        self._factory = factory
        self._clients: dict[float, Any] = {}
        self._lock = threading.Lock()
        for timeout in prewarm:
            self.client(timeout)

    def client(self, timeout_s: float) -> Any:
        step = timeout_step(timeout_s)
        with self._lock:
            if step not in self._clients:
                self._clients[step] = self._factory(client_config(step))
            return self._clients[step]


@contextmanager
def runtime_errors() -> Iterator[None]:
    """botocore's errors as the gateway's TargetCallError: the runtime error code, or a transport one."""
    try:
        yield
    except ClientError as error:
        details = error.response.get("Error", {})
        raise TargetCallError(details.get("Code", "Unknown"), details.get("Message", "")) from error
    except (ReadTimeoutError, ConnectTimeoutError) as error:
        raise TargetCallError("Timeout", str(error)) from error
    except (ConnectionClosedError, EndpointConnectionError, BotoConnectionError) as error:
        raise TargetCallError("ConnectionReset", str(error)) from error


class BedrockTarget:
    def __init__(
        self,
        *,
        client_factory: ClientFactory,
        model_id: str,
        region: str,
        max_tokens: int,
        guardrail: tuple[str, str] | None = None,
        prewarm: Sequence[float] = (),
        name: str | None = None,
        version: Callable[[], str | None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """`model_id` is what Converse is called with (it may be an ARN with the account id); answers,
        history and metrics show `name` (the configured model) instead. `version`, read per call, may name
        another of the target's allowed model ids (a rollback by runtime switch): answers then show that id."""
        self._model_id = model_id
        self._version = version
        self._clock = clock
        self._target = TargetRef(model_id=name or model_id, region=region)
        self._max_tokens = max_tokens
        self._guardrail = guardrail
        # Clients for the timeouts the gateway uses most, made now (a few ms at init) rather than
        # on the first failover, when an incident is already costing the user time.
        self._clients = ClientsByTimeout(client_factory, prewarm)

    @property
    def target(self) -> TargetRef:
        return self._target

    def client(self, timeout_s: float) -> Any:
        return self._clients.client(timeout_s)

    def _request(self, system: str, messages: Sequence[Message]) -> tuple[dict[str, Any], TargetRef]:
        """Converse's (and ConverseStream's) request, and the target the answer shows (a switched version's id)."""
        switched = self._version() if self._version is not None else None
        model_id = switched or self._model_id
        request: dict[str, Any] = {
            "modelId": model_id,
            "system": [{"text": system}],
            "messages": [{"role": m.role, "content": [{"text": m.text}]} for m in messages],
            "inferenceConfig": {"maxTokens": self._max_tokens},
        }
        if self._guardrail is not None:
            identifier, version = self._guardrail
            request["guardrailConfig"] = {"guardrailIdentifier": identifier, "guardrailVersion": version}
        shown = (
            self._target
            if switched in (None, self._model_id)
            else TargetRef(model_id=model_id, region=self._target.region)
        )
        return request, shown

    def call(self, *, system: str, messages: Sequence[Message], timeout_s: float) -> ModelReply:
        request, shown = self._request(system, messages)
        with runtime_errors():
            response = self.client(timeout_s).converse(**request)
        content = response["output"]["message"]["content"]
        usage = response.get("usage", {})
        return ModelReply(
            text="".join(block.get("text", "") for block in content),
            usage=Usage(input_tokens=usage.get("inputTokens", 0), output_tokens=usage.get("outputTokens", 0)),
            target=shown,
            stop_reason=response.get("stopReason", "end_turn"),
            guardrail_checked=self._guardrail is not None,
        )

    def stream(self, *, system: str, messages: Sequence[Message], timeout_s: float) -> BedrockStream:
        """ConverseStream, on the client whose read timeout fits `timeout_s`: botocore applies it to every read
        of the stream, so a stall between chunks fails as a Timeout like a slow answer does. A guardrail runs
        in sync mode: each chunk is assessed before it is sent, so no text it would block reaches the user."""
        request, shown = self._request(system, messages)
        if "guardrailConfig" in request:
            request["guardrailConfig"]["streamProcessingMode"] = "sync"
        started = self._clock()
        with runtime_errors():
            response = self.client(timeout_s).converse_stream(**request)
        return BedrockStream(
            response["stream"],
            target=shown,
            guardrail_checked=self._guardrail is not None,
            first_token_by=started + timeout_s,
            clock=self._clock,
        )


def _stream_code(code: str) -> str:
    """Exception events name their type in camelCase (throttlingException): the taxonomy's code is the
    operation error's (ThrottlingException)."""
    return code[:1].upper() + code[1:] if code else "Unknown"


class BedrockStream:
    """A ConverseStream response read event by event: text deltas out, usage and stop reason kept.

    Errors inside the stream (exception events, a reset, a read timeout) become TargetCallError with the
    runtime code; before the first text, the call's whole timeout also bounds a trickle of other events."""

    def __init__(
        self,
        events: Any,
        *,
        target: TargetRef,
        guardrail_checked: bool,
        first_token_by: float,
        clock: Callable[[], float],
    ) -> None:
        self._events = events
        self._target = target
        self._guardrail_checked = guardrail_checked
        self._first_token_by = first_token_by
        self._clock = clock
        self._parts: list[str] = []
        self._usage = Usage()
        self._stop_reason = "end_turn"

    def __iter__(self) -> Iterator[str]:
        events = iter(self._events)
        while True:
            try:
                with stream_errors():
                    event = next(events, None)
            except TargetCallError:
                self.close()
                raise
            if event is None:
                return
            delta = event.get("contentBlockDelta", {}).get("delta", {}).get("text")
            if delta:
                self._parts.append(delta)
                yield delta
                continue
            if "messageStop" in event:
                self._stop_reason = event["messageStop"].get("stopReason", "end_turn")
            elif "metadata" in event:
                usage = event["metadata"].get("usage", {})
                self._usage = Usage(
                    input_tokens=usage.get("inputTokens", 0), output_tokens=usage.get("outputTokens", 0)
                )
            if not self._parts and self._clock() > self._first_token_by:
                self.close()
                raise TargetCallError("Timeout", "no text within the call's timeout")

    def reply(self) -> ModelReply:
        return ModelReply(
            text="".join(self._parts),
            usage=self._usage,
            target=self._target,
            stop_reason=self._stop_reason,
            guardrail_checked=self._guardrail_checked,
        )

    def close(self) -> None:
        with suppress(Exception):  # closing a broken connection may fail again: it is closed either way
            self._events.close()


@contextmanager
def stream_errors() -> Iterator[None]:
    """Errors while reading a stream: exception events (botocore's EventStreamError, a ClientError) and
    transport errors, which botocore leaves as urllib3's while a stream is read."""
    try:
        with runtime_errors():
            yield
    except TargetCallError as error:
        raise TargetCallError(_stream_code(error.code), error.detail) from error
    except urllib3_exceptions.ReadTimeoutError as error:
        raise TargetCallError("Timeout", str(error)) from error
    except (urllib3_exceptions.ProtocolError, urllib3_exceptions.HTTPError, OSError) as error:
        raise TargetCallError("ConnectionReset", str(error)) from error
