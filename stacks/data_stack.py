"""Stateful data: the global tables (replicas in DR). Their AWS Backup plan is the Backup stack's.

Every table and every replica has deletion protection and is retained when its stack is deleted:
a table is dropped only by first turning its protection off in code, a reviewed change.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import ArnFormat, RemovalPolicy, Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_kms as kms
from constructs import Construct

from stacks.config import AppConfig

# The jobs table's recovery index (lambda_src/adapters/jobs.py reads it; a test holds the two together): open jobs
# by owner region and heartbeat. Sparse: a job leaves it when it finishes (its heartbeat is removed). Only keys,
# status and times are projected, never a job's text. Global: each region's replica has it.
OPEN_JOBS_INDEX = "OpenJobsByOwner"
OPEN_JOBS_INDEX_ATTRIBUTES = ["status", "created_at", "enqueued"]


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
        # region can still serve what the primary cached. Derived data: a short recovery window.
        self.response_cache = self._global_table(
            "ResponseCache", key, config, partition="key", ttl="expires_at", recovery_days=7
        )
        # Async jobs (pk = user sub, sk = job id); finished jobs expire by TTL. A region that is lost leaves its
        # open jobs here: the other region finds them in the recovery index and adopts them (issue 10).
        self.jobs = self._global_table(
            "Jobs", key, config, partition="pk", sort="sk", ttl="expires_at", recovery_days=35,
            indexes=[
                dynamodb.GlobalSecondaryIndexPropsV2(
                    index_name=OPEN_JOBS_INDEX,
                    partition_key=dynamodb.Attribute(name="owner_region", type=dynamodb.AttributeType.STRING),
                    sort_key=dynamodb.Attribute(name="heartbeat_at", type=dynamodb.AttributeType.NUMBER),
                    projection_type=dynamodb.ProjectionType.INCLUDE,
                    non_key_attributes=OPEN_JOBS_INDEX_ATTRIBUTES,
                )
            ],
        )  # fmt: skip
        # Powertools idempotency records for the worker (one per job; TTL "expiration").
        self.idempotency = self._global_table("Idempotency", key, config, partition="id", ttl="expiration")
        # Per-user usage counters (pk = user sub, sk = counter and window): request rate now, token
        # budgets later. Global, so a failover does not reset anyone's limits; windows expire by TTL.
        self.usage = self._global_table(
            "Usage", key, config, partition="pk", sort="sk", ttl="expires_at", recovery_days=1
        )
        # Uploaded documents (pk = user sub, sk = document id): name, type, version, ingest status and its
        # reason. Global, so a failover still lists a user's documents; deleted ones expire by TTL.
        self.documents = self._global_table(
            "Documents", key, config, partition="pk", sort="sk", ttl="expires_at", recovery_days=35
        )

        # The prompt catalog (lambda_src/adapters/prompt_catalog.py): system prompt versions and each environment's
        # active one. Data, not derived: a long recovery window, no TTL, backed up like the conversations.
        self.prompts = self._global_table("Prompts", key, config, partition="pk", sort="sk", ttl=None, recovery_days=35)
        # Curated answers (lambda_src/adapters/curated_answers.py): the operators' critical questions answered by
        # the model (pk = question id, sk = prompt version), served when no model can. Data: kept, backed up.
        self.curated = self._global_table(
            "CuratedAnswers", key, config, partition="pk", sort="sk", ttl=None, recovery_days=35
        )

        # Backups: stacks/backup_stack.py (every table, copied to a locked vault in the DR region). The vault
        # this stack had (data key, retained) is left in the account with its last recovery points.

    def _global_table(
        self,
        name: str,
        key: kms.IKey,
        config: AppConfig,
        *,
        partition: str,
        ttl: str | None,
        sort: str | None = None,
        recovery_days: int = 7,
        indexes: list[dynamodb.GlobalSecondaryIndexPropsV2] | None = None,
    ) -> dynamodb.TableV2:
        """A global table (TTL'd unless `ttl` is None) with its DR replica, both deletion-protected, PITR on."""
        recovery = dynamodb.PointInTimeRecoverySpecification(
            point_in_time_recovery_enabled=True, recovery_period_in_days=recovery_days
        )
        return dynamodb.TableV2(
            self,
            name,
            partition_key=dynamodb.Attribute(name=partition, type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name=sort, type=dynamodb.AttributeType.STRING) if sort else None,
            billing=dynamodb.Billing.on_demand(),
            time_to_live_attribute=ttl,
            global_secondary_indexes=indexes,
            encryption=dynamodb.TableEncryptionV2.customer_managed_key(
                key, replica_key_arns={config.dr_region: self.dr_key_arn}
            ),
            point_in_time_recovery_specification=recovery,
            deletion_protection=True,
            removal_policy=RemovalPolicy.RETAIN,
            replicas=[
                dynamodb.ReplicaTableProps(
                    region=config.dr_region, deletion_protection=True, point_in_time_recovery_specification=recovery
                )
            ],
        )
