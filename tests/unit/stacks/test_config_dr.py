"""The disaster-recovery config: DR capacity, the backup section, the optional failover domain."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from stacks.config import AppConfig, ConfigError, dr_vault_name

ROOT = Path(__file__).resolve().parents[3]
BASE = json.loads((ROOT / "cdk.json").read_text())["context"]["bulwark"]
CERT = "arn:aws:acm:{region}:123456789012:certificate/12345678-1234-1234-1234-123456789012"


def with_(**changes: Any) -> dict[str, Any]:
    raw = copy.deepcopy(BASE)
    raw.update(changes)
    return raw


def test_dr_capacity_is_the_primarys_by_default() -> None:
    assert "dr_chat_reserved_concurrency" not in BASE  # the shipped cdk.json sets no smaller DR figure
    config = AppConfig.from_context(with_(chat_reserved_concurrency=40))

    assert config.reserved_concurrency("us-east-1") == 40
    assert config.reserved_concurrency("us-west-2") == 40
    assert AppConfig.from_context(with_(dr_chat_reserved_concurrency=None)).reserved_concurrency("us-west-2") == 20


def test_a_smaller_dr_capacity_is_an_explicit_choice() -> None:
    config = AppConfig.from_context(with_(dr_chat_reserved_concurrency=5))

    assert (config.reserved_concurrency("us-east-1"), config.reserved_concurrency("us-west-2")) == (20, 5)


def test_the_shipped_backup_section_is_governance_mode() -> None:
    backup = AppConfig.from_context(BASE).backup

    assert backup.enabled and backup.copy_to_vault_arn is None
    assert backup.lock.changeable_for_days is None and not backup.lock.compliance  # a dev deploy is never locked
    assert backup.lock.min_retention_days <= backup.copy_retention_days <= backup.lock.max_retention_days
    assert dr_vault_name("Bulwark-dev") == "Bulwark-dev-dr-copies"


def test_compliance_mode_and_a_separate_backup_account_parse() -> None:
    arn = "arn:aws:backup:eu-west-1:210987654321:backup-vault:central-copies"
    backup = AppConfig.from_context(
        with_(backup={"lock": {"changeable_for_days": 3}, "copy_to_vault_arn": arn, "copy_retention_days": 1000})
    ).backup

    assert backup.lock.compliance and backup.copy_account == "210987654321"


@pytest.mark.parametrize(
    ("backup", "message"),
    [
        ({"schedule": "daily"}, "backup.schedule must be a cron"),
        ({"schedule": "rate(12 hours)"}, "backup.schedule must be a cron"),
        ({"retention_days": 0}, "backup.retention_days must be between 1"),
        ({"copy_retention_days": 400}, "must lie within the DR vault's lock"),
        ({"copy_retention_days": 3}, "must lie within the DR vault's lock"),
        ({"lock": {"min_retention_days": 50, "max_retention_days": 10}}, r"min_retention_days \(50\) must not exceed"),
        ({"lock": {"changeable_for_days": 1}}, "backup.lock.changeable_for_days must be between 3"),
        ({"copy_to_vault_arn": "arn:aws:s3:::bucket"}, "backup.copy_to_vault_arn must be a backup vault ARN"),
        ({"restore_validation_hours": 200}, "backup.restore_validation_hours must be between 0 and 168"),
        ({"vault": "x"}, "unknown keys in backup: vault"),
    ],
)
def test_bad_backup_settings_name_their_key(backup: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        AppConfig.from_context(with_(backup=backup))


def test_no_failover_domain_by_default_and_one_parses_when_given() -> None:
    assert AppConfig.from_context(BASE).failover_domain is None
    domain = AppConfig.from_context(
        with_(
            failover_domain={
                "domain_name": "api.example.com",
                "hosted_zone_id": "Z0123456789ABCDEFGHIJ",
                "certificate_arns": {"us-west-2": CERT.format(region="us-west-2")},
            }
        )
    ).failover_domain

    assert domain is not None and domain.zone_name == "example.com"
    assert domain.health_check_interval_s == 10 and domain.failure_threshold == 3


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"hosted_zone_id": "Z0123"}, "failover_domain.domain_name is required"),
        ({"domain_name": "API.example.com", "hosted_zone_id": "Z0123"}, "domain_name must be a lower-case"),
        ({"domain_name": "api.example.com", "hosted_zone_id": "zone"}, "hosted_zone_id must be a Route 53"),
        (
            {"domain_name": "api.example.com", "hosted_zone_id": "Z0123", "hosted_zone_name": "other.org"},
            "must be a domain that contains",
        ),
        (
            {
                "domain_name": "api.example.com",
                "hosted_zone_id": "Z0123",
                "certificate_arns": {"us-east-1": CERT.format(region="us-west-2")},
            },
            "an ACM certificate ARN in that region",
        ),
        (
            {
                "domain_name": "api.example.com",
                "hosted_zone_id": "Z0123",
                "certificate_arns": {"eu-west-1": CERT.format(region="eu-west-1")},
            },
            "names eu-west-1, not one of this app's regions",
        ),
        ({"domain_name": "api.example.com", "hosted_zone_id": "Z0123", "health_check_interval_s": 20}, "10 or 30"),
    ],
)
def test_bad_failover_domains_name_their_key(section: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        AppConfig.from_context(with_(failover_domain=section))
