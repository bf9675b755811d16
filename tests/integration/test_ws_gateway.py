"""The sandbox WebSocket gateway: the authorizer on the upgrade (401/403 refuse it), one $default invocation per
frame through the real stream handler, whose boto3 management client posts back through the gateway's
management API (GoneException once the client left). The chat service is a fake: the core is tested elsewhere."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from core.models import ChatAnswer, ChatRequest, TargetRef, Usage
from handlers.settings import Settings
from handlers.stream import StreamApi, management_poster
from local.lambda_context import LocalContext
from local.ws_gateway import WsGateway


class SlowChat:
    """Emits start, deltas, end; `release` lets a test hold the stream after the first delta."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.release.set()
        self.done = threading.Event()

    def stream(self, *, user_id: str, request: ChatRequest, emit: Any, remaining_s: float | None = None) -> Any:
        emit({"type": "start", "conversationId": "c1", "target": {"model_id": "m", "region": "r"}})
        emit({"type": "delta", "text": f"{user_id}:"})
        self.release.wait(10)
        for word in request.message.split():
            emit({"type": "delta", "text": f" {word}"})
        emit({"type": "end", "conversation_id": "c1", "answer": "x", "incomplete": False})
        self.done.set()
        return ChatAnswer(
            conversation_id="c1", answer="x", usage=Usage(), target=TargetRef(model_id="m", region="r"), turn=0
        )


def authorize(event: dict[str, Any]) -> dict[str, Any]:
    token = (event.get("queryStringParameters") or {}).get("token")
    if token in (None, "bad"):
        raise Exception("Unauthorized")
    effect = "Deny" if token == "other-client" else "Allow"
    statement = {"Action": "execute-api:Invoke", "Effect": effect, "Resource": event["methodArn"]}
    # As the real authorizer: the token's expiry travels in the context (the stream handler checks it per message).
    context = {"sub": token, "exp": str(int(time.time()) + 3600)}
    return {"principalId": token, "policyDocument": {"Statement": [statement]}, "context": context}


@pytest.fixture
def gateway() -> Iterator[tuple[WsGateway, SlowChat]]:
    chat = SlowChat()
    api = StreamApi(settings=Settings.from_env(), service=chat, poster=management_poster, endpoint_scheme="http")  # type: ignore[arg-type]
    gateway = WsGateway(
        authorize=authorize, invoke=lambda event: api.handle(event, LocalContext(timeout_s=60)), region="us-east-1"
    )
    gateway.start()
    yield gateway, chat
    gateway.stop()


def receive_until_end(socket: Any) -> list[dict[str, Any]]:
    messages = []
    while True:
        message = json.loads(socket.recv(timeout=20))
        messages.append(message)
        if message["type"] in ("end", "error"):
            return messages


def test_a_signed_in_client_gets_the_stream_through_the_management_api(gateway: tuple[WsGateway, SlowChat]) -> None:
    server, _ = gateway
    with connect(f"{server.url}?token=alice") as socket:
        socket.send(json.dumps({"action": "chat", "message": "hello there", "requestId": "r1"}))
        messages = receive_until_end(socket)
    assert messages[0]["type"] == "start" and messages[-1]["type"] == "end"
    text = "".join(m["text"] for m in messages if m["type"] == "delta")
    assert text == "alice: hello there"  # the user is the authorizer's principal
    assert all(m["requestId"] == "r1" for m in messages)


@pytest.mark.parametrize(("token", "status"), [(None, 401), ("bad", 401), ("other-client", 403)])
def test_the_upgrade_is_refused_without_a_valid_token(
    gateway: tuple[WsGateway, SlowChat], token: str | None, status: int
) -> None:
    server, _ = gateway
    url = server.url + (f"?token={token}" if token else "")
    with pytest.raises(InvalidStatus) as refused:
        connect(url)
    assert refused.value.response.status_code == status


def test_a_bad_frame_is_an_error_message(gateway: tuple[WsGateway, SlowChat]) -> None:
    server, _ = gateway
    with connect(f"{server.url}?token=alice") as socket:
        socket.send("{not json")
        [message] = receive_until_end(socket)
    assert message["type"] == "error" and message["status"] == 400


def test_a_client_that_leaves_mid_stream_does_not_stop_the_answer(gateway: tuple[WsGateway, SlowChat]) -> None:
    server, chat = gateway
    chat.release.clear()
    with connect(f"{server.url}?token=alice") as socket:
        socket.send(json.dumps({"message": "one two three"}))
        assert json.loads(socket.recv(timeout=20))["type"] == "start"
        assert json.loads(socket.recv(timeout=20))["type"] == "delta"
    chat.release.set()  # the client is gone: the next posts answer 410 GoneException
    assert chat.done.wait(20)  # the core ran to its end (so the turn is stored)


def test_a_region_that_goes_down_refuses_upgrades_with_503(gateway: tuple[WsGateway, SlowChat]) -> None:
    server, _ = gateway
    server.go_down()
    with pytest.raises(InvalidStatus) as refused:
        connect(f"{server.url}?token=alice")
    assert refused.value.response.status_code == 503
    server.come_back()
    with connect(f"{server.url}?token=alice") as socket:
        socket.send(json.dumps({"message": "hi"}))
        assert receive_until_end(socket)[-1]["type"] == "end"
