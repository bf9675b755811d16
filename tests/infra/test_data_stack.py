"""Every DynamoDB table and every replica, in every stack, is deletion-protected and retained."""

from __future__ import annotations

from aws_cdk.assertions import Match

from tests.infra.conftest import Synth

DATA_STACK = "Bulwark-dev-Data"
# At least conversations, response cache, jobs and idempotency; a table added later is held to the same rules.
MIN_GLOBAL_TABLES = 4


def test_every_global_table_and_every_replica_has_deletion_protection(synth: Synth) -> None:
    template = synth.template(DATA_STACK)
    assert len(template.find_resources("AWS::DynamoDB::GlobalTable")) >= MIN_GLOBAL_TABLES
    # GIVEN each replica of each table (both regions) WHEN it lacks protection THEN this pattern does not match.
    protected_replica = Match.object_like(
        {
            "DeletionProtectionEnabled": True,
            "PointInTimeRecoverySpecification": Match.object_like({"PointInTimeRecoveryEnabled": True}),
        }
    )
    template.all_resources_properties(
        "AWS::DynamoDB::GlobalTable",
        {"Replicas": [protected_replica, protected_replica]},
    )
    template.all_resources("AWS::DynamoDB::GlobalTable", {"DeletionPolicy": "Retain", "UpdateReplacePolicy": "Retain"})
    for table in template.find_resources("AWS::DynamoDB::GlobalTable").values():
        regions = {replica["Region"] for replica in table["Properties"]["Replicas"]}
        assert regions == {"us-east-1", "us-west-2"}


def test_no_stack_has_an_unprotected_table(synth: Synth) -> None:
    for name in synth.stacks:
        template = synth.template(name)
        for table in template.find_resources("AWS::DynamoDB::Table").values():
            assert table["Properties"].get("DeletionProtectionEnabled") is True, name
        for table in template.find_resources("AWS::DynamoDB::GlobalTable").values():
            assert all(replica.get("DeletionProtectionEnabled") is True for replica in table["Properties"]["Replicas"])
