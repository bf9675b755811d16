"""The greetings section of the config: on by default, extra phrases and replies checked at synth (with the Lambda's
own checks) and carried to the chat and worker Lambdas through the environment contract."""

from __future__ import annotations

from typing import Any

import pytest

from handlers.settings import Settings
from stacks.config import AppConfig, ConfigError
from stacks.lambda_settings import TableNames, chain_settings, chat_settings, worker_settings

MODELS = [{"model_id": "amazon.nova-lite-v1:0", "region": "us-east-1"}]
TABLES = TableNames(conversations="c", response_cache="r", jobs="j", idempotency="i", usage="u", documents="d")


def config(**greetings: Any) -> AppConfig:
    raw: dict[str, Any] = {"models": MODELS}
    if greetings:
        raw["greetings"] = greetings
    return AppConfig.from_context(raw)


def environments(app: AppConfig) -> list[Settings]:
    targets = chain_settings(app, "us-east-1", lambda target: (target.model_id, None))
    return [
        chat_settings(app, tables=TABLES, targets=targets, queue_url="q"),
        worker_settings(app, tables=TABLES, targets=targets, queue_url="q"),
    ]


def test_greetings_are_on_by_default_with_the_built_in_tables() -> None:
    for settings in environments(config()):
        assert settings.greetings_enabled and settings.greetings_phrases is None and settings.greetings_replies is None
        assert settings.to_env()["GREETINGS_ENABLED"] == "true"
        assert "GREETINGS_PHRASES" not in settings.to_env()


def test_phrases_and_replies_reach_both_lambdas_and_survive_the_environment() -> None:
    app = config(
        enabled=True,
        phrases={"en": {"greeting": ["ahoy"]}, "sv": {"thanks": ["tack"]}},
        replies={"thanks": {"sv": "Varsågod!"}},
    )

    for settings in environments(app):
        assert Settings.from_env(settings.to_env()) == settings
        assert settings.greetings_phrases == {"en": {"greeting": ("ahoy",)}, "sv": {"thanks": ("tack",)}}
        assert settings.greetings_replies == {"thanks": {"sv": "Varsågod!"}}


def test_switched_off_in_config_it_is_off_in_the_lambdas() -> None:
    assert [settings.greetings_enabled for settings in environments(config(enabled=False))] == [False, False]


@pytest.mark.parametrize(
    ("greetings", "message"),
    [
        ({"phrases": {"en": {"greeting": ["hi?"]}}}, r"greetings\.phrases\.en\.greeting: 'hi\?' has a question mark"),
        ({"phrases": {"en": {"smalltalk": ["hi"]}}}, r"greetings\.phrases\.en\.smalltalk: the part must be one of"),
        ({"replies": {"greeting": {"en": ""}}}, r"greetings\.replies\.greeting\.en must be 1-500 characters"),
        ({"replies": ["hi"]}, r"greetings\.replies must be an object"),
        ({"enabled": "yes"}, r"greetings\.enabled must be true or false"),
        ({"phrases": {"en": {"tail": ["word"] * 400}}}, r"must total at most 2000 characters"),
        ({"extra": True}, r"unknown keys in greetings: extra"),
    ],
)
def test_bad_greetings_config_fails_synth_naming_the_key(greetings: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        config(**greetings)


def test_a_malformed_environment_variable_names_itself() -> None:
    env = environments(config())[0].to_env()

    with pytest.raises(ValueError, match=r"GREETINGS_PHRASES is invalid: .*question mark"):
        Settings.from_env({**env, "GREETINGS_PHRASES": '{"en": {"greeting": ["hi?"]}}'})
