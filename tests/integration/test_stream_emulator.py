"""ConverseStream end to end: the emulator's event-stream frames read by botocore's own parser (a real boto3
client), BedrockTarget.stream's errors, and the gateway's streaming rules against it.

Nothing here asserts elapsed real time: stalls and hangs last seconds against read timeouts of one second,
(stalls 12 s against 3 s), so the verdict cannot depend on this machine's speed."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.eventstream import EventStreamBuffer
from botocore.exceptions import ClientError

from adapters.bedrock import BedrockTarget
from core.errors import TargetCallError
from core.gateway import GatewaySettings, ModelGateway
from core.models import Message
from local.bedrock_emulator import STREAM_EXCEPTIONS, BedrockEmulator, encode_frame, event_frame, exception_frame
from tests.fakes import emulator_client, emulator_target

PRIMARY = ("us.amazon.nova-lite-v1:0", "us-east-1")
SECONDARY = ("us.amazon.nova-pro-v1:0", "us-west-2")
SYSTEM = "Lisbon is the capital of Portugal. Porto is famous for wine, bridges, tiles and its old river quarter."
QUESTION = [Message(role="user", text="Which city is famous for wine?")]
FAST = {"default": {"latency_ms": [0, 2]}}


@pytest.fixture(scope="module")
def emulator() -> Iterator[BedrockEmulator]:
    with BedrockEmulator(FAST) as emu:
        yield emu


@pytest.fixture(autouse=True)
def clean(emulator: BedrockEmulator) -> None:
    emulator.reset(FAST)


def faults(emulator: BedrockEmulator, **primary: Any) -> None:
    emulator.set_faults({"default": {"latency_ms": [0, 2]}, "targets": {PRIMARY[0]: {"latency_ms": [0, 2], **primary}}})


def request() -> dict[str, Any]:
    return {
        "modelId": PRIMARY[0],
        "system": [{"text": SYSTEM}],
        "messages": [{"role": "user", "content": [{"text": QUESTION[0].text}]}],
        "inferenceConfig": {"maxTokens": 256},
    }


def target(emulator: BedrockEmulator, model: tuple[str, str]) -> BedrockTarget:
    return emulator_target(emulator, model_id=model[0], region=model[1], max_tokens=256)


def read(stream: Any) -> list[str]:
    return list(stream)


# --- the encoding -------------------------------------------------------------------------------
def test_frames_decode_with_botocores_parser_headers_payload_and_checksums() -> None:
    buffer = EventStreamBuffer()
    frames = [event_frame("contentBlockDelta", {"delta": {"text": "héllo "}, "contentBlockIndex": 0})]
    frames.append(exception_frame("throttlingException", "slow down"))
    frames.append(encode_frame({":event-type": "x", ":message-type": "event"}, b""))
    buffer.add_data(b"".join(frames)[:7])  # a frame split across reads, as TCP delivers it
    buffer.add_data(b"".join(frames)[7:])

    messages = list(buffer)

    assert [m.headers[":message-type"] for m in messages] == ["event", "exception", "event"]
    assert json.loads(messages[0].payload) == {"delta": {"text": "héllo "}, "contentBlockIndex": 0}
    assert (
        messages[1].headers[":exception-type"] == "throttlingException"
        and messages[1].to_response_dict()["status_code"] == 400
    )
    assert messages[2].payload == b""


def test_a_corrupted_frame_is_refused_by_botocore() -> None:
    frame = bytearray(event_frame("messageStart", {"role": "assistant"}))
    frame[20] ^= 0xFF
    buffer = EventStreamBuffer()
    buffer.add_data(bytes(frame))
    with pytest.raises(Exception, match=r"(?i)checksum|crc"):
        list(buffer)


# --- the emulator through boto3 -------------------------------------------------------------------
def test_converse_stream_gives_the_converse_answer_as_events_in_order(emulator: BedrockEmulator) -> None:
    client = emulator_client("bedrock-runtime", emulator, "us-east-1")

    events = list(client.converse_stream(**request())["stream"])
    whole = client.converse(**request())

    kinds = [next(iter(event)) for event in events]
    assert kinds[0] == "messageStart" and kinds[-3:] == ["contentBlockStop", "messageStop", "metadata"]
    assert set(kinds[1:-3]) == {"contentBlockDelta"} and len(kinds) > 5
    text = "".join(e["contentBlockDelta"]["delta"]["text"] for e in events if "contentBlockDelta" in e)
    assert text == whole["output"]["message"]["content"][0]["text"]
    assert events[-2]["messageStop"]["stopReason"] == "end_turn"
    assert events[-1]["metadata"]["usage"] == whole["usage"] and "latencyMs" in events[-1]["metadata"]["metrics"]


def test_pacing_sets_the_words_per_delta(emulator: BedrockEmulator) -> None:
    faults(emulator, stream_chunk_words=1)
    client = emulator_client("bedrock-runtime", emulator, "us-east-1")

    deltas = [
        e["contentBlockDelta"]["delta"]["text"]
        for e in client.converse_stream(**request())["stream"]
        if "contentBlockDelta" in e
    ]

    assert all(len(d.split()) == 1 for d in deltas) and len(deltas) == len("".join(deltas).split())


@pytest.mark.parametrize("code", ["ThrottlingException", "ServiceUnavailableException"])
def test_faults_before_the_stream_are_http_errors_as_for_converse(emulator: BedrockEmulator, code: str) -> None:
    faults(emulator, errors={code: 1.0})
    client = emulator_client("bedrock-runtime", emulator, "us-east-1")

    with pytest.raises(ClientError) as raised:
        client.converse_stream(**request())

    assert raised.value.response["Error"]["Code"] == code


@pytest.mark.parametrize("event", sorted(STREAM_EXCEPTIONS))
def test_exception_events_mid_stream_reach_boto3_after_the_first_deltas(emulator: BedrockEmulator, event: str) -> None:
    faults(emulator, stream_break_after=2, stream_break=event, stream_chunk_words=1)
    client = emulator_client("bedrock-runtime", emulator, "us-east-1")
    seen: list[str] = []

    with pytest.raises(ClientError) as raised:
        for item in client.converse_stream(**request())["stream"]:
            if "contentBlockDelta" in item:
                seen.append(item["contentBlockDelta"]["delta"]["text"])

    assert raised.value.response["Error"]["Code"] == event and len(seen) == 2
    assert emulator.stats()[f"{PRIMARY[0]}@us-east-1"]["outcomes"] == {f"stream:{event}": 1}


# --- BedrockTarget.stream -------------------------------------------------------------------------
def test_the_adapter_streams_text_and_keeps_usage_and_stop_reason(emulator: BedrockEmulator) -> None:
    stream = target(emulator, PRIMARY).stream(system=SYSTEM, messages=QUESTION, timeout_s=5.0)

    chunks = read(stream)
    reply = stream.reply()

    assert len(chunks) > 1 and reply.text == "".join(chunks) and reply.text.startswith("Porto")
    assert reply.usage.output_tokens > 0 and reply.stop_reason == "end_turn"


@pytest.mark.parametrize(
    ("fault", "code"),
    [
        ({"stream_break": "modelStreamErrorException"}, "ModelStreamErrorException"),
        ({"stream_break": "throttlingException"}, "ThrottlingException"),
        ({"stream_break": "internalServerException"}, "InternalServerException"),
        ({"stream_break": "drop"}, "ConnectionReset"),
    ],
)
def test_mid_stream_faults_are_runtime_codes_after_the_first_chunk(
    emulator: BedrockEmulator, fault: dict[str, Any], code: str
) -> None:
    faults(emulator, stream_break_after=1, **fault)
    stream = target(emulator, PRIMARY).stream(system=SYSTEM, messages=QUESTION, timeout_s=5.0)
    chunks: list[str] = []

    with pytest.raises(TargetCallError) as raised:
        for chunk in stream:
            chunks.append(chunk)

    assert raised.value.code == code and len(chunks) == 1


def test_a_stall_between_chunks_is_a_timeout_at_the_read_timeout(emulator: BedrockEmulator) -> None:
    faults(emulator, stream_stall_after=1, stream_stall_s=12.0)
    stream = target(emulator, PRIMARY).stream(system=SYSTEM, messages=QUESTION, timeout_s=3.0)
    chunks: list[str] = []

    with pytest.raises(TargetCallError) as raised:
        for chunk in stream:
            chunks.append(chunk)

    assert raised.value.code == "Timeout" and len(chunks) == 1


# --- the gateway over the emulator ----------------------------------------------------------------
def gateway(emulator: BedrockEmulator, **settings: Any) -> ModelGateway:
    settings.setdefault("hedging", False)  # when a hedge fires is decided on simulated time (unit tests)
    return ModelGateway(
        targets=[target(emulator, PRIMARY), target(emulator, SECONDARY)], settings=GatewaySettings(**settings)
    )


def calls(emulator: BedrockEmulator, model: tuple[str, str]) -> int:
    return emulator.calls(model[0], model[1])


def test_a_primary_down_before_the_stream_fails_over_to_the_secondarys_stream(emulator: BedrockEmulator) -> None:
    faults(emulator, down=True)

    stream = gateway(emulator).stream(system=SYSTEM, messages=QUESTION, deadline_s=10.0)
    chunks = read(stream)

    assert stream.target.region == SECONDARY[1] and stream.reply().text == "".join(chunks)
    assert not stream.reply().incomplete and calls(emulator, SECONDARY) == 1


def test_a_primary_hanging_before_its_first_token_fails_over_at_its_timeout(emulator: BedrockEmulator) -> None:
    faults(emulator, hang_s=30.0)

    stream = gateway(emulator).stream(system=SYSTEM, messages=QUESTION, deadline_s=6.0)
    read(stream)

    assert stream.target.region == SECONDARY[1] and not stream.reply().incomplete


@pytest.mark.parametrize("kind", ["modelStreamErrorException", "throttlingException", "drop"])
def test_a_break_after_the_first_token_is_incomplete_and_never_fails_over(emulator: BedrockEmulator, kind: str) -> None:
    faults(emulator, stream_break_after=2, stream_break=kind, stream_chunk_words=1)

    stream = gateway(emulator).stream(system=SYSTEM, messages=QUESTION, deadline_s=10.0)
    chunks = read(stream)
    reply = stream.reply()

    assert reply.incomplete and len(chunks) == 2 and reply.text == "".join(chunks)
    assert stream.target.region == PRIMARY[1] and calls(emulator, SECONDARY) == 0


def test_a_guarded_stream_runs_its_guardrail_in_sync_mode_and_reports_an_intervention(
    emulator: BedrockEmulator,
) -> None:
    emulator.set_faults({**FAST, "guardrail_patterns": ["secret plans"]})
    guarded = emulator_target(emulator, model_id=PRIMARY[0], region=PRIMARY[1], max_tokens=256, guardrail=("gr1", "1"))

    stream = guarded.stream(
        system=SYSTEM, messages=[Message(role="user", text="Tell me the secret plans")], timeout_s=5.0
    )
    read(stream)

    reply = stream.reply()
    assert reply.guardrail_intervened and reply.guardrail_checked and not reply.cacheable


def test_bad_stream_faults_are_refused_with_a_message(emulator: BedrockEmulator) -> None:
    with pytest.raises(ValueError, match="stream_break"):
        emulator.set_faults({"default": {"stream_break_after": 1, "stream_break": "explode"}})
