"""Every DynamoDB table and every replica, in every stack, is deletion-protected and retained."""

from __future__ import annotations

import pytest
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


def test_the_jobs_table_has_the_sparse_recovery_index_the_adapter_queries(synth: Synth) -> None:
    """Disaster recovery (issue 10): open jobs by owner region and heartbeat, keys and times only (never a job's
    text), on the global table, so each region's replica has it. Its name and projection are the adapter's."""
    from adapters.jobs import OPEN_JOBS_INDEX, OPEN_JOBS_INDEX_ATTRIBUTES

    tables = synth.template(DATA_STACK).find_resources("AWS::DynamoDB::GlobalTable")
    (jobs,) = [t for name, t in tables.items() if name.startswith("Jobs")]
    properties = jobs["Properties"]

    assert properties["GlobalSecondaryIndexes"] == [
        {
            "IndexName": OPEN_JOBS_INDEX,
            "KeySchema": [
                {"AttributeName": "owner_region", "KeyType": "HASH"},
                {"AttributeName": "heartbeat_at", "KeyType": "RANGE"},
            ],
            "Projection": {"ProjectionType": "INCLUDE", "NonKeyAttributes": list(OPEN_JOBS_INDEX_ATTRIBUTES)},
        }
    ]
    assert {"AttributeName": "owner_region", "AttributeType": "S"} in properties["AttributeDefinitions"]
    assert {"AttributeName": "heartbeat_at", "AttributeType": "N"} in properties["AttributeDefinitions"]
    assert "message" not in OPEN_JOBS_INDEX_ATTRIBUTES and "answer" not in OPEN_JOBS_INDEX_ATTRIBUTES
    # No other table has an index (each one is a write cost on every item of its table).
    assert [name for name, t in tables.items() if t["Properties"].get("GlobalSecondaryIndexes")] == [
        name for name in tables if name.startswith("Jobs")
    ]


@pytest.mark.parametrize("table", ["Prompts", "CuratedAnswers"])
def test_the_prompt_catalog_is_a_global_table_backed_up_like_the_conversations(synth: Synth, table: str) -> None:
    """Issue 11: system prompts and curated answers are data: a global table (DR replica), PITR 35 days, deletion
    protection, the data key in both regions, no TTL (never expire), keyed as the adapter reads it."""
    tables = synth.template(DATA_STACK).find_resources("AWS::DynamoDB::GlobalTable")
    (prompts,) = [t for name, t in tables.items() if name.startswith(table)]
    properties = prompts["Properties"]

    assert properties["KeySchema"] == [
        {"AttributeName": "pk", "KeyType": "HASH"},
        {"AttributeName": "sk", "KeyType": "RANGE"},
    ]
    assert "TimeToLiveSpecification" not in properties
    assert properties["SSESpecification"] == {"SSEEnabled": True, "SSEType": "KMS"}
    assert prompts["DeletionPolicy"] == "Retain"
    for replica in properties["Replicas"]:
        assert replica["DeletionProtectionEnabled"] is True
        assert replica["PointInTimeRecoverySpecification"] == {
            "PointInTimeRecoveryEnabled": True,
            "RecoveryPeriodInDays": 35,
        }
        assert "KMSMasterKeyId" in replica["SSESpecification"]
    assert {replica["Region"] for replica in properties["Replicas"]} == {"us-east-1", "us-west-2"}
