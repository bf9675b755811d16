"""The static site: CloudFront in front of the site buckets (an origin group: the primary region's, then the DR
region's). By default without a web ACL (`cloudfront_waf: false`, the idle-cost choice: static files only, Shield
Standard, the finding suppressed with that reason); with `cloudfront_waf: true` behind a CLOUDFRONT-scope WAF web ACL,
which AWS accepts only in us-east-1: in the web stack with primary us-east-1, in a small Edge stack there otherwise."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, Environment, Stack
from aws_cdk import aws_kms as kms
from aws_cdk.assertions import Match, Template

from stacks.config import AppConfig
from stacks.edge_stack import EDGE_REGION, cloudfront_web_acl
from tests.infra.conftest import Synth, cdk_context, open_nag_findings

WEB = "Bulwark-dev-Web"
EDGE = "Bulwark-dev-Edge"
# Static files only behind CloudFront: the reputation list, not the application exploit groups (cost: $1 each).
MANAGED_GROUPS = ("AWSManagedRulesAmazonIpReputationList",)
EU_MODELS = [
    {"model_id": "eu.amazon.nova-lite-v1:0", "region": region, "max_tokens": 1024}
    for region in ("eu-west-1", "eu-central-1")
]
_SYNTHS: dict[str, Synth] = {}


def _synth_once(name: str, tmp_path_factory: pytest.TempPathFactory, **overrides: Any) -> Synth:
    if name not in _SYNTHS:
        from app import build_app

        app = App(context=cdk_context(**overrides), outdir=str(tmp_path_factory.mktemp(f"cdk.out.{name}")))
        build_app(app)
        app.synth()
        _SYNTHS[name] = Synth(app)
    return _SYNTHS[name]


def synth_outside_us_east_1(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    """The whole app with primary eu-west-1 / DR eu-central-1 and the CloudFront WAF on (so the Edge stack exists),
    synthesized once per session (with nag)."""
    return _synth_once(
        "eu", tmp_path_factory, primary_region="eu-west-1", dr_region="eu-central-1", models=EU_MODELS,
        cloudfront_waf=True,
    )  # fmt: skip


@pytest.fixture(scope="module")
def eu(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    return synth_outside_us_east_1(tmp_path_factory)


@pytest.fixture(scope="module")
def with_cdn_waf(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    """The default regions (us-east-1 / us-west-2) with `cloudfront_waf: true`."""
    return _synth_once("cdn-waf", tmp_path_factory, cloudfront_waf=True)


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


def test_by_default_the_site_has_no_acl_and_says_why(synth: Synth) -> None:
    """The default (`cloudfront_waf: false`): no CLOUDFRONT ACL anywhere and no Edge stack, the distribution without
    one, the findings suppressed with the reason, every nag pack clean, and the regional ACLs of the API (both regions)
    and of Cognito untouched."""
    assert AppConfig.from_context(cdk_context()["bulwark"]).cloudfront_waf is False
    assert EDGE not in synth.stacks
    for stack in synth.stacks:
        for acl in synth.template(stack).find_resources("AWS::WAFv2::WebACL").values():
            assert acl["Properties"]["Scope"] == "REGIONAL", stack
    web = synth.template(WEB)
    web.resource_count_is("AWS::WAFv2::WebACL", 0)
    (distribution,) = web.find_resources("AWS::CloudFront::Distribution").values()
    assert "WebACLId" not in distribution["Properties"]["DistributionConfig"]
    checkov = {s["id"]: s["comment"] for s in distribution["Metadata"]["checkov"]["skip"]}
    nag = {r["id"]: r["reason"] for r in distribution["Metadata"]["cdk_nag"]["rules_to_suppress"]}
    for reason in (checkov["CKV_AWS_68"], nag["AwsSolutions-CFR2"]):
        assert "cloudfront_waf" in reason and "static files" in reason
    assert open_nag_findings({WEB: synth.stacks[WEB]}) == []
    for api in ("Bulwark-dev-Api", "Bulwark-dev-Api-DR"):
        synth.template(api).resource_count_is("AWS::WAFv2::WebACL", int(api.endswith("-DR")))


def test_opted_in_in_us_east_1_the_web_stack_holds_the_acl_and_attaches_it(with_cdn_waf: Synth) -> None:
    synth = with_cdn_waf
    assert EDGE not in synth.stacks, "the primary region is us-east-1: no Edge stack is needed"
    template = synth.template(WEB)
    acl_id = _assert_cloudfront_web_acl(template)
    template.has_resource_properties(
        "AWS::CloudFront::Distribution",
        {"DistributionConfig": Match.object_like({"WebACLId": {"Fn::GetAtt": [acl_id, "Arn"]}})},
    )


def test_opted_in_the_cloudfront_waf_finding_is_met_not_suppressed(with_cdn_waf: Synth) -> None:
    synth = with_cdn_waf
    rows = _nag_rows(synth.app.outdir, "AwsSolutions", WEB)
    cfr2 = [row for row in rows if row["Rule ID"] == "AwsSolutions-CFR2"]
    assert cfr2 and {row["Compliance"] for row in cfr2} == {"Compliant"}
    for distribution in synth.template(WEB).find_resources("AWS::CloudFront::Distribution").values():
        suppressed = distribution.get("Metadata", {}).get("cdk_nag", {}).get("rules_to_suppress", [])
        assert "AwsSolutions-CFR2" not in {rule["id"] for rule in suppressed}


def test_every_web_log_group_is_kms_encrypted(synth: Synth, with_cdn_waf: Synth) -> None:
    """The WAF's log group (with the ACL) and any other: each with a KMS key."""
    assert with_cdn_waf.template(WEB).find_resources("AWS::Logs::LogGroup")
    for template in (synth.template(WEB), with_cdn_waf.template(WEB)):
        for group in template.find_resources("AWS::Logs::LogGroup").values():
            assert "KmsKeyId" in group["Properties"]


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
    assert open_nag_findings({EDGE: eu.stacks[EDGE]}) == []
    for pack in ("AwsSolutions", "NIST.800.53.R5", "HIPAA.Security"):
        rows = _nag_rows(eu.app.outdir, pack, EDGE)
        assert rows and {row["Compliance"] for row in rows} <= {"Compliant", "Suppressed", "UNKNOWN"}


def test_a_cloudfront_acl_outside_us_east_1_is_refused() -> None:
    config = AppConfig.from_context(cdk_context()["bulwark"])
    stack = Stack(App(), "Elsewhere", env=Environment(region="eu-west-1"))
    with pytest.raises(ValueError, match="must be created in us-east-1, not eu-west-1"):
        cloudfront_web_acl(stack, "Acl", config=config, key=kms.Key(stack, "Key"))


# --- the static site survives a regional outage: an origin group, the DR region's bucket as failover ----------------
WEB_DR = "Bulwark-dev-Web-DR"
CONTENT_DR = "Bulwark-dev-WebContent-DR"


def _distribution(synth: Synth) -> tuple[str, dict[str, Any]]:
    ((cdn_id, cdn),) = synth.template(WEB).find_resources("AWS::CloudFront::Distribution").items()
    return cdn_id, cdn["Properties"]["DistributionConfig"]


def _site_bucket(template: Template) -> str:
    """The logical id of the stack's site bucket (the one that is not an access-log destination)."""
    (bucket_id,) = [
        lid
        for lid, bucket in template.find_resources("AWS::S3::Bucket").items()
        if "LoggingConfiguration" in bucket["Properties"]
    ]
    return bucket_id


def test_the_distribution_serves_an_origin_group_primary_bucket_then_the_dr_bucket(synth: Synth) -> None:
    _, config = _distribution(synth)
    (group,) = config["OriginGroups"]["Items"]
    assert config["DefaultCacheBehavior"]["TargetOriginId"] == group["Id"]
    assert sorted(group["FailoverCriteria"]["StatusCodes"]["Items"]) == [403, 404, 500, 502, 503, 504]
    members = [member["OriginId"] for member in group["Members"]["Items"]]
    origins = {origin["Id"]: origin for origin in config["Origins"]}
    assert len(members) == 2 and set(members) == set(origins)
    primary, failover = (origins[member] for member in members)

    assert primary["DomainName"] == {"Fn::GetAtt": [_site_bucket(synth.template(WEB)), "RegionalDomainName"]}
    # The DR bucket's name is read from the DR stack at this stack's deploy (no writer in the DR stack).
    (name, suffix) = failover["DomainName"]["Fn::Join"][1][:2]
    assert name["Fn::GetStackOutput"]["StackName"] == WEB_DR
    assert name["Fn::GetStackOutput"]["Region"] == "us-west-2"
    assert suffix == ".s3.us-west-2."
    # Both through origin access control, neither through a legacy identity.
    (oac,) = synth.template(WEB).find_resources("AWS::CloudFront::OriginAccessControl")
    for origin in (primary, failover):
        assert origin["OriginAccessControlId"] == {"Fn::GetAtt": [oac, "Id"]}
        assert origin["S3OriginConfig"] == {"OriginAccessIdentity": ""}


def _allows_only_the_distribution(policy: dict[str, Any], *, bucket: Any, distribution: Any) -> None:
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    (tls,) = [s for s in statements if s["Effect"] == "Deny"]
    assert tls["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} and tls["Action"] == "s3:*"
    (read,) = [s for s in statements if s.get("Principal") == {"Service": "cloudfront.amazonaws.com"}]
    assert read["Effect"] == "Allow" and read["Action"] == "s3:GetObject"
    assert read["Resource"] == {"Fn::Join": ["", [bucket, "/*"]]}
    source = read["Condition"]["StringEquals"]["AWS:SourceArn"]["Fn::Join"][1]
    assert source[-2:] == [":distribution/", distribution]
    assert len(statements) == 2, "nothing else may read the site"


def test_each_site_bucket_policy_allows_the_distribution_through_oac(synth: Synth) -> None:
    cdn_id, _ = _distribution(synth)
    web = synth.template(WEB)
    site = _site_bucket(web)
    (primary_policy,) = [p for p in web.find_resources("AWS::S3::BucketPolicy").values()
                         if p["Properties"]["Bucket"] == {"Ref": site}]  # fmt: skip
    _allows_only_the_distribution(primary_policy, bucket={"Fn::GetAtt": [site, "Arn"]}, distribution={"Ref": cdn_id})

    # The DR bucket's one policy is in the DR WebContent stack, deployed after the distribution it names; the
    # distribution's id reaches it through CDK's reader of this region's SSM parameters (no call to the primary).
    content = synth.template(CONTENT_DR)
    (dr_policy,) = content.find_resources("AWS::S3::BucketPolicy").values()
    assert dr_policy["Properties"]["Bucket"]["Fn::ImportValue"].startswith(f"{WEB_DR}:")
    arn = dr_policy["Properties"]["PolicyDocument"]["Statement"][1]["Resource"]["Fn::Join"][1][0]
    assert arn["Fn::ImportValue"].startswith(f"{WEB_DR}:") and "Arn" in arn["Fn::ImportValue"]
    (reader,) = content.find_resources("Custom::CrossRegionExportReader")
    distribution = dr_policy["Properties"]["PolicyDocument"]["Statement"][1]["Condition"]["StringEquals"]
    distribution = distribution["AWS:SourceArn"]["Fn::Join"][1][-1]
    assert distribution["Fn::GetAtt"][0] == reader and "RefCdn" in distribution["Fn::GetAtt"][1]
    _allows_only_the_distribution(dr_policy, bucket=arn, distribution=distribution)
    assert not synth.template(WEB_DR).find_resources("AWS::S3::BucketPolicy", {"Properties": {"Bucket": {
        "Ref": _site_bucket(synth.template(WEB_DR))}}})  # fmt: skip  # one policy per bucket: no second writer


def test_the_dr_site_bucket_is_hardened_like_the_primary_and_logs_in_its_region(synth: Synth) -> None:
    assert synth.stacks[WEB_DR].region == "us-west-2"
    for name in (WEB, WEB_DR):
        template = synth.template(name)
        site = _site_bucket(template)
        bucket = template.to_json()["Resources"][site]
        assert bucket["DeletionPolicy"] == "Retain"
        properties = bucket["Properties"]
        assert properties["PublicAccessBlockConfiguration"] == dict.fromkeys(
            ("BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets"), True
        )
        assert properties["VersioningConfiguration"] == {"Status": "Enabled"}
        assert properties["BucketEncryption"]["ServerSideEncryptionConfiguration"][0][
            "ServerSideEncryptionByDefault"] == {"SSEAlgorithm": "AES256"}  # fmt: skip
        logs = properties["LoggingConfiguration"]["DestinationBucketName"]
        assert set(logs) == {"Ref"} and logs["Ref"] in template.find_resources("AWS::S3::Bucket"), name


def test_the_dr_site_stack_reads_nothing_from_the_primary_region_and_comes_before_the_distribution(
    synth: Synth,
) -> None:
    template = synth.template(WEB_DR).to_json()
    assert not [r for r in template["Resources"].values() if r["Type"].startswith("Custom::")]
    assert "Fn::GetStackOutput" not in json.dumps(template) and "Fn::ImportValue" not in json.dumps(template)
    assert {d.stack_name for d in synth.stacks[WEB].dependencies} >= {WEB_DR}
    reads = {(o["StackName"], o["Region"]) for o in _walk_stack_outputs(synth.template(WEB).to_json())}
    assert reads == {(WEB_DR, "us-west-2")}


def _walk_stack_outputs(value: Any) -> list[dict[str, str]]:
    if isinstance(value, dict):
        return [value["Fn::GetStackOutput"]] if "Fn::GetStackOutput" in value else [
            found for item in value.values() for found in _walk_stack_outputs(item)
        ]  # fmt: skip
    if isinstance(value, list):
        return [found for item in value for found in _walk_stack_outputs(item)]
    return []


def test_outside_us_east_1_the_origin_group_fails_over_to_the_dr_region(eu: Synth) -> None:
    (cdn,) = eu.template(WEB).find_resources("AWS::CloudFront::Distribution").values()
    config = cdn["Properties"]["DistributionConfig"]
    assert len(config["OriginGroups"]["Items"]) == 1
    failover = config["Origins"][1]["DomainName"]["Fn::Join"][1]
    assert failover[0]["Fn::GetStackOutput"] == {
        "StackName": WEB_DR, "Region": "eu-central-1", "OutputName": failover[0]["Fn::GetStackOutput"]["OutputName"]
    }  # fmt: skip
    assert failover[1] == ".s3.eu-central-1."


def test_without_the_cloudfront_waf_outside_us_east_1_there_is_no_edge_stack(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """`cloudfront_waf: false` with a primary region other than us-east-1: nothing is deployed to us-east-1 (the Edge
    stack exists only to hold CloudFront's ACL), the distribution has no ACL, every nag pack is clean."""
    synth = _synth_once(
        "eu-no-cdn-waf", tmp_path_factory, primary_region="eu-west-1", dr_region="eu-central-1", models=EU_MODELS,
        cloudfront_waf=False,
    )  # fmt: skip
    assert EDGE not in synth.stacks
    assert {stack.region for stack in synth.app.node.children if isinstance(stack, Stack)} == {
        "eu-west-1", "eu-central-1"
    }  # fmt: skip
    web = synth.template(WEB)
    web.resource_count_is("AWS::WAFv2::WebACL", 0)
    (distribution,) = web.find_resources("AWS::CloudFront::Distribution").values()
    assert "WebACLId" not in distribution["Properties"]["DistributionConfig"]
    assert open_nag_findings({WEB: synth.stacks[WEB]}) == []
    synth.template("Bulwark-dev-Api-DR").resource_count_is("AWS::WAFv2::WebACL", 1)
