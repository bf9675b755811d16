"""One region's knowledge store (stateful): the documents bucket, its ingest queue, the S3 Vectors index.

Deployed in both regions, the DR region's first: the primary bucket replicates every document (and every
delete marker) to the DR bucket within 15 minutes (S3 Replication Time Control), re-encrypted with the DR
region's key. S3 Vectors has no replication: each region's ingest pipeline (IngestPipeline, in its API stack)
embeds what lands in its own bucket into its own index, so retrieval works in DR with no step by hand.

Replication is two-way, so fail-back loses no document: what users upload (or delete) in the DR region during
an outage replicates back to the primary bucket, under the same rule (prefix, RTC, delete markers, the
primary's key), with replica modification sync on both rules. S3 never replicates a replica again, so the two
rules make no loop. S3 refuses a rule whose destination bucket does not exist yet, and the DR stack deploys
first, so the DR bucket's rule is put by the primary stack (an AwsCustomResource calling PutBucketReplication
in the DR region, once both buckets exist): the DR stack never depends on the primary's.
Static stability: the primary stack reads the DR bucket and the DR key with weak references (Fn::GetStackOutput
of the DR stacks' outputs, at the primary stack's own deploy), so no DR stack carries a writer into the primary
region and the DR region deploys and scales while the primary region is down.

Reads top to bottom: the buckets, the queue the bucket notifies, the vector index; then the grants the
compute side asks for (each exact: the documents/ prefix, the index ARN, the embedding model), then outputs.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from aws_cdk import ArnFormat, CfnOutput, Duration, Fn, ReferenceStrength, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_notifications as s3n
from aws_cdk import aws_s3vectors as s3vectors
from aws_cdk import aws_sqs as sqs
from aws_cdk import custom_resources as cr
from cdk_nag import NagPackSuppression, NagSuppressions, RegexAppliesTo
from constructs import Construct

from adapters.s3vectors import NON_FILTERABLE_KEYS
from stacks.config import AppConfig
from stacks.constructs.access_logs import access_logs_bucket
from stacks.constructs.nag import skip_checkov, suppress, suppress_cdk_provider, suppress_path
from stacks.lambda_settings import KnowledgeNames

DOCUMENTS_PREFIX = "documents/"
# The ingest queue's visibility timeout, in ingest Lambda timeouts (DESIGN: >= 6x the consumer's timeout).
VISIBILITY_TIMEOUTS = 6
_VECTORS_WRITE = ["s3vectors:PutVectors", "s3vectors:GetVectors", "s3vectors:QueryVectors",
                  "s3vectors:ListVectors", "s3vectors:DeleteVectors"]  # fmt: skip
# Queries that filter on metadata or return it need GetVectors beside QueryVectors.
_VECTORS_READ = ["s3vectors:QueryVectors", "s3vectors:GetVectors"]


class Peer(NamedTuple):
    """The other region's documents bucket and data key, as this stack refers to them."""

    bucket: s3.IBucket
    key: kms.IKey
    region: str


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
        access_logs = access_logs_bucket(
            self, "AccessLogs", retention_days=config.log_retention_days, logged="the documents bucket"
        )
        # Our own role: CDK's default is named CDKReplicationRole (one per account) and may use any key.
        peer = self._read_replica(replica) if replica else None
        replication_role = (
            iam.Role(
                self,
                "ReplicationRole",
                assumed_by=iam.ServicePrincipal("s3.amazonaws.com"),
                description="S3 replication of the documents bucket to the DR region",
            )
            if peer
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
            replication_rules=self._replication(peer) if peer else None,
            replication_role=replication_role,
            removal_policy=RemovalPolicy.RETAIN,
        )
        if peer and replication_role:
            self._grant_replication(replication_role, source=Peer(self.bucket, key, self.region), destination=peer)
            self._replicate_back(peer)
        else:
            suppress(
                self.bucket,
                "This is the DR region's copy: the primary bucket replicates into it (RTC, 15 minutes), and this "
                "bucket replicates back to the primary under a rule the primary's Knowledge stack puts once both "
                "buckets exist (S3 refuses a rule to a bucket that does not exist yet, and this stack deploys "
                "first), so the rule is not in this template.",
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
        # SSE-KMS with this region's data key, as the documents: the chunks' text is in the vectors' metadata.
        # The key's policy admits S3 Vectors (its indexing service, and use via s3vectors: stacks/keys_stack.py).
        self.vector_bucket = s3vectors.CfnVectorBucket(
            self,
            "Vectors",
            encryption_configuration=s3vectors.CfnVectorBucket.EncryptionConfigurationProperty(
                sse_type="aws:kms", kms_key_arn=key.key_arn
            ),
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
        self._key_via(role, "VectorsKey", "s3vectors", ["kms:Decrypt"])
        self._key_via_s3(role, "DocumentsKeyToUpload", ["kms:GenerateDataKey", "kms:Decrypt"])
        self._suppress_prefix(role, "a user's documents are created at upload (documents/<user>/<document id>)")

    def grant_ingest(self, role: iam.IRole) -> None:
        """The ingest Lambda: read any version under documents/, write and delete vectors, embed chunks."""
        self._statement(role, "ReadDocuments", ["s3:GetObject", "s3:GetObjectVersion"], self._documents())
        self._key_via_s3(role, "DocumentsKeyToRead", ["kms:Decrypt"])
        self._suppress_prefix(role, "the ingest Lambda reads whichever document its S3 event names")
        self._statement(role, "WriteVectors", _VECTORS_WRITE, [self.index_arn])
        self._key_via(role, "VectorsKey", "s3vectors", ["kms:Decrypt"])
        self.grant_embed(role)

    def grant_retrieval(self, role: iam.IRole) -> None:
        """Chat and worker: embed the question, query this index (metadata returned, hence GetVectors)."""
        self._statement(role, "QueryVectors", _VECTORS_READ, [self.index_arn])
        self._key_via(role, "VectorsKey", "s3vectors", ["kms:Decrypt"])
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
        self._key_via(role, sid, "s3", actions)

    def _key_via(self, role: iam.IRole, sid: str, service: str, actions: list[str]) -> None:
        """The data key, only through `service` in this region (S3 Vectors needs kms:Decrypt for every vector
        operation, reads and writes alike)."""
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid=sid,
                actions=actions,
                resources=[self.key.key_arn],
                conditions={"StringEquals": {"kms:ViaService": f"{service}.{self.region}.amazonaws.com"}},
            )
        )

    # --- parts ------------------------------------------------------------------------------------------------
    def _read_replica(self, replica: KnowledgeStack) -> Peer:
        """The DR stack's bucket and key, read weakly: Fn::GetStackOutput of the DR stacks' outputs when this
        stack deploys. A strong reference across regions would put CDK's export writer into the DR stacks, a
        custom resource writing SSM parameters into this (primary) region whenever they deploy; static
        stability forbids that (tests/infra/test_static_stability.py)."""

        def weak(value: str) -> str:
            return Stack.consume_reference(value, ReferenceStrength.WEAK)

        cfn = replica.bucket.node.default_child  # the L2's name and ARN are wrapped: read the attributes
        if not isinstance(cfn, s3.CfnBucket):
            raise ValueError(f"{replica.bucket.node.path}: the DR documents bucket must be a Bucket defined there")
        bucket = s3.Bucket.from_bucket_attributes(
            self,
            "ReplicaDocuments",
            bucket_arn=weak(cfn.attr_arn),
            bucket_name=weak(cfn.ref),
            account=replica.account,  # the same account: S3 replication within it (no ownership override)
            region=replica.region,
        )
        return Peer(bucket, kms.Key.from_key_arn(self, "ReplicaKey", weak(replica.key.key_arn)), replica.region)

    def _replication(self, replica: Peer) -> list[s3.ReplicationRule]:
        """Everything under documents/ to the DR bucket: RTC (15 minutes, with its metrics), delete markers
        too (a delete in the primary is a delete in DR), re-encrypted with the DR region's key, and replica
        modification sync (the rule back, `_replicate_back`, has it too: two-way replication)."""
        return [
            s3.ReplicationRule(
                destination=replica.bucket,
                priority=1,
                filter=s3.Filter(prefix=DOCUMENTS_PREFIX),
                replication_time_control=s3.ReplicationTimeValue.FIFTEEN_MINUTES,
                metrics=s3.ReplicationTimeValue.FIFTEEN_MINUTES,
                delete_marker_replication=True,
                sse_kms_encrypted_objects=True,
                replica_modifications=True,
                kms_key=replica.key,
            )
        ]

    def _replicate_back(self, replica: Peer) -> None:
        """The DR bucket's rule back to this one: the same rule as `_replication`, reversed. Put here, in the
        stack deployed after both buckets exist, with PutBucketReplication in the DR region (S3 refuses a rule
        whose destination does not exist, so the DR stack, deployed first, cannot carry it), and removed with
        this stack. The role S3 assumes for it is this stack's too: IAM is global."""
        role = iam.Role(
            self,
            "FailBackReplicationRole",
            assumed_by=iam.ServicePrincipal("s3.amazonaws.com"),
            description="S3 replication of the DR documents bucket back to the primary region (fail-back)",
        )
        self._grant_replication(role, source=replica, destination=Peer(self.bucket, self.key, self.region))
        rule = {
            "ID": "FailBack",
            "Priority": 1,
            "Status": "Enabled",
            "Filter": {"Prefix": DOCUMENTS_PREFIX},
            "DeleteMarkerReplication": {"Status": "Enabled"},
            "SourceSelectionCriteria": {
                "SseKmsEncryptedObjects": {"Status": "Enabled"},
                "ReplicaModifications": {"Status": "Enabled"},
            },
            "Destination": {
                "Bucket": self.bucket.bucket_arn,
                "EncryptionConfiguration": {"ReplicaKmsKeyID": self.key.key_arn},
                "ReplicationTime": {"Status": "Enabled", "Time": {"Minutes": 15}},
                "Metrics": {"Status": "Enabled", "EventThreshold": {"Minutes": 15}},
            },
        }
        put = cr.AwsSdkCall(
            service="S3",
            action="putBucketReplication",
            region=replica.region,
            parameters={
                "Bucket": replica.bucket.bucket_name,
                "ReplicationConfiguration": {"Role": role.role_arn, "Rules": [rule]},
            },
            physical_resource_id=cr.PhysicalResourceId.of(f"{DOCUMENTS_PREFIX}fail-back"),
        )
        self.fail_back = cr.AwsCustomResource(
            self,
            "FailBackReplication",
            on_create=put,
            on_update=put,
            on_delete=cr.AwsSdkCall(
                service="S3",
                action="deleteBucketReplication",
                region=replica.region,
                parameters={"Bucket": replica.bucket.bucket_name},
            ),
            policy=cr.AwsCustomResourcePolicy.from_statements(
                [
                    # PutBucketReplication and DeleteBucketReplication are both s3:PutReplicationConfiguration.
                    iam.PolicyStatement(
                        actions=["s3:PutReplicationConfiguration"], resources=[replica.bucket.bucket_arn]
                    ),
                    iam.PolicyStatement(actions=["iam:PassRole"], resources=[role.role_arn]),
                ]
            ),
            install_latest_aws_sdk=False,
        )
        # The role's grants exist before S3 checks them (the role itself is already referenced by its ARN).
        self.fail_back.node.add_dependency(role.node.find_child("DefaultPolicy"))
        self.fail_back_rule = rule
        suppress(
            self.fail_back,
            "aws-cdk-lib writes the AwsCustomResource's statements (PutReplicationConfiguration on the DR "
            "documents bucket, PassRole on the fail-back replication role) into one inline policy of its role.",
            "NIST.800.53.R5-IAMNoInlinePolicy",
            "HIPAA.Security-IAMNoInlinePolicy",
            children=True,
        )
        suppress_cdk_provider(
            self,
            f"/{self.stack_name}/{AWS_CUSTOM_RESOURCE_PROVIDER}",
            "AwsCustomResource provider (puts the DR documents bucket's replication rule back to the primary)",
        )
        suppress_path(
            self,
            f"/{self.stack_name}/{AWS_CUSTOM_RESOURCE_PROVIDER}/LogGroup",
            "The deploy-time provider's log group holds its own requests (a bucket name, a role ARN, the rule), "
            "never a document; the logs key lives in the Keys stack and this stack is given only the data key, "
            "whose policy lets CloudWatch Logs decrypt, not encrypt.",
            "NIST.800.53.R5-CloudWatchLogGroupEncrypted",
            "HIPAA.Security-CloudWatchLogGroupEncrypted",
        )
        provider = self.node.find_child(AWS_CUSTOM_RESOURCE_PROVIDER)
        purpose = "CDK's AwsCustomResource provider (puts the DR bucket's fail-back replication rule)"
        for check, reason in {
            "CKV_AWS_115": f"{purpose} runs only when CloudFormation deploys this stack, one invocation per change; "
            "a reserved-concurrency limit would only make deploys fail.",
            "CKV_AWS_116": f"{purpose} is invoked synchronously by CloudFormation, which reports a failure and rolls "
            "back; a DLQ only receives asynchronous invocations.",
            "CKV_AWS_117": f"{purpose} calls only the public S3 API with IAM (PutReplicationConfiguration on the DR "
            "documents bucket); a VPC would add NAT or endpoint cost without narrowing it.",
        }.items():
            skip_checkov(provider, reason, check)
        skip_checkov(
            provider.node.find_child("LogGroup"),
            f"{purpose}: its log group holds the provider's own requests, never a document; this stack is given "
            "only the data key, whose policy lets CloudWatch Logs decrypt, not encrypt.",
            "CKV_AWS_158",
        )

    def _grant_replication(
        self,
        role: iam.Role,
        *,
        source: Peer,
        destination: Peer,
    ) -> None:
        """What S3 replication needs, exactly: read the source bucket's versions, write replicas into the
        destination bucket, decrypt with the source region's key and encrypt with the destination region's,
        each only through S3 there."""
        source_bucket, source_key, source_region = source
        destination_bucket, destination_key, destination_region = destination
        role.add_to_policy(
            iam.PolicyStatement(
                sid="ReadReplicationConfiguration",
                actions=["s3:GetReplicationConfiguration", "s3:ListBucket"],
                resources=[source_bucket.bucket_arn],
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="ReadVersionsToReplicate",
                actions=["s3:GetObjectVersionForReplication", "s3:GetObjectVersionAcl", "s3:GetObjectVersionTagging"],
                resources=[source_bucket.arn_for_objects(f"{DOCUMENTS_PREFIX}*")],
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="WriteReplicas",
                actions=["s3:ReplicateObject", "s3:ReplicateDelete", "s3:ReplicateTags"],
                resources=[destination_bucket.arn_for_objects(f"{DOCUMENTS_PREFIX}*")],
            )
        )
        for sid, actions, key, region in (
            ("DecryptSource", ["kms:Decrypt"], source_key, source_region),
            ("EncryptReplica", ["kms:Encrypt", "kms:GenerateDataKey"], destination_key, destination_region),
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
            "upload), so its object actions are on the documents/* prefix of the source and destination buckets.",
        )
        suppress(
            role,
            "CDK writes a role's grants into one inline policy attached only to this role; a separate managed "
            "policy would hold the same statements and be reusable where it must not be.",
            "NIST.800.53.R5-IAMNoInlinePolicy",
            "HIPAA.Security-IAMNoInlinePolicy",
            children=True,
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
# in an API stack, and the DR bucket by its weak reference (Fn::GetStackOutput of the DR stack's ARN output).
_DOCUMENTS_PREFIX_FINDING = RegexAppliesTo(
    regex=r"/^Resource::(<Documents[0-9A-F]+\.Arn>|[A-Za-z0-9-]+:ExportsOutputFnGetAttDocuments[0-9A-F]+Arn[0-9A-F]+"
    r'|\{"Fn::GetStackOutput":\{"StackName":"[A-Za-z0-9-]+","Region":"[a-z0-9-]+",'
    r'"OutputName":"PublishOutputFnGetAttDocuments[0-9A-F]+Arn[0-9A-F]+"\}\})\/documents\/\*$/'
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
# The singleton Lambda behind every AwsCustomResource of a stack.
AWS_CUSTOM_RESOURCE_PROVIDER = "AWS679f53fac002430cb0da5b7982bd2287"
