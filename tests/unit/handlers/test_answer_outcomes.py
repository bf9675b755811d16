"""Both answering Lambdas count each answer once for the region (adapters/metrics.py record_outcome), as the
DegradedRate alarm reads it: POST /chat's answered or degraded answers, the stream's answered or incomplete ones,
degraded when the answer is."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from core.errors import AtCapacity, DependencyUnavailable, InvalidRequest, Overloaded
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


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (Overloaded("every model breaker is open", retry_after=5), [True]),  # no model can answer in this region
        (DependencyUnavailable("the conversations table is unavailable", retry_after=5), [True]),
        (RuntimeError("a bug"), [True]),  # an unhandled error: unanswered, as a REST 500 in the 5xx rate
        (AtCapacity("every target is at capacity", retry_after=1), []),  # busy (429), not down
        (InvalidRequest("message must not be empty"), []),  # the user's request, not the region
    ],
)
def test_a_stream_refused_for_want_of_a_model_or_a_dependency_counts_as_degraded(
    outcomes: list[bool], error: Exception, expected: list[bool]
) -> None:
    """The WebSocket API has no 5xx metric: a stream the region could not answer counts in the degraded rate, so
    RegionUnhealthy sees a region whose every breaker is open on the web UI's default path too."""
    handler = stream.api(stream.FakeChat([], error=error), stream.Posts())

    handler.handle(stream.event({"message": "hi"}), stream.context())

    assert outcomes == expected


def test_a_chat_request_shed_because_every_breaker_is_open_counts_as_degraded(
    api: Api,  # noqa: F811
    outcomes: list[bool],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def shed(self: Any, **_: Any) -> ChatAnswer:
        raise Overloaded("every model breaker is open", retry_after=5)

    monkeypatch.setattr("core.chat.ChatService.answer", shed)

    status, _, _ = api.call("POST", "/chat", body={"message": "hi"})

    assert status == 503 and outcomes == [True]
