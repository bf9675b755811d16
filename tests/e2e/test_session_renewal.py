"""The session outlives its ID token in a real browser: when the API refuses the token (401, as for a token that
expired), the UI renews it with Cognito's refresh token (REFRESH_TOKEN_AUTH against the sandbox's user pool),
retries the request with the new token, and the user goes on chatting without being asked to sign in again."""

from __future__ import annotations

import json
import re
from typing import Any

import boto3
import pytest
from playwright.sync_api import expect

from local.sandbox import DEMO_PASSWORD, DEMO_USER
from tests.e2e.test_browser import page, sign_in_page  # noqa: F401 - the fixture (CSP violations fail the test)
from tests.sandbox_fixture import sandbox  # noqa: F401 - the fixture


def test_a_token_the_api_refuses_is_renewed_once_and_the_request_retried(page: Any, sandbox: Any) -> None:  # noqa: F811
    renewals: list[str] = []
    authorizations: list[str] = []  # of every request for the conversation list, in order
    refused: list[str] = []

    def watch(request: Any) -> None:
        body = request.post_data or ""
        if "REFRESH_TOKEN_AUTH" in body:
            renewals.append(json.loads(body)["AuthParameters"]["REFRESH_TOKEN"])
        if request.method == "GET" and re.search(r"/conversations$", request.url):
            authorizations.append(request.headers.get("authorization", ""))

    def refuse_the_first_list(route: Any) -> None:
        if route.request.method == "GET" and not refused:
            refused.append(route.request.headers.get("authorization", ""))
            route.fulfill(status=401, content_type="application/json", body='{"message":"Unauthorized"}')
        else:
            route.continue_()

    page.on("request", watch)
    page.route(re.compile(r".*/conversations$"), refuse_the_first_list)
    # WHEN the user signs in and the API refuses the token of the first request for the conversation list
    sign_in_page(page, sandbox.web_url)
    page.fill("#message", "Mount Everest is the highest mountain. Which mountain is the highest?")
    page.click("#send")

    # THEN the answer arrives and the list loads, with no sign-in asked for
    expect(page.locator(".msg.assistant").first).to_contain_text(re.compile(r"us-(east-1|west-2)"))
    expect(page.locator("#conversations")).to_contain_text("Mount Everest")
    assert "sign in again" not in page.inner_text("#status")
    assert page.is_hidden("#sign-in")
    # AND the token was renewed exactly once, with the refresh token Cognito gave at sign-in, and the refused
    # request was retried with the new token
    assert len(renewals) == 1 and renewals[0]
    assert refused and authorizations[0] == refused[0]
    assert len(authorizations) >= 2 and authorizations[1] != refused[0]


def test_signing_out_revokes_the_refresh_token_at_cognito(page: Any, sandbox: Any) -> None:  # noqa: F811
    revoked: list[dict[str, str]] = []
    page.on(
        "request",
        lambda request: (
            revoked.append(json.loads(request.post_data or "{}"))
            if request.headers.get("x-amz-target", "").endswith(".RevokeToken")
            else None
        ),
    )
    sign_in_page(page, sandbox.web_url)

    with page.expect_response(
        lambda response: response.request.headers.get("x-amz-target", "").endswith(".RevokeToken")
    ) as revoking:
        page.click("#sign-out")
    assert revoking.value.status == 200
    page.wait_for_selector("#sign-in:not([hidden])")

    # The refresh token the page held renews nothing any more (the sandbox's user pool answers as Cognito does).
    (request,) = revoked
    cognito = boto3.client("cognito-idp", endpoint_url=sandbox.aws_url, region_name=sandbox.region)
    with pytest.raises(cognito.exceptions.NotAuthorizedException, match="revoked"):
        cognito.initiate_auth(
            ClientId=request["ClientId"], AuthFlow="REFRESH_TOKEN_AUTH",
            AuthParameters={"REFRESH_TOKEN": request["Token"]},
        )  # fmt: skip


def test_a_session_the_api_keeps_refusing_returns_to_the_sign_in_form_saying_why(page: Any, sandbox: Any) -> None:  # noqa: F811
    # GIVEN an API that refuses this session even after a renewal (a user disabled by an administrator, say)
    page.route(
        re.compile(r".*/conversations$"),
        lambda route: route.fulfill(status=401, content_type="application/json", body='{"message":"Unauthorized"}'),
    )
    page.goto(sandbox.web_url)
    page.fill("#email", DEMO_USER)
    page.fill("#password", DEMO_PASSWORD)
    page.click("#sign-in-form button[type=submit]")

    # THEN the sign-in form comes back with the reason, not an app that fails every request
    expect(page.locator("#sign-in-error")).to_have_text("Your session has ended: sign in again.")
    assert page.is_visible("#sign-in-form") and page.is_hidden("#app")
