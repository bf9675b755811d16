"""The regional WebSocket API for streamed answers (ADR 0004).

`$connect` runs a Lambda REQUEST authorizer (handlers/ws_authorizer.py) on the Cognito ID token in the `token` query
string; `$connect`, `$disconnect` and `$default` go to the stream Lambda (handlers/stream.py: the chat Lambda's
bundle and settings, its own function with a longer timeout), which posts the answer back to the connection
through the stage's management API. The stage throttles and logs as JSON, naming no query string (the token) and no
message body. WAF cannot be associated with a WebSocket API: ADR 0004 says what stands in for it.
"""

from __future__ import annotations

import json

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_apigatewayv2 as apigwv2
from aws_cdk import aws_apigatewayv2_authorizers as authorizers
from aws_cdk import aws_apigatewayv2_integrations as integrations
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from cdk_nag import NagPackSuppression, NagSuppressions, RegexAppliesTo
from constructs import Construct

from stacks.config import AppConfig
from stacks.constructs.nag import suppress
from stacks.constructs.python_function import PythonFunction

STREAM_STAGE_NAME = "v1"
TOKEN_QUERY = "token"
# Who, which connection, what happened and how it ended; never `$context.requestOverride`, a query string, a header,
# a message body or the authorizer's error text (which could quote the token).
STREAM_ACCESS_LOG_FORMAT = {
    "requestId": "$context.requestId",
    "connectionId": "$context.connectionId",
    "eventType": "$context.eventType",
    "routeKey": "$context.routeKey",
    "sub": "$context.authorizer.principalId",
    "ip": "$context.identity.sourceIp",
    "requestTime": "$context.requestTime",
    "status": "$context.status",
    "integrationLatency": "$context.integrationLatency",
    "authorizerStatus": "$context.authorizer.status",
}


def cognito_issuer(*, pool_id: str, pool_region: str, url_suffix: str) -> str:
    """A user pool's original issuer (and its region's OIDC endpoints, the JWKS among them)."""
    return f"https://cognito-idp.{pool_region}.{url_suffix}/{pool_id}"


def updated_cognito_issuer(*, pool_id: str, primary_region: str, url_suffix: str) -> str:
    """The issuer of a pool whose issuer configuration is UPDATED (multi-Region replication): named after the
    pool's primary region, whichever region's replica issued the token."""
    return f"https://issuer-cognito-idp.{primary_region}.{url_suffix}/{pool_id}"


class StreamApi(Construct):
    """`environment`: the stream Lambda's (the chat Lambda's settings). `user_pool_id` / `user_pool_region`: the pool
    (or its replica) whose ID tokens are accepted, for `client_id` (the web app client) only."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: AppConfig,
        region: str,
        code: lambda_.Code,
        environment: dict[str, str],
        user_pool_id: str,
        user_pool_region: str,
        client_id: str,
        key: kms.IKey,
        log_retention: logs.RetentionDays,
    ) -> None:
        super().__init__(scope, construct_id)
        if not client_id:
            raise ValueError("StreamApi needs the web app client id: its authorizer accepts that audience only")
        streaming = config.streaming
        self.function = PythonFunction(
            self,
            "Stream",
            handler="handlers.stream.handler",
            service_name="stream",
            code=code,
            log_key=key,
            log_retention=log_retention,
            reserved_concurrency=config.reserved_concurrency(region),
            timeout=Duration.seconds(streaming.timeout_seconds),
            no_dlq_reason="Invoked synchronously by the WebSocket API for each frame: a failure is posted back to "
            "the client as an error message, so there is no event to park in a DLQ.",
            environment=environment,
        )
        suffix = Stack.of(self).url_suffix
        # The issuers the pool puts in its tokens: the primary region's original one and, with the pool replicated
        # (issuer configuration UPDATED), the updated one, named after the primary region in both regions (so the
        # DR API accepts the sessions signed in before an outage, and the primary those signed in during it).
        # The keys come from this region's endpoint (the replica's in DR): no call to the primary at recovery.
        issuers = [cognito_issuer(pool_id=user_pool_id, pool_region=config.primary_region, url_suffix=suffix)]
        if config.replicate_user_pool:
            updated = updated_cognito_issuer(
                pool_id=user_pool_id, primary_region=config.primary_region, url_suffix=suffix
            )
            issuers.insert(0, updated)
        local = cognito_issuer(pool_id=user_pool_id, pool_region=user_pool_region, url_suffix=suffix)
        jwks_url = f"{local}/.well-known/jwks.json"
        self.authorizer_function = PythonFunction(
            self,
            "Authorizer",
            handler="handlers.ws_authorizer.handler",
            service_name="ws-authorizer",
            code=code,
            log_key=key,
            log_retention=log_retention,
            reserved_concurrency=streaming.authorizer_reserved_concurrency,
            timeout=Duration.seconds(streaming.authorizer_timeout_seconds),
            memory_size=256,
            no_dlq_reason="Invoked synchronously by API Gateway on $connect: a failure refuses the connection.",
            environment={
                "JWKS_URL": jwks_url,
                "TOKEN_ISSUERS": ",".join(issuers),
                "CLIENT_ID": client_id,
            },
        )
        integration = integrations.WebSocketLambdaIntegration("Stream", self.function.target)
        self.api = apigwv2.WebSocketApi(
            self,
            "Api",
            api_name=f"{Stack.of(self).stack_name}-stream",
            description="Bulwark streamed chat answers",
            route_selection_expression="$request.body.action",
            connect_route_options=apigwv2.WebSocketRouteOptions(
                integration=integrations.WebSocketLambdaIntegration("Connect", self.function.target),
                authorizer=authorizers.WebSocketLambdaAuthorizer(
                    "Cognito",
                    self.authorizer_function.target,
                    identity_source=[f"route.request.querystring.{TOKEN_QUERY}"],
                ),
            ),
            disconnect_route_options=apigwv2.WebSocketRouteOptions(
                integration=integrations.WebSocketLambdaIntegration("Disconnect", self.function.target)
            ),
            default_route_options=apigwv2.WebSocketRouteOptions(integration=integration),
        )
        self.access_logs = logs.LogGroup(
            self, "AccessLogs", retention=log_retention, encryption_key=key, removal_policy=RemovalPolicy.RETAIN
        )
        self.stage = apigwv2.WebSocketStage(
            self,
            "Stage",
            web_socket_api=self.api,
            stage_name=STREAM_STAGE_NAME,
            auto_deploy=True,
            throttle=apigwv2.ThrottleSettings(rate_limit=streaming.rate_limit, burst_limit=streaming.burst_limit),
        )
        cfn_stage = self.stage.node.default_child
        assert isinstance(cfn_stage, apigwv2.CfnStage)
        cfn_stage.access_log_settings = apigwv2.CfnStage.AccessLogSettingsProperty(
            destination_arn=self.access_logs.log_group_arn, format=json.dumps(STREAM_ACCESS_LOG_FORMAT)
        )
        # Execution logs off on purpose: at INFO they would carry message bodies (users' questions and answers).
        self.url = self.stage.url  # wss://<api>.execute-api.<region>.<suffix>/v1
        self.host = f"wss://{self.api.api_id}.execute-api.{region}.{Stack.of(self).url_suffix}"

        # --- what connects them: the stream Lambda may post to this stage's connections only -----------------
        # POST alone (post_to_connection): no GET (connection info) and no DELETE (closing others' connections).
        connections = Stack.of(self).format_arn(
            service="execute-api", resource=self.api.api_id, resource_name=f"{STREAM_STAGE_NAME}/POST/@connections/*"
        )
        self.function.role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="PostToConnections", actions=["execute-api:ManageConnections"], resources=[connections]
            )
        )
        NagSuppressions.add_resource_suppressions(
            self.function.role,
            [
                NagPackSuppression(
                    id="AwsSolutions-IAM5",
                    reason="Connection ids are made by API Gateway per client at $connect: the policy names this API, "
                    "this stage and POST (post_to_connection) and leaves only the connection id open.",
                    applies_to=[
                        RegexAppliesTo(regex=r"/^Resource::.*:<StreamApi[0-9A-F]+>\/v1\/POST\/@connections\/\*$/")
                    ],
                )
            ],
            apply_to_children=True,
        )

        for route in self.api.node.find_all():
            if isinstance(route, apigwv2.CfnRoute) and route.route_key != "$connect":
                suppress(
                    route,
                    "WebSocket APIs authorize once, on $connect (the Cognito ID token, Lambda REQUEST authorizer); "
                    "$default and $disconnect run only on a connection $connect accepted, and the user is the "
                    "authorizer's principal, never taken from the message.",
                    "AwsSolutions-APIG4",
                )
