"""Sign-in in a real browser: an invited user's first sign-in (new password, authenticator enrolment, codes)
against the sandbox, and the AWS path (SRP) against a Cognito-style verifier, since moto does not verify SRP."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import struct
import time
import urllib.request
import uuid
from typing import Any

import boto3
from playwright.sync_api import expect

from local.sandbox import DEMO_PASSWORD, DEMO_USER
from tests.e2e.test_browser import page  # noqa: F401 - the fixture (CSP violations fail the test)
from tests.sandbox_fixture import sandbox  # noqa: F401 - the fixture
from tests.unit.web.test_srp import CognitoSrpServer

TEMPORARY_PASSWORD = "Temp-Passw0rd!2026"
OWN_PASSWORD = "Own-Passw0rd!2026x"


def totp(secret: str) -> str:
    """RFC 6238 (SHA-1, 30 s, 6 digits). moto accepts only the current step, so a code is made only with at least
    15 s of its step left (waiting for the next step otherwise): ample for typing and one request even on a
    busy machine."""
    if time.time() % 30 > 15:
        time.sleep(30 - time.time() % 30 + 0.2)
    key = base64.b32decode(secret + "=" * (-len(secret) % 8), casefold=True)
    digest = hmac.new(key, struct.pack(">Q", int(time.time()) // 30), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    return f"{(struct.unpack('>I', digest[offset : offset + 4])[0] & 0x7FFFFFFF) % 1_000_000:06d}"


def sign_in_form(page: Any, email: str, password: str) -> None:  # noqa: F811
    page.fill("#email", email)
    page.fill("#password", password)
    page.click("#sign-in-form button[type=submit]")


def test_an_invited_user_chooses_a_password_enrols_an_authenticator_then_signs_in_with_codes(
    page: Any,  # noqa: F811
    sandbox: Any,  # noqa: F811
) -> None:
    # GIVEN a user an administrator invited (temporary password) into a pool whose MFA is required
    cognito = boto3.client("cognito-idp", endpoint_url=sandbox.aws_url, region_name=sandbox.region)
    assert cognito.describe_user_pool(UserPoolId=sandbox.user_pool_id)["UserPool"]["MfaConfiguration"] == "ON"
    email = f"invited-{uuid.uuid4().hex[:8]}@bulwark.local"
    cognito.admin_create_user(
        UserPoolId=sandbox.user_pool_id,
        Username=email,
        TemporaryPassword=TEMPORARY_PASSWORD,
        UserAttributes=[{"Name": "email", "Value": email}, {"Name": "email_verified", "Value": "true"}],
        MessageAction="SUPPRESS",
    )
    page.goto(sandbox.web_url)

    # WHEN they sign in: a password of their own, then the authenticator (secret shown, first code checked)
    sign_in_form(page, email, TEMPORARY_PASSWORD)
    page.wait_for_selector("#new-password-form:not([hidden])")
    page.fill("#new-password", OWN_PASSWORD)
    page.click("#new-password-form button[type=submit]")
    page.wait_for_selector("#totp-setup:not([hidden])")
    secret = page.inner_text("#totp-secret").strip()
    assert page.get_attribute("#totp-link", "href") == (
        f"otpauth://totp/Bulwark:{email.replace('@', '%40')}?secret={secret}&issuer=Bulwark"
    )
    page.fill("#code", totp(secret))
    page.click("#code-form button[type=submit]")

    # THEN they are in; and the next sign-in asks for a code, refusing a wrong one
    page.wait_for_selector("#app:not([hidden])")
    page.click("#sign-out")
    sign_in_form(page, email, OWN_PASSWORD)
    page.wait_for_selector("#code-form:not([hidden])")
    assert page.is_hidden("#totp-setup")
    page.fill("#code", "000000" if totp(secret) != "000000" else "111111")
    page.click("#code-form button[type=submit]")
    expect(page.locator("#sign-in-error")).to_contain_text("Mismatch")
    assert page.is_visible("#sign-in-form")
    sign_in_form(page, email, OWN_PASSWORD)
    page.wait_for_selector("#code-form:not([hidden])")
    page.fill("#code", totp(secret))
    page.click("#code-form button[type=submit]")
    page.wait_for_selector("#app:not([hidden])")
    assert page.inner_text("#who") == email


CORS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Headers": "Content-Type, X-Amz-Target, X-Amz-User-Agent",
    "Access-Control-Allow-Methods": "POST, OPTIONS",
}


def test_in_aws_mode_the_browser_proves_the_password_by_srp_and_never_sends_it(
    page: Any,  # noqa: F811
    sandbox: Any,  # noqa: F811
) -> None:
    # GIVEN the AWS runtime config (no `local`) and, for Cognito's two SRP calls, a verifier that checks the
    # proof as Cognito does (moto does not); once the proof holds it hands out the sandbox's real tokens.
    with urllib.request.urlopen(sandbox.web_url + "/config.json") as response:
        aws_config = {k: v for k, v in json.loads(response.read()).items() if k != "local"}
    user_id = str(uuid.uuid4())
    server = CognitoSrpServer(pool_id=sandbox.user_pool_id, user_id=user_id, password=DEMO_PASSWORD)
    challenge = server.challenge()
    tokens = boto3.client("cognito-idp", endpoint_url=sandbox.aws_url, region_name=sandbox.region).initiate_auth(
        AuthFlow="USER_PASSWORD_AUTH",
        ClientId=sandbox.client_id,
        AuthParameters={"USERNAME": DEMO_USER, "PASSWORD": DEMO_PASSWORD},
    )["AuthenticationResult"]
    bodies: list[str] = []
    srp_a: list[str] = []

    def cognito(route: Any) -> None:
        request = route.request
        if request.method == "OPTIONS":
            route.fulfill(status=200, headers=CORS)
            return
        bodies.append(request.post_data or "")
        body = json.loads(request.post_data)
        action = request.headers["x-amz-target"].rsplit(".", 1)[1]
        status, reply = 400, {"__type": "NotAuthorizedException", "message": "Incorrect username or password."}
        if action == "InitiateAuth" and body["AuthFlow"] == "USER_SRP_AUTH":
            srp_a.append(body["AuthParameters"]["SRP_A"])
            status, reply = 200, {
                "ChallengeName": "PASSWORD_VERIFIER",
                "Session": "srp-session",
                "ChallengeParameters": {"SRP_B": challenge["srpB"], "SALT": challenge["salt"],
                                        "SECRET_BLOCK": challenge["secretBlock"], "USER_ID_FOR_SRP": user_id,
                                        "USERNAME": user_id},
            }  # fmt: skip
        elif action == "RespondToAuthChallenge" and body["ChallengeName"] == "PASSWORD_VERIFIER":
            answer = body["ChallengeResponses"]
            if (
                body["Session"] == "srp-session"
                and answer["USERNAME"] == user_id
                and answer["PASSWORD_CLAIM_SECRET_BLOCK"] == challenge["secretBlock"]
                and answer["PASSWORD_CLAIM_SIGNATURE"] == server.expected_signature(srp_a[-1], answer["TIMESTAMP"])
            ):
                status, reply = 200, {"AuthenticationResult": tokens, "ChallengeParameters": {}}
        route.fulfill(
            status=status, headers={**CORS, "Content-Type": "application/x-amz-json-1.1"}, body=json.dumps(reply)
        )

    page.route(sandbox.aws_url + "/", cognito)
    page.route("**/config.json", lambda route: route.fulfill(json=aws_config))
    page.goto(sandbox.web_url)

    # WHEN a wrong password is tried, then the right one
    sign_in_form(page, DEMO_USER, "Wrong-Passw0rd!2026")
    expect(page.locator("#sign-in-error")).to_contain_text("Incorrect username or password")
    sign_in_form(page, DEMO_USER, DEMO_PASSWORD)

    # THEN the verifier accepted the second proof only, and no request ever carried a password
    page.wait_for_selector("#app:not([hidden])")
    assert len(srp_a) == 2
    assert [json.loads(body).get("AuthFlow") for body in bodies if "AuthFlow" in body] == ["USER_SRP_AUTH"] * 2
    assert not any(DEMO_PASSWORD in body or "Wrong-Passw0rd" in body or 'PASSWORD"' in body for body in bodies)
    assert page.inner_text("#who") == DEMO_USER
