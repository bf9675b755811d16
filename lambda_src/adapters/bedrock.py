"""TargetModel on Amazon Bedrock Converse (botocore bedrock-runtime).

botocore's own retries are off (one attempt per call): the gateway is the single retry layer,
with a budget. Each call's read timeout comes from the gateway; botocore fixes timeouts per
client, so clients are kept per timeout step and a call uses the largest step that fits.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
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
    ) -> None:
        """`model_id` is what Converse is called with (it may be an ARN with the account id); answers,
        history and metrics show `name` (the configured model) instead. `version`, read per call, may name
        another of the target's allowed model ids (a rollback by runtime switch): answers then show that id."""
        self._model_id = model_id
        self._version = version
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

    def call(self, *, system: str, messages: Sequence[Message], timeout_s: float) -> ModelReply:
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
        with runtime_errors():
            response = self.client(timeout_s).converse(**request)
        content = response["output"]["message"]["content"]
        usage = response.get("usage", {})
        return ModelReply(
            text="".join(block.get("text", "") for block in content),
            usage=Usage(input_tokens=usage.get("inputTokens", 0), output_tokens=usage.get("outputTokens", 0)),
            target=self._target
            if switched in (None, self._model_id)
            else TargetRef(model_id=model_id, region=self._target.region),
            stop_reason=response.get("stopReason", "end_turn"),
            guardrail_checked=self._guardrail is not None,
        )
