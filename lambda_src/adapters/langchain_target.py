"""TargetModel over any LangChain chat model: a secondary target from another provider.

LangChain is imported only when such a target is configured, so the chat path's cold start does
not pay for it otherwise. A LangChain model has no per-call timeout, so each call runs on a worker
thread and is abandoned (not waited for) when the gateway's timeout passes; the model's own
client timeout bounds the abandoned call.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

from core.errors import TargetCallError
from core.models import Message, ModelReply, TargetRef, Usage


def load_chat_model(spec: dict[str, Any], secret_kwargs: Mapping[str, Any] | None = None) -> Any:
    """Build a chat model from {"class": "package.module:ClassName", "kwargs": {...}}; `secret_kwargs` (the
    provider's credentials, from Secrets Manager) are added to the kwargs."""
    module_name, _, class_name = spec["class"].partition(":")
    if not module_name or not class_name:
        raise ValueError(f"langchain class must look like 'package.module:ClassName', got {spec['class']!r}")
    kwargs = {**spec.get("kwargs", {}), **(secret_kwargs or {})}
    return getattr(importlib.import_module(module_name), class_name)(**kwargs)


class LangChainTarget:
    def __init__(self, *, chat_model: Any, name: str, region: str = "-") -> None:
        self._model = chat_model
        self._target = TargetRef(model_id=name, region=region)
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix=f"lc-{name[:20]}")

    @property
    def target(self) -> TargetRef:
        return self._target

    def call(self, *, system: str, messages: Sequence[Message], timeout_s: float) -> ModelReply:
        from langchain_core.messages import AIMessage, HumanMessage, SystemMessage

        prompt = [SystemMessage(content=system)] + [
            HumanMessage(content=m.text) if m.role == "user" else AIMessage(content=m.text) for m in messages
        ]
        future = self._pool.submit(self._model.invoke, prompt)
        try:
            response = future.result(timeout=timeout_s)
        except FutureTimeout as error:
            raise TargetCallError("Timeout", f"no answer within {timeout_s:.1f} s") from error
        except Exception as error:
            raise TargetCallError(_code(error), str(error)) from error
        usage = getattr(response, "usage_metadata", None) or {}
        metadata = getattr(response, "response_metadata", None) or {}
        text = response.content if isinstance(response.content, str) else _join(response.content)
        return ModelReply(
            text=text,
            usage=Usage(input_tokens=usage.get("input_tokens", 0), output_tokens=usage.get("output_tokens", 0)),
            target=self._target,
            stop_reason=metadata.get("stopReason") or metadata.get("stop_reason") or "end_turn",
        )


def _code(error: Exception) -> str:
    """A boto error keeps its Bedrock code; other providers' errors fail over by type name."""
    response = getattr(error, "response", None)
    if isinstance(response, dict) and "Error" in response:
        return str(response["Error"].get("Code", type(error).__name__))
    return type(error).__name__


def _join(content: list[Any]) -> str:
    return "".join(block.get("text", "") if isinstance(block, dict) else str(block) for block in content)


class UnavailableTarget:
    """A target whose set-up failed at cold start (e.g. its credentials could not be read): every call fails
    with that code, so the gateway fails over (and alarms on AccessDenied/ResourceNotFound) instead of the
    whole Lambda failing to start for the sake of one secondary."""

    def __init__(self, *, name: str, region: str, code: str) -> None:
        self._target = TargetRef(model_id=name, region=region)
        self._code = code

    @property
    def target(self) -> TargetRef:
        return self._target

    def call(self, *, system: str, messages: Sequence[Message], timeout_s: float) -> ModelReply:
        raise TargetCallError(self._code, "the target could not be set up at cold start")
