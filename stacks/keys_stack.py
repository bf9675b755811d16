"""One multi-Region KMS key per deployment: the primary in the primary region, a replica in DR.

Cognito user pool replication needs a multi-Region customer-managed key; the conversations
global table and every log group use the same key family, so both regions decrypt locally.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import Aws, Duration, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

from stacks.config import AppConfig


def _service_statements(region: str) -> list[iam.PolicyStatement]:
    """What CloudWatch Logs and Cognito need to use the key in `region`, scoped to this account."""
    return [
        iam.PolicyStatement(
            sid="CloudWatchLogsUse",
            principals=[iam.ServicePrincipal(f"logs.{region}.amazonaws.com")],
            actions=["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"],
            resources=["*"],
            conditions={
                "ArnLike": {
                    "kms:EncryptionContext:aws:logs:arn": f"arn:{Aws.PARTITION}:logs:{region}:{Aws.ACCOUNT_ID}:*"
                }
            },
        ),
        iam.PolicyStatement(
            sid="CloudWatchAlarmsToEncryptedTopics",
            principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
            actions=["kms:Decrypt", "kms:GenerateDataKey*"],
            resources=["*"],
            conditions={"StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID}},
        ),
        iam.PolicyStatement(
            sid="CognitoUserPoolUse",
            principals=[iam.ServicePrincipal("cognito-idp.amazonaws.com")],
            actions=["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"],
            resources=["*"],
            conditions={"StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID}},
        ),
    ]


class KeysStack(Stack):
    """Primary region: creates the multi-Region key. DR region: replicates it."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: AppConfig,
        primary_key: kms.IKey | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        region = self.region
        if primary_key is None:
            key = kms.Key(
                self,
                "DataKey",
                description=f"{config.prefix} data key (multi-Region primary)",
                multi_region=True,
                enable_key_rotation=True,
                rotation_period=Duration.days(365),
                removal_policy=RemovalPolicy.RETAIN,
            )
            for statement in _service_statements(region):
                key.add_to_resource_policy(statement)
            self.key: kms.IKey = key
        else:
            policy = iam.PolicyDocument(
                statements=[
                    iam.PolicyStatement(
                        sid="AccountAdministers",
                        principals=[iam.AccountRootPrincipal()],
                        actions=["kms:*"],
                        resources=["*"],
                    ),
                    *_service_statements(region),
                ]
            )
            replica = kms.CfnReplicaKey(
                self,
                "DataKeyReplica",
                primary_key_arn=primary_key.key_arn,
                key_policy=policy,
                description=f"{config.prefix} data key (replica of the primary region's key)",
            )
            replica.apply_removal_policy(RemovalPolicy.RETAIN)
            self.key = kms.Key.from_key_arn(self, "DataKeyReplicaRef", replica.attr_arn)
