"""Typed deployment configuration, parsed once from cdk.json context.

Every stack and construct receives these frozen objects; none of them reads context itself.
A bad value fails synth with a sentence naming the key and the allowed values.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from stacks.config.dr import BackupConfig, BackupLockConfig, FailoverDomainConfig, dr_vault_name
from stacks.config.models import INFERENCE_PROFILE_DESTINATIONS, REGION_PATTERN, ModelTarget
from stacks.config.parsing import ConfigError, _check_range, _parse_object
from stacks.config.sections import (
    ApiThrottling,
    AuthConfig,
    ColdStartConfig,
    CostConfig,
    CuratedConfig,
    DriftConfig,
    GatewayConfig,
    GreetingsConfig,
    GuardrailConfig,
    JobsConfig,
    KeysConfig,
    KnowledgeConfig,
    MonitoringConfig,
    RequestLimits,
    StreamingConfig,
    WorkerSizing,
    WorkflowsConfig,
    _guardrail_switch,
)

__all__ = [
    "CONTEXT_KEY", "INFERENCE_PROFILE_DESTINATIONS", "ApiThrottling", "AppConfig", "AuthConfig", "BackupConfig",
    "BackupLockConfig", "ColdStartConfig", "ConfigError", "CostConfig", "CuratedConfig", "DriftConfig",
    "FailoverDomainConfig",
    "GatewayConfig", "GreetingsConfig", "GuardrailConfig", "JobsConfig", "KeysConfig", "KnowledgeConfig", "ModelTarget",
    "MonitoringConfig", "RequestLimits", "StreamingConfig", "WorkerSizing", "WorkflowsConfig",
    "dr_vault_name",
]  # fmt: skip

CONTEXT_KEY = "bulwark"
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9]{0,19}$")


@dataclass(frozen=True, kw_only=True)
class AppConfig:
    app_name: str = "Bulwark"
    env_name: str = "dev"
    primary_region: str = "us-east-1"
    dr_region: str = "us-west-2"
    account: str | None = field(default=None, metadata={"coerce": str})  # a number in JSON is accepted
    models: tuple[ModelTarget, ...] = field(
        default_factory=tuple, metadata={"items": "{model_id, region, max_tokens} objects"}
    )
    limits: RequestLimits = field(default_factory=RequestLimits)
    throttling: ApiThrottling = field(default_factory=ApiThrottling)
    chat_reserved_concurrency: int = 20
    # The DR region's chat concurrency (and so its stage throttle). None, the default: the primary's figure,
    # so after a failover the DR region takes the primary's whole load without a deploy (reserved concurrency
    # costs nothing while idle). A smaller figure is a choice with a consequence: after a failover the DR
    # region answers at most that many requests at once and sheds the rest (429 + Retry-After) until it is
    # raised, which is a deploy of the DR stacks only (static stability: no primary region needed).
    dr_chat_reserved_concurrency: int | None = None
    replicate_user_pool: bool = True
    # CloudFront's web ACL (rate limit + IP reputation in front of the static site: $7 a month, a quarter of the idle
    # cost). Off by default: the distribution serves static files from S3 only (no code behind it reads a request),
    # with Shield Standard; the API's (both regions) and Cognito's regional ACLs stay (README, "Operations and cost").
    cloudfront_waf: bool = False
    log_retention_days: int = 365
    # Per region: a Bedrock guardrail on every model call (input and output filters, PII); `true`/`false` parse too.
    guardrail: GuardrailConfig = field(default_factory=GuardrailConfig, metadata={"coerce": _guardrail_switch})
    keys: KeysConfig = field(default_factory=KeysConfig)
    jobs: JobsConfig = field(default_factory=JobsConfig)
    gateway: GatewayConfig = field(default_factory=GatewayConfig)
    auth: AuthConfig = field(default_factory=AuthConfig)
    knowledge: KnowledgeConfig = field(default_factory=KnowledgeConfig)
    curated: CuratedConfig = field(default_factory=CuratedConfig)
    greetings: GreetingsConfig = field(default_factory=GreetingsConfig)
    backup: BackupConfig = field(default_factory=BackupConfig)
    monitoring: MonitoringConfig = field(default_factory=MonitoringConfig)
    cost: CostConfig = field(default_factory=CostConfig)
    drift: DriftConfig = field(default_factory=DriftConfig)
    # Streamed answers: a WebSocket API per region (ADR 0004).
    streaming: StreamingConfig = field(default_factory=StreamingConfig)
    # Per function: provisioned concurrency (with a schedule) or SnapStart, on a "live" alias; all off by default.
    cold_start: ColdStartConfig = field(default_factory=ColdStartConfig)
    # Long workflows (the `summarize` job kind) on Lambda durable functions (ADR 0005).
    workflows: WorkflowsConfig = field(default_factory=WorkflowsConfig)
    # Route 53 failover records in front of both APIs; absent: clients use both regional URLs.
    failover_domain: FailoverDomainConfig | None = None

    def __post_init__(self) -> None:
        if not _NAME.match(self.app_name):
            raise ConfigError(f"app_name must be 1-20 letters or digits starting with a letter, got {self.app_name!r}")
        if not _NAME.match(self.env_name):
            raise ConfigError(f"env_name must be 1-20 letters or digits starting with a letter, got {self.env_name!r}")
        for key in ("primary_region", "dr_region"):
            if not REGION_PATTERN.match(getattr(self, key)):
                raise ConfigError(f"{key} must be an AWS region such as us-east-1, got {getattr(self, key)!r}")
        if self.primary_region == self.dr_region:
            raise ConfigError(f"dr_region must differ from primary_region ({self.primary_region})")
        if self.account is not None and not re.fullmatch(r"\d{12}", self.account):
            raise ConfigError(f"account must be a 12-digit AWS account id, got {self.account!r}")
        if not self.models:
            raise ConfigError("models must list at least one target (model_id, region, max_tokens)")
        seen = set()
        for target in self.models:
            if (target.model_id, target.region) in seen:
                raise ConfigError(
                    f"models lists {target.model_id} in {target.region} twice; each target must be unique"
                )
            seen.add((target.model_id, target.region))
        _check_range("chat_reserved_concurrency", self.chat_reserved_concurrency, 1, 1000)
        self.workflows.check_against(self.jobs)
        if self.dr_chat_reserved_concurrency is not None:
            _check_range("dr_chat_reserved_concurrency", self.dr_chat_reserved_concurrency, 1, 1000)
        if self.failover_domain is not None:
            unknown = sorted(set(self.failover_domain.certificate_arns) - set(self.regions))
            if unknown:
                raise ConfigError(
                    f"failover_domain.certificate_arns names {', '.join(unknown)}, not one of this app's regions "
                    f"({', '.join(self.regions)})"
                )
        if self.log_retention_days not in _LOG_RETENTION_DAYS:
            raise ConfigError(
                f"log_retention_days must be one of {sorted(_LOG_RETENTION_DAYS)}, got {self.log_retention_days}"
            )

    @property
    def prefix(self) -> str:
        return f"{self.app_name}-{self.env_name}"

    @property
    def regions(self) -> tuple[str, str]:
        return (self.primary_region, self.dr_region)

    def reserved_concurrency(self, region: str) -> int:
        if region == self.primary_region or self.dr_chat_reserved_concurrency is None:
            return self.chat_reserved_concurrency
        return self.dr_chat_reserved_concurrency

    def chain_for(self, region: str) -> tuple[ModelTarget, ...]:
        """The failover chain as seen from `region`: targets in the local region first, order kept."""
        return tuple(sorted(self.models, key=lambda target: target.region != region))

    def worker_sizing(self) -> WorkerSizing:
        """Worker concurrency from the first target's quota, so the worker cannot drive the model far
        past it: jobs/min = min(rpm, tpm / tokens per job); in-flight jobs = jobs/s x time per job.
        One job per batch: each is one model call, so a bigger batch only serialises calls and
        widens the redelivery of a partial failure."""
        primary = self.models[0]
        jobs_per_minute = min(primary.quota_rpm, primary.quota_tpm / self.jobs.expected_tokens_per_job)
        concurrency = math.floor(jobs_per_minute / 60 * self.jobs.expected_job_s)
        return WorkerSizing(
            max_concurrency=max(2, min(1000, concurrency)),  # 2: the SQS event source's minimum
            batch_size=1,
            jobs_per_minute=jobs_per_minute,
        )

    @classmethod
    def from_context(cls, raw: Mapping[str, Any] | None) -> AppConfig:
        """Build and validate the config from the `bulwark` context object.

        The allowed keys, their types and defaults come from the dataclass fields themselves, so a
        new setting is declared once (with its default) and is parsed and checked from there.
        """
        if raw is None:
            raise ConfigError(f"context key {CONTEXT_KEY!r} is missing from cdk.json")
        if not isinstance(raw, Mapping):
            raise ConfigError(f"context key {CONTEXT_KEY!r} must be an object, got {type(raw).__name__}")
        return _parse_object(cls, raw, name=CONTEXT_KEY, prefix="")


# The retention periods CloudWatch Logs accepts.
_LOG_RETENTION_DAYS = {1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
                       3288, 3653}  # fmt: skip
