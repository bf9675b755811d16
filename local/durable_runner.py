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
    """One runner per durable function (job kind); `close` stops them. Safe to use from several threads."""

    def __init__(self, handlers: dict[str, Callable[..., Any]], *, execution_timeout_s: int = 3600) -> None:
        self._timeout = execution_timeout_s
        # One runner per kind, made here: the worker starts executions on its own threads (the sandbox's SQS
        # pump) while a caller may wait for a result; a runner made lazily by both at once would be two runners,
        # and the waiter's would not know the execution ("execution does not exist").
        self._runners: dict[str, DurableFunctionTestRunner] = {
            kind: DurableFunctionTestRunner(
                handler=handler, execution_timeout=execution_timeout_s, skip_time=True, poll_interval=0.05
            )
            for kind, handler in handlers.items()
        }
        self._started: dict[str, str] = {}  # execution name -> arn
        self._changed = threading.Condition()

    def _runner(self, kind: str) -> DurableFunctionTestRunner:
        runner = self._runners.get(kind)
        if runner is None:
            raise KeyError(f"no durable function is registered for {kind} jobs")
        return runner

    def start(self, kind: str, payload: dict[str, Any]) -> str:
        name = str(payload["job_id"])
        with self._changed:
            if name in self._started:  # DurableExecutionName: one execution per name
                return self._started[name]
            arn = self._runner(kind).run_async(
                input=json.dumps(payload), function_name=kind, execution_name=name, execution_timeout=self._timeout
            )
            self._started[name] = arn
            self._changed.notify_all()
            return arn

    def started(self, name: str) -> bool:
        with self._changed:
            return name in self._started

    def result(self, kind: str, name: str, *, timeout_s: float = 60) -> DurableFunctionTestResult:
        """The execution's result once it ended; waits first for the worker to start it (its job may read
        `running` a moment before the start call returns)."""
        with self._changed:
            if not self._changed.wait_for(lambda: name in self._started, timeout=timeout_s):
                raise TimeoutError(f"no durable execution named {name} was started")
            arn = self._started[name]
        return self._runner(kind).wait_for_result(execution_arn=arn, timeout=int(timeout_s))

    def close(self) -> None:
        for runner in self._runners.values():
            runner.close()  # type: ignore[no-untyped-call]  # the testing SDK's close() is untyped
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
