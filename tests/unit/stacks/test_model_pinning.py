"""Model version pinning (issue 11): every chain entry names an exact model version, never a floating alias."""

from __future__ import annotations

import pytest

from stacks.config import AppConfig
from stacks.config.models import ModelTarget
from stacks.config.parsing import ConfigError
from tests.conftest import cdk_context


@pytest.mark.parametrize(
    ("model_id", "version"),
    [
        ("amazon.nova-lite-v1:0", "v1:0"),
        ("us.amazon.nova-lite-v1:0", "v1:0"),
        ("global.anthropic.claude-sonnet-4-v1:0", "v1:0"),
        ("anthropic.claude-3-5-haiku-20241022-v1:0", "v1:0"),
        ("openai.gpt-oss-120b-1:0", "1:0"),
        ("amazon.nova-pro-v1:0:300k", "v1:0:300k"),  # a provisioned context variant
        ("amazon.titan-text-express-v1", "v1"),  # Bedrock has no revision for it: the major version pins it
    ],
)
def test_versioned_bedrock_ids_are_accepted_and_their_version_shown(model_id: str, version: str) -> None:
    assert ModelTarget(model_id=model_id, region="us-east-1").version == version


@pytest.mark.parametrize(
    "model_id",
    [
        "amazon.nova-lite",  # no version at all
        "us.anthropic.claude-3-5-sonnet",
        "anthropic.claude-3",  # a bare number is not a version with its revision
        "amazon.nova-lite-latest",
        "anthropic.claude-latest-v1:0",
        "ai21.j2-grande-instruct",
    ],
)
def test_floating_or_unversioned_ids_fail_with_a_sentence_naming_the_key(model_id: str) -> None:
    with pytest.raises(ConfigError, match=r"models\[\]\.model_id .* does not name an exact model version"):
        ModelTarget(model_id=model_id, region="us-east-1")


def test_the_whole_config_fails_on_one_floating_entry() -> None:
    raw = cdk_context()["bulwark"]
    models = [*raw["models"], {"model_id": "us.amazon.nova-lite", "region": "us-west-2"}]
    with pytest.raises(ConfigError, match="exact model version"):
        AppConfig.from_context({**raw, "models": models})


def test_a_provisioned_model_is_pinned_by_construction() -> None:
    target = ModelTarget(model_id="arn:aws:bedrock:us-east-1:123456789012:provisioned-model/abc", region="us-east-1")
    assert target.version == "provisioned"


def test_a_langchain_target_may_not_float_either() -> None:
    spec = {"class": "pkg.mod:Chat", "kwargs": {"model": "gpt-4o-2024-08-06"}}
    assert ModelTarget(model_id="other", region="external", langchain=spec).version == "gpt-4o-2024-08-06"
    with pytest.raises(ConfigError, match=r"kwargs\.model is a floating alias"):
        ModelTarget(model_id="other", region="external", langchain={**spec, "kwargs": {"model": "chatgpt-4o-latest"}})
