#!/usr/bin/env python3
"""Composition root: parse config once, build both regions' stacks, apply cdk-nag, synth."""

from __future__ import annotations

from typing import Any

from aws_cdk import App, Aspects, CfnResource, CrossStackReferences, Environment, ReferenceStrength, Stack, Tags
from cdk_nag import AwsSolutionsChecks, HIPAASecurityChecks, NIST80053R5Checks
from constructs import Construct

from stacks.api_stack import ApiStack
from stacks.auth_stack import AuthReplicaStack, AuthStack
from stacks.backup_stack import BackupStack, BackupVaultStack
from stacks.config import CONTEXT_KEY, AppConfig
from stacks.constructs.nag import skip_checkov_on_cross_region_providers
from stacks.data_stack import DataStack
from stacks.edge_stack import EDGE_REGION, EdgeStack
from stacks.keys_stack import KeysStack
from stacks.knowledge_stack import KnowledgeStack
from stacks.lambda_settings import TableNames
from stacks.models_stack import ModelsStack
from stacks.web_content_stack import WebContentStack
from stacks.web_stack import WebDrStack, WebStack, connect_sources


def build_app(app: App | None = None, *, nag: bool = True) -> App:
    app = app or App()
    config = AppConfig.from_context(app.node.try_get_context(CONTEXT_KEY))
    build_stacks(app, config)
    if nag:
        for pack in (AwsSolutionsChecks, NIST80053R5Checks, HIPAASecurityChecks):
            Aspects.of(app).add(pack(verbose=True, reports=True))
    return app


def build_stacks(app: App, config: AppConfig) -> dict[str, Stack]:
    primary = Environment(account=config.account, region=config.primary_region)
    dr = Environment(account=config.account, region=config.dr_region)
    name = config.prefix

    keys = KeysStack(app, f"{name}-Keys", config=config, env=primary)
    dr_keys = KeysStack(
        app, f"{name}-Keys-DR", config=config, primary_key=keys.key, env=dr, cross_region_references=True
    )
    data = DataStack(app, f"{name}-Data", config=config, key=keys.key, env=primary)
    data.add_stack_dependency(dr_keys, "the table's DR replica is encrypted with the replica key")
    models = {
        config.primary_region: ModelsStack(app, f"{name}-Models", config=config, env=primary),
        config.dr_region: ModelsStack(app, f"{name}-Models-DR", config=config, env=dr),
    }
    auth = AuthStack(app, f"{name}-Auth", config=config, key=keys.key, env=primary)
    auth.add_stack_dependency(dr_keys, "the user pool replica needs the key replicated first")
    tables = TableNames(
        conversations=data.conversations.table_name,
        response_cache=data.response_cache.table_name,
        jobs=data.jobs.table_name,
        idempotency=data.idempotency.table_name,
        usage=data.usage.table_name,
        documents=data.documents.table_name,
        prompts=data.prompts.table_name,
        curated=data.curated.table_name if config.curated.enabled else None,
    )
    # The site comes first: the API stacks allow exactly its origin (CORS). Its files and config.json,
    # which name both APIs, follow them (WebContentStack, one per region). CloudFront's web ACL can only live
    # in us-east-1: elsewhere a small Edge stack there holds it. The DR site bucket (the origin group's
    # failover) comes before the distribution, which reads its name weakly; its policy, naming the
    # distribution, comes with the DR files (stacks/web_stack.py).
    edge = None
    if config.primary_region != EDGE_REGION and config.cloudfront_waf:
        edge_env = Environment(account=config.account, region=EDGE_REGION)
        edge = EdgeStack(app, f"{name}-Edge", config=config, env=edge_env)
    web_dr = WebDrStack(app, f"{name}-Web-DR", config=config, env=dr)
    web = WebStack(
        app,
        f"{name}-Web",
        config=config,
        key=keys.logs_key,  # only its log groups
        dr_bucket=web_dr.bucket,
        web_acl_arn=edge.web_acl_arn if edge else None,
        env=primary,
        cross_region_references=True,
    )
    # Documents and vectors per region, the DR region's first: the primary bucket replicates into it.
    knowledge: dict[str, KnowledgeStack] = {}
    if config.knowledge.enabled:
        knowledge["knowledge-dr"] = KnowledgeStack(
            app, f"{name}-Knowledge-DR", config=config, key=dr_keys.key, site_origin=web.site_origin, env=dr,
            cross_region_references=True,
        )  # fmt: skip
        knowledge["knowledge"] = KnowledgeStack(
            app, f"{name}-Knowledge", config=config, key=keys.key, site_origin=web.site_origin,
            replica=knowledge["knowledge-dr"], env=primary, cross_region_references=True,
        )  # fmt: skip
    api = ApiStack(
        app,
        f"{name}-Api",
        config=config,
        tables=tables,
        key=keys.key,
        logs_key=keys.logs_key,
        user_pool_id=auth.user_pool.user_pool_id,
        user_pool_region=config.primary_region,
        client_id=auth.client.user_pool_client_id,
        models=models,
        site_origin=web.site_origin,
        knowledge=knowledge.get("knowledge"),
        web_acl_arn=auth.waf.arn,  # one regional ACL for the user pool and the API (cost: see the Auth stack)
        env=primary,
        cross_region_references=True,
    )

    # DR region: the replica pool shares the primary's id; the table replica shares its name.
    # Without replication (ADR 0001) the DR API trusts the primary pool: tokens issued before an
    # outage keep working, new sign-ins wait for the primary region.
    dr_api = ApiStack(
        app,
        f"{name}-Api-DR",
        config=config,
        tables=tables,
        key=dr_keys.key,
        logs_key=dr_keys.logs_key,
        user_pool_id=auth.user_pool.user_pool_id,
        user_pool_region=config.dr_region if config.replicate_user_pool else config.primary_region,
        client_id=auth.client.user_pool_client_id,
        models=models,
        site_origin=web.site_origin,
        knowledge=knowledge.get("knowledge-dr"),
        env=dr,
        cross_region_references=True,
    )
    dr_api.add_stack_dependency(data, "the table replica is created by the primary Data stack")
    read_from_dr_without_writers(
        models[config.dr_region], dr_api.api, dr_api.api.deployment_stage,
        *((dr_api.stream.api, dr_api.stream.stage) if dr_api.stream else ()),
    )  # fmt: skip
    primary_target = config.chain_for(config.primary_region)[0]
    # The same files and config.json in both regions' site buckets, each deployed from source in its region.
    site_content: dict[str, Any] = {
        "config": config,
        "runtime_config": {
            "region": config.primary_region,
            "userPoolId": auth.user_pool.user_pool_id,
            "clientId": auth.client.user_pool_client_id,
            "apiEndpoints": [api.api.url, dr_api.api.url],
            # Streamed answers (ADR 0004): each region's WebSocket URL, in the same order, and the stream Lambda's
            # timeout (no answer can come after it: the browser's watchdog for one streamed request).
            **(
                {
                    "streamEndpoints": [api.stream.url, dr_api.stream.url],
                    "streamTimeoutSeconds": config.streaming.timeout_seconds,
                }
                if api.stream and dr_api.stream
                else {}
            ),
            "primaryTarget": {"model_id": primary_target.display_name, "region": primary_target.region},
        },
        "connect": connect_sources(config, api_hosts=[api.api_host, dr_api.api_host]),
        "stream_hosts": [stack.stream.host for stack in (api, dr_api) if stack.stream],
        "documents_buckets": [knowledge[name].bucket for name in ("knowledge", "knowledge-dr") if name in knowledge],
        "cross_region_references": True,
    }
    web_content_dr = WebContentStack(
        app,
        f"{name}-WebContent-DR",
        bucket=web_dr.bucket,
        failover_for=web.distribution,  # holds the DR bucket's policy, which names the distribution
        key=dr_keys.logs_key,  # only its log group
        env=dr,
        **site_content,
    )
    web_content = WebContentStack(
        app,
        f"{name}-WebContent",
        bucket=web.bucket,
        distribution=web.distribution,
        key=keys.logs_key,  # only its log group
        env=primary,
        **site_content,
    )
    web_content.add_stack_dependency(web_content_dr, "CloudFront is invalidated once both origins hold the files")
    stacks: dict[str, Stack] = {
        "keys": keys, "keys-dr": dr_keys, "data": data, "auth": auth, "api": api, "web": web, "api-dr": dr_api,
        "web-content": web_content, "web-dr": web_dr, "web-content-dr": web_content_dr,
        "models": models[config.primary_region], "models-dr": models[config.dr_region],
        **knowledge,
    }  # fmt: skip
    if config.replicate_user_pool:
        dr_auth = AuthReplicaStack(
            app,
            f"{name}-Auth-DR",
            config=config,
            user_pool_id=auth.user_pool.user_pool_id,
            env=dr,
            cross_region_references=True,
        )
        dr_api.add_stack_dependency(dr_auth, "the pool replica must be active before the DR API trusts it")
        stacks["auth-dr"] = dr_auth
    if edge:
        stacks["edge"] = edge
    if config.backup.enabled:
        stacks.update(build_backups(app, config, data=data, keys=keys, knowledge=knowledge.get("knowledge")))
    for stack in stacks.values():
        skip_checkov_on_cross_region_providers(stack)
        Tags.of(stack).add("app", config.app_name)
        Tags.of(stack).add("environment", config.env_name)
    return stacks


def read_from_dr_without_writers(*producers: Construct) -> None:
    """Static stability: what primary stacks read from DR stacks (the DR API's URL for the web client, the DR
    region's guardrails and model ARNs for the primary chain's DR targets) is read with Fn::GetStackOutput at the
    primary stack's deploy (weak references), not pushed by an export writer in the DR stack. A DR stack then
    holds no custom resource that calls the primary region, so it deploys and scales while the primary is down.
    References into DR stacks from the primary region stay strong: CDK's writer in the primary stack puts them
    into the DR region's SSM, where the DR stack's reader reads them locally.

    The DR documents bucket and the DR key (the primary documents' replication destination, and the bucket's name
    in the web client's CSP) are read weakly where they are used, in knowledge_stack.py and web_content_stack.py
    (Stack.consume_reference), as the DR stacks' same-region readers keep their strong references; so is the DR
    site bucket's name, the CloudFront origin group's failover, in web_stack.py."""
    for producer in producers:
        for construct in producer.node.find_all():
            if isinstance(construct, CfnResource):
                CrossStackReferences.of(construct).produce(ReferenceStrength.WEAK)


def build_backups(
    app: App, config: AppConfig, *, data: DataStack, keys: KeysStack, knowledge: KnowledgeStack | None
) -> dict[str, Stack]:
    """AWS Backup of every table and the primary documents bucket, copied to the DR region's locked vault (or a
    separate backup account's). The DR vault stack reads nothing from the primary region and comes first."""
    primary = Environment(account=config.account, region=config.primary_region)
    found: dict[str, Stack] = {}
    tables = [data.conversations, data.response_cache, data.jobs, data.idempotency, data.usage, data.documents,
              data.prompts, data.curated]  # fmt: skip
    backups = BackupStack(
        app, f"{config.prefix}-Backup", config=config, tables=tables, buckets=[knowledge.bucket] if knowledge else [],
        data_key=keys.key, logs_key=keys.logs_key, env=primary,
    )  # fmt: skip
    found["backup"] = backups
    if config.backup.copy_to_vault_arn is None:
        dr = Environment(account=config.account, region=config.dr_region)
        vault = BackupVaultStack(app, f"{config.prefix}-Backup-DR", config=config, env=dr)
        backups.add_stack_dependency(vault, "the plan copies into the DR vault, which must exist first")
        found["backup-dr"] = vault
    return found


if __name__ == "__main__":
    build_app().synth()
