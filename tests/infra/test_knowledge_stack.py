"""Knowledge in both regions: the documents bucket (replicated with RTC from the primary), the ingest queue and
its notifications, the S3 Vectors index; the ingest Lambda in each API stack; every grant exact."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk.assertions import Match, Template

from adapters.s3vectors import NON_FILTERABLE_KEYS
from stacks.knowledge_stack import VISIBILITY_TIMEOUTS
from stacks.lambda_settings import ingest_sizing
from tests.infra.conftest import Synth
from tests.infra.test_constructs import CONFIG

KNOWLEDGE = {"Bulwark-dev-Knowledge": "us-east-1", "Bulwark-dev-Knowledge-DR": "us-west-2"}
API = {"Bulwark-dev-Api": "us-east-1", "Bulwark-dev-Api-DR": "us-west-2"}
INGEST = "handlers.ingest.handler"


def documents_bucket(template: Template) -> dict[str, Any]:
    buckets = template.find_resources("AWS::S3::Bucket")
    (bucket,) = [b for name, b in buckets.items() if name.startswith("Documents")]
    return bucket


def role_statements(template: Template, role_prefix: str) -> dict[str, dict[str, Any]]:
    """The statements of the policy attached to the role whose logical id starts with `role_prefix`, by Sid."""
    found: dict[str, dict[str, Any]] = {}
    for policy in template.find_resources("AWS::IAM::Policy").values():
        roles = json.dumps(policy["Properties"]["Roles"])
        if f'"{role_prefix}' in roles:
            for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
                found[statement.get("Sid", "")] = statement
    assert found, f"no policy for a role {role_prefix}*"
    return found


def actions(statement: dict[str, Any]) -> list[str]:
    value = statement["Action"]
    return sorted(value if isinstance(value, list) else [value])


def resources(statement: dict[str, Any]) -> list[Any]:
    value = statement["Resource"]
    return value if isinstance(value, list) else [value]


def joined(value: Any) -> str:
    """An ARN with its intrinsic parts shown as <...>, for reading (Fn::Join flattened)."""
    if isinstance(value, str):
        return value
    if "Fn::Join" in value:
        return "".join(joined(part) for part in value["Fn::Join"][1])
    return f"<{json.dumps(value)}>"


# --- the documents bucket -------------------------------------------------------------------------------------
@pytest.mark.parametrize("stack", KNOWLEDGE)
def test_documents_bucket_is_versioned_kms_encrypted_private_and_expires_old_versions(synth: Synth, stack: str) -> None:
    template = synth.template(stack)
    bucket = documents_bucket(template)
    props = bucket["Properties"]
    assert bucket["DeletionPolicy"] == "Retain"
    assert props["VersioningConfiguration"] == {"Status": "Enabled"}
    (encryption,) = props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert encryption["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
    assert encryption["ServerSideEncryptionByDefault"]["KMSMasterKeyID"]  # this region's data key
    assert all(props["PublicAccessBlockConfiguration"].values())
    assert "BucketName" not in props  # CloudFormation names it
    (rule,) = props["LifecycleConfiguration"]["Rules"]
    assert rule["NoncurrentVersionExpiration"] == {"NoncurrentDays": CONFIG.knowledge.noncurrent_version_days}
    assert props["LoggingConfiguration"]["DestinationBucketName"]["Ref"].startswith("AccessLogs")
    (cors,) = props["CorsConfiguration"]["CorsRules"]
    assert cors["AllowedMethods"] == ["POST"] and "Cdn" in json.dumps(cors["AllowedOrigins"])  # the site only
    tls_only = Match.object_like(
        {"Effect": "Deny", "Action": "s3:*", "Condition": {"Bool": {"aws:SecureTransport": "false"}}}
    )
    template.has_resource_properties(
        "AWS::S3::BucketPolicy",
        {"Bucket": {"Ref": Match.string_like_regexp("^Documents")}, "PolicyDocument": {
            "Statement": Match.array_with([tls_only]), "Version": Match.any_value()}},
    )  # fmt: skip


def test_only_the_primary_replicates_with_rtc_delete_markers_and_the_dr_key(synth: Synth) -> None:
    primary = documents_bucket(synth.template("Bulwark-dev-Knowledge"))["Properties"]
    (rule,) = primary["ReplicationConfiguration"]["Rules"]
    assert rule["Status"] == "Enabled" and rule["Filter"] == {"Prefix": "documents/"}
    assert rule["DeleteMarkerReplication"] == {"Status": "Enabled"}
    assert rule["SourceSelectionCriteria"] == {
        "SseKmsEncryptedObjects": {"Status": "Enabled"},
        "ReplicaModifications": {"Status": "Enabled"},  # two-way: replica modification sync
    }
    destination = rule["Destination"]
    assert destination["ReplicationTime"] == {"Status": "Enabled", "Time": {"Minutes": 15}}
    assert destination["Metrics"] == {"Status": "Enabled", "EventThreshold": {"Minutes": 15}}
    # The DR stack's bucket and the DR region's key, read from the DR stacks' outputs at this stack's deploy (weak
    # references: no writer in the DR stacks, static stability).
    assert stack_output(destination["Bucket"]) == ("Bulwark-dev-Knowledge-DR", "us-west-2")
    dr_key = destination["EncryptionConfiguration"]["ReplicaKmsKeyID"]
    assert stack_output(dr_key) == ("Bulwark-dev-Keys-DR", "us-west-2")
    # The DR bucket's own rule (back to the primary) is not in its template: the primary stack puts it.
    assert "ReplicationConfiguration" not in documents_bucket(synth.template("Bulwark-dev-Knowledge-DR"))["Properties"]
    # DR is deployed first: the primary's replication needs its bucket; the DR stack never needs the primary's.
    dr, primary = synth.stacks["Bulwark-dev-Knowledge-DR"], synth.stacks["Bulwark-dev-Knowledge"]
    assert dr in primary.dependencies and primary not in dr.dependencies


def stack_output(value: Any) -> tuple[str, str]:
    """The (stack, region) whose output a value reads with Fn::GetStackOutput."""
    output = value["Fn::GetStackOutput"]
    return output["StackName"], output["Region"]


def fail_back_call(template: Template, event: str) -> dict[str, Any]:
    """The AwsCustomResource's SDK call for `event` (Create, Update, Delete); intrinsics shown as <...> text."""

    def text(value: Any) -> str:
        if isinstance(value, str):
            return value
        if "Fn::Join" in value:
            return "".join(text(part) for part in value["Fn::Join"][1])
        (function, argument), *_ = value.items()
        return f"<{function} {' '.join(map(str, argument)) if isinstance(argument, list) else argument}>"

    (resource,) = template.find_resources("Custom::AWS").values()
    return dict(json.loads(text(resource["Properties"][event])))


def test_documents_uploaded_in_dr_replicate_back_to_the_primary_under_the_same_rule_reversed(synth: Synth) -> None:
    template = synth.template("Bulwark-dev-Knowledge")
    primary = documents_bucket(template)["Properties"]["ReplicationConfiguration"]["Rules"][0]
    put = fail_back_call(template, "Create")
    assert fail_back_call(template, "Update") == put
    assert (put["service"], put["action"], put["region"]) == ("S3", "putBucketReplication", "us-west-2")
    assert put["parameters"]["Bucket"].startswith("<Fn::GetStackOutput {'StackName': 'Bulwark-dev-Knowledge-DR'")
    (back,) = put["parameters"]["ReplicationConfiguration"]["Rules"]
    assert "FailBackReplicationRole" in put["parameters"]["ReplicationConfiguration"]["Role"]
    # The same rule as the primary's, reversed (local/knowledge.py's sandbox replicates both ways on this).
    for field in ("Status", "Filter", "DeleteMarkerReplication", "SourceSelectionCriteria", "Priority"):
        assert back[field] == primary[field], field
    for field in ("ReplicationTime", "Metrics"):
        assert back["Destination"][field] == primary["Destination"][field], field
    assert back["Destination"]["Bucket"].startswith("<Fn::GetAtt Documents")  # this (primary) bucket
    assert "Bulwark-dev-Keys:" in back["Destination"]["EncryptionConfiguration"]["ReplicaKmsKeyID"]  # primary key
    delete = fail_back_call(template, "Delete")
    assert (delete["action"], delete["region"]) == ("deleteBucketReplication", "us-west-2")

    # The provider may put exactly that rule on exactly that bucket, and pass exactly that role.
    (policy,) = [
        p
        for name, p in template.find_resources("AWS::IAM::Policy").items()
        if name.startswith("FailBackReplicationCustom")
    ]
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    assert sorted(actions(s)[0] for s in statements) == ["iam:PassRole", "s3:PutReplicationConfiguration"]
    assert all("*" not in joined(r) for s in statements for r in resources(s))
    # S3 assumes an unnamed role of its own that reads the DR bucket and writes into this one, each key via S3.
    statements = role_statements(template, "FailBackReplicationRole")
    assert set(statements) == {
        "ReadReplicationConfiguration", "ReadVersionsToReplicate", "WriteReplicas", "DecryptSource", "EncryptReplica"
    }  # fmt: skip
    for sid, region in (("DecryptSource", "us-west-2"), ("EncryptReplica", "us-east-1")):
        assert statements[sid]["Condition"] == {"StringEquals": {"kms:ViaService": f"s3.{region}.amazonaws.com"}}
    assert "Bulwark-dev-Knowledge-DR" in json.dumps(statements["ReadVersionsToReplicate"])
    assert "Documents" in json.dumps(statements["WriteReplicas"]) and "Exports" not in json.dumps(
        statements["WriteReplicas"]
    )


def test_the_replication_role_is_unnamed_and_uses_each_key_only_through_s3_in_its_region(synth: Synth) -> None:
    template = synth.template("Bulwark-dev-Knowledge")
    (role,) = [r for name, r in template.find_resources("AWS::IAM::Role").items() if name.startswith("Replication")]
    assert "RoleName" not in role["Properties"]
    statements = role_statements(template, "ReplicationRole")
    assert set(statements) == {
        "ReadReplicationConfiguration", "ReadVersionsToReplicate", "WriteReplicas", "DecryptSource", "EncryptReplica"
    }  # fmt: skip
    for sid, region in (("DecryptSource", "us-east-1"), ("EncryptReplica", "us-west-2")):
        assert statements[sid]["Condition"] == {"StringEquals": {"kms:ViaService": f"s3.{region}.amazonaws.com"}}
    for statement in statements.values():
        for resource in resources(statement):
            text = joined(resource)
            assert text != "*" and (not text.endswith("*") or text.endswith("/documents/*")), (statement, text)


# --- the ingest queue and what feeds it -----------------------------------------------------------------------
@pytest.mark.parametrize("stack", KNOWLEDGE)
def test_ingest_queue_has_a_dlq_a_long_visibility_and_the_buckets_notifications(synth: Synth, stack: str) -> None:
    template = synth.template(stack)
    queues = template.find_resources("AWS::SQS::Queue")
    (queue,) = [q for name, q in queues.items() if name.startswith("Ingest") and not name.startswith("IngestDlq")]
    (dlq_name,) = [name for name in queues if name.startswith("IngestDlq")]
    props = queue["Properties"]
    assert props["VisibilityTimeout"] == VISIBILITY_TIMEOUTS * CONFIG.knowledge.ingest_timeout_s
    assert props["VisibilityTimeout"] >= 6 * CONFIG.knowledge.ingest_timeout_s
    assert props["RedrivePolicy"] == {
        "deadLetterTargetArn": {"Fn::GetAtt": [dlq_name, "Arn"]},
        "maxReceiveCount": CONFIG.knowledge.max_receive_count,
    }
    for each in queues.values():
        assert each["Properties"]["SqsManagedSseEnabled"] is True
    for name in queues:
        template.has_resource_properties(
            "AWS::SQS::QueuePolicy",
            {"Queues": [{"Ref": name}], "PolicyDocument": Match.object_like({"Statement": Match.array_with([
                Match.object_like({"Effect": "Deny", "Condition": {"Bool": {"aws:SecureTransport": "false"}}})])})},
        )  # fmt: skip
    (notifications,) = template.find_resources("Custom::S3BucketNotifications").values()
    configurations = notifications["Properties"]["NotificationConfiguration"]["QueueConfigurations"]
    assert sorted(event for c in configurations for event in c["Events"]) == [
        "s3:ObjectCreated:*",
        "s3:ObjectRemoved:*",  # deletes and delete markers
    ]
    for configuration in configurations:
        assert configuration["Filter"] == {"Key": {"FilterRules": [{"Name": "prefix", "Value": "documents/"}]}}
        assert configuration["QueueArn"]["Fn::GetAtt"][0].startswith("Ingest")
    # Only this bucket may publish to the queue.
    bucket_arn = {"Fn::GetAtt": [Match.string_like_regexp("^Documents"), "Arn"]}
    template.has_resource_properties(
        "AWS::SQS::QueuePolicy",
        {"PolicyDocument": Match.object_like({"Statement": Match.array_with([Match.object_like({
            "Principal": {"Service": "s3.amazonaws.com"}, "Condition": {"ArnLike": {"aws:SourceArn": bucket_arn}},
        })])})},
    )  # fmt: skip


# --- the vector store -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("stack", KNOWLEDGE)
def test_vector_bucket_and_index_match_the_embedding_and_the_adapter(synth: Synth, stack: str) -> None:
    template = synth.template(stack)
    template.resource_count_is("AWS::S3Vectors::VectorBucket", 1)
    (index,) = template.find_resources("AWS::S3Vectors::Index").values()
    props = index["Properties"]
    assert props["DataType"] == "float32" and props["DistanceMetric"] == "cosine"
    assert props["Dimension"] == CONFIG.knowledge.dimensions
    assert props["MetadataConfiguration"] == {"NonFilterableMetadataKeys": list(NON_FILTERABLE_KEYS)}
    assert "IndexName" not in props and "VectorBucketName" not in props  # CloudFormation names them
    # Encrypted with this region's data key, as the documents are (the chunks' text is vector metadata).
    (bucket,) = template.find_resources("AWS::S3Vectors::VectorBucket").values()
    encryption = bucket["Properties"]["EncryptionConfiguration"]
    assert encryption["SseType"] == "aws:kms"
    keys = "Bulwark-dev-Keys:" if stack == "Bulwark-dev-Knowledge" else "Keys-DR"
    assert keys in json.dumps(encryption["KmsKeyArn"])
    (documents,) = documents_bucket(template)["Properties"]["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert documents["ServerSideEncryptionByDefault"]["KMSMasterKeyID"] == encryption["KmsKeyArn"]
    outputs = template.find_outputs("*")
    assert {"DocumentsBucketName", "IngestQueueUrl", "IngestDlqUrl", "VectorBucketName", "VectorIndexName",
            "VectorIndexArn"} <= set(outputs)  # fmt: skip


# --- the ingest Lambda ------------------------------------------------------------------------------------------
def ingest_function(template: Template) -> tuple[str, dict[str, Any]]:
    functions = template.find_resources("AWS::Lambda::Function", {"Properties": {"Handler": INGEST}})
    (found,) = functions.items()
    return found


@pytest.mark.parametrize("stack", API)
def test_the_ingest_lambda_is_sized_from_the_embedding_quota_and_configured_from_the_contract(
    synth: Synth, stack: str
) -> None:
    template = synth.template(stack)
    sizing = ingest_sizing(CONFIG)
    _, function = ingest_function(template)
    props = function["Properties"]
    assert props["Timeout"] == CONFIG.knowledge.ingest_timeout_s
    assert props["ReservedConcurrentExecutions"] == sizing.max_concurrency >= 2
    template.has_resource_properties(
        "AWS::Lambda::EventSourceMapping",
        {
            "BatchSize": 1,
            "FunctionResponseTypes": ["ReportBatchItemFailures"],
            "ScalingConfig": {"MaximumConcurrency": sizing.max_concurrency},
            "EventSourceArn": {"Fn::ImportValue": Match.string_like_regexp("Knowledge.*Ingest")},
        },
    )
    env = props["Environment"]["Variables"]
    assert float(env["EMBED_RATE_PER_SECOND"]) * sizing.max_concurrency == pytest.approx(
        CONFIG.knowledge.embeds_per_second, rel=1e-3
    )
    assert env["CHUNK_CHARS"] == str(CONFIG.knowledge.chunk_chars)
    assert env["MAX_RECEIVE_COUNT"] == str(CONFIG.knowledge.max_receive_count)
    assert env["EMBEDDING_DIMENSIONS"] == str(CONFIG.knowledge.dimensions)
    assert float(env["INGEST_DEADLINE_SECONDS"]) < CONFIG.knowledge.ingest_timeout_s
    for name in ("DOCUMENTS_TABLE_NAME", "DOCUMENTS_BUCKET", "VECTOR_BUCKET_NAME", "VECTOR_INDEX_NAME"):
        assert not isinstance(env[name], str), name  # a reference to the deployed resource, never a literal name
    # The chat and worker Lambdas find the same documents and index.
    for handler in ("handlers.chat.handler", "handlers.worker.handler"):
        (other,) = template.find_resources("AWS::Lambda::Function", {"Properties": {"Handler": handler}}).values()
        variables = other["Properties"]["Environment"]["Variables"]
        for name in ("DOCUMENTS_TABLE_NAME", "DOCUMENTS_BUCKET", "VECTOR_BUCKET_NAME", "VECTOR_INDEX_NAME"):
            assert variables[name] == env[name], (handler, name)


@pytest.mark.parametrize("stack", API)
def test_the_ingest_role_has_exactly_what_it_needs(synth: Synth, stack: str) -> None:
    template = synth.template(stack)
    region = API[stack]
    statements = role_statements(template, "IngestFunctionRole")
    assert actions(statements["ConsumeIngestQueue"]) == [
        "sqs:ChangeMessageVisibility", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ReceiveMessage",
    ]  # fmt: skip
    assert actions(statements["ReadDocuments"]) == ["s3:GetObject", "s3:GetObjectVersion"]
    (documents,) = resources(statements["ReadDocuments"])
    assert joined(documents).endswith("/documents/*")
    assert actions(statements["WriteVectors"]) == [
        "s3vectors:DeleteVectors", "s3vectors:GetVectors", "s3vectors:ListVectors", "s3vectors:PutVectors",
        "s3vectors:QueryVectors",
    ]  # fmt: skip
    (index,) = resources(statements["WriteVectors"])
    assert "IndexArn" in json.dumps(index) or "Index" in json.dumps(index)
    assert actions(statements["Documents"]) == [
        "dynamodb:DeleteItem", "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query", "dynamodb:UpdateItem",
    ]  # fmt: skip
    (model,) = resources(statements["InvokeEmbeddingModel"])
    assert joined(model).endswith(f":bedrock:{region}::foundation-model/{CONFIG.knowledge.embedding_model_id}")
    assert statements["DocumentsKeyToRead"]["Condition"] == {
        "StringEquals": {"kms:ViaService": f"s3.{region}.amazonaws.com"}
    }
    assert statements["TableKey"]["Condition"] == {
        "StringEquals": {"kms:ViaService": f"dynamodb.{region}.amazonaws.com"}
    }
    assert_vectors_key(statements, region)
    _no_wildcards_but_xray_and_the_documents_prefix(statements)


def assert_vectors_key(statements: dict[str, dict[str, Any]], region: str) -> None:
    """The vector bucket's key: decrypt only (S3 Vectors needs it for every vector operation), only via S3 Vectors."""
    assert actions(statements["VectorsKey"]) == ["kms:Decrypt"]
    assert statements["VectorsKey"]["Condition"] == {
        "StringEquals": {"kms:ViaService": f"s3vectors.{region}.amazonaws.com"}
    }


@pytest.mark.parametrize("stack", API)
def test_the_chat_and_worker_roles_get_exact_knowledge_grants(synth: Synth, stack: str) -> None:
    template = synth.template(stack)
    region = API[stack]
    chat = role_statements(template, "ChatRole")
    assert actions(chat["UploadAndDeleteDocuments"]) == ["s3:DeleteObject", "s3:PutObject"]
    (documents,) = resources(chat["UploadAndDeleteDocuments"])
    assert joined(documents).endswith("/documents/*")
    assert actions(chat["DocumentsKeyToUpload"]) == ["kms:Decrypt", "kms:GenerateDataKey"]
    assert chat["DocumentsKeyToUpload"]["Condition"] == {
        "StringEquals": {"kms:ViaService": f"s3.{region}.amazonaws.com"}
    }
    assert actions(chat["Documents"]) == [
        "dynamodb:DeleteItem", "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query", "dynamodb:UpdateItem",
    ]  # fmt: skip
    assert actions(chat["QueryVectors"]) == ["s3vectors:GetVectors", "s3vectors:QueryVectors"]
    assert actions(chat["DeleteDocumentVectors"]) == ["s3vectors:DeleteVectors"]  # DELETE /documents/{id}
    assert "WriteVectors" not in chat and "ReadDocuments" not in chat
    assert_vectors_key(chat, region)
    (model,) = resources(chat["InvokeEmbeddingModel"])
    assert joined(model).endswith(f":bedrock:{region}::foundation-model/{CONFIG.knowledge.embedding_model_id}")
    _no_wildcards_but_xray_and_the_documents_prefix(chat)

    worker = role_statements(template, "JobsWorkerRole")
    assert actions(worker["QueryVectors"]) == ["s3vectors:GetVectors", "s3vectors:QueryVectors"]
    assert actions(worker["Documents"]) == ["dynamodb:GetItem", "dynamodb:Query"]
    assert "InvokeEmbeddingModel" in worker
    assert_vectors_key(worker, region)
    assert not {"UploadAndDeleteDocuments", "DeleteDocumentVectors", "WriteVectors"} & set(worker)
    _no_wildcards_but_xray_and_the_documents_prefix(worker)


def _no_wildcards_but_xray_and_the_documents_prefix(statements: dict[str, dict[str, Any]]) -> None:
    for statement in statements.values():
        assert all("*" not in action for action in actions(statement)), statement
        for resource in resources(statement):
            text = joined(resource)
            if text == "*":
                assert all(a.startswith("xray:") for a in actions(statement)), statement
            else:
                assert "*" not in text or text.endswith("/documents/*"), (statement, text)


@pytest.mark.parametrize("stack", API)
def test_ingest_dlq_depth_and_oldest_message_alarm_to_the_api_topic(synth: Synth, stack: str) -> None:
    template = synth.template(stack)
    alarms = {name: a for name, a in template.find_resources("AWS::CloudWatch::Alarm").items() if "Ingest" in name}
    metrics = sorted(a["Properties"]["MetricName"] for a in alarms.values())
    assert metrics == ["ApproximateAgeOfOldestMessage", "ApproximateNumberOfMessagesVisible"]
    for alarm in alarms.values():
        assert alarm["Properties"]["AlarmActions"] and alarm["Properties"]["OKActions"]


@pytest.mark.parametrize("stack", ["Bulwark-dev-Keys", "Bulwark-dev-Keys-DR"])
def test_the_data_key_may_be_used_through_s3_and_s3_vectors(synth: Synth, stack: str) -> None:
    region = synth.stacks[stack].region
    text = json.dumps(synth.template(stack).to_json())
    assert f"s3.{region}.amazonaws.com" in text and f"s3vectors.{region}.amazonaws.com" in text
    assert "indexing.s3vectors.amazonaws.com" in text


def test_without_knowledge_there_are_no_knowledge_stacks_no_ingest_and_no_document_names() -> None:
    from aws_cdk import App, Stack

    from app import build_app
    from tests.infra.conftest import cdk_context

    app = App(context=cdk_context(knowledge={"enabled": False}))
    build_app(app, nag=False)
    stacks = {child.node.id: child for child in app.node.children if isinstance(child, Stack)}
    assert not [name for name in stacks if "Knowledge" in name]
    template = Template.from_stack(stacks["Bulwark-dev-Api"])
    assert not template.find_resources("AWS::Lambda::Function", {"Properties": {"Handler": INGEST}})
    (chat,) = template.find_resources("AWS::Lambda::Function", {"Properties": {"Handler": "handlers.chat.handler"}})
    variables = template.find_resources("AWS::Lambda::Function")[chat]["Properties"]["Environment"]["Variables"]
    assert "DOCUMENTS_BUCKET" not in variables and "VECTOR_INDEX_NAME" not in variables
