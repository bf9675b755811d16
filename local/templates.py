"""Read the synthesized templates (cdk.out) into the facts the sandbox needs.

The sandbox builds its tables, queues, routes and Lambda environments from these, never from a
second hand-written list, so the two cannot drift (tests/integration/test_sandbox.py checks it).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class TableSpec:
    logical_id: str
    key_schema: list[dict[str, str]]
    attributes: list[dict[str, str]]
    ttl_attribute: str | None
    stream_view_type: str | None = None  # a global table's replicas stream NEW_AND_OLD_IMAGES
    # Global secondary indexes as CreateTable takes them (IndexName, KeySchema, Projection).
    indexes: list[dict[str, Any]] = field(default_factory=list, hash=False, compare=False)


@dataclass(frozen=True)
class QueueSpec:
    logical_id: str
    visibility_timeout: int
    retention_s: int
    max_receive_count: int | None
    dlq_logical_id: str | None


@dataclass(frozen=True)
class FunctionSpec:
    logical_id: str
    handler: str
    timeout_s: int
    environment: dict[str, Any]  # raw template values (strings or intrinsic functions)
    reserved_concurrency: int | None = None


@dataclass(frozen=True)
class MockResponse:
    """What a MOCK integration answers (its default integration response)."""

    status: int
    headers: dict[str, str] = field(default_factory=dict, hash=False)
    body: str = ""


@dataclass(frozen=True)
class Route:
    path: str  # e.g. /conversations/{conversation_id}
    method: str  # GET, POST, ... or ANY
    authorized: bool
    # Request validation as API Gateway does it: the method's models (content type -> JSON schema, draft 4)
    # checked when its RequestValidator validates bodies; required parameters ("header.X", "querystring.q").
    request_models: dict[str, dict[str, Any]] = field(default_factory=dict, hash=False, compare=False)
    validate_body: bool = False
    validate_parameters: bool = False
    required_parameters: tuple[str, ...] = ()
    mock: MockResponse | None = None  # a MOCK integration (the health probe, CORS preflights)


@dataclass(frozen=True)
class GatewayResponseSpec:
    """An AWS::ApiGateway::GatewayResponse: what API Gateway answers itself for one error type."""

    response_type: str  # MISSING_AUTHENTICATION_TOKEN, UNAUTHORIZED, BAD_REQUEST_BODY, DEFAULT_4XX, ...
    status_code: int | None  # None: the type's default status
    templates: dict[str, str] = field(default_factory=dict, hash=False)  # content type -> body template
    headers: dict[str, Any] = field(default_factory=dict, hash=False)  # name -> mapping ("'static'", intrinsic)


@dataclass(frozen=True)
class NotificationSpec:
    """One queue configuration of a bucket's notifications: the events (s3:ObjectCreated:*, ...) and key filter."""

    events: tuple[str, ...]
    prefix: str = ""
    suffix: str = ""

    def matches(self, event_name: str, key: str) -> bool:
        """`event_name` as S3 records it (ObjectCreated:Put): does this configuration send it for `key`?"""
        wanted = any(
            f"s3:{event_name}" == event or (event.endswith(":*") and f"s3:{event_name}".startswith(event[:-1]))
            for event in self.events
        )
        return wanted and key.startswith(self.prefix) and key.endswith(self.suffix)


@dataclass(frozen=True)
class ReplicationSpec:
    """The documents bucket's replication rule: what is copied, to which region's knowledge stack."""

    prefix: str
    delete_markers: bool
    destination: Any  # the rule's raw destination bucket (a cross-region reference): Templates.knowledge_for it


@dataclass(frozen=True)
class KnowledgeSpec:
    """One region's KnowledgeStack (bucket, notifications, ingest queue + DLQ, vector bucket + index) and the
    ingest Lambda its API stack runs on that queue."""

    stack_name: str
    region: str
    bucket_logical_id: str
    versioned: bool
    notifications: tuple[NotificationSpec, ...]
    queue: QueueSpec
    dlq: QueueSpec
    vector_bucket_logical_id: str
    index_logical_id: str
    dimension: int
    data_type: str
    distance_metric: str
    non_filterable_keys: tuple[str, ...]
    ingest: FunctionSpec
    batch_size: int
    max_concurrency: int
    replication: ReplicationSpec | None = None
    cors_rules: tuple[dict[str, Any], ...] = ()  # the bucket's CORS rules (the site's presigned POST)

    @property
    def compact_name(self) -> str:
        """How CDK names this stack (and its region) in cross-region export paths: BulwarkdevKnowledgeDRuswest2."""
        return self.stack_name.replace("-", "") + self.region.replace("-", "")

    def references(self, value: Any) -> bool:
        """Whether a template value imports something of this stack (same region or cross-region), strongly
        (an export, CDK's export reader path) or weakly (Fn::GetStackOutput of this stack's outputs)."""
        text = json.dumps(value)
        strong = f'"{self.stack_name}:Exports' in text or f"/{self.compact_name}" in text
        weak = any(name == self.stack_name and region in (None, self.region) for name, region in _stack_outputs(value))
        return strong or weak


@dataclass
class Templates:
    tables: dict[str, TableSpec] = field(default_factory=dict)
    queues: dict[str, QueueSpec] = field(default_factory=dict)
    functions: dict[str, FunctionSpec] = field(default_factory=dict)
    routes: list[Route] = field(default_factory=list)
    preflights: list[Route] = field(default_factory=list)  # the OPTIONS methods (CORS), each a mock
    gateway_responses: dict[str, GatewayResponseSpec] = field(default_factory=dict)
    password_policy: dict[str, Any] = field(default_factory=dict)
    mfa_configuration: str = "OFF"  # the user pool's MfaConfiguration: OFF, OPTIONAL or ON
    event_source: dict[str, Any] = field(default_factory=dict)  # the jobs worker's event source mapping
    event_sources: dict[str, dict[str, Any]] = field(default_factory=dict)  # function logical id -> its mapping
    data_stack: str = ""
    knowledge: list[KnowledgeSpec] = field(default_factory=list)  # both regions', primary first
    # Functions run on a schedule (an EventBridge rule or an EventBridge Scheduler schedule): logical id ->
    # the period in seconds of its rate() expression.
    schedules: dict[str, float] = field(default_factory=dict)

    def knowledge_for(self, value: Any) -> KnowledgeSpec:
        """The knowledge stack an environment value imports from."""
        for spec in self.knowledge:
            if spec.references(value):
                return spec
        raise KeyError(f"{value} does not reference a knowledge stack")

    def function_by_handler(self, handler: str) -> FunctionSpec:
        for spec in self.functions.values():
            if spec.handler == handler:
                return spec
        raise KeyError(f"no function with handler {handler} in the templates")

    def table_for(self, value: Any) -> TableSpec:
        """The table an environment value points to: an Fn::ImportValue of the Data stack's Ref, or (another
        region's API stack) CDK's cross-region export reader path of it. Matched with the stack's name: the
        Knowledge stacks' documents bucket has the same logical id as the documents table."""
        text = json.dumps(value)
        compact = re.escape(self.data_stack.replace("-", ""))
        for logical_id, spec in self.tables.items():
            if f'"{self.data_stack}:ExportsOutputRef{logical_id}' in text or re.search(
                rf"/{compact}[a-z0-9]*Ref{re.escape(logical_id)}", text
            ):
                return spec
        raise KeyError(f"{value} does not reference a table of the Data stack")

    def queue_for(self, value: Any) -> QueueSpec:
        ref = value.get("Ref") if isinstance(value, dict) else None
        if ref not in self.queues:
            raise KeyError(f"{value} does not reference a queue")
        return self.queues[ref]


def load(cdk_out: Path, prefix: str, *, region_suffix: str = "") -> Templates:
    data = _read(cdk_out / f"{prefix}-Data.template.json")
    api = _read(cdk_out / f"{prefix}-Api{region_suffix}.template.json")
    auth = _read(cdk_out / f"{prefix}-Auth.template.json")
    found = Templates(data_stack=f"{prefix}-Data")
    for logical_id, resource in data["Resources"].items():
        if resource["Type"] == "AWS::DynamoDB::GlobalTable":
            props = resource["Properties"]
            ttl = props.get("TimeToLiveSpecification", {})
            found.tables[logical_id] = TableSpec(
                logical_id=logical_id,
                key_schema=props["KeySchema"],
                attributes=props["AttributeDefinitions"],
                ttl_attribute=ttl.get("AttributeName") if ttl.get("Enabled") else None,
                stream_view_type=(props.get("StreamSpecification") or {}).get("StreamViewType"),
                indexes=[
                    {key: index[key] for key in ("IndexName", "KeySchema", "Projection") if key in index}
                    for index in props.get("GlobalSecondaryIndexes") or []
                ],
            )
    for logical_id, resource in api["Resources"].items():
        props = resource.get("Properties", {})
        if resource["Type"] == "AWS::SQS::Queue":
            redrive = props.get("RedrivePolicy") or {}
            target = redrive.get("deadLetterTargetArn", {})
            found.queues[logical_id] = QueueSpec(
                logical_id=logical_id,
                visibility_timeout=int(props.get("VisibilityTimeout", 30)),
                retention_s=int(props.get("MessageRetentionPeriod", 345_600)),
                max_receive_count=int(redrive["maxReceiveCount"]) if redrive else None,
                dlq_logical_id=target.get("Fn::GetAtt", [None])[0] if isinstance(target, dict) else None,
            )
        elif resource["Type"] == "AWS::Lambda::Function" and str(props.get("Handler", "")).startswith("handlers."):
            found.functions[logical_id] = FunctionSpec(
                logical_id=logical_id,
                handler=props["Handler"],
                timeout_s=int(props.get("Timeout", 3)),
                environment=props.get("Environment", {}).get("Variables", {}),
                reserved_concurrency=props.get("ReservedConcurrentExecutions"),
            )
    found.event_sources = _event_sources(api["Resources"])
    found.schedules = _schedules(api["Resources"])
    worker = next((f for f in found.functions.values() if f.handler == "handlers.worker.handler"), None)
    found.event_source = found.event_sources.get(worker.logical_id, {}) if worker else {}
    methods = _routes(api["Resources"])
    found.routes = [route for route in methods if route.method != "OPTIONS"]
    found.preflights = [route for route in methods if route.method == "OPTIONS"]
    found.gateway_responses = _gateway_responses(api["Resources"])
    for resource in auth["Resources"].values():
        if resource["Type"] == "AWS::Cognito::UserPool":
            found.password_policy = resource["Properties"].get("Policies", {}).get("PasswordPolicy", {})
            found.mfa_configuration = resource["Properties"].get("MfaConfiguration", "OFF")
    found.knowledge = load_knowledge(cdk_out, prefix)
    return found


def _event_sources(resources: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each function's SQS event source mapping: batch size and maximum concurrency."""
    found = {}
    for resource in resources.values():
        if resource["Type"] == "AWS::Lambda::EventSourceMapping":
            props = resource["Properties"]
            function = _function_of(props.get("FunctionName"), resources) or ""
            found[function] = {
                "batch_size": props.get("BatchSize", 10),
                "max_concurrency": props.get("ScalingConfig", {}).get("MaximumConcurrency", 2),
                "source": props.get("EventSourceArn"),
            }
    return found


_RATE = re.compile(r"rate\((\d+) (minute|minutes|hour|hours|day|days)\)")
_UNIT_S = {"minute": 60, "hour": 3600, "day": 86400}


def _schedules(resources: dict[str, Any]) -> dict[str, float]:
    """Each scheduled function's period: EventBridge rules' and Scheduler schedules' rate() expressions."""
    found = {}
    for resource in resources.values():
        props = resource.get("Properties", {})
        if resource["Type"] == "AWS::Events::Rule" and props.get("ScheduleExpression"):
            targets = [target.get("Arn") for target in props.get("Targets") or []]
        elif resource["Type"] == "AWS::Scheduler::Schedule":
            targets = [(props.get("Target") or {}).get("Arn")]
        else:
            continue
        if str(props.get("State", "ENABLED")).upper() == "DISABLED":
            continue
        rate = _RATE.fullmatch(str(props.get("ScheduleExpression", "")).strip())
        if rate is None:
            raise ValueError(f"the sandbox runs rate() schedules only, not {props.get('ScheduleExpression')!r}")
        period = int(rate.group(1)) * _UNIT_S[rate.group(2).rstrip("s")]
        for arn in targets:
            function = arn.get("Fn::GetAtt", [None])[0] if isinstance(arn, dict) else None
            if function in resources and resources[function]["Type"] == "AWS::Lambda::Function":
                found[function] = float(period)
    return found


def _stack_regions(cdk_out: Path) -> dict[str, str]:
    """Stack name -> region, from the cloud assembly's manifest (aws://account/region)."""
    if not (cdk_out / "manifest.json").exists():
        return {}
    manifest = _read(cdk_out / "manifest.json")
    return {
        name: str(artifact.get("environment", "")).rsplit("/", 1)[-1]
        for name, artifact in manifest.get("artifacts", {}).items()
        if artifact.get("type") == "aws:cloudformation:stack"
    }


def load_knowledge(cdk_out: Path, prefix: str) -> list[KnowledgeSpec]:
    """Both regions' knowledge stacks with the ingest Lambda of the API stack beside each; [] without knowledge."""
    regions = _stack_regions(cdk_out)
    found = []
    for suffix in ("", "-DR"):
        name = f"{prefix}-Knowledge{suffix}"
        if name not in regions or not (cdk_out / f"{name}.template.json").exists():
            continue
        resources = _read(cdk_out / f"{name}.template.json")["Resources"]
        api = _read(cdk_out / f"{prefix}-Api{suffix}.template.json")["Resources"]
        found.append(_knowledge(name, regions[name], resources, api))
    return found


def _knowledge(name: str, region: str, resources: dict[str, Any], api: dict[str, Any]) -> KnowledgeSpec:
    def of_type(kind: str) -> list[tuple[str, dict[str, Any]]]:
        return [(lid, r.get("Properties", {})) for lid, r in resources.items() if r["Type"] == kind]

    notifications = of_type("Custom::S3BucketNotifications")
    if len(notifications) != 1:
        raise ValueError(f"{name}: expected one bucket with notifications, found {len(notifications)}")
    _, notification = notifications[0]
    bucket_id = _ref(notification["BucketName"]) or ""
    bucket = resources[bucket_id]["Properties"]
    configs = notification["NotificationConfiguration"].get("QueueConfigurations", [])
    queue_id = configs[0]["QueueArn"]["Fn::GetAtt"][0]
    queues = {
        lid: QueueSpec(
            logical_id=lid,
            visibility_timeout=int(props.get("VisibilityTimeout", 30)),
            retention_s=int(props.get("MessageRetentionPeriod", 345_600)),
            max_receive_count=int(props["RedrivePolicy"]["maxReceiveCount"]) if props.get("RedrivePolicy") else None,
            dlq_logical_id=(props.get("RedrivePolicy") or {})
            .get("deadLetterTargetArn", {})
            .get("Fn::GetAtt", [None])[0],
        )
        for lid, props in of_type("AWS::SQS::Queue")
    }
    ((vector_bucket_id, _),) = of_type("AWS::S3Vectors::VectorBucket")
    ((index_id, index),) = of_type("AWS::S3Vectors::Index")
    ingest = next(
        (lid, props) for lid, props in ((k, r.get("Properties", {})) for k, r in api.items())
        if props.get("Handler") == "handlers.ingest.handler"
    )  # fmt: skip
    mapping = _event_sources(api).get(ingest[0], {})
    rules = (bucket.get("ReplicationConfiguration") or {}).get("Rules") or []
    replication = None
    if rules:
        rule = rules[0]
        replication = ReplicationSpec(
            prefix=(rule.get("Filter") or {}).get("Prefix", rule.get("Prefix", "")),
            delete_markers=(rule.get("DeleteMarkerReplication") or {}).get("Status") == "Enabled",
            destination=rule["Destination"]["Bucket"],
        )
    filters = []
    for config in configs:
        rules_ = {r["Name"].lower(): r["Value"] for r in config.get("Filter", {}).get("Key", {}).get("FilterRules", [])}
        filters.append(
            NotificationSpec(
                events=tuple(config["Events"]), prefix=rules_.get("prefix", ""), suffix=rules_.get("suffix", "")
            )
        )
    return KnowledgeSpec(
        stack_name=name,
        region=region,
        bucket_logical_id=bucket_id,
        versioned=(bucket.get("VersioningConfiguration") or {}).get("Status") == "Enabled",
        notifications=tuple(filters),
        queue=queues[queue_id],
        dlq=queues[queues[queue_id].dlq_logical_id or ""],
        vector_bucket_logical_id=vector_bucket_id,
        index_logical_id=index_id,
        dimension=int(index["Dimension"]),
        data_type=str(index.get("DataType", "float32")),
        distance_metric=str(index.get("DistanceMetric", "cosine")),
        non_filterable_keys=tuple((index.get("MetadataConfiguration") or {}).get("NonFilterableMetadataKeys", [])),
        ingest=FunctionSpec(
            logical_id=ingest[0],
            handler=ingest[1]["Handler"],
            timeout_s=int(ingest[1].get("Timeout", 3)),
            environment=ingest[1].get("Environment", {}).get("Variables", {}),
            reserved_concurrency=ingest[1].get("ReservedConcurrentExecutions"),
        ),
        batch_size=int(mapping.get("batch_size", 1)),
        max_concurrency=int(mapping.get("max_concurrency", 2)),
        replication=replication,
        cors_rules=tuple((bucket.get("CorsConfiguration") or {}).get("CorsRules") or ()),
    )


def _routes(resources: dict[str, Any]) -> list[Route]:
    parents: dict[str, tuple[str | None, str]] = {}
    for logical_id, resource in resources.items():
        if resource["Type"] == "AWS::ApiGateway::Resource":
            parent = resource["Properties"]["ParentId"]
            parent_id = parent.get("Ref") if "Ref" in parent else None
            parents[logical_id] = (parent_id, resource["Properties"]["PathPart"])

    def path_of(logical_id: str | None) -> str:
        if logical_id is None or logical_id not in parents:
            return ""
        parent, part = parents[logical_id]
        return f"{path_of(parent)}/{part}"

    routes = []
    for resource in resources.values():
        if resource["Type"] != "AWS::ApiGateway::Method":
            continue
        props = resource["Properties"]
        ref = props["ResourceId"].get("Ref") if isinstance(props["ResourceId"], dict) else None
        validator = resources.get(_ref(props.get("RequestValidatorId")) or "", {}).get("Properties", {})
        models = {
            content_type.lower(): resources[name]["Properties"].get("Schema", {})
            for content_type, model in (props.get("RequestModels") or {}).items()
            if (name := _ref(model)) in resources
        }
        routes.append(
            Route(
                path=path_of(ref) or "/",
                method=props["HttpMethod"],
                authorized=props.get("AuthorizationType") == "COGNITO_USER_POOLS",
                request_models=models,
                validate_body=bool(validator.get("ValidateRequestBody")),
                validate_parameters=bool(validator.get("ValidateRequestParameters")),
                required_parameters=tuple(
                    sorted(
                        name.removeprefix("method.request.")
                        for name, required in (props.get("RequestParameters") or {}).items()
                        if required is True or str(required).lower() == "true"
                    )
                ),
                mock=_mock(props.get("Integration") or {}),
            )
        )
    return sorted(routes, key=lambda r: (r.path, r.method))


def _mock(integration: dict[str, Any]) -> MockResponse | None:
    """A MOCK integration's default response (the one without a selection pattern)."""
    if integration.get("Type") != "MOCK":
        return None
    responses = integration.get("IntegrationResponses") or [{"StatusCode": "200"}]
    default = next((r for r in responses if not r.get("SelectionPattern")), responses[0])
    headers = {
        name.removeprefix("method.response.header."): _static(value)
        for name, value in (default.get("ResponseParameters") or {}).items()
        if name.startswith("method.response.header.") and _static(value) is not None
    }
    body = (default.get("ResponseTemplates") or {}).get("application/json", "")
    return MockResponse(status=int(default.get("StatusCode", 200)), headers=headers, body=body)


def _gateway_responses(resources: dict[str, Any]) -> dict[str, GatewayResponseSpec]:
    found = {}
    for resource in resources.values():
        if resource["Type"] != "AWS::ApiGateway::GatewayResponse":
            continue
        props = resource["Properties"]
        kind = props["ResponseType"]
        found[kind] = GatewayResponseSpec(
            response_type=kind,
            status_code=int(props["StatusCode"]) if props.get("StatusCode") else None,
            templates=dict(props.get("ResponseTemplates") or {}),
            headers={
                name.removeprefix("gatewayresponse.header."): value
                for name, value in (props.get("ResponseParameters") or {}).items()
                # A CloudFormation expression (the site's origin in Access-Control-Allow-Origin) is AWS-only.
                if name.startswith("gatewayresponse.header.") and isinstance(value, str)
            },
        )
    return found


def _stack_outputs(value: Any) -> set[tuple[str, str | None]]:
    """The (stack, region) pairs whose outputs a value reads with Fn::GetStackOutput (CDK's weak references);
    region None: the reader's own region."""
    if isinstance(value, list):
        return {pair for item in value for pair in _stack_outputs(item)}
    if not isinstance(value, dict):
        return set()
    found = {pair for item in value.values() for pair in _stack_outputs(item)}
    output = value.get("Fn::GetStackOutput")
    if isinstance(output, dict) and isinstance(output.get("StackName"), str):
        found.add((output["StackName"], output.get("Region")))
    return found


def _ref(value: Any) -> str | None:
    return value.get("Ref") if isinstance(value, dict) else None


def _function_of(value: Any, resources: dict[str, Any]) -> str | None:
    """The function a FunctionName names: {"Ref": function}, or an alias of it (with a cold-start option on, the
    event sources name `<function>:live`, a join over the alias's Ref), as Lambda resolves a qualified name."""

    def refs(node: Any) -> list[str]:
        if isinstance(node, dict):
            return [node["Ref"]] if "Ref" in node else [r for child in node.values() for r in refs(child)]
        if isinstance(node, list):
            return [r for child in node for r in refs(child)]
        return []

    for logical_id in refs(value):
        resource = resources.get(logical_id, {})
        if resource.get("Type") == "AWS::Lambda::Alias":
            return _ref(resource["Properties"].get("FunctionName"))
        if resource.get("Type") == "AWS::Lambda::Function":
            return logical_id
    return None


def _static(value: Any) -> str | None:
    """A mapping expression's value when it is a static string ('value'); None for anything else."""
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == "'":
        return value[1:-1]
    return None


def _read(path: Path) -> dict[str, Any]:
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: run `make synth` first (make dev does it)")
    return json.loads(path.read_text())  # type: ignore[no-any-return]
