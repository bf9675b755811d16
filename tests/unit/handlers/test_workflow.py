"""handlers/workflow.py's rules on the SDK's types: which step failures wait and retry (durably), which end the job,
and the reason the user reads for each."""

from __future__ import annotations

import pytest
from aws_durable_execution_sdk_python import StepError

from core.workflow import ModelBusy, Superseded, WorkflowFailed, WorkflowSettings
from handlers.workflow import _FAILED_STEP, SdkDurable, _reason, retry_strategy

SETTINGS = WorkflowSettings(retry_base_s=10, retry_cap_s=300, max_attempts=4)
decide = retry_strategy(SETTINGS)


def test_a_busy_model_waits_with_backoff_honouring_its_hint_until_the_attempts_run_out() -> None:
    busy = ModelBusy("throttled", delay_s=0)

    assert [decide(busy, attempt).delay_seconds for attempt in (1, 2, 3)] == [10, 20, 40]
    assert decide(ModelBusy("throttled", delay_s=120), 1).delay_seconds == 120
    assert decide(busy, 4).should_retry is False  # max_attempts: the job fails with the "busy" reason


def test_a_failed_workflow_or_a_superseded_job_is_never_retried_and_other_errors_three_times() -> None:
    assert decide(WorkflowFailed("document gone"), 1).should_retry is False
    assert decide(Superseded("adopted"), 1).should_retry is False
    other = RuntimeError("store hiccup")
    assert decide(other, 1).should_retry and decide(other, 2).should_retry
    assert decide(other, 3).should_retry is False


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (StepError("document d was not found", "core.workflow.WorkflowFailed"), "document d was not found"),
        (StepError("throttled", "core.workflow.ModelBusy"), "the model stayed busy for too long"),
        (StepError("KeyError: 'secret detail'", "builtins.KeyError"), _FAILED_STEP),  # internals never shown
        (StepError(None, None), _FAILED_STEP),
    ],
)
def test_the_reason_a_user_reads(error: StepError, reason: str) -> None:
    assert reason in _reason(error)


class FailingContext:
    def __init__(self, error: Exception) -> None:
        self._error = error

    def step(self, fn: object, *, name: str, config: object) -> object:
        raise self._error


def test_the_adapter_turns_step_errors_into_the_cores_exceptions() -> None:
    with pytest.raises(WorkflowFailed, match="was not found"):
        SdkDurable(FailingContext(StepError("doc was not found", "core.workflow.WorkflowFailed")), SETTINGS).step(
            lambda: None, name="plan"
        )
    with pytest.raises(Superseded):
        SdkDurable(FailingContext(StepError("adopted", "core.workflow.Superseded")), SETTINGS).step(
            lambda: None, name="chapter-1"
        )
