"""BedrockConverseModel: the Converse request it sends and how errors become domain errors."""

from __future__ import annotations

import boto3
import pytest
from botocore.stub import Stubber

from adapters.bedrock import BedrockConverseModel, client_config
from core.errors import ModelRejected, ModelUnavailable
from core.models import Message


def make(model_id: str = "us.amazon.nova-lite-v1:0") -> tuple[BedrockConverseModel, Stubber]:
    client = boto3.client("bedrock-runtime", region_name="us-east-1", config=client_config())
    return BedrockConverseModel(client=client, model_id=model_id, region="us-east-1", max_tokens=300), Stubber(client)


def test_request_sets_max_tokens_system_and_roles_and_reads_usage() -> None:
    model, stub = make()
    stub.add_response(
        "converse",
        {
            "output": {"message": {"role": "assistant", "content": [{"text": "Hi "}, {"text": "there"}]}},
            "stopReason": "max_tokens",
            "usage": {"inputTokens": 5, "outputTokens": 300, "totalTokens": 305},
            "metrics": {"latencyMs": 1},
        },
        {
            "modelId": "us.amazon.nova-lite-v1:0",
            "system": [{"text": "sys"}],
            "messages": [
                {"role": "user", "content": [{"text": "a"}]},
                {"role": "assistant", "content": [{"text": "b"}]},
                {"role": "user", "content": [{"text": "c"}]},
            ],
            "inferenceConfig": {"maxTokens": 300},
        },
    )
    with stub:
        reply = model.converse(
            system="sys",
            messages=[
                Message(role="user", text="a"),
                Message(role="assistant", text="b"),
                Message(role="user", text="c"),
            ],
            deadline_s=10,
        )

    assert reply.text == "Hi there"
    assert (reply.usage.input_tokens, reply.usage.output_tokens, reply.usage.total_tokens) == (5, 300, 305)
    assert reply.stop_reason == "max_tokens"
    assert reply.target.model_id == "us.amazon.nova-lite-v1:0"


@pytest.mark.parametrize(
    ("code", "error", "retry_after"),
    [
        ("ThrottlingException", ModelUnavailable, 5),
        ("ServiceUnavailableException", ModelUnavailable, 5),
        ("InternalServerException", ModelUnavailable, 5),
        ("ModelNotReadyException", ModelUnavailable, 5),
        ("ModelTimeoutException", ModelUnavailable, 5),
        ("ModelErrorException", ModelUnavailable, 5),
        ("AccessDeniedException", ModelUnavailable, 30),
        ("ResourceNotFoundException", ModelUnavailable, 30),
        ("ValidationException", ModelRejected, None),
    ],
)
def test_each_runtime_error_code_maps_to_its_domain_error(
    code: str, error: type[Exception], retry_after: int | None
) -> None:
    model, stub = make()
    stub.add_client_error("converse", service_error_code=code, service_message="detail")

    with stub, pytest.raises(error) as raised:
        model.converse(system="s", messages=[Message(role="user", text="x")], deadline_s=5)

    if retry_after is not None:
        assert raised.value.retry_after == retry_after  # type: ignore[attr-defined]
    else:
        assert "detail" in str(raised.value)


def test_client_has_explicit_timeouts_and_a_single_standard_retry_layer() -> None:
    config = client_config()

    assert (config.connect_timeout, config.read_timeout) == (2.0, 10.0)
    assert config.retries == {"mode": "standard", "max_attempts": 2}
