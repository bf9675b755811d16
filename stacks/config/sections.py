"""The config's sections (limits, throttling, jobs, gateway, guardrail, keys, auth): fields with defaults and checks."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from stacks.config.parsing import ConfigError, _check_range


@dataclass(frozen=True, kw_only=True)
class RequestLimits:
    max_message_chars: int = 8000
    max_history_turns: int = 20
    max_body_bytes: int = 65536
    user_requests_per_minute: int = 60  # per signed-in user, POST /chat and /jobs together (0: no limit)
    # Input + output model tokens per signed-in user per UTC day, all regions together (0: no budget). 200,000
    # is about 40 long conversational turns (history and retrieved passages make inputs of a few thousand
    # tokens) and caps one user's day at about $0.05 on Nova Lite ($0.06 / $0.24 per million in / out).
    daily_tokens_per_user: int = 200_000

    def __post_init__(self) -> None:
        _check_range("limits.max_message_chars", self.max_message_chars, 1, 100_000)
        _check_range("limits.max_history_turns", self.max_history_turns, 0, 200)
        _check_range("limits.max_body_bytes", self.max_body_bytes, 1024, 6 * 1024 * 1024)
        _check_range("limits.user_requests_per_minute", self.user_requests_per_minute, 0, 100_000)
        _check_range("limits.daily_tokens_per_user", self.daily_tokens_per_user, 0, 1_000_000_000)
        if self.max_body_bytes < self.max_message_chars:
            raise ConfigError(
                "limits.max_body_bytes must be at least limits.max_message_chars "
                f"({self.max_message_chars}), got {self.max_body_bytes}"
            )


GUARDRAIL_STRENGTHS = ("NONE", "LOW", "MEDIUM", "HIGH")
# The sensitive-information (PII) entity types Bedrock guardrails detect.
PII_ENTITY_TYPES = (
    "ADDRESS", "AGE", "AWS_ACCESS_KEY", "AWS_SECRET_KEY", "CA_HEALTH_NUMBER", "CA_SOCIAL_INSURANCE_NUMBER",
    "CREDIT_DEBIT_CARD_CVV", "CREDIT_DEBIT_CARD_EXPIRY", "CREDIT_DEBIT_CARD_NUMBER", "DRIVER_ID", "EMAIL",
    "INTERNATIONAL_BANK_ACCOUNT_NUMBER", "IP_ADDRESS", "LICENSE_PLATE", "MAC_ADDRESS", "NAME", "PASSWORD", "PHONE",
    "PIN", "SWIFT_CODE", "UK_NATIONAL_HEALTH_SERVICE_NUMBER", "UK_NATIONAL_INSURANCE_NUMBER",
    "UK_UNIQUE_TAXPAYER_REFERENCE_NUMBER", "URL", "USERNAME", "US_BANK_ACCOUNT_NUMBER", "US_BANK_ROUTING_NUMBER",
    "US_INDIVIDUAL_TAX_IDENTIFICATION_NUMBER", "US_PASSPORT_NUMBER", "US_SOCIAL_SECURITY_NUMBER",
    "VEHICLE_IDENTIFICATION_NUMBER",
)  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class GuardrailConfig:
    """The Bedrock guardrail each region creates and applies to every model call, on the question and the answer.

    `guardrail: true/false` (the original switch) still parses: it sets `enabled` and keeps these defaults.
    """

    enabled: bool = True
    # Prompt attacks (jailbreaks, injected instructions): Bedrock assesses them on input only.
    prompt_attack: str = "HIGH"
    # Hate, insults, sexual content, violence and misconduct: one strength for questions, one for answers.
    content_input: str = "MEDIUM"
    content_output: str = "MEDIUM"
    # PII found in an answer is masked ({EMAIL}, {PHONE}, ...) and the answer is flagged guardrail_intervened.
    pii_anonymize: tuple[str, ...] = (
        "EMAIL", "PHONE", "ADDRESS", "US_SOCIAL_SECURITY_NUMBER", "US_PASSPORT_NUMBER", "DRIVER_ID",
        "US_BANK_ACCOUNT_NUMBER", "INTERNATIONAL_BANK_ACCOUNT_NUMBER", "UK_NATIONAL_INSURANCE_NUMBER",
    )  # fmt: skip
    # Credentials and card data block the question (before any model sees it) and the answer.
    pii_block: tuple[str, ...] = (
        "AWS_ACCESS_KEY", "AWS_SECRET_KEY", "PASSWORD", "CREDIT_DEBIT_CARD_NUMBER", "CREDIT_DEBIT_CARD_CVV", "PIN",
    )  # fmt: skip

    def __post_init__(self) -> None:
        for key in ("prompt_attack", "content_input", "content_output"):
            if getattr(self, key) not in GUARDRAIL_STRENGTHS:
                raise ConfigError(
                    f"guardrail.{key} must be one of {', '.join(GUARDRAIL_STRENGTHS)}, got {getattr(self, key)!r}"
                )
        for key in ("pii_anonymize", "pii_block"):
            unknown = sorted(set(getattr(self, key)) - set(PII_ENTITY_TYPES))
            if unknown:
                raise ConfigError(
                    f"guardrail.{key} lists unknown PII entity types {', '.join(unknown)}; "
                    f"known: {', '.join(PII_ENTITY_TYPES)}"
                )
        both = sorted(set(self.pii_anonymize) & set(self.pii_block))
        if both:
            raise ConfigError(f"guardrail: {', '.join(both)} is in both pii_anonymize and pii_block; choose one")
        if self.enabled and not self.filters_anything:
            raise ConfigError(
                "guardrail.enabled is true but every filter is off: set a strength other than NONE or list PII "
                "types, or set guardrail to false"
            )

    @property
    def filters_anything(self) -> bool:
        strengths = (self.prompt_attack, self.content_input, self.content_output)
        return any(strength != "NONE" for strength in strengths) or bool(self.pii_anonymize or self.pii_block)


def _guardrail_switch(value: Any) -> Any:
    """Keep `guardrail: true/false` working: the boolean becomes `{"enabled": ...}` with the default filters."""
    if isinstance(value, bool):
        return {"enabled": value}
    if not isinstance(value, Mapping):
        raise ConfigError(
            "guardrail must be true or false, or an object with enabled, prompt_attack, content_input, "
            f"content_output, pii_anonymize, pii_block; got {type(value).__name__} {value!r}"
        )
    return value


_ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}$")


@dataclass(frozen=True, kw_only=True)
class KeysConfig:
    """Who administers the KMS keys. Administrators manage (policy, rotation, deletion) but cannot encrypt or
    decrypt; the app's roles use the keys only through DynamoDB, SQS, SNS and AWS Backup."""

    # IAM roles allowed to administer the keys, besides the CDK deployment role (CloudFormation must be able
    # to update the keys it created). Empty: only the deployment role, and the root user as break-glass.
    admin_role_arns: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for arn in self.admin_role_arns:
            if not _ROLE_ARN.match(arn):
                raise ConfigError(
                    f"keys.admin_role_arns entries must be IAM role ARNs (arn:aws:iam::<account>:role/<name>), "
                    f"got {arn!r}"
                )


@dataclass(frozen=True, kw_only=True)
class ApiThrottling:
    rate_limit: float = 50.0  # steady requests per second for the stage
    burst_limit: int = 100
    waf_rate_limit_per_5min: int = 1000  # per client IP

    def __post_init__(self) -> None:
        _check_range("throttling.rate_limit", self.rate_limit, 1, 10_000)
        _check_range("throttling.burst_limit", self.burst_limit, 1, 5_000)
        _check_range("throttling.waf_rate_limit_per_5min", self.waf_rate_limit_per_5min, 10, 2_000_000_000)
        if self.burst_limit < self.rate_limit:
            raise ConfigError(
                f"throttling.burst_limit ({self.burst_limit}) must be at least throttling.rate_limit "
                f"({self.rate_limit})"
            )


@dataclass(frozen=True, kw_only=True)
class JobsConfig:
    max_age_s: int = 3600  # older jobs fail with a reason instead of being answered late
    worker_timeout_s: int = 120
    deadline_s: int = 90  # per model answer in the worker
    expected_job_s: float = 10.0  # typical time to answer one job, for sizing concurrency
    expected_tokens_per_job: int = 3000  # typical input + output tokens of one job, for sizing
    max_receive_count: int = 4  # receives before a message goes to the DLQ (contract: 3-5)
    retention_days: int = 4
    max_open_per_user: int = 20  # queued or running jobs one user may have at once (0: no limit)
    backoff_s: int = 5  # first requeue delay of a job the model could not answer now; doubles up to 300 s
    shed_to_jobs: bool = False  # /chat under load: accept as a job (202) instead of 503
    # Disaster recovery: an open job whose region has not touched it for this long (no enqueue, start or
    # delayed re-send) is adopted by the other region's recovery sweep (every minute) and answered there.
    # Above the worker's timeout (a job being answered is never adopted) and above a healthy region's usual
    # queue wait plus the longest backoff delay (300 s), or healthy regions hand jobs to each other (harmless,
    # exactly once all the same, but pointless).
    stranded_after_s: int = 600

    def __post_init__(self) -> None:
        _check_range("jobs.max_age_s", self.max_age_s, 60, 14 * 86_400)
        _check_range("jobs.worker_timeout_s", self.worker_timeout_s, 30, 900)
        _check_range("jobs.deadline_s", self.deadline_s, 5, 840)
        _check_range("jobs.expected_job_s", self.expected_job_s, 0.5, 600)
        _check_range("jobs.expected_tokens_per_job", self.expected_tokens_per_job, 10, 1_000_000)
        _check_range("jobs.max_receive_count", self.max_receive_count, 3, 5)
        _check_range("jobs.retention_days", self.retention_days, 1, 14)
        _check_range("jobs.backoff_s", self.backoff_s, 1, 300)
        _check_range("jobs.max_open_per_user", self.max_open_per_user, 0, 10_000)
        if self.deadline_s > self.worker_timeout_s - 10:
            raise ConfigError(
                f"jobs.deadline_s ({self.deadline_s}) must leave at least 10 s of jobs.worker_timeout_s "
                f"({self.worker_timeout_s}) for writing the result"
            )
        if self.max_age_s > self.retention_days * 86_400:
            raise ConfigError("jobs.max_age_s must not exceed the queue's retention (jobs.retention_days)")
        _check_range("jobs.stranded_after_s", self.stranded_after_s, 60, 86_400)
        if self.stranded_after_s < self.worker_timeout_s + 60:
            raise ConfigError(
                f"jobs.stranded_after_s ({self.stranded_after_s}) must be at least jobs.worker_timeout_s "
                f"({self.worker_timeout_s}) + 60 s, so that a job a worker may still be answering is never adopted"
            )
        if self.stranded_after_s >= self.max_age_s:
            raise ConfigError(
                f"jobs.stranded_after_s ({self.stranded_after_s}) must be below jobs.max_age_s ({self.max_age_s}): "
                "a stranded job must be adopted before it is too old to answer"
            )

    @property
    def visibility_timeout_s(self) -> int:
        """Contract: at least 6x the consumer's timeout."""
        return 6 * self.worker_timeout_s


@dataclass(frozen=True, kw_only=True)
class GatewayConfig:
    """How the model gateway behaves when targets fail (the resilience contract's tunables)."""

    breaker_open_s: float = 30.0  # how long an open breaker skips its target before a probe
    degraded_status: int = 200  # no model answered: 200 with degraded=true, or 503 + Retry-After
    # Throttles are back-pressure, not failures: each target's limit on calls in flight (per execution
    # environment) adapts between 1 and the ceiling; requests over it are shed at once (429 + Retry-After).
    concurrency_ceiling: int = 16
    concurrency_increase: float = 1.0  # additive increase: about this much per round of successful calls
    concurrency_decrease: float = 0.5  # multiplicative decrease: the limit is multiplied by this on a throttle

    def __post_init__(self) -> None:
        _check_range("gateway.breaker_open_s", self.breaker_open_s, 1, 600)
        if self.degraded_status not in (200, 503):
            raise ConfigError(f"gateway.degraded_status must be 200 or 503, got {self.degraded_status}")
        _check_range("gateway.concurrency_ceiling", self.concurrency_ceiling, 1, 1000)
        _check_range("gateway.concurrency_increase", self.concurrency_increase, 0.01, self.concurrency_ceiling)
        _check_range("gateway.concurrency_decrease", self.concurrency_decrease, 0.05, 0.95)


MFA_CHOICES = ("required", "optional", "off")
_EMAIL_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
_OAUTH_URL = re.compile(r"^(https://[^\s/?#]+|http://localhost(:\d+)?)(/[^\s#]*)?$")


@dataclass(frozen=True, kw_only=True)
class AuthConfig:
    """Sign-in for a public app: who may create an account, the second factor, and the OAuth client."""

    # Anyone may create an account (and spend model quota): off by default; admins invite users instead.
    self_sign_up: bool = False
    # With self_sign_up: only these email domains may sign up (a pre-sign-up Lambda trigger); empty = any.
    sign_up_email_domains: tuple[str, ...] = ()
    # TOTP second factor: "required" (every user enrols at first sign-in), "optional" or "off".
    mfa: str = "required"
    # OAuth (authorization code flow) on the web app client only when callback URLs are given; the web UI
    # itself signs in with SRP and needs none. A Cognito domain (hosted UI) is not created by this app.
    oauth_callback_urls: tuple[str, ...] = ()
    oauth_logout_urls: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.mfa not in MFA_CHOICES:
            raise ConfigError(f"auth.mfa must be one of {', '.join(MFA_CHOICES)}, got {self.mfa!r}")
        if self.sign_up_email_domains and not self.self_sign_up:
            raise ConfigError("auth.sign_up_email_domains needs auth.self_sign_up: true (it limits self sign-up)")
        for domain in self.sign_up_email_domains:
            if not _EMAIL_DOMAIN.match(domain):
                raise ConfigError(
                    f"auth.sign_up_email_domains entries must be lower-case domain names such as example.com, "
                    f"got {domain!r}"
                )
        for key in ("oauth_callback_urls", "oauth_logout_urls"):
            for url in getattr(self, key):
                if not _OAUTH_URL.match(url):
                    raise ConfigError(
                        f"auth.{key} entries must be https:// URLs (http://localhost for development), got {url!r}"
                    )
        if self.oauth_logout_urls and not self.oauth_callback_urls:
            raise ConfigError("auth.oauth_logout_urls needs auth.oauth_callback_urls (OAuth is off without them)")

    @property
    def oauth(self) -> bool:
        return bool(self.oauth_callback_urls)


@dataclass(frozen=True, kw_only=True)
class WorkerSizing:
    max_concurrency: int
    batch_size: int
    jobs_per_minute: float


@dataclass(frozen=True, kw_only=True)
class KnowledgeConfig:
    """Documents in, grounded answers out: the embedding model and its quota, chunking, limits, retrieval."""

    enabled: bool = True
    embedding_model_id: str = "amazon.titan-embed-text-v2:0"
    dimensions: int = 1024  # Titan Text Embeddings v2: 256, 512 or 1024
    chunk_chars: int = 1200
    chunk_overlap: int = 150
    max_upload_bytes: int = 10 * 1024 * 1024
    max_pages: int = 300
    max_characters: int = 1_000_000
    # The embedding model's quota (Service Quotas): the ingest pipeline's parallelism and pacing come from it.
    embed_quota_rpm: int = 600
    embed_quota_tpm: int = 300_000
    expected_tokens_per_chunk: int = 350
    top_k: int = 5
    context_chars: int = 6000
    noncurrent_version_days: int = 30  # old versions of an overwritten or deleted document are kept this long
    ingest_timeout_s: int = 300
    max_receive_count: int = 4

    def __post_init__(self) -> None:
        if self.dimensions not in (256, 512, 1024):
            raise ConfigError(f"knowledge.dimensions must be 256, 512 or 1024 (Titan v2), got {self.dimensions}")
        _check_range("knowledge.chunk_chars", self.chunk_chars, 200, 8000)
        _check_range("knowledge.chunk_overlap", self.chunk_overlap, 0, self.chunk_chars // 2)
        _check_range("knowledge.max_upload_bytes", self.max_upload_bytes, 1024, 100 * 1024 * 1024)
        _check_range("knowledge.max_pages", self.max_pages, 1, 5000)
        _check_range("knowledge.max_characters", self.max_characters, 1000, 20_000_000)
        _check_range("knowledge.embed_quota_rpm", self.embed_quota_rpm, 1, 1_000_000)
        _check_range("knowledge.embed_quota_tpm", self.embed_quota_tpm, 1000, 100_000_000)
        _check_range("knowledge.expected_tokens_per_chunk", self.expected_tokens_per_chunk, 10, 8192)
        _check_range("knowledge.top_k", self.top_k, 1, 100)
        _check_range("knowledge.context_chars", self.context_chars, 500, 100_000)
        _check_range("knowledge.noncurrent_version_days", self.noncurrent_version_days, 1, 3650)
        _check_range("knowledge.ingest_timeout_s", self.ingest_timeout_s, 60, 900)
        _check_range("knowledge.max_receive_count", self.max_receive_count, 3, 5)

    @property
    def embeds_per_second(self) -> float:
        """Embedding calls per second the quota allows (requests and tokens, whichever binds)."""
        return min(self.embed_quota_rpm, self.embed_quota_tpm / self.expected_tokens_per_chunk) / 60


@dataclass(frozen=True, kw_only=True)
class CuratedConfig:
    """Curated answers (lambda_src/core/curated.py): served when no model can answer, to a question whose embedding
    is at least `threshold` (cosine) close to a curated one; each execution environment re-reads them every
    `cache_s`."""

    enabled: bool = True
    threshold: float = 0.8
    cache_s: int = 300

    def __post_init__(self) -> None:
        if not 0.5 <= self.threshold <= 1.0:
            raise ConfigError(f"curated.threshold must be between 0.5 and 1 (cosine similarity), got {self.threshold}")
        _check_range("curated.cache_s", self.cache_s, 10, 86_400)


@dataclass(frozen=True, kw_only=True)
class GreetingsConfig:
    """Greetings, thanks and goodbyes answered at once without a model call (lambda_src/core/greetings.py): the
    built-in phrases in several languages plus `phrases` ({language: {part: [phrase, ...]}}, part one of greeting,
    thanks, goodbye, tail, opener), and `replies` that replace the built-in ones ({kind: {language: reply}})."""

    enabled: bool = True
    phrases: dict[str, Any] = field(default_factory=dict)
    replies: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        from core.greetings import validate_phrases, validate_replies  # the Lambda's own checks, at synth

        try:
            validate_phrases(self.phrases)
            validate_replies(self.replies)
        except ValueError as error:
            raise ConfigError(str(error).replace("greetings ", "greetings.", 1)) from error
        size = len(json.dumps([self.phrases, self.replies], ensure_ascii=False))
        if size > 2000:  # they travel in the Lambda's environment (4 KB for all its variables)
            raise ConfigError(f"greetings.phrases and greetings.replies must total at most 2000 characters, got {size}")


DASHBOARDS = ("overview", "detailed", "none")


def _dashboard_switch(value: Any) -> Any:
    """Keep `monitoring.dashboard: true/false` (the original switch) working: the overview, or none."""
    if isinstance(value, bool):
        return "overview" if value else "none"
    if not isinstance(value, str):
        raise ConfigError(
            f"monitoring.dashboard must be one of {', '.join(DASHBOARDS)} (or true / false), got "
            f"{type(value).__name__} {value!r}"
        )
    return value


@dataclass(frozen=True, kw_only=True)
class MonitoringConfig:
    """Each region's dashboard, its composite "region unhealthy" alarm, and the account's monthly budget.

    The composite alarm is in ALARM when the chat path fails (5xx rate, or degraded answers) or the jobs path
    is stuck (oldest job older than the jobs age alarm AND jobs in the DLQ): see stacks/constructs/dashboard.py."""

    # "overview": one dashboard per region of <= 50 metrics (free: CloudWatch's 3 free dashboards per account;
    # stacks/constructs/overview_dashboard.py); "detailed": every Lambda, service and target apart (about 250
    # metrics, $3 a month each); "none": no dashboard (the alarms stay). true / false (the old switch): overview / none.
    dashboard: str = field(default="overview", metadata={"coerce": _dashboard_switch})
    # Rates over `unhealthy_minutes` one-minute periods (all of them must breach), counted only from
    # `min_requests` requests a minute: a handful of requests at night never makes a region "unhealthy".
    api_5xx_percent: float = 5.0
    degraded_percent: float = 50.0
    min_requests: int = 10
    unhealthy_minutes: int = 3
    # AWS Budgets, monthly, in USD, on the whole account's cost (0: no budget). Alerts to the primary region's
    # alarm topic at 80 % of the actual and 100 % of the forecast cost.
    budget_usd: float = 100.0

    def __post_init__(self) -> None:
        _check_range("monitoring.api_5xx_percent", self.api_5xx_percent, 0.1, 100)
        _check_range("monitoring.degraded_percent", self.degraded_percent, 1, 100)
        _check_range("monitoring.min_requests", self.min_requests, 1, 100_000)
        _check_range("monitoring.unhealthy_minutes", self.unhealthy_minutes, 1, 60)
        _check_range("monitoring.budget_usd", self.budget_usd, 0, 1_000_000)
        if self.dashboard not in DASHBOARDS:
            raise ConfigError(
                f"monitoring.dashboard must be one of {', '.join(DASHBOARDS)} (or true / false), got {self.dashboard!r}"
            )


@dataclass(frozen=True, kw_only=True)
class CostConfig:
    """The assumptions `make cost` (tools/cost.py) prices with; the prices are in stacks/config/prices.json."""

    # One chat: its prompt (system prompt, history, retrieved passages, question) and its answer, in tokens.
    chat_input_tokens: int = 2500
    chat_output_tokens: int = 400
    chat_lambda_ms: int = 3000  # the chat Lambda's billed time per chat (mostly waiting for the model)
    # Ingest: the text of one page in tokens (embedded once per region), and the ingest Lambda's time per page.
    page_tokens: int = 500
    ingest_lambda_ms_per_page: int = 300
    # Idle: what stays stored when nobody uses the app (tables, backups, documents, vectors, logs), in GB.
    idle_data_gb: float = 0.1
    idle_log_gb: float = 0.5

    def __post_init__(self) -> None:
        for key in ("chat_input_tokens", "chat_output_tokens", "page_tokens"):
            _check_range(f"cost.{key}", getattr(self, key), 1, 1_000_000)
        for key in ("chat_lambda_ms", "ingest_lambda_ms_per_page"):
            _check_range(f"cost.{key}", getattr(self, key), 1, 900_000)
        for key in ("idle_data_gb", "idle_log_gb"):
            _check_range(f"cost.{key}", getattr(self, key), 0, 1_000_000)


@dataclass(frozen=True, kw_only=True)
class DriftConfig:
    """Drift baselines (lambda_src/core/drift.py): a job every `every_hours` in each region records the chat path's
    baseline (question length, output tokens, retrieval top score, question-vs-corpus similarity, guardrail and
    degraded rates) on its first run, then emits each signal's drift over the last `window_hours` and how many passed
    their bound (`bounds`: {signal: bound}, the rest keep the defaults in core/drift.py); one alarm per region fires
    when any signal passes its bound. Change
    `baseline_version` (any new string) to record a new baseline on the next run."""

    enabled: bool = True
    every_hours: int = 24
    window_hours: int = 24
    min_samples: int = 50
    bounds: dict[str, Any] = field(default_factory=dict)
    baseline_version: str = "1"
    centroid_vectors: int = 2000  # vectors of the index the corpus centroid is computed from, per run

    def __post_init__(self) -> None:
        from core.drift import DEFAULT_BOUNDS, DriftSettings  # the job's own checks, at synth

        _check_range("drift.every_hours", self.every_hours, 1, 168)
        _check_range("drift.window_hours", self.window_hours, 1, 336)
        _check_range("drift.min_samples", self.min_samples, 1, 1_000_000)
        _check_range("drift.centroid_vectors", self.centroid_vectors, 1, 100_000)
        if not re.fullmatch(r"[A-Za-z0-9._-]{1,64}", self.baseline_version):
            raise ConfigError(
                f"drift.baseline_version must be 1-64 letters, digits, '.', '_' or '-', got {self.baseline_version!r}"
            )
        if not all(isinstance(bound, (int, float)) and not isinstance(bound, bool) for bound in self.bounds.values()):
            raise ConfigError(f"drift.bounds must map signal names to numbers, got {self.bounds!r}")
        try:
            DriftSettings(bounds={**DEFAULT_BOUNDS, **self.bounds}, min_samples=self.min_samples)
        except ValueError as error:
            raise ConfigError(f"drift.bounds: {error}") from error

    def all_bounds(self) -> dict[str, float]:
        from core.drift import DEFAULT_BOUNDS

        return {**DEFAULT_BOUNDS, **{name: float(bound) for name, bound in self.bounds.items()}}


_CRON_FIELDS = 6  # minutes hours day-of-month month day-of-week year (Application Auto Scaling's cron)
_WEEKDAYS = re.compile(
    r"^(MON|TUE|WED|THU|FRI|SAT|SUN)(-(MON|TUE|WED|THU|FRI|SAT|SUN))?(,(MON|TUE|WED|THU|FRI|SAT|SUN))*$"
)


@dataclass(frozen=True, kw_only=True)
class ScheduledCapacity:
    """One scheduled action on the alias's provisioned concurrency: from `cron` (UTC) on, between `min` and `max`."""

    cron: str  # "cron(0 8 ? * MON-FRI *)" or its six fields alone
    min: int
    max: int

    def __post_init__(self) -> None:
        body = self.cron.strip()
        if body.startswith("cron(") and body.endswith(")"):
            body = body[5:-1]
        if len(body.split()) != _CRON_FIELDS:
            raise ConfigError(
                f"schedule cron must have six fields (minutes hours day-of-month month day-of-week year), e.g. "
                f"'cron(0 8 ? * MON-FRI *)', got {self.cron!r}"
            )
        _check_range("schedule min", self.min, 0, 1000)
        _check_range("schedule max", self.max, self.min, 1000)

    @property
    def expression(self) -> str:
        body = self.cron.strip()
        return body if body.startswith("cron(") else f"cron({body})"


@dataclass(frozen=True, kw_only=True)
class BusinessHours:
    """The simple schedule: `provisioned_concurrency` from `start_hour` to `end_hour` (UTC) on `days`, and
    `off_hours` (0: none, so nothing is billed) the rest of the time."""

    days: str = "MON-FRI"
    start_hour: int = 8
    end_hour: int = 18
    off_hours: int = 0

    def __post_init__(self) -> None:
        if not _WEEKDAYS.match(self.days):
            raise ConfigError(f"business_hours.days must be days such as MON-FRI or MON,WED,FRI, got {self.days!r}")
        _check_range("business_hours.start_hour", self.start_hour, 0, 22)
        _check_range("business_hours.end_hour", self.end_hour, self.start_hour + 1, 23)
        _check_range("business_hours.off_hours", self.off_hours, 0, 1000)


@dataclass(frozen=True, kw_only=True)
class FunctionColdStart:
    """Cold-start options of one function (off by default; with either on, event sources and the API call the
    function's "live" alias on a published version instead of $LATEST).

    `provisioned_concurrency`: execution environments kept initialised on the alias (0: off), billed for every
    second they exist; `schedule` (a list of {cron, min, max}, UTC) or `business_hours` moves it up and down with
    Application Auto Scaling scheduled actions so it is not paid for at night. `in_dr_region`: also provision in
    the DR region (warm standby; off: the DR alias has none and cold-starts after a failover).
    `snap_start`: Lambda SnapStart on published versions (Python 3.12+): init runs once per version and new
    environments resume from its snapshot; Lambda refuses it together with provisioned concurrency."""

    provisioned_concurrency: int = 0
    schedule: tuple[ScheduledCapacity, ...] = field(
        default_factory=tuple, metadata={"items": "{cron, min, max} objects"}
    )
    business_hours: BusinessHours | None = None
    in_dr_region: bool = False
    snap_start: bool = False

    def check(self, name: str) -> None:
        key = f"cold_start.{name}"
        _check_range(f"{key}.provisioned_concurrency", self.provisioned_concurrency, 0, 1000)
        if self.snap_start and self.provisioned_concurrency:
            raise ConfigError(
                f"{key}: snap_start and provisioned_concurrency cannot both be on: Lambda does not support "
                "provisioned concurrency on a SnapStart function. Choose one (provisioned concurrency: no cold "
                "start at all, billed while idle; SnapStart: faster cold starts, billed per snapshot and restore)"
            )
        if (self.schedule or self.business_hours) and not self.provisioned_concurrency:
            raise ConfigError(f"{key}: a schedule or business_hours needs provisioned_concurrency above 0")
        if self.schedule and self.business_hours:
            raise ConfigError(f"{key}: give either schedule or business_hours, not both")
        if self.business_hours and self.business_hours.off_hours > self.provisioned_concurrency:
            raise ConfigError(f"{key}.business_hours.off_hours must not exceed {key}.provisioned_concurrency")

    @property
    def enabled(self) -> bool:
        """Whether the function is called through its alias (either option on)."""
        return self.snap_start or self.provisioned_concurrency > 0

    def provisioned_in(self, *, primary: bool) -> int:
        return self.provisioned_concurrency if primary or self.in_dr_region else 0

    def scheduled_actions(self) -> tuple[ScheduledCapacity, ...]:
        """The scheduled actions, the business-hours window written as its two crons."""
        hours = self.business_hours
        if hours is None:
            return self.schedule
        pc = self.provisioned_concurrency
        return (
            ScheduledCapacity(cron=f"cron(0 {hours.start_hour} ? * {hours.days} *)", min=pc, max=pc),
            ScheduledCapacity(
                cron=f"cron(0 {hours.end_hour} ? * {hours.days} *)", min=hours.off_hours, max=hours.off_hours
            ),
        )

    def peak(self) -> int:
        """The most provisioned concurrency any action (or the deploy itself) asks for."""
        return max([self.provisioned_concurrency, *(action.max for action in self.scheduled_actions())])


@dataclass(frozen=True, kw_only=True)
class ColdStartConfig:
    """Per function: `cold_start: {"chat": {...}, "worker": {...}, "ingest": {...}}` (FunctionColdStart)."""

    chat: FunctionColdStart = field(default_factory=FunctionColdStart)
    worker: FunctionColdStart = field(default_factory=FunctionColdStart)
    ingest: FunctionColdStart = field(default_factory=FunctionColdStart)

    def __post_init__(self) -> None:
        for name in ("chat", "worker", "ingest"):
            getattr(self, name).check(name)


@dataclass(frozen=True, kw_only=True)
class StreamingConfig:
    """Streamed answers over a WebSocket API per region (ADR 0004). WAF cannot sit on a WebSocket API: the stage
    throttle, the per-user limits (limits.*), API Gateway's message size (128 KB; our limits.max_body_bytes first)
    and its connection limits (2 h, 10 min idle) stand in for it."""

    enabled: bool = True
    rate_limit: float = 20.0  # steady messages per second for the stage ($connect included)
    burst_limit: int = 40
    timeout_seconds: int = 120  # the stream Lambda: a long answer streams for longer than /chat's 29 s cap
    authorizer_timeout_seconds: int = 10
    authorizer_reserved_concurrency: int = 10  # connects are rare next to messages (one per session)

    def __post_init__(self) -> None:
        _check_range("streaming.authorizer_reserved_concurrency", self.authorizer_reserved_concurrency, 1, 1000)
        _check_range("streaming.rate_limit", self.rate_limit, 1, 10_000)
        _check_range("streaming.burst_limit", self.burst_limit, 1, 5_000)
        _check_range("streaming.timeout_seconds", self.timeout_seconds, 30, 900)
        _check_range("streaming.authorizer_timeout_seconds", self.authorizer_timeout_seconds, 3, 29)
        if self.burst_limit < self.rate_limit:
            raise ConfigError(
                f"streaming.burst_limit ({self.burst_limit}) must be at least streaming.rate_limit ({self.rate_limit})"
            )


@dataclass(frozen=True, kw_only=True)
class WorkflowsConfig:
    """Long workflows on Lambda durable functions (ADR 0005): the `summarize` job kind, one durable function per
    region (needs knowledge: it summarizes an ingested document). Checked against `jobs` by AppConfig: a workflow
    job is still a job (the recovery sweep fails it at jobs.max_age_s and adopts it when quiet for
    jobs.stranded_after_s), so the execution ends within the first and its heartbeat beats the second."""

    enabled: bool = True
    execution_timeout_s: int = 3600  # the whole durable execution (DurableConfig.ExecutionTimeout)
    retention_days: int = 14  # execution history kept after it closes (1-90)
    max_wait_s: int = 300  # longest durable wait before retrying a throttled step (the heartbeat's longest gap)
    reserved_concurrency: int = 5  # invocations at once (each runs one step; a waiting execution runs none)
    chapter_chars: int = 12_000  # text per chapter call
    max_chapters: int = 200  # model calls per document are bounded by this + 1

    def __post_init__(self) -> None:
        _check_range("workflows.execution_timeout_s", self.execution_timeout_s, 900, 31_622_400)
        _check_range("workflows.retention_days", self.retention_days, 1, 90)
        _check_range("workflows.max_wait_s", self.max_wait_s, 10, 3600)
        _check_range("workflows.reserved_concurrency", self.reserved_concurrency, 1, 1000)
        _check_range("workflows.chapter_chars", self.chapter_chars, 500, 200_000)
        _check_range("workflows.max_chapters", self.max_chapters, 1, 1000)

    def check_against(self, jobs: JobsConfig) -> None:
        if not self.enabled:
            return
        if self.execution_timeout_s > jobs.max_age_s:
            raise ConfigError(
                f"workflows.execution_timeout_s ({self.execution_timeout_s}) must not exceed jobs.max_age_s "
                f"({jobs.max_age_s}): the recovery sweep fails an older job, and its execution would go on spending "
                "model calls for a job nobody can read (raise jobs.max_age_s for longer workflows)"
            )
        gap = self.max_wait_s + jobs.deadline_s + 60
        if gap >= jobs.stranded_after_s:
            raise ConfigError(
                f"workflows.max_wait_s ({self.max_wait_s}) + jobs.deadline_s ({jobs.deadline_s}) + 60 s must stay "
                f"below jobs.stranded_after_s ({jobs.stranded_after_s}): a workflow refreshes its job's heartbeat "
                "at every attempt, and a longer gap would let the other region adopt a job that is only waiting"
            )
