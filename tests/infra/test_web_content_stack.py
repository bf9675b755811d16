"""The site's origin and the APIs' hosts, wired both ways: the API stacks allow exactly the CloudFront origin
(CORS), and the UI may fetch only from exactly the two API hosts, Cognito's and the two documents buckets (CSP).
The site is deployed before the APIs, its files and config.json after them."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from stacks.csp import content_security_policy
from stacks.web_content_stack import curated_answers
from tests.infra.conftest import Synth

API_STACKS = ("Bulwark-dev-Api", "Bulwark-dev-Api-DR")
WEB = "Bulwark-dev-Web"
CONTENT = "Bulwark-dev-WebContent"


def flat(value: Any) -> str:
    """A CloudFormation string expression as readable text: ${Stack:Export}, ${reader:param}, amazonaws.com."""
    if isinstance(value, str):
        return value
    if "Fn::Join" in value:
        return "".join(flat(part) for part in value["Fn::Join"][1])
    if value.get("Ref") == "AWS::URLSuffix":
        return "amazonaws.com"
    if "Ref" in value:
        return "${" + value["Ref"] + "}"
    if "Fn::ImportValue" in value:
        return "${" + value["Fn::ImportValue"] + "}"
    if "Fn::GetAtt" in value:
        return "${" + ".".join(value["Fn::GetAtt"]) + "}"
    if "Fn::GetStackOutput" in value:  # a weak reference: read from the producing stack at deploy
        output = value["Fn::GetStackOutput"]
        return "${" + f"{output['StackName']}@{output.get('Region', '')}:{output['OutputName']}" + "}"
    raise AssertionError(f"unexpected expression {value}")


SITE_DOMAIN = re.compile(r"^https://\$\{[^}]*Web[^}]*Cdn[^}]*DomainName[^}]*\}$")


@pytest.mark.parametrize("name", API_STACKS)
def test_the_api_allows_exactly_the_sites_origin_never_star(synth: Synth, name: str) -> None:
    template = synth.template(name)
    origins: list[str] = []
    for method in template.find_resources("AWS::ApiGateway::Method").values():
        for response in method["Properties"].get("Integration", {}).get("IntegrationResponses", []):
            header = response.get("ResponseParameters", {}).get("method.response.header.Access-Control-Allow-Origin")
            if header is not None:
                origins.append(flat(header))
    for response in template.find_resources("AWS::ApiGateway::GatewayResponse").values():
        origins.append(
            flat(response["Properties"]["ResponseParameters"]["gatewayresponse.header.Access-Control-Allow-Origin"])
        )
    (chat,) = template.find_resources(
        "AWS::Lambda::Function", {"Properties": {"Handler": "handlers.chat.handler"}}
    ).values()
    lambda_origin = flat(chat["Properties"]["Environment"]["Variables"]["ALLOWED_ORIGIN"])

    assert len(origins) > 5 and len(set(origins)) == 1, origins  # preflights and gateway responses agree
    (origin,) = set(origins)
    assert origin == f"'{lambda_origin}'" and "*" not in origin
    assert SITE_DOMAIN.match(lambda_origin), lambda_origin  # the distribution's domain from the Web stack
    if name.endswith("-DR"):
        assert "ExportsReader" in lambda_origin  # across regions through CDK's reader


def test_the_site_is_deployed_before_the_apis_and_its_content_after(synth: Synth) -> None:
    def depends(stack: str) -> set[str]:
        return {dependency.stack_name for dependency in synth.stacks[stack].dependencies}

    assert WEB in depends("Bulwark-dev-Api") and WEB in depends("Bulwark-dev-Api-DR")
    assert {"Bulwark-dev-Api", "Bulwark-dev-Api-DR"} <= depends(CONTENT)


def test_the_cloudfront_csp_names_cognito_execute_api_and_s3_in_our_two_regions_only(synth: Synth) -> None:
    (policy,) = synth.template(WEB).find_resources("AWS::CloudFront::ResponseHeadersPolicy").values()
    csp = flat(
        policy["Properties"]["ResponseHeadersPolicyConfig"]["SecurityHeadersConfig"]["ContentSecurityPolicy"][
            "ContentSecurityPolicy"
        ]
    )

    assert csp == content_security_policy(
        connect=[
            "https://cognito-idp.us-east-1.amazonaws.com",
            "https://*.execute-api.us-east-1.amazonaws.com",
            "https://*.execute-api.us-west-2.amazonaws.com",
            # The WebSocket APIs (ADR 0004): CSP's https: sources do not match wss: URLs.
            "wss://*.execute-api.us-east-1.amazonaws.com",
            "wss://*.execute-api.us-west-2.amazonaws.com",
            "https://*.s3.us-east-1.amazonaws.com",
            "https://*.s3.us-west-2.amazonaws.com",
        ]
    )
    assert "https://*.amazonaws.com" not in csp and "frame-ancestors 'none'" in csp


def test_the_cloudfront_csp_lets_the_browser_upload_to_s3_in_our_two_regions(synth: Synth) -> None:
    (policy,) = synth.template(WEB).find_resources("AWS::CloudFront::ResponseHeadersPolicy").values()
    csp = flat(
        policy["Properties"]["ResponseHeadersPolicyConfig"]["SecurityHeadersConfig"]["ContentSecurityPolicy"][
            "ContentSecurityPolicy"
        ]
    )
    connect = csp.split("connect-src ")[1].split(";")[0].split(" ")

    assert "https://*.s3.us-east-1.amazonaws.com" in connect
    assert "https://*.s3.us-west-2.amazonaws.com" in connect


def deployed(synth: Synth, name: str, stack: str = CONTENT) -> tuple[str, dict[str, Any]]:
    """The text of the file `name` as the site's BucketDeployment writes it (deploy-time markers read back as
    ${...}), and its markers; exactly one source may carry it."""
    (deployment,) = synth.template(stack).find_resources("Custom::CDKBucketDeployment").values()
    keys = deployment["Properties"]["SourceObjectKeys"]
    found = [
        (Path(synth.app.outdir) / f"asset.{flat(key).removesuffix('.zip')}" / name, markers)
        for key, markers in zip(keys, deployment["Properties"]["SourceMarkers"], strict=True)
        if (Path(synth.app.outdir) / f"asset.{flat(key).removesuffix('.zip')}" / name).exists()
    ]
    assert len(found) == 1, f"{name} is deployed once, from its own source"
    path, markers = found[0]
    text = path.read_text()
    for marker, value in markers.items():
        text = text.replace(marker, flat(value))
    return text, markers


def test_index_html_narrows_connect_src_to_both_api_hosts_cognito_and_both_documents_buckets(synth: Synth) -> None:
    html, markers = deployed(synth, "index.html")
    (policy,) = re.findall(r'<meta http-equiv="Content-Security-Policy" content="([^"]+)">', html)

    sources = policy.removeprefix("connect-src 'self' ").split(" ")
    assert sources[0] == "https://cognito-idp.us-east-1.amazonaws.com"
    assert re.fullmatch(
        r"https://\$\{Bulwark-dev-Api:ExportsOutputRefRestApi\w+\}\.execute-api\.us-east-1\.amazonaws\.com", sources[1]
    )
    # The DR API's id is read from the DR stack at this stack's deploy (no writer in the DR stack: static stability).
    assert re.fullmatch(
        r"https://\$\{Bulwark-dev-Api-DR@us-west-2:PublishOutputRefRestApi\w+\}\.execute-api\.us-west-2\.amazonaws\.com",
        sources[2],
    )
    # The browser uploads documents with the API's presigned POST straight to its region's documents bucket:
    # exactly the two Knowledge stacks' buckets, each by its regional and its global virtual-hosted name.
    primary = r"\$\{Bulwark-dev-Knowledge:ExportsOutputRefDocuments\w+\}"
    dr = r"\$\{Bulwark-dev-Knowledge-DR@us-west-2:PublishOutputRefDocuments\w+\}"  # weak: static stability
    assert [re.sub(r"^https://(\$\{[^}]+\})", "https://BUCKET", host) for host in sources[3:7]] == [
        "https://BUCKET.s3.us-east-1.amazonaws.com",
        "https://BUCKET.s3.amazonaws.com",
        "https://BUCKET.s3.us-west-2.amazonaws.com",
        "https://BUCKET.s3.amazonaws.com",
    ]
    assert all(re.match(rf"https://{primary}\.", host) for host in sources[3:5]), sources[3:5]
    assert all(re.match(rf"https://{dr}\.", host) for host in sources[5:7]), sources[5:7]
    # Then both WebSocket APIs (streamed answers, ADR 0004), the DR one read weakly like its REST API.
    assert re.fullmatch(r"wss://\$\{Bulwark-dev-Api:ExportsOutputRefStreamApi\w+\}\.execute-api\.us-east-1\.amazonaws\.com",
                        sources[7])  # fmt: skip
    assert re.fullmatch(
        r"wss://\$\{Bulwark-dev-Api-DR@us-west-2:PublishOutputRefStreamApi\w+\}\.execute-api\.us-west-2\.amazonaws\.com",
        sources[8],
    )
    assert len(sources) == 9 and "*" not in policy
    assert html.index("Content-Security-Policy") < html.index("<script"), "the policy must precede every script"
    assert json.dumps(markers).count("RestApi") >= 2


def test_the_static_help_page_may_fetch_only_cognito_and_the_two_api_hosts(synth: Synth) -> None:
    """fallback.html (shown when neither API answers) probes the APIs' /health: its meta tag names no bucket."""
    html, _ = deployed(synth, "fallback.html")
    (policy,) = re.findall(r'<meta http-equiv="Content-Security-Policy" content="([^"]+)">', html)

    sources = policy.removeprefix("connect-src 'self' ").split(" ")
    assert sources[0] == "https://cognito-idp.us-east-1.amazonaws.com"
    assert re.fullmatch(r"https://\$\{Bulwark-dev-Api:ExportsOutputRefRestApi\w+\}\.execute-api\.us-east-1\.amazonaws\.com",
                        sources[1])  # fmt: skip
    assert re.fullmatch(
        r"https://\$\{Bulwark-dev-Api-DR@us-west-2:PublishOutputRefRestApi\w+\}\.execute-api\.us-west-2\.amazonaws\.com",
        sources[2],
    )
    assert len(sources) == 3 and "*" not in policy and ".s3." not in policy
    assert html.index("Content-Security-Policy") < html.index("<script"), "the policy must precede every script"
    assert '<script type="module" src="fallback.js">' in html  # no inline script: script-src 'self' holds


def test_the_curated_answers_are_deployed_as_curated_json_from_the_repo_file(synth: Synth) -> None:
    text, markers = deployed(synth, "curated.json")

    assert json.loads(text) == curated_answers()
    assert markers == {}, "no deploy-time value: the operators' text only"
    assert len(curated_answers()["answers"]) >= 3


@pytest.mark.parametrize(
    ("content", "complaint"),
    [
        ("not json", "not readable JSON"),
        ('{"answers": []}', "non-empty"),
        ('[{"question": "q", "answer": "a"}]', "expected"),
        ('{"answers": [{"question": "q"}]}', "answer 1 must have exactly the keys question and answer"),
        ('{"answers": [{"question": "q", "answer": "a", "user": "x"}]}', "exactly the keys"),
        ('{"answers": [{"question": "q", "answer": "a"}, {"question": " ", "answer": "a"}]}', "answer 2: question"),
        ('{"answers": [{"question": "q", "answer": 5}]}', "answer must be non-empty text"),
        (json.dumps({"answers": [{"question": "q", "answer": "a" * 4001}]}), "at most 4000"),
    ],
)
def test_a_malformed_curated_answers_file_fails_synth_with_a_sentence(
    tmp_path: Path, content: str, complaint: str
) -> None:
    path = tmp_path / "curated.json"
    path.write_text(content)

    with pytest.raises(ValueError, match=re.escape(complaint)):
        curated_answers(path)


def test_curated_answers_are_trimmed_and_other_top_level_keys_are_not_deployed(tmp_path: Path) -> None:
    path = tmp_path / "curated.json"
    path.write_text(json.dumps({"about": "notes", "answers": [{"question": " Q? ", "answer": " A. "}]}))

    assert curated_answers(path) == {"answers": [{"question": "Q?", "answer": "A."}]}


# --- the same files in the DR region's site bucket (the origin group's failover) ----------------------------------
CONTENT_DR = "Bulwark-dev-WebContent-DR"


def _deployment(synth: Synth, name: str) -> dict[str, Any]:
    (deployment,) = synth.template(name).find_resources("Custom::CDKBucketDeployment").values()
    return dict(deployment["Properties"])


def test_both_regions_site_buckets_get_the_same_files_from_source(synth: Synth) -> None:
    primary, dr = _deployment(synth, CONTENT), _deployment(synth, CONTENT_DR)

    # The same assets (web/, both pages, config.json, curated.json), each published to its own region.
    assert primary["SourceObjectKeys"] == dr["SourceObjectKeys"] and len(dr["SourceObjectKeys"]) == 5
    assert {"Fn::Sub": "cdk-hnb659fds-assets-${AWS::AccountId}-us-west-2"} in dr["SourceBucketNames"]
    assert dr["DestinationBucketName"]["Fn::ImportValue"].startswith("Bulwark-dev-Web-DR:")
    assert flat(primary["DestinationBucketName"]).startswith("${Bulwark-dev-Web:")
    # Only the primary invalidates CloudFront, after both buckets hold the files; the DR stack calls no CloudFront.
    assert "DistributionId" in primary and "DistributionId" not in dr
    assert CONTENT_DR in {dependency.stack_name for dependency in synth.stacks[CONTENT].dependencies}


def test_the_dr_config_json_names_both_apis_read_in_its_own_region(synth: Synth) -> None:
    config, _ = deployed(synth, "config.json", CONTENT_DR)
    primary, dr = json.loads(config)["apiEndpoints"]

    # The primary API's id through CDK's reader (this region's SSM parameter), the DR API's from its own stack.
    assert re.fullmatch(r"https://\$\{ExportsReader\w+\./cdk/exports/Bulwark-dev-WebContent-DR/\w*RestApi\w*\}"
                        r"\.execute-api\.us-east-1\.amazonaws\.com/.*", primary), primary  # fmt: skip
    assert re.fullmatch(r"https://\$\{Bulwark-dev-Api-DR@us-west-2:\w*RestApi\w*\}\.execute-api\.us-west-2\..*", dr), dr
    primary_config, _ = deployed(synth, "config.json")
    assert json.loads(primary_config).keys() == json.loads(config).keys()
    assert "@us-east-1" not in config, "no read of a primary stack's outputs from the DR region"
