"""From AppConfig to the Lambdas' Settings: the one place the stack side fills the environment contract.

Pure (no CDK imports): the stacks pass CDK tokens for names and URLs, the sandbox passes local ones.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from core.greetings import validate_phrases, validate_replies
from handlers.settings import (
    DriftJobSettings,
    IngestSettings,
    RecoverySettings,
    Settings,
    SignUpSettings,
    TargetSetting,
)
from stacks.config import AppConfig, ModelTarget

# The sync path must answer before API Gateway's 29 s integration timeout.
CHAT_TIMEOUT_SECONDS = 28
CHAT_DEADLINE_SECONDS = 25
# Titan Text Embeddings v2 answers one chunk in about this long: the ingest pipeline's parallelism follows.
EXPECTED_EMBED_SECONDS = 0.5
# Of the ingest Lambda's timeout, the share a document may take before it is failed with its reason.
INGEST_DEADLINE_SHARE = 0.8
# The jobs recovery sweep runs every minute: each pass ends well inside its timeout, before the next one.
RECOVERY_TIMEOUT_SECONDS = 60
RECOVERY_BUDGET_SECONDS = 45

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
    documents: str
    prompts: str | None = None  # the prompt catalog; None: the Lambdas use the built-in prompt
    curated: str | None = None  # curated answers; None: none served


@dataclass(frozen=True, kw_only=True)
class KnowledgeNames:
    """One region's knowledge resources, by name (the KnowledgeStack's, or the sandbox's)."""

    documents_bucket: str
    vector_bucket: str
    vector_index: str


@dataclass(frozen=True, kw_only=True)
class IngestSizing:
    max_concurrency: int  # documents in flight: the ingest Lambda's reserved concurrency and the mapping's cap
    embeds_per_second: float  # the embedding quota, per second (requests and tokens, whichever binds)

    @property
    def rate_per_environment(self) -> float:
        """Each execution environment's share of the quota (EMBED_RATE_PER_SECOND)."""
        return round(self.embeds_per_second / self.max_concurrency, 4)


def ingest_sizing(config: AppConfig) -> IngestSizing:
    """The embedding model is the bottleneck: in-flight documents = embeds/s x seconds per embed (Little's law),
    at least 2 (the SQS event source's minimum), each environment paced to its share so together they stay
    within the quota whatever the latency really is."""
    rate = config.knowledge.embeds_per_second
    in_flight = math.ceil(rate * EXPECTED_EMBED_SECONDS)
    return IngestSizing(max_concurrency=max(2, min(1000, in_flight)), embeds_per_second=rate)


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
                previous_versions=target.previous_versions,
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
    knowledge: KnowledgeNames | None = None,
) -> Settings:
    """The API Lambda: the sync path's deadline, degraded answers and shedding as configured; CORS headers
    for the web UI's origin only (`allowed_origin`, e.g. https://<distribution>.cloudfront.net). Without
    `knowledge` no document names are set: uploads and retrieval are off in that function."""
    return _common(config, tables=tables, targets=targets, queue_url=queue_url, knowledge=knowledge).but(
        deadline_s=float(CHAT_DEADLINE_SECONDS),
        degraded_status=config.gateway.degraded_status,
        shed_to_jobs=config.jobs.shed_to_jobs,
        allowed_origin=allowed_origin,
        drift_signals=config.drift.enabled,  # per-request numbers for the drift job (core/drift.py)
    )


def sign_up_settings(config: AppConfig) -> SignUpSettings:
    """The pre-sign-up trigger: the email domains allowed to sign themselves up."""
    return SignUpSettings(allowed_email_domains=config.auth.sign_up_email_domains)


def worker_settings(
    config: AppConfig,
    *,
    tables: TableNames,
    targets: tuple[TargetSetting, ...],
    queue_url: str,
    knowledge: KnowledgeNames | None = None,
) -> Settings:
    """The jobs worker: a longer deadline per answer, pacing to its share of the model quota."""
    sizing = config.worker_sizing()
    return _common(config, tables=tables, targets=targets, queue_url=queue_url, knowledge=knowledge).but(
        job_deadline_s=float(config.jobs.deadline_s),
        max_receive_count=config.jobs.max_receive_count,
        worker_rate_per_s=round(sizing.jobs_per_minute / 60 / sizing.max_concurrency, 4),
    )


def workflow_settings(
    config: AppConfig,
    *,
    tables: TableNames,
    targets: tuple[TargetSetting, ...],
    queue_url: str,
    knowledge: KnowledgeNames | None = None,
) -> Settings:
    """The summarize workflow (a durable function, ADR 0005): the worker's model settings (the same async gateway),
    and the workflow's own (waits, chapter size). SUMMARIZE_FUNCTION_ARN stays unset: it starts nothing."""
    workflows = config.workflows
    return worker_settings(config, tables=tables, targets=targets, queue_url=queue_url, knowledge=knowledge).but(
        workflow_max_wait_s=workflows.max_wait_s,
        workflow_chapter_chars=workflows.chapter_chars,
        workflow_max_chapters=workflows.max_chapters,
    )


def drift_settings(
    config: AppConfig, *, prompts_table: str, knowledge: KnowledgeNames | None = None
) -> DriftJobSettings:
    """The drift job: the window, bounds and baseline version as configured; the vector index when there is one
    (the corpus centroid is computed from it)."""
    drift = config.drift
    return DriftJobSettings(
        prompts_table_name=prompts_table,
        window_hours=drift.window_hours,
        min_samples=drift.min_samples,
        bounds_json=json.dumps(drift.all_bounds(), sort_keys=True),
        baseline_version=drift.baseline_version,
        vector_bucket_name=knowledge.vector_bucket if knowledge else None,
        vector_index_name=knowledge.vector_index if knowledge else None,
        centroid_vectors=drift.centroid_vectors,
    )


def recovery_settings(config: AppConfig, *, tables: TableNames, queue_url: str, region: str) -> RecoverySettings:
    """The jobs recovery sweep in `region`: it may adopt the other region's stranded jobs into its own queue."""
    return RecoverySettings(
        jobs_table_name=tables.jobs,
        jobs_queue_url=queue_url,
        peer_regions=tuple(peer for peer in config.regions if peer != region),
        stranded_after_s=float(config.jobs.stranded_after_s),
        job_max_age_s=float(config.jobs.max_age_s),
        max_open_jobs_per_user=config.jobs.max_open_per_user,
        sweep_budget_s=float(RECOVERY_BUDGET_SECONDS),
    )


def ingest_settings(config: AppConfig, *, tables: TableNames, knowledge: KnowledgeNames) -> IngestSettings:
    """The ingest Lambda: parsing limits and chunking as configured, its share of the embedding quota, a
    per-document deadline under its timeout, and the receive count on which a document fails for good."""
    settings = config.knowledge
    return IngestSettings(
        **_knowledge(config, tables, knowledge),
        chunk_chars=settings.chunk_chars,
        chunk_overlap=settings.chunk_overlap,
        max_document_pages=settings.max_pages,
        max_document_characters=settings.max_characters,
        embed_rate_per_s=ingest_sizing(config).rate_per_environment,
        ingest_deadline_s=float(math.floor(settings.ingest_timeout_s * INGEST_DEADLINE_SHARE)),
        breaker_open_s=config.gateway.breaker_open_s,
        max_receive_count=settings.max_receive_count,
    )


def _knowledge(config: AppConfig, tables: TableNames, knowledge: KnowledgeNames | None) -> dict[str, Any]:
    """The KnowledgeSettings part: names when this function has knowledge, the embedding and retrieval knobs."""
    settings = config.knowledge
    names: dict[str, Any] = {}
    if knowledge is not None:
        names = {
            "documents_table_name": tables.documents,
            "documents_bucket": knowledge.documents_bucket,
            "vector_bucket_name": knowledge.vector_bucket,
            "vector_index_name": knowledge.vector_index,
        }
    return {
        **names,
        "embedding_model_id": settings.embedding_model_id,
        "embedding_dimensions": settings.dimensions,
        "max_document_bytes": settings.max_upload_bytes,
        "retrieval_top_k": settings.top_k,
        "retrieval_context_chars": settings.context_chars,
    }


def _common(
    config: AppConfig,
    *,
    tables: TableNames,
    targets: tuple[TargetSetting, ...],
    queue_url: str,
    knowledge: KnowledgeNames | None,
) -> Settings:
    return Settings(
        **_knowledge(config, tables, knowledge),
        table_name=tables.conversations,
        cache_table_name=tables.response_cache,
        jobs_table_name=tables.jobs,
        idempotency_table_name=tables.idempotency,
        usage_table_name=tables.usage,
        prompts_table_name=tables.prompts,
        prompt_environment=config.env_name,
        curated_table_name=tables.curated,
        curated_threshold=config.curated.threshold,
        curated_cache_s=float(config.curated.cache_s),
        greetings_enabled=config.greetings.enabled,
        greetings_phrases=validate_phrases(config.greetings.phrases) or None,
        greetings_replies=validate_replies(config.greetings.replies) or None,
        user_requests_per_minute=config.limits.user_requests_per_minute,
        daily_tokens_per_user=config.limits.daily_tokens_per_user,
        max_open_jobs_per_user=config.jobs.max_open_per_user,
        jobs_queue_url=queue_url,
        targets=targets,
        max_message_chars=config.limits.max_message_chars,
        max_history_turns=config.limits.max_history_turns,
        max_body_bytes=config.limits.max_body_bytes,
        job_max_age_s=float(config.jobs.max_age_s),
        job_backoff_s=config.jobs.backoff_s,
        job_stranded_after_s=float(config.jobs.stranded_after_s),
        breaker_open_s=config.gateway.breaker_open_s,
        concurrency_ceiling=config.gateway.concurrency_ceiling,
        concurrency_increase=config.gateway.concurrency_increase,
        concurrency_decrease=config.gateway.concurrency_decrease,
    )
