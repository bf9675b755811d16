"""The regional REST API: routes, request models, Cognito authorizer, stage limits, JSON errors."""

from __future__ import annotations

import json
from typing import Any

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_cognito as cognito
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from stacks.config import AppConfig
from stacks.constructs.nag import skip_checkov, suppress

STAGE_NAME = "v1"  # in every URL of the API (and in the Route 53 health check's path)
UUID_PATTERN = "^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
# `$` also matches before a final newline in Java's and Python's regexes (API Gateway's validator and the local
# one): the exact length closes that in every dialect. The Lambda checks the id again with a full match.
UUID_LENGTH = 36
# What POST /documents accepts (core.retrieval.ALLOWED_CONTENT_TYPES; a test holds the two equal).
DOCUMENT_CONTENT_TYPES = ["application/pdf", "text/html", "text/markdown", "text/plain"]
MAX_DOCUMENT_NAME_CHARS = 255
# GET /health/deep is public and runs the chat Lambda: its own stage limit keeps anonymous probes (Route 53's
# checkers, clients) to a small share of the Lambda's concurrency; its answer is cached for a few seconds.
HEALTH_PROBE_RATE_LIMIT = 10
HEALTH_PROBE_BURST_LIMIT = 20
# The access log: who (the caller's Cognito `sub`; `$context.identity.user` is empty under Cognito), what,
# when, and how it ended. Never a body, a header or a token.
ACCESS_LOG_FIELDS = {
    "requestId": apigw.AccessLogField.context_request_id(),
    "sub": apigw.AccessLogField.context_authorizer_claims("sub"),
    "ip": apigw.AccessLogField.context_identity_source_ip(),
    "requestTime": apigw.AccessLogField.context_request_time(),
    "httpMethod": apigw.AccessLogField.context_http_method(),
    "resourcePath": apigw.AccessLogField.context_resource_path(),
    "status": apigw.AccessLogField.context_status(),
    "protocol": apigw.AccessLogField.context_protocol(),
    "responseLength": apigw.AccessLogField.context_response_length(),
    "integrationLatency": apigw.AccessLogField.context_integration_latency(),
    "wafResponseCode": apigw.AccessLogField.context_waf_response_code(),
}

# Errors API Gateway raises itself still answer JSON with a message a user can act on:
# name -> (type, status, body template, extra headers).
GATEWAY_RESPONSES: dict[str, tuple[apigw.ResponseType, str, str, dict[str, str]]] = {
    "BadRequestBody": (apigw.ResponseType.BAD_REQUEST_BODY, "400",
                       '{"message": "invalid request body: $context.error.validationErrorString"}', {}),
    "Unauthorized": (apigw.ResponseType.UNAUTHORIZED, "401",
                     '{"message": "sign in first: the Authorization token is missing or has expired"}', {}),
    "AccessDenied": (apigw.ResponseType.ACCESS_DENIED, "403",
                     '{"message": "your token is not allowed to call this route"}', {}),
    "Throttled": (apigw.ResponseType.THROTTLED, "429",
                  '{"message": "too many requests: retry after the number of seconds in Retry-After"}',
                  {"Retry-After": "'1'"}),
    "WafFiltered": (apigw.ResponseType.WAF_FILTERED, "403",
                    '{"message": "request blocked by the web application firewall"}', {}),
    "TooLarge": (apigw.ResponseType.REQUEST_TOO_LARGE, "413", '{"message": "request body too large"}', {}),
    # API Gateway's answer to a method or path the API does not define is 403 "Missing Authentication
    # Token"; clients and tools know that status, so it stays, with a hint added to the message.
    "MissingAuthToken": (apigw.ResponseType.MISSING_AUTHENTICATION_TOKEN, "403",
                         '{"message": "Missing Authentication Token: no route matches this method and path"}', {}),
}  # fmt: skip


class ChatRestApi(Construct):
    """Every route but GET /health and GET /health/deep needs a Cognito ID token; bodies are validated before
    the Lambda."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: AppConfig,
        region: str,
        handler: lambda_.IFunction,
        user_pool: cognito.IUserPool,
        key: kms.IKey,
        log_retention: logs.RetentionDays,
        allowed_origin: str,
    ) -> None:
        """`allowed_origin`: the web UI's origin; browsers on any other origin get no CORS headers."""
        super().__init__(scope, construct_id)
        # Never admit more concurrent requests than the chat Lambda may run: past its reserved
        # concurrency API Gateway answers 429 + Retry-After instead of Lambda throttling into a 5xx.
        concurrency = config.reserved_concurrency(region)
        access_logs = logs.LogGroup(
            self, "AccessLogs", retention=log_retention, encryption_key=key, removal_policy=RemovalPolicy.RETAIN
        )
        self.api = apigw.RestApi(
            self,
            "Api",
            description=f"{config.prefix} API ({region})",
            endpoint_types=[apigw.EndpointType.REGIONAL],
            cloud_watch_role=True,
            cloud_watch_role_removal_policy=RemovalPolicy.RETAIN,
            deploy_options=apigw.StageOptions(
                stage_name=STAGE_NAME,
                throttling_rate_limit=min(config.throttling.rate_limit, concurrency),
                throttling_burst_limit=min(config.throttling.burst_limit, concurrency),
                access_log_destination=apigw.LogGroupLogDestination(access_logs),
                access_log_format=apigw.AccessLogFormat.custom(json.dumps(ACCESS_LOG_FIELDS)),
                logging_level=apigw.MethodLoggingLevel.ERROR,
                data_trace_enabled=False,  # never log prompts or answers
                tracing_enabled=True,
                metrics_enabled=True,
                method_options={
                    "/health/deep/GET": apigw.MethodDeploymentOptions(
                        throttling_rate_limit=min(HEALTH_PROBE_RATE_LIMIT, concurrency),
                        throttling_burst_limit=min(HEALTH_PROBE_BURST_LIMIT, concurrency),
                    )
                },
            ),
            default_cors_preflight_options=apigw.CorsOptions(
                allow_origins=[allowed_origin],
                allow_methods=["GET", "POST", "DELETE", "OPTIONS"],
                allow_headers=["Authorization", "Content-Type", "Idempotency-Key"],
                max_age=Duration.hours(1),
            ),
        )
        for name, (kind, status, template, headers) in GATEWAY_RESPONSES.items():
            self.api.add_gateway_response(
                name,
                type=kind,
                status_code=status,
                response_headers={"Access-Control-Allow-Origin": f"'{allowed_origin}'", **headers},
                templates={"application/json": template},
            )
        self._routes(config, region, handler, user_pool)
        self._suppressions()

    def _routes(self, config: AppConfig, region: str, handler: lambda_.IFunction, user_pool: cognito.IUserPool) -> None:
        authorizer = apigw.CognitoUserPoolsAuthorizer(self, "Authorizer", cognito_user_pools=[user_pool])
        auth = {"authorizer": authorizer, "authorization_type": apigw.AuthorizationType.COGNITO}
        integration = apigw.LambdaIntegration(handler, proxy=True)
        validator = self.api.add_request_validator(
            "Validator", validate_request_body=True, validate_request_parameters=True
        )
        chat_properties = {
            "message": apigw.JsonSchema(
                type=apigw.JsonSchemaType.STRING, min_length=1, max_length=config.limits.max_message_chars
            ),
            "conversation_id": apigw.JsonSchema(
                type=apigw.JsonSchemaType.STRING,
                pattern=UUID_PATTERN,
                min_length=UUID_LENGTH,
                max_length=UUID_LENGTH,
            ),
        }

        def validated(model: apigw.IModel) -> dict[str, Any]:
            return {"request_validator": validator, "request_models": {"application/json": model}}

        chat_request = self._request_model(
            "ChatRequest", required=["message"], additional_properties=False, properties=chat_properties
        )
        # POST /jobs: a chat job (the chat request) or a workflow job over one of the caller's documents (ADR 0005).
        job_request = self._request_model(
            "JobRequest",
            any_of=[
                apigw.JsonSchema(
                    type=apigw.JsonSchemaType.OBJECT, required=["message"], additional_properties=False,
                    properties=chat_properties,
                ),
                apigw.JsonSchema(
                    type=apigw.JsonSchemaType.OBJECT, required=["kind", "documentId"], additional_properties=False,
                    properties={
                        "kind": apigw.JsonSchema(type=apigw.JsonSchemaType.STRING, enum=["summarize"]),
                        "documentId": apigw.JsonSchema(
                            type=apigw.JsonSchemaType.STRING, pattern=UUID_PATTERN, min_length=UUID_LENGTH,
                            max_length=UUID_LENGTH,
                        ),
                    },
                ),
            ],
        )  # fmt: skip
        upload_request = self._request_model(
            "DocumentUploadRequest",
            required=["name", "content_type", "size"],
            additional_properties=False,
            properties={
                "name": apigw.JsonSchema(
                    type=apigw.JsonSchemaType.STRING, min_length=1, max_length=MAX_DOCUMENT_NAME_CHARS
                ),
                "content_type": apigw.JsonSchema(type=apigw.JsonSchemaType.STRING, enum=list(DOCUMENT_CONTENT_TYPES)),
                # No maximum here: past the limit the Lambda answers 413 with the limit in words.
                "size": apigw.JsonSchema(type=apigw.JsonSchemaType.INTEGER, minimum=1),
            },
        )

        root = self.api.root
        root.add_resource("chat").add_method("POST", integration, **validated(chat_request), **auth)
        jobs = root.add_resource("jobs")
        jobs.add_method("POST", integration, **validated(job_request), **auth)
        jobs.add_resource("{job_id}").add_method("GET", integration, **auth)
        conversations = root.add_resource("conversations")
        conversations.add_method("GET", integration, **auth)
        conversation = conversations.add_resource("{conversation_id}")
        conversation.add_method("GET", integration, **auth)
        conversation.add_method("DELETE", integration, **auth)
        documents = root.add_resource("documents")
        documents.add_method("POST", integration, **validated(upload_request), **auth)
        documents.add_method("GET", integration, **auth)
        document = documents.add_resource("{document_id}")
        document.add_method("GET", integration, **auth)
        document.add_method("DELETE", integration, **auth)

        health_resource = root.add_resource("health")
        health = health_resource.add_method(
            "GET",
            apigw.MockIntegration(
                request_templates={"application/json": '{"statusCode": 200}'},
                integration_responses=[
                    apigw.IntegrationResponse(
                        status_code="200",
                        response_templates={"application/json": json.dumps({"status": "ok", "region": region})},
                    )
                ],
            ),
            method_responses=[apigw.MethodResponse(status_code="200")],
            authorization_type=apigw.AuthorizationType.NONE,
        )
        public_probe = (
            "Public health probe for failover routing (Route 53 / the web client); it is a mock "
            "integration that returns only the region name and touches no data."
        )
        suppress(health, public_probe, "AwsSolutions-APIG4", "AwsSolutions-COG4")
        skip_checkov(health, public_probe, "CKV_AWS_59")
        # The deep probe (Route 53 failover health checks, clients): this region's table, queue and model
        # breakers, answered by the chat Lambda. Public like /health; it reads no user identity or data.
        deep = health_resource.add_resource("deep").add_method(
            "GET", integration, authorization_type=apigw.AuthorizationType.NONE
        )
        deep_probe = (
            "Public deep health probe for failover routing (Route 53 health checks cannot sign in): it reports "
            "only check names and states (no user data, no resource names), is cached for seconds in the "
            "Lambda and has its own low stage throttle."
        )
        suppress(deep, deep_probe, "AwsSolutions-APIG4", "AwsSolutions-COG4")
        skip_checkov(deep, deep_probe, "CKV_AWS_59")

    def _request_model(self, name: str, **schema: Any) -> apigw.Model:
        """A JSON request body model named and titled `name`: a draft-4 object schema with `schema`'s keywords."""
        return self.api.add_model(
            name,
            content_type="application/json",
            schema=apigw.JsonSchema(
                schema=apigw.JsonSchemaVersion.DRAFT4, title=name, type=apigw.JsonSchemaType.OBJECT, **schema
            ),
        )

    def _suppressions(self) -> None:
        for method in self.api.methods:
            if method.http_method == "OPTIONS":
                suppress(
                    method,
                    "CORS preflight must be answered without credentials (browsers send no token on OPTIONS).",
                    "AwsSolutions-APIG4",
                    "AwsSolutions-COG4",
                )
        role = self.api.node.try_find_child("CloudWatchRole")
        if role is not None:
            suppress(
                role,
                "API Gateway's account-level logging role uses the AWS managed policy "
                "AmazonAPIGatewayPushToCloudWatchLogs, the documented way to enable execution logs.",
                "AwsSolutions-IAM4",
                applies_to=[
                    "Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs"
                ],
                children=True,
            )
        stage = self.api.deployment_stage
        no_cache = (
            "Responses are per-user conversation data that must never be served from a shared cache; "
            "each call is authorized and answered fresh."
        )
        suppress(
            stage,
            no_cache,
            "NIST.800.53.R5-APIGWCacheEnabledAndEncrypted",
            "HIPAA.Security-APIGWCacheEnabledAndEncrypted",
        )
        skip_checkov(stage, no_cache, "CKV_AWS_120")
        suppress(
            stage,
            "The API's only backend is Lambda via AWS_PROXY integration, which does not use backend "
            "client certificates; callers are authenticated with Cognito JWTs.",
            "NIST.800.53.R5-APIGWSSLEnabled",
            "HIPAA.Security-APIGWSSLEnabled",
        )
