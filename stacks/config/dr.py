"""The disaster-recovery sections of the config: AWS Backup (plans, the locked DR vault) and the optional
failover domain (Route 53 failover records in front of both regional APIs)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from stacks.config.models import REGION_PATTERN
from stacks.config.parsing import ConfigError, _check_range

_SCHEDULE = re.compile(r"^cron\(.+\)$")  # AWS Backup plans and restore testing take cron only
_VAULT_ARN = re.compile(r"^arn:aws[a-z-]*:backup:([a-z0-9-]+):(\d{12}):backup-vault:[A-Za-z0-9_-]{2,50}$")
_CERTIFICATE_ARN = re.compile(r"^arn:aws[a-z-]*:acm:([a-z0-9-]+):\d{12}:certificate/[0-9a-f-]{36}$")
_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
_ZONE_ID = re.compile(r"^Z[A-Z0-9]{1,31}$")


@dataclass(frozen=True, kw_only=True)
class BackupLockConfig:
    """AWS Backup Vault Lock on the DR vault that receives the copies.

    The lock makes the vault refuse to delete a recovery point before `min_retention_days`, or to keep one
    past `max_retention_days` (every copy's retention must lie in between, checked here).

    `changeable_for_days`: None (the default) is *governance mode*: the lock holds, but a principal allowed
    backup:DeleteBackupVaultLockConfiguration can remove it, and the vault's access policy stays editable,
    so a dev deployment can be taken down. A number (3 or more) is *compliance mode*: after that many days
    the lock can never be changed or removed, by anyone, the root user and AWS included, until every
    recovery point has aged past its retention; from the first deploy the vault's access policy also
    denies changing or deleting itself (and the lock) to everyone. Use it for production only, knowing that
    the vault and its copies then outlive any mistake, this app and its stacks.
    """

    min_retention_days: int = 7
    max_retention_days: int = 365
    changeable_for_days: int | None = None

    def __post_init__(self) -> None:
        _check_range("backup.lock.min_retention_days", self.min_retention_days, 1, 36_500)
        _check_range("backup.lock.max_retention_days", self.max_retention_days, 1, 36_500)
        if self.min_retention_days > self.max_retention_days:
            raise ConfigError(
                f"backup.lock.min_retention_days ({self.min_retention_days}) must not exceed "
                f"backup.lock.max_retention_days ({self.max_retention_days})"
            )
        if self.changeable_for_days is not None:
            _check_range("backup.lock.changeable_for_days", self.changeable_for_days, 3, 36_500)

    @property
    def compliance(self) -> bool:
        return self.changeable_for_days is not None


@dataclass(frozen=True, kw_only=True)
class BackupConfig:
    """AWS Backup of every table and the documents bucket, copied out of the primary region's reach.

    The primary region's plan backs up into a vault there (its own KMS key) on `schedule`, keeps the backups
    `retention_days`, and copies each into the DR region's locked vault (its own key, a deterministic name)
    kept `copy_retention_days`. With `copy_to_vault_arn` the copies go to that vault instead (a separate
    backup account): that account needs the vault, a vault access policy allowing backup:CopyIntoBackupVault
    from this account, and the organization's cross-account backup setting on; this app grants that account
    use of the primary backup key for the copy. Continuous backups (PITR) of the tables stay on regardless.
    """

    enabled: bool = True
    schedule: str = "cron(0 5 * * ? *)"  # a cron expression (EventBridge syntax), UTC
    retention_days: int = 35
    copy_retention_days: int = 35
    lock: BackupLockConfig = field(default_factory=BackupLockConfig)
    copy_to_vault_arn: str | None = None
    # Cross-region (and cross-account) copies of DynamoDB backups need AWS Backup's advanced DynamoDB backup,
    # an account-and-region setting with no CloudFormation resource: a custom resource turns it on (never off).
    # Set false where the organization manages that setting itself.
    enable_advanced_dynamodb_backup: bool = True
    # Restore testing in the DR region: the latest copy of each table is restored there on this schedule,
    # checked by AWS Backup, and deleted after `restore_validation_hours`.
    restore_test_schedule: str = "cron(0 7 ? * SUN *)"
    restore_validation_hours: int = 1

    def __post_init__(self) -> None:
        for key in ("schedule", "restore_test_schedule"):
            if not _SCHEDULE.match(getattr(self, key)):
                raise ConfigError(f"backup.{key} must be a cron(...) expression (UTC), got {getattr(self, key)!r}")
        _check_range("backup.retention_days", self.retention_days, 1, 36_500)
        _check_range("backup.copy_retention_days", self.copy_retention_days, 1, 36_500)
        _check_range("backup.restore_validation_hours", self.restore_validation_hours, 0, 168)
        if self.copy_to_vault_arn is not None and not _VAULT_ARN.match(self.copy_to_vault_arn):
            raise ConfigError(
                "backup.copy_to_vault_arn must be a backup vault ARN "
                f"(arn:aws:backup:<region>:<account>:backup-vault:<name>), got {self.copy_to_vault_arn!r}"
            )
        lock = self.lock
        if self.copy_to_vault_arn is None and not (
            lock.min_retention_days <= self.copy_retention_days <= lock.max_retention_days
        ):
            raise ConfigError(
                f"backup.copy_retention_days ({self.copy_retention_days}) must lie within the DR vault's lock, "
                f"backup.lock.min_retention_days ({lock.min_retention_days}) to backup.lock.max_retention_days "
                f"({lock.max_retention_days}), or AWS Backup refuses every copy"
            )

    @property
    def copy_account(self) -> str | None:
        """The account of `copy_to_vault_arn` (a separate backup account), if set."""
        found = _VAULT_ARN.match(self.copy_to_vault_arn or "")
        return found.group(2) if found else None


def dr_vault_name(prefix: str) -> str:
    """The DR vault's name, deterministic, so the primary plan names it without a cross-region reference."""
    return f"{prefix}-dr-copies"


@dataclass(frozen=True, kw_only=True)
class FailoverDomainConfig:
    """Route 53 failover in front of both regional APIs: one name (e.g. api.example.com) served by a regional
    custom domain in each region, each region's /health/deep watched by a Route 53 health check, and
    PRIMARY/SECONDARY failover alias records in the hosted zone. Clients then use one URL; without this
    section they use both regional URLs (the web client, tools/failover_client.py).

    `certificate_arns`: an ACM certificate for `domain_name` per region ({"us-east-1": "arn:..."}); a region
    without one gets a certificate created and validated through the hosted zone (DNS)."""

    domain_name: str
    hosted_zone_id: str
    hosted_zone_name: str | None = None  # the zone's own name; default: domain_name without its first label
    certificate_arns: dict[str, str] = field(default_factory=dict)
    # 10 s ("fast", about $1/month more per check) x 3 failures: a region is found down in about 30 s, so DNS
    # failover fits the 60 s chat RTO with the records' 60 s TTL only for resolvers that honour it early;
    # 30 s x 3 (90 s) would miss it by itself. Clients that know both endpoints (web UI, failover client) move
    # on their first failed request.
    health_check_interval_s: int = 10  # 10 or 30 (Route 53's fast or standard interval)
    failure_threshold: int = 3  # failed checks before a region is unhealthy

    def __post_init__(self) -> None:
        if not _DOMAIN.match(self.domain_name):
            raise ConfigError(
                f"failover_domain.domain_name must be a lower-case domain name such as api.example.com, "
                f"got {self.domain_name!r}"
            )
        if not _ZONE_ID.match(self.hosted_zone_id):
            raise ConfigError(
                f"failover_domain.hosted_zone_id must be a Route 53 hosted zone id (Z...), got {self.hosted_zone_id!r}"
            )
        zone = self.zone_name
        if not _DOMAIN.match(zone) or not (self.domain_name == zone or self.domain_name.endswith("." + zone)):
            raise ConfigError(
                f"failover_domain.hosted_zone_name ({zone!r}) must be a domain that contains "
                f"failover_domain.domain_name ({self.domain_name})"
            )
        for region, arn in self.certificate_arns.items():
            found = _CERTIFICATE_ARN.match(arn) if isinstance(arn, str) else None
            if not REGION_PATTERN.match(region) or not found or found.group(1) != region:
                raise ConfigError(
                    f"failover_domain.certificate_arns must map a region to an ACM certificate ARN in that "
                    f"region, got {region!r}: {arn!r}"
                )
        if self.health_check_interval_s not in (10, 30):
            raise ConfigError(
                f"failover_domain.health_check_interval_s must be 10 or 30, got {self.health_check_interval_s}"
            )
        _check_range("failover_domain.failure_threshold", self.failure_threshold, 1, 10)

    @property
    def zone_name(self) -> str:
        return self.hosted_zone_name or self.domain_name.split(".", 1)[-1]
