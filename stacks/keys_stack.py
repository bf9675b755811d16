"""The deployment's KMS keys: a multi-Region data key (primary region, replica in DR) and a logs key per region.

Data key: the global tables (and their backups), the jobs queues and Cognito (whose user pool replication
needs a multi-Region key, so both regions decrypt locally). Logs key: every log group and the alarm topic;
logs are regional, so each region has its own single-Region key.

Who may do what, in each key's policy:
- administrators (the CDK deployment role, which CloudFormation uses to update the key, plus
  `keys.admin_role_arns`) manage the key (policy, rotation, deletion, tags) but cannot encrypt or decrypt;
- the data key is used only through DynamoDB, SQS, SNS, AWS Backup, Cognito, S3 and S3 Vectors in its region:
  the account's IAM policies may grant use (the Lambda roles' statements carry kms:ViaService too), never direct
  calls; S3 Vectors' indexing service decrypts for this account's vector buckets;
- the logs key only by CloudWatch Logs (for this account's log groups) and CloudWatch alarms;
- break-glass: the account's root user (and only it, not every IAM principal of the account) keeps full
  control, so deleting the admin roles can never leave a key unmanageable. Guard it with MFA and alarm on
  its use.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import Aws, DefaultStackSynthesizer, Duration, Fn, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

from stacks.config import AppConfig

# Manage, never use: no Encrypt/Decrypt/GenerateDataKey/ReEncrypt, and no CreateGrant (a grant is use).
ADMIN_ACTIONS = [
    "kms:CancelKeyDeletion", "kms:CreateAlias", "kms:DeleteAlias", "kms:Describe*", "kms:Disable*", "kms:Enable*",
    "kms:Get*", "kms:List*", "kms:PutKeyPolicy", "kms:ReplicateKey", "kms:RetireGrant", "kms:RevokeGrant",
    "kms:RotateKeyOnDemand", "kms:ScheduleKeyDeletion", "kms:TagResource", "kms:UntagResource", "kms:Update*",
]  # fmt: skip
USE_ACTIONS = [
    "kms:Decrypt",
    "kms:Encrypt",
    "kms:ReEncrypt*",
    "kms:GenerateDataKey*",
    "kms:CreateGrant",
    "kms:DescribeKey",
]
# The services through which the data key may be used in a region (kms:ViaService).
# s3: the documents bucket (SSE-KMS); s3vectors: the vector bucket (SSE-KMS).
DATA_SERVICES = ("dynamodb", "sqs", "sns", "backup", "cognito-idp", "s3", "s3vectors")


def via_service(service: str, region: str) -> str:
    return f"{service}.{region}.amazonaws.com"


def _administration(stack: Stack, config: AppConfig, regions: tuple[str, ...]) -> list[iam.PolicyStatement]:
    """`regions`: whose CloudFormation deployment roles administer the key (the data key's replica is
    created by the DR region's role, which must be allowed to replicate the primary)."""
    admins: list[iam.IPrincipal] = [iam.ArnPrincipal(arn) for arn in config.keys.admin_role_arns]
    synthesizer = stack.synthesizer
    if isinstance(synthesizer, DefaultStackSynthesizer):
        # CloudFormation updates the key (policy, rotation) with this role: without it a deploy could not.
        role = synthesizer.cloud_formation_execution_role_arn  # its region is this stack's, already filled in
        roles = [role]
        for suffix in ("${AWS::Region}", stack.region):
            if role.endswith(suffix):  # the default role name ends with its region: one per region
                roles = [role[: -len(suffix)] + region for region in regions]
                break
        admins[:0] = [iam.ArnPrincipal(Fn.sub(arn)) for arn in dict.fromkeys(roles)]
    elif not admins:
        raise ValueError(
            "keys.admin_role_arns must name the role CloudFormation deploys with: this app does not use CDK's "
            "default synthesizer, so that role is not known"
        )
    return [
        iam.PolicyStatement(sid="KeyAdministration", principals=admins, actions=ADMIN_ACTIONS, resources=["*"]),
        iam.PolicyStatement(
            sid="BreakGlassRootUserOnly",
            principals=[iam.AccountRootPrincipal()],
            actions=["kms:*"],
            resources=["*"],
            conditions={"StringEquals": {"aws:PrincipalType": "Account"}},
        ),
    ]


def _data_use(region: str) -> list[iam.PolicyStatement]:
    return [
        iam.PolicyStatement(
            sid="UseOnlyThroughAwsServices",
            principals=[iam.AccountRootPrincipal()],
            actions=USE_ACTIONS,
            resources=["*"],
            conditions={
                "StringEquals": {
                    "kms:CallerAccount": Aws.ACCOUNT_ID,
                    "kms:ViaService": [via_service(service, region) for service in DATA_SERVICES],
                }
            },
        ),
        iam.PolicyStatement(
            sid="CognitoUserPoolUse",
            principals=[iam.ServicePrincipal("cognito-idp.amazonaws.com")],
            actions=["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"],
            resources=["*"],
            conditions={"StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID}},
        ),
        # S3 Vectors maintains the vector bucket's indexes in the background with its own service principal,
        # which must decrypt with the bucket's key: only for this account's vector buckets in this region.
        iam.PolicyStatement(
            sid="S3VectorsIndexing",
            principals=[iam.ServicePrincipal("indexing.s3vectors.amazonaws.com")],
            actions=["kms:Decrypt"],
            resources=["*"],
            conditions={
                "StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID},
                "ArnLike": {"aws:SourceArn": f"arn:{Aws.PARTITION}:s3vectors:{region}:{Aws.ACCOUNT_ID}:bucket/*"},
                "ForAnyValue:StringEquals": {
                    "kms:EncryptionContextKeys": ["aws:s3vectors:arn", "aws:s3vectors:resource-id"]
                },
            },
        ),
        # Log groups were encrypted with this key before the logs key existed: CloudWatch Logs keeps reading
        # those events with it (decrypt only). Remove once log_retention_days have passed since the switch.
        iam.PolicyStatement(
            sid="CloudWatchLogsReadsEventsFromBeforeTheLogsKey",
            principals=[iam.ServicePrincipal(f"logs.{region}.amazonaws.com")],
            actions=["kms:Decrypt*", "kms:Describe*"],
            resources=["*"],
            conditions={"ArnLike": {"kms:EncryptionContext:aws:logs:arn": _log_groups(region)}},
        ),
    ]


def _logs_use(region: str) -> list[iam.PolicyStatement]:
    return [
        iam.PolicyStatement(
            sid="CloudWatchLogsUse",
            principals=[iam.ServicePrincipal(f"logs.{region}.amazonaws.com")],
            actions=["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"],
            resources=["*"],
            conditions={"ArnLike": {"kms:EncryptionContext:aws:logs:arn": _log_groups(region)}},
        ),
        iam.PolicyStatement(
            sid="CloudWatchAlarmsToEncryptedTopics",
            principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
            actions=["kms:Decrypt", "kms:GenerateDataKey*"],
            resources=["*"],
            conditions={"StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID}},
        ),
        # The account's AWS Budgets alerts publish to the (encrypted) alarm topic (stacks/constructs/budget.py).
        iam.PolicyStatement(
            sid="BudgetsToEncryptedTopics",
            principals=[iam.ServicePrincipal("budgets.amazonaws.com")],
            actions=["kms:Decrypt", "kms:GenerateDataKey*"],
            resources=["*"],
            conditions={"StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID}},
        ),
    ]


def _log_groups(region: str) -> str:
    return f"arn:{Aws.PARTITION}:logs:{region}:{Aws.ACCOUNT_ID}:*"


class KeysStack(Stack):
    """Primary region: creates the multi-Region data key. DR region: replicates it. Both: a logs key."""

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
        data_policy = iam.PolicyDocument(
            statements=[*_administration(self, config, config.regions), *_data_use(region)]
        )
        if primary_key is None:
            # With a policy given, it is the whole key policy (no default root kms:* statement is added).
            key = kms.Key(
                self,
                "DataKey",
                description=f"{config.prefix} data key (multi-Region primary)",
                multi_region=True,
                enable_key_rotation=True,
                rotation_period=Duration.days(365),
                policy=data_policy,
                removal_policy=RemovalPolicy.RETAIN,
            )
            self.key: kms.IKey = key
        else:
            replica = kms.CfnReplicaKey(
                self,
                "DataKeyReplica",
                primary_key_arn=primary_key.key_arn,
                key_policy=data_policy,
                description=f"{config.prefix} data key (replica of the primary region's key)",
            )
            replica.apply_removal_policy(RemovalPolicy.RETAIN)
            self.key = kms.Key.from_key_arn(self, "DataKeyReplicaRef", replica.attr_arn)
        self.logs_key: kms.IKey = kms.Key(
            self,
            "LogsKey",
            description=f"{config.prefix} logs and alarm notifications key ({region})",
            enable_key_rotation=True,
            rotation_period=Duration.days(365),
            policy=iam.PolicyDocument(statements=[*_administration(self, config, (region,)), *_logs_use(region)]),
            removal_policy=RemovalPolicy.RETAIN,
        )
