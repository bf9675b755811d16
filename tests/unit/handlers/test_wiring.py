"""The composition root: a LangChain target gets the region's guardrail around it and its key from Secrets Manager."""

from __future__ import annotations

from typing import Any

import pytest

from adapters.bedrock import BedrockTarget
from adapters.guardrail import GuardedTarget
from adapters.langchain_target import LangChainTarget, UnavailableTarget
from core.ports import TargetModel
from handlers.settings import TargetSetting
from handlers.wiring import build_chat_service
from tests.conftest import TEST_SETTINGS
from tests.fakes import fixture_aws  # noqa: F401 - the fixture `aws`

FAKE = "langchain_core.language_models.fake_chat_models:FakeListChatModel"


def other(**changes: Any) -> TargetSetting:
    base: dict[str, Any] = {
        "model_id": "fake",
        "region": "elsewhere",
        "max_tokens": 64,
        "langchain": {"class": FAKE, "kwargs": {"responses": ["from kwargs"]}},
        "name": "Fake model",
        "guardrail": ("gr1", "2"),
        "guardrail_region": "us-west-2",
    }
    return TargetSetting(**{**base, **changes})


class NoSecrets:
    """A Secrets Manager client that must not be used."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"secretsmanager.{name} called")


def targets(aws: dict[str, Any], *chain: TargetSetting, secrets: Any = None) -> list[TargetModel]:
    service = build_chat_service(
        TEST_SETTINGS.but(targets=chain), dynamodb=aws["dynamodb"], secrets=secrets or aws["secrets"]
    )
    return [lane.model for lane in service._model._targets]  # type: ignore[attr-defined]


def test_a_langchain_target_is_guarded_by_the_regions_guardrail_and_shown_by_its_name(aws: dict[str, Any]) -> None:
    bedrock, wrapped = targets(aws, TEST_SETTINGS.targets[0], other(), secrets=NoSecrets())

    assert isinstance(bedrock, BedrockTarget) and isinstance(wrapped, GuardedTarget)
    assert isinstance(wrapped._inner, LangChainTarget) and wrapped.target.model_id == "Fake model"
    assert (wrapped._identifier, wrapped._version) == ("gr1", "2")


def test_without_a_guardrail_it_is_not_wrapped_and_its_answers_are_not_guardrail_checked(aws: dict[str, Any]) -> None:
    (plain,) = targets(aws, other(guardrail=None, guardrail_region=None), secrets=NoSecrets())

    assert isinstance(plain, LangChainTarget)


def test_the_providers_secret_is_read_at_cold_start_into_the_constructor_arguments(aws: dict[str, Any]) -> None:
    arn = aws["secrets"].create_secret(Name="bulwark/fake", SecretString='{"responses": ["from the secret"]}')["ARN"]

    (wrapped,) = targets(aws, other(secret_arn=arn))

    assert isinstance(wrapped, GuardedTarget)
    assert wrapped._inner._model.responses == ["from the secret"]  # merged over kwargs


def test_an_unreadable_secret_disables_that_target_only_with_the_services_code(aws: dict[str, Any]) -> None:
    bedrock, broken = targets(aws, TEST_SETTINGS.targets[0], other(secret_arn="bulwark/missing"))

    assert isinstance(bedrock, BedrockTarget) and isinstance(broken, UnavailableTarget)
    with pytest.raises(Exception, match="ResourceNotFoundException"):
        broken.call(system="s", messages=[], timeout_s=1)


def test_a_chain_of_bedrock_targets_never_touches_secrets_manager(aws: dict[str, Any]) -> None:
    assert all(isinstance(t, BedrockTarget) for t in targets(aws, *TEST_SETTINGS.targets, secrets=NoSecrets()))


@pytest.mark.parametrize("region", ["us-east-1", "us-west-2"])
def test_uploads_are_signed_for_the_regional_bucket_host_the_csp_allows(region: str, monkeypatch: Any) -> None:
    from handlers.wiring import documents_s3_client

    monkeypatch.delenv("AWS_ENDPOINT_URL_S3", raising=False)

    post = documents_s3_client(region).generate_presigned_post(Bucket="docs-bucket", Key="documents/u/d")

    assert post["url"] == f"https://docs-bucket.s3.{region}.amazonaws.com/"


def test_data_clients_wait_as_the_contract_says_and_the_store_reserve_follows(monkeypatch: Any) -> None:
    from handlers.wiring import data_call_worst_case_s, data_client_config

    monkeypatch.delenv("DATA_READ_TIMEOUT_SECONDS", raising=False)
    default = (data_client_config().read_timeout, data_call_worst_case_s())
    monkeypatch.setenv("DATA_READ_TIMEOUT_SECONDS", "3")
    sandbox = (data_client_config().read_timeout, data_call_worst_case_s())

    assert default == (1.0, 3 * (0.5 + 1.0) + 1 + 2)  # three attempts, each with its timeouts, two backoffs
    assert sandbox == (3.0, 3 * (0.5 + 3.0) + 1 + 2)
    assert sandbox[1] < 25  # still inside the chat path's deadline


def test_the_gateways_capacity_limits_come_from_the_environment_contract(aws: dict[str, Any]) -> None:
    import boto3

    from core.resilience import CapacitySettings
    from handlers.settings import Settings
    from handlers.worker import build_worker_jobs

    env = {
        **TEST_SETTINGS.to_env(),
        "GATEWAY_CONCURRENCY_CEILING": "8",
        "GATEWAY_CONCURRENCY_INCREASE": "2",
        "GATEWAY_CONCURRENCY_DECREASE": "0.7",
    }
    settings = Settings.from_env(env)  # as the Lambdas read it at cold start
    expected = CapacitySettings(ceiling=8, increase=2.0, decrease=0.7, max_pause_s=settings.breaker_open_s)

    chat = build_chat_service(settings, dynamodb=aws["dynamodb"])
    worker = build_worker_jobs(
        settings.but(jobs_queue_url="q", jobs_table_name="j", idempotency_table_name="i"),
        dynamodb=aws["dynamodb"],
        sqs=boto3.client("sqs", region_name="us-east-1"),
    )

    assert chat._model.settings.capacity == expected  # type: ignore[attr-defined]
    assert worker._chat._model.settings.capacity == expected  # type: ignore[attr-defined]
