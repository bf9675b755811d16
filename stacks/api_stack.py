"""The regional API: REST API + WAF + the chat Lambda. Deployed identically in both regions."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from aws_cdk import ArnFormat, CfnOutput, Duration, RemovalPolicy, Stack
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_cognito as cognito
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from aws_cdk import aws_wafv2 as wafv2
from constructs import Construct

from stacks.auth_stack import user_pool_arn_in
from stacks.config import AppConfig
from stacks.constructs.jobs_pipeline import JobsPipeline
from stacks.constructs.nag import suppress
from stacks.constructs.python_function import PythonFunction, lambda_code, log_retention
from stacks.models_stack import ModelsStack

_UUID_PATTERN = "^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
# The sync path must answer before API Gateway's 29 s integration timeout.
CHAT_TIMEOUT = Duration.seconds(28)
CHAT_DEADLINE_SECONDS = 25


def runtime_targets(
    config: AppConfig, region: str, models: Mapping[str, ModelsStack]
) -> tuple[list[dict[str, Any]], list[str], list[str]]:
    """MODEL_TARGETS for the Lambda, plus the exact model ARNs and guardrail ARNs IAM must allow."""
    entries: list[dict[str, Any]] = []
    model_arns: list[str] = []
    guardrail_arns: list[str] = []
    for target in config.chain_for(region):
        if target.kind == "langchain":
            # Another provider: no IAM, no guardrail of ours; its package must be in the bundle.
            entries.append(
                {"model_id": target.model_id, "region": target.region, "max_tokens": target.max_tokens,
                 "name": target.model_id, "langchain": dict(target.langchain or {})}
            )  # fmt: skip
            continue
        capacity = models[target.region]
        invocation = capacity.invocations[target.key]
        entry: dict[str, Any] = {
            "model_id": invocation.invoke_id,
            "region": target.region,
            "max_tokens": target.max_tokens,
            "name": target.model_id,
        }
        if capacity.guardrail is not None:
            entry["guardrail_id"], entry["guardrail_version"], arn = capacity.guardrail
            guardrail_arns.append(arn)
        entries.append(entry)
        model_arns.extend(invocation.resource_arns)
    return entries, list(dict.fromkeys(model_arns)), list(dict.fromkeys(guardrail_arns))


class ApiStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: AppConfig,
        table_name: str,
        cache_table_name: str,
        jobs_table_name: str,
        idempotency_table_name: str,
        key: kms.IKey,
        user_pool_id: str,
        user_pool_region: str,
        models: Mapping[str, ModelsStack],
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        region = self.region
        # Imported by name so both regions address their local replica with the same code.
        tables = {
            name: dynamodb.TableV2.from_table_attributes(self, name, table_name=physical, encryption_key=key)
            for name, physical in (
                ("Conversations", table_name), ("ResponseCache", cache_table_name),
                ("JobsTable", jobs_table_name), ("Idempotency", idempotency_table_name),
            )
        }  # fmt: skip
        user_pool = cognito.UserPool.from_user_pool_arn(
            self, "Users", user_pool_arn_in(self, user_pool_id=user_pool_id, region=user_pool_region)
        )
        retention = log_retention(config.log_retention_days)
        targets, model_arns, guardrail_arns = runtime_targets(config, region, models)
        environment = {
            "TABLE_NAME": table_name,
            "CACHE_TABLE_NAME": cache_table_name,
            "JOBS_TABLE_NAME": jobs_table_name,
            "IDEMPOTENCY_TABLE_NAME": idempotency_table_name,
            "MODEL_TARGETS": json.dumps(targets),
            "MAX_MESSAGE_CHARS": str(config.limits.max_message_chars),
            "MAX_HISTORY_TURNS": str(config.limits.max_history_turns),
            "MAX_BODY_BYTES": str(config.limits.max_body_bytes),
            "JOB_MAX_AGE_SECONDS": str(config.jobs.max_age_s),
        }

        # --- compute -------------------------------------------------------------------------
        self.jobs = JobsPipeline(self, "Jobs", config=config, key=key, log_retention=retention, environment=environment)
        chat = PythonFunction(
            self,
            "Chat",
            handler="handlers.chat.handler",
            service_name="chat",
            code=lambda_code(),
            log_key=key,
            log_retention=retention,
            reserved_concurrency=config.reserved_concurrency(region),
            timeout=CHAT_TIMEOUT,
            no_dlq_reason="Invoked synchronously by API Gateway: a failed request is returned to the caller as "
            "an HTTP error, so there is no event to park in a DLQ.",
            environment={
                **environment,
                "JOBS_QUEUE_URL": self.jobs.queue.queue_url,
                "DEADLINE_SECONDS": str(CHAT_DEADLINE_SECONDS),
                "DEGRADED_STATUS": "200",
                "SHED_TO_JOBS": str(config.jobs.shed_to_jobs).lower(),
            },
        )
        self.chat_function = chat.function
        self.jobs.grant_send(chat.role, key)
        # Exact actions on exactly these tables (no index wildcard) and their key (no action wildcard).
        conversation_actions = [
            "dynamodb:GetItem", "dynamodb:Query", "dynamodb:PutItem", "dynamodb:UpdateItem",
            "dynamodb:DeleteItem", "dynamodb:BatchWriteItem", "dynamodb:ConditionCheckItem",
        ]  # fmt: skip
        arn = {name: table.table_arn for name, table in tables.items()}
        grants: dict[str, list[tuple[str, list[str], list[str]]]] = {
            "api": [
                ("OwnConversationsTable", conversation_actions, [arn["Conversations"]]),
                ("ResponseCache", ["dynamodb:GetItem", "dynamodb:PutItem"], [arn["ResponseCache"]]),
                ("Jobs", ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"], [arn["JobsTable"]]),
            ],
            "worker": [
                ("OwnConversationsTable", conversation_actions, [arn["Conversations"]]),
                ("ResponseCache", ["dynamodb:GetItem", "dynamodb:PutItem"], [arn["ResponseCache"]]),
                ("Jobs", ["dynamodb:GetItem", "dynamodb:UpdateItem"], [arn["JobsTable"]]),
                (
                    "Idempotency",
                    ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"],
                    [arn["Idempotency"]],
                ),
            ],
        }
        for name, role in (("api", chat.role), ("worker", self.jobs.worker.role)):
            for sid, actions, resources in grants[name]:
                role.add_to_principal_policy(iam.PolicyStatement(sid=sid, actions=actions, resources=resources))
            role.add_to_principal_policy(
                iam.PolicyStatement(
                    sid="TableKey",
                    actions=["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:DescribeKey"],
                    resources=[key.key_arn],
                )
            )
            role.add_to_principal_policy(
                iam.PolicyStatement(sid="InvokeConfiguredModels", actions=["bedrock:InvokeModel"], resources=model_arns)
            )
            if guardrail_arns:
                role.add_to_principal_policy(
                    iam.PolicyStatement(
                        sid="ApplyGuardrails", actions=["bedrock:ApplyGuardrail"], resources=guardrail_arns
                    )
                )

        # --- API -----------------------------------------------------------------------------
        access_logs = logs.LogGroup(
            self, "AccessLogs", retention=retention, encryption_key=key, removal_policy=RemovalPolicy.RETAIN
        )
        self.api = apigw.RestApi(
            self,
            "Api",
            description=f"{config.prefix} API ({region})",
            endpoint_types=[apigw.EndpointType.REGIONAL],
            cloud_watch_role=True,
            cloud_watch_role_removal_policy=RemovalPolicy.RETAIN,
            deploy_options=apigw.StageOptions(
                stage_name="v1",
                # Never admit more concurrent requests than the chat Lambda may run: past its
                # reserved concurrency API Gateway answers 429 + Retry-After instead of Lambda
                # throttling into a 5xx.
                throttling_rate_limit=min(config.throttling.rate_limit, config.reserved_concurrency(region)),
                throttling_burst_limit=min(config.throttling.burst_limit, config.reserved_concurrency(region)),
                access_log_destination=apigw.LogGroupLogDestination(access_logs),
                access_log_format=apigw.AccessLogFormat.json_with_standard_fields(
                    caller=False,
                    http_method=True,
                    ip=True,
                    protocol=True,
                    request_time=True,
                    resource_path=True,
                    response_length=True,
                    status=True,
                    user=True,
                ),
                logging_level=apigw.MethodLoggingLevel.ERROR,
                data_trace_enabled=False,  # never log prompts or answers
                tracing_enabled=True,
                metrics_enabled=True,
            ),
            default_cors_preflight_options=apigw.CorsOptions(
                allow_origins=apigw.Cors.ALL_ORIGINS,
                allow_methods=["GET", "POST", "DELETE", "OPTIONS"],
                allow_headers=["Authorization", "Content-Type", "Idempotency-Key"],
                max_age=Duration.hours(1),
            ),
        )
        self._gateway_responses()
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

        authorizer = apigw.CognitoUserPoolsAuthorizer(self, "Authorizer", cognito_user_pools=[user_pool])
        auth = {"authorizer": authorizer, "authorization_type": apigw.AuthorizationType.COGNITO}
        integration = apigw.LambdaIntegration(chat.function, proxy=True)
        validator = self.api.add_request_validator(
            "Validator", validate_request_body=True, validate_request_parameters=True
        )
        chat_model = self.api.add_model(
            "ChatRequest",
            content_type="application/json",
            schema=apigw.JsonSchema(
                schema=apigw.JsonSchemaVersion.DRAFT4,
                title="ChatRequest",
                type=apigw.JsonSchemaType.OBJECT,
                required=["message"],
                additional_properties=False,
                properties={
                    "message": apigw.JsonSchema(
                        type=apigw.JsonSchemaType.STRING,
                        min_length=1,
                        max_length=config.limits.max_message_chars,
                    ),
                    "conversation_id": apigw.JsonSchema(type=apigw.JsonSchemaType.STRING, pattern=_UUID_PATTERN),
                },
            ),
        )

        root = self.api.root
        root.add_resource("chat").add_method(
            "POST",
            integration,
            request_validator=validator,
            request_models={"application/json": chat_model},
            **auth,
        )
        jobs = root.add_resource("jobs")
        jobs.add_method(
            "POST",
            integration,
            request_validator=validator,
            request_models={"application/json": chat_model},
            **auth,
        )
        jobs.add_resource("{job_id}").add_method("GET", integration, **auth)
        conversations = root.add_resource("conversations")
        conversations.add_method("GET", integration, **auth)
        conversation = conversations.add_resource("{conversation_id}")
        conversation.add_method("GET", integration, **auth)
        conversation.add_method("DELETE", integration, **auth)

        health = root.add_resource("health").add_method(
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
        suppress(
            health,
            "Public health probe for failover routing (Route 53 / the web client); it is a mock "
            "integration that returns only the region name and touches no data.",
            "AwsSolutions-APIG4",
            "AwsSolutions-COG4",
        )
        for method in self.api.methods:
            if method.http_method == "OPTIONS":
                suppress(
                    method,
                    "CORS preflight must be answered without credentials (browsers send no token on OPTIONS).",
                    "AwsSolutions-APIG4",
                    "AwsSolutions-COG4",
                )
        self._stage_suppressions()
        self._web_acl(config, key)

        self._alarms(config, models, key)

        CfnOutput(self, "ApiUrl", value=self.api.url)
        CfnOutput(self, "HealthUrl", value=self.api.url_for_path("/health"))

    def _alarms(self, config: AppConfig, models: Mapping[str, ModelsStack], key: kms.IKey) -> None:
        """Model health (AWS/Bedrock, per target in this region) and the gateway's own signals."""
        self.alarm_topic = sns.Topic(self, "Alarms", master_key=key, enforce_ssl=True)
        action = cw_actions.SnsAction(self.alarm_topic)
        five_minutes = Duration.minutes(5)
        alarms: list[cloudwatch.Alarm] = []
        for index, target in enumerate(config.models):
            if target.region != self.region or target.kind == "langchain":
                continue
            model = {"ModelId": models[target.region].invocations[target.key].invoke_id}
            for name, metric, threshold in (
                ("Throttles", cloudwatch.Metric(namespace="AWS/Bedrock", metric_name="InvocationThrottles",
                                                dimensions_map=model, statistic="Sum", period=five_minutes), 10),
                ("ServerErrors", cloudwatch.Metric(namespace="AWS/Bedrock", metric_name="InvocationServerErrors",
                                                   dimensions_map=model, statistic="Sum", period=five_minutes), 1),
                ("LatencyP99", cloudwatch.Metric(namespace="AWS/Bedrock", metric_name="InvocationLatency",
                                                 dimensions_map=model, statistic="p99", period=five_minutes), 20_000),
            ):  # fmt: skip
                alarms.append(
                    metric.create_alarm(
                        self,
                        f"Model{index}{name}",
                        alarm_description=f"{target.model_id} in {target.region}: {name}",
                        threshold=threshold,
                        evaluation_periods=1,
                        treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
                    )
                )
        service = {"service": "chat"}
        for name, metric_name in (("Degraded", "ChatDegraded"), ("ModelUnavailable", "ModelUnavailable")):
            alarms.append(
                cloudwatch.Metric(
                    namespace="Bulwark", metric_name=metric_name, dimensions_map=service, statistic="Sum",
                    period=five_minutes,
                ).create_alarm(
                    self, f"Gateway{name}", alarm_description=f"chat answers {name.lower()} (gateway)",
                    threshold=1, evaluation_periods=1, treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
                )
            )  # fmt: skip
        for index, target in enumerate(config.models):
            if target.kind == "langchain":
                runtime_id = target.model_id
            else:
                runtime_id = models[target.region].invocations[target.key].invoke_id
            alarms.append(
                cloudwatch.Metric(
                    namespace="Bulwark", metric_name="BreakerOpened", statistic="Sum", period=five_minutes,
                    dimensions_map={**service, "target": f"{runtime_id}@{target.region}"},
                ).create_alarm(
                    self, f"Breaker{index}Open", alarm_description=f"breaker opened for {target.key}",
                    threshold=1, evaluation_periods=1, treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
                )
            )  # fmt: skip
        alarms.extend(self.jobs.alarms)
        for alarm in alarms:
            alarm.add_alarm_action(action)
            alarm.add_ok_action(action)
        CfnOutput(self, "AlarmTopicArn", value=self.alarm_topic.topic_arn)

    def _gateway_responses(self) -> None:
        """Errors API Gateway itself raises still answer JSON with a message a user can act on."""
        cors = {"Access-Control-Allow-Origin": "'*'"}
        responses = {
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
            "TooLarge": (apigw.ResponseType.REQUEST_TOO_LARGE, "413",
                         '{"message": "request body too large"}', {}),
            "MissingAuthToken": (apigw.ResponseType.MISSING_AUTHENTICATION_TOKEN, "404",
                                 '{"message": "no such route: check the method and path"}', {}),
        }  # fmt: skip
        for name, (kind, status, template, headers) in responses.items():
            self.api.add_gateway_response(
                name,
                type=kind,
                status_code=status,
                response_headers={**cors, **headers},
                templates={"application/json": template},
            )

    def _stage_suppressions(self) -> None:
        stage = self.api.deployment_stage
        suppress(
            stage,
            "Responses are per-user conversation data that must never be served from a shared cache; "
            "each call is authorized and answered fresh.",
            "NIST.800.53.R5-APIGWCacheEnabledAndEncrypted",
            "HIPAA.Security-APIGWCacheEnabledAndEncrypted",
        )
        suppress(
            stage,
            "The API's only backend is Lambda via AWS_PROXY integration, which does not use backend "
            "client certificates; callers are authenticated with Cognito JWTs.",
            "NIST.800.53.R5-APIGWSSLEnabled",
            "HIPAA.Security-APIGWSSLEnabled",
        )

    def _web_acl(self, config: AppConfig, key: kms.IKey) -> None:
        def managed(name: str, priority: int, excluded: tuple[str, ...] = ()) -> wafv2.CfnWebACL.RuleProperty:
            return wafv2.CfnWebACL.RuleProperty(
                name=name,
                priority=priority,
                override_action=wafv2.CfnWebACL.OverrideActionProperty(none={}),
                statement=wafv2.CfnWebACL.StatementProperty(
                    managed_rule_group_statement=wafv2.CfnWebACL.ManagedRuleGroupStatementProperty(
                        vendor_name="AWS",
                        name=name,
                        rule_action_overrides=[
                            wafv2.CfnWebACL.RuleActionOverrideProperty(
                                name=rule, action_to_use=wafv2.CfnWebACL.RuleActionProperty(count={})
                            )
                            for rule in excluded
                        ]
                        or None,
                    )
                ),
                visibility_config=_visibility(name),
            )

        acl = wafv2.CfnWebACL(
            self,
            "WebAcl",
            scope="REGIONAL",
            default_action=wafv2.CfnWebACL.DefaultActionProperty(allow={}),
            visibility_config=_visibility("api"),
            rules=[
                wafv2.CfnWebACL.RuleProperty(
                    name="RatePerIp",
                    priority=0,
                    action=wafv2.CfnWebACL.RuleActionProperty(block={}),
                    statement=wafv2.CfnWebACL.StatementProperty(
                        rate_based_statement=wafv2.CfnWebACL.RateBasedStatementProperty(
                            aggregate_key_type="IP",
                            limit=config.throttling.waf_rate_limit_per_5min,
                            evaluation_window_sec=300,
                        )
                    ),
                    visibility_config=_visibility("RatePerIp"),
                ),
                managed("AWSManagedRulesAmazonIpReputationList", 1),
                # The body-size rule blocks bodies over 8 KB; our own limit (max_body_bytes) is
                # enforced by the handler with a clear 413, so that rule only counts.
                managed("AWSManagedRulesCommonRuleSet", 2, excluded=("SizeRestrictions_BODY",)),
                managed("AWSManagedRulesKnownBadInputsRuleSet", 3),
            ],
        )
        wafv2.CfnWebACLAssociation(
            self, "WebAclAssociation", resource_arn=self.api.deployment_stage.stage_arn, web_acl_arn=acl.attr_arn
        )
        # WAF requires its log group's name to start with aws-waf-logs-.
        waf_logs = logs.LogGroup(
            self,
            "WafLogs",
            log_group_name=f"aws-waf-logs-{self.stack_name}",
            retention=log_retention(config.log_retention_days),
            encryption_key=key,
            removal_policy=RemovalPolicy.RETAIN,
        )
        wafv2.CfnLoggingConfiguration(
            self,
            "WafLogging",
            resource_arn=acl.attr_arn,
            log_destination_configs=[
                self.format_arn(
                    service="logs",
                    resource="log-group",
                    resource_name=waf_logs.log_group_name,
                    arn_format=ArnFormat.COLON_RESOURCE_NAME,
                )
            ],
        )


def _visibility(name: str) -> wafv2.CfnWebACL.VisibilityConfigProperty:
    return wafv2.CfnWebACL.VisibilityConfigProperty(
        cloud_watch_metrics_enabled=True, metric_name=name, sampled_requests_enabled=True
    )
