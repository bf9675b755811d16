"""Knowledge end to end in the sandbox, both regions: upload with the presigned POST, S3 events to each region's
ingest Lambda, replication to the DR bucket, a cited answer, deletion in both regions, tenant isolation.

Every wait is on an observable state (the API, the DR bucket, the index), bounded by a generous guard."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

import boto3
import pytest

from local.polling import wait_until
from local.sandbox import DEMO_PASSWORD, DEMO_USER
from local.users import signed_in_users
from tests.sandbox_fixture import call, sandbox, sign_in  # noqa: F401 - the fixture
from tools.drill import post_presigned

T = TypeVar("T")
FINAL = ("ready", "done", "failed")
GUARD_S = 90.0  # generous: ingest paces its embedding calls, and the emulator adds model latency

DOCUMENT = (
    b"Bulwark field notes.\n\n"
    b"The Quokkaville lighthouse keeper is named Ottoline Marsh. "
    b"She has kept the Quokkaville lighthouse since the great storm of 1987.\n\n"
    b"Tides at the harbour turn twice a day."
)


def wait_for(condition: Callable[[], T | None], what: str, *, guard_s: float = GUARD_S) -> T:
    """Poll until `condition()` returns something truthy; fail after the guard with what was awaited."""
    value = wait_until(condition, ceiling_s=guard_s, poll_s=0.2)
    if not value:
        pytest.fail(f"gave up waiting for {what}")
    return value


def upload_document(
    sandbox: Any,  # noqa: F811
    token: str,
    *,
    name: str,
    data: bytes = DOCUMENT,
    content_type: str = "text/plain",
) -> dict[str, Any]:
    """POST /documents, then the file with the presigned form it gives, as the web UI does: the document created."""
    status, created, _ = call(
        sandbox, "POST", "/documents", token=token, body={"name": name, "content_type": content_type, "size": len(data)}
    )
    assert status == 201, created
    assert post_presigned(created["upload"], data, content_type, filename="notes.txt") in (200, 201, 204)
    return dict(created["document"])


def wait_final(sandbox: Any, token: str, path: str, what: str) -> dict[str, Any]:  # noqa: F811
    """GET `path` until its status is final (a document ready, a job done, either failed): that body."""
    return wait_for(
        lambda: (body := call(sandbox, "GET", path, token=token)[1]) and body["status"] in FINAL and body, what
    )


def vectors_of(sandbox: Any, region: str, document_id: str) -> list[dict[str, Any]]:  # noqa: F811
    names = sandbox.knowledge[region]
    client = boto3.client("s3vectors", endpoint_url=sandbox.vectors_url, region_name=region)
    found = []
    for page in client.get_paginator("list_vectors").paginate(
        vectorBucketName=names["vector_bucket"], indexName=names["vector_index"], returnMetadata=True
    ):
        found += [v for v in page["vectors"] if v.get("metadata", {}).get("document_id") == document_id]
    return found


def test_a_document_is_ingested_in_both_regions_cited_in_answers_and_deleted_everywhere(sandbox: Any) -> None:  # noqa: F811
    assert set(sandbox.knowledge) == {"us-east-1", "us-west-2"}
    token = sign_in(sandbox, DEMO_USER, DEMO_PASSWORD)

    # GIVEN an upload form from the API, used as the web UI does
    document = upload_document(sandbox, token, name="field-notes.txt")
    document_id = document["document_id"]
    assert document["status"] == "uploading"

    # WHEN the primary region's pipeline has ingested it
    ready = wait_final(sandbox, token, f"/documents/{document_id}", "the document to reach a terminal state")
    assert ready["status"] == "ready", ready
    assert ready["chunk_count"] >= 1

    # THEN an answer that needs the document cites it
    status, answer, _ = call(
        sandbox, "POST", "/chat", token=token, body={"message": "Who is the Quokkaville lighthouse keeper?"}
    )
    assert status == 200, answer
    assert "Ottoline Marsh" in answer["answer"]
    assert any(c["document_id"] == document_id for c in answer["citations"]), answer
    assert vectors_of(sandbox, "us-east-1", document_id)

    # AND S3 replication put it in the DR bucket, whose own pipeline indexed it in the DR index
    s3_dr = boto3.client("s3", endpoint_url=sandbox.aws_url, region_name="us-west-2")
    dr_bucket = sandbox.knowledge["us-west-2"]["documents_bucket"]
    key = f"documents/{_owner(token)}/{document_id}"
    replica = wait_for(lambda: _object(s3_dr, dr_bucket, key), "the replica in the DR bucket")
    assert replica == DOCUMENT
    dr_vectors = wait_for(lambda: vectors_of(sandbox, "us-west-2", document_id), "vectors in the DR index")
    assert len(dr_vectors) == len(vectors_of(sandbox, "us-east-1", document_id))

    # AND another user neither sees nor retrieves nor deletes it
    (other,) = signed_in_users(sandbox, 1, prefix=f"other-{uuid.uuid4().hex[:6]}", password=DEMO_PASSWORD)
    assert call(sandbox, "GET", f"/documents/{document_id}", token=other)[0] == 404
    assert all(d["document_id"] != document_id for d in call(sandbox, "GET", "/documents", token=other)[1]["documents"])
    status, theirs, _ = call(
        sandbox, "POST", "/chat", token=other, body={"message": "Who is the Quokkaville lighthouse keeper?"}
    )
    assert status == 200 and not theirs["citations"] and "Ottoline" not in theirs["answer"]
    assert call(sandbox, "DELETE", f"/documents/{document_id}", token=other)[0] == 404
    assert vectors_of(sandbox, "us-east-1", document_id)

    # WHEN the owner deletes it, THEN its vectors go in both regions (DR: through the replicated delete marker)
    assert call(sandbox, "DELETE", f"/documents/{document_id}", token=token)[0] in (200, 204)
    assert not vectors_of(sandbox, "us-east-1", document_id)
    wait_for(lambda: not vectors_of(sandbox, "us-west-2", document_id), "the DR index to lose the vectors")
    assert _object(s3_dr, dr_bucket, key) is None  # the delete marker was replicated
    assert call(sandbox, "GET", f"/documents/{document_id}", token=token)[0] == 404


def test_a_new_version_replaces_the_old_one_in_both_regions(sandbox: Any) -> None:  # noqa: F811
    """Two versions of one key, in order: each region ends on the newer one (the notifier's sequencers grow)."""
    token = sign_in(sandbox, DEMO_USER, DEMO_PASSWORD)
    first = b"The Brackenfold ferry leaves at dawn."
    document_id = upload_document(sandbox, token, name="ferry.txt", data=first)["document_id"]
    wait_for(lambda: _texts(sandbox, "us-west-2", document_id) == {first.decode()}, "the first version in DR")

    second = b"The Brackenfold ferry leaves at noon."
    key = f"documents/{_owner(token)}/{document_id}"
    s3 = boto3.client("s3", endpoint_url=sandbox.aws_url, region_name="us-east-1")
    s3.put_object(
        Bucket=sandbox.knowledge["us-east-1"]["documents_bucket"], Key=key, Body=second, ContentType="text/plain"
    )

    for region in ("us-east-1", "us-west-2"):
        wait_for(lambda r=region: _texts(sandbox, r, document_id) == {second.decode()}, f"the new version in {region}")
    assert call(sandbox, "GET", f"/documents/{document_id}", token=token)[1]["status"] == "ready"
    assert call(sandbox, "DELETE", f"/documents/{document_id}", token=token)[0] in (200, 204)


def test_a_document_written_in_dr_replicates_back_to_the_primary_and_is_indexed_there(sandbox: Any) -> None:  # noqa: F811
    """Fail-back loses no document: what is uploaded in DR during an outage reaches the primary bucket (the
    fail-back rule) and its index, once; the replica is not replicated back to DR."""
    owner, document_id = str(uuid.uuid4()), str(uuid.uuid4())
    key = f"documents/{owner}/{document_id}"
    text = b"The Wrenmoor archive was moved to the east wing during the outage."
    s3_dr = boto3.client("s3", endpoint_url=sandbox.aws_url, region_name="us-west-2")
    s3_primary = boto3.client("s3", endpoint_url=sandbox.aws_url, region_name="us-east-1")
    dr_bucket = sandbox.knowledge["us-west-2"]["documents_bucket"]
    primary_bucket = sandbox.knowledge["us-east-1"]["documents_bucket"]

    s3_dr.put_object(Bucket=dr_bucket, Key=key, Body=text, ContentType="text/plain")

    assert wait_for(lambda: _object(s3_primary, primary_bucket, key), "the replica in the primary bucket") == text
    wait_for(lambda: vectors_of(sandbox, "us-east-1", document_id), "vectors in the primary index")
    wait_for(lambda: vectors_of(sandbox, "us-west-2", document_id), "vectors in the DR index")
    for s3, bucket in ((s3_dr, dr_bucket), (s3_primary, primary_bucket)):
        listing = s3.list_object_versions(Bucket=bucket, Prefix=key)
        assert len(listing.get("Versions", [])) == 1, bucket  # one upload, one replica: no loop


def test_make_invoke_runs_either_regions_ingest_lambda_against_the_sandbox(
    sandbox: Any,  # noqa: F811
    monkeypatch: Any,
    capsys: Any,
    tmp_path: Any,
) -> None:
    from local import invoke
    from local import sandbox as sandbox_module

    monkeypatch.setattr(invoke, "STATE_FILE", sandbox_module.STATE_FILE)
    sample = invoke.ROOT / "events" / "ingest-sqs.json"

    # The sample names a document that does not exist: skipped, not failed, in either region.
    assert invoke.main(["ingest", str(sample)]) == 0
    assert json.loads(capsys.readouterr().out) == {"batchItemFailures": []}
    assert invoke.main(["ingest", str(sample), "--region", "us-west-2"]) == 0
    assert json.loads(capsys.readouterr().out) == {"batchItemFailures": []}

    # A body that is not an S3 notification is a poison message: reported, so SQS moves it towards the DLQ.
    event = json.loads(sample.read_text())
    event["Records"][0]["body"] = "not json"
    poison = tmp_path / "poison.json"
    poison.write_text(json.dumps(event))
    assert invoke.main(["ingest", str(poison)]) == 0
    assert json.loads(capsys.readouterr().out) == {"batchItemFailures": [{"itemIdentifier": "sample-ingest-message-1"}]}

    # A real object, named in the sample's shape, is indexed by the invoked Lambda in that region (in a bucket of
    # its own, so that the sandbox's own pipeline, which watches the documents buckets, does not race it).
    owner, document_id = str(uuid.uuid4()), str(uuid.uuid4())
    key, bucket = f"documents/{owner}/{document_id}", f"invoke-{uuid.uuid4().hex[:12]}"
    s3 = boto3.client("s3", endpoint_url=sandbox.aws_url, region_name="us-east-1")
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    put = s3.put_object(Bucket=bucket, Key=key, ContentType="text/plain", Body=b"The Hollowmere beacon is lit at dusk.")
    body = json.loads(json.loads(sample.read_text())["Records"][0]["body"])
    body["Records"][0]["s3"]["bucket"]["name"] = bucket
    body["Records"][0]["s3"]["object"].update(key=key, versionId=put["VersionId"])
    event["Records"][0]["body"] = json.dumps(body)
    real = tmp_path / "real.json"
    real.write_text(json.dumps(event))
    assert invoke.main(["ingest", str(real)]) == 0
    assert json.loads(capsys.readouterr().out) == {"batchItemFailures": []}
    assert vectors_of(sandbox, "us-east-1", document_id)  # indexed by the time the invocation returned


def test_the_notifiers_records_are_what_the_ingest_lambda_parses() -> None:
    from datetime import UTC, datetime

    from handlers.ingest import object_events
    from local.knowledge import BucketEvents, _Entry

    events = BucketEvents(
        s3=None, sqs=None, bucket="docs", region="us-west-2", notifications=[], sequencer=iter(range(5, 99)).__next__
    )
    at = datetime.now(UTC)
    created = _Entry(key="documents/u 1/d1", version_id="v1", delete_marker=False, latest=False, last_modified=at,
                     size=3, etag="abc")  # fmt: skip
    removed = _Entry(key="documents/u 1/d1", version_id="v2", delete_marker=True, latest=True, last_modified=at)
    body = {
        "Records": [
            events.record("ObjectCreated:Put", created, configuration="c"),
            events.record("ObjectRemoved:DeleteMarkerCreated", removed, configuration="c"),
        ]
    }

    first, second = object_events(json.dumps(body))

    assert (first.created, first.owner, first.document_id, first.version_id, first.etag) == (
        True, "u 1", "d1", "v1", "abc",
    )  # fmt: skip
    assert (second.created, second.version_id) == (False, "v2")
    assert second.sequencer > first.sequencer and len(second.sequencer) == len(first.sequencer)
    assert body["Records"][0]["s3"]["object"]["key"] == "documents/u+1/d1"  # URL-encoded, as S3 sends keys


def test_sandbox_knowledge_resources_match_the_templates(sandbox: Any, synth: Any) -> None:  # noqa: F811
    from pathlib import Path

    from local.templates import load

    templates = load(Path(synth.app.outdir), "Bulwark-dev")
    assert [spec.region for spec in templates.knowledge] == ["us-east-1", "us-west-2"]
    for spec in templates.knowledge:
        names = sandbox.knowledge[spec.region]
        s3 = boto3.client("s3", endpoint_url=sandbox.aws_url, region_name=spec.region)
        assert s3.get_bucket_versioning(Bucket=names["documents_bucket"])["Status"] == "Enabled"
        vectors = boto3.client("s3vectors", endpoint_url=sandbox.vectors_url, region_name=spec.region)
        index = vectors.get_index(vectorBucketName=names["vector_bucket"], indexName=names["vector_index"])["index"]
        assert index["dimension"] == spec.dimension and index["distanceMetric"] == spec.distance_metric
        assert index["metadataConfiguration"]["nonFilterableMetadataKeys"] == list(spec.non_filterable_keys)
        sqs = boto3.client("sqs", endpoint_url=sandbox.aws_url, region_name=spec.region)
        attributes = sqs.get_queue_attributes(QueueUrl=names["queue_url"], AttributeNames=["All"])["Attributes"]
        assert int(attributes["VisibilityTimeout"]) == spec.queue.visibility_timeout
        assert f":{spec.region}:" in attributes["QueueArn"]
    assert sandbox.chat_env["DOCUMENTS_BUCKET"] == sandbox.knowledge["us-east-1"]["documents_bucket"]
    assert sandbox.chat_env["VECTOR_BUCKET_NAME"] == sandbox.knowledge["us-east-1"]["vector_bucket"]


def _owner(token: str) -> str:
    """The caller's Cognito sub (the documents/<sub>/ prefix), from the ID token's payload."""
    import base64

    payload = token.split(".")[1]
    return str(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["sub"])


def _texts(sandbox: Any, region: str, document_id: str) -> set[str]:  # noqa: F811
    return {v["metadata"].get("_page_content", "") for v in vectors_of(sandbox, region, document_id)}


def _object(s3: Any, bucket: str, key: str) -> bytes | None:
    try:
        return bytes(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    except s3.exceptions.NoSuchKey:
        return None
    except Exception as error:  # a delete marker answers 404 (NoSuchKey) or, with moto, a ClientError
        if getattr(error, "response", {}).get("ResponseMetadata", {}).get("HTTPStatusCode") in (404, 405):
            return None
        raise
