"""The sandbox's durable execution service (local/durable_runner.py): one execution per name, and a result that
can be awaited from another thread than the one that starts the execution (the sandbox's worker starts it on an
SQS pump thread while a caller waits). Ordering is by events, never by sleeping."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from aws_durable_execution_sdk_python import DurableContext, durable_execution

from local.durable_runner import LocalDurableFunctions, LocalWorkflowStarter


def _handler(calls: list[str]) -> Any:
    def run(event: dict[str, Any], context: DurableContext) -> dict[str, Any]:
        doubled = context.step(lambda _: calls.append(event["job_id"]) or event["n"] * 2, name="double")
        return {"doubled": doubled}

    return durable_execution(run)


def test_a_waiter_that_asks_before_the_start_gets_the_result_of_the_execution_started_on_another_thread() -> None:
    calls: list[str] = []
    with LocalDurableFunctions({"double": _handler(calls)}) as functions:
        results: list[Any] = []
        asking = threading.Event()

        def wait() -> None:
            asking.set()
            results.append(functions.result("double", "job-1", timeout_s=30))

        waiter = threading.Thread(target=wait)
        waiter.start()
        assert asking.wait(10)
        starter = threading.Thread(
            target=LocalWorkflowStarter(functions).start, args=("double", {"job_id": "job-1", "n": 21})
        )
        starter.start()
        starter.join(30)
        waiter.join(30)

        assert results and results[0].get_step("double").result == "42"
        assert calls == ["job-1"]


def test_a_second_start_of_the_same_name_is_the_same_execution() -> None:
    calls: list[str] = []
    with LocalDurableFunctions({"double": _handler(calls)}) as functions:
        first = functions.start("double", {"job_id": "job-2", "n": 1})
        assert functions.start("double", {"job_id": "job-2", "n": 1}) == first
        functions.result("double", "job-2", timeout_s=30)
        assert calls == ["job-2"]


def test_waiting_for_an_execution_never_started_times_out_and_an_unknown_kind_is_refused() -> None:
    with LocalDurableFunctions({"double": _handler([])}) as functions:
        with pytest.raises(TimeoutError):
            functions.result("double", "never", timeout_s=0.01)
        with pytest.raises(KeyError):
            functions.start("translate", {"job_id": "job-3"})
