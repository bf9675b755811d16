"""`make models` (tools/models_report.py): each region's chain with exact versions, checked against templates."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from stacks.config import AppConfig
from tests.conftest import cdk_context
from tools import models_report

PROVISIONED = "arn:aws:bedrock:us-west-2:123456789012:provisioned-model/abc123"


MODELS = [
    {"model_id": "us.amazon.nova-lite-v1:0", "region": "us-east-1"},
    {"model_id": PROVISIONED, "region": "us-west-2"},
    {"model_id": "amazon.nova-pro-v1:0", "region": "us-east-1", "application_profile": True},
]


def config() -> AppConfig:
    return AppConfig.from_context({**cdk_context()["bulwark"], "models": MODELS})


def test_each_region_lists_its_chain_local_targets_first_with_versions_and_how_called() -> None:
    primary = models_report.chain_rows(config(), "us-east-1")
    dr = models_report.chain_rows(config(), "us-west-2")

    assert [(r["model"], r["version"], r["region"]) for r in primary] == [
        ("us.amazon.nova-lite-v1:0", "v1:0", "us-east-1"),
        ("amazon.nova-pro-v1:0", "v1:0", "us-east-1"),
        ("provisioned-model/abc123", "provisioned", "us-west-2"),  # never the account id
    ]
    assert [r["region"] for r in dr] == ["us-west-2", "us-east-1", "us-east-1"]
    assert primary[0]["called as"] == "system inference profile"
    assert primary[0]["may run in"] == "us-east-1,us-east-2,us-west-2"
    assert primary[1]["called as"] == "foundation model in an application inference profile"
    assert primary[2]["called as"] == "provisioned throughput (existing)" and primary[2]["guardrail"] == "us-west-2's"
    report = models_report.render(config())
    assert "us-east-1 (primary)" in report and "us-west-2 (DR)" in report


def write_templates(tmp_path: Path, chains: dict[str, list[dict[str, Any]]]) -> Path:
    for stack, entries in chains.items():
        body = json.dumps(entries)
        cut = body.index("gr-")  # a guardrail id as the template holds it: a reference inside a Fn::Join
        variables = {"MODEL_TARGETS": {"Fn::Join": ["", [body[:cut], {"Fn::ImportValue": "x"}, body[cut + 5 :]]]}}
        resources = {"Chat": {"Type": "AWS::Lambda::Function", "Properties": {"Environment": {"Variables": variables}}}}
        (tmp_path / f"{stack}.template.json").write_text(json.dumps({"Resources": resources}))
    return tmp_path


def entry(model_id: str, region: str, name: str | None = None) -> dict[str, Any]:
    return {"model_id": model_id, "region": region, "guardrail_id": "gr-12", **({"name": name} if name else {})}


def test_the_templates_must_call_the_configured_chains_in_order(tmp_path: Path) -> None:
    cfg = config()
    lite, pro = (
        entry("us.amazon.nova-lite-v1:0", "us-east-1"),
        entry("arn-of-app-profile", "us-east-1", "amazon.nova-pro-v1:0"),
    )
    provisioned = entry(PROVISIONED, "us-west-2", "provisioned-model/abc123")
    good = write_templates(
        tmp_path, {"Bulwark-dev-Api": [lite, pro, provisioned], "Bulwark-dev-Api-DR": [provisioned, lite, pro]}
    )
    assert models_report.differences(cfg, models_report.template_chains(good, cfg)) == []

    write_templates(tmp_path, {"Bulwark-dev-Api-DR": [lite, pro, provisioned]})  # DR not local-first
    (problem,) = models_report.differences(cfg, models_report.template_chains(tmp_path, cfg))
    assert problem.startswith("us-west-2: config says")
    cdk_json = tmp_path / "cdk.json"
    cdk_json.write_text(json.dumps({"context": {"bulwark": {**cdk_context()["bulwark"], "models": MODELS}}}))
    assert models_report.main(["--cdk-json", str(cdk_json), "--cdk-out", str(tmp_path)]) == 1


def test_rollback_versions_and_what_the_switches_select_now() -> None:
    from core.switches import MODEL_VERSIONS, default_document
    from tools.switch import chain_from_config, with_value

    current, previous = "us.amazon.nova-2-lite-v1:0", "us.amazon.nova-lite-v1:0"
    cfg = AppConfig.from_context(
        {**cdk_context()["bulwark"], "models": [{**MODELS[0], "model_id": current, "previous_versions": [previous]}]}
    )
    (row,) = models_report.chain_rows(cfg, "us-east-1")
    assert (row["version"], row["rollback to"]) == ("v1:0", previous)
    chain = chain_from_config(cfg, "us-east-1")
    assert models_report.switch_lines(default_document(), chain) == [f"  {current}@us-east-1: calls its model_id"]
    rolled = with_value(default_document(), MODEL_VERSIONS, {current: previous})
    assert models_report.switch_lines(rolled, chain) == [
        f"  {current}@us-east-1: calls {previous} (rolled back by switch)"
    ]
    bad = with_value(default_document(), MODEL_VERSIONS, {current: "us.amazon.nova-pro-v1:0"})
    assert models_report.switch_lines(bad, chain)[-1].startswith("  ignored by the Lambdas: model_versions")
