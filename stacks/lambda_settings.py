"""From AppConfig to the Lambdas' Settings: the one place the stack side fills the environment contract.

Pure (no CDK imports): the stacks pass CDK tokens for names and URLs, the sandbox passes local ones.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from handlers.settings import Settings, SignUpSettings, TargetSetting
from stacks.config import AppConfig, ModelTarget

# The sync path must answer before API Gateway's 29 s integration timeout.
CHAT_TIMEOUT_SECONDS = 28
CHAT_DEADLINE_SECONDS = 25

# For one target: (the id Converse is called with, the guardrail (id, version) that covers it, or None).
# A LangChain target is covered by the guardrail of the region its Lambda runs in (ApplyGuardrail).
Resolver = Callable[[ModelTarget], tuple[str, tuple[str, str] | None]]


@dataclass(frozen=True, kw_only=True)
class TableNames:
    conversations: str
    response_cache: str
    jobs: str
    idempotency: str
    usage: str


def chain_settings(
    config: AppConfig,
    region: str,
    resolve: Resolver,
    *,
    secret_arn: Callable[[ModelTarget], str] | None = None,
) -> tuple[TargetSetting, ...]:
    """The failover chain as the Lambdas in `region` see it (local targets first).

    `secret_arn` gives the ARN of a LangChain target's credentials secret (default: the configured name,
    which Secrets Manager also accepts)."""
    targets = []
    for target in config.chain_for(region):
        invoke_id, guardrail = resolve(target)
        if target.kind == "langchain":
            # Another provider: no IAM of ours; its package must be in the bundle. The guardrail of this
            # region is applied to its question and answer (ApplyGuardrail); its key comes from the secret.
            spec = {key: value for key, value in (target.langchain or {}).items() if key != "secret"}
            targets.append(
                TargetSetting(
                    model_id=target.model_id,
                    region=target.region,
                    max_tokens=target.max_tokens,
                    langchain=spec,
                    name=_shown(target, target.model_id),
                    guardrail=guardrail,
                    guardrail_region=region if guardrail else None,
                    secret_arn=(secret_arn or _configured_secret)(target) if target.secret else None,
                )
            )
            continue
        targets.append(
            TargetSetting(
                model_id=invoke_id,
                region=target.region,
                max_tokens=target.max_tokens,
                guardrail=guardrail,
                name=_shown(target, invoke_id),
            )
        )
    return tuple(targets)


def _shown(target: ModelTarget, invoke_id: str) -> str | None:
    """The display name when it differs from what the model is called with (an ARN, a label)."""
    return None if target.display_name == invoke_id else target.display_name


def _configured_secret(target: ModelTarget) -> str:
    return target.secret or ""


def chat_settings(
    config: AppConfig,
    *,
    tables: TableNames,
    targets: tuple[TargetSetting, ...],
    queue_url: str,
    allowed_origin: str | None = None,
) -> Settings:
    """The API Lambda: the sync path's deadline, degraded answers and shedding as configured; CORS headers
    for the web UI's origin only (`allowed_origin`, e.g. https://<distribution>.cloudfront.net)."""
    return _common(config, tables=tables, targets=targets, queue_url=queue_url).but(
        deadline_s=float(CHAT_DEADLINE_SECONDS),
        degraded_status=config.gateway.degraded_status,
        shed_to_jobs=config.jobs.shed_to_jobs,
        allowed_origin=allowed_origin,
    )


def sign_up_settings(config: AppConfig) -> SignUpSettings:
    """The pre-sign-up trigger: the email domains allowed to sign themselves up."""
    return SignUpSettings(allowed_email_domains=config.auth.sign_up_email_domains)


def worker_settings(
    config: AppConfig, *, tables: TableNames, targets: tuple[TargetSetting, ...], queue_url: str
) -> Settings:
    """The jobs worker: a longer deadline per answer, pacing to its share of the model quota."""
    sizing = config.worker_sizing()
    return _common(config, tables=tables, targets=targets, queue_url=queue_url).but(
        job_deadline_s=float(config.jobs.deadline_s),
        max_receive_count=config.jobs.max_receive_count,
        worker_rate_per_s=round(sizing.jobs_per_minute / 60 / sizing.max_concurrency, 4),
    )


def _common(config: AppConfig, *, tables: TableNames, targets: tuple[TargetSetting, ...], queue_url: str) -> Settings:
    return Settings(
        table_name=tables.conversations,
        cache_table_name=tables.response_cache,
        jobs_table_name=tables.jobs,
        idempotency_table_name=tables.idempotency,
        usage_table_name=tables.usage,
        user_requests_per_minute=config.limits.user_requests_per_minute,
        max_open_jobs_per_user=config.jobs.max_open_per_user,
        jobs_queue_url=queue_url,
        targets=targets,
        max_message_chars=config.limits.max_message_chars,
        max_history_turns=config.limits.max_history_turns,
        max_body_bytes=config.limits.max_body_bytes,
        job_max_age_s=float(config.jobs.max_age_s),
        job_backoff_s=config.jobs.backoff_s,
        breaker_open_s=config.gateway.breaker_open_s,
    )
