"""CloudFront sits behind a CLOUDFRONT-scope WAF web ACL, which AWS accepts only in us-east-1: in the
web stack with the default primary region, in a small Edge stack there otherwise."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, Environment, Stack
from aws_cdk import aws_kms as kms
from aws_cdk.assertions import Annotations, Match, Template

from stacks.config import AppConfig
from stacks.edge_stack import EDGE_REGION, cloudfront_web_acl
from tests.infra.conftest import Synth, cdk_context

WEB = "Bulwark-dev-Web"
EDGE = "Bulwark-dev-Edge"
MANAGED_GROUPS = (
    "AWSManagedRulesCommonRuleSet",
    "AWSManagedRulesKnownBadInputsRuleSet",
    "AWSManagedRulesAmazonIpReputationList",
)
EU_MODELS = [
    {"model_id": "eu.amazon.nova-lite-v1:0", "region": region, "max_tokens": 1024}
    for region in ("eu-west-1", "eu-central-1")
]
_OUTSIDE_US_EAST_1: dict[str, Synth] = {}


def synth_outside_us_east_1(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    """The whole app with primary eu-west-1 / DR eu-central-1, synthesized once per session (with nag)."""
    if "eu" not in _OUTSIDE_US_EAST_1:
        from app import build_app

        context = cdk_context(primary_region="eu-west-1", dr_region="eu-central-1", models=EU_MODELS)
        app = App(context=context, outdir=str(tmp_path_factory.mktemp("cdk.out.eu")))
        build_app(app)
        app.synth()
        _OUTSIDE_US_EAST_1["eu"] = Synth(app)
    return _OUTSIDE_US_EAST_1["eu"]


@pytest.fixture(scope="module")
def eu(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    return synth_outside_us_east_1(tmp_path_factory)


def _waf_rate_limit() -> int:
    return AppConfig.from_context(cdk_context()["bulwark"]).throttling.waf_rate_limit_per_5min


def _assert_cloudfront_web_acl(template: Template) -> str:
    """The ACL's rules, its logging and its log group; returns the ACL's logical id."""
    acls = template.find_resources("AWS::WAFv2::WebACL", {"Properties": {"Scope": "CLOUDFRONT"}})
    assert len(acls) == 1
    ((acl_id, acl),) = acls.items()
    rules = {rule["Name"]: rule for rule in acl["Properties"]["Rules"]}
    assert set(rules) == {"RatePerIp", *MANAGED_GROUPS}
    rate = rules["RatePerIp"]
    assert rate["Action"] == {"Block": {}}
    assert rate["Statement"]["RateBasedStatement"]["AggregateKeyType"] == "IP"
    assert rate["Statement"]["RateBasedStatement"]["Limit"] == _waf_rate_limit()
    for group in MANAGED_GROUPS:
        statement = rules[group]["Statement"]["ManagedRuleGroupStatement"]
        assert (statement["VendorName"], statement["Name"]) == ("AWS", group)
        assert rules[group]["OverrideAction"] == {"None": {}}, f"{group} must block, not only count"

    template.has_resource_properties(
        "AWS::WAFv2::LoggingConfiguration",
        {
            "ResourceArn": {"Fn::GetAtt": [acl_id, "Arn"]},
            "LogDestinationConfigs": [Match.any_value()],
            "RedactedFields": Match.array_with(
                [{"SingleHeader": {"Name": "authorization"}}, {"SingleHeader": {"Name": "cookie"}}]
            ),
        },
    )
    template.has_resource_properties(
        "AWS::Logs::LogGroup",
        {
            "LogGroupName": Match.string_like_regexp(r"^aws-waf-logs-"),
            "KmsKeyId": Match.any_value(),
            "RetentionInDays": Match.any_value(),
        },
    )
    return acl_id


def _nag_rows(outdir: str, pack: str, stack: str) -> list[dict[str, Any]]:
    return list(csv.DictReader((Path(outdir) / f"{pack}--{stack}-NagReport.csv").open()))


def test_default_region_the_web_stack_holds_the_acl_and_attaches_it(synth: Synth) -> None:
    assert EDGE not in synth.stacks, "the primary region is us-east-1: no Edge stack is needed"
    template = synth.template(WEB)
    acl_id = _assert_cloudfront_web_acl(template)
    template.has_resource_properties(
        "AWS::CloudFront::Distribution",
        {"DistributionConfig": Match.object_like({"WebACLId": {"Fn::GetAtt": [acl_id, "Arn"]}})},
    )


def test_the_cloudfront_waf_finding_is_met_not_suppressed(synth: Synth) -> None:
    rows = _nag_rows(synth.app.outdir, "AwsSolutions", WEB)
    cfr2 = [row for row in rows if row["Rule ID"] == "AwsSolutions-CFR2"]
    assert cfr2 and {row["Compliance"] for row in cfr2} == {"Compliant"}
    for distribution in synth.template(WEB).find_resources("AWS::CloudFront::Distribution").values():
        suppressed = distribution.get("Metadata", {}).get("cdk_nag", {}).get("rules_to_suppress", [])
        assert "AwsSolutions-CFR2" not in {rule["id"] for rule in suppressed}


def test_every_web_log_group_is_kms_encrypted(synth: Synth) -> None:
    template = synth.template(WEB)
    assert template.find_resources("AWS::Logs::LogGroup")
    template.all_resources_properties("AWS::Logs::LogGroup", {"KmsKeyId": Match.any_value()})


def test_outside_us_east_1_an_edge_stack_there_holds_the_acl(eu: Synth) -> None:
    assert eu.stacks[EDGE].region == EDGE_REGION
    assert eu.stacks[WEB].region == "eu-west-1"
    _assert_cloudfront_web_acl(eu.template(EDGE))
    eu.template(EDGE).all_resources_properties("AWS::KMS::Key", {"EnableKeyRotation": True})

    web = eu.template(WEB)
    web.resource_count_is("AWS::WAFv2::WebACL", 0)
    # The ARN arrives through CDK's cross-region reference (an SSM parameter read by a custom resource).
    readers = web.find_resources("Custom::CrossRegionExportReader")
    assert len(readers) == 1
    (reader_id,) = readers
    web.has_resource_properties(
        "AWS::CloudFront::Distribution",
        {
            "DistributionConfig": Match.object_like(
                {"WebACLId": {"Fn::GetAtt": [reader_id, Match.string_like_regexp(r"CdnWebAcl.*Arn")]}}
            )
        },
    )


def test_the_edge_stack_passes_every_nag_pack(eu: Synth) -> None:
    annotations = Annotations.from_stack(eu.stacks[EDGE])
    nag = Match.string_like_regexp(r"^(AwsSolutions|NIST\.800\.53\.R5|HIPAA\.Security)-")
    assert annotations.find_error("*", nag) == [] and annotations.find_warning("*", nag) == []
    for pack in ("AwsSolutions", "NIST.800.53.R5", "HIPAA.Security"):
        rows = _nag_rows(eu.app.outdir, pack, EDGE)
        assert rows and {row["Compliance"] for row in rows} <= {"Compliant", "Suppressed", "UNKNOWN"}


def test_a_cloudfront_acl_outside_us_east_1_is_refused() -> None:
    config = AppConfig.from_context(cdk_context()["bulwark"])
    stack = Stack(App(), "Elsewhere", env=Environment(region="eu-west-1"))
    with pytest.raises(ValueError, match="must be created in us-east-1, not eu-west-1"):
        cloudfront_web_acl(stack, "Acl", config=config, key=kms.Key(stack, "Key"))
