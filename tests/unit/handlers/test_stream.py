"""The WebSocket stream Lambda: frames in, the core's stream events out as connection posts (fake ChatService)."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from botocore.exceptions import ClientError, ReadTimeoutError

from core.errors import ModelUnavailable
from core.limits import UserLimits
from core.models import ChatAnswer, ChatRequest, TargetRef, Usage
from handlers.settings import Settings
from handlers.stream import ConnectionGone, DeltaCoalescer, StreamApi
from local.lambda_context import LocalContext
from tests.unit.core.test_chat import MemoryStore, service
from tests.unit.core.test_chat_stream import StreamingTarget, gateway

USER = "11111111-aaaa-4aaa-8aaa-111111111111"


def answer(text: str) -> ChatAnswer:
    return ChatAnswer(
        conversation_id="c1", answer=text, usage=Usage(), target=TargetRef(model_id="m", region="r"), turn=0
    )


class FakeChat:
    """The interface of ChatService.stream: start, deltas, end through `emit`; or an error before the first token."""

    def __init__(self, deltas: list[str], *, error: Exception | None = None, clock: list[float] | None = None) -> None:
        self.deltas = deltas
        self.error = error
        self.clock = clock
        self.calls: list[tuple[str, ChatRequest, float | None]] = []
        self.finished = False

    def stream(self, *, user_id: str, request: ChatRequest, emit: Any, remaining_s: float | None = None) -> Any:
        self.calls.append((user_id, request, remaining_s))
        if self.error is not None:
            raise self.error
        emit({"type": "start", "conversationId": "c1", "target": {"model_id": "m", "region": "r"}})
        for delta in self.deltas:
            if self.clock is not None:
                self.clock[0] += 0.010
            emit({"type": "delta", "text": delta})
        emit({"type": "end", "conversationId": "c1", "answer": "".join(self.deltas), "incomplete": False})
        self.finished = True
        return answer("".join(self.deltas))


class Posts:
    """The management API: after `gone_after` posts the client is gone, or every post fails with `failure`."""

    def __init__(self, *, gone_after: int | None = None, failure: Exception | None = None) -> None:
        self.sent: list[tuple[str, dict[str, Any]]] = []
        self.endpoints: list[str] = []
        self.gone_after = gone_after
        self.failure = failure
        self.attempts = 0

    def factory(self, endpoint: str) -> Any:
        self.endpoints.append(endpoint)

        def post(connection_id: str, data: bytes) -> None:
            self.attempts += 1
            if self.gone_after is not None and len(self.sent) >= self.gone_after:
                if self.failure is not None:
                    raise self.failure
                raise ConnectionGone(connection_id)
            self.sent.append((connection_id, json.loads(data)))

        return post

    @property
    def messages(self) -> list[dict[str, Any]]:
        return [message for _, message in self.sent]


NOW = 1_800_000_000.0
VALID_UNTIL = str(int(NOW) + 600)  # the ID token's `exp`, as the $connect authorizer puts it in the context


def event(
    body: Any, *, sub: str | None = USER, route: str = "$default", exp: str | None = VALID_UNTIL
) -> dict[str, Any]:
    authorizer: dict[str, Any] | None = {"principalId": sub, "sub": sub} if sub else None
    if authorizer is not None and exp is not None:
        authorizer["exp"] = exp
    return {
        "requestContext": {
            "routeKey": route,
            "connectionId": "conn-1",
            "domainName": "abc.execute-api.us-east-1.amazonaws.com",
            "stage": "v1",
            "authorizer": authorizer,
        },
        "body": body if isinstance(body, str) or body is None else json.dumps(body),
    }


def api(
    chat: Any, posts: Posts, clock: list[float] | None = None, *, now: float = NOW, limits: Any = None
) -> StreamApi:
    clock = clock if clock is not None else [0.0]
    return StreamApi(
        settings=Settings.from_env(), service=chat, poster=posts.factory, clock=lambda: clock[0],
        wall_clock=lambda: now, limits=limits,
    )  # fmt: skip


def context() -> LocalContext:
    return LocalContext(function_name="stream", timeout_s=60)


def test_a_chat_frame_streams_start_deltas_end_with_the_request_id() -> None:
    chat, posts = FakeChat(["Hel", "lo"]), Posts()
    result = api(chat, posts).handle(event({"action": "chat", "message": "hi", "requestId": "r-1"}), context())
    assert result == {"statusCode": 200}
    kinds = [message["type"] for message in posts.messages]
    assert kinds[0] == "start" and kinds[-1] == "end"
    assert "".join(m["text"] for m in posts.messages if m["type"] == "delta") == "Hello"
    assert all(message["requestId"] == "r-1" for message in posts.messages)
    assert posts.endpoints == ["https://abc.execute-api.us-east-1.amazonaws.com/v1"]
    assert {connection for connection, _ in posts.sent} == {"conn-1"}
    user, request, remaining = chat.calls[0]
    assert user == USER and request.message == "hi" and remaining is not None and 50 < remaining < 60


def test_the_conversation_id_is_passed_on() -> None:
    chat, posts = FakeChat(["x"]), Posts()
    conversation = "0b0e3d1c-52c4-4a4f-9b1a-3c1d2e3f4a5b"
    api(chat, posts).handle(event({"message": "hi", "conversationId": conversation}), context())
    assert chat.calls[0][1].conversation_id == conversation


def test_deltas_are_coalesced_but_the_first_goes_at_once() -> None:
    clock = [0.0]
    chat, posts = FakeChat(["t"] * 100, clock=clock), Posts()  # one token every 10 ms
    api(chat, posts, clock).handle(event({"message": "hi"}), context())
    deltas = [m["text"] for m in posts.messages if m["type"] == "delta"]
    assert deltas[0] == "t"  # time to first token is not traded for fewer posts
    assert "".join(deltas) == "t" * 100
    assert len(deltas) <= 30  # ~one post per 40 ms instead of 100
    assert posts.messages[-1]["type"] == "end"


def test_a_long_burst_is_flushed_by_size() -> None:
    sent: list[dict[str, Any]] = []
    coalescer = DeltaCoalescer(sent.append, clock=lambda: 0.0)  # no time passes at all
    for _ in range(50):
        coalescer({"type": "delta", "text": "x" * 20})
    coalescer({"type": "end", "incomplete": False})
    texts = [m["text"] for m in sent if m["type"] == "delta"]
    assert texts[0] == "x" * 20 and all(len(text) <= 200 for text in texts)
    assert "".join(texts) == "x" * 1000 and sent[-1]["type"] == "end"


@pytest.mark.parametrize(
    ("body", "status", "fragment"),
    [
        ("not json", 400, "not valid JSON"),
        ("", 400, "empty"),
        ([1, 2], 400, "JSON object"),
        ({"message": ""}, 400, "must not be empty"),
        ({"message": "x" * 9000}, 413, "limit"),
        ({"message": "hi", "extra": 1}, 400, "unknown field"),
        ({"action": "delete", "message": "hi"}, 400, "action"),
        ({"message": "hi", "conversationId": "../etc"}, 400, "conversation_id"),
        ({"message": "hi", "requestId": "x" * 65}, 400, "requestId"),
        ("[" * 100 + "]" * 100, 400, "levels deep"),
    ],
)
def test_a_bad_frame_is_an_error_message_not_a_crash(body: Any, status: int, fragment: str) -> None:
    chat, posts = FakeChat(["x"]), Posts()
    assert api(chat, posts).handle(event(body), context()) == {"statusCode": 200}
    assert chat.calls == []
    [message] = posts.messages
    assert message["type"] == "error" and message["status"] == status
    assert fragment in message["message"]


def test_an_error_for_a_bad_frame_still_carries_its_request_id() -> None:
    posts = Posts()
    api(FakeChat([]), posts).handle(event({"message": "", "requestId": "r-9"}), context())
    assert posts.messages[0]["requestId"] == "r-9"


def test_no_identity_is_401() -> None:
    chat, posts = FakeChat(["x"]), Posts()
    api(chat, posts).handle(event({"message": "hi"}, sub=None), context())
    assert posts.messages[0]["status"] == 401 and chat.calls == []


def test_a_down_model_before_the_first_token_is_503_with_retry_after() -> None:
    posts = Posts()
    chat = FakeChat([], error=ModelUnavailable("no model could answer", retry_after=7))
    api(chat, posts).handle(event({"message": "hi", "requestId": "r"}), context())
    assert posts.messages == [
        {"type": "error", "status": 503, "message": "no model could answer", "retryAfter": 7, "requestId": "r"}
    ]


def test_an_unexpected_error_is_a_500_message_without_details() -> None:
    posts = Posts()
    chat = FakeChat([], error=RuntimeError("secret internals"))
    api(chat, posts).handle(event({"message": "hi"}), context())
    [message] = posts.messages
    assert message["status"] == 500 and "secret" not in message["message"]


def test_a_gone_client_stops_the_posts_but_not_the_turn() -> None:
    chat, posts = FakeChat(["a", "b", "c"]), Posts(gone_after=2)
    api(chat, posts).handle(event({"message": "hi"}), context())
    assert chat.finished  # the core ran to the end, so the turn is stored
    assert len(posts.sent) == 2


def test_connect_and_disconnect_are_accepted_without_the_model() -> None:
    chat, posts = FakeChat(["x"]), Posts()
    for route in ("$connect", "$disconnect"):
        assert api(chat, posts).handle(event(None, route=route), context()) == {"statusCode": 200}
    assert chat.calls == [] and posts.sent == []


def test_the_question_never_reaches_the_logs(capsys: pytest.CaptureFixture[str]) -> None:
    posts = Posts()
    secret = "my-private-question-text"
    api(FakeChat([], error=ModelUnavailable("down", retry_after=1)), posts).handle(
        event({"message": secret}), context()
    )
    api(FakeChat(["x"]), posts).handle(event({"message": secret, "bogus": 1}), context())
    captured = capsys.readouterr()
    assert secret not in captured.out + captured.err


class Limits(UserLimits):
    """UserLimits with its counters replaced (admit and spend_answer are the real ones): records what the turn
    was charged."""

    def __init__(self) -> None:  # no counters, no clock: the three methods below stand in for them
        self.spent: list[int] = []

    def admit_tokens(self, user: str) -> None:
        return None

    def admit_request(self, user: str) -> None:
        return None

    def spend_tokens(self, user: str, tokens: int, *, admitted: Any) -> None:
        self.spent.append(tokens)
        return None


POST_FAILURES = [
    ClientError({"Error": {"Code": "LimitExceededException", "Message": "m"}}, "PostToConnection"),
    ClientError({"Error": {"Code": "ForbiddenException", "Message": "m"}}, "PostToConnection"),
    ReadTimeoutError(endpoint_url="https://abc.execute-api.us-east-1.amazonaws.com/v1"),
]


@pytest.mark.parametrize("failure", POST_FAILURES, ids=["limit-exceeded", "forbidden", "read-timeout"])
def test_a_post_that_fails_mid_answer_stops_the_posts_but_the_turn_is_stored_and_charged(failure: Exception) -> None:
    # GIVEN the real ChatService over the real gateway and a connection whose posts fail after the first two
    store, limits = MemoryStore(), Limits()
    chat = service(store, gateway(StreamingTarget("primary", ["Lisbon ", "is the ", "capital ", "of ", "Portugal."])))
    posts = Posts(gone_after=2, failure=failure)

    # WHEN a message is answered (no time passes: start, the first delta, then the rest at the end)
    clock = [0.0]
    result = api(chat, posts, clock, limits=limits).handle(event({"message": "hi", "requestId": "r-1"}), context())

    # THEN no crash, a single failed post (no further posts, no error frame on the broken connection) ...
    assert result == {"statusCode": 200}
    assert len(posts.sent) == 2 and posts.attempts == 3
    # ... and the answer ran to its end: the turn is stored and its tokens charged
    [conversation] = store.items.values()
    assert conversation.turns[0].assistant == "Lisbon is the capital of Portugal."
    assert not conversation.turns[0].incomplete
    assert limits.spent == [9]


def test_an_unexpected_error_after_a_failed_post_does_not_crash_on_the_error_message() -> None:
    posts = Posts(gone_after=0, failure=ClientError({"Error": {"Code": "InternalServerError"}}, "PostToConnection"))
    chat = FakeChat([], error=RuntimeError("boom"))
    assert api(chat, posts).handle(event({"message": "hi"}), context()) == {"statusCode": 200}
    assert posts.attempts == 1 and posts.sent == []


def test_a_failed_post_is_counted_and_logged_without_the_answer(caplog: pytest.LogCaptureFixture) -> None:
    from handlers.stream import metrics

    metrics.clear_metrics()
    failure = ClientError({"Error": {"Code": "LimitExceededException", "Message": "m"}}, "PostToConnection")
    posts = Posts(gone_after=1, failure=failure)
    secret = "the-private-answer-text"
    api(FakeChat([secret]), posts).handle(event({"message": "hi"}), context())
    assert metrics.metric_set["StreamPostFailed"]["Value"] == [1.0]
    assert "StreamAnswered" in metrics.metric_set  # the turn went on
    metrics.clear_metrics()
    [record] = [r for r in caplog.records if r.getMessage() == "post to the connection failed"]
    assert vars(record)["code"] == "LimitExceededException"
    assert not any(secret in repr(vars(r)) for r in caplog.records)


@pytest.mark.parametrize(
    ("exp", "now"),
    [(VALID_UNTIL, NOW + 600), (VALID_UNTIL, NOW + 3600), (None, NOW), ("soon", NOW)],
    ids=["at-exp", "an-hour-later", "no-exp", "garbage-exp"],
)
def test_a_message_after_the_tokens_expiry_is_a_401_asking_to_sign_in_again(exp: str | None, now: float) -> None:
    chat, posts = FakeChat(["x"]), Posts()
    api(chat, posts, now=now).handle(event({"message": "hi", "requestId": "r-2"}, exp=exp), context())
    assert chat.calls == []
    assert posts.messages == [
        {"type": "error", "status": 401, "message": "your sign-in expired: sign in again", "requestId": "r-2"}
    ]


def test_a_message_before_the_tokens_expiry_is_answered() -> None:
    chat, posts = FakeChat(["x"]), Posts()
    api(chat, posts, now=NOW + 599).handle(event({"message": "hi"}), context())
    assert chat.finished and posts.messages[-1]["type"] == "end"


def test_unknown_fields_are_counted_never_named_in_the_error() -> None:
    chat, posts = FakeChat(["x"]), Posts()
    api(chat, posts).handle(event({"message": "hi", "my-secret-key": 1, "other": 2}), context())
    [message] = posts.messages
    assert message["status"] == 400
    assert message["message"] == "2 unknown field(s); allowed: action, conversationId, message, requestId"


def test_the_real_wall_clock_is_the_default() -> None:
    chat, posts = FakeChat(["x"]), Posts()
    stream_api = StreamApi(settings=Settings.from_env(), service=chat, poster=posts.factory)  # type: ignore[arg-type]
    stream_api.handle(event({"message": "hi"}, exp=str(int(time.time()) + 600)), context())
    assert chat.finished
