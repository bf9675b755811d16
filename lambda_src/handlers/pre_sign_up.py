"""Cognito pre-sign-up trigger: self sign-up only for the configured email domains (auth.sign_up_email_domains).

Users an administrator creates (PreSignUp_AdminCreateUser) are let through: the allowlist limits who may
sign themselves up, not whom an administrator invites. Cognito turns the exception's message into the
sign-up error the caller sees, so the message names no allowed domain.
"""

from __future__ import annotations

from typing import Any

from handlers.settings import SignUpSettings

_SELF_SIGN_UP = ("PreSignUp_SignUp", "PreSignUp_ExternalProvider")


class SignUpRefused(Exception):
    """The email's domain is not on the allowlist."""


def check(event: dict[str, Any], settings: SignUpSettings) -> dict[str, Any]:
    if event.get("triggerSource") not in _SELF_SIGN_UP:
        return event
    email = str(((event.get("request") or {}).get("userAttributes") or {}).get("email", ""))
    local, at, domain = email.strip().rpartition("@")
    if not (local and at) or domain.lower() not in settings.allowed_email_domains:
        raise SignUpRefused("sign-up is not open to this email address; ask an administrator for an invitation")
    return event


settings = SignUpSettings.from_env()


def handler(event: dict[str, Any], context: object) -> dict[str, Any]:
    return check(event, settings)
