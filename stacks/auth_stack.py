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
        self.user_pool = cognito.UserPool(
            self,
            "Users",
            feature_plan=cognito.FeaturePlan.ESSENTIALS,  # multi-Region replication needs Essentials+
            self_sign_up_enabled=True,
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
            mfa=cognito.Mfa.OPTIONAL,
            mfa_second_factor=cognito.MfaSecondFactor(otp=True, sms=False),
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
        suppress(
            self.user_pool,
            "MFA (TOTP) is offered to every user and can be made REQUIRED per deployment; it is optional "
            "here so the reference app can be tried without an authenticator app.",
            "AwsSolutions-COG2",
        )
        suppress(
            self.user_pool,
            "Threat protection (advanced security ENFORCED) needs the Plus feature plan; this deployment "
            "uses Essentials, the cheapest plan that supports multi-Region replication.",
            "AwsSolutions-COG3",
            "AwsSolutions-COG8",
        )
        self.client = self.user_pool.add_client(
            "WebClient",
            # SRP for SDK clients; password auth (over TLS) for the dependency-free web client.
            auth_flows=cognito.AuthFlow(user_srp=True, user_password=True),
            generate_secret=False,  # a browser app cannot keep a secret
            prevent_user_existence_errors=True,
            access_token_validity=Duration.hours(1),
            id_token_validity=Duration.hours(1),
            refresh_token_validity=Duration.days(30),
            enable_token_revocation=True,
        )
        CfnOutput(self, "UserPoolId", value=self.user_pool.user_pool_id)
        CfnOutput(self, "UserPoolClientId", value=self.client.user_pool_client_id)


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
