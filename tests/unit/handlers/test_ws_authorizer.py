"""The WebSocket $connect authorizer: Cognito ID tokens checked like API Gateway's Cognito authorizer does."""

from __future__ import annotations

import urllib.error
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey

from handlers.ws_authorizer import AuthorizerSettings, TokenVerifier, bootstrap

ISSUER = "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_Pool"
CLIENT = "webclient"
NOW = 1_800_000_000
ARN = "arn:aws:execute-api:us-east-1:123456789012:abc123/v1/$connect"


def rsa(kid: str) -> RSAKey:
    return RSAKey.generate_key(2048, parameters={"kid": kid, "alg": "RS256", "use": "sig"}, auto_kid=False)


KEY = rsa("k1")
OTHER = rsa("k2")


class Jwks:
    def __init__(self, *keys: RSAKey) -> None:
        self.keys = list(keys)
        self.calls = 0
        self.failure: Exception | None = None  # the pool's endpoint failing this way

    def __call__(self, url: str) -> dict[str, Any]:
        self.calls += 1
        if self.failure is not None:
            raise self.failure
        return KeySet(self.keys).as_dict(private=False)  # type: ignore[arg-type]


def token(key: RSAKey = KEY, **overrides: Any) -> str:
    claims = {"sub": "user-1", "iss": ISSUER, "aud": CLIENT, "token_use": "id", "exp": NOW + 600, "iat": NOW - 1}
    claims.update(overrides)
    claims = {name: value for name, value in claims.items() if value is not None}
    return jwt.encode({"alg": "RS256", "kid": key.kid}, claims, key)


def authorizer(jwks: Jwks | None = None, *, monotonic: Any = None) -> tuple[Any, TokenVerifier, Jwks]:
    jwks = jwks or Jwks(KEY)
    settings = AuthorizerSettings(jwks_url="https://jwks", issuers=(ISSUER,), client_id=CLIENT)
    verifier = TokenVerifier(settings, fetch=jwks, clock=lambda: NOW, monotonic=monotonic or (lambda: 0.0))
    return bootstrap(verifier), verifier, jwks


def connect(handle: Any, token_value: str | None) -> dict[str, Any]:
    query = {"token": token_value} if token_value is not None else None
    return handle({"type": "REQUEST", "methodArn": ARN, "queryStringParameters": query}, None)


def test_a_valid_id_token_is_allowed_with_the_sub_in_the_context() -> None:
    handle, _, _ = authorizer()
    answer = connect(handle, token())
    assert answer["principalId"] == "user-1"
    assert answer["context"] == {"sub": "user-1", "exp": str(NOW + 600)}  # handlers/stream.py checks `exp` per message
    statement = answer["policyDocument"]["Statement"][0]
    assert statement == {"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": ARN}


@pytest.mark.parametrize(
    "bad",
    [
        None,
        "",
        "not-a-jwt",
        token(exp=NOW - 1),
        token(exp=None),
        token(nbf=NOW + 60),
        token(sub=None),
        token()[:-4] + "AAAA",  # signature tampered
    ],
    ids=["absent", "empty", "garbage", "expired", "no-exp", "not-yet", "no-sub", "tampered"],
)
def test_a_missing_or_invalid_token_is_401(bad: str | None) -> None:
    handle, _, _ = authorizer()
    with pytest.raises(Exception, match=r"^Unauthorized$"):
        connect(handle, bad)


def test_a_token_signed_by_a_key_the_pool_does_not_publish_is_401() -> None:
    handle, _, _ = authorizer()
    with pytest.raises(Exception, match=r"^Unauthorized$"):
        connect(handle, token(key=OTHER))


@pytest.mark.parametrize(
    "claims",
    [
        {"iss": "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_Other"},
        {"aud": "another"},
        {"token_use": "access"},
    ],
    ids=["issuer", "audience", "access-token"],
)
def test_a_valid_token_of_another_pool_client_or_use_is_denied(claims: dict[str, str]) -> None:
    handle, _, _ = authorizer()
    answer = connect(handle, token(**claims))
    assert answer["policyDocument"]["Statement"][0]["Effect"] == "Deny"
    assert "context" not in answer


def test_the_jwks_is_fetched_once_per_environment() -> None:
    handle, _verifier, jwks = authorizer()
    for _ in range(5):
        connect(handle, token())
    assert jwks.calls == 1


def test_a_rotated_key_is_fetched_again_but_unknown_kids_cannot_force_refetches() -> None:
    now = [0.0]
    jwks = Jwks(KEY)
    handle, _verifier, _ = authorizer(jwks, monotonic=lambda: now[0])
    connect(handle, token())
    jwks.keys.append(OTHER)  # the pool publishes a new key
    now[0] = 400.0
    assert connect(handle, token(key=OTHER))["principalId"] == "user-1"
    assert jwks.calls == 2
    now[0] = 410.0
    with pytest.raises(Exception, match=r"^Unauthorized$"):
        connect(handle, token(key=rsa("k3")))
    assert jwks.calls == 2  # within the refresh interval: no fetch per forged kid


def test_settings_come_from_the_environment_contract() -> None:
    with pytest.raises(KeyError, match="JWKS_URL"):
        AuthorizerSettings.from_env({"TOKEN_ISSUERS": ISSUER, "CLIENT_ID": "c"})
    settings = AuthorizerSettings.from_env({"JWKS_URL": "u", "TOKEN_ISSUERS": f"{ISSUER}, b", "CLIENT_ID": "c"})
    assert settings.issuers == (ISSUER, "b")  # case kept: pool ids are case-sensitive


@pytest.mark.parametrize(
    "failure",
    [urllib.error.URLError("unreachable"), TimeoutError("timed out"), ValueError("not JSON")],
    ids=["unreachable", "timeout", "garbage"],
)
def test_with_no_keys_held_a_failed_jwks_fetch_is_401_and_the_next_connect_tries_again(
    failure: Exception, caplog: pytest.LogCaptureFixture
) -> None:
    jwks = Jwks(KEY)
    jwks.failure = failure
    handle, verifier, _ = authorizer(jwks)
    secret = token()
    with pytest.raises(Exception, match=r"^Unauthorized$"):  # a 401, never an unhandled error (API Gateway's 500)
        connect(handle, secret)
    assert verifier.fetch_failures == 1
    logged = [(record.getMessage(), repr(vars(record))) for record in caplog.records]
    assert any(message == "JWKS fetch failed" for message, _ in logged)
    assert not any(secret in everything for _, everything in logged)  # the token is never logged

    jwks.failure = None  # the endpoint is back: nothing was cached, so the next connect fetches at once
    assert connect(handle, token())["principalId"] == "user-1"
    assert jwks.calls == 2


def test_with_keys_held_a_failed_refetch_keeps_them_and_an_unknown_kid_is_401() -> None:
    now = [0.0]
    jwks = Jwks(KEY)
    handle, verifier, _ = authorizer(jwks, monotonic=lambda: now[0])
    connect(handle, token())
    jwks.failure = urllib.error.URLError("unreachable")
    now[0] = 400.0  # past the refresh interval: an unknown kid asks the pool again, and that fails

    with pytest.raises(Exception, match=r"^Unauthorized$"):
        connect(handle, token(key=OTHER))
    assert connect(handle, token())["principalId"] == "user-1"  # the held key still serves
    assert verifier.fetch_failures == 1 and jwks.calls == 2  # the failed fetch waits the interval too


def test_a_failed_jwks_fetch_is_counted(capsys: pytest.CaptureFixture[str]) -> None:
    jwks = Jwks(KEY)
    jwks.failure = urllib.error.URLError("unreachable")
    handle, _, _ = authorizer(jwks)
    with pytest.raises(Exception, match=r"^Unauthorized$"):
        connect(handle, token())
    emitted = [line for line in capsys.readouterr().out.splitlines() if "_aws" in line]
    assert any('"JwksUnavailable"' in line for line in emitted)  # the EMF blob log_metrics flushed
