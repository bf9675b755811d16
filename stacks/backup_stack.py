"""AWS Backup, out of reach of whatever breaks the primary region or its data.

Two stacks:
- `BackupVaultStack` (DR region): the vault that receives the copies, encrypted with a key of its own (not the
  data key), under Vault Lock (governance or compliance mode, `backup.lock`), with an access policy that denies
  deleting recovery points or shortening their lifecycle to everyone; and a restore testing plan that restores
  the latest copy of each table there on a schedule. It references nothing in the primary region, so it can be
  deployed, changed or used for restores while the primary region is down.
- `BackupStack` (primary region): a vault and a plan there (its own key as well), backing up every table and the
  documents bucket (versioned, as S3 backup requires) and copying each backup to the DR vault, named from config
  (deterministic, no cross-region reference), or to `backup.copy_to_vault_arn` in a separate backup account.

A deletion or corruption in the primary data (a bug, a stolen role, a bad deploy) cannot follow into the DR
vault: copies are separate recovery points under another key, and nobody may delete them before their retention
has passed. Continuous backups (PITR) of the tables stay on in the Data stack beside these.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aws_cdk import ArnFormat, Aws, CfnOutput, Duration, RemovalPolicy, Stack
from aws_cdk import aws_backup as backup
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import custom_resources as cr
from cdk_nag import RegexAppliesTo
from constructs import Construct

from stacks.config import AppConfig, dr_vault_name
from stacks.constructs.nag import skip_checkov, suppress, suppress_cdk_provider
from stacks.constructs.python_function import log_retention
from stacks.keys_stack import USE_ACTIONS, _administration, via_service

# Denied to every principal (the root user included) by each vault's access policy.
PROTECT_RECOVERY_POINTS = [
    "backup:DeleteRecoveryPoint",
    "backup:UpdateRecoveryPointLifecycle",
    "backup:DeleteBackupVault",
]
# Also denied in compliance mode, from the first deploy: the policy and the lock then cannot be changed or removed.
FREEZE_VAULT = [
    "backup:PutBackupVaultAccessPolicy",
    "backup:DeleteBackupVaultAccessPolicy",
    "backup:DeleteBackupVaultLockConfiguration",
]
_SERVICE_ROLE_POLICY = "service-role/AWSBackupServiceRolePolicyFor"
_MANAGED_POLICY_REASON = (
    "AWS Backup's service role policies (AWSBackupServiceRolePolicyFor{Backup,S3Backup,Restores,S3Restore}) are the "
    "documented, service-maintained permission sets for backing up and restoring DynamoDB and S3."
)


def _backup_key(stack: Stack, config: AppConfig, *, purpose: str, extra: Sequence[iam.PolicyStatement] = ()) -> kms.Key:
    """A key of the backups' own: administered like the app's keys, used only by AWS Backup in this region."""
    region = stack.region
    use = iam.PolicyStatement(
        sid="UseOnlyThroughAwsBackup",
        principals=[iam.AccountRootPrincipal()],
        actions=USE_ACTIONS,
        resources=["*"],
        conditions={
            "StringEquals": {"kms:CallerAccount": Aws.ACCOUNT_ID, "kms:ViaService": via_service("backup", region)}
        },
    )
    return kms.Key(
        stack,
        "BackupKey",
        description=f"{config.prefix} {purpose} ({region}); used only through AWS Backup",
        enable_key_rotation=True,
        rotation_period=Duration.days(365),
        policy=iam.PolicyDocument(statements=[*_administration(stack, config, (region,)), use, *extra]),
        removal_policy=RemovalPolicy.RETAIN,
    )


def _vault_policy(*, freeze: bool) -> iam.PolicyDocument:
    actions = PROTECT_RECOVERY_POINTS + (FREEZE_VAULT if freeze else [])
    return iam.PolicyDocument(
        statements=[
            iam.PolicyStatement(
                sid="NobodyDeletesRecoveryPoints",
                effect=iam.Effect.DENY,
                principals=[iam.AnyPrincipal()],
                actions=actions,
                resources=["*"],
            )
        ]
    )


class BackupVaultStack(Stack):
    """DR region: the locked vault receiving the copies, and the restore tests run on them."""

    def __init__(self, scope: Construct, construct_id: str, *, config: AppConfig, **kwargs: Any) -> None:
        super().__init__(scope, construct_id, **kwargs)
        settings = config.backup
        lock = settings.lock
        self.key = _backup_key(self, config, purpose="DR backup vault key")
        self.vault = backup.BackupVault(
            self,
            "CopyVault",
            backup_vault_name=dr_vault_name(config.prefix),  # the primary plan names it from config
            encryption_key=self.key,
            access_policy=_vault_policy(freeze=lock.compliance),
            lock_configuration=backup.LockConfiguration(
                min_retention=Duration.days(lock.min_retention_days),
                max_retention=Duration.days(lock.max_retention_days),
                changeable_for=Duration.days(lock.changeable_for_days) if lock.changeable_for_days else None,
            ),
            removal_policy=RemovalPolicy.RETAIN,
        )

        # Restore testing: the latest copy of each table (DynamoDB recovery points in this vault) is restored into
        # a new table here, validated by AWS Backup and deleted; a failed restore shows in AWS Backup's reports.
        plan_name = f"{config.app_name}_{config.env_name}_restore_tests"
        restore_plan = backup.CfnRestoreTestingPlan(
            self,
            "RestoreTesting",
            restore_testing_plan_name=plan_name,
            schedule_expression=settings.restore_test_schedule,
            start_window_hours=24,
            recovery_point_selection=backup.CfnRestoreTestingPlan.RestoreTestingRecoveryPointSelectionProperty(
                algorithm="LATEST_WITHIN_WINDOW",
                include_vaults=[self.vault.backup_vault_arn],
                recovery_point_types=["SNAPSHOT"],
                selection_window_days=min(365, max(1, settings.copy_retention_days)),
            ),
        )
        self.restore_role = iam.Role(
            self,
            "RestoreTestRole",
            assumed_by=iam.ServicePrincipal("backup.amazonaws.com"),
            description="AWS Backup restore testing of the tables' copies in the DR vault",
            managed_policies=[iam.ManagedPolicy.from_aws_managed_policy_name(f"{_SERVICE_ROLE_POLICY}Restores")],
        )
        self.key.grant(self.restore_role, "kms:Decrypt", "kms:DescribeKey", "kms:CreateGrant")
        suppress(self.restore_role, _MANAGED_POLICY_REASON, "AwsSolutions-IAM4", children=True)
        suppress(
            self.restore_role,
            "CDK writes the role's grant on the vault key into one inline policy attached only to this role.",
            "NIST.800.53.R5-IAMNoInlinePolicy",
            "HIPAA.Security-IAMNoInlinePolicy",
            children=True,
        )
        selection = backup.CfnRestoreTestingSelection(
            self,
            "RestoreTables",
            restore_testing_plan_name=plan_name,
            restore_testing_selection_name="tables",
            protected_resource_type="DynamoDB",
            # Every DynamoDB resource with recovery points in this region's plans: the copied tables.
            protected_resource_arns=["*"],
            iam_role_arn=self.restore_role.role_arn,
            validation_window_hours=settings.restore_validation_hours,
        )
        selection.add_resource_dependency(restore_plan)

        CfnOutput(self, "CopyVaultArn", value=self.vault.backup_vault_arn)


class BackupStack(Stack):
    """Primary region: back up every table and the documents bucket, copy each backup out of reach."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: AppConfig,
        tables: Sequence[dynamodb.ITableV2],
        buckets: Sequence[s3.IBucket],
        data_key: kms.IKey,
        logs_key: kms.IKey,
        **kwargs: Any,
    ) -> None:
        """`tables`, `buckets`: what to back up (the Data stack's tables, the primary documents bucket);
        `data_key`: their encryption key, which AWS Backup reads them with; `logs_key`: this region's log groups."""
        super().__init__(scope, construct_id, **kwargs)
        settings = config.backup
        copy_account = settings.copy_account
        # A separate backup account reads the copies with this key: it needs use of it through AWS Backup.
        shared = (
            [
                iam.PolicyStatement(
                    sid="BackupAccountCopies",
                    principals=[iam.AccountPrincipal(copy_account)],
                    actions=["kms:Decrypt", "kms:DescribeKey", "kms:CreateGrant"],
                    resources=["*"],
                    conditions={"StringEquals": {"kms:CallerAccount": copy_account}},
                )
            ]
            if copy_account
            else []
        )
        self.key = _backup_key(self, config, purpose="backup vault key", extra=shared)
        self.vault = backup.BackupVault(
            self,
            "Vault",
            encryption_key=self.key,
            access_policy=_vault_policy(freeze=settings.lock.compliance),
            removal_policy=RemovalPolicy.RETAIN,
        )
        self.copy_vault_arn = settings.copy_to_vault_arn or self.format_arn(
            service="backup",
            region=config.dr_region,
            resource="backup-vault",
            resource_name=dr_vault_name(config.prefix),
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )
        plan = backup.BackupPlan(self, "Plan", backup_vault=self.vault)
        plan.add_rule(
            backup.BackupPlanRule(
                rule_name="ScheduledWithCopy",
                schedule_expression=events.Schedule.expression(settings.schedule),
                start_window=Duration.hours(1),
                completion_window=Duration.hours(8),
                delete_after=Duration.days(settings.retention_days),
                copy_actions=[
                    backup.BackupPlanCopyActionProps(
                        destination_backup_vault=backup.BackupVault.from_backup_vault_arn(
                            self, "CopyVault", self.copy_vault_arn
                        ),
                        delete_after=Duration.days(settings.copy_retention_days),
                    )
                ],
            )
        )
        self.role = self._service_role(config, data_key=data_key)
        plan.add_selection(
            "Data",
            resources=[
                *(backup.BackupResource.from_arn(table.table_arn) for table in tables),
                *(backup.BackupResource.from_arn(bucket.bucket_arn) for bucket in buckets),
            ],
            role=self.role,
        )
        if settings.enable_advanced_dynamodb_backup:
            self._advanced_dynamodb_backup(config, logs_key=logs_key)

        CfnOutput(self, "VaultArn", value=self.vault.backup_vault_arn)
        CfnOutput(self, "CopyVaultArn", value=self.copy_vault_arn)

    def _service_role(self, config: AppConfig, *, data_key: kms.IKey) -> iam.Role:
        """The role AWS Backup backs up (and copies) with: the service policies, the data key to read the tables
        and documents, and the vault keys here and in the DR region to write and copy recovery points."""
        role = iam.Role(
            self,
            "BackupRole",
            assumed_by=iam.ServicePrincipal("backup.amazonaws.com"),
            description="AWS Backup: back up the tables and the documents bucket, copy to the DR vault",
            managed_policies=[
                iam.ManagedPolicy.from_aws_managed_policy_name(f"{_SERVICE_ROLE_POLICY}{kind}")
                for kind in ("Backup", "S3Backup", "Restores", "S3Restore")
            ],
        )
        region = self.region
        role.add_to_policy(
            iam.PolicyStatement(
                sid="ReadEncryptedData",
                actions=["kms:Decrypt", "kms:DescribeKey", "kms:GenerateDataKey", "kms:CreateGrant"],
                resources=[data_key.key_arn],
                conditions={
                    "StringEquals": {"kms:ViaService": [via_service(s, region) for s in ("dynamodb", "s3", "backup")]}
                },
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="WriteRecoveryPoints",
                actions=["kms:Decrypt", "kms:DescribeKey", "kms:GenerateDataKey", "kms:CreateGrant"],
                resources=[self.key.key_arn],
                conditions={"StringEquals": {"kms:ViaService": via_service("backup", region)}},
            )
        )
        if config.backup.copy_to_vault_arn is None:
            # The DR vault's key: known by region and use only (it lives in a DR stack this one must not read).
            role.add_to_policy(
                iam.PolicyStatement(
                    sid="CopyIntoTheDrVault",
                    actions=["kms:Encrypt", "kms:GenerateDataKey", "kms:DescribeKey", "kms:CreateGrant"],
                    resources=[
                        self.format_arn(service="kms", region=config.dr_region, resource="key", resource_name="*")
                    ],
                    conditions={"StringEquals": {"kms:ViaService": via_service("backup", config.dr_region)}},
                )
            )
            suppress(
                role,
                "The DR vault's key is created in the DR region's own stack; naming its ARN here would be a "
                "cross-region reference from DR to the primary (static stability). The statement is limited to "
                "keys in the DR region used through AWS Backup there.",
                "AwsSolutions-IAM5",
                applies_to=[
                    RegexAppliesTo(regex=rf"/^Resource::arn:[^:]+:kms:{config.dr_region}:<AWS::AccountId>:key\/\*$/g")
                ],
                children=True,
            )
        suppress(role, _MANAGED_POLICY_REASON, "AwsSolutions-IAM4", children=True)
        suppress(
            role,
            "CDK writes the role's key statements into one inline policy attached only to this role.",
            "NIST.800.53.R5-IAMNoInlinePolicy",
            "HIPAA.Security-IAMNoInlinePolicy",
            children=True,
        )
        return role

    def _advanced_dynamodb_backup(self, config: AppConfig, *, logs_key: kms.IKey) -> None:
        """Cross-region copies of DynamoDB backups need AWS Backup's advanced DynamoDB features, an account and
        region setting with no CloudFormation resource. Turned on at create/update, never off (on delete it is
        left alone: other workloads of the account may rely on it)."""
        call = cr.AwsSdkCall(
            service="Backup",
            action="updateRegionSettings",
            parameters={"ResourceTypeManagementPreference": {"DynamoDB": True}},
            physical_resource_id=cr.PhysicalResourceId.of(f"{self.stack_name}-advanced-dynamodb-backup"),
        )
        setting = cr.AwsCustomResource(
            self,
            "AdvancedDynamoDbBackup",
            on_create=call,
            on_update=call,
            policy=cr.AwsCustomResourcePolicy.from_statements(
                [iam.PolicyStatement(actions=["backup:UpdateRegionSettings"], resources=["*"])]
            ),
            install_latest_aws_sdk=False,
            log_group=logs.LogGroup(
                self,
                "AdvancedDynamoDbBackupLogs",
                encryption_key=logs_key,
                retention=log_retention(config.log_retention_days),
                removal_policy=RemovalPolicy.RETAIN,
            ),
        )
        suppress(
            setting,
            "backup:UpdateRegionSettings acts on the account's settings in this region and has no resource to "
            "scope it to (the service authorization reference lists no resource type for it).",
            "AwsSolutions-IAM5",
            "NIST.800.53.R5-IAMNoInlinePolicy",
            "HIPAA.Security-IAMNoInlinePolicy",
            children=True,
        )
        provider_id = "AWS679f53fac002430cb0da5b7982bd2287"
        suppress_cdk_provider(
            self, f"/{self.stack_name}/{provider_id}", "AwsCustomResource provider (AWS Backup setting)"
        )
        provider = self.node.find_child(provider_id)
        for check, reason in {
            "CKV_AWS_115": "CDK's AwsCustomResource provider runs only when CloudFormation deploys this stack, one "
            "invocation per change; a reserved-concurrency limit would only make deploys fail.",
            "CKV_AWS_116": "CDK's AwsCustomResource provider is invoked synchronously by CloudFormation, which "
            "reports a failure and rolls back; a DLQ only receives asynchronous invocations.",
            "CKV_AWS_117": "CDK's AwsCustomResource provider calls the public AWS Backup API with an IAM role limited "
            "to one action; it reaches no private resource, so a VPC would add NAT or endpoint cost only.",
        }.items():
            skip_checkov(provider, reason, check)
