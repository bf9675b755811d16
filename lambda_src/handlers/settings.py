"""The stack-to-Lambda environment contract: every variable's name, default and parser, once.

The stacks render a `Settings` into a function's environment (`to_env`), the Lambdas read it back
at cold start (`from_env`), and the sandbox and the tests build theirs the same way, so a name or
a default can only be changed here. Pure: the CDK app imports this module too.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from dataclasses import MISSING, dataclass, field, fields, replace
from typing import Any, TypeVar

from core.greetings import validate_phrases, validate_replies
from core.models import Limits


@dataclass(frozen=True, kw_only=True)
class TargetSetting:
    model_id: str  # what Converse is called with (an id, or an application/provisioned ARN)
    region: str
    max_tokens: int
    guardrail: tuple[str, str] | None = None  # (identifier, version) in the target's region
    langchain: dict[str, object] | None = None  # {"class": "pkg.module:Class", "kwargs": {...}}
    name: str | None = None  # what answers show as the model (never an ARN); default: model_id
    # LangChain targets: the guardrail (ApplyGuardrail) is the Lambda's own region's, and the provider's
    # credentials are in this Secrets Manager secret, read at cold start (its JSON keys become kwargs).
    guardrail_region: str | None = None
    secret_arn: str | None = None
    # Exact model ids the `model_versions` runtime switch may roll this target back to (IAM allows each).
    previous_versions: tuple[str, ...] = ()

    @property
    def display_name(self) -> str:
        return self.name or self.model_id

    def to_json(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"model_id": self.model_id, "region": self.region, "max_tokens": self.max_tokens}
        if self.guardrail is not None:
            entry["guardrail_id"], entry["guardrail_version"] = self.guardrail
        if self.langchain is not None:
            entry["langchain"] = self.langchain
        for key in ("name", "guardrail_region", "secret_arn"):
            if getattr(self, key) is not None:
                entry[key] = getattr(self, key)
        if self.previous_versions:
            entry["previous_versions"] = list(self.previous_versions)
        return entry

    @property
    def versions(self) -> tuple[str, ...]:
        """Every model id this target may call: the configured one first, then its rollback versions."""
        return (self.model_id, *self.previous_versions)

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> TargetSetting:
        return cls(
            model_id=raw["model_id"],
            region=raw["region"],
            max_tokens=int(raw["max_tokens"]),
            guardrail=(raw["guardrail_id"], str(raw["guardrail_version"])) if raw.get("guardrail_id") else None,
            langchain=raw.get("langchain"),
            name=raw.get("name"),
            guardrail_region=raw.get("guardrail_region"),
            secret_arn=raw.get("secret_arn"),
            previous_versions=tuple(raw.get("previous_versions", ())),
        )


@dataclass(frozen=True)
class Codec:
    parse: Callable[[str], Any]
    render: Callable[[Any], str]


def _parse_bool(text: str) -> bool:
    if text.lower() not in ("true", "false"):
        raise ValueError(f"expected true or false, got {text!r}")
    return text.lower() == "true"


def _parse_targets(text: str) -> tuple[TargetSetting, ...]:
    targets = tuple(TargetSetting.from_json(entry) for entry in json.loads(text))
    if not targets:
        raise ValueError("must list at least one target")
    return targets


def _render_targets(targets: tuple[TargetSetting, ...]) -> str:
    return json.dumps([target.to_json() for target in targets])


def _optional(codec: Codec) -> Codec:
    return Codec(parse=lambda text: codec.parse(text) if text else None, render=codec.render)


STR = Codec(parse=str, render=str)
INT = Codec(parse=int, render=str)
FLOAT = Codec(parse=float, render=lambda value: str(int(value)) if float(value).is_integer() else repr(float(value)))
BOOL = Codec(parse=_parse_bool, render=lambda value: str(value).lower())
TARGETS = Codec(parse=_parse_targets, render=_render_targets)
# A comma-separated list kept as written (issuer URLs hold case-sensitive pool ids).
COMMA_LIST = Codec(parse=lambda text: tuple(part.strip() for part in text.split(",") if part.strip()), render=",".join)
DOMAINS = Codec(
    parse=lambda text: tuple(part.strip().lower() for part in text.split(",") if part.strip()),
    render=lambda domains: ",".join(domains),
)
REGIONS = DOMAINS  # comma-separated AWS region names
# Extra greeting phrases and replies (core/greetings.py), checked when read: a bad one names its key at cold start.
GREETING_PHRASES = Codec(
    parse=lambda text: validate_phrases(json.loads(text)),
    render=lambda value: json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True),
)
GREETING_REPLIES = Codec(parse=lambda text: validate_replies(json.loads(text)), render=GREETING_PHRASES.render)


def var(name: str, codec: Codec, default: Any = MISSING, *, optional: bool = False) -> Any:
    """A dataclass field bound to environment variable `name` (required when it has no default)."""
    metadata = {"env": name, "codec": _optional(codec) if optional else codec}
    if default is MISSING:
        return field(metadata=metadata)
    return field(default=default, metadata=metadata)


class EnvContract:
    """Reads and writes the variables its dataclass fields name (each declared with `var`)."""

    @classmethod
    def from_env(cls: type[_C], env: Mapping[str, str] | None = None) -> _C:
        """Parse the variables this contract names; a missing or malformed one names itself."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for item in fields(cls):  # type: ignore[arg-type]
            name, codec = item.metadata["env"], item.metadata["codec"]
            if name not in env:
                if item.default is MISSING:
                    raise KeyError(f"environment variable {name} is required")
                continue
            try:
                values[item.name] = codec.parse(env[name])
            except (ValueError, KeyError, TypeError) as error:
                raise ValueError(f"environment variable {name} is invalid: {error}") from error
        return cls(**values)

    def to_env(self) -> dict[str, str]:
        """The environment that reproduces these settings (unset optional values are left out)."""
        env: dict[str, str] = {}
        for item in fields(self):  # type: ignore[arg-type]
            value = getattr(self, item.name)
            if value is not None:
                env[item.metadata["env"]] = item.metadata["codec"].render(value)
        return env

    def but(self: _C, **changes: Any) -> _C:
        """A copy with some settings changed (tests, the sandbox)."""
        return replace(self, **changes)  # type: ignore[type-var]


_C = TypeVar("_C", bound=EnvContract)


@dataclass(frozen=True, kw_only=True)
class KnowledgeSettings(EnvContract):
    """Where the documents and their vectors live in this region, and how they are embedded and retrieved.

    Shared by the API Lambda (uploads, retrieval), the worker (retrieval) and the ingest Lambda. Unset
    names: knowledge is off in that function (no uploads, answers from the model alone)."""

    documents_table_name: str | None = var("DOCUMENTS_TABLE_NAME", STR, None, optional=True)
    documents_bucket: str | None = var("DOCUMENTS_BUCKET", STR, None, optional=True)
    vector_bucket_name: str | None = var("VECTOR_BUCKET_NAME", STR, None, optional=True)
    vector_index_name: str | None = var("VECTOR_INDEX_NAME", STR, None, optional=True)
    embedding_model_id: str = var("EMBEDDING_MODEL_ID", STR, "amazon.titan-embed-text-v2:0")
    embedding_dimensions: int = var("EMBEDDING_DIMENSIONS", INT, 1024)
    max_document_bytes: int = var("MAX_DOCUMENT_BYTES", INT, 10 * 1024 * 1024)
    retrieval_top_k: int = var("RETRIEVAL_TOP_K", INT, 5)
    retrieval_context_chars: int = var("RETRIEVAL_CONTEXT_CHARS", INT, 6000)  # passages fitted into the prompt
    retrieval_deadline_s: float = var("RETRIEVAL_DEADLINE_SECONDS", FLOAT, 3.0)  # embed + query, then answer anyway

    @property
    def knowledge_enabled(self) -> bool:
        return bool(self.documents_table_name and self.vector_bucket_name and self.vector_index_name)


@dataclass(frozen=True, kw_only=True)
class IngestSettings(KnowledgeSettings):
    """The ingest Lambda: parse, chunk, embed (paced to its share of the embedding quota), store vectors."""

    chunk_chars: int = var("CHUNK_CHARS", INT, 1200)
    chunk_overlap: int = var("CHUNK_OVERLAP", INT, 150)
    max_document_pages: int = var("MAX_DOCUMENT_PAGES", INT, 300)
    max_document_characters: int = var("MAX_DOCUMENT_CHARACTERS", INT, 1_000_000)
    embed_rate_per_s: float | None = var(
        "EMBED_RATE_PER_SECOND", FLOAT, None, optional=True
    )  # this environment's share
    ingest_deadline_s: float = var("INGEST_DEADLINE_SECONDS", FLOAT, 240.0)  # per document, under the Lambda timeout
    breaker_open_s: float = var("BREAKER_OPEN_SECONDS", FLOAT, 30.0)
    max_receive_count: int = var("MAX_RECEIVE_COUNT", INT, 4)  # the document fails with its reason on the last one


@dataclass(frozen=True, kw_only=True)
class Settings(KnowledgeSettings):
    """What a Lambda of this app reads from its environment. Chat and worker share the contract."""

    table_name: str = var("TABLE_NAME", STR)
    targets: tuple[TargetSetting, ...] = var("MODEL_TARGETS", TARGETS)
    max_message_chars: int = var("MAX_MESSAGE_CHARS", INT, 8000)
    max_history_turns: int = var("MAX_HISTORY_TURNS", INT, 20)
    max_body_bytes: int = var("MAX_BODY_BYTES", INT, 65536)
    max_json_depth: int = var("MAX_JSON_DEPTH", INT, 32)
    deadline_s: float = var("DEADLINE_SECONDS", FLOAT, 25.0)  # the sync path's end-to-end deadline
    cache_table_name: str | None = var("CACHE_TABLE_NAME", STR, None, optional=True)
    jobs_table_name: str | None = var("JOBS_TABLE_NAME", STR, None, optional=True)
    jobs_queue_url: str | None = var("JOBS_QUEUE_URL", STR, None, optional=True)
    # The summarize workflow's alias ARN (a durable function is invoked by a qualified ARN): the worker starts it.
    summarize_function_arn: str | None = var("SUMMARIZE_FUNCTION_ARN", STR, None, optional=True)
    # The summarize workflow itself (core.workflow.WorkflowSettings): the longest durable wait before retrying a
    # throttled step (under the jobs' stranded time: config workflows.max_wait_s), text per chapter, chapters at most.
    workflow_max_wait_s: int = var("WORKFLOW_MAX_WAIT_SECONDS", INT, 300)
    workflow_chapter_chars: int = var("WORKFLOW_CHAPTER_CHARS", INT, 12_000)
    workflow_max_chapters: int = var("WORKFLOW_MAX_CHAPTERS", INT, 200)
    idempotency_table_name: str | None = var("IDEMPOTENCY_TABLE_NAME", STR, None, optional=True)
    usage_table_name: str | None = var("USAGE_TABLE_NAME", STR, None, optional=True)  # per-user counters
    # The prompt catalog (core/prompts.py): this environment's active system prompt, re-read every
    # PROMPT_CACHE_SECONDS. Unset table: the built-in prompt (version "builtin").
    prompts_table_name: str | None = var("PROMPTS_TABLE_NAME", STR, None, optional=True)
    prompt_environment: str = var("PROMPT_ENVIRONMENT", STR, "dev")
    prompt_cache_s: float = var("PROMPT_CACHE_SECONDS", FLOAT, 30.0)
    # Curated answers (core/curated.py): served when no model can answer, to questions whose embedding is at
    # least CURATED_THRESHOLD (cosine) close to a curated one; re-read every CURATED_CACHE_SECONDS. Unset: none.
    curated_table_name: str | None = var("CURATED_TABLE_NAME", STR, None, optional=True)
    curated_threshold: float = var("CURATED_THRESHOLD", FLOAT, 0.8)
    curated_cache_s: float = var("CURATED_CACHE_SECONDS", FLOAT, 300.0)
    # Greetings, thanks and goodbyes answered at once without a model call (core/greetings.py): the built-in
    # phrases and replies plus these ({language: {part: [phrase]}}, {kind: {language: reply}}).
    greetings_enabled: bool = var("GREETINGS_ENABLED", BOOL, True)
    greetings_phrases: Mapping[str, Any] | None = var("GREETINGS_PHRASES", GREETING_PHRASES, None, optional=True)
    greetings_replies: Mapping[str, Any] | None = var("GREETINGS_REPLIES", GREETING_REPLIES, None, optional=True)
    user_requests_per_minute: int = var("USER_REQUESTS_PER_MINUTE", INT, 0)  # 0: no per-user rate limit
    # Input + output tokens per user per UTC day, summed over the regions (core/limits.py). 0: no budget.
    daily_tokens_per_user: int = var("DAILY_TOKENS_PER_USER", INT, 0)
    max_open_jobs_per_user: int = var("MAX_OPEN_JOBS_PER_USER", INT, 0)  # 0: no cap on a user's open jobs
    job_max_age_s: float = var("JOB_MAX_AGE_SECONDS", FLOAT, 3600.0)
    job_deadline_s: float = var("JOB_DEADLINE_SECONDS", FLOAT, 90.0)
    job_backoff_s: int = var("JOB_BACKOFF_SECONDS", INT, 5)  # first requeue delay of an unanswered job; doubles
    # Another region's open job quiet this long is adopted (GET /jobs/{id} here; the recovery sweep too).
    job_stranded_after_s: float = var("JOB_STRANDED_AFTER_SECONDS", FLOAT, 600.0)
    # The worker re-sends its own job quiet that long after this delay instead of answering it at once (it may
    # have been adopted while this region was out): longer than global-table replication takes. core.jobs.settle.
    job_settle_s: int = var("JOB_SETTLE_SECONDS", INT, 30)
    breaker_open_s: float = var("BREAKER_OPEN_SECONDS", FLOAT, 30.0)
    # Each model target's adaptive limit on calls in flight (throttles lower it, successes raise it).
    concurrency_ceiling: int = var("GATEWAY_CONCURRENCY_CEILING", INT, 16)
    concurrency_increase: float = var("GATEWAY_CONCURRENCY_INCREASE", FLOAT, 1.0)
    concurrency_decrease: float = var("GATEWAY_CONCURRENCY_DECREASE", FLOAT, 0.5)
    # Runtime switches (core/switches.py): an AppConfig feature flags profile, re-read every SWITCHES_CACHE_SECONDS
    # (a flip reaches every execution environment within it). Unset: no switches.
    switches_application: str | None = var("SWITCHES_APPLICATION", STR, None, optional=True)
    switches_environment: str | None = var("SWITCHES_ENVIRONMENT", STR, None, optional=True)
    switches_profile: str | None = var("SWITCHES_PROFILE", STR, None, optional=True)
    switches_cache_s: float = var("SWITCHES_CACHE_SECONDS", FLOAT, 30.0)
    worker_rate_per_s: float | None = var("WORKER_RATE_PER_SECOND", FLOAT, None, optional=True)
    max_receive_count: int = var("MAX_RECEIVE_COUNT", INT, 4)  # the worker fails the job on the last receive
    shed_to_jobs: bool = var("SHED_TO_JOBS", BOOL, False)  # every breaker open: accept /chat as a job (202)
    degraded_status: int = var("DEGRADED_STATUS", INT, 200)  # 200: answer flagged degraded; 503: refuse
    # The web UI's origin (https://<distribution>.cloudfront.net): the only origin given CORS headers.
    # Unset: no CORS headers at all (same-origin callers and non-browser clients only).
    allowed_origin: str | None = var("ALLOWED_ORIGIN", STR, None, optional=True)
    # Drift baselines (core/drift.py): per-request signals as EMF metrics, and the corpus centroid (written by the
    # drift job into the prompts table) re-read every DRIFT_CENTROID_CACHE_SECONDS. Off: neither.
    drift_signals: bool = var("DRIFT_SIGNALS", BOOL, False)
    drift_centroid_cache_s: float = var("DRIFT_CENTROID_CACHE_SECONDS", FLOAT, 3600.0)

    def __post_init__(self) -> None:
        if self.degraded_status not in (200, 503):
            raise ValueError(f"DEGRADED_STATUS must be 200 or 503, got {self.degraded_status}")

    @property
    def limits(self) -> Limits:
        return Limits(
            max_message_chars=self.max_message_chars,
            max_history_turns=self.max_history_turns,
            max_body_bytes=self.max_body_bytes,
        )


@dataclass(frozen=True, kw_only=True)
class RecoverySettings(EnvContract):
    """The jobs recovery sweep (handlers/recovery.py), run every minute in each region: adopts the open jobs of
    the peer regions that went quiet for `stranded_after_s`, sends this region's never-sent ones, fails jobs
    older than `job_max_age_s`. Its region is its own (the DynamoDB client's)."""

    jobs_table_name: str = var("JOBS_TABLE_NAME", STR)
    jobs_queue_url: str = var("JOBS_QUEUE_URL", STR)  # this region's requests queue: adopted jobs go there
    peer_regions: tuple[str, ...] = var("JOBS_PEER_REGIONS", REGIONS, ())  # whose jobs this region may adopt
    stranded_after_s: float = var("JOB_STRANDED_AFTER_SECONDS", FLOAT, 600.0)
    job_max_age_s: float = var("JOB_MAX_AGE_SECONDS", FLOAT, 3600.0)
    max_open_jobs_per_user: int = var("MAX_OPEN_JOBS_PER_USER", INT, 0)  # a failed job's slot is given back
    sweep_budget_s: float = var("RECOVERY_BUDGET_SECONDS", FLOAT, 45.0)  # per pass; the rest waits a minute

    def __post_init__(self) -> None:
        if self.stranded_after_s <= 0 or self.sweep_budget_s <= 0:
            raise ValueError("JOB_STRANDED_AFTER_SECONDS and RECOVERY_BUDGET_SECONDS must be positive")


@dataclass(frozen=True, kw_only=True)
class SignUpSettings(EnvContract):
    """The pre-sign-up trigger (handlers/pre_sign_up.py): which email domains may sign themselves up."""

    # Unset or empty: nobody may sign themselves up (fail closed).
    allowed_email_domains: tuple[str, ...] = var("ALLOWED_EMAIL_DOMAINS", DOMAINS, ())


@dataclass(frozen=True, kw_only=True)
class DataClientSettings(EnvContract):
    """How long a DynamoDB/SQS/S3 call may wait for an answer (handlers/wiring.py builds every data client
    with it). The stacks leave the default, sized for the real services; the sandbox, whose embedded AWS
    serves one request at a time on the same CPU as everything else, gives it more room."""

    data_read_timeout_s: float = var("DATA_READ_TIMEOUT_SECONDS", FLOAT, 1.0)


@dataclass(frozen=True, kw_only=True)
class DriftJobSettings(EnvContract):
    """The drift job (handlers/drift.py), daily in each region: reads the chat path's signals over the last
    DRIFT_WINDOW_HOURS, records the baseline (first run, or a new DRIFT_BASELINE_VERSION) or emits each signal's
    drift and how many passed their DRIFT_BOUNDS (what the region's one drift alarm watches); refreshes the corpus
    centroid from the vector index when there is one."""

    prompts_table_name: str = var("PROMPTS_TABLE_NAME", STR)  # where the baseline and the centroid are kept
    namespace: str = var("DRIFT_NAMESPACE", STR, "Bulwark")
    # The `service` dimensions of the signals: every Lambda that answers (POST /chat and the WebSocket stream,
    # the web UI's default), pooled into one window.
    source_services: tuple[str, ...] = var("DRIFT_SOURCE_SERVICES", COMMA_LIST, ("chat", "stream"))
    window_hours: int = var("DRIFT_WINDOW_HOURS", INT, 24)
    min_samples: int = var("DRIFT_MIN_SAMPLES", INT, 50)
    bounds_json: str = var("DRIFT_BOUNDS", STR, "{}")  # {signal: bound}; the others keep core.drift's defaults
    baseline_version: str = var("DRIFT_BASELINE_VERSION", STR, "1")
    vector_bucket_name: str | None = var("VECTOR_BUCKET_NAME", STR, None, optional=True)
    vector_index_name: str | None = var("VECTOR_INDEX_NAME", STR, None, optional=True)
    centroid_vectors: int = var("DRIFT_CENTROID_VECTORS", INT, 2000)

    @property
    def bounds(self) -> dict[str, float]:
        return {str(name): float(bound) for name, bound in json.loads(self.bounds_json).items()}


@dataclass(frozen=True, kw_only=True)
class StreamAuthorizerSettings(EnvContract):
    """The WebSocket $connect authorizer (handlers/ws_authorizer.py, ADR 0004): the user pool's JWKS, the token
    issuers it accepts and the web app client, the only audience."""

    jwks_url: str = var("JWKS_URL", STR)
    issuers: tuple[str, ...] = var("TOKEN_ISSUERS", COMMA_LIST)
    client_id: str = var("CLIENT_ID", STR)


def variable_names() -> tuple[str, ...]:
    """Every variable of the contracts, for checks that a template sets nothing unknown."""
    contracts = (
        Settings, IngestSettings, RecoverySettings, SignUpSettings, DataClientSettings, DriftJobSettings,
        StreamAuthorizerSettings,
    )  # fmt: skip
    return tuple(dict.fromkeys(item.metadata["env"] for contract in contracts for item in fields(contract)))
