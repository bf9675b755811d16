"""The WebSocket API for streamed answers (ADR 0004) in both API stacks: routes, authorizer, stage throttling and
access log without the token, the stream Lambda (chat settings, longer timeout), exact IAM, outputs, web config."""

from __future__ import annotations

import json
from typing import Any

import pytest

from stacks.config import StreamingConfig
from stacks.constructs.stream_api import STREAM_ACCESS_LOG_FORMAT
from tests.infra.conftest import Synth
from tests.infra.test_web_content_stack import deployed

STACKS = {"Bulwark-dev-Api": "us-east-1", "Bulwark-dev-Api-DR": "us-west-2"}


def _of(resources: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {name: r for name, r in resources.items() if r["Type"] == kind}


def _function(resources: dict[str, Any], handler: str) -> tuple[str, dict[str, Any]]:
    (found,) = [
        (name, r["Properties"]) for name, r in _of(resources, "AWS::Lambda::Function").items()
        if r["Properties"]["Handler"] == handler
    ]  # fmt: skip
    return found


def _statements(resources: dict[str, Any], role: str) -> list[dict[str, Any]]:
    return [
        statement
        for policy in _of(resources, "AWS::IAM::Policy").values()
        if {"Ref": role} in policy["Properties"]["Roles"]
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]


@pytest.mark.parametrize("stack", STACKS)
def test_a_websocket_api_with_the_authorizer_on_connect_only(synth: Synth, stack: str) -> None:
    resources = synth.template(stack).to_json()["Resources"]
    (api,) = _of(resources, "AWS::ApiGatewayV2::Api").values()
    assert api["Properties"]["ProtocolType"] == "WEBSOCKET"
    routes = {r["Properties"]["RouteKey"]: r["Properties"] for r in _of(resources, "AWS::ApiGatewayV2::Route").values()}
    assert set(routes) == {"$connect", "$disconnect", "$default"}
    assert routes["$connect"]["AuthorizationType"] == "CUSTOM"
    (authorizer,) = _of(resources, "AWS::ApiGatewayV2::Authorizer").values()
    assert authorizer["Properties"]["AuthorizerType"] == "REQUEST"
    assert authorizer["Properties"]["IdentitySource"] == ["route.request.querystring.token"]
    name, _ = _function(resources, "handlers.ws_authorizer.handler")
    assert name in json.dumps(authorizer["Properties"]["AuthorizerUri"])


@pytest.mark.parametrize("stack", STACKS)
def test_the_stage_throttles_and_logs_without_the_token(synth: Synth, stack: str) -> None:
    resources = synth.template(stack).to_json()["Resources"]
    (stage,) = _of(resources, "AWS::ApiGatewayV2::Stage").values()
    props = stage["Properties"]
    streaming = StreamingConfig()
    assert props["DefaultRouteSettings"]["ThrottlingRateLimit"] == streaming.rate_limit
    assert props["DefaultRouteSettings"]["ThrottlingBurstLimit"] == streaming.burst_limit
    log_format = json.loads(props["AccessLogSettings"]["Format"])
    assert log_format == STREAM_ACCESS_LOG_FORMAT
    text = props["AccessLogSettings"]["Format"].lower()
    for leak in ("querystring", "token", "body", "header", "error.message"):
        assert leak not in text
    assert "LoggingLevel" not in json.dumps(props)  # execution logs would carry message bodies


@pytest.mark.parametrize("stack", STACKS)
def test_the_stream_lambda_has_the_chat_settings_and_a_longer_timeout(synth: Synth, stack: str) -> None:
    resources = synth.template(stack).to_json()["Resources"]
    _, chat = _function(resources, "handlers.chat.handler")
    _, stream = _function(resources, "handlers.stream.handler")
    assert stream["Timeout"] == StreamingConfig().timeout_seconds > chat["Timeout"]
    assert stream["Code"] == chat["Code"]  # the same bundle
    chat_env = {k: v for k, v in chat["Environment"]["Variables"].items() if k != "POWERTOOLS_SERVICE_NAME"}
    stream_env = {k: v for k, v in stream["Environment"]["Variables"].items() if k != "POWERTOOLS_SERVICE_NAME"}
    assert stream_env == chat_env


@pytest.mark.parametrize("stack", STACKS)
def test_the_authorizer_knows_the_pool_issuer_and_the_web_client(synth: Synth, stack: str) -> None:
    resources = synth.template(stack).to_json()["Resources"]
    _, authorizer = _function(resources, "handlers.ws_authorizer.handler")
    env = authorizer["Environment"]["Variables"]
    assert set(env) >= {"JWKS_URL", "TOKEN_ISSUERS", "CLIENT_ID"}
    region = STACKS[stack]
    issuers = json.dumps(env["TOKEN_ISSUERS"])
    # The replicated pool's (UPDATED) issuer names the primary region in both regions' tokens, and its original
    # issuer stays accepted: a session signed in at either region streams in either region.
    assert "https://issuer-cognito-idp.us-east-1." in issuers and "https://cognito-idp.us-east-1." in issuers
    assert "cognito-idp.us-west-2" not in issuers
    # The keys from this region's own endpoint (the replica's in DR): nothing in the primary is needed at recovery.
    assert f"cognito-idp.{region}." in json.dumps(env["JWKS_URL"]) and "/.well-known/jwks.json" in json.dumps(
        env["JWKS_URL"]
    )
    assert env["CLIENT_ID"]


@pytest.mark.parametrize("stack", STACKS)
def test_the_stream_lambda_may_post_to_this_stage_connections_only(synth: Synth, stack: str) -> None:
    resources = synth.template(stack).to_json()["Resources"]
    _, stream = _function(resources, "handlers.stream.handler")
    role = stream["Role"]["Fn::GetAtt"][0]
    (api_name,) = _of(resources, "AWS::ApiGatewayV2::Api")
    manage = [s for s in _statements(resources, role) if "execute-api" in json.dumps(s["Action"])]
    assert len(manage) == 1 and manage[0]["Action"] == "execute-api:ManageConnections"
    resource = json.dumps(manage[0]["Resource"])
    assert api_name in resource and "/v1/POST/@connections/*" in resource
    # The chat role and the authorizer's may not post to connections.
    for handler in ("handlers.chat.handler", "handlers.ws_authorizer.handler"):
        _, other = _function(resources, handler)
        assert "ManageConnections" not in json.dumps(_statements(resources, other["Role"]["Fn::GetAtt"][0]))


@pytest.mark.parametrize("stack", STACKS)
def test_the_stream_url_is_an_output(synth: Synth, stack: str) -> None:
    outputs = synth.template(stack).to_json()["Outputs"]
    assert json.dumps(outputs["StreamUrl"]["Value"]).startswith('{"Fn::Join": ["", ["wss://"')


def test_the_web_config_carries_both_stream_urls_in_the_api_order(synth: Synth) -> None:
    for stack in ("Bulwark-dev-WebContent", "Bulwark-dev-WebContent-DR"):
        config = json.loads(deployed(synth, "config.json", stack)[0])
        primary, dr = config["streamEndpoints"]
        assert primary.startswith("wss://") and ".execute-api.us-east-1." in primary and primary.endswith("/v1")
        assert dr.startswith("wss://") and ".execute-api.us-west-2." in dr and dr.endswith("/v1")
        assert config["streamTimeoutSeconds"] == 120  # the stream Lambda's timeout: the browser's watchdog
