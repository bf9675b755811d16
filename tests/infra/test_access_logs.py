"""The shared access-log bucket (stacks/constructs/access_logs.py) inside an empty Stack, and both stacks that
keep access logs using it under the logical id they always had."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk import App, Stack
from aws_cdk.assertions import Match, Template

from stacks.constructs.access_logs import access_logs_bucket
from tests.infra.conftest import Synth


def template_of(*, cloudfront: bool) -> Template:
    stack = Stack(App(), "Logs")
    access_logs_bucket(stack, "AccessLogs", retention_days=90, logged="the test bucket", cloudfront=cloudfront)
    return Template.from_stack(stack)


def only_bucket(template: Template) -> dict[str, Any]:
    (bucket,) = template.find_resources("AWS::S3::Bucket").values()
    return bucket


@pytest.mark.parametrize("cloudfront", [False, True])
def test_a_private_tls_only_versioned_expiring_retained_bucket(cloudfront: bool) -> None:
    template = template_of(cloudfront=cloudfront)
    bucket = only_bucket(template)
    props = bucket["Properties"]

    assert bucket["DeletionPolicy"] == "Retain" and props["VersioningConfiguration"] == {"Status": "Enabled"}
    assert all(props["PublicAccessBlockConfiguration"].values())
    (encryption,) = props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert encryption["ServerSideEncryptionByDefault"] == {"SSEAlgorithm": "AES256"}  # what S3 logging can write
    assert props["LifecycleConfiguration"]["Rules"] == [{"ExpirationInDays": 90, "Status": "Enabled"}]
    ownership = props.get("OwnershipControls", {}).get("Rules", [{}])[0].get("ObjectOwnership")
    assert (ownership == "ObjectWriter") is cloudfront  # CloudFront standard logs are written with ACLs
    tls_only = Match.object_like({"Effect": "Deny", "Condition": {"Bool": {"aws:SecureTransport": "false"}}})
    template.has_resource_properties(
        "AWS::S3::BucketPolicy",
        {"PolicyDocument": {"Statement": Match.array_with([tls_only]), "Version": Match.any_value()}},
    )


def test_every_suppression_names_its_reason() -> None:
    metadata = only_bucket(template_of(cloudfront=False))["Metadata"]
    rules = {rule["id"]: rule["reason"] for rule in metadata["cdk_nag"]["rules_to_suppress"]}
    assert set(rules) == {
        "AwsSolutions-S1", "NIST.800.53.R5-S3BucketLoggingEnabled", "HIPAA.Security-S3BucketLoggingEnabled",
        "NIST.800.53.R5-S3DefaultEncryptionKMS", "HIPAA.Security-S3DefaultEncryptionKMS",
        "NIST.800.53.R5-S3BucketReplicationEnabled", "HIPAA.Security-S3BucketReplicationEnabled",
    }  # fmt: skip
    assert "the test bucket" in rules["AwsSolutions-S1"]
    assert [skip["id"] for skip in metadata["checkov"]["skip"]] == ["CKV_AWS_18"]


@pytest.mark.parametrize("stack", ["Bulwark-dev-Web", "Bulwark-dev-Knowledge", "Bulwark-dev-Knowledge-DR"])
def test_the_stacks_keep_their_access_log_bucket_under_its_logical_id(synth: Synth, stack: str) -> None:
    template = synth.template(stack)
    buckets = template.find_resources("AWS::S3::Bucket")
    (logical_id,) = [name for name in buckets if name.startswith("AccessLogs")]
    assert logical_id == "AccessLogs8B620ECA"  # the id it had before the construct: the same deployed bucket
    writer = "ObjectWriter" in json.dumps(buckets[logical_id]["Properties"])
    assert writer is (stack == "Bulwark-dev-Web")
