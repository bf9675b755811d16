"""Typed deployment configuration, parsed once from cdk.json context.

Every stack and construct receives these frozen objects; none of them reads context itself.
A bad value fails synth with a sentence naming the key and the allowed values.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, field, fields, is_dataclass
from types import UnionType
from typing import Any, TypeVar, Union, get_args, get_origin, get_type_hints

CONTEXT_KEY = "bulwark"
_T = TypeVar("_T")

_REGION = re.compile(r"^[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-\d$")
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9]{0,19}$")
_FOUNDATION_MODEL = re.compile(r"^[a-z0-9-]+\.[A-Za-z0-9.:_-]+$")
_PROFILE_PREFIXES = ("us.", "eu.", "apac.", "global.", "us-gov.", "jp.", "au.", "ca.")
_PROVISIONED_ARN = re.compile(r"^arn:aws[a-z-]*:bedrock:(?P<region>[a-z0-9-]+):\d{12}:provisioned-model/[a-z0-9]+$")
_LABEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._:/()-]{0,63}$")
# A Secrets Manager secret name, or its ARN (in a region of its own, read across regions then).
_SECRET_ID = re.compile(
    r"^([A-Za-z0-9/_+=.@-]{1,512}|arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:[A-Za-z0-9/_+=.@-]+)$"
)
# Constructor arguments whose names say they carry a credential (api_key, openai_api_key, token, password...).
_CREDENTIAL_KEY = re.compile(
    r"(api[_-]?key|token|secret|password|passwd|credential|private[_-]?key|access[_-]?key)", re.I
)


def _credential_keys(value: Any, path: str) -> list[str]:
    """Paths of the keys in `value` (nested objects included) whose names look like credentials."""
    found: list[str] = []
    if isinstance(value, Mapping):
        for key, item in value.items():
            if _CREDENTIAL_KEY.search(str(key)):
                found.append(f"{path}.{key}")
            found.extend(_credential_keys(item, f"{path}.{key}"))
    return found


# Where each system inference profile prefix may route requests. IAM must allow the
# foundation model in every destination region, so this table is the source of truth.
INFERENCE_PROFILE_DESTINATIONS: dict[str, tuple[str, ...]] = {
    "us": ("us-east-1", "us-east-2", "us-west-2"),
    "eu": ("eu-central-1", "eu-west-1", "eu-west-3", "eu-north-1"),
    "apac": ("ap-northeast-1", "ap-northeast-2", "ap-south-1", "ap-southeast-1", "ap-southeast-2"),
}


class ConfigError(ValueError):
    """A context value is missing or invalid; the message names the key."""


@dataclass(frozen=True, kw_only=True)
class ModelTarget:
    """One step of the failover chain."""

    model_id: str  # foundation model id, system inference profile id, or provisioned model ARN
    region: str
    max_tokens: int = 1024
    # Wrap the model in an application inference profile (cost tags, per-app metrics).
    application_profile: bool = False
    # Opt-in: create no-commitment provisioned throughput for this foundation model (custom resource).
    provision_model_units: int | None = None
    # A non-Bedrock secondary: {"class": "package.module:ChatClass", "kwargs": {...}, "secret": "<name or ARN>"}
    # (a LangChain chat model). Credentials never go in kwargs: the Secrets Manager secret's JSON object is
    # merged into kwargs by the Lambda at cold start.
    langchain: Mapping[str, Any] | None = None
    # What answers and history show as the model (default: model_id; a provisioned ARN shows no account id).
    label: str | None = None
    # The account's quota for this model (Service Quotas); sizes the jobs worker's concurrency.
    quota_rpm: int = 100
    quota_tpm: int = 200_000

    def __post_init__(self) -> None:
        if not 1 <= self.quota_rpm <= 1_000_000 or not 100 <= self.quota_tpm <= 100_000_000:
            raise ConfigError(
                "models[].quota_rpm must be 1..1000000 and quota_tpm 100..100000000, "
                f"got {self.quota_rpm}, {self.quota_tpm}"
            )
        if self.langchain is not None:
            cls = self.langchain.get("class")
            if not isinstance(cls, str) or not re.fullmatch(r"[A-Za-z_][\w.]*:[A-Za-z_]\w*", cls):
                raise ConfigError(f"models[].langchain.class must look like 'package.module:ChatClass', got {cls!r}")
            if not isinstance(self.langchain.get("kwargs", {}), Mapping):
                raise ConfigError("models[].langchain.kwargs must be an object of constructor arguments")
            if set(self.langchain) - {"class", "kwargs", "secret"}:
                raise ConfigError("models[].langchain allows only the keys class, kwargs and secret")
            secret = self.langchain.get("secret")
            if secret is not None and (not isinstance(secret, str) or not _SECRET_ID.match(secret)):
                raise ConfigError(
                    "models[].langchain.secret must name a Secrets Manager secret in each deployed region (a name "
                    f"such as bulwark/openai) or be its ARN, got {secret!r}"
                )
            credentials = _credential_keys(self.langchain.get("kwargs", {}), "models[].langchain.kwargs")
            if credentials:
                raise ConfigError(
                    f"{', '.join(credentials)} looks like a credential; config, the template and the Lambda "
                    "environment are not secret: store it in a Secrets Manager secret (a JSON object such as "
                    '{"api_key": "..."}) and name that secret in models[].langchain.secret; its keys are passed '
                    "to the model's constructor at cold start"
                )
            self._check_label()
            return  # model_id is a display name and region a label for external providers
        if not _REGION.match(self.region):
            raise ConfigError(f"models[].region must be an AWS region such as us-east-1, got {self.region!r}")
        if not 1 <= self.max_tokens <= 64000:
            raise ConfigError(f"models[].max_tokens must be between 1 and 64000, got {self.max_tokens}")
        if self.kind == "provisioned":
            match = _PROVISIONED_ARN.match(self.model_id)
            if match is None or match["region"] != self.region:
                raise ConfigError(
                    "models[].model_id: a provisioned model ARN must look like "
                    "arn:aws:bedrock:<region>:<account>:provisioned-model/<id> and its region must equal "
                    f"models[].region ({self.region}), got {self.model_id!r}"
                )
        elif not _FOUNDATION_MODEL.match(self.model_id):
            raise ConfigError(
                "models[].model_id must be a foundation model id (e.g. amazon.nova-lite-v1:0), a system "
                "inference profile id (e.g. us.amazon.nova-lite-v1:0) or a provisioned model ARN, "
                f"got {self.model_id!r}"
            )
        if self.application_profile and self.kind == "provisioned":
            raise ConfigError("models[].application_profile cannot wrap a provisioned model ARN; use it directly")
        if self.provision_model_units is not None:
            if self.kind != "foundation-model":
                raise ConfigError(
                    "models[].provision_model_units needs a foundation model id (provisioned throughput is "
                    f"bought per model and region), got {self.kind} {self.model_id!r}"
                )
            if self.application_profile:
                raise ConfigError("models[]: choose application_profile or provision_model_units, not both")
            if not 1 <= self.provision_model_units <= 100:
                raise ConfigError(
                    f"models[].provision_model_units must be between 1 and 100, got {self.provision_model_units}"
                )
        if self.kind == "system-profile":
            scope = self.model_id.split(".", 1)[0]
            allowed = INFERENCE_PROFILE_DESTINATIONS.get(scope)
            if allowed is not None and self.region not in allowed:
                raise ConfigError(
                    f"models[].region {self.region} cannot call the {scope}. inference profile "
                    f"{self.model_id}; allowed regions: {', '.join(allowed)}"
                )
        self._check_label()

    def _check_label(self) -> None:
        if self.label is not None and not _LABEL.match(self.label):
            raise ConfigError(
                f"models[].label must be 1-64 letters, digits, spaces or . _ : / ( ) - characters, got {self.label!r}"
            )

    @property
    def display_name(self) -> str:
        """The model as users see it in answers: never an ARN (it would show the account id)."""
        if self.label is not None:
            return self.label
        if self.kind == "provisioned":
            return f"provisioned-model/{self.model_id.rsplit('/', 1)[-1]}"
        return self.model_id

    @property
    def secret(self) -> str | None:
        """The Secrets Manager secret (name or ARN) holding a LangChain target's credentials."""
        return None if self.langchain is None else self.langchain.get("secret")

    @property
    def kind(self) -> str:
        if self.langchain is not None:
            return "langchain"
        if self.model_id.startswith("arn:"):
            return "provisioned"
        if self.model_id.startswith(_PROFILE_PREFIXES):
            return "system-profile"
        return "foundation-model"

    @property
    def foundation_model_id(self) -> str | None:
        """The underlying model id (profile prefix stripped); None for provisioned ARNs."""
        if self.kind == "provisioned":
            return None
        if self.kind == "system-profile":
            return self.model_id.split(".", 1)[1]
        return self.model_id

    def destination_regions(self) -> tuple[str, ...]:
        """Regions where the foundation model may run when called through this target."""
        if self.kind != "system-profile":
            return (self.region,)
        scope = self.model_id.split(".", 1)[0]
        if scope == "global":
            return ("*",)  # global profiles route to any commercial region
        return INFERENCE_PROFILE_DESTINATIONS.get(scope, (self.region,))

    @property
    def key(self) -> str:
        return f"{self.model_id}@{self.region}"


@dataclass(frozen=True, kw_only=True)
class RequestLimits:
    max_message_chars: int = 8000
    max_history_turns: int = 20
    max_body_bytes: int = 65536
    user_requests_per_minute: int = 60  # per signed-in user, POST /chat and /jobs together (0: no limit)

    def __post_init__(self) -> None:
        _check_range("limits.max_message_chars", self.max_message_chars, 1, 100_000)
        _check_range("limits.max_history_turns", self.max_history_turns, 0, 200)
        _check_range("limits.max_body_bytes", self.max_body_bytes, 1024, 6 * 1024 * 1024)
        _check_range("limits.user_requests_per_minute", self.user_requests_per_minute, 0, 100_000)
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

    @property
    def visibility_timeout_s(self) -> int:
        """Contract: at least 6x the consumer's timeout."""
        return 6 * self.worker_timeout_s


@dataclass(frozen=True, kw_only=True)
class GatewayConfig:
    """How the model gateway behaves when targets fail (the resilience contract's tunables)."""

    breaker_open_s: float = 30.0  # how long an open breaker skips its target before a probe
    degraded_status: int = 200  # no model answered: 200 with degraded=true, or 503 + Retry-After

    def __post_init__(self) -> None:
        _check_range("gateway.breaker_open_s", self.breaker_open_s, 1, 600)
        if self.degraded_status not in (200, 503):
            raise ConfigError(f"gateway.degraded_status must be 200 or 503, got {self.degraded_status}")


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
    dr_chat_reserved_concurrency: int = 5
    replicate_user_pool: bool = True
    log_retention_days: int = 365
    # Per region: a Bedrock guardrail on every model call (input and output filters, PII); `true`/`false` parse too.
    guardrail: GuardrailConfig = field(default_factory=GuardrailConfig, metadata={"coerce": _guardrail_switch})
    keys: KeysConfig = field(default_factory=KeysConfig)
    jobs: JobsConfig = field(default_factory=JobsConfig)
    gateway: GatewayConfig = field(default_factory=GatewayConfig)
    auth: AuthConfig = field(default_factory=AuthConfig)

    def __post_init__(self) -> None:
        if not _NAME.match(self.app_name):
            raise ConfigError(f"app_name must be 1-20 letters or digits starting with a letter, got {self.app_name!r}")
        if not _NAME.match(self.env_name):
            raise ConfigError(f"env_name must be 1-20 letters or digits starting with a letter, got {self.env_name!r}")
        for key in ("primary_region", "dr_region"):
            if not _REGION.match(getattr(self, key)):
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
        _check_range("dr_chat_reserved_concurrency", self.dr_chat_reserved_concurrency, 1, 1000)
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
        return self.chat_reserved_concurrency if region == self.primary_region else self.dr_chat_reserved_concurrency

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


def _check_range(key: str, value: float, low: float, high: float) -> None:
    if not low <= value <= high:
        raise ConfigError(f"{key} must be between {low} and {high}, got {value}")


def _parse_object(cls: type[_T], raw: Any, *, name: str, prefix: str) -> _T:
    """One config object: unknown keys refused, each field parsed by its declared type."""
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{name} must be an object, got {type(raw).__name__}")
    declared = [item for item in fields(cls) if item.init]  # type: ignore[arg-type]
    allowed = {item.name for item in declared}
    unknown = sorted(set(raw) - allowed)
    if unknown:
        raise ConfigError(f"unknown keys in {name}: {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}")
    hints = get_type_hints(cls)
    values: dict[str, Any] = {}
    for item in declared:
        key = f"{prefix}{item.name}"
        if item.name not in raw or (raw[item.name] is None and _optional_type(hints[item.name])):
            if item.default is MISSING and item.default_factory is MISSING:
                raise ConfigError(f"{key} is required")
            continue
        value = raw[item.name]
        coerce = item.metadata.get("coerce")
        values[item.name] = _parse_value(hints[item.name], coerce(value) if coerce else value, key, item.metadata)
    return cls(**values)


def _optional_type(hint: Any) -> bool:
    return get_origin(hint) in (UnionType, Union) and type(None) in get_args(hint)


def _parse_value(hint: Any, value: Any, key: str, metadata: Mapping[str, Any]) -> Any:
    if _optional_type(hint):
        (hint,) = [arg for arg in get_args(hint) if arg is not type(None)]
    origin = get_origin(hint)
    if origin is tuple and not is_dataclass(get_args(hint)[0]):  # a list of plain values, may be empty
        if not isinstance(value, list):
            raise ConfigError(f"{key} must be a list, got {type(value).__name__} {value!r}")
        return tuple(_parse_value(get_args(hint)[0], item, f"{key}[{index}]", {}) for index, item in enumerate(value))
    if origin is tuple:  # a list of config objects, e.g. models
        (item_type, _) = get_args(hint)
        if not isinstance(value, list) or not value:
            raise ConfigError(f"{key} must be a non-empty list of {metadata.get('items', 'objects')}")
        return tuple(
            _parse_object(item_type, item, name=f"{key}[{index}]", prefix=f"{key}[{index}].")
            for index, item in enumerate(value)
        )
    if is_dataclass(hint):
        return _parse_object(hint, value, name=key, prefix=f"{key}.")  # type: ignore[arg-type]
    if origin is not None and issubclass(origin, Mapping):
        return dict(_typed(key, value, dict))
    kinds: dict[Any, type | tuple[type, ...]] = {str: str, int: int, float: (int, float), bool: bool}
    return _typed(key, value, kinds[hint])


def _typed(key: str, value: Any, kind: type | tuple[type, ...]) -> Any:
    # bool is an int in Python; a JSON true must not pass as a number.
    if isinstance(value, bool) and kind is not bool:
        raise ConfigError(f"{key} must be {_kind_name(kind)}, got a boolean")
    if not isinstance(value, kind):
        raise ConfigError(f"{key} must be {_kind_name(kind)}, got {type(value).__name__} {value!r}")
    return value


def _kind_name(kind: type | tuple[type, ...]) -> str:
    names = {str: "a string", int: "a whole number", float: "a number", bool: "true or false", dict: "an object"}
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(names.get(k, k.__name__) for k in kinds)
