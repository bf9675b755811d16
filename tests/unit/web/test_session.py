"""web/session.js (the signed-in session) run by Node with a fake Cognito, clock and storage: the ID token is renewed
with the refresh token before it expires (once for concurrent callers), its lifetime counts from when it arrived,
a refused refresh token is dropped and an unreachable Cognito keeps it, a saved session is restored only when it
can be used, and signing out revokes the refresh token."""

from __future__ import annotations

from typing import Any

from tests.unit.web.node import run_module

# A fake Cognito, clock and storage, and `token(iat, exp, tag)`: a JWT-shaped ID token (only its claims are read).
HARNESS = """
const calls = [];
let now = 1_000_000_000_000;
let answer = null;  // the next Cognito call: {token} | {refuse: true} | {throttle: true} | {unreachable: true}
const store = new Map();
const storage = {
  getItem: (k) => store.get(k) ?? null, setItem: (k, v) => store.set(k, v), removeItem: (k) => store.delete(k),
};
const b64 = (text) => Buffer.from(text).toString("base64").replace(/\\+/g, "-").replace(/\\//g, "_").replace(/=+$/, "");
const token = (iat, exp, tag) => `h.${b64(JSON.stringify({ iat, exp, tag }))}.s`;
async function cognito(action, body) {
  calls.push([action, body]);
  await new Promise((resolve) => setTimeout(resolve, 5));
  if (action !== "InitiateAuth") return {};
  if (answer.unreachable) throw new TypeError("Failed to fetch");
  const refused = { type: "NotAuthorizedException" };
  if (answer.refuse) throw Object.assign(new Error("Refresh Token has been revoked"), refused);
  if (answer.throttle) throw Object.assign(new Error("Rate exceeded"), { type: "TooManyRequestsException" });
  return { AuthenticationResult: { IdToken: answer.token } };
}
const session = new s.Session({ cognito, clientId: "client-1", storage, now: () => now });
const seconds = (ms) => Math.floor(ms / 1000);
const tag = async () => s.claims(await session.current()).tag;
"""


def run(script: str) -> Any:
    """Runs an ES module that imports web/session.js as `s`, with the harness above, and prints one JSON value."""
    return run_module("session.js", "s", f"{HARNESS}\n{script}")


def test_the_token_is_renewed_before_it_expires_once_for_concurrent_callers_and_the_refresh_token_is_kept() -> None:
    out = run("""
session.keep({ IdToken: token(seconds(now), seconds(now) + 3600, "first"), RefreshToken: "refresh-1" }, "a@b.c");
const early = await tag();
now += 3600_000 - s.RENEW_BEFORE_MS - 1000;  // more than 5 minutes left: no renewal
const still = await tag();
now += 2000;  // less than 5 minutes left
answer = { token: token(seconds(now), seconds(now) + 3600, "second") };
const both = await Promise.all([session.current(), session.current()]);
console.log(JSON.stringify({ early, still, both: both.map((t) => s.claims(t).tag), calls,
  refresh: session.refreshToken, saved: JSON.parse(store.get("bulwark.session")) }));
""")
    assert out["early"] == out["still"] == "first"
    assert out["both"] == ["second", "second"]
    assert out["calls"] == [["InitiateAuth", {"AuthFlow": "REFRESH_TOKEN_AUTH", "ClientId": "client-1",
                                              "AuthParameters": {"REFRESH_TOKEN": "refresh-1"}}]]  # fmt: skip
    assert out["refresh"] == "refresh-1"  # a renewal returns no refresh token: the one from sign-in stays
    assert out["saved"]["refreshToken"] == "refresh-1" and out["saved"]["email"] == "a@b.c"


def test_a_tokens_lifetime_counts_from_its_arrival_so_a_wrong_clock_does_not_renew_every_call() -> None:
    out = run("""
// This browser's clock is two days ahead of Cognito's: by `exp` the token expired long ago.
session.keep({ IdToken: token(seconds(now) - 172800, seconds(now) - 172800 + 3600, "skewed"), RefreshToken: "r" },
             "a@b.c");
const first = await tag();
now += 30 * 60_000;
console.log(JSON.stringify({ first, later: await tag(), calls: calls.length }));
""")
    assert out == {"first": "skewed", "later": "skewed", "calls": 0}


def test_a_refused_refresh_token_is_dropped_and_an_unreachable_or_throttling_cognito_keeps_it() -> None:
    out = run("""
session.keep({ IdToken: token(seconds(now), seconds(now) + 3600, "old"), RefreshToken: "r" }, "a@b.c");
now += 3590_000;
answer = { unreachable: true };
const offline = await tag();
answer = { throttle: true };
await tag();
const keptRefresh = session.refreshToken;
answer = { refuse: true };
const refused = await tag();
const afterRefusal = session.refreshToken;
const before = calls.length;
await session.current({ force: true });  // nothing left to renew with: no call
console.log(JSON.stringify({ offline, keptRefresh, refused, afterRefusal, more: calls.length - before }));
""")
    assert out == {"offline": "old", "keptRefresh": "r", "refused": "old", "afterRefusal": None, "more": 0}


def test_force_renews_a_token_the_api_refused_although_it_looked_fresh() -> None:
    out = run("""
session.keep({ IdToken: token(seconds(now), seconds(now) + 3600, "fresh"), RefreshToken: "r" }, "a@b.c");
answer = { token: token(seconds(now), seconds(now) + 3600, "renewed") };
const forced = s.claims(await session.current({ force: true })).tag;
console.log(JSON.stringify({ forced, calls: calls.length }));
""")
    assert out == {"forced": "renewed", "calls": 1}


def test_a_saved_session_is_restored_only_when_it_can_be_used() -> None:
    out = run("""
const other = (saved) => { store.set("bulwark.session", JSON.stringify(saved));
  return new s.Session({ cognito, clientId: "client-1", storage, now: () => now }).restore(); };
const expired = token(seconds(now) - 7200, seconds(now) - 3600, "x");
console.log(JSON.stringify({
  none: other(null),
  expiredNoRefresh: other({ token: expired, email: "a@b.c" }),
  expiredWithRefresh: other({ token: expired, email: "a@b.c", refreshToken: "r", expiresAt: now - 1 }),
  valid: other({ token: token(seconds(now), seconds(now) + 3600, "v"), email: "a@b.c" }),
}));
""")
    assert out == {"none": False, "expiredNoRefresh": False, "expiredWithRefresh": True, "valid": True}


def test_signing_out_revokes_the_refresh_token_and_forgets_the_session() -> None:
    out = run("""
session.keep({ IdToken: token(seconds(now), seconds(now) + 3600, "t"), RefreshToken: "refresh-9" }, "a@b.c");
session.signOut();
console.log(JSON.stringify({ calls, saved: store.has("bulwark.session"), token: session.token,
  current: await session.current() }));
""")
    assert out["calls"] == [["RevokeToken", {"ClientId": "client-1", "Token": "refresh-9"}]]
    assert out["saved"] is False and out["token"] is None and out["current"] is None


def test_a_renewal_that_ends_after_sign_out_or_another_sign_in_changes_nothing() -> None:
    out = run("""
session.keep({ IdToken: token(seconds(now), seconds(now) + 3600, "alice"), RefreshToken: "r-alice" }, "a@b.c");
now += 3590_000;
answer = { token: token(seconds(now), seconds(now) + 3600, "alice-renewed") };
const renewing = session.current();
session.signOut();  // while the renewal is in flight
await renewing;
const afterSignOut = { token: session.token, saved: store.has("bulwark.session") };

session.keep({ IdToken: token(seconds(now), seconds(now) + 3600, "bob"), RefreshToken: "r-bob" }, "bob@b.c");
now += 3590_000;
answer = { token: token(seconds(now), seconds(now) + 3600, "bob-renewed") };
const bobRenewing = session.current();
now += 1;
session.keep({ IdToken: token(seconds(now), seconds(now) + 3600, "carol"), RefreshToken: "r-carol" }, "c@b.c");
await bobRenewing;
console.log(JSON.stringify({ afterSignOut, who: s.claims(session.token).tag, email: session.email,
  refresh: session.refreshToken, saved: JSON.parse(store.get("bulwark.session")).refreshToken }));
""")
    assert out["afterSignOut"] == {"token": None, "saved": False}
    assert out["who"] == "carol" and out["email"] == "c@b.c" and out["refresh"] == "r-carol" == out["saved"]
