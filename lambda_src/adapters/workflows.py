"""core.workflow.WorkflowStarter on Lambda: an asynchronous Invoke of the durable function's alias ARN.

A durable function must be invoked by a qualified ARN (a version or an alias), so that every replay of an
execution runs the same code. `DurableExecutionName` is the job id: the service starts one execution per name,
so a second start of the same job (a redelivered message) joins the execution already running. The payload
holds ids only, never the document's text.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from adapters.aws_errors import dependency
from core.errors import InvalidRequest

_LAMBDA = "Lambda (the workflow function)"


class LambdaWorkflowStarter:
    def __init__(self, *, functions: dict[str, str], client: Any = None,
                 client_factory: Callable[[], Any] | None = None) -> None:  # fmt: skip
        """`functions`: job kind -> the durable function's alias ARN."""
        self._functions = functions
        self._client = client
        self._factory = client_factory

    def _lambda(self) -> Any:
        if self._client is None:
            if self._factory is not None:
                self._client = self._factory()
            else:
                from handlers.wiring import data_client

                self._client = data_client("lambda")
        return self._client

    @dependency(_LAMBDA, "start the workflow")
    def start(self, kind: str, payload: dict[str, Any]) -> None:
        function = self._functions.get(kind)
        if function is None:
            raise InvalidRequest(f"no workflow is configured for {kind} jobs")
        self._lambda().invoke(
            FunctionName=function,
            InvocationType="Event",
            DurableExecutionName=str(payload["job_id"]),
            Payload=json.dumps(payload).encode(),
        )
