"""The whole app on one machine, with no AWS account: `make dev` runs this.

Starts moto's server (the embedded AWS), the Bedrock emulator and the S3 Vectors emulator as processes,
creates the tables, queues and user pool from the synthesized templates and both regions' knowledge side
(documents buckets, S3 events, replication to DR, vector indexes, ingest Lambdas: local/knowledge.py),
runs the real Lambda handlers in-process behind a local API that routes exactly the template's routes
with events shaped as API Gateway sends them (Cognito ID tokens verified like the authorizer does), pumps
SQS into the worker like the event source mapping, and serves the web UI. Local mode swaps endpoints, not code: the
handlers' botocore clients find moto and the emulator through AWS_ENDPOINT_URL_* variables.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
import warnings
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
warnings.filterwarnings("ignore", message="No application metrics to publish")

from handlers.settings import Settings  # noqa: E402
from local.api_server import LocalApi  # noqa: E402
from local.lambda_context import LocalContext  # noqa: E402
from local.lambda_pool import ExecutionEnvironments  # noqa: E402
from local.templates import Templates, load  # noqa: E402
from stacks.csp import content_security_policy  # noqa: E402
from stacks.lambda_settings import chain_settings  # noqa: E402

DEMO_USER = "demo@bulwark.local"
DEMO_PASSWORD = "Demo-Passw0rd!2026"  # meets the template's password policy
LOCAL_GUARDRAIL = ("localguardrail", "1")  # a valid guardrail id: the emulator checks ApplyGuardrail's like Bedrock
STATE_FILE = ROOT / ".sandbox" / "state.json"
SANDBOX_DATA_READ_TIMEOUT_S = 3.0


@dataclass
class Sandbox:
    api_url: str
    web_url: str
    aws_url: str
    emulator_url: str
    region: str
    user_pool_id: str
    client_id: str
    queue_url: str
    dlq_url: str
    chat_env: dict[str, str]
    worker_env: dict[str, str]
    stack: ExitStack = field(repr=False)
    vectors_url: str = ""  # the S3 Vectors emulator
    knowledge: dict[str, dict[str, str]] = field(default_factory=dict)  # region -> local knowledge names

    def stop(self) -> None:
        self.stack.close()


def _progress(message: str) -> None:
    print(f"==> {message}", flush=True)


def start(
    *,
    port: int = 0,
    cdk_out: Path = ROOT / "cdk.out.local",
    progress: Callable[[str], None] = _progress,
    emulator_config: Path = ROOT / "local" / "emulator.json",
) -> Sandbox:
    import boto3

    from local.knowledge import start_knowledge
    from local.processes import emulator_process, moto_server, s3vectors_process
    from stacks.config import CONTEXT_KEY, AppConfig

    started = time.monotonic()
    config = AppConfig.from_context(json.loads((ROOT / "cdk.json").read_text())["context"][CONTEXT_KEY])
    region = config.primary_region
    templates = load(cdk_out, config.prefix)
    progress(f"templates read from {cdk_out.name}: {len(templates.tables)} tables, {len(templates.queues)} queues, "
             f"{len(templates.routes)} routes")  # fmt: skip
    stack = ExitStack()
    try:
        aws_url = stack.enter_context(moto_server())
        progress(f"embedded AWS (moto server) at {aws_url}")
        emulator_url = stack.enter_context(emulator_process(emulator_config))
        progress(f"Bedrock emulator at {emulator_url}")
        vectors_url = stack.enter_context(s3vectors_process())
        progress(f"S3 Vectors emulator at {vectors_url}")
        os.environ.update(_aws_environment(aws_url, emulator_url, region, vectors_url))
        session = boto3.Session(region_name=region)
        names = _provision_tables(session.client("dynamodb"), templates)
        queues = _provision_queues(session.client("sqs"), templates)
        pool_id, client_id = _provision_users(session.client("cognito-idp"), templates, config.prefix)
        progress(f"created {len(names)} tables, {len(queues)} queues, user pool {pool_id} from the templates")
        chat_env = _function_env(templates, "handlers.chat.handler", names, queues, config, region)
        worker_env = _function_env(templates, "handlers.worker.handler", names, queues, config, region)
        api = LocalApi(templates, region, aws_url, pool_id, client_id, port)
        chat_env["ALLOWED_ORIGIN"] = api.url  # the web UI and the API share this one origin
        os.environ.update(chat_env)  # as Lambda would set it before the module's cold start
        knowledge = start_knowledge(
            templates, stack=stack, tables=names, table_region=region, origin=api.url, progress=progress
        )
        api.invoke = _api_environments(templates, chat_env)
        api.static_headers["Content-Security-Policy"] = content_security_policy(connect=[aws_url])
        primary = config.chain_for(region)[0]
        api.runtime_config["primaryTarget"] = {"model_id": primary.model_id, "region": primary.region}
        stack.callback(api.stop)
        worker = _start_worker(session.client("sqs"), templates, queues, worker_env)
        stack.callback(worker.stop)
        progress(f"worker pump on the jobs queue (batch {templates.event_source.get('batch_size')}, "
                 f"max concurrency {templates.event_source.get('max_concurrency')})")  # fmt: skip
        api.start()
        progress(f"API and web UI at {api.url} (ready in {time.monotonic() - started:.1f} s)")
    except BaseException:
        stack.close()
        raise
    requests_queue, dlq = _queue_pair(templates, queues)
    sandbox = Sandbox(
        api_url=f"{api.url}/api",
        web_url=api.url,
        aws_url=aws_url,
        emulator_url=emulator_url,
        region=region,
        user_pool_id=pool_id,
        client_id=client_id,
        queue_url=requests_queue,
        dlq_url=dlq,
        chat_env=chat_env,
        worker_env=worker_env,
        stack=stack,
        vectors_url=vectors_url,
        knowledge={name: dict(local.__dict__) for name, local in knowledge.items()},
    )
    _write_state(sandbox)
    return sandbox


def _aws_environment(aws_url: str, emulator_url: str, region: str, vectors_url: str = "") -> dict[str, str]:
    vectors = {"AWS_ENDPOINT_URL_S3VECTORS": vectors_url} if vectors_url else {}
    return {
        "AWS_ACCESS_KEY_ID": "sandbox",
        "AWS_SECRET_ACCESS_KEY": "sandbox",
        "AWS_SESSION_TOKEN": "sandbox",
        "AWS_DEFAULT_REGION": region,
        "AWS_REGION": region,
        "AWS_ENDPOINT_URL_DYNAMODB": aws_url,
        "AWS_ENDPOINT_URL_SQS": aws_url,
        "AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER": aws_url,
        "AWS_ENDPOINT_URL_S3": aws_url,
        **vectors,
        "AWS_ENDPOINT_URL_BEDROCK_RUNTIME": emulator_url,
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_METRICS_DISABLED": "true",
        "POWERTOOLS_LOG_LEVEL": "WARNING",
        # The embedded AWS serves one request at a time on this machine's CPU, shared with everything else:
        # a busy moment may hold a call longer than DynamoDB ever would, so the data clients wait 3 s, not 1 s
        # (still inside the chat path's deadline arithmetic, handlers/wiring.data_call_worst_case_s).
        "DATA_READ_TIMEOUT_SECONDS": str(SANDBOX_DATA_READ_TIMEOUT_S),
    }


def _provision_tables(dynamodb: Any, templates: Templates) -> dict[str, str]:
    names = {}
    for logical_id, spec in templates.tables.items():
        dynamodb.create_table(
            TableName=logical_id,
            KeySchema=spec.key_schema,
            AttributeDefinitions=spec.attributes,
            BillingMode="PAY_PER_REQUEST",
        )
        if spec.ttl_attribute:
            dynamodb.update_time_to_live(
                TableName=logical_id, TimeToLiveSpecification={"Enabled": True, "AttributeName": spec.ttl_attribute}
            )
        names[logical_id] = logical_id
    return names


def _provision_queues(sqs: Any, templates: Templates) -> dict[str, str]:
    urls: dict[str, str] = {}
    ordered = sorted(templates.queues.values(), key=lambda q: q.dlq_logical_id is not None)  # DLQs first
    for spec in ordered:
        attributes = {
            "VisibilityTimeout": str(spec.visibility_timeout),
            "MessageRetentionPeriod": str(spec.retention_s),
        }
        if spec.dlq_logical_id:
            arn = sqs.get_queue_attributes(QueueUrl=urls[spec.dlq_logical_id], AttributeNames=["QueueArn"])
            attributes["RedrivePolicy"] = json.dumps(
                {"deadLetterTargetArn": arn["Attributes"]["QueueArn"], "maxReceiveCount": str(spec.max_receive_count)}
            )
        urls[spec.logical_id] = sqs.create_queue(QueueName=spec.logical_id, Attributes=attributes)["QueueUrl"]
    return urls


def _queue_pair(templates: Templates, urls: dict[str, str]) -> tuple[str, str]:
    main = next(q for q in templates.queues.values() if q.dlq_logical_id)
    return urls[main.logical_id], urls[main.dlq_logical_id or ""]


def _provision_users(cognito: Any, templates: Templates, prefix: str) -> tuple[str, str]:
    """The template's password policy and MFA setting; the web client differs from AWS's on purpose (below)."""
    policy = {k: v for k, v in templates.password_policy.items() if k != "TemporaryPasswordValidityDays"}
    pool_id = cognito.create_user_pool(
        PoolName=f"{prefix}-local", Policies={"PasswordPolicy": policy}, UsernameAttributes=["email"]
    )["UserPool"]["Id"]
    if templates.mfa_configuration != "OFF":
        # TOTP as in the template. moto verifies the codes (MOTO_COGNITO_IDP_USER_POOL_ENABLE_TOTP, set by
        # local.processes) against one fixed secret that it hands to every user; it asks for enrolment only
        # after a temporary password is changed, so the demo user (permanent password) signs in without it.
        cognito.set_user_pool_mfa_config(
            UserPoolId=pool_id,
            SoftwareTokenMfaConfiguration={"Enabled": True},
            MfaConfiguration=templates.mfa_configuration,
        )
    client_id = cognito.create_user_pool_client(
        UserPoolId=pool_id,
        ClientName="web",
        # SANDBOX ONLY: moto 5.2 does not verify SRP (its PASSWORD_VERIFIER accepts any signature), so the web
        # UI signs in here with USER_PASSWORD_AUTH, which moto does check. The AWS client allows SRP only.
        ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
    )["UserPoolClient"]["ClientId"]
    cognito.admin_create_user(
        UserPoolId=pool_id,
        Username=DEMO_USER,
        UserAttributes=[{"Name": "email", "Value": DEMO_USER}, {"Name": "email_verified", "Value": "true"}],
        MessageAction="SUPPRESS",
    )
    cognito.admin_set_user_password(UserPoolId=pool_id, Username=DEMO_USER, Password=DEMO_PASSWORD, Permanent=True)
    return pool_id, client_id


def _function_env(
    templates: Templates, handler: str, tables: dict[str, str], queues: dict[str, str], config: Any, region: str
) -> dict[str, str]:
    """The function's environment from its template, with local names for tables, queues and the knowledge
    resources (those of the knowledge stack the value imports from: local/knowledge.py)."""
    from local.knowledge import KNOWLEDGE_VARIABLES, knowledge_value

    spec = templates.function_by_handler(handler)
    env: dict[str, str] = {}
    for name, value in spec.environment.items():
        if isinstance(value, str) and name != "MODEL_TARGETS":
            env[name] = value
        elif name == "MODEL_TARGETS":
            # The stack's chain with the emulator's ids: created ARNs (profiles, provisioned) are AWS-only.
            chain = chain_settings(config, region, lambda target: (target.model_id, LOCAL_GUARDRAIL))
            env[name] = Settings(table_name="-", targets=chain).to_env()[name]
        elif name.endswith("TABLE_NAME"):
            env[name] = tables[templates.table_for(value).logical_id]
        elif name.endswith("QUEUE_URL"):
            env[name] = queues[templates.queue_for(value).logical_id]
        elif name == "ALLOWED_ORIGIN":
            continue  # the site's CloudFront origin: locally the API's own origin, set once its port is known
        elif name in KNOWLEDGE_VARIABLES:
            env[name] = knowledge_value(templates, name, value)
        else:
            raise KeyError(f"{handler}: environment variable {name} has a value the sandbox cannot map: {value}")
    return env


def _api_environments(templates: Templates, env: dict[str, str]) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """The chat Lambda as API Gateway invokes it: up to its reserved concurrency of environments."""
    from handlers import chat

    spec = templates.function_by_handler("handlers.chat.handler")
    settings = Settings.from_env(env)
    environments = ExecutionEnvironments(lambda: chat.bootstrap(settings), limit=spec.reserved_concurrency or 10)

    def invoke(event: dict[str, Any]) -> dict[str, Any]:
        return environments(event, LocalContext(function_name="chat", timeout_s=spec.timeout_s))

    return invoke


def _start_worker(sqs: Any, templates: Templates, queues: dict[str, str], env: dict[str, str]) -> Any:
    from handlers import worker
    from local.sqs_pump import SqsPump

    settings = Settings.from_env(env)
    concurrency = int(templates.event_source.get("max_concurrency", 2))
    # As in Lambda, each environment paces its model calls to its share of the quota.
    handler = ExecutionEnvironments(lambda: worker.bootstrap(settings), limit=concurrency)
    queue_url, _ = _queue_pair(templates, queues)
    arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return SqsPump(
        client=sqs,
        queue_url=queue_url,
        queue_arn=arn,
        handler=handler,
        batch_size=int(templates.event_source.get("batch_size", 1)),
        max_concurrency=int(templates.event_source.get("max_concurrency", 2)),
    ).start()


def _write_state(sandbox: Sandbox) -> None:
    STATE_FILE.parent.mkdir(exist_ok=True)
    state = {k: v for k, v in sandbox.__dict__.items() if k != "stack"}
    state["aws_environment"] = _aws_environment(
        sandbox.aws_url, sandbox.emulator_url, sandbox.region, sandbox.vectors_url
    )
    STATE_FILE.write_text(json.dumps(state, indent=2))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run Bulwark locally (make dev).")
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8080")))
    parser.add_argument("--cdk-out", type=Path, default=ROOT / "cdk.out.local")
    args = parser.parse_args(argv)
    sandbox = start(port=args.port, cdk_out=args.cdk_out)
    print()
    print(f"  Web UI      {sandbox.web_url}")
    print(f"  API         {sandbox.api_url}  (e.g. curl {sandbox.api_url}/health)")
    print(f"  Sign in     {DEMO_USER} / {DEMO_PASSWORD}")
    print(f"  Embedded AWS {sandbox.aws_url}   Bedrock emulator {sandbox.emulator_url}/_emulator/stats")
    if sandbox.knowledge:
        print(
            f"  S3 Vectors emulator {sandbox.vectors_url}/_emulator/stats   documents buckets: "
            + ", ".join(f"{region} {names['documents_bucket']}" for region, names in sandbox.knowledge.items())
        )
    print("  Ctrl-C stops everything.", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    print("\n==> stopping", flush=True)
    sandbox.stop()
    STATE_FILE.unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
