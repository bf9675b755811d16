"""cdk.json context -> AppConfig: good values parse, every bad one names its key."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest

from stacks.config import AppConfig, ConfigError, ModelTarget

ROOT = Path(__file__).resolve().parents[3]
BASE = json.loads((ROOT / "cdk.json").read_text())["context"]["bulwark"]


def with_(**changes: Any) -> dict[str, Any]:
    raw = copy.deepcopy(BASE)
    raw.update(changes)
    return raw


def test_the_shipped_cdk_json_parses_into_typed_config() -> None:
    config = AppConfig.from_context(BASE)

    assert config.primary_region == "us-east-1" and config.dr_region == "us-west-2"
    assert config.models[0] == ModelTarget(model_id="us.amazon.nova-lite-v1:0", region="us-east-1", max_tokens=1024)
    assert config.models[0].kind == "system-profile"
    assert config.models[0].foundation_model_id == "amazon.nova-lite-v1:0"
    assert config.limits.max_message_chars == 8000
    assert config.throttling.burst_limit == 100
    assert config.reserved_concurrency("us-west-2") == 20  # the DR region takes the primary's load


def test_defaults_apply_when_optional_keys_are_absent() -> None:
    config = AppConfig.from_context({"models": [{"model_id": "amazon.nova-lite-v1:0", "region": "us-east-1"}]})

    assert (config.app_name, config.env_name) == ("Bulwark", "dev")
    assert config.regions == ("us-east-1", "us-west-2")
    assert config.models[0].max_tokens == 1024 and config.models[0].kind == "foundation-model"


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (None, "context key 'bulwark' is missing"),
        ([], "must be an object"),
        (with_(colour="blue"), "unknown keys in bulwark: colour"),
        (with_(app_name="my app"), "app_name must be 1-20 letters or digits"),
        (with_(env_name=""), "env_name must be 1-20 letters or digits"),
        (with_(primary_region="mars-1"), "primary_region must be an AWS region"),
        (with_(dr_region="us-east-1"), "dr_region must differ from primary_region"),
        (with_(account="12345"), "account must be a 12-digit AWS account id"),
        (with_(models=[]), "models must be a non-empty list"),
        (with_(models="us.amazon.nova-lite-v1:0"), "models must be a non-empty list"),
        (with_(models=[{"region": "us-east-1"}]), "models[0].model_id is required"),
        (
            with_(models=[{"model_id": "x.y", "region": "us-east-1", "temperature": 1}]),
            "unknown keys in models[0]: temperature",
        ),
        (
            with_(models=[{"model_id": "nova", "region": "us-east-1"}]),
            "models[].model_id must be a foundation model id",
        ),
        (
            with_(models=[{"model_id": "amazon.nova-lite-v1:0", "region": "us-east-1", "max_tokens": 0}]),
            "max_tokens must be between 1 and 64000",
        ),
        (
            with_(models=[{"model_id": "amazon.nova-lite-v1:0", "region": "us-east-1", "max_tokens": "big"}]),
            "models[0].max_tokens must be a whole number",
        ),
        (
            with_(models=[{"model_id": "eu.amazon.nova-lite-v1:0", "region": "us-east-1"}]),
            "cannot call the eu. inference profile",
        ),
        (
            with_(
                models=[
                    {"model_id": "arn:aws:bedrock:us-east-1:123456789012:provisioned-model/abc", "region": "us-west-2"}
                ]
            ),
            "its region must equal",
        ),
        (with_(models=[{"model_id": "amazon.nova-lite-v1:0", "region": "us-east-1"}] * 2), "twice"),
        (with_(limits={"max_message_chars": 0}), "limits.max_message_chars must be between 1 and 100000"),
        (with_(limits={"max_message_chars": "8000"}), "limits.max_message_chars must be a whole number"),
        (with_(limits={"max_history_turns": True}), "limits.max_history_turns must be a whole number, got a boolean"),
        (with_(limits={"max_body_bytes": 2000, "max_message_chars": 5000}), "max_body_bytes must be at least"),
        (with_(limits={"max_chars": 1}), "unknown keys in limits: max_chars"),
        (with_(throttling={"rate_limit": 0}), "throttling.rate_limit must be between 1 and 10000"),
        (with_(throttling={"rate_limit": 100, "burst_limit": 10}), "burst_limit (10) must be at least"),
        (with_(chat_reserved_concurrency=0), "chat_reserved_concurrency must be between 1 and 1000"),
        (with_(replicate_user_pool="yes"), "replicate_user_pool must be true or false"),
        (with_(guardrail=1), "guardrail must be true or false"),
        (with_(jobs={"max_receive_count": 9}), "jobs.max_receive_count must be between 3 and 5"),
        (with_(jobs={"deadline_s": 115, "worker_timeout_s": 120}), "must leave at least 10 s"),
        (with_(jobs={"shed_to_jobs": "yes"}), "jobs.shed_to_jobs must be true or false"),
        (with_(jobs={"max_age_s": 700000, "retention_days": 4}), "must not exceed the queue's retention"),
        (with_(jobs={"speed": 1}), "unknown keys in jobs: speed"),
        (
            with_(models=[{"model_id": "amazon.nova-lite-v1:0", "region": "us-east-1", "quota_rpm": 0}]),
            "quota_rpm must be 1..1000000",
        ),
        (
            with_(models=[{"model_id": "us.amazon.nova-lite-v1:0", "region": "us-east-1", "provision_model_units": 1}]),
            "provision_model_units needs a foundation model id",
        ),
        (
            with_(models=[{"model_id": "amazon.nova-lite-v1:0", "region": "us-east-1", "provision_model_units": 0}]),
            "provision_model_units must be between 1 and 100",
        ),
        (
            with_(
                models=[
                    {
                        "model_id": "amazon.nova-lite-v1:0",
                        "region": "us-east-1",
                        "provision_model_units": 1,
                        "application_profile": True,
                    }
                ]
            ),
            "not both",
        ),
        (
            with_(
                models=[
                    {
                        "model_id": "arn:aws:bedrock:us-east-1:123456789012:provisioned-model/abc",
                        "region": "us-east-1",
                        "application_profile": True,
                    }
                ]
            ),
            "cannot wrap a provisioned",
        ),
        (
            with_(models=[{"model_id": "amazon.nova-lite-v1:0", "region": "us-east-1", "application_profile": "yes"}]),
            "models[0].application_profile must be true or false",
        ),
        (with_(log_retention_days=42), "log_retention_days must be one of"),
        (with_(limits={"user_requests_per_minute": -1}), "limits.user_requests_per_minute must be between 0"),
        (with_(limits={"daily_tokens_per_user": -5}), "limits.daily_tokens_per_user must be between 0"),
        (with_(jobs={"max_open_per_user": 1.5}), "jobs.max_open_per_user must be a whole number"),
        (with_(gateway={"degraded_status": 500}), "gateway.degraded_status must be 200 or 503"),
        (with_(gateway={"breaker_open_s": 0}), "gateway.breaker_open_s must be between 1 and 600"),
        (with_(gateway={"timeout": 1}), "unknown keys in gateway: timeout"),
        (with_(gateway={"concurrency_ceiling": 0}), "gateway.concurrency_ceiling must be between 1 and 1000"),
        (
            with_(gateway={"concurrency_ceiling": 4, "concurrency_increase": 5}),
            "gateway.concurrency_increase must be between 0.01 and 4",
        ),
        (with_(gateway={"concurrency_decrease": 1}), "gateway.concurrency_decrease must be between 0.05 and 0.95"),
    ],
)
def test_invalid_values_fail_with_a_sentence_naming_the_key(raw: Any, message: str) -> None:
    with pytest.raises(ConfigError) as error:
        AppConfig.from_context(raw)

    assert message in str(error.value)


def test_a_bad_cdk_json_fails_synth_with_the_message(tmp_path: Path) -> None:
    from aws_cdk import App

    from app import build_app

    app = App(context={"bulwark": with_(dr_region="us-east-1")})
    with pytest.raises(ConfigError, match="dr_region must differ"):
        build_app(app, nag=False)


def test_global_profiles_route_anywhere_and_regional_ones_to_their_geography() -> None:
    us = ModelTarget(model_id="us.anthropic.claude-sonnet-4-v1:0", region="us-west-2")
    world = ModelTarget(model_id="global.anthropic.claude-sonnet-4-v1:0", region="eu-west-1")

    assert us.destination_regions() == ("us-east-1", "us-east-2", "us-west-2")
    assert world.destination_regions() == ("*",)


def test_a_langchain_secondary_is_accepted_with_a_label_region() -> None:
    raw = with_(
        models=[
            {"model_id": "us.amazon.nova-lite-v1:0", "region": "us-east-1"},
            {
                "model_id": "other-provider",
                "region": "external",
                "langchain": {"class": "pkg.mod:Chat", "kwargs": {"x": 1}},
            },
        ]
    )

    config = AppConfig.from_context(raw)

    assert config.models[1].kind == "langchain" and config.models[1].langchain == {
        "class": "pkg.mod:Chat",
        "kwargs": {"x": 1},
    }


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"class": "NoColon"}, "must look like 'package.module:ChatClass'"),
        ({"class": "a.b:C", "kwargs": [1]}, "kwargs must be an object"),
        ({"class": "a.b:C", "extra": 1}, "only the keys class, kwargs and secret"),
    ],
)
def test_bad_langchain_specs_fail_with_the_key(spec: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        AppConfig.from_context(with_(models=[{"model_id": "x", "region": "external", "langchain": spec}]))


def test_worker_concurrency_is_sized_from_the_primary_quota() -> None:
    small = AppConfig.from_context(
        with_(
            models=[
                {"model_id": "amazon.nova-lite-v1:0", "region": "us-east-1", "quota_rpm": 60, "quota_tpm": 10_000_000}
            ]
        )
    )
    big = AppConfig.from_context(
        with_(
            models=[
                {"model_id": "amazon.nova-lite-v1:0", "region": "us-east-1", "quota_rpm": 6000, "quota_tpm": 10_000_000}
            ]
        )
    )
    token_bound = AppConfig.from_context(
        with_(
            models=[
                {"model_id": "amazon.nova-lite-v1:0", "region": "us-east-1", "quota_rpm": 6000, "quota_tpm": 100_000}
            ]
        )
    )

    assert small.worker_sizing().max_concurrency == 10  # 60/min = 1 job/s x 10 s per job
    assert big.worker_sizing().max_concurrency == 555  # tokens bind: 10M / 3000 per job = 3333/min
    assert token_bound.worker_sizing().max_concurrency == 5  # 100k / 3000 = 33/min -> 5.5 in flight
    assert all(c.worker_sizing().batch_size == 1 for c in (small, big, token_bound))
    assert small.jobs.visibility_timeout_s == 6 * small.jobs.worker_timeout_s


def test_sign_in_defaults_suit_a_public_app() -> None:
    auth = AppConfig.from_context(BASE).auth

    assert (auth.self_sign_up, auth.sign_up_email_domains, auth.mfa) == (False, (), "required")
    assert not auth.oauth and auth.oauth_callback_urls == () and auth.oauth_logout_urls == ()


def test_an_auth_section_with_every_key_parses() -> None:
    auth = AppConfig.from_context(
        with_(
            auth={
                "self_sign_up": True,
                "sign_up_email_domains": ["example.com", "corp.example.org"],
                "mfa": "optional",
                "oauth_callback_urls": ["https://app.example.com/callback", "http://localhost:3000/"],
                "oauth_logout_urls": ["https://app.example.com/"],
            }
        )
    ).auth

    assert auth.sign_up_email_domains == ("example.com", "corp.example.org") and auth.mfa == "optional"
    assert auth.oauth and auth.oauth_callback_urls[1] == "http://localhost:3000/"


@pytest.mark.parametrize(
    ("auth", "message"),
    [
        ({"mfa": "sometimes"}, "auth.mfa must be one of required, optional, off, got 'sometimes'"),
        ({"mfa": True}, "auth.mfa must be a string"),
        ({"self_sign_up": "yes"}, "auth.self_sign_up must be true or false"),
        ({"sign_up_email_domains": ["example.com"]}, "auth.sign_up_email_domains needs auth.self_sign_up: true"),
        ({"self_sign_up": True, "sign_up_email_domains": "example.com"}, "auth.sign_up_email_domains must be a list"),
        ({"self_sign_up": True, "sign_up_email_domains": [5]}, r"auth.sign_up_email_domains\[0\] must be a string"),
        ({"self_sign_up": True, "sign_up_email_domains": ["Example.com"]}, "lower-case domain names"),
        ({"self_sign_up": True, "sign_up_email_domains": ["@example.com"]}, "lower-case domain names"),
        ({"oauth_callback_urls": ["http://app.example.com/"]}, "auth.oauth_callback_urls entries must be https://"),
        ({"oauth_callback_urls": ["https://app.example.com/#x"]}, "auth.oauth_callback_urls entries must be https://"),
        ({"oauth_logout_urls": ["https://app.example.com/"]}, "auth.oauth_logout_urls needs auth.oauth_callback_urls"),
        ({"implicit_flow": True}, "unknown keys in auth: implicit_flow"),
    ],
)
def test_bad_auth_values_fail_with_the_key(auth: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        AppConfig.from_context(with_(auth=auth))


# --- guardrail: the original switch keeps working, the filters are configurable ---------------------------
@pytest.mark.parametrize("switch", [True, False])
def test_the_guardrail_switch_still_parses_and_keeps_the_default_filters(switch: bool) -> None:
    config = AppConfig.from_context(with_(guardrail=switch))

    assert config.guardrail.enabled is switch
    assert config.guardrail.prompt_attack == "HIGH" and config.guardrail.content_output != "NONE"
    assert "EMAIL" in config.guardrail.pii_anonymize and "AWS_SECRET_KEY" in config.guardrail.pii_block


def test_the_guardrail_section_sets_each_filter() -> None:
    config = AppConfig.from_context(
        with_(
            guardrail={
                "prompt_attack": "MEDIUM",
                "content_input": "LOW",
                "content_output": "HIGH",
                "pii_anonymize": ["NAME"],
                "pii_block": [],
            }
        )
    )

    assert config.guardrail.enabled and config.guardrail.prompt_attack == "MEDIUM"
    assert (config.guardrail.content_input, config.guardrail.content_output) == ("LOW", "HIGH")
    assert config.guardrail.pii_anonymize == ("NAME",) and config.guardrail.pii_block == ()


@pytest.mark.parametrize(
    ("guardrail", "message"),
    [
        ("yes", "guardrail must be true or false, or an object with enabled"),
        ({"content_output": "EXTREME"}, "guardrail.content_output must be one of NONE, LOW, MEDIUM, HIGH"),
        ({"pii_anonymize": ["SHOE_SIZE"]}, "guardrail.pii_anonymize lists unknown PII entity types SHOE_SIZE"),
        ({"pii_block": "EMAIL"}, "guardrail.pii_block must be a list"),
        ({"pii_anonymize": ["EMAIL"], "pii_block": ["EMAIL"]}, "EMAIL is in both pii_anonymize and pii_block"),
        (
            {
                "prompt_attack": "NONE",
                "content_input": "NONE",
                "content_output": "NONE",
                "pii_anonymize": [],
                "pii_block": [],
            },
            "every filter is off",
        ),
        ({"strength": "HIGH"}, "unknown keys in guardrail: strength"),
    ],
)
def test_bad_guardrail_settings_name_the_key(guardrail: Any, message: str) -> None:
    with pytest.raises(ConfigError) as error:
        AppConfig.from_context(with_(guardrail=guardrail))

    assert message in str(error.value)


def test_a_disabled_guardrail_may_have_every_filter_off() -> None:
    off = {"enabled": False, "prompt_attack": "NONE", "content_input": "NONE", "content_output": "NONE"}

    assert (
        AppConfig.from_context(with_(guardrail={**off, "pii_anonymize": [], "pii_block": []})).guardrail.enabled
        is False
    )


# --- provider credentials: never in kwargs, always a Secrets Manager secret --------------------------------
def _langchain(**spec: Any) -> dict[str, Any]:
    return with_(
        models=[
            {"model_id": "us.amazon.nova-lite-v1:0", "region": "us-east-1"},
            {"model_id": "gpt-x", "region": "openai", "langchain": {"class": "langchain_openai:ChatOpenAI", **spec}},
        ]
    )


@pytest.mark.parametrize(
    "kwargs",
    [
        {"api_key": "sk-123"},
        {"openai_api_key": "sk-123"},
        {"model": "gpt-x", "auth": {"token": "t"}},
        {"client": {"password": "p"}},
        {"aws_secret_access_key": "x"},
    ],
)
def test_a_credential_in_langchain_kwargs_fails_synth_pointing_to_the_secret(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigError) as error:
        AppConfig.from_context(_langchain(kwargs=kwargs))

    assert "looks like a credential" in str(error.value)
    assert "models[].langchain.secret" in str(error.value) and "Secrets Manager" in str(error.value)
    assert "sk-123" not in str(error.value)  # the value itself is never repeated


def test_a_langchain_target_names_its_secret_by_name_or_arn() -> None:
    by_name = AppConfig.from_context(_langchain(kwargs={"model": "gpt-x"}, secret="bulwark/openai"))
    arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:bulwark/openai-AbCdEf"
    by_arn = AppConfig.from_context(_langchain(secret=arn))

    assert by_name.models[1].secret == "bulwark/openai" and by_arn.models[1].secret == arn
    assert by_name.models[0].secret is None


@pytest.mark.parametrize("secret", [42, "", "has spaces", "arn:aws:s3:::bucket"])
def test_a_bad_secret_reference_is_refused(secret: Any) -> None:
    with pytest.raises(ConfigError, match=re.escape("models[].langchain.secret must name a Secrets Manager secret")):
        AppConfig.from_context(_langchain(secret=secret))


# --- what answers show as the model: never an ARN -----------------------------------------------------------
def test_a_provisioned_model_is_shown_without_its_account_id_unless_labelled() -> None:
    arn = "arn:aws:bedrock:us-east-1:123456789012:provisioned-model/abc123"
    plain = ModelTarget(model_id=arn, region="us-east-1")
    labelled = ModelTarget(model_id=arn, region="us-east-1", label="nova-lite-provisioned")

    assert plain.display_name == "provisioned-model/abc123" and "123456789012" not in plain.display_name
    assert labelled.display_name == "nova-lite-provisioned"
    assert (
        ModelTarget(model_id="us.amazon.nova-lite-v1:0", region="us-east-1").display_name == "us.amazon.nova-lite-v1:0"
    )


def test_a_label_must_be_short_and_plain() -> None:
    with pytest.raises(ConfigError, match=re.escape("models[].label must be 1-64")):
        AppConfig.from_context(
            with_(models=[{"model_id": "amazon.nova-lite-v1:0", "region": "us-east-1", "label": "<b>"}])
        )


# --- key administrators -------------------------------------------------------------------------------------
def test_key_administrators_are_role_arns() -> None:
    role = "arn:aws:iam::123456789012:role/security/KeyAdmins"

    assert AppConfig.from_context(with_(keys={"admin_role_arns": [role]})).keys.admin_role_arns == (role,)
    assert AppConfig.from_context(BASE).keys.admin_role_arns == ()
    with pytest.raises(ConfigError, match=re.escape("keys.admin_role_arns entries must be IAM role ARNs")):
        AppConfig.from_context(with_(keys={"admin_role_arns": ["arn:aws:iam::123456789012:user/alice"]}))
