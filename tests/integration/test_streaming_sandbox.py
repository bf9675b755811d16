"""Streamed answers in the sandbox (ADR 0004): the WebSocket gateway with the real authorizer against the sandbox
user pool, the stream Lambda with the real ChatService, gateway and Bedrock emulator (ConverseStream), and the
management API through boto3. A mid-stream fault ends the answer honestly: incomplete, stored as such."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from local.sandbox import DEMO_PASSWORD, DEMO_USER
from tests.sandbox_fixture import call, emulator_faults, sandbox, sign_in  # noqa: F401 - the fixture

PRIMARY = "us.amazon.nova-lite-v1:0@us-east-1"


def ask(sandbox: Any, token: str, message: str, **extra: Any) -> list[dict[str, Any]]:  # noqa: F811
    url = sandbox.regions[sandbox.region].stream.url
    with connect(f"{url}?token={token}") as socket:
        socket.send(json.dumps({"action": "chat", "message": message, "requestId": "r-1", **extra}))
        messages = []
        while True:
            message = json.loads(socket.recv(timeout=60))
            messages.append(message)
            if message["type"] in ("end", "error"):
                return messages


def test_an_answer_streams_as_start_deltas_end_and_is_stored(sandbox: Any) -> None:  # noqa: F811
    token = sign_in(sandbox, DEMO_USER, DEMO_PASSWORD)
    messages = ask(sandbox, token, "Mount Everest is the highest mountain. Which mountain is the highest?")
    kinds = [m["type"] for m in messages]
    assert kinds[0] == "start" and kinds[-1] == "end" and kinds.count("delta") >= 2, kinds
    end = messages[-1]
    text = "".join(m["text"] for m in messages if m["type"] == "delta")
    assert text == end["answer"] and "Mount Everest" in text
    assert end["incomplete"] is False and all(m["requestId"] == "r-1" for m in messages)
    status, conversation, _ = call(sandbox, "GET", f"/conversations/{messages[0]['conversationId']}", token=token)
    assert status == 200 and conversation["turns"][-1]["assistant"] == text


def test_a_stream_that_breaks_after_the_first_token_ends_incomplete(sandbox: Any) -> None:  # noqa: F811
    token = sign_in(sandbox, DEMO_USER, DEMO_PASSWORD)
    base = sandbox.emulator_faults
    broken = {"stream_break_after": 2, "stream_break": "modelStreamErrorException"}
    with emulator_faults(sandbox, {**base, "targets": {PRIMARY: {**base.get("default", {}), **broken}}}):
        messages = ask(sandbox, token, "The Pacific is the largest ocean. Which ocean is the largest?")
    end = messages[-1]
    assert messages[0]["type"] == "start" and end["type"] == "end"
    assert end["incomplete"] is True and end["retry"] is True and end["incompleteReason"]
    partial = "".join(m["text"] for m in messages if m["type"] == "delta")
    assert partial and end["answer"] == partial
    assert "Pacific is the largest ocean" not in end["incompleteReason"]  # no user text in the reason


def test_a_connection_without_a_valid_token_is_refused(sandbox: Any) -> None:  # noqa: F811
    url = sandbox.regions[sandbox.region].stream.url
    for query in ("", "?token=not-a-jwt"):
        with pytest.raises(InvalidStatus) as refused:
            connect(url + query)
        assert refused.value.response.status_code == 401


def test_a_bad_frame_is_a_400_message(sandbox: Any) -> None:  # noqa: F811
    token = sign_in(sandbox, DEMO_USER, DEMO_PASSWORD)
    [error] = ask(sandbox, token, "")
    assert error == {"type": "error", "status": 400, "message": error["message"], "requestId": "r-1"}


def test_the_web_config_names_both_regions_stream_urls(sandbox: Any) -> None:  # noqa: F811
    with urllib.request.urlopen(sandbox.web_url + "/config.json") as response:
        config = json.loads(response.read())
    assert config["streamEndpoints"][0] == sandbox.regions[sandbox.region].stream.url
    assert all(url.startswith("ws://127.0.0.1:") for url in config["streamEndpoints"])
