"""Cognito sign-in. Primary region: the user pool (and its replica in DR, see ADR 0001).

DR region: activates the replica, so the DR API accepts tokens from either region and users
can still sign in while the primary region is down.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import ArnFormat, CfnOutput, Duration, RemovalPolicy, Stack
from aws_cdk import aws_cognito as cognito
from aws_cdk import aws_kms as kms
from constructs import Construct

from stacks.config import AppConfig
from stacks.constructs.nag import suppress
from stacks.constructs.python_function import PythonFunction, lambda_code, log_retention
from stacks.constructs.web_acl import WebAcl
from stacks.lambda_settings import sign_up_settings


class AuthStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: AppConfig,
        key: kms.IKey,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        auth = config.auth
        self.user_pool = cognito.UserPool(
            self,
            "Users",
            feature_plan=cognito.FeaturePlan.ESSENTIALS,  # multi-Region replication needs Essentials+
            # Off by default: administrators invite users (a temporary password, changed at first sign-in).
            self_sign_up_enabled=auth.self_sign_up,
            sign_in_aliases=cognito.SignInAliases(email=True),
            auto_verify=cognito.AutoVerifiedAttrs(email=True),
            account_recovery=cognito.AccountRecovery.EMAIL_ONLY,
            password_policy=cognito.PasswordPolicy(
                min_length=12,
                require_lowercase=True,
                require_uppercase=True,
                require_digits=True,
                require_symbols=True,
                temp_password_validity=Duration.days(3),
            ),
            mfa=_MFA[auth.mfa],
            mfa_second_factor=cognito.MfaSecondFactor(otp=True, sms=False) if auth.mfa != "off" else None,
            deletion_protection=True,
            removal_policy=RemovalPolicy.RETAIN,
        )
        if config.replicate_user_pool:
            pool = self.user_pool.node.default_child
            assert isinstance(pool, cognito.CfnUserPool)
            pool.key_configuration = cognito.CfnUserPool.KeyConfigurationProperty(
                key_type="CUSTOMER_MANAGED_KEY", kms_key_arn=key.key_arn
            )
            pool.issuer_configuration = cognito.CfnUserPool.IssuerConfigurationProperty(type="UPDATED")
            cognito.CfnUserPoolReplica(
                self, "UsersReplica", user_pool_id=self.user_pool.user_pool_id, region_name=config.dr_region
            )
        if auth.mfa != "required":
            suppress(
                self.user_pool,
                f"This deployment chose auth.mfa = {auth.mfa!r} in cdk.json (the default is 'required', TOTP "
                "enrolled at first sign-in); the choice is the deployment's, stated in its config.",
                "AwsSolutions-COG2",
            )
        suppress(
            self.user_pool,
            "Threat protection (advanced security ENFORCED) needs the Plus feature plan; this deployment "
            "uses Essentials, the cheapest plan that supports multi-Region replication.",
            "AwsSolutions-COG3",
            "AwsSolutions-COG8",
        )
        if auth.sign_up_email_domains:
            self.sign_up_check = self._sign_up_allowlist(config, key)
            self.user_pool.add_trigger(cognito.UserPoolOperation.PRE_SIGN_UP, self.sign_up_check.function)
        self.client = self.user_pool.add_client(
            "WebClient",
            # SRP only: the password never leaves the browser (refresh tokens are always allowed by CDK).
            auth_flows=cognito.AuthFlow(user_srp=True),
            generate_secret=False,  # a browser app cannot keep a secret
            prevent_user_existence_errors=True,
            access_token_validity=Duration.hours(1),
            id_token_validity=Duration.hours(1),
            refresh_token_validity=Duration.days(30),
            # Room to scan the TOTP secret and type the first code during the MFA_SETUP challenge.
            auth_session_validity=Duration.minutes(10),
            enable_token_revocation=True,
            # CDK's default client would allow the implicit and code grants with https://example.com as the
            # callback: OAuth stays off unless this deployment names its own callback URLs.
            disable_o_auth=not auth.oauth,
            o_auth=(
                cognito.OAuthSettings(
                    flows=cognito.OAuthFlows(authorization_code_grant=True),
                    scopes=[cognito.OAuthScope.OPENID, cognito.OAuthScope.EMAIL],
                    callback_urls=list(auth.oauth_callback_urls),
                    logout_urls=list(auth.oauth_logout_urls) or None,
                )
                if auth.oauth
                else None
            ),
            supported_identity_providers=[cognito.UserPoolClientIdentityProvider.COGNITO],
        )
        # Sign-in, sign-up and token calls pass a regional WAF: the per-IP rate limit and managed rules. The
        # primary region's API stage shares this ACL (app.py): one ACL per region, not two (a web ACL costs $5 a
        # month plus $1 a rule at idle). (The DR replica pool is not associated: see docs/security-report.md.)
        self.waf = WebAcl(
            self,
            "Waf",
            acl_scope="REGIONAL",
            rate_limit_per_5min=config.throttling.waf_rate_limit_per_5min,
            key=key,
            log_retention=log_retention(config.log_retention_days),
            # That rule blocks bodies over 8 KB; the API's own limit (max_body_bytes) answers a clear 413, and
            # Cognito's requests are small and bounded by Cognito itself.
            common_rules_count_only=("SizeRestrictions_BODY",),
        )
        self.waf.associate(self.user_pool.user_pool_arn)
        CfnOutput(self, "UserPoolId", value=self.user_pool.user_pool_id)
        CfnOutput(self, "UserPoolClientId", value=self.client.user_pool_client_id)

    def _sign_up_allowlist(self, config: AppConfig, key: kms.IKey) -> PythonFunction:
        """Pre-sign-up trigger: self sign-up only for auth.sign_up_email_domains."""
        return PythonFunction(
            self,
            "SignUpCheck",
            handler="handlers.pre_sign_up.handler",
            service_name="pre-sign-up",
            code=lambda_code(),
            log_key=key,
            log_retention=log_retention(config.log_retention_days),
            # Cognito waits at most 5 s for a trigger; a handful of concurrent sign-ups is plenty and caps abuse.
            reserved_concurrency=5,
            timeout=Duration.seconds(5),
            memory_size=256,
            no_dlq_reason="Invoked synchronously by Cognito during sign-up: a failure is returned to the caller "
            "as a sign-up error, so there is no event to park in a DLQ.",
            environment=sign_up_settings(config).to_env(),
        )


_MFA = {"required": cognito.Mfa.REQUIRED, "optional": cognito.Mfa.OPTIONAL, "off": cognito.Mfa.OFF}


class AuthReplicaStack(Stack):
    """DR region: turns the replica on (replicas start INACTIVE)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: AppConfig,
        user_pool_id: str,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        if config.replicate_user_pool:
            cognito.CfnUserPoolRegionalConfigurationAttachment(
                self, "ReplicaActivation", user_pool_id=user_pool_id, status="ACTIVE"
            )
        CfnOutput(self, "UserPoolId", value=user_pool_id)


def user_pool_arn_in(stack: Stack, *, user_pool_id: str, region: str) -> str:
    """A replica shares the primary's pool id; its ARN differs only by region."""
    return stack.format_arn(
        service="cognito-idp",
        region=region,
        resource="userpool",
        resource_name=user_pool_id,
        arn_format=ArnFormat.SLASH_RESOURCE_NAME,
    )
