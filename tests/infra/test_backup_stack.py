"""AWS Backup out of reach: every table and the documents bucket backed up in the primary region and copied to a
locked vault in the DR region (its own key, a deny-delete access policy, a name from config), restore tests there,
PITR kept on; compliance mode and a separate backup account as config choices."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk import App, Environment, Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk.assertions import Match, Template

from stacks.backup_stack import FREEZE_VAULT, PROTECT_RECOVERY_POINTS, BackupStack, BackupVaultStack
from stacks.config import AppConfig
from tests.infra.conftest import Synth, cdk_context

PRIMARY, DR = "Bulwark-dev-Backup", "Bulwark-dev-Backup-DR"
DATA = "Bulwark-dev-Data"


def config_with(**backup: Any) -> AppConfig:
    raw = cdk_context()["bulwark"]
    return AppConfig.from_context({**raw, "backup": {**raw["backup"], **backup}})


def vault_policy_actions(template: Template, vault_type_filter: dict[str, Any] | None = None) -> list[str]:
    (vault,) = template.find_resources("AWS::Backup::BackupVault", vault_type_filter or {}).values()
    (statement,) = vault["Properties"]["AccessPolicy"]["Statement"]
    assert statement["Effect"] == "Deny" and statement["Principal"] == {"AWS": "*"}
    return list(statement["Action"])


def isolated_primary(config: AppConfig) -> Template:
    """The primary Backup stack alone, over stand-in tables, bucket and key (fast: no whole-app synth)."""
    app = App()
    env = Environment(account="111111111111", region=config.primary_region)
    data = Stack(app, "Data", env=env)
    key = kms.Key(data, "DataKey")
    tables = [
        dynamodb.TableV2(data, f"T{i}", partition_key=dynamodb.Attribute(name="pk", type=dynamodb.AttributeType.STRING))
        for i in range(2)
    ]
    bucket = s3.Bucket(data, "Documents", versioned=True)
    stack = BackupStack(
        app, "Backup", config=config, tables=tables, buckets=[bucket], data_key=key, logs_key=kms.Key(data, "Logs"),
        env=env,
    )  # fmt: skip
    return Template.from_stack(stack)


# --- the shipped deployment ------------------------------------------------------------------------------------
def test_the_copies_land_in_a_locked_dr_vault_with_its_own_key_and_name_from_config(synth: Synth) -> None:
    assert synth.stacks[PRIMARY].region == "us-east-1" and synth.stacks[DR].region == "us-west-2"
    template = synth.template(DR)
    (key_id,) = template.find_resources("AWS::KMS::Key")
    template.has_resource(
        "AWS::Backup::BackupVault",
        {
            "DeletionPolicy": "Retain",
            "Properties": Match.object_like(
                {
                    "BackupVaultName": "Bulwark-dev-dr-copies",
                    "EncryptionKeyArn": {"Fn::GetAtt": [key_id, "Arn"]},  # its own key, not the data key
                    # Governance mode in dev: the lock holds retention but can be removed deliberately.
                    "LockConfiguration": {"MinRetentionDays": 7, "MaxRetentionDays": 365},
                }
            ),
        },
    )
    assert vault_policy_actions(template) == PROTECT_RECOVERY_POINTS
    key_policy = json.dumps(template.find_resources("AWS::KMS::Key")[key_id]["Properties"]["KeyPolicy"])
    assert "backup.us-west-2.amazonaws.com" in key_policy and "dynamodb." not in key_policy


def test_the_dr_vault_stack_reads_nothing_from_the_primary_region(synth: Synth) -> None:
    text = json.dumps(synth.template(DR).to_json())
    assert "us-east-1" not in text
    for marker in ("CrossRegionExport", "Fn::ImportValue", "Fn::GetStackOutput", "Bulwark-dev-Data"):
        assert marker not in text, marker
    assert {dependency.stack_name for dependency in synth.stacks[DR].dependencies} == set()


def test_every_table_and_the_documents_bucket_are_backed_up_and_copied(synth: Synth) -> None:
    template = synth.template(PRIMARY)
    (plan,) = template.find_resources("AWS::Backup::BackupPlan").values()
    (rule,) = plan["Properties"]["BackupPlan"]["BackupPlanRule"]
    assert rule["ScheduleExpression"] == "cron(0 5 * * ? *)" and rule["Lifecycle"] == {"DeleteAfterDays": 35}
    (copy,) = rule["CopyActions"]
    assert copy["Lifecycle"] == {"DeleteAfterDays": 35}
    destination = json.dumps(copy["DestinationBackupVaultArn"])
    # Built from config (region, vault name), not read from the DR stack: no cross-region reference.
    assert "backup:us-west-2:" in destination and ":backup-vault:Bulwark-dev-dr-copies" in destination

    (selection,) = template.find_resources("AWS::Backup::BackupSelection").values()
    resources = json.dumps(selection["Properties"]["BackupSelection"]["Resources"])
    tables = synth.template(DATA).find_resources("AWS::DynamoDB::GlobalTable")
    assert len(tables) == 8  # the prompt catalog and the curated answers too (issue 11)
    for logical_id in tables:
        assert f"Bulwark-dev-Data:ExportsOutputFnGetAtt{logical_id}Arn" in resources, logical_id
    assert "Bulwark-dev-Knowledge:ExportsOutputFnGetAttDocuments" in resources
    synth.template("Bulwark-dev-Knowledge").has_resource_properties(
        "AWS::S3::Bucket",
        {"VersioningConfiguration": {"Status": "Enabled"}, "ReplicationConfiguration": Match.any_value()},
    )


def test_the_primary_vault_has_its_own_key_and_denies_deleting_recovery_points(synth: Synth) -> None:
    template = synth.template(PRIMARY)
    (key_id,) = template.find_resources("AWS::KMS::Key")
    template.has_resource_properties("AWS::Backup::BackupVault", {"EncryptionKeyArn": {"Fn::GetAtt": [key_id, "Arn"]}})
    assert vault_policy_actions(template) == PROTECT_RECOVERY_POINTS


def test_pitr_stays_on_for_every_table_and_replica(synth: Synth) -> None:
    for table in synth.template(DATA).find_resources("AWS::DynamoDB::GlobalTable").values():
        for replica in table["Properties"]["Replicas"]:
            assert replica["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True


def test_the_backup_role_reads_the_data_key_only_through_the_services_and_copies_to_dr_backup(synth: Synth) -> None:
    template = synth.template(PRIMARY)
    statements = {
        s["Sid"]: s
        for policy in template.find_resources("AWS::IAM::Policy").values()
        for s in policy["Properties"]["PolicyDocument"]["Statement"]
        if "Sid" in s
    }
    read = statements["ReadEncryptedData"]
    assert "Bulwark-dev-Keys:Exports" in json.dumps(read["Resource"])
    assert read["Condition"]["StringEquals"]["kms:ViaService"] == [
        "dynamodb.us-east-1.amazonaws.com", "s3.us-east-1.amazonaws.com", "backup.us-east-1.amazonaws.com"
    ]  # fmt: skip
    copy = statements["CopyIntoTheDrVault"]
    assert copy["Condition"] == {"StringEquals": {"kms:ViaService": "backup.us-west-2.amazonaws.com"}}
    (role,) = template.find_resources(
        "AWS::IAM::Role", {"Properties": {"Description": Match.string_like_regexp("AWS Backup")}}
    ).values()
    managed = json.dumps(role["Properties"]["ManagedPolicyArns"])
    for kind in ("Backup", "S3Backup", "Restores", "S3Restore"):
        assert f'AWSBackupServiceRolePolicyFor{kind}"' in managed


def test_advanced_dynamodb_backup_is_turned_on_for_cross_region_copies(synth: Synth) -> None:
    (setting,) = synth.template(PRIMARY).find_resources("Custom::AWS").values()
    for phase in ("Create", "Update"):
        call = json.loads(setting["Properties"][phase])
        assert call["action"] == "updateRegionSettings"
        assert call["parameters"] == {"ResourceTypeManagementPreference": {"DynamoDB": True}}
    assert "Delete" not in setting["Properties"]  # never turned off: other workloads may rely on it


def test_restore_tests_run_on_the_copies_in_the_dr_region(synth: Synth) -> None:
    template = synth.template(DR)
    (vault_id,) = template.find_resources("AWS::Backup::BackupVault")
    template.has_resource_properties(
        "AWS::Backup::RestoreTestingPlan",
        {
            "RestoreTestingPlanName": "Bulwark_dev_restore_tests",
            "ScheduleExpression": "cron(0 7 ? * SUN *)",
            "RecoveryPointSelection": Match.object_like(
                {"Algorithm": "LATEST_WITHIN_WINDOW", "IncludeVaults": [{"Fn::GetAtt": [vault_id, "BackupVaultArn"]}]}
            ),
        },
    )
    template.has_resource_properties(
        "AWS::Backup::RestoreTestingSelection",
        {
            "RestoreTestingPlanName": "Bulwark_dev_restore_tests",
            "ProtectedResourceType": "DynamoDB",
            "ProtectedResourceArns": ["*"],
            "IamRoleArn": Match.any_value(),
            "ValidationWindowHours": 1,
        },
    )


# --- config choices ------------------------------------------------------------------------------------------
def test_compliance_mode_locks_for_good_and_freezes_the_vault_policy() -> None:
    config = config_with(lock={"min_retention_days": 30, "max_retention_days": 400, "changeable_for_days": 3})
    stack = BackupVaultStack(App(), "Vault", config=config, env=Environment(account="111111111111", region="us-west-2"))
    template = Template.from_stack(stack)

    template.has_resource_properties(
        "AWS::Backup::BackupVault",
        {"LockConfiguration": {"MinRetentionDays": 30, "MaxRetentionDays": 400, "ChangeableForDays": 3}},
    )
    assert vault_policy_actions(template) == PROTECT_RECOVERY_POINTS + FREEZE_VAULT
    assert "backup:PutBackupVaultAccessPolicy" in FREEZE_VAULT


def test_a_separate_backup_account_gets_the_copies_and_use_of_the_backup_key() -> None:
    arn = "arn:aws:backup:us-west-2:210987654321:backup-vault:central"
    template = isolated_primary(config_with(copy_to_vault_arn=arn, copy_retention_days=90))

    (plan,) = template.find_resources("AWS::Backup::BackupPlan").values()
    (copy,) = plan["Properties"]["BackupPlan"]["BackupPlanRule"][0]["CopyActions"]
    assert copy == {"DestinationBackupVaultArn": arn, "Lifecycle": {"DeleteAfterDays": 90}}
    (key,) = template.find_resources("AWS::KMS::Key").values()
    (shared,) = [s for s in key["Properties"]["KeyPolicy"]["Statement"] if s.get("Sid") == "BackupAccountCopies"]
    assert "210987654321" in json.dumps(shared["Principal"])
    assert shared["Condition"] == {"StringEquals": {"kms:CallerAccount": "210987654321"}}
    assert "CopyIntoTheDrVault" not in json.dumps(template.find_resources("AWS::IAM::Policy"))


def test_with_a_separate_backup_account_there_is_no_dr_vault_stack() -> None:
    from app import build_backups

    app = App()
    config = config_with(copy_to_vault_arn="arn:aws:backup:us-west-2:210987654321:backup-vault:central")
    env = Environment(region="us-east-1")
    data = _FakeData(app, env)
    stacks = build_backups(app, config, data=data, keys=data, knowledge=None)  # type: ignore[arg-type]

    assert set(stacks) == {"backup"}


def test_advanced_dynamodb_backup_can_be_left_to_the_organization() -> None:
    template = isolated_primary(config_with(enable_advanced_dynamodb_backup=False))
    assert template.find_resources("Custom::AWS") == {}


@pytest.mark.parametrize("schedule", ["cron(0 3 * * ? *)", "cron(30 */6 * * ? *)"])
def test_the_schedule_comes_from_config(schedule: str) -> None:
    template = isolated_primary(config_with(schedule=schedule))
    (plan,) = template.find_resources("AWS::Backup::BackupPlan").values()
    assert plan["Properties"]["BackupPlan"]["BackupPlanRule"][0]["ScheduleExpression"] == schedule


class _FakeData(Stack):
    """Stands in for the Data and Keys stacks: eight tables and a key."""

    def __init__(self, app: App, env: Environment) -> None:
        super().__init__(app, "FakeData", env=env)
        key = dynamodb.Attribute(name="pk", type=dynamodb.AttributeType.STRING)
        names = ("conversations", "response_cache", "jobs", "idempotency", "usage", "documents", "prompts", "curated")
        for name in names:
            setattr(self, name, dynamodb.TableV2(self, name, partition_key=key))
        self.key = kms.Key(self, "Key")
        self.logs_key = kms.Key(self, "LogsKey")
