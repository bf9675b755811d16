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


def test_index_html_narrows_connect_src_to_both_api_hosts_cognito_and_both_documents_buckets(synth: Synth) -> None:
    (deployment,) = synth.template(CONTENT).find_resources("Custom::CDKBucketDeployment").values()
    keys = deployment["Properties"]["SourceObjectKeys"]
    pages = [
        (Path(synth.app.outdir) / f"asset.{flat(key).removesuffix('.zip')}" / "index.html", markers)
        for key, markers in zip(keys, deployment["Properties"]["SourceMarkers"], strict=True)
        if (Path(synth.app.outdir) / f"asset.{flat(key).removesuffix('.zip')}" / "index.html").exists()
    ]
    assert len(pages) == 1, "index.html is deployed once, from its own source"
    path, markers = pages[0]
    html = path.read_text()
    for marker, value in markers.items():
        html = html.replace(marker, flat(value))
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
    assert [re.sub(r"^https://(\$\{[^}]+\})", "https://BUCKET", host) for host in sources[3:]] == [
        "https://BUCKET.s3.us-east-1.amazonaws.com",
        "https://BUCKET.s3.amazonaws.com",
        "https://BUCKET.s3.us-west-2.amazonaws.com",
        "https://BUCKET.s3.amazonaws.com",
    ]
    assert all(re.match(rf"https://{primary}\.", host) for host in sources[3:5]), sources[3:5]
    assert all(re.match(rf"https://{dr}\.", host) for host in sources[5:7]), sources[5:7]
    assert len(sources) == 7 and "*" not in policy
    assert html.index("Content-Security-Policy") < html.index("<script"), "the policy must precede every script"
    assert json.dumps(markers).count("RestApi") >= 2
