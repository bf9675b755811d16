"""ChatModel on Amazon Bedrock Converse (boto3 bedrock-runtime)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from botocore.config import Config
from botocore.exceptions import ClientError, ConnectionError, ReadTimeoutError

from core.errors import ModelRejected, ModelUnavailable
from core.models import Message, ModelReply, TargetRef, Usage

logger = logging.getLogger(__name__)

# Codes worth a retry later: the caller gets 503 + Retry-After.
_TRANSIENT = {
    "ThrottlingException", "ServiceUnavailableException", "InternalServerException",
    "ModelNotReadyException", "ModelTimeoutException", "ModelErrorException",
}  # fmt: skip
# Configuration faults: the target cannot work until an operator fixes access or the id.
_MISCONFIGURED = {"AccessDeniedException", "ResourceNotFoundException"}

CONNECT_TIMEOUT_S = 2.0
READ_TIMEOUT_S = 10.0


def client_config() -> Config:
    """Explicit timeouts; botocore's standard retry mode is the only retry layer (2 attempts)."""
    return Config(
        connect_timeout=CONNECT_TIMEOUT_S,
        read_timeout=READ_TIMEOUT_S,
        retries={"mode": "standard", "max_attempts": 2},
        tcp_keepalive=True,
    )


class BedrockConverseModel:
    def __init__(self, *, client: Any, model_id: str, region: str, max_tokens: int) -> None:
        self._client = client
        self._target = TargetRef(model_id=model_id, region=region)
        self._max_tokens = max_tokens

    @property
    def target(self) -> TargetRef:
        return self._target

    def converse(self, *, system: str, messages: Sequence[Message], deadline_s: float) -> ModelReply:
        del deadline_s  # bounded by the client's timeouts until the gateway derives them per attempt
        try:
            response = self._client.converse(
                modelId=self._target.model_id,
                system=[{"text": system}],
                messages=[{"role": m.role, "content": [{"text": m.text}]} for m in messages],
                inferenceConfig={"maxTokens": self._max_tokens},
            )
        except ClientError as error:
            raise _translate(error, self._target) from error
        except (ReadTimeoutError, ConnectionError) as error:
            raise ModelUnavailable(
                f"the model {self._target.model_id} did not answer in time; try again shortly", retry_after=5
            ) from error
        content = response["output"]["message"]["content"]
        text = "".join(block.get("text", "") for block in content)
        usage = response.get("usage", {})
        return ModelReply(
            text=text,
            usage=Usage(input_tokens=usage.get("inputTokens", 0), output_tokens=usage.get("outputTokens", 0)),
            target=self._target,
            stop_reason=response.get("stopReason", "end_turn"),
        )


def _translate(error: ClientError, target: TargetRef) -> Exception:
    code = error.response.get("Error", {}).get("Code", "")
    detail = error.response.get("Error", {}).get("Message", "")
    if code == "ValidationException":
        return ModelRejected(f"the model rejected the request: {detail}")
    if code in _MISCONFIGURED:
        logger.error("model target misconfigured", extra={"code": code, "model_id": target.model_id})
        return ModelUnavailable("the model is not available right now; the operators have been alerted", retry_after=30)
    if code in _TRANSIENT:
        return ModelUnavailable("the model is busy right now; try again shortly", retry_after=5)
    return error
