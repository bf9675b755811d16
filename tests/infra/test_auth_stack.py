"""Sign-in as a public reference app should ship it: no OAuth unless configured, SRP only, no self sign-up, MFA as
configured (required by default), and a WAF web ACL in front of the user pool."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, Environment, Stack
from aws_cdk import aws_kms as kms
from aws_cdk.assertions import Match, Template

from stacks.auth_stack import AuthStack
from stacks.config import AppConfig
from tests.infra.conftest import Synth, cdk_context

AUTH = "Bulwark-dev-Auth"


def auth_template(**auth: Any) -> Template:
    """The Auth stack alone, for an `auth` config section (no bundling)."""
    app = App(context={"aws:cdk:bundling-stacks": []})
    config = AppConfig.from_context(cdk_context(auth=auth)["bulwark"])
    env = Environment(account="123456789012", region="us-east-1")
    key = kms.Key(Stack(app, "Keys", env=env), "Key")
    return Template.from_stack(AuthStack(app, "Auth", config=config, key=key, env=env))


def _client(template: Template) -> dict[str, Any]:
    (client,) = template.find_resources("AWS::Cognito::UserPoolClient").values()
    return client["Properties"]  # type: ignore[no-any-return]


def _sign_up_checks(template: Template) -> dict[str, Any]:
    return template.find_resources("AWS::Lambda::Function", {"Properties": {"Handler": "handlers.pre_sign_up.handler"}})


def test_the_web_client_has_no_oauth_and_signs_in_with_srp_only(synth: Synth) -> None:
    client = _client(synth.template(AUTH))

    assert client["AllowedOAuthFlowsUserPoolClient"] is False
    for key in ("AllowedOAuthFlows", "AllowedOAuthScopes", "CallbackURLs", "LogoutURLs"):
        assert key not in client, f"{key} must be absent without auth.oauth_callback_urls"
    assert client["ExplicitAuthFlows"] == ["ALLOW_USER_SRP_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"]
    assert client["GenerateSecret"] is False and client["PreventUserExistenceErrors"] == "ENABLED"


def test_the_web_clients_session_renews_for_30_days_and_sign_out_can_revoke_it(synth: Synth) -> None:
    """The UI renews the hour-long ID token with the refresh token (web/session.js) and revokes that at sign-out."""
    client = _client(synth.template(AUTH))

    assert client["TokenValidityUnits"]["IdToken"] == "minutes" and client["IdTokenValidity"] == 60
    assert client["TokenValidityUnits"]["RefreshToken"] == "minutes" and client["RefreshTokenValidity"] == 30 * 24 * 60
    assert client["EnableTokenRevocation"] is True


def test_self_sign_up_is_off_and_mfa_is_required_with_totp(synth: Synth) -> None:
    template = synth.template(AUTH)
    template.has_resource_properties(
        "AWS::Cognito::UserPool",
        {
            "AdminCreateUserConfig": {"AllowAdminCreateUserOnly": True},
            "MfaConfiguration": "ON",
            "EnabledMfas": ["SOFTWARE_TOKEN_MFA"],
        },
    )
    (pool,) = template.find_resources("AWS::Cognito::UserPool").values()
    assert "LambdaConfig" not in pool["Properties"], "no pre-sign-up trigger without self sign-up"
    assert not _sign_up_checks(template)


def test_a_waf_web_acl_guards_the_user_pool(synth: Synth) -> None:
    template = synth.template(AUTH)
    ((pool_id, _),) = template.find_resources("AWS::Cognito::UserPool").items()
    ((acl_id, acl),) = template.find_resources("AWS::WAFv2::WebACL").items()

    assert acl["Properties"]["Scope"] == "REGIONAL"
    assert {rule["Name"] for rule in acl["Properties"]["Rules"]} >= {"RatePerIp", "AWSManagedRulesCommonRuleSet"}
    template.has_resource_properties(
        "AWS::WAFv2::WebACLAssociation",
        {"ResourceArn": {"Fn::GetAtt": [pool_id, "Arn"]}, "WebACLArn": {"Fn::GetAtt": [acl_id, "Arn"]}},
    )
    template.has_resource_properties(
        "AWS::WAFv2::LoggingConfiguration",
        {"RedactedFields": Match.array_with([{"SingleHeader": {"Name": "authorization"}}])},
    )


def test_required_mfa_meets_the_nag_rule_instead_of_suppressing_it(synth: Synth) -> None:
    path = Path(synth.app.outdir) / f"AwsSolutions--{AUTH}-NagReport.csv"
    rows = [row for row in csv.DictReader(path.open()) if row["Rule ID"] == "AwsSolutions-COG2"]
    assert rows and {row["Compliance"] for row in rows} == {"Compliant"}


@pytest.mark.parametrize(("mfa", "cfn"), [("optional", "OPTIONAL"), ("off", "OFF")])
def test_mfa_follows_config_and_a_weaker_choice_is_suppressed_with_its_reason(mfa: str, cfn: str) -> None:
    template = auth_template(mfa=mfa)
    (pool,) = template.find_resources("AWS::Cognito::UserPool").values()

    assert pool["Properties"]["MfaConfiguration"] == cfn
    reasons = {r["id"]: r["reason"] for r in pool["Metadata"]["cdk_nag"]["rules_to_suppress"]}
    assert f"auth.mfa = '{mfa}'" in reasons["AwsSolutions-COG2"]


def test_oauth_only_with_configured_urls_and_only_the_code_flow() -> None:
    client = _client(
        auth_template(
            oauth_callback_urls=["https://app.example.com/callback"], oauth_logout_urls=["https://app.example.com/"]
        )
    )

    assert client["AllowedOAuthFlowsUserPoolClient"] is True
    assert client["AllowedOAuthFlows"] == ["code"]
    assert client["CallbackURLs"] == ["https://app.example.com/callback"]
    assert client["LogoutURLs"] == ["https://app.example.com/"]
    assert "aws.cognito.signin.user.admin" not in client["AllowedOAuthScopes"]
    assert client["ExplicitAuthFlows"] == ["ALLOW_USER_SRP_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"]


def test_self_sign_up_with_an_allowlist_gets_a_pre_sign_up_trigger() -> None:
    template = auth_template(self_sign_up=True, sign_up_email_domains=["example.com", "corp.example.org"])

    ((function_id, function),) = _sign_up_checks(template).items()
    assert function["Properties"]["Environment"]["Variables"]["ALLOWED_EMAIL_DOMAINS"] == "example.com,corp.example.org"
    assert function["Properties"]["Environment"]["Variables"]["POWERTOOLS_TRACER_CAPTURE_RESPONSE"] == "false"
    template.has_resource_properties(
        "AWS::Cognito::UserPool",
        {
            "AdminCreateUserConfig": {"AllowAdminCreateUserOnly": False},
            "LambdaConfig": {"PreSignUp": {"Fn::GetAtt": [function_id, "Arn"]}},
        },
    )
    template.has_resource_properties(
        "AWS::Lambda::Permission", {"Principal": "cognito-idp.amazonaws.com", "Action": "lambda:InvokeFunction"}
    )


def test_self_sign_up_without_an_allowlist_has_no_trigger() -> None:
    template = auth_template(self_sign_up=True)
    template.has_resource_properties(
        "AWS::Cognito::UserPool", {"AdminCreateUserConfig": {"AllowAdminCreateUserOnly": False}}
    )
    assert not _sign_up_checks(template)
