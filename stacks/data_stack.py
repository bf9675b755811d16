"""Stateful data: the conversations global table (replica in DR) and its backup plan."""

from __future__ import annotations

from typing import Any

from aws_cdk import ArnFormat, Duration, RemovalPolicy, Stack
from aws_cdk import aws_backup as backup
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_kms as kms
from constructs import Construct

from stacks.config import AppConfig
from stacks.constructs.nag import suppress


class DataStack(Stack):
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
        # A multi-Region replica shares the primary's key id; only the region differs.
        self.dr_key_arn = self.format_arn(
            service="kms",
            region=config.dr_region,
            resource="key",
            resource_name=key.key_id,
            arn_format=ArnFormat.SLASH_RESOURCE_NAME,
        )

        # Items: (pk=user sub, sk="C#<conversation id>") header, (sk="T#<id>#<turn>") turns.
        self.conversations = dynamodb.TableV2(
            self,
            "Conversations",
            partition_key=dynamodb.Attribute(name="pk", type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name="sk", type=dynamodb.AttributeType.STRING),
            billing=dynamodb.Billing.on_demand(),
            encryption=dynamodb.TableEncryptionV2.customer_managed_key(
                key, replica_key_arns={config.dr_region: self.dr_key_arn}
            ),
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True, recovery_period_in_days=35
            ),
            deletion_protection=True,
            removal_policy=RemovalPolicy.RETAIN,
            replicas=[
                dynamodb.ReplicaTableProps(
                    region=config.dr_region,
                    deletion_protection=True,
                    point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                        point_in_time_recovery_enabled=True, recovery_period_in_days=35
                    ),
                )
            ],
        )

        # Exact-match answers for the degraded path (scoped keys, TTL). Global so a failover
        # region can still serve what the primary cached.
        self.response_cache = dynamodb.TableV2(
            self,
            "ResponseCache",
            partition_key=dynamodb.Attribute(name="key", type=dynamodb.AttributeType.STRING),
            billing=dynamodb.Billing.on_demand(),
            time_to_live_attribute="expires_at",
            encryption=dynamodb.TableEncryptionV2.customer_managed_key(
                key, replica_key_arns={config.dr_region: self.dr_key_arn}
            ),
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True, recovery_period_in_days=7
            ),
            removal_policy=RemovalPolicy.DESTROY,  # derived data: rebuilt by normal traffic
            replicas=[dynamodb.ReplicaTableProps(region=config.dr_region)],
        )

        # Async jobs (pk = user sub, sk = job id); finished jobs expire by TTL.
        self.jobs = self._global_table("Jobs", key, config, partition="pk", sort="sk", ttl="expires_at", retain=True)
        # Powertools idempotency records for the worker (one per job; TTL "expiration").
        self.idempotency = self._global_table("Idempotency", key, config, partition="id", ttl="expiration")

        # Daily backups kept 35 days, in a vault encrypted with the data key. Cross-region copy
        # into a locked vault belongs to the disaster-recovery work.
        vault = backup.BackupVault(
            self,
            "Vault",
            encryption_key=key,
            removal_policy=RemovalPolicy.RETAIN,
        )
        plan = backup.BackupPlan(self, "Plan", backup_vault=vault)
        plan.add_rule(
            backup.BackupPlanRule(
                rule_name="Daily",
                schedule_expression=events.Schedule.cron(hour="5", minute="0"),
                delete_after=Duration.days(35),
            )
        )
        selection = plan.add_selection(
            "Tables",
            resources=[
                backup.BackupResource.from_dynamo_db_table(self.conversations),
                backup.BackupResource.from_dynamo_db_table(self.jobs),
            ],
        )
        suppress(
            selection,
            "AWS Backup's service role policy AWSBackupServiceRolePolicyForBackup is the documented, "
            "service-maintained permission set for taking backups.",
            "AwsSolutions-IAM4",
            applies_to=[
                "Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSBackupServiceRolePolicyForBackup"
            ],
            children=True,
        )

    def _global_table(
        self,
        name: str,
        key: kms.IKey,
        config: AppConfig,
        *,
        partition: str,
        ttl: str,
        sort: str | None = None,
        retain: bool = False,
    ) -> dynamodb.TableV2:
        return dynamodb.TableV2(
            self,
            name,
            partition_key=dynamodb.Attribute(name=partition, type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name=sort, type=dynamodb.AttributeType.STRING) if sort else None,
            billing=dynamodb.Billing.on_demand(),
            time_to_live_attribute=ttl,
            encryption=dynamodb.TableEncryptionV2.customer_managed_key(
                key, replica_key_arns={config.dr_region: self.dr_key_arn}
            ),
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True, recovery_period_in_days=35 if retain else 7
            ),
            deletion_protection=retain,
            removal_policy=RemovalPolicy.RETAIN if retain else RemovalPolicy.DESTROY,
            replicas=[dynamodb.ReplicaTableProps(region=config.dr_region, deletion_protection=retain)],
        )
