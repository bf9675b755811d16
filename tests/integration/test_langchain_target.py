"""A LangChain chat model as a secondary target: any provider can back up Bedrock."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import botocore.session
import pytest
from langchain_core.language_models.fake_chat_models import FakeListChatModel

from adapters.bedrock import BedrockTarget
from adapters.langchain_target import LangChainTarget, load_chat_model
from core.errors import TargetCallError
from core.gateway import GatewaySettings, ModelGateway
from core.models import Message
from local.bedrock_emulator import BedrockEmulator

PRIMARY = ("us.amazon.nova-lite-v1:0", "us-east-1")
QUESTION = [Message(role="user", text="What is the capital of France?")]
SYSTEM = "Paris is the capital of France."


@pytest.fixture
def emulator() -> Iterator[BedrockEmulator]:
    with BedrockEmulator({"default": {"latency_ms": [1, 3]}}) as emu:
        yield emu


def bedrock(emulator: BedrockEmulator) -> BedrockTarget:
    session = botocore.session.get_session()
    return BedrockTarget(
        client_factory=lambda config: session.create_client(
            "bedrock-runtime", region_name=PRIMARY[1], endpoint_url=emulator.url,
            aws_access_key_id="e", aws_secret_access_key="e", config=config,
        ),
        model_id=PRIMARY[0], region=PRIMARY[1], max_tokens=100,
    )  # fmt: skip


def test_a_non_bedrock_provider_answers_when_bedrock_is_down(emulator: BedrockEmulator) -> None:
    emulator.set_faults({"default": {"down": True}})
    other = LangChainTarget(chat_model=FakeListChatModel(responses=["Paris (from the other provider)."]), name="other")
    gateway = ModelGateway(targets=[bedrock(emulator), other], settings=GatewaySettings())

    reply = gateway.converse(system=SYSTEM, messages=QUESTION, deadline_s=5)

    assert reply.text == "Paris (from the other provider)." and reply.target.model_id == "other"
    assert not reply.degraded


def test_langchain_aws_as_secondary_keeps_bedrock_error_codes(emulator: BedrockEmulator) -> None:
    emulator.set_faults({"default": {"errors": {"ThrottlingException": 1.0}}})
    model = load_chat_model(
        {
            "class": "langchain_aws:ChatBedrockConverse",
            "kwargs": {
                "model": "eu.amazon.nova-lite-v1:0", "region_name": "eu-west-1", "endpoint_url": emulator.url,
                "aws_access_key_id": "e", "aws_secret_access_key": "e", "max_tokens": 50,
                "config": __import__("botocore.config").config.Config(retries={"total_max_attempts": 1}),
            },
        }
    )  # fmt: skip
    target = LangChainTarget(chat_model=model, name="eu.amazon.nova-lite-v1:0", region="eu-west-1")

    with pytest.raises(TargetCallError) as raised:
        target.call(system=SYSTEM, messages=QUESTION, timeout_s=60)  # a guard only: the error comes at once

    assert raised.value.code == "ThrottlingException"


def test_a_hung_provider_is_abandoned_at_the_timeout() -> None:
    called, returned, release = threading.Event(), threading.Event(), threading.Event()

    class Hung(FakeListChatModel):
        def invoke(self, *args: Any, **kwargs: Any) -> Any:
            called.set()
            release.wait(60)  # hangs until the test lets it go (a guard ends it if the target waited)
            returned.set()
            return super().invoke(*args, **kwargs)

    target = LangChainTarget(chat_model=Hung(responses=["late"]), name="hung")
    try:
        with pytest.raises(TargetCallError) as raised:
            target.call(system=SYSTEM, messages=QUESTION, timeout_s=0.2)

        assert raised.value.code == "Timeout"
        assert called.wait(10) and not returned.is_set()  # given up on while the provider still hung
    finally:
        release.set()


def test_bad_class_spec_is_refused() -> None:
    with pytest.raises(ValueError, match=r"package\.module:ClassName"):
        load_chat_model({"class": "nocolon"})
