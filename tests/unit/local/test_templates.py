"""The sandbox reads event sources from the synthesized templates, also when they name a function's alias."""

from __future__ import annotations

from local.templates import _event_sources

QUEUE = {"Fn::GetAtt": ["Jobs", "Arn"]}
RESOURCES = {
    "Worker": {"Type": "AWS::Lambda::Function", "Properties": {}},
    "WorkerAlias": {"Type": "AWS::Lambda::Alias", "Properties": {"FunctionName": {"Ref": "Worker"}, "Name": "live"}},
    "Ingest": {"Type": "AWS::Lambda::Function", "Properties": {}},
}


def _mapping(function_name: object) -> dict[str, object]:
    return {
        "Type": "AWS::Lambda::EventSourceMapping",
        "Properties": {"FunctionName": function_name, "EventSourceArn": QUEUE, "BatchSize": 1},
    }


def test_a_plain_function_reference() -> None:
    found = _event_sources({**RESOURCES, "Source": _mapping({"Ref": "Ingest"})})
    assert found["Ingest"]["batch_size"] == 1 and found["Ingest"]["source"] == QUEUE


def test_an_alias_qualified_name_maps_to_its_function() -> None:
    # What CDK writes with a cold-start option on: <function name>:live, split out of the alias's Ref.
    qualified = {"Fn::Join": ["", [{"Fn::Select": [6, {"Fn::Split": [":", {"Ref": "WorkerAlias"}]}]}, ":live"]]}
    found = _event_sources({**RESOURCES, "Source": _mapping(qualified)})
    assert set(found) == {"Worker"} and found["Worker"]["source"] == QUEUE
