"""The whole app on one machine, with no AWS account: `make dev` runs this.

Starts moto's server (the embedded AWS), the Bedrock emulator and the S3 Vectors emulator as processes,
creates the tables, queues and user pool from the synthesized templates and both regions' knowledge side
(documents buckets, S3 events, replication to DR, vector indexes, ingest Lambdas: local/knowledge.py),
runs the real Lambda handlers in-process behind a local API that routes exactly the template's routes
with events shaped as API Gateway sends them (Cognito ID tokens verified like the authorizer does), pumps
SQS into the worker like the event source mapping, and serves the web UI. Local mode swaps endpoints, not code: the
handlers' botocore clients find moto and the emulator through AWS_ENDPOINT_URL_* variables.

With `dr=True` (make dev's default) the DR region runs too, as the warm standby does in AWS: its own API (from
the Api-DR template, on its own port), its tables (the same names, in the DR region of the embedded AWS), its
jobs queue and worker pump, its model chain (the DR region's targets first) and its scheduled functions. The
global tables replicate between the two regions (local/global_tables.py: streams, a lag, last writer wins), and
the web UI knows both endpoints, so it fails over for real. `Sandbox.outage(region)` takes a region down (its API
refuses connections, its models fail, its queue pump, schedules and replication stop) and `recover(region)`
brings it back; `make drill` (tools/drill.py) is built on them.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
import urllib.request
import warnings
from collections.abc import Callable, Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
warnings.filterwarnings("ignore", message="No application metrics to publish")

from handlers.settings import Settings  # noqa: E402
from local.api_server import LocalApi, LocalSite  # noqa: E402
from local.appconfig_emulator import SWITCH_VARIABLES, local_switches  # noqa: E402
from local.global_tables import DEFAULT_LAG_S  # noqa: E402
from local.lambda_context import LocalContext  # noqa: E402
from local.lambda_pool import ExecutionEnvironments  # noqa: E402
from local.schedules import ScheduledHandler  # noqa: E402
from local.templates import Templates, load  # noqa: E402
from stacks.csp import content_security_policy  # noqa: E402
from stacks.lambda_settings import chain_settings  # noqa: E402

DEMO_USER = "demo@bulwark.local"
DEMO_PASSWORD = "Demo-Passw0rd!2026"  # meets the template's password policy
LOCAL_GUARDRAIL = ("localguardrail", "1")  # a valid guardrail id: the emulator checks ApplyGuardrail's like Bedrock
STATE_FILE = ROOT / ".sandbox" / "state.json"
SANDBOX_DATA_READ_TIMEOUT_S = 3.0


@dataclass
class RegionRuntime:
    """One region's compute in the sandbox: its API, its jobs worker pump and its scheduled functions."""

    region: str
    api: LocalApi
    queue_url: str
    dlq_url: str
    chat_env: dict[str, str]
    worker_env: dict[str, str]
    start_worker: Callable[[], Any] = field(repr=False)
    worker: Any = field(default=None, repr=False)
    schedules: dict[str, ScheduledHandler] = field(default_factory=dict, repr=False)
    up: bool = True
    pools: dict[str, ExecutionEnvironments] = field(default_factory=dict, repr=False)  # "chat", "worker"
    stream: Any = field(default=None, repr=False)  # local.ws_gateway.WsGateway: streamed answers (ADR 0004)

    @property
    def api_url(self) -> str:
        return f"{self.api.url}/api"

    def go_down(self) -> None:
        self.up = False
        self.api.go_down()
        if self.stream is not None:
            self.stream.go_down()
        for schedule in self.schedules.values():
            schedule.pause()
        self.stop_worker()

    def stop_worker(self) -> None:
        """The jobs pump stops (batches in flight finish first); queued jobs wait in the queue."""
        if self.worker is not None:
            self.worker.stop()
            self.worker = None

    def come_back(self) -> None:
        self.worker = self.worker or self.start_worker()
        for schedule in self.schedules.values():
            schedule.resume()
        self.api.come_back()
        if self.stream is not None:
            self.stream.come_back()
        self.up = True

    def stop(self) -> None:
        for schedule in self.schedules.values():
            schedule.stop()
        if self.worker is not None:
            self.worker.stop()
        if self.stream is not None:
            self.stream.stop()
        self.api.stop()


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
    regions: dict[str, RegionRuntime] = field(default_factory=dict, repr=False)  # primary first
    dr_region: str | None = None
    emulator_faults: dict[str, Any] = field(default_factory=dict, repr=False)  # the emulator's base config
    documents_replication: Any = field(default=None, repr=False)  # local.knowledge.Replicator (S3, both ways)
    status_board: Any = field(default=None, repr=False)  # local.status.StatusBoard: GET /_sandbox/status

    def stop(self) -> None:
        self.stack.close()

    @property
    def dr_api_url(self) -> str | None:
        return self.regions[self.dr_region].api_url if self.dr_region else None

    # --- regional outages ---------------------------------------------------------------------------------------
    def outage(self, region: str) -> None:
        """Take `region` down as a regional outage would: its API refuses connections (requests in flight get no
        answer), its models fail (the emulator's `*@<region>` is down), its jobs pump and scheduled functions
        stop, its global tables and its documents bucket neither replicate out nor receive replicas. What stays
        up: the embedded AWS itself (the other region's code never calls this region's tables or queues), Cognito
        (the user pool's replica serves sign-in in the other region: ADR 0001), and the region's document ingest
        pump (its embedding calls fail while its models are down; S3 redelivers after the visibility timeout)."""
        runtime = self.regions[region]
        self._set_down(region, True)
        runtime.go_down()

    def recover(self, region: str) -> None:
        """Bring `region` back: models, replication (what waited is sent, oldest first), pump, schedules, API."""
        self._set_down(region, False)
        self.regions[region].come_back()

    def _set_down(self, region: str, down: bool) -> None:
        downs = {name for name, runtime in self.regions.items() if not runtime.up and name != region}
        if down:
            downs.add(region)
        targets = dict(self.emulator_faults.get("targets", {}))
        targets.update({f"*@{name}": {"down": True} for name in downs})
        _post_json(f"{self.emulator_url}/_emulator/faults", {**self.emulator_faults, "targets": targets})
        if len(self.regions) > 1:
            self.configure_replication(unavailable=sorted(downs))
        if self.documents_replication is not None:
            (self.documents_replication.pause if down else self.documents_replication.resume)(region)

    def control(self, method: str, path: str, body: bytes) -> tuple[int, Any]:
        """`make dev`'s outage switch, on every region's API port (outside /api):
        GET /_sandbox/regions, POST /_sandbox/outage or /_sandbox/recover with {"region": "us-east-1"};
        GET /_sandbox/status, the status page's data (local/status.py, web/status.html)."""
        if method == "GET" and path == "/_sandbox/status" and self.status_board is not None:
            return 200, self.status_board.snapshot()
        if method == "GET" and path == "/_sandbox/regions":
            return 200, {name: {"up": runtime.up, "api": runtime.api_url} for name, runtime in self.regions.items()}
        if method != "POST" or path not in ("/_sandbox/outage", "/_sandbox/recover"):
            return 404, {
                "message": "GET /_sandbox/regions or /_sandbox/status, POST /_sandbox/outage or /_sandbox/recover"
            }
        try:
            region = json.loads(body or b"{}").get("region")
        except (ValueError, AttributeError):
            region = None
        if region not in self.regions:
            return 400, {"message": f'send {{"region": ...}}, one of {sorted(self.regions)}'}
        if len(self.regions) < 2:
            return 409, {"message": "one region only (--single-region): nothing to fail over to"}
        (self.outage if path.endswith("outage") else self.recover)(region)
        return 200, {name: {"up": runtime.up} for name, runtime in self.regions.items()}

    # --- global tables --------------------------------------------------------------------------------------------
    def replication(self, *, keys: bool = False) -> dict[str, Any]:
        """The global tables' replication state (local/global_tables.py): per direction the pending changes, their
        oldest age, replicated and superseded counts, paused or not; with `keys` the pending items' keys."""
        url = f"{self.aws_url}/_bulwark/global-tables" + ("?keys=1" if keys else "")
        with urllib.request.urlopen(url, timeout=30) as response:
            return json.loads(response.read())  # type: ignore[no-any-return]

    def configure_replication(self, **settings: Any) -> dict[str, Any]:
        return _post_json(f"{self.aws_url}/_bulwark/global-tables", settings)

    def wait_replicated(self, *, timeout_s: float = 60.0, poll_s: float = 0.1) -> bool:
        """Wait until no change is pending between available regions (a paused direction keeps its own)."""
        end = time.monotonic() + timeout_s
        while True:
            directions = self.replication()["directions"].values()
            if all(d["pending"] == 0 for d in directions if not d["paused"]):
                return True
            if time.monotonic() >= end:
                return False
            time.sleep(poll_s)


def _post_json(url: str, payload: Any) -> Any:
    request = urllib.request.Request(
        url, data=json.dumps(payload).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read() or b"null")


def _progress(message: str) -> None:
    print(f"==> {message}", flush=True)


def start(
    *,
    port: int = 0,
    cdk_out: Path = ROOT / "cdk.out.local",
    progress: Callable[[str], None] = _progress,
    emulator_config: Path = ROOT / "local" / "emulator.json",
    dr: bool = False,
    dr_port: int = 0,
    replication_lag_s: float = DEFAULT_LAG_S,
    schedule_periods: Mapping[str, float] | None = None,
    env_overrides: Mapping[str, str] | None = None,
    documents_lag_s: float = 0.0,
    site_port: int | None = None,
) -> Sandbox:
    """The sandbox; with `dr` the DR region too (its API on `dr_port`), the global tables replicating between
    them `replication_lag_s` after each write. Scheduled functions run on their template's rate, or on the period
    `schedule_periods` gives their handler's module (a drill's {"recovery": 1.0}). `env_overrides` replace the
    values of the functions' variables that have those names (a drill's shorter JOB_STRANDED_AFTER_SECONDS); the
    template's values otherwise.
    `documents_lag_s`: the documents buckets' S3 replication lag (local/knowledge.py). With `site_port` (0: any
    free port) the web UI has its own server (local.api_server.LocalSite), as CloudFront is apart from both
    regions: it stays up through outages; otherwise the primary's API serves it."""
    import boto3

    from local.knowledge import Replicator, start_knowledge
    from local.processes import emulator_process, moto_server, s3vectors_process
    from local.status import StatusBoard, capture_emf
    from stacks.config import CONTEXT_KEY, AppConfig

    started = time.monotonic()
    capture_emf()  # the EMF records the Lambdas print feed the status page (local/status.py)
    config = AppConfig.from_context(json.loads((ROOT / "cdk.json").read_text())["context"][CONTEXT_KEY])
    region = config.primary_region
    templates = load(cdk_out, config.prefix)
    regional = {region: templates}
    if dr:
        regional[config.dr_region] = load(cdk_out, config.prefix, region_suffix="-DR")
    progress(f"templates read from {cdk_out.name}: {len(templates.tables)} tables, {len(templates.queues)} queues, "
             f"{len(templates.routes)} routes" + (f", regions {' and '.join(regional)}" if dr else ""))  # fmt: skip
    stack = ExitStack()
    try:
        aws_url = stack.enter_context(moto_server())
        progress(f"embedded AWS (moto server) at {aws_url}")
        emulator_url = stack.enter_context(emulator_process(emulator_config))
        progress(f"Bedrock emulator at {emulator_url}")
        vectors_url = stack.enter_context(s3vectors_process())
        progress(f"S3 Vectors emulator at {vectors_url}")
        os.environ.update(_aws_environment(aws_url, emulator_url, region, vectors_url))
        appconfig_url = stack.enter_context(local_switches())  # the runtime switches (issue 11)
        os.environ["AWS_ENDPOINT_URL_APPCONFIGDATA"] = appconfig_url
        progress(f"AppConfig data plane (runtime switches) at {appconfig_url}; flip: POST /_emulator/configuration")
        names: dict[str, str] = {}
        queues: dict[str, dict[str, str]] = {}
        for name, regional_templates in regional.items():
            session = boto3.Session(region_name=name)
            names = _provision_tables(session.client("dynamodb"), regional_templates)
            queues[name] = _provision_queues(session.client("sqs"), regional_templates)
        session = boto3.Session(region_name=region)
        pool_id, client_id = _provision_users(session.client("cognito-idp"), templates, config.prefix)
        progress(f"created {len(names)} tables, {len(queues[region])} queues, user pool {pool_id} from the templates"
                 + (f"; the same tables and the DR queues in {config.dr_region}" if dr else ""))  # fmt: skip
        if dr:
            _post_json(
                f"{aws_url}/_bulwark/global-tables",
                {"tables": sorted(set(names.values())), "regions": list(regional), "lag_s": replication_lag_s},
            )
            progress(
                f"global tables replicating {' <-> '.join(regional)} (lag {replication_lag_s:g} s, last writer wins)"
            )
        apis = {
            name: LocalApi(regional_templates, name, aws_url, pool_id, client_id, port if name == region else dr_port)
            for name, regional_templates in regional.items()
        }
        web = LocalSite(port=site_port, runtime_config=apis[region].runtime_config) if site_port is not None else None
        if web is not None:
            stack.callback(web.stop)
        # The web UI's origin (CloudFront's, in AWS): every region's API allows it.
        site = web.url if web is not None else apis[region].url
        documents = Replicator(lag_s=documents_lag_s)  # S3 replication of the documents buckets, both ways
        knowledge = start_knowledge(
            templates, stack=stack, tables=names, table_region=region, origin=site, progress=progress,
            replicator=documents, regional_tables=dr,
        )  # fmt: skip
        primary = config.chain_for(region)[0]
        runtimes: dict[str, RegionRuntime] = {}
        gateways: dict[str, Any] = {}  # region -> its WebSocket API (local/ws_gateway.py), None without streaming
        for name, regional_templates in regional.items():
            chat_env = _function_env(regional_templates, "handlers.chat.handler", names, queues[name], config, name)
            worker_env = _function_env(regional_templates, "handlers.worker.handler", names, queues[name], config, name)
            chat_env.update(_overridden(chat_env, env_overrides))
            worker_env.update(_overridden(worker_env, env_overrides))
            for env in (chat_env, worker_env):
                env["AWS_ENDPOINT_URL_APPCONFIGDATA"] = appconfig_url
            chat_env["ALLOWED_ORIGIN"] = site  # the web UI and the primary's API share this one origin
            if name == region:
                os.environ.update(chat_env)  # as Lambda would set it before the module's cold start
            api = apis[name]
            api.site_origin = site
            pools: dict[str, ExecutionEnvironments] = {}
            api.invoke = _api_environments(regional_templates, chat_env, name, pools)
            if name not in gateways:
                gateways[name] = _stream_gateway(
                    regional_templates, chat_env, name, pools, aws_url=aws_url, pool_id=pool_id, client_id=client_id,
                    port=_offset_port(port if name == region else dr_port),
                )  # fmt: skip
            streams = [gateway.url for gateway in gateways.values() if gateway is not None]
            others = [other.url for other_name, other in apis.items() if other_name != name]
            api.static_headers["Content-Security-Policy"] = content_security_policy(
                connect=[aws_url, *others, *streams]
            )
            if web is not None and name == region:
                web.static_headers["Content-Security-Policy"] = content_security_policy(
                    connect=[aws_url, *(other.url for other in apis.values()), *streams]
                )
            api.runtime_config["apiEndpoints"] = [f"{apis[n].url}/api" for n in regional]
            if all(gateways.get(n) is not None for n in regional):
                api.runtime_config["streamEndpoints"] = [gateways[n].url for n in regional]
            api.runtime_config["primaryTarget"] = {"model_id": primary.model_id, "region": primary.region}
            # The region's durable functions (the summarize workflow), started by its worker.
            workflows = _durable_functions(
                regional_templates, names, queues[name], config, name, stack, appconfig_url, env_overrides
            )
            runtime = RegionRuntime(
                region=name,
                api=api,
                queue_url=_queue_pair(regional_templates, queues[name])[0],
                dlq_url=_queue_pair(regional_templates, queues[name])[1],
                chat_env=chat_env,
                worker_env=worker_env,
                start_worker=_worker_starter(
                    regional_templates, queues[name], worker_env, name, pools, workflows=workflows
                ),
                pools=pools,
                stream=gateways.get(name),
            )
            stack.callback(runtime.stop)
            runtime.worker = runtime.start_worker()
            runtime.schedules = _start_schedules(
                regional_templates, names, queues[name], config, name, schedule_periods, env_overrides
            )
            runtimes[name] = runtime
            source = regional_templates.event_source
            progress(f"{name}: worker pump on the jobs queue (batch {source.get('batch_size')}, max concurrency "
                     f"{source.get('max_concurrency')})"
                     + "".join(f", {s.name} every {s.every_s:g} s" for s in runtime.schedules.values()))  # fmt: skip
        if web is not None:
            web.start()
            progress(f"web UI at {web.url} (apart from both regions' APIs, as CloudFront is)")
        for name, runtime in runtimes.items():
            runtime.api.start()
            progress(f"{name}: API{' and web UI' if name == region else ''} at {runtime.api.url}")
        progress(f"ready in {time.monotonic() - started:.1f} s")
    except BaseException:
        stack.close()
        raise
    first = runtimes[region]
    sandbox = Sandbox(
        api_url=first.api_url,
        web_url=site,
        aws_url=aws_url,
        emulator_url=emulator_url,
        region=region,
        user_pool_id=pool_id,
        client_id=client_id,
        queue_url=first.queue_url,
        dlq_url=first.dlq_url,
        chat_env=first.chat_env,
        worker_env=first.worker_env,
        stack=stack,
        vectors_url=vectors_url,
        knowledge={name: dict(local.__dict__) for name, local in knowledge.items()},
        regions=runtimes,
        dr_region=config.dr_region if dr else None,
        emulator_faults=json.loads(emulator_config.read_text()) if emulator_config.exists() else {},
        documents_replication=documents,
    )
    sandbox.status_board = StatusBoard(sandbox)
    for runtime in runtimes.values():
        runtime.api.control = sandbox.control
    if web is not None:
        web.control = sandbox.control  # the status page is served by the site, which outlives a region's outage
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
        # A global table's replicas stream their changes (NEW_AND_OLD_IMAGES): the replication reads them.
        streams = {"StreamSpecification": {"StreamEnabled": True, "StreamViewType": spec.stream_view_type}}
        dynamodb.create_table(
            TableName=logical_id,
            KeySchema=spec.key_schema,
            AttributeDefinitions=spec.attributes,
            BillingMode="PAY_PER_REQUEST",
            **(streams if spec.stream_view_type else {}),
            **({"GlobalSecondaryIndexes": spec.indexes} if spec.indexes else {}),
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
        elif name in SWITCH_VARIABLES:
            env[name] = SWITCH_VARIABLES[name]  # local/appconfig_emulator.py serves this profile
        elif name == "ALLOWED_ORIGIN":
            continue  # the site's CloudFront origin: locally the API's own origin, set once its port is known
        elif name == "SUMMARIZE_FUNCTION_ARN":
            # The durable function's alias: a local name of the same shape (the worker is handed the region's local
            # runner, which starts the same handler code; nothing calls this ARN).
            env[name] = f"arn:aws:lambda:{region}:000000000000:function:summarize:live"
        elif name in KNOWLEDGE_VARIABLES:
            env[name] = knowledge_value(templates, name, value)
        else:
            raise KeyError(f"{handler}: environment variable {name} has a value the sandbox cannot map: {value}")
    return env


def _overridden(env: Mapping[str, str], overrides: Mapping[str, str] | None) -> dict[str, str]:
    """The overrides of variables the function has (a drill shortens a timer; nothing new is added)."""
    return {name: value for name, value in (overrides or {}).items() if name in env}


def _api_environments(
    templates: Templates, env: dict[str, str], region: str, pools: dict[str, ExecutionEnvironments] | None = None
) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """The chat Lambda as API Gateway invokes it: up to its reserved concurrency of environments, each with its
    region's clients (the region is the function's, as AWS_REGION is in Lambda)."""
    from handlers import chat
    from handlers.wiring import data_client

    spec = templates.function_by_handler("handlers.chat.handler")
    settings = Settings.from_env(env)
    environments = ExecutionEnvironments(
        lambda: chat.bootstrap(
            settings,
            dynamodb=data_client("dynamodb", region_name=region),
            sqs=data_client("sqs", region_name=region),
        ),
        limit=spec.reserved_concurrency or 10,
        name=f"chat@{region}",
    )
    if pools is not None:
        pools["chat"] = environments

    def invoke(event: dict[str, Any]) -> dict[str, Any]:
        return environments(event, LocalContext(function_name="chat", timeout_s=spec.timeout_s))

    return invoke


STREAM_PORT_OFFSET = 100  # each region's WebSocket API listens on its API's port + this (any free port with port 0)


def _offset_port(port: int) -> int:
    return port + STREAM_PORT_OFFSET if port else 0


def _stream_gateway(
    templates: Templates,
    env: dict[str, str],
    region: str,
    pools: dict[str, ExecutionEnvironments],
    *,
    aws_url: str,
    pool_id: str,
    client_id: str,
    port: int,
) -> Any:
    """The region's WebSocket API (ADR 0004) as API Gateway runs it: the $connect authorizer, then the stream Lambda
    (the chat Lambda's settings, its own pool up to its reserved concurrency, its timeout) per message. None when
    the templates have no stream function (streaming.enabled is false)."""
    from handlers import stream
    from handlers.wiring import data_client
    from local.ws_gateway import sandbox_gateway

    try:
        spec = templates.function_by_handler("handlers.stream.handler")
        authorizer = templates.function_by_handler("handlers.ws_authorizer.handler")
    except KeyError:
        return None
    settings = Settings.from_env(env)
    environments = ExecutionEnvironments(
        lambda: stream.bootstrap(
            settings, dynamodb=data_client("dynamodb", region_name=region), endpoint_scheme="http"
        ),
        limit=spec.reserved_concurrency or 10,
        name=f"stream@{region}",
    )
    pools["stream"] = environments

    def invoke(event: dict[str, Any]) -> dict[str, Any]:
        return environments(event, LocalContext(function_name="stream", timeout_s=spec.timeout_s))

    gateway = sandbox_gateway(
        region=region, aws_url=aws_url, pool_id=pool_id, client_id=client_id, invoke=invoke, port=port,
        authorizer_timeout_s=authorizer.timeout_s,
    )  # fmt: skip
    gateway.start()
    return gateway


def _worker_starter(
    templates: Templates,
    queues: dict[str, str],
    env: dict[str, str],
    region: str,
    pools: dict[str, ExecutionEnvironments] | None = None,
    *,
    workflows: Any = None,
) -> Callable[[], Any]:
    """Starts the region's jobs pump (again after an outage) over one pool of worker environments; `workflows`:
    the region's durable functions (None: the templates have none)."""
    import boto3

    from handlers import worker
    from handlers.wiring import data_client
    from local.sqs_pump import SqsPump

    settings = Settings.from_env(env)
    concurrency = int(templates.event_source.get("max_concurrency", 2))
    # As in Lambda, each environment paces its model calls to its share of the quota.
    handler = ExecutionEnvironments(
        lambda: worker.bootstrap(
            settings,
            dynamodb=data_client("dynamodb", region_name=region),
            sqs=data_client("sqs", region_name=region),
            workflows=workflows,
        ),
        limit=concurrency,
        name=f"worker@{region}",
    )
    if pools is not None:
        pools["worker"] = handler
    queue_url, _ = _queue_pair(templates, queues)
    sqs = boto3.Session(region_name=region).client("sqs")
    arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]

    def start_pump() -> Any:
        return SqsPump(
            client=sqs,
            queue_url=queue_url,
            queue_arn=arn,
            handler=handler,
            batch_size=int(templates.event_source.get("batch_size", 1)),
            max_concurrency=concurrency,
        ).start()

    return start_pump


def _durable_functions(
    templates: Templates,
    tables: dict[str, str],
    queues: dict[str, str],
    config: Any,
    region: str,
    stack: ExitStack,
    appconfig_url: str,
    overrides: Mapping[str, str] | None,
) -> Any:
    """The region's Lambda durable functions (ADR 0005) on the durable execution SDK's local runner
    (local/durable_runner.py): the summarize workflow's own handler (handlers.workflow, its settings from its
    template) over a pool of environments as large as its reserved concurrency; the worker's starter. None when
    the templates have no workflow (workflows.enabled false, or no knowledge)."""
    from handlers import workflow
    from handlers.wiring import data_client
    from local.durable_runner import LocalDurableFunctions, LocalWorkflowStarter

    try:
        spec = templates.function_by_handler("handlers.workflow.lambda_handler")
    except KeyError:
        return None
    env = _function_env(templates, "handlers.workflow.lambda_handler", tables, queues, config, region)
    env.update(_overridden(env, overrides))
    env["AWS_ENDPOINT_URL_APPCONFIGDATA"] = appconfig_url
    settings = Settings.from_env(env)
    environments = ExecutionEnvironments(
        lambda: workflow.bootstrap(
            workflow.build_workflow(settings, dynamodb=data_client("dynamodb", region_name=region))
        ),
        limit=spec.reserved_concurrency or 1,
        name=f"summarize@{region}",
    )
    functions = LocalDurableFunctions(
        {"summarize": environments}, execution_timeout_s=int(config.workflows.execution_timeout_s)
    )
    stack.callback(functions.close)
    return LocalWorkflowStarter(functions)


def _start_schedules(
    templates: Templates,
    tables: dict[str, str],
    queues: dict[str, str],
    config: Any,
    region: str,
    periods: Mapping[str, float] | None,
    overrides: Mapping[str, str] | None = None,
) -> dict[str, ScheduledHandler]:
    """The region's scheduled functions (EventBridge rules in the template), each called on its rate (or every
    `periods[<module name>]` seconds) by its module's `bootstrap(settings, dynamodb=, sqs=, region=)` with its
    template environment."""
    import importlib

    schedules = {}
    for logical_id, period in templates.schedules.items():
        spec = templates.functions[logical_id]
        module = importlib.import_module(spec.handler.rpartition(".")[0])
        env = _function_env(templates, spec.handler, tables, queues, config, region)
        env.update(_overridden(env, overrides))
        name = spec.handler.split(".")[1]
        handler = ExecutionEnvironments(_scheduled_cold_start(module, env, region), limit=1, name=f"{name}@{region}")
        schedules[name] = ScheduledHandler(
            handler,
            name=name,
            region=region,
            every_s=(periods or {}).get(name, period),
            timeout_s=float(spec.timeout_s),
        ).start()
    return schedules


def _scheduled_cold_start(module: Any, env: dict[str, str], region: str) -> Callable[[], Any]:
    """A scheduled function's cold start: its bootstrap with its settings and this region's clients."""
    import inspect

    from handlers.wiring import data_client

    accepted = inspect.signature(module.bootstrap).parameters
    settings_type = accepted["settings"].annotation if "settings" in accepted else None
    settings = _settings_for(module, settings_type, env)
    clients: dict[str, Callable[[], Any]] = {
        "dynamodb": lambda: data_client("dynamodb", region_name=region),
        "sqs": lambda: data_client("sqs", region_name=region),
        "region": lambda: region,
    }

    def cold_start() -> Any:
        return module.bootstrap(settings, **{name: make() for name, make in clients.items() if name in accepted})

    return cold_start


def _settings_for(module: Any, annotation: Any, env: dict[str, str]) -> Any:
    """The settings object a scheduled function's bootstrap takes, read from its environment like at cold start."""
    from handlers import settings as settings_module

    names = [annotation] if isinstance(annotation, str) else [getattr(annotation, "__name__", "")]
    for name in names:
        cls = getattr(module, name.split("|")[0].strip(), None) or getattr(
            settings_module, name.split("|")[0].strip(), None
        )
        if cls is not None and hasattr(cls, "from_env"):
            return cls.from_env(env)
    return Settings.from_env(env)


def _write_state(sandbox: Sandbox) -> None:
    STATE_FILE.parent.mkdir(exist_ok=True)
    skip = {"stack", "regions", "emulator_faults", "documents_replication", "status_board"}
    state: dict[str, Any] = {k: v for k, v in sandbox.__dict__.items() if k not in skip}
    state["aws_environment"] = _aws_environment(
        sandbox.aws_url, sandbox.emulator_url, sandbox.region, sandbox.vectors_url
    )
    state["regions"] = {
        name: {"api_url": runtime.api_url, "queue_url": runtime.queue_url, "dlq_url": runtime.dlq_url,
               "chat_env": runtime.chat_env, "worker_env": runtime.worker_env}
        for name, runtime in sandbox.regions.items()
    }  # fmt: skip
    STATE_FILE.write_text(json.dumps(state, indent=2))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run Bulwark locally (make dev).")
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8080")))
    parser.add_argument("--dr-port", type=int, default=None, help="the DR region's API (default: --port + 1)")
    parser.add_argument("--single-region", action="store_true", help="the primary region only (no DR, no replication)")
    parser.add_argument("--replication-lag", type=float, default=DEFAULT_LAG_S, help="global tables' lag in seconds")
    parser.add_argument("--cdk-out", type=Path, default=ROOT / "cdk.out.local")
    args = parser.parse_args(argv)
    dr_port = args.dr_port if args.dr_port is not None else (args.port + 1 if args.port else 0)
    sandbox = start(
        port=args.port,
        cdk_out=args.cdk_out,
        dr=not args.single_region,
        dr_port=dr_port,
        replication_lag_s=args.replication_lag,
    )
    print()
    print(f"  Web UI      {sandbox.web_url}")
    print(f"  API         {sandbox.api_url}  (e.g. curl {sandbox.api_url}/health)")
    if sandbox.dr_region:
        print(f"  DR API      {sandbox.dr_api_url}  ({sandbox.dr_region}; the web UI fails over to it)")
        print(f"  Replication {sandbox.aws_url}/_bulwark/global-tables")
        dr_web = sandbox.regions[sandbox.dr_region].api.url
        print(f"  Outage      curl -XPOST {dr_web}/_sandbox/outage -d '{{\"region\": \"{sandbox.region}\"}}'"
              f"   (and /_sandbox/recover)")  # fmt: skip
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
