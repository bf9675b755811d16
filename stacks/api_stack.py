"""The regional API: REST API + WAF + the chat Lambda + the jobs pipeline. Deployed identically in both regions.

Reads top to bottom: the parts (tables, jobs pipeline, chat Lambda, REST API, WAF, alarms), then
what connects them (grants), then outputs. Each part is a construct tested on its own.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aws_cdk import Annotations, ArnFormat, Aws, CfnOutput, Duration, Stack
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_certificatemanager as acm
from aws_cdk import aws_cognito as cognito
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_route53 as route53
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_wafv2 as wafv2
from constructs import Construct

from handlers.settings import TargetSetting
from stacks.auth_stack import user_pool_arn_in
from stacks.config import AppConfig, ModelTarget
from stacks.constructs.api_alarms import ApiAlarms
from stacks.constructs.budget import MonthlyBudget
from stacks.constructs.chat_api import STAGE_NAME, ChatRestApi
from stacks.constructs.curate_job import CurateJob
from stacks.constructs.dashboard import RegionMonitoring
from stacks.constructs.drift_job import DriftJob
from stacks.constructs.ingest_pipeline import IngestPipeline
from stacks.constructs.jobs_pipeline import JobsPipeline
from stacks.constructs.python_function import PythonFunction, lambda_code, log_retention
from stacks.constructs.regional_tables import RegionalTables
from stacks.constructs.runtime_switches import RuntimeSwitches
from stacks.constructs.stream_api import StreamApi
from stacks.constructs.web_acl import WebAcl
from stacks.constructs.workflow import SummarizeWorkflow
from stacks.knowledge_stack import KnowledgeStack
from stacks.lambda_settings import (
    CHAT_TIMEOUT_SECONDS,
    TableNames,
    chain_settings,
    chat_settings,
    drift_settings,
    ingest_settings,
    recovery_settings,
    worker_settings,
    workflow_settings,
)
from stacks.models_stack import ModelsStack, grant_model_access


class ApiStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: AppConfig,
        tables: TableNames,
        key: kms.IKey,
        user_pool_id: str,
        user_pool_region: str,
        models: Mapping[str, ModelsStack],
        site_origin: str,
        logs_key: kms.IKey | None = None,
        knowledge: KnowledgeStack | None = None,
        web_acl_arn: str | None = None,
        client_id: str = "",
        **kwargs: Any,
    ) -> None:
        """`site_origin`: the web UI's origin (https://<distribution>.cloudfront.net), the only CORS origin.
        `knowledge`: this region's KnowledgeStack (documents, ingest queue, vector index); None: knowledge off.
        `client_id`: the web app client, the only audience the WebSocket API's authorizer accepts.
        `web_acl_arn`: a regional web ACL to attach to the stage (the primary region shares the user pool's: one
        ACL costs $5 a month plus $1 a rule, and both resources want the same rules); None: this stack's own."""
        super().__init__(scope, construct_id, **kwargs)
        region = self.region
        retention = log_retention(config.log_retention_days)
        logs_key = logs_key or key  # `key`: tables and queues; `logs_key`: log groups and the alarm topic

        def runtime_id(target: ModelTarget) -> str:
            if target.kind == "langchain":
                return target.model_id
            return models[target.region].invocations[target.key].invoke_id

        def resolve(target: ModelTarget) -> tuple[str, tuple[str, str] | None]:
            # Another provider's model is guarded by this region's guardrail (ApplyGuardrail in the Lambda).
            guardrail = models[region if target.kind == "langchain" else target.region].guardrail
            return runtime_id(target), guardrail[:2] if guardrail else None

        secrets = self._provider_secrets(config)
        targets = chain_settings(config, region, resolve, secret_arn=lambda target: secrets[target.key][0])
        self._warn_unguarded(config, targets)

        # --- the parts -----------------------------------------------------------------------------
        data = RegionalTables(self, "Tables", names=tables, key=key)
        # Incident switches (AppConfig), read by the chat and worker Lambdas every 30 s.
        switches = RuntimeSwitches(self, "Switches", environment_name=config.env_name)
        names = knowledge.names if knowledge else None
        # Before the jobs pipeline: the sandbox (local/templates.py) takes the template's last event source
        # mapping for the worker's.
        self.ingest: IngestPipeline | None = None
        if knowledge:
            self.ingest = IngestPipeline(
                self, "Ingest", config=config, knowledge=knowledge, tables=data, log_key=logs_key,
                log_retention=retention,
                environment=ingest_settings(config, tables=tables, knowledge=knowledge.names).to_env(),
            )  # fmt: skip
        self.jobs = JobsPipeline(
            self, "Jobs", config=config, key=key, log_key=logs_key, log_retention=retention,
            worker_environment=lambda queue_url: worker_settings(
                config, tables=tables, targets=targets, queue_url=queue_url, knowledge=names
            ).but(**switches.settings()).to_env(),
            tables=data,
            recovery_environment=lambda queue_url: recovery_settings(
                config, tables=tables, queue_url=queue_url, region=region
            ).to_env(),
        )  # fmt: skip
        # Long workflows (ADR 0005): the summarize job kind's durable function (it reads ingested documents, so
        # only with knowledge); the worker starts an execution by the function's alias.
        self.workflow: SummarizeWorkflow | None = None
        if config.workflows.enabled and knowledge:
            self.workflow = SummarizeWorkflow(
                self, "Summarize", config=config, log_key=logs_key, log_retention=retention,
                environment=workflow_settings(
                    config, tables=tables, targets=targets, queue_url=self.jobs.queue.queue_url, knowledge=names
                ).but(**switches.settings()).to_env(),
            )  # fmt: skip
            self.jobs.worker.function.add_environment("SUMMARIZE_FUNCTION_ARN", self.workflow.start_arn)
        chat_env = (
            chat_settings(
                config,
                tables=tables,
                targets=targets,
                queue_url=self.jobs.queue.queue_url,
                allowed_origin=site_origin,
                knowledge=names,
            )
            .but(**switches.settings())
            .to_env()
        )
        chat = PythonFunction(
            self,
            "Chat",
            handler="handlers.chat.handler",
            service_name="chat",
            code=lambda_code(),
            log_key=logs_key,
            log_retention=retention,
            reserved_concurrency=config.reserved_concurrency(region),
            timeout=Duration.seconds(CHAT_TIMEOUT_SECONDS),
            cold_start=config.cold_start.chat,
            primary=region == config.primary_region,
            no_dlq_reason="Invoked synchronously by API Gateway: a failed request is returned to the caller as "
            "an HTTP error, so there is no event to park in a DLQ.",
            environment=chat_env,
        )
        self.chat_function = chat.function
        # Streamed answers (ADR 0004): a WebSocket API whose Lambda has the chat Lambda's bundle and settings.
        self.stream: StreamApi | None = None
        if config.streaming.enabled:
            self.stream = StreamApi(
                self, "Stream", config=config, region=region, code=lambda_code(), environment=chat_env,
                user_pool_id=user_pool_id, user_pool_region=user_pool_region, client_id=client_id, key=logs_key,
                log_retention=retention,
            )  # fmt: skip
        stream_roles = [self.stream.function.role] if self.stream else []
        user_pool = cognito.UserPool.from_user_pool_arn(
            self, "Users", user_pool_arn_in(self, user_pool_id=user_pool_id, region=user_pool_region)
        )
        rest = ChatRestApi(
            self, "Rest", config=config, region=region, handler=chat.target, user_pool=user_pool, key=logs_key,
            log_retention=retention, allowed_origin=site_origin,
        )  # fmt: skip
        self.api = rest.api
        # The API's host, for the web UI's Content-Security-Policy (connect-src).
        self.api_host = f"https://{self.api.rest_api_id}.execute-api.{region}.{Aws.URL_SUFFIX}"
        if web_acl_arn is None:
            waf = WebAcl(
                self,
                "Waf",
                acl_scope="REGIONAL",
                rate_limit_per_5min=config.throttling.waf_rate_limit_per_5min,
                key=logs_key,
                log_retention=retention,
                # That rule blocks bodies over 8 KB; our own limit (max_body_bytes) answers a clear 413.
                common_rules_count_only=("SizeRestrictions_BODY",),
            )
            waf.associate(self.api.deployment_stage.stage_arn)
        else:
            wafv2.CfnWebACLAssociation(
                self, "WafAssociation", resource_arn=self.api.deployment_stage.stage_arn, web_acl_arn=web_acl_arn
            )
        self.alarms = ApiAlarms(
            self, "Alarms", config=config, region=region, runtime_id=runtime_id, key=logs_key,
            extra=[*self.jobs.alarms, *(self.ingest.alarms if self.ingest else [])],
        )  # fmt: skip
        # The region's dashboard and its composite "region unhealthy" alarm (to the same topic).
        functions = {"chat": chat.function, "worker": self.jobs.worker.function}
        if self.stream:
            functions["stream"] = self.stream.function.function
            functions["ws-authorizer"] = self.stream.authorizer_function.function
        if self.workflow:
            functions["summarize"] = self.workflow.function
        queues = [("Jobs", self.jobs.queue, self.jobs.dlq)]
        if self.ingest and knowledge:
            functions["ingest"] = self.ingest.ingest.function
            queues.append(("Ingest", knowledge.queue, knowledge.dlq))
        self.monitoring = RegionMonitoring(
            self, "Monitoring", config=config, region=region, api=self.api, functions=functions, queues=queues,
            jobs_alarms=(self.jobs.alarms[1], self.jobs.alarms[0]), topic=self.alarms.topic, runtime_id=runtime_id,
        )  # fmt: skip
        if region == config.primary_region and config.monitoring.budget_usd > 0:
            # One budget for the account (Budgets is global): in the primary region, to its alarm topic.
            MonthlyBudget(self, "Budget", amount_usd=config.monitoring.budget_usd, topic=self.alarms.topic)
        self.drift: DriftJob | None = None
        if config.drift.enabled and tables.prompts and data.prompts is not None:
            # Drift baselines: the chat path's signals against their baseline, in each region (issue 12).
            self.drift = DriftJob(
                self, "Drift", tables=data, topic=self.alarms.topic, log_key=logs_key, log_retention=retention,
                every_hours=config.drift.every_hours, bounds=config.drift.all_bounds(),
                environment=drift_settings(config, prompts_table=tables.prompts, knowledge=names).to_env(),
                vector_index_arn=knowledge.index_arn if knowledge else None,
                vectors_key=knowledge.key if knowledge else None,
            )  # fmt: skip

        # --- what connects them --------------------------------------------------------------------
        data.grant_api(chat.role)
        for role in stream_roles:
            data.grant_stream(role)
        data.grant_worker(self.jobs.worker.role)
        self.jobs.grant_send(chat.role)
        # GET /health/deep: the jobs queue answers (one attribute, no messages read). Its table read is the
        # conversations GetItem granted above.
        chat.role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="DeepHealthQueueProbe", actions=["sqs:GetQueueAttributes"], resources=[self.jobs.queue.queue_arn]
            )
        )
        self.jobs.grant_send(self.jobs.worker.role)
        for role in (chat.role, self.jobs.worker.role, *stream_roles):
            grant_model_access(role, config=config, region=region, models=models)
            switches.grant_read(role)
            for arn_pattern in {pattern for _, pattern in secrets.values()}:
                role.add_to_principal_policy(
                    iam.PolicyStatement(actions=["secretsmanager:GetSecretValue"], resources=[arn_pattern])
                )
        embedding_model = self.format_arn(
            service="bedrock", account="", resource="foundation-model",
            resource_name=config.knowledge.embedding_model_id, arn_format=ArnFormat.SLASH_RESOURCE_NAME,
        )  # fmt: skip
        if tables.curated and region == config.primary_region:
            # Answers the curated questions for a newly active prompt, every hour, in the primary region (global table).
            curate = CurateJob(
                self, "Curate", tables=data, embedding_model_arn=embedding_model, log_key=logs_key,
                log_retention=retention,
                environment=worker_settings(
                    config, tables=tables, targets=targets, queue_url=self.jobs.queue.queue_url, knowledge=names
                ).but(**switches.settings()).to_env(),
            )  # fmt: skip
            # The switches too: it curates for the prompt the chat path serves (a switch may roll it back).
            switches.grant_read(curate.role)
            grant_model_access(curate.role, config=config, region=region, models=models)
            for arn_pattern in {pattern for _, pattern in secrets.values()}:
                curate.role.add_to_principal_policy(
                    iam.PolicyStatement(actions=["secretsmanager:GetSecretValue"], resources=[arn_pattern])
                )
        if tables.curated and not knowledge:
            # Curated answers match the question by its Titan v2 embedding; without knowledge no retrieval grants it.
            for role in (chat.role, self.jobs.worker.role, *stream_roles):
                role.add_to_principal_policy(
                    iam.PolicyStatement(
                        sid="InvokeEmbeddingModel", actions=["bedrock:InvokeModel"], resources=[embedding_model]
                    )
                )
        if knowledge:
            # Uploads (presigned POST), listing, status and deletes; retrieval in /chat and /jobs.
            data.grant_documents(chat.role)
            for role in (self.jobs.worker.role, *stream_roles):
                data.grant_documents_read(role)
            knowledge.grant_documents_api(chat.role)
            for role in (chat.role, self.jobs.worker.role, *stream_roles):
                knowledge.grant_retrieval(role)

        if self.workflow and knowledge:
            # The summarize workflow: the worker's grants (tables, models, switches, provider secrets), the
            # documents' status read and the index's vectors (GetVectors); the worker may start it, nothing else.
            flow = self.workflow.role
            data.grant_worker(flow)
            data.grant_documents_read(flow)
            knowledge.grant_retrieval(flow)
            grant_model_access(flow, config=config, region=region, models=models)
            switches.grant_read(flow)
            for arn_pattern in {pattern for _, pattern in secrets.values()}:
                flow.add_to_principal_policy(
                    iam.PolicyStatement(actions=["secretsmanager:GetSecretValue"], resources=[arn_pattern])
                )
            self.workflow.grant_start(self.jobs.worker.role)

        # --- outputs -------------------------------------------------------------------------------
        CfnOutput(self, "ApiUrl", value=self.api.url)
        CfnOutput(self, "HealthUrl", value=self.api.url_for_path("/health"))
        CfnOutput(self, "DeepHealthUrl", value=self.api.url_for_path("/health/deep"))
        if self.stream:
            CfnOutput(self, "StreamUrl", value=self.stream.url)
        if config.failover_domain is not None:
            self._failover_domain(config, region)

    def _failover_domain(self, config: AppConfig, region: str) -> None:
        """One name for both regions: this region's custom domain for the API, a Route 53 health check on this
        region's GET /health/deep (on the execute-api host, so it never depends on the record it steers), and
        this region's failover alias record: PRIMARY in the primary region, SECONDARY in DR. Route 53 answers
        with the primary while its check passes and with DR otherwise; no deploy is needed to fail over."""
        domain = config.failover_domain
        assert domain is not None
        zone = route53.HostedZone.from_hosted_zone_attributes(
            self, "Zone", hosted_zone_id=domain.hosted_zone_id, zone_name=domain.zone_name
        )
        arn = domain.certificate_arns.get(region)
        certificate = (
            acm.Certificate.from_certificate_arn(self, "Certificate", arn)
            if arn
            else acm.Certificate(
                self, "Certificate", domain_name=domain.domain_name, validation=acm.CertificateValidation.from_dns(zone)
            )
        )
        custom = apigw.DomainName(
            self,
            "Domain",
            domain_name=domain.domain_name,
            certificate=certificate,
            endpoint_type=apigw.EndpointType.REGIONAL,
            security_policy=apigw.SecurityPolicy.TLS_1_2,
            mapping=self.api,
        )
        check = route53.CfnHealthCheck(
            self,
            "DeepHealthCheck",
            health_check_config=route53.CfnHealthCheck.HealthCheckConfigProperty(
                type="HTTPS",
                fully_qualified_domain_name=f"{self.api.rest_api_id}.execute-api.{region}.{Aws.URL_SUFFIX}",
                port=443,
                resource_path=f"/{STAGE_NAME}/health/deep",
                enable_sni=True,
                request_interval=domain.health_check_interval_s,
                failure_threshold=domain.failure_threshold,
            ),
            health_check_tags=[
                route53.CfnHealthCheck.HealthCheckTagProperty(key="Name", value=f"{config.prefix} {region} deep health")
            ],
        )
        primary = region == config.primary_region
        route53.CfnRecordSet(
            self,
            "FailoverRecord",
            hosted_zone_id=domain.hosted_zone_id,
            name=domain.domain_name,
            type="A",
            set_identifier=f"{config.prefix}-{region}",
            failover="PRIMARY" if primary else "SECONDARY",
            health_check_id=check.attr_health_check_id,
            alias_target=route53.CfnRecordSet.AliasTargetProperty(
                dns_name=custom.domain_name_alias_domain_name,
                hosted_zone_id=custom.domain_name_alias_hosted_zone_id,
                evaluate_target_health=False,  # the health check above decides
            ),
        )
        CfnOutput(self, "FailoverUrl", value=f"https://{domain.domain_name}/")

    def _provider_secrets(self, config: AppConfig) -> dict[str, tuple[str, str]]:
        """For each LangChain target that names a secret: (the ARN its Lambdas read, the ARN pattern IAM allows).
        A name is this region's secret (replicate it to both regions); IAM matches its random suffix only."""
        found: dict[str, tuple[str, str]] = {}
        for index, target in enumerate(config.models):
            if target.secret is None:
                continue
            if target.secret.startswith("arn:"):
                found[target.key] = (target.secret, target.secret)
                continue
            secret = secretsmanager.Secret.from_secret_name_v2(self, f"ProviderSecret{index}", target.secret)
            found[target.key] = (secret.secret_arn, f"{secret.secret_arn}-??????")
        return found

    def _warn_unguarded(self, config: AppConfig, targets: tuple[TargetSetting, ...]) -> None:
        """Say at synth, in this stack's report, which targets no guardrail covers, and what that costs."""
        unguarded = [target.display_name for target in targets if target.guardrail is None]
        if not unguarded:
            return
        reason = "guardrail.enabled is false in cdk.json" if not config.guardrail.enabled else "no guardrail resolved"
        Annotations.of(self).add_warning_v2(
            "bulwark:unguarded-target",
            f"No guardrail covers {', '.join(unguarded)} ({reason}): questions and answers through "
            "it are not filtered (prompt attacks, harmful content, PII), and its answers are never cached "
            "(only guardrail-passed answers are).",
        )
