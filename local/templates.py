"""Read the synthesized templates (cdk.out) into the facts the sandbox needs.

The sandbox builds its tables, queues, routes and Lambda environments from these, never from a
second hand-written list, so the two cannot drift (tests/integration/test_sandbox.py checks it).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class TableSpec:
    logical_id: str
    key_schema: list[dict[str, str]]
    attributes: list[dict[str, str]]
    ttl_attribute: str | None


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


@dataclass(frozen=True)
class Route:
    path: str  # e.g. /conversations/{conversation_id}
    method: str
    authorized: bool


@dataclass
class Templates:
    tables: dict[str, TableSpec] = field(default_factory=dict)
    queues: dict[str, QueueSpec] = field(default_factory=dict)
    functions: dict[str, FunctionSpec] = field(default_factory=dict)
    routes: list[Route] = field(default_factory=list)
    password_policy: dict[str, Any] = field(default_factory=dict)
    event_source: dict[str, Any] = field(default_factory=dict)

    def function_by_handler(self, handler: str) -> FunctionSpec:
        for spec in self.functions.values():
            if spec.handler == handler:
                return spec
        raise KeyError(f"no function with handler {handler} in the templates")

    def table_for(self, value: Any) -> TableSpec:
        """The table an environment value points to (an Fn::ImportValue of the Data stack's Ref)."""
        text = json.dumps(value)
        for logical_id, spec in self.tables.items():
            if f"ExportsOutputRef{logical_id}" in text:
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
    found = Templates()
    for logical_id, resource in data["Resources"].items():
        if resource["Type"] == "AWS::DynamoDB::GlobalTable":
            props = resource["Properties"]
            ttl = props.get("TimeToLiveSpecification", {})
            found.tables[logical_id] = TableSpec(
                logical_id=logical_id,
                key_schema=props["KeySchema"],
                attributes=props["AttributeDefinitions"],
                ttl_attribute=ttl.get("AttributeName") if ttl.get("Enabled") else None,
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
            )
        elif resource["Type"] == "AWS::Lambda::EventSourceMapping":
            found.event_source = {
                "batch_size": props.get("BatchSize", 10),
                "max_concurrency": props.get("ScalingConfig", {}).get("MaximumConcurrency", 2),
            }
    found.routes = _routes(api["Resources"])
    for resource in auth["Resources"].values():
        if resource["Type"] == "AWS::Cognito::UserPool":
            found.password_policy = resource["Properties"].get("Policies", {}).get("PasswordPolicy", {})
    return found


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
        if resource["Type"] != "AWS::ApiGateway::Method" or resource["Properties"]["HttpMethod"] == "OPTIONS":
            continue
        props = resource["Properties"]
        ref = props["ResourceId"].get("Ref") if isinstance(props["ResourceId"], dict) else None
        routes.append(
            Route(
                path=path_of(ref) or "/",
                method=props["HttpMethod"],
                authorized=props.get("AuthorizationType") == "COGNITO_USER_POOLS",
            )
        )
    return sorted(routes, key=lambda r: (r.path, r.method))


def _read(path: Path) -> dict[str, Any]:
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: run `make synth` first (make dev does it)")
    return json.loads(path.read_text())  # type: ignore[no-any-return]
