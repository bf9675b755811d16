"""Cold-start options (issue 13): provisioned concurrency on a "live" alias with scheduled scaling, and SnapStart.

The default deployment has neither (no alias, version, scaling or SnapStart: its template does not change); a
configured variant, synthesized once here with all nag packs, has them and stays nag / cfn-lint clean."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App
from aws_cdk.assertions import Match, Template

from stacks.config import AppConfig, ConfigError
from tests.conftest import ROOT, Synth, cdk_context
from tests.infra.conftest import cfn_lint, open_nag_findings

API, API_DR = "Bulwark-dev-Api", "Bulwark-dev-Api-DR"
CHAT_HOURS = {"days": "MON-FRI", "start_hour": 7, "end_hour": 19}
INGEST_SCHEDULE = [
    {"cron": "cron(0 6 ? * MON-FRI *)", "min": 1, "max": 2},
    {"cron": "0 20 ? * MON-FRI *", "min": 0, "max": 0},
]
CONFIGURED = {
    "chat": {"provisioned_concurrency": 2, "business_hours": CHAT_HOURS},
    "worker": {"snap_start": True},
    "ingest": {"provisioned_concurrency": 1, "schedule": INGEST_SCHEDULE, "in_dr_region": True},
}


@pytest.fixture(scope="module")
def configured(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    from app import build_app

    app = App(context=cdk_context(cold_start=CONFIGURED), outdir=str(tmp_path_factory.mktemp("cdk.out.cold")))
    build_app(app)
    app.synth()
    return Synth(app)


def _function_id(template: Template, handler: str) -> str:
    (logical_id,) = template.find_resources("AWS::Lambda::Function", {"Properties": {"Handler": handler}})
    return logical_id


def _alias_of(template: Template, handler: str) -> tuple[str, dict[str, Any]]:
    function = _function_id(template, handler)
    aliases = {
        logical_id: alias["Properties"]
        for logical_id, alias in template.find_resources("AWS::Lambda::Alias").items()
        if alias["Properties"]["FunctionName"] == {"Ref": function}
    }
    assert len(aliases) == 1, aliases
    return next(iter(aliases.items()))


def _assert_mapping_on_alias(template: Template, handler: str) -> dict[str, Any]:
    """The function's one event source mapping, whose FunctionName is the alias's qualified name (<function>:live,
    taken from the alias's ARN, so the mapping is made after the alias)."""
    alias_id, _ = _alias_of(template, handler)
    mappings = [
        m["Properties"]
        for m in template.find_resources("AWS::Lambda::EventSourceMapping").values()
        if alias_id in str(m["Properties"]["FunctionName"])
    ]
    assert len(mappings) == 1, mappings
    name = mappings[0]["FunctionName"]["Fn::Join"][1]
    assert name[1] == ":live" and name[0]["Fn::Select"][1]["Fn::Split"][1] == {"Ref": alias_id}, name
    return mappings[0]


# --- the default: nothing changes ------------------------------------------------------------------------------


def test_default_has_no_alias_version_scaling_or_snapstart(synth: Synth) -> None:
    for name in synth.stacks:
        template = synth.template(name)
        assert template.find_resources("AWS::ApplicationAutoScaling::ScalableTarget") == {}, name
        for function in template.find_resources("AWS::Lambda::Function").values():
            assert "SnapStart" not in function["Properties"], name
    for name in (API, API_DR):
        template = synth.template(name)
        for handler in ("handlers.chat.handler", "handlers.worker.handler", "handlers.ingest.handler"):
            function = {"Ref": _function_id(template, handler)}
            for kind in ("AWS::Lambda::Alias", "AWS::Lambda::Version"):  # (a durable workflow has its own)
                assert not template.find_resources(kind, {"Properties": {"FunctionName": function}}), (name, handler)
    # Event sources and the API call the functions themselves ($LATEST).
    template = synth.template(API)
    worker = _function_id(template, "handlers.worker.handler")
    template.has_resource_properties("AWS::Lambda::EventSourceMapping", {"FunctionName": {"Ref": worker}})
    chat = _function_id(template, "handlers.chat.handler")
    template.has_resource_properties(
        "AWS::Lambda::Permission",
        {"FunctionName": {"Fn::GetAtt": [chat, "Arn"]}, "Principal": "apigateway.amazonaws.com"},
    )


# --- configured: provisioned concurrency with a schedule -------------------------------------------------------


def test_chat_alias_has_provisioned_concurrency_and_business_hours_actions(configured: Synth) -> None:
    template = configured.template(API)
    alias_id, alias = _alias_of(template, "handlers.chat.handler")
    assert alias["Name"] == "live"
    assert alias["ProvisionedConcurrencyConfig"] == {"ProvisionedConcurrentExecutions": 2}
    assert "Ref" in alias["FunctionVersion"] or "Fn::GetAtt" in alias["FunctionVersion"]
    targets = template.find_resources("AWS::ApplicationAutoScaling::ScalableTarget")
    (target,) = [t["Properties"] for t in targets.values() if alias_id in str(t["Properties"]["ResourceId"])]
    assert target["ScalableDimension"] == "lambda:function:ProvisionedConcurrency"
    assert target["ServiceNamespace"] == "lambda"
    assert (target["MinCapacity"], target["MaxCapacity"]) == (0, 2)
    actions = sorted(
        (a["Schedule"], a["ScalableTargetAction"]["MinCapacity"], a["ScalableTargetAction"]["MaxCapacity"])
        for a in target["ScheduledActions"]
    )
    assert actions == [("cron(0 19 ? * MON-FRI *)", 0, 0), ("cron(0 7 ? * MON-FRI *)", 2, 2)]
    assert "AWSServiceRoleForApplicationAutoScaling_LambdaConcurrency" in str(target["RoleARN"])


def test_api_gateway_invokes_the_chat_alias(configured: Synth) -> None:
    template = configured.template(API)
    alias_id, _ = _alias_of(template, "handlers.chat.handler")
    methods = template.find_resources("AWS::ApiGateway::Method", {"Properties": {"HttpMethod": "POST"}})
    uris = [
        str(m["Properties"]["Integration"].get("Uri")) for m in methods.values() if "Integration" in m["Properties"]
    ]
    lambda_uris = [uri for uri in uris if "lambda" in uri]
    assert lambda_uris and all(alias_id in uri for uri in lambda_uris), lambda_uris
    template.has_resource_properties(
        "AWS::Lambda::Permission", {"FunctionName": {"Ref": alias_id}, "Principal": "apigateway.amazonaws.com"}
    )
    chat = _function_id(template, "handlers.chat.handler")
    assert not template.find_resources(
        "AWS::Lambda::Permission",
        {"Properties": {"FunctionName": {"Fn::GetAtt": [chat, "Arn"]}, "Principal": "apigateway.amazonaws.com"}},
    )


def test_ingest_schedule_list_and_its_event_source_on_the_alias(configured: Synth) -> None:
    for name in (API, API_DR):  # in_dr_region: provisioned in both regions
        template = configured.template(name)
        _alias_id, alias = _alias_of(template, "handlers.ingest.handler")
        assert alias["ProvisionedConcurrencyConfig"] == {"ProvisionedConcurrentExecutions": 1}
        _assert_mapping_on_alias(template, "handlers.ingest.handler")
        template.has_resource_properties(
            "AWS::ApplicationAutoScaling::ScalableTarget",
            {
                "MinCapacity": 0,
                "MaxCapacity": 2,
                "ScheduledActions": Match.array_with(
                    [
                        Match.object_like(
                            {"Schedule": "cron(0 6 ? * MON-FRI *)",
                             "ScalableTargetAction": {"MinCapacity": 1, "MaxCapacity": 2}}
                        ),
                        Match.object_like(
                            {"Schedule": "cron(0 20 ? * MON-FRI *)",
                             "ScalableTargetAction": {"MinCapacity": 0, "MaxCapacity": 0}}
                        ),
                    ]
                ),
            },
        )  # fmt: skip


def test_dr_region_keeps_the_alias_without_provisioned_concurrency_by_default(configured: Synth) -> None:
    template = configured.template(API_DR)
    alias_id, alias = _alias_of(template, "handlers.chat.handler")
    assert "ProvisionedConcurrencyConfig" not in alias
    targets = template.find_resources("AWS::ApplicationAutoScaling::ScalableTarget")
    assert not [t for t in targets.values() if alias_id in str(t["Properties"]["ResourceId"])]


# --- configured: SnapStart -------------------------------------------------------------------------------------


def test_worker_snapstart_on_published_versions_behind_the_alias(configured: Synth) -> None:
    template = configured.template(API)
    worker = _function_id(template, "handlers.worker.handler")
    template.has_resource_properties(
        "AWS::Lambda::Function",
        {"Handler": "handlers.worker.handler", "SnapStart": {"ApplyOn": "PublishedVersions"}},
    )
    versions = template.find_resources("AWS::Lambda::Version", {"Properties": {"FunctionName": {"Ref": worker}}})
    assert len(versions) == 1
    (version_id, version) = next(iter(versions.items()))
    assert version["DeletionPolicy"] == "Delete"  # an old version's snapshot is not kept (and billed)
    _alias_id, alias = _alias_of(template, "handlers.worker.handler")
    assert alias["FunctionVersion"] == {"Fn::GetAtt": [version_id, "Version"]}
    assert "ProvisionedConcurrencyConfig" not in alias
    mapping = _assert_mapping_on_alias(template, "handlers.worker.handler")
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    # Functions without an option keep their plain shape.
    for handler in ("handlers.chat.handler", "handlers.ingest.handler"):
        function = template.find_resources("AWS::Lambda::Function", {"Properties": {"Handler": handler}})
        assert "SnapStart" not in next(iter(function.values()))["Properties"]


# --- refused combinations --------------------------------------------------------------------------------------


def _config(cold_start: dict[str, Any]) -> AppConfig:
    return AppConfig.from_context(cdk_context(cold_start=cold_start)["bulwark"])


@pytest.mark.parametrize(
    ("cold_start", "message"),
    [
        ({"chat": {"snap_start": True, "provisioned_concurrency": 1}}, "cannot both be on"),
        ({"worker": {"business_hours": {}}}, "needs provisioned_concurrency above 0"),
        (
            {"chat": {"provisioned_concurrency": 1, "business_hours": {}, "schedule": INGEST_SCHEDULE}},
            "either schedule or business_hours",
        ),
        ({"chat": {"provisioned_concurrency": 1, "business_hours": {"off_hours": 3}}}, "off_hours must not exceed"),
        ({"chat": {"provisioned_concurrency": 1, "business_hours": {"start_hour": 18, "end_hour": 8}}}, "end_hour"),
        ({"chat": {"provisioned_concurrency": 1, "business_hours": {"days": "weekdays"}}}, "business_hours.days"),
        ({"chat": {"provisioned_concurrency": 1, "schedule": [{"cron": "0 8 * *", "min": 1, "max": 1}]}}, "six fields"),
        ({"chat": {"provisioned_concurrency": 1, "schedule": [{"cron": "0 8 ? * * *", "min": 2, "max": 1}]}}, "max"),
        ({"stream": {"snap_start": True}}, "unknown keys in cold_start: stream"),
    ],
)
def test_invalid_options_refused_with_a_sentence(cold_start: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        _config(cold_start)


def test_defaults_are_off() -> None:
    config = _config({})
    for options in (config.cold_start.chat, config.cold_start.worker, config.cold_start.ingest):
        assert not options.enabled and options.provisioned_concurrency == 0 and not options.snap_start


def test_provisioned_beyond_reserved_concurrency_refused(tmp_path: Path) -> None:
    from app import build_app

    context = cdk_context(cold_start={"chat": {"provisioned_concurrency": 5}}, chat_reserved_concurrency=4)
    with pytest.raises(ConfigError, match="exceeds the function's reserved concurrency"):
        build_app(App(context=context, outdir=str(tmp_path)))


# --- the configured variant is as clean as the default ---------------------------------------------------------


def test_configured_variant_has_no_open_nag_findings(configured: Synth) -> None:
    assert open_nag_findings(configured.stacks) == []


def test_configured_variant_passes_cfn_lint(configured: Synth) -> None:
    templates = sorted(str(p) for p in Path(configured.app.outdir).glob("*Api*.template.json"))
    assert len(templates) == 2
    result = cfn_lint(templates)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]


def test_configured_variant_passes_checkov(configured: Synth) -> None:
    import json
    import os

    checkov = ROOT / ".venv-checkov" / "bin" / "checkov"
    if not checkov.exists():
        pytest.skip("checkov is not installed: `make test` installs it into .venv-checkov (requirements-checkov.txt)")
    templates = sorted(str(p) for p in Path(configured.app.outdir).glob("*Api*.template.json"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")} | {"BC_SKIP_MAPPING": "TRUE"}
    command = [str(checkov), "--framework", "cloudformation", "--skip-download", "--compact", "-o", "json", "-f"]
    result = subprocess.run([*command, *templates], capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode in (0, 1), result.stderr[-3000:]
    output = json.loads(result.stdout)
    report = output[0] if isinstance(output, list) else output
    failed = [f"{c['check_id']} {c['resource']}" for c in report["results"]["failed_checks"]]
    assert failed == []
    assert report["summary"]["passed"] >= 50


# --- what the options cost idle (make cost) --------------------------------------------------------------------


def test_cost_prices_the_scheduled_provisioned_concurrency_and_the_snapshot_cache(configured: Synth) -> None:
    from tests.infra.test_cost import templates
    from tools.cost import MONTH_HOURS, estimate, load_prices

    found = templates(configured)
    prices = load_prices()["lambda"]
    lines = {(line.region, line.item): line for line in estimate(found, _config(CONFIGURED)).idle}

    def memory_gb(stack: str, handler: str) -> float:
        function = configured.template(stack).find_resources(
            "AWS::Lambda::Function", {"Properties": {"Handler": handler}}
        )
        return next(iter(function.values()))["Properties"]["MemorySize"] / 1024

    month_s = MONTH_HOURS * 3600
    # chat: 2 from 07:00 to 19:00 UTC on weekdays (60 of 168 hours); ingest: 1 from 06:00 to 20:00 (70 hours).
    chat = 2 * 60 / 168 * memory_gb(API, "handlers.chat.handler") * month_s * prices["provisioned_gb_second"]
    ingest = 1 * 70 / 168 * memory_gb(API, "handlers.ingest.handler") * month_s * prices["provisioned_gb_second"]
    primary = lines[("us-east-1", "Lambda provisioned concurrency")]
    assert (primary.count, primary.note) == (2, "scheduled")
    assert primary.monthly == pytest.approx(chat + ingest)
    assert lines[("us-west-2", "Lambda provisioned concurrency")].monthly == pytest.approx(ingest)  # in_dr_region
    cache = memory_gb(API, "handlers.worker.handler") * month_s * prices["snapstart_cache_gb_second"]
    for region in ("us-east-1", "us-west-2"):
        assert lines[(region, "Lambda SnapStart snapshot cache")].monthly == pytest.approx(cache)


def test_cost_of_an_unscheduled_alias_is_always_on_and_cron_shapes_are_read() -> None:
    from tools.cost import _hours_of_week, _provisioned_units

    assert _provisioned_units(3, []) == (3, "always on")
    assert _hours_of_week("cron(0 8 ? * MON-FRI *)") == [32, 56, 80, 104, 128]
    assert _hours_of_week("cron(30 22 ? * SAT,1 *)") == [22, 166]
    assert _hours_of_week("cron(0 8 1 * ? *)") is None  # a monthly one: not priced by the week
    assert _provisioned_units(2, [("cron(0 8 1 * ? *)", 0, 0)]) == (2, "schedule not priced: always-on upper bound")
    units, note = _provisioned_units(4, [("cron(0 9 ? * * *)", 4, 4), ("cron(0 17 ? * * *)", 1, 1)])
    assert (units, note) == (pytest.approx((8 * 4 + 16 * 1) / 24), "scheduled")
