"""One region's knowledge store (stateful): the documents bucket, its ingest queue, the S3 Vectors index.

Deployed in both regions, the DR region's first: the primary bucket replicates every document (and every
delete marker) to the DR bucket within 15 minutes (S3 Replication Time Control), re-encrypted with the DR
region's key. S3 Vectors has no replication: each region's ingest pipeline (IngestPipeline, in its API stack)
embeds what lands in its own bucket into its own index, so retrieval works in DR with no step by hand.

Reads top to bottom: the buckets, the queue the bucket notifies, the vector index; then the grants the
compute side asks for (each exact: the documents/ prefix, the index ARN, the embedding model), then outputs.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import ArnFormat, CfnOutput, Duration, Fn, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_notifications as s3n
from aws_cdk import aws_s3vectors as s3vectors
from aws_cdk import aws_sqs as sqs
from cdk_nag import NagPackSuppression, NagSuppressions, RegexAppliesTo
from constructs import Construct

from adapters.s3vectors import NON_FILTERABLE_KEYS
from stacks.config import AppConfig
from stacks.constructs.nag import skip_checkov, suppress, suppress_cdk_provider
from stacks.lambda_settings import KnowledgeNames

DOCUMENTS_PREFIX = "documents/"
# The ingest queue's visibility timeout, in ingest Lambda timeouts (DESIGN: >= 6x the consumer's timeout).
VISIBILITY_TIMEOUTS = 6
_VECTORS_WRITE = ["s3vectors:PutVectors", "s3vectors:GetVectors", "s3vectors:QueryVectors",
                  "s3vectors:ListVectors", "s3vectors:DeleteVectors"]  # fmt: skip
# Queries that filter on metadata or return it need GetVectors beside QueryVectors.
_VECTORS_READ = ["s3vectors:QueryVectors", "s3vectors:GetVectors"]


class KnowledgeStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: AppConfig,
        key: kms.IKey,
        site_origin: str,
        replica: KnowledgeStack | None = None,
        **kwargs: Any,
    ) -> None:
        """`key`: this region's data key (documents). `replica`: the DR region's KnowledgeStack, whose bucket
        this one replicates to (primary region only). `site_origin`: the web UI's origin, the only CORS origin
        (the browser uploads with a presigned POST)."""
        super().__init__(scope, construct_id, **kwargs)
        self.config = config
        self.key = key
        knowledge = config.knowledge

        # --- the documents bucket and its access logs ------------------------------------------------------
        access_logs = s3.Bucket(
            self,
            "AccessLogs",
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            encryption=s3.BucketEncryption.S3_MANAGED,  # S3 server access logging cannot write SSE-KMS
            enforce_ssl=True,
            versioned=True,
            lifecycle_rules=[s3.LifecycleRule(expiration=Duration.days(config.log_retention_days))],
            removal_policy=RemovalPolicy.RETAIN,
        )
        self._suppress_access_logs(access_logs)
        # Our own role: CDK's default is named CDKReplicationRole (one per account) and may use any key.
        replication_role = (
            iam.Role(
                self,
                "ReplicationRole",
                assumed_by=iam.ServicePrincipal("s3.amazonaws.com"),
                description="S3 replication of the documents bucket to the DR region",
            )
            if replica
            else None
        )
        self.bucket = s3.Bucket(
            self,
            "Documents",
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            encryption=s3.BucketEncryption.KMS,
            encryption_key=key,
            bucket_key_enabled=True,  # one KMS call per bucket key, not per object
            enforce_ssl=True,
            versioned=True,  # soft delete, and what replication needs
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="ExpireOldVersions",
                    noncurrent_version_expiration=Duration.days(knowledge.noncurrent_version_days),
                    expired_object_delete_marker=True,
                    abort_incomplete_multipart_upload_after=Duration.days(1),
                )
            ],
            cors=[
                s3.CorsRule(
                    allowed_methods=[s3.HttpMethods.POST],
                    allowed_origins=[site_origin],
                    allowed_headers=["*"],
                    max_age=3000,
                )
            ],
            server_access_logs_bucket=access_logs,
            server_access_logs_prefix="documents/",
            replication_rules=self._replication(replica) if replica else None,
            replication_role=replication_role,
            removal_policy=RemovalPolicy.RETAIN,
        )
        if replica and replication_role:
            self._grant_replication(replication_role, replica)
        else:
            suppress(
                self.bucket,
                "This is the DR region's copy: the primary bucket replicates into it (RTC, 15 minutes). Documents "
                "uploaded here during an outage are re-uploaded to the primary on fail-back (docs/dr-runbook.md); "
                "replicating back would need both stacks to know each other's bucket, a deploy-order cycle.",
                "NIST.800.53.R5-S3BucketReplicationEnabled",
                "HIPAA.Security-S3BucketReplicationEnabled",
            )

        # --- the ingest queue, fed by the bucket's notifications ------------------------------------------
        self.dlq = sqs.Queue(
            self,
            "IngestDlq",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=Duration.days(14),  # the longest SQS allows: time to fix and `make redrive`
        )
        suppress(self.dlq, "This queue is itself the dead-letter queue of the ingest queue.", "AwsSolutions-SQS3")
        sse_sqs = (
            "Encrypted at rest with SSE-SQS (SqsManagedSseEnabled), which this check does not recognise. The "
            "messages are S3 event records (bucket, key, version, size), never document content, and S3 can "
            "publish to a KMS-encrypted queue only through a key policy naming the S3 service."
        )
        self.queue = sqs.Queue(
            self,
            "Ingest",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            visibility_timeout=Duration.seconds(VISIBILITY_TIMEOUTS * knowledge.ingest_timeout_s),
            retention_period=Duration.days(14),
            dead_letter_queue=sqs.DeadLetterQueue(queue=self.dlq, max_receive_count=knowledge.max_receive_count),
        )
        for queue in (self.queue, self.dlq):
            skip_checkov(queue, sse_sqs, "CKV_AWS_27")
        destination = s3n.SqsDestination(self.queue)
        prefix = s3.NotificationKeyFilter(prefix=DOCUMENTS_PREFIX)
        # Created covers uploads and, in DR, replicas; Removed covers deletes and delete markers (versioned).
        for event in (s3.EventType.OBJECT_CREATED, s3.EventType.OBJECT_REMOVED):
            self.bucket.add_event_notification(event, destination, prefix)
        self._skip_checks_on_notifications_handler()

        # --- the vector store ------------------------------------------------------------------------------
        # SSE-S3 for now: S3 Vectors with SSE-KMS needs the data key's policy to admit the S3 Vectors service
        # (stacks/keys_stack.py); the vectors are derived data, rebuilt from the KMS-encrypted documents.
        self.vector_bucket = s3vectors.CfnVectorBucket(
            self,
            "Vectors",
            encryption_configuration=s3vectors.CfnVectorBucket.EncryptionConfigurationProperty(sse_type="AES256"),
        )
        self.index = s3vectors.CfnIndex(
            self,
            "Index",
            vector_bucket_arn=self.vector_bucket.attr_vector_bucket_arn,
            data_type="float32",
            dimension=knowledge.dimensions,
            distance_metric="cosine",
            # The chunk text: filterable metadata is capped at 2 KB per vector (adapters/s3vectors.py).
            metadata_configuration=s3vectors.CfnIndex.MetadataConfigurationProperty(
                non_filterable_metadata_keys=list(NON_FILTERABLE_KEYS)
            ),
        )
        self.index_arn = self.index.attr_index_arn
        # Names chosen by CloudFormation, read back from the ARNs: ...:bucket/<bucket>/index/<index>.
        self.vector_bucket_name = Fn.select(1, Fn.split("/", self.vector_bucket.attr_vector_bucket_arn))
        self.index_name = Fn.select(3, Fn.split("/", self.index_arn))
        self.names = KnowledgeNames(
            documents_bucket=self.bucket.bucket_name,
            vector_bucket=self.vector_bucket_name,
            vector_index=self.index_name,
        )

        # --- outputs ---------------------------------------------------------------------------------------
        CfnOutput(self, "DocumentsBucketName", value=self.bucket.bucket_name)
        CfnOutput(self, "IngestQueueUrl", value=self.queue.queue_url)
        CfnOutput(self, "IngestDlqUrl", value=self.dlq.queue_url)
        CfnOutput(self, "VectorBucketName", value=self.vector_bucket_name)
        CfnOutput(self, "VectorIndexName", value=self.index_name)
        CfnOutput(self, "VectorIndexArn", value=self.index_arn)

    # --- grants: what the compute side may do here, exactly ---------------------------------------------------
    def grant_documents_api(self, role: iam.IRole) -> None:
        """The API: presigned POSTs (PutObject) and deletes under documents/ only, the key only through S3, and
        deleting a document's vectors in this region (DELETE /documents/{id}; found by a filtered query)."""
        self._statement(role, "UploadAndDeleteDocuments", ["s3:PutObject", "s3:DeleteObject"], self._documents())
        self._statement(role, "DeleteDocumentVectors", ["s3vectors:DeleteVectors"], [self.index_arn])
        self._key_via_s3(role, "DocumentsKeyToUpload", ["kms:GenerateDataKey", "kms:Decrypt"])
        self._suppress_prefix(role, "a user's documents are created at upload (documents/<user>/<document id>)")

    def grant_ingest(self, role: iam.IRole) -> None:
        """The ingest Lambda: read any version under documents/, write and delete vectors, embed chunks."""
        self._statement(role, "ReadDocuments", ["s3:GetObject", "s3:GetObjectVersion"], self._documents())
        self._key_via_s3(role, "DocumentsKeyToRead", ["kms:Decrypt"])
        self._suppress_prefix(role, "the ingest Lambda reads whichever document its S3 event names")
        self._statement(role, "WriteVectors", _VECTORS_WRITE, [self.index_arn])
        self.grant_embed(role)

    def grant_retrieval(self, role: iam.IRole) -> None:
        """Chat and worker: embed the question, query this index (metadata returned, hence GetVectors)."""
        self._statement(role, "QueryVectors", _VECTORS_READ, [self.index_arn])
        self.grant_embed(role)

    def grant_embed(self, role: iam.IRole) -> None:
        """bedrock:InvokeModel on exactly the embedding model, in this region."""
        self._statement(role, "InvokeEmbeddingModel", ["bedrock:InvokeModel"], [self.embedding_model_arn])

    @property
    def embedding_model_arn(self) -> str:
        return self.format_arn(
            service="bedrock",
            account="",
            resource="foundation-model",
            resource_name=self.config.knowledge.embedding_model_id,
            arn_format=ArnFormat.SLASH_RESOURCE_NAME,
        )

    def _documents(self) -> list[str]:
        return [self.bucket.arn_for_objects(f"{DOCUMENTS_PREFIX}*")]

    @staticmethod
    def _suppress_prefix(role: iam.IRole, why: str) -> None:
        _suppress_documents_prefix(
            role,
            f"Object names are known only at run time ({why}); the grant is on the documents/ prefix of this "
            "region's documents bucket, nothing else in it.",
        )

    @staticmethod
    def _statement(role: iam.IRole, sid: str, actions: list[str], resources: list[str]) -> None:
        role.add_to_principal_policy(iam.PolicyStatement(sid=sid, actions=actions, resources=resources))

    def _key_via_s3(self, role: iam.IRole, sid: str, actions: list[str]) -> None:
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid=sid,
                actions=actions,
                resources=[self.key.key_arn],
                conditions={"StringEquals": {"kms:ViaService": f"s3.{self.region}.amazonaws.com"}},
            )
        )

    # --- parts ------------------------------------------------------------------------------------------------
    def _replication(self, replica: KnowledgeStack) -> list[s3.ReplicationRule]:
        """Everything under documents/ to the DR bucket: RTC (15 minutes, with its metrics), delete markers
        too (a delete in the primary is a delete in DR), re-encrypted with the DR region's key."""
        return [
            s3.ReplicationRule(
                destination=replica.bucket,
                priority=1,
                filter=s3.Filter(prefix=DOCUMENTS_PREFIX),
                replication_time_control=s3.ReplicationTimeValue.FIFTEEN_MINUTES,
                metrics=s3.ReplicationTimeValue.FIFTEEN_MINUTES,
                delete_marker_replication=True,
                sse_kms_encrypted_objects=True,
                kms_key=replica.key,
            )
        ]

    def _grant_replication(self, role: iam.Role, replica: KnowledgeStack) -> None:
        """What S3 replication needs, exactly: read this bucket's versions, write replicas into the DR bucket,
        decrypt with this region's key and encrypt with the DR region's, each only through S3 there."""
        role.add_to_policy(
            iam.PolicyStatement(
                sid="ReadReplicationConfiguration",
                actions=["s3:GetReplicationConfiguration", "s3:ListBucket"],
                resources=[self.bucket.bucket_arn],
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="ReadVersionsToReplicate",
                actions=["s3:GetObjectVersionForReplication", "s3:GetObjectVersionAcl", "s3:GetObjectVersionTagging"],
                resources=[self.bucket.arn_for_objects(f"{DOCUMENTS_PREFIX}*")],
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="WriteReplicas",
                actions=["s3:ReplicateObject", "s3:ReplicateDelete", "s3:ReplicateTags"],
                resources=[replica.bucket.arn_for_objects(f"{DOCUMENTS_PREFIX}*")],
            )
        )
        for sid, actions, key, region in (
            ("DecryptSource", ["kms:Decrypt"], self.key, self.region),
            ("EncryptReplica", ["kms:Encrypt", "kms:GenerateDataKey"], replica.key, replica.region),
        ):
            role.add_to_policy(
                iam.PolicyStatement(
                    sid=sid,
                    actions=actions,
                    resources=[key.key_arn],
                    conditions={"StringEquals": {"kms:ViaService": f"s3.{region}.amazonaws.com"}},
                )
            )
        _suppress_documents_prefix(
            role,
            "S3 replicates any object under documents/ (names are per user and per document, known only at "
            "upload), so its object actions are on the documents/* prefix of the source and DR buckets.",
        )
        suppress(
            role,
            "CDK writes a role's grants into one inline policy attached only to this role; a separate managed "
            "policy would hold the same statements and be reusable where it must not be.",
            "NIST.800.53.R5-IAMNoInlinePolicy",
            "HIPAA.Security-IAMNoInlinePolicy",
            children=True,
        )

    def _suppress_access_logs(self, bucket: s3.Bucket) -> None:
        suppress(
            bucket,
            "This bucket is the documents bucket's access-log destination; logging it into itself would loop.",
            "AwsSolutions-S1",
            "NIST.800.53.R5-S3BucketLoggingEnabled",
            "HIPAA.Security-S3BucketLoggingEnabled",
        )
        skip_checkov(
            bucket,
            "This bucket is the documents bucket's access-log destination; logging it into itself would loop.",
            "CKV_AWS_18",
        )
        suppress(
            bucket,
            "S3 server access logging delivers only to buckets encrypted with SSE-S3; the log records name "
            "requests and callers, the documents themselves stay under the KMS data key.",
            "NIST.800.53.R5-S3DefaultEncryptionKMS",
            "HIPAA.Security-S3DefaultEncryptionKMS",
        )
        suppress(
            bucket,
            "Access logs are regional evidence of this region's requests; the DR region keeps its own, so "
            "replicating them would add cost without improving recovery.",
            "NIST.800.53.R5-S3BucketReplicationEnabled",
            "HIPAA.Security-S3BucketReplicationEnabled",
        )

    def _skip_checks_on_notifications_handler(self) -> None:
        """CDK's BucketNotificationsHandler: a deploy-time Lambda that puts the bucket's notification
        configuration (s3:PutBucketNotification on this bucket only)."""
        purpose = "CDK's BucketNotificationsHandler (puts the documents bucket's notification configuration)"
        suppress_cdk_provider(self, f"/{self.stack_name}/{NOTIFICATIONS_HANDLER}", purpose)
        suppress(
            self.bucket.node.find_child("Notifications").node.find_child("HandlerPolicy"),
            f"{purpose}: aws-cdk-lib attaches this inline policy (s3:PutBucketNotification on this bucket only) "
            "to the handler's role.",
            "NIST.800.53.R5-IAMNoInlinePolicy",
            "HIPAA.Security-IAMNoInlinePolicy",
        )
        handler = self.node.find_child(NOTIFICATIONS_HANDLER).node.find_child("Resource")
        for check, reason in {
            "CKV_AWS_115": "CDK's BucketNotificationsHandler runs only when CloudFormation deploys this stack, one "
            "invocation per change; a reserved-concurrency limit would only make deploys fail.",
            "CKV_AWS_116": "CDK's BucketNotificationsHandler is invoked synchronously by CloudFormation, which "
            "reports a failure and rolls back; a DLQ only receives asynchronous invocations.",
            "CKV_AWS_117": "CDK's BucketNotificationsHandler calls only the public S3 API with IAM "
            "(PutBucketNotification on this bucket); a VPC would add NAT or endpoint cost without narrowing it.",
        }.items():
            skip_checkov(handler, reason, check)


# How cdk-nag names a documents bucket's documents/* in an IAM5 finding: by its Ref in this stack, by its export
# in an API stack, through CDK's cross-region reference reader for the DR bucket.
_DOCUMENTS_PREFIX_FINDING = RegexAppliesTo(
    regex=r"/^Resource::(<Documents[0-9A-F]+\.Arn>|[A-Za-z0-9-]+:ExportsOutputFnGetAttDocuments[0-9A-F]+Arn[0-9A-F]+"
    r"|<ExportsReader[0-9A-F]+\.\/cdk\/exports\/[^>]*FnGetAttDocuments[0-9A-F]+Arn[0-9A-F]+>)\/documents\/\*$/"
)


def _suppress_documents_prefix(role: iam.IRole, reason: str) -> None:
    """AwsSolutions-IAM5 for the documents/* prefix (only that wildcard), with `reason`."""
    NagSuppressions.add_resource_suppressions(
        role,
        [NagPackSuppression(id="AwsSolutions-IAM5", reason=reason, applies_to=[_DOCUMENTS_PREFIX_FINDING])],
        apply_to_children=True,
    )


# The singleton Lambda aws-cdk-lib adds to a stack whose buckets have event notifications.
NOTIFICATIONS_HANDLER = "BucketNotificationsHandler050a0587b7544547bf325f094a3db834"
