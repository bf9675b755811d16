"""WebSocket $connect authorizer (Lambda REQUEST authorizer): the Cognito ID token in the `token` query string.

Browsers cannot set headers on a WebSocket upgrade, so the token travels in the query string; the stage's access
log format names no query string, so it is never logged (stacks/constructs/stream_api.py). Checked as API Gateway's
Cognito authorizer checks it on the REST API: RS256 signature against the user pool's JWKS, issuer, audience (the
web app client), `token_use: id`, expiry (and not-before). The JWKS is fetched once per execution environment and
again only for a key id it does not hold (key rotation), at most once per JWKS_REFRESH_S. If a fetch fails (the
pool's endpoint unreachable, slow, or an unreadable answer), the keys already held stay in use (a token signed with
a key they lack is refused, 401); with no keys at all, every connect is refused (401) until a fetch succeeds: logged
(never the token) and counted (metric JwksUnavailable), never an unhandled error (which API Gateway turns into 500).

Answer: an Allow policy on the connection's method ARN with the user's `sub` as principal and, in the context, the
`sub` and the token's `exp` (handlers/stream.py reads them per message, and refuses messages after `exp`). A
missing or invalid token raises "Unauthorized" (API Gateway answers 401 and refuses the upgrade); a token of
another pool or client gets a Deny (403).

Imports joserfc (and cryptography) only here: the chat path never loads them.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from handlers.entry import built_on_first_call
from handlers.settings import StreamAuthorizerSettings

JWKS_TIMEOUT_S = 3.0
JWKS_REFRESH_S = 300.0
logger = Logger()
metrics = Metrics()

CLOCK_SKEW_S = 0  # Cognito's clocks and Lambda's are NTP-synced: no leeway, as API Gateway's authorizer


class Rejected(Exception):
    """401: no token, a malformed or expired one, a bad signature."""


class Forbidden(Exception):
    """403: a valid token, but for another user pool, app client or use."""


class KeysUnavailable(Rejected):
    """401: the user pool's keys could not be fetched and none are held, so no token can be checked."""


AuthorizerSettings = StreamAuthorizerSettings  # the environment contract (handlers/settings.py)


def fetch_jwks(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=JWKS_TIMEOUT_S) as response:
        return dict(json.loads(response.read()))


class TokenVerifier:
    def __init__(
        self,
        settings: AuthorizerSettings,
        *,
        fetch: Callable[[str], dict[str, Any]] = fetch_jwks,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._settings = settings
        self._fetch = fetch
        self._clock = clock
        self._monotonic = monotonic
        self._keys: KeySet | None = None
        self._kids: set[str] = set()
        self._fetched_at = float("-inf")
        self._lock = threading.Lock()
        self.fetches = 0
        self.fetch_failures = 0

    def _key_set(self, kid: str | None) -> KeySet:
        with self._lock:
            rotated = kid not in self._kids and self._monotonic() - self._fetched_at >= JWKS_REFRESH_S
            stale = self._keys is None or rotated
            if stale:
                self.fetches += 1
                # A failed fetch waits JWKS_REFRESH_S like a good one: a dead endpoint is not asked on every connect.
                self._fetched_at = self._monotonic()
                try:
                    raw = self._fetch(self._settings.jwks_url)
                    keys = KeySet.import_key_set(raw)  # type: ignore[arg-type]
                    kids = {str(key.get("kid")) for key in raw.get("keys", []) if isinstance(key, dict)}
                except Exception as error:  # URLError, timeout, bad JSON, bad keys: all the same here
                    self.fetch_failures += 1
                    metrics.add_metric(name="JwksUnavailable", unit=MetricUnit.Count, value=1)
                    logger.warning(
                        "JWKS fetch failed",
                        extra={"error": type(error).__name__, "keys_held": self._keys is not None},
                    )
                    if self._keys is None:
                        self._fetched_at = float("-inf")  # nothing held: the next connect tries again
                        raise KeysUnavailable("the user pool's keys are unavailable") from None
                else:
                    self._keys, self._kids = keys, kids
            assert self._keys is not None
            return self._keys

    def claims(self, token: str | None) -> dict[str, Any]:
        if not token:
            raise Rejected("no token")
        try:
            header = jws.extract_compact(token.encode()).protected
        except (JoseError, ValueError, UnicodeError) as error:
            raise Rejected("malformed token") from error
        keys = self._key_set(str(header.get("kid")) if header.get("kid") else None)
        try:
            decoded = jwt.decode(token, keys, algorithms=["RS256"])
        except (JoseError, ValueError) as error:
            raise Rejected(f"invalid token ({type(error).__name__})") from error
        claims = dict(decoded.claims)
        now = self._clock()
        if not isinstance(claims.get("exp"), (int, float)) or claims["exp"] <= now - CLOCK_SKEW_S:
            raise Rejected("expired token")
        if isinstance(claims.get("nbf"), (int, float)) and claims["nbf"] > now + CLOCK_SKEW_S:
            raise Rejected("token not yet valid")
        if claims.get("iss") not in self._settings.issuers:
            raise Forbidden("another issuer")
        if claims.get("aud") != self._settings.client_id:
            raise Forbidden("another app client")
        if claims.get("token_use") != "id":
            raise Forbidden("not an ID token")
        if not isinstance(claims.get("sub"), str) or not claims["sub"]:
            raise Rejected("no subject")
        return claims


def policy(principal: str, effect: str, method_arn: str, context: dict[str, str] | None = None) -> dict[str, Any]:
    answer: dict[str, Any] = {
        "principalId": principal,
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [{"Action": "execute-api:Invoke", "Effect": effect, "Resource": method_arn}],
        },
    }
    if context:
        answer["context"] = context
    return answer


def bootstrap(verifier: TokenVerifier | None = None) -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    verifier = verifier or TokenVerifier(AuthorizerSettings.from_env())

    @metrics.log_metrics  # JwksUnavailable
    def handle(event: dict[str, Any], context: Any) -> dict[str, Any]:
        token = (event.get("queryStringParameters") or {}).get("token")
        method_arn = str(event.get("methodArn", ""))
        try:
            claims = verifier.claims(token)
        except Rejected as error:
            logger.info("connect refused", extra={"status": 401, "reason": str(error)})
            raise Exception("Unauthorized") from None  # API Gateway's exact word for 401
        except Forbidden as error:
            logger.info("connect refused", extra={"status": 403, "reason": str(error)})
            return policy("anonymous", "Deny", method_arn)
        sub = str(claims["sub"])
        # `exp` as a string (context values are scalars): handlers/stream.py refuses messages after it.
        return policy(sub, "Allow", method_arn, {"sub": sub, "exp": str(int(claims["exp"]))})

    return handle


handler = built_on_first_call(bootstrap)  # the JWKS is fetched on the first connect, then cached
