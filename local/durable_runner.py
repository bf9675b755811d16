"""The sandbox's Lambda durable execution service: the testing SDK's in-process runner
(aws-durable-execution-sdk-python-testing), which implements the checkpoint API the SDK calls
(CheckpointDurableExecution / GetDurableExecutionState) in memory, re-invokes the handler after a wait or a
step retry (time skipped: a throttling wait costs the sandbox no time, as it costs AWS no compute), and
re-invokes it after an invocation that crashed (as Lambda retries a failed invocation of a durable function).

The handler is the same object the Lambda runs (handlers.workflow.bootstrap's durable handler); only the
service around it is local. `LocalWorkflowStarter` is the worker's WorkflowStarter in the sandbox: where AWS
gets an async Invoke of the alias with DurableExecutionName = job id, the sandbox starts an execution of that
name on the runner (a second start of the same name is refused by the runner, as by the service).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

from aws_durable_execution_sdk_python_testing.runner import DurableFunctionTestResult, DurableFunctionTestRunner


class LocalDurableFunctions:
    """One runner per durable function (job kind), started on first use; `close` stops them."""

    def __init__(self, handlers: dict[str, Callable[..., Any]], *, execution_timeout_s: int = 3600) -> None:
        self._handlers = handlers
        self._timeout = execution_timeout_s
        self._runners: dict[str, DurableFunctionTestRunner] = {}
        self._started: dict[str, str] = {}  # execution name -> arn
        self._lock = threading.Lock()

    def _runner(self, kind: str) -> DurableFunctionTestRunner:
        if kind not in self._runners:
            self._runners[kind] = DurableFunctionTestRunner(
                handler=self._handlers[kind], execution_timeout=self._timeout, skip_time=True, poll_interval=0.05
            )
        return self._runners[kind]

    def start(self, kind: str, payload: dict[str, Any]) -> str:
        name = str(payload["job_id"])
        with self._lock:
            if name in self._started:  # DurableExecutionName: one execution per name
                return self._started[name]
            arn = self._runner(kind).run_async(
                input=json.dumps(payload), function_name=kind, execution_name=name, execution_timeout=self._timeout
            )
            self._started[name] = arn
            return arn

    def result(self, kind: str, name: str, *, timeout_s: float = 60) -> DurableFunctionTestResult:
        return self._runner(kind).wait_for_result(execution_arn=self._started[name], timeout=int(timeout_s))

    def close(self) -> None:
        for runner in self._runners.values():
            runner.close()
        self._runners.clear()

    def __enter__(self) -> LocalDurableFunctions:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


class LocalWorkflowStarter:
    """core.workflow.WorkflowStarter on the local runner (the sandbox's worker uses it)."""

    def __init__(self, functions: LocalDurableFunctions) -> None:
        self._functions = functions

    def start(self, kind: str, payload: dict[str, Any]) -> None:
        self._functions.start(kind, payload)
