"""Both answering Lambdas count each answer once for the region (adapters/metrics.py record_outcome), as the
DegradedRate alarm reads it: POST /chat's answered or degraded answers, the stream's answered or incomplete ones,
degraded when the answer is."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from core.models import ChatAnswer
from tests.unit.handlers import test_stream as stream
from tests.unit.handlers.test_chat import Api, api  # noqa: F401 - the fixture


@pytest.fixture
def outcomes(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    recorded: list[bool] = []

    def record(*, degraded: bool) -> None:
        recorded.append(degraded)

    monkeypatch.setattr("handlers.chat.record_outcome", record)
    monkeypatch.setattr("handlers.stream.record_outcome", record)
    return recorded


def test_a_chat_answer_counts_once_not_degraded(api: Api, outcomes: list[bool]) -> None:  # noqa: F811
    api.expect_model("Paris.")

    status, _, _ = api.call("POST", "/chat", body={"message": "capital of France?"})

    assert status == 200 and outcomes == [False]


@pytest.mark.parametrize("degraded_status", [200, 503])
def test_a_degraded_chat_answer_counts_once_degraded_even_as_a_503(
    api: Api,  # noqa: F811
    outcomes: list[bool],
    degraded_status: int,
) -> None:
    api.configure(degraded_status=degraded_status)
    api.bedrock.add_client_error("converse", service_error_code="ModelErrorException", http_status_code=424)

    status, _, _ = api.call("POST", "/chat", body={"message": "hi"})

    assert status == degraded_status and outcomes == [True]


def test_a_shed_chat_request_is_no_answer(api: Api, outcomes: list[bool]) -> None:  # noqa: F811
    api.bedrock.add_client_error("converse", service_error_code="ThrottlingException", http_status_code=400)

    status, _, _ = api.call("POST", "/chat", body={"message": "hi"})

    assert status == 429 and outcomes == []


class EndsAs(stream.FakeChat):
    """The fake stream, its answer changed (degraded, incomplete)."""

    def __init__(self, **changes: Any) -> None:
        super().__init__(["Hel", "lo"])
        self.changes = changes

    def stream(self, **kwargs: Any) -> ChatAnswer:
        answer: ChatAnswer = super().stream(**kwargs)
        return dataclasses.replace(answer, **self.changes)


@pytest.mark.parametrize(
    ("changes", "expected"),
    [({}, [False]), ({"degraded": True}, [True]), ({"incomplete": True}, [False])],
)
def test_a_streamed_answer_counts_once_degraded_when_it_is(
    outcomes: list[bool], changes: dict[str, Any], expected: list[bool]
) -> None:
    handler = stream.api(EndsAs(**changes), stream.Posts())

    assert handler.handle(stream.event({"message": "hi"}), stream.context()) == {"statusCode": 200}

    assert outcomes == expected
