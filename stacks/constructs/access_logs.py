"""The bucket a stack's access logs go to (S3 server access logs, CloudFront standard logs), one definition for
every stack that keeps them: private, TLS only, versioned, SSE-S3, expiring after the log retention, retained.

A function, not a Construct: the bucket is created directly in the caller's scope under the caller's id, so
its logical id (and so the deployed bucket) is the one the stack always had.
"""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_s3 as s3
from constructs import Construct

from stacks.constructs.nag import skip_checkov, suppress


def access_logs_bucket(
    scope: Construct,
    construct_id: str,
    *,
    retention_days: int,
    logged: str,
    cloudfront: bool = False,
) -> s3.Bucket:
    """`logged`: what writes its logs here, for the suppressions' reasons ("the documents bucket").
    `cloudfront`: CloudFront standard logging also writes here, with ACLs, so the bucket accepts them."""
    bucket = s3.Bucket(
        scope,
        construct_id,
        block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
        encryption=s3.BucketEncryption.S3_MANAGED,  # S3 server access logging cannot write SSE-KMS
        enforce_ssl=True,
        versioned=True,
        object_ownership=s3.ObjectOwnership.OBJECT_WRITER if cloudfront else None,
        lifecycle_rules=[s3.LifecycleRule(expiration=Duration.days(retention_days))],
        removal_policy=RemovalPolicy.RETAIN,
    )
    loop = f"This bucket is the access-log destination of {logged}; logging it into itself would loop."
    logging = ("AwsSolutions-S1", "NIST.800.53.R5-S3BucketLoggingEnabled", "HIPAA.Security-S3BucketLoggingEnabled")
    suppress(bucket, loop, *logging)
    skip_checkov(bucket, loop, "CKV_AWS_18")
    suppress(
        bucket,
        "S3 server access logging delivers only to buckets encrypted with SSE-S3; the log records name requests "
        "and callers, never the content of what was requested.",
        "NIST.800.53.R5-S3DefaultEncryptionKMS",
        "HIPAA.Security-S3DefaultEncryptionKMS",
    )
    suppress(
        bucket,
        "Access logs are regional evidence of this region's requests; each region keeps its own, so replicating "
        "them would add cost without improving recovery.",
        "NIST.800.53.R5-S3BucketReplicationEnabled",
        "HIPAA.Security-S3BucketReplicationEnabled",
    )
    return bucket
