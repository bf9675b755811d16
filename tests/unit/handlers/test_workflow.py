"""handlers/workflow.py's rules on the SDK's types: which step failures wait and retry (durably), which end the job,
and the reason the user reads for each."""

from __future__ import annotations

import sys
from types import SimpleNamespace

import pytest
from aws_durable_execution_sdk_python import StepError

from core.limits import UserLimits
from core.workflow import ModelBusy, Superseded, WorkflowFailed, WorkflowSettings
from handlers.settings import Settings
from handlers.workflow import _FAILED_STEP, SdkDurable, _reason, build_workflow, retry_strategy

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


# --- the composition root ----------------------------------------------------------------------------------------
def test_the_workflow_is_built_without_the_worker_module_and_with_the_users_token_budgets(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """handlers.worker builds a whole worker when imported: the workflow Lambda's cold start must not pay for it
    (its async gateway settings come from handlers.wiring)."""
    monkeypatch.setitem(sys.modules, "handlers.worker", None)  # any import of it now raises ImportError
    settings = Settings.from_env().but(
        jobs_table_name="jobs", documents_table_name="documents", vector_bucket_name="vectors",
        vector_index_name="chunks", usage_table_name="usage", daily_tokens_per_user=1000,
    )  # fmt: skip
    dynamodb = SimpleNamespace(meta=SimpleNamespace(region_name="us-east-1"))
    clients = {"dynamodb": dynamodb, "s3vectors": object(), "bedrock_factory": lambda region, config: object()}

    flow = build_workflow(settings, **clients)

    assert isinstance(flow._budget, UserLimits) and flow._budget.settings.daily_tokens == 1000
    assert build_workflow(settings.but(daily_tokens_per_user=0), **clients)._budget is None
