"""The sandbox answers end to end, and it is built from the templates (no drift)."""

from __future__ import annotations

import json
import time
import urllib.request
from typing import Any

import boto3

from local.sandbox import DEMO_PASSWORD, DEMO_USER
from local.templates import load
from tests.sandbox_fixture import call, sandbox, sign_in  # noqa: F401 - the fixture


def test_health_is_public_and_everything_else_needs_a_valid_token(sandbox: Any) -> None:  # noqa: F811
    assert call(sandbox, "GET", "/health")[:2] == (200, {"status": "ok", "region": "us-east-1"})
    status, body, _ = call(sandbox, "POST", "/chat", body={"message": "hi"})
    assert status == 401 and "sign in" in body["message"]
    forged = sign_in(sandbox, DEMO_USER, DEMO_PASSWORD)[:-5] + "xxxxx"
    assert call(sandbox, "GET", "/conversations", token=forged)[0] == 401
    # An unknown route answers as API Gateway does, before any token check.
    assert call(sandbox, "GET", "/nope", token=forged)[:2] == (
        403,
        {"message": "Missing Authentication Token: no route matches this method and path"},
    )


def test_sign_in_then_chat_end_to_end_and_the_history_is_kept(sandbox: Any) -> None:  # noqa: F811
    token = sign_in(sandbox, DEMO_USER, DEMO_PASSWORD)

    status, answer, _ = call(
        sandbox, "POST", "/chat", token=token,
        body={"message": "The Nile is the longest river. Which river is the longest?"},
    )  # fmt: skip

    assert status == 200 and answer["answer"] == "The Nile is the longest river."
    assert answer["target"] == {"model_id": "us.amazon.nova-lite-v1:0", "region": "us-east-1"}
    status, conversation, _ = call(sandbox, "GET", f"/conversations/{answer['conversation_id']}", token=token)
    assert status == 200 and conversation["turn_count"] == 1


def test_a_job_is_answered_by_the_worker_through_the_queue(sandbox: Any) -> None:  # noqa: F811
    token = sign_in(sandbox, DEMO_USER, DEMO_PASSWORD)
    status, job, _ = call(sandbox, "POST", "/jobs", token=token, body={"message": "Rome is in Italy. Where is Rome?"})
    assert status == 202
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        _, current, _ = call(sandbox, "GET", f"/jobs/{job['job_id']}", token=token)
        if current["status"] == "done":
            break
        time.sleep(0.2)
    assert current["status"] == "done" and current["result"]["answer"] == "Rome is in Italy."


def test_the_web_ui_and_its_runtime_config_are_served(sandbox: Any) -> None:  # noqa: F811
    with urllib.request.urlopen(sandbox.web_url + "/") as response:
        assert b'<script type="module" src="app.js">' in response.read()
    with urllib.request.urlopen(sandbox.web_url + "/config.json") as response:
        config = json.loads(response.read())
    assert config["clientId"] == sandbox.client_id and config["apiEndpoints"] == [sandbox.api_url]
    assert config["primaryTarget"] == {"model_id": "us.amazon.nova-lite-v1:0", "region": "us-east-1"}


def test_sandbox_resources_match_the_synthesized_templates(sandbox: Any, synth: Any) -> None:  # noqa: F811
    from pathlib import Path

    templates = load(Path(synth.app.outdir), "Bulwark-dev")
    dynamodb = boto3.client("dynamodb", endpoint_url=sandbox.aws_url, region_name="us-east-1")
    sqs = boto3.client("sqs", endpoint_url=sandbox.aws_url, region_name="us-east-1")
    for logical_id, spec in templates.tables.items():
        table = dynamodb.describe_table(TableName=logical_id)["Table"]
        assert table["KeySchema"] == spec.key_schema
        assert sorted(table["AttributeDefinitions"], key=str) == sorted(spec.attributes, key=str)
        ttl = dynamodb.describe_time_to_live(TableName=logical_id)["TimeToLiveDescription"]
        assert ttl.get("AttributeName") == spec.ttl_attribute
    for logical_id, spec in templates.queues.items():
        url = sqs.get_queue_url(QueueName=logical_id)["QueueUrl"]
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        assert int(attributes["VisibilityTimeout"]) == spec.visibility_timeout
        assert int(attributes["MessageRetentionPeriod"]) == spec.retention_s
        if spec.max_receive_count:
            redrive = json.loads(attributes["RedrivePolicy"])
            assert int(redrive["maxReceiveCount"]) == spec.max_receive_count
            assert redrive["deadLetterTargetArn"].endswith(f":{spec.dlq_logical_id}")
    for handler, env in (("handlers.chat.handler", sandbox.chat_env), ("handlers.worker.handler", sandbox.worker_env)):
        template_names = set(templates.function_by_handler(handler).environment)
        assert template_names <= set(env), template_names - set(env)
    # The table keys the unit tests use are the template's too (one more place that must not drift).
    assert templates.tables[next(k for k in templates.tables if k.startswith("Conversations"))].key_schema == [
        {"AttributeName": "pk", "KeyType": "HASH"},
        {"AttributeName": "sk", "KeyType": "RANGE"},
    ]


def test_make_invoke_runs_any_handler_against_the_running_sandbox(
    sandbox: Any,  # noqa: F811
    monkeypatch: Any,
    capsys: Any,
) -> None:
    from local import invoke
    from local import sandbox as sandbox_module

    monkeypatch.setattr(invoke, "STATE_FILE", sandbox_module.STATE_FILE)
    root = invoke.ROOT / "events"

    assert invoke.main(["chat", str(root / "chat-post.json")]) == 0
    chat = json.loads(capsys.readouterr().out)
    assert chat["statusCode"] == 200 and "Paris is the capital of France." in chat["body"]

    assert invoke.main(["chat", str(root / "chat-post-invalid.json")]) == 0
    assert json.loads(capsys.readouterr().out)["statusCode"] == 400

    assert invoke.main(["worker", str(root / "worker-sqs.json")]) == 0  # a job that does not exist
    assert json.loads(capsys.readouterr().out) == {"batchItemFailures": []}
