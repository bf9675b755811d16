"""Verify Cognito ID tokens as API Gateway's Cognito authorizer does (signature, issuer, audience,
token use, expiry), against the user pool's JWKS (moto's cognito-idp locally)."""

from __future__ import annotations

import json
import time
import urllib.request
from typing import Any

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet


class TokenRejected(ValueError):
    pass


class CognitoVerifier:
    def __init__(self, *, jwks_url: str, issuer: str, client_id: str) -> None:
        with urllib.request.urlopen(jwks_url, timeout=5) as response:
            self._keys = KeySet.import_key_set(json.loads(response.read()))
        self._issuer = issuer
        self._client_id = client_id

    def claims(self, authorization: str | None) -> dict[str, Any]:
        if not authorization:
            raise TokenRejected("sign in first: the Authorization header is missing")
        token = authorization.removeprefix("Bearer ").strip()
        try:
            decoded = jwt.decode(token, self._keys, algorithms=["RS256"])
        except (JoseError, ValueError) as error:
            raise TokenRejected(f"the token is not valid: {error}") from error
        claims = decoded.claims
        if claims.get("iss") != self._issuer or claims.get("aud") != self._client_id:
            raise TokenRejected("the token was issued for another user pool or app client")
        if claims.get("token_use") != "id":
            raise TokenRejected("send the ID token, not the access token")
        if int(claims.get("exp", 0)) <= time.time():
            raise TokenRejected("the token has expired: sign in again")
        return dict(claims)
