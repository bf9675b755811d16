"""Model versions to roll back to (issue 11): each chain entry may list exact previous versions, checked like
its model_id, carried to the Lambdas' environment."""

from __future__ import annotations

import pytest

from handlers.settings import Settings, TargetSetting
from stacks.config import AppConfig, ConfigError, ModelTarget
from tests.conftest import TEST_SETTINGS, cdk_context

CURRENT = "us.amazon.nova-2-lite-v1:0"


def target(previous: tuple[str, ...], **extra: object) -> ModelTarget:
    return ModelTarget(model_id=CURRENT, region="us-east-1", previous_versions=previous, **extra)  # type: ignore[arg-type]


def test_previous_versions_of_the_same_provider_and_profile_are_accepted() -> None:
    chain = target(("us.amazon.nova-lite-v1:0", "us.amazon.nova-micro-v1:0"))
    assert chain.previous_versions == ("us.amazon.nova-lite-v1:0", "us.amazon.nova-micro-v1:0")
    rolled = chain.with_version("us.amazon.nova-lite-v1:0")
    assert (rolled.model_id, rolled.region, rolled.previous_versions) == ("us.amazon.nova-lite-v1:0", "us-east-1", ())


@pytest.mark.parametrize(
    ("previous", "says"),
    [
        (("us.amazon.nova-lite-latest",), "exact model version"),  # a floating alias
        (("us.amazon.nova-lite",), "exact model version"),  # no version at all
        (("amazon.nova-lite-v1:0",), "called the same way"),  # the foundation model, not the us. profile
        (("global.amazon.nova-lite-v1:0",), "called the same way"),  # another profile scope
        (("us.anthropic.claude-3-5-haiku-20241022-v1:0",), "provider (amazon)"),
        (("us.amazon.nova-lite-v1:0", "us.amazon.nova-lite-v1:0"), "twice"),
        ((CURRENT,), "twice or repeats model_id"),
        (("arn:aws:bedrock:us-east-1:123456789012:provisioned-model/abc",), "not an ARN"),
    ],
)
def test_previous_versions_are_checked_like_model_id(previous: tuple[str, ...], says: str) -> None:
    with pytest.raises(ConfigError, match="previous_versions") as error:
        target(previous)
    assert says in str(error.value)


@pytest.mark.parametrize(
    "extra", [{"application_profile": True}, {"model_id": "amazon.nova-pro-v1:0", "provision_model_units": 1}]
)
def test_capacity_made_for_one_model_cannot_roll_back(extra: dict[str, object]) -> None:
    with pytest.raises(ConfigError, match="previous_versions"):
        ModelTarget(
            **{"model_id": CURRENT, "region": "us-east-1", "previous_versions": ("amazon.nova-lite-v1:0",), **extra}  # type: ignore[arg-type]
        )


def test_a_langchain_target_has_no_previous_versions() -> None:
    with pytest.raises(ConfigError, match="previous_versions"):
        ModelTarget(
            model_id="gpt",
            region="openai",
            langchain={"class": "langchain_openai:ChatOpenAI", "kwargs": {"model": "gpt-4o-2024-08-06"}},
            previous_versions=("gpt-4o-2024-05-13",),
        )


def test_cdk_json_lists_previous_versions() -> None:
    config = AppConfig.from_context(
        cdk_context(
            models=[{"model_id": CURRENT, "region": "us-east-1", "previous_versions": ["us.amazon.nova-lite-v1:0"]}]
        )["bulwark"]
    )
    assert config.models[0].previous_versions == ("us.amazon.nova-lite-v1:0",)


def test_the_lambda_environment_carries_them() -> None:
    chain = (TargetSetting(model_id=CURRENT, region="us-east-1", max_tokens=9, previous_versions=("us.a.b-v1:0",)),)
    settings = Settings.from_env(TEST_SETTINGS.but(targets=chain).to_env())
    assert settings.targets[0].previous_versions == ("us.a.b-v1:0",)
    assert settings.targets[0].versions == (CURRENT, "us.a.b-v1:0")
    plain = Settings.from_env(TEST_SETTINGS.to_env()).targets[0]
    assert plain.previous_versions == () and "previous_versions" not in plain.to_json()
