"""The pre-sign-up trigger: self sign-up only for the allowed email domains; administrators' invitations pass."""

from __future__ import annotations

from typing import Any

import pytest

from handlers.pre_sign_up import SignUpRefused, check
from handlers.settings import SignUpSettings

SETTINGS = SignUpSettings(allowed_email_domains=("example.com", "corp.example.org"))


def event(email: str, source: str = "PreSignUp_SignUp") -> dict[str, Any]:
    """A Cognito pre-sign-up event (the fields the trigger reads)."""
    return {
        "version": "1",
        "triggerSource": source,
        "userPoolId": "us-east-1_Pool",
        "userName": "b4c8e2f0-0000-4000-8000-000000000000",
        "request": {"userAttributes": {"email": email}},
        "response": {"autoConfirmUser": False, "autoVerifyEmail": False, "autoVerifyPhone": False},
    }


@pytest.mark.parametrize("email", ["alice@example.com", "Bob@Example.COM", "carol@corp.example.org"])
def test_an_allowed_domain_may_sign_up_and_the_event_comes_back_unchanged(email: str) -> None:
    assert check(event(email), SETTINGS) == event(email)


@pytest.mark.parametrize(
    "email",
    ["mallory@evil.example", "x@sub.example.com", "x@example.com.evil.example", "example.com", "", "@example.com"],
)
def test_any_other_address_is_refused_without_naming_the_allowed_domains(email: str) -> None:
    with pytest.raises(SignUpRefused) as refused:
        check(event(email), SETTINGS)
    assert "example" not in str(refused.value)


def test_federated_sign_up_is_held_to_the_same_list_and_admin_invitations_pass() -> None:
    with pytest.raises(SignUpRefused):
        check(event("x@evil.example", "PreSignUp_ExternalProvider"), SETTINGS)
    assert check(event("x@evil.example", "PreSignUp_AdminCreateUser"), SETTINGS)["triggerSource"] == (
        "PreSignUp_AdminCreateUser"
    )


def test_the_allowlist_comes_from_the_environment_contract() -> None:
    settings = SignUpSettings.from_env({"ALLOWED_EMAIL_DOMAINS": "Example.com, corp.example.org"})
    assert settings == SETTINGS
    assert SignUpSettings.from_env(settings.to_env()) == settings


def test_without_the_variable_nobody_may_sign_themselves_up() -> None:
    with pytest.raises(SignUpRefused):
        check(event("alice@example.com"), SignUpSettings.from_env({}))
