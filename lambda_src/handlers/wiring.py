"""Composition root shared by the Lambdas: adapters wired into the core. No side effects on import."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import botocore.session
from botocore.config import Config

from adapters.answer_cache import DynamoAnswerCache
from adapters.bedrock import BedrockTarget
from adapters.dynamodb import DynamoConversationStore
from adapters.metrics import PowertoolsGatewayMetrics, record_greeting
from adapters.residue import DynamoConversationResidue
from adapters.usage import DynamoUsageCounters
from core.chat import ChatService
from core.gateway import GatewaySettings, ModelGateway
from core.greetings import GreetingFilter
from core.limits import UserLimits, UserLimitSettings
from core.ports import TargetModel, Tracing
from core.prompts import ActivePrompt, FixedPrompt, PromptCacheSettings, PromptVersion
from core.resilience import BreakerSettings, CapacitySettings, RateLimiter
from core.retrieval import DocumentService, Retriever
from core.switches import SwitchBoard, SwitchCacheSettings, SwitchedPrompt, version_table
from handlers.settings import DataClientSettings, KnowledgeSettings, Settings, TargetSetting

if TYPE_CHECKING:
    # What only some deployments or some routes use is imported where it is built: a cold start pays only
    # for the modules every request needs (the prompt catalog, curated answers and the jobs side wait).
    from core.curated import CuratedAnswers
    from core.jobs import JobService

_session: botocore.session.Session | None = None
_log = logging.getLogger(__name__)


def shared_session() -> botocore.session.Session:
    """One botocore session per execution environment, so service data is loaded once."""
    global _session
    if _session is None:
        _session = botocore.session.get_session()
    return _session


# DynamoDB and SQS clients (the Powertools idempotency layer uses the worker's DynamoDB client): botocore's
# standard retry mode is their one retry layer (exponential backoff with jitter, a retry quota per client),
# and what still fails reaches the adapters, which answer 503 + Retry-After. They answer in milliseconds,
# so the timeouts are short. Bedrock clients are not made here: their botocore retries are off, the
# gateway is their one retry layer.
DATA_MAX_ATTEMPTS = 3
DATA_CONNECT_TIMEOUT_S = 0.5


def data_read_timeout_s() -> float:
    """DATA_READ_TIMEOUT_SECONDS (the environment contract; 1 s unless the sandbox gives more)."""
    return DataClientSettings.from_env().data_read_timeout_s


def data_client_config() -> Config:
    return Config(
        retries={"mode": "standard", "total_max_attempts": DATA_MAX_ATTEMPTS},  # the first attempt included
        connect_timeout=DATA_CONNECT_TIMEOUT_S,
        read_timeout=data_read_timeout_s(),
    )


def data_client(service: str, **kwargs: Any) -> Any:
    """A DynamoDB, SQS (or Secrets Manager) client from the shared session, with the retries above."""
    return shared_session().create_client(service, config=data_client_config(), **kwargs)


def data_call_worst_case_s() -> float:
    """The longest one data call can take, its retries included: every attempt may run into its timeouts,
    and a throttled one then waits its backoff (standard mode: up to 2**i s after attempt i + 1). The chat
    path keeps this much of the Lambda's time free after the model's deadline, for the turn's write."""
    timeouts = DATA_MAX_ATTEMPTS * (DATA_CONNECT_TIMEOUT_S + data_read_timeout_s())
    return timeouts + sum(2.0**attempt for attempt in range(DATA_MAX_ATTEMPTS - 1))


def prompt_client_config() -> Config:
    """The prompt catalog's read: one attempt, short timeouts. A failed read costs the request at most
    `prompt_read_worst_case_s` and the built-in (or last read) prompt answers; the read is tried again later."""
    return Config(
        retries={"mode": "standard", "total_max_attempts": 1},
        connect_timeout=DATA_CONNECT_TIMEOUT_S,
        read_timeout=data_read_timeout_s(),
    )


def prompt_read_worst_case_s() -> float:
    return DATA_CONNECT_TIMEOUT_S + data_read_timeout_s()


def build_active_prompt(settings: Settings, *, dynamodb: Any = None, clock: Any = None) -> ActivePrompt | None:
    """This environment's active prompt from the catalog (None where no catalog table is configured)."""
    if not settings.prompts_table_name:
        return None
    from adapters.prompt_catalog import DynamoPromptCatalog

    client = dynamodb or LazyClient(lambda: shared_session().create_client("dynamodb", config=prompt_client_config()))
    return ActivePrompt(
        source=DynamoPromptCatalog(client=client, table_name=settings.prompts_table_name),
        environment=settings.prompt_environment,
        settings=PromptCacheSettings(ttl_s=settings.prompt_cache_s, read_worst_case_s=prompt_read_worst_case_s()),
        **({"clock": clock} if clock is not None else {}),
    )


def build_curated_answers(
    settings: Settings, *, dynamodb: Any = None, bedrock_factory: Any = None, embed: bool = True
) -> CuratedAnswers | None:
    """The curated answers (None where no table is configured): read with the prompt catalog's bounded client.
    `embed`: embed questions itself (no retriever computes their embedding)."""
    if not settings.curated_table_name:
        return None
    from adapters.curated_answers import MAX_PAGES, DynamoCuratedAnswers
    from core.curated import CuratedAnswers, CuratedSettings

    client = dynamodb or LazyClient(lambda: shared_session().create_client("dynamodb", config=prompt_client_config()))
    region = _region(dynamodb) if dynamodb is not None else str(shared_session().get_config_variable("region") or "")
    return CuratedAnswers(
        source=DynamoCuratedAnswers(client=client, table_name=settings.curated_table_name),
        settings=CuratedSettings(
            threshold=settings.curated_threshold,
            ttl_s=settings.curated_cache_s,
            read_worst_case_s=MAX_PAGES * prompt_read_worst_case_s(),
        ),
        embedder=question_embedder(settings, region=region, bedrock_factory=bedrock_factory) if embed else None,
    )


def question_embedder(settings: KnowledgeSettings, *, region: str, bedrock_factory: Any = None) -> Any:
    """Titan v2 on a question, in the Lambda's region, no retries (the caller's deadline is its timeout)."""
    from adapters.document_catalog import TitanQuestionEmbedder

    if bedrock_factory is not None:
        client_factory = lambda config: bedrock_factory(region, config)  # noqa: E731
    else:
        client_factory = lambda config: shared_session().create_client(  # noqa: E731
            "bedrock-runtime", region_name=region, config=config
        )
    return TitanQuestionEmbedder(
        client_factory=client_factory, model_id=settings.embedding_model_id, dimensions=settings.embedding_dimensions
    )


def build_switch_board(settings: Settings, *, appconfigdata: Any = None, clock: Any = None) -> SwitchBoard | None:
    """The runtime switches from AppConfig (None where no switches profile is configured). The client has the
    prompt catalog's bounds (one attempt, short timeouts); in the sandbox AWS_ENDPOINT_URL_APPCONFIGDATA points
    it at local/appconfig_emulator.py. Read on the first request, then every `switches_cache_s`."""
    if not (settings.switches_application and settings.switches_environment and settings.switches_profile):
        return None
    from adapters.feature_flags import AppConfigSwitches, record_ignored_switch

    # Made with the store, on the first read (the first request), like the feature flags utility it serves.
    client = appconfigdata or LazyClient(
        lambda: shared_session().create_client("appconfigdata", config=prompt_client_config())
    )
    return SwitchBoard(
        read=AppConfigSwitches(
            application=settings.switches_application,
            environment=settings.switches_environment,
            profile=settings.switches_profile,
            client=client,
        ),
        targets=[(t.display_name, t.region) for t in settings.targets],
        versions=version_table((t.display_name, t.region, t.versions) for t in settings.targets if t.langchain is None),
        on_ignored=record_ignored_switch,
        settings=SwitchCacheSettings(ttl_s=settings.switches_cache_s, retry_after_error_s=settings.switches_cache_s),
        **({"clock": clock} if clock is not None else {}),
    )


def switched_prompts(settings: Settings, active: Any, board: SwitchBoard | None, *, dynamodb: Any = None) -> Any:
    """The active prompt, or the catalog version a switch names (a rollback without a catalog write)."""
    if board is None:
        return active
    lookup = _missing_version
    if settings.prompts_table_name:
        from adapters.prompt_catalog import DynamoPromptCatalog

        client = dynamodb or LazyClient(
            lambda: shared_session().create_client("dynamodb", config=prompt_client_config())
        )
        catalog = DynamoPromptCatalog(client=client, table_name=settings.prompts_table_name)

        def lookup(version: str) -> PromptVersion:
            stored = catalog.version(version)
            return PromptVersion(version=stored.version, text=stored.text)

    return SwitchedPrompt(active=active or FixedPrompt(), board=board, lookup=lookup)


def _switched_version(board: SwitchBoard | None, target: TargetSetting) -> Callable[[], str | None] | None:
    """The model version the `model_versions` switch selects for this target now (None: its configured one)."""
    if board is None or not target.previous_versions:
        return None
    name, region = target.display_name, target.region
    return lambda: board.current().model_version(name, region)


def _missing_version(version: str) -> PromptVersion:
    raise LookupError(f"no prompt catalog is configured for version {version}")


def gateway_capacity(settings: Settings) -> CapacitySettings:
    """Each model target's adaptive concurrency limit, as configured. A target that throttles everything is
    left alone at most as long as an open breaker would leave it."""
    return CapacitySettings(
        ceiling=settings.concurrency_ceiling,
        increase=settings.concurrency_increase,
        decrease=settings.concurrency_decrease,
        max_pause_s=settings.breaker_open_s,
    )


def worker_gateway_settings(settings: Settings) -> GatewaySettings:
    """The gateway for async work (the worker and the durable workflows): it optimises for not wasting quota,
    not for latency: long attempt timeouts (a call given up on may still be billed and answered) and no hedging
    (a hedge is a second call). Here, not in handlers.worker: importing that module builds a whole worker."""
    return GatewaySettings(
        deadline_s=settings.job_deadline_s,
        cold_timeout_s=min(30.0, settings.job_deadline_s / 2),
        min_timeout_s=10.0,
        probe_timeout_s=10.0,
        hedging=False,
        breaker=BreakerSettings(open_s=settings.breaker_open_s),
        capacity=gateway_capacity(settings),
        # The same cache scope as the chat path's, so either can serve what the other cached.
        guardrail_version=settings.targets[0].guardrail[1] if settings.targets[0].guardrail else "none",
    )


def build_chat_service(
    settings: Settings,
    *,
    dynamodb: Any = None,
    bedrock_factory: Any = None,
    gateway_settings: GatewaySettings | None = None,
    secrets: Any = None,
    retriever: Retriever | None = None,
    s3vectors: Any = None,
    prompt_clock: Any = None,
    appconfigdata: Any = None,
    switches_clock: Any = None,
    tracing: Tracing | None = None,
) -> ChatService:
    """Composition root: wire the adapters into the core once per cold start.

    Clients may be passed in (tests, the local sandbox); by default they are botocore's, configured
    here. botocore directly: boto3's extra layer costs cold-start time and buys nothing for
    low-level clients. One session, so endpoint data is loaded once. Where the settings name a
    vector index, answers are grounded in the caller's documents (`retriever`, or one built here).
    """
    session = shared_session()
    gateway_settings = gateway_settings or GatewaySettings(
        deadline_s=settings.deadline_s,
        breaker=BreakerSettings(open_s=settings.breaker_open_s),
        capacity=gateway_capacity(settings),
        guardrail_version=settings.targets[0].guardrail[1] if settings.targets[0].guardrail else "none",
    )
    # The client every target's first call uses (cold timeout), so a failover never waits for one.
    prewarm = (gateway_settings.cold_timeout_s,)

    def factory(region: str) -> Any:
        if bedrock_factory is not None:
            return lambda config: bedrock_factory(region, config)
        return lambda config: session.create_client("bedrock-runtime", region_name=region, config=config)

    board = build_switch_board(settings, appconfigdata=appconfigdata, clock=switches_clock)
    targets: list[TargetModel] = []
    for t in settings.targets:
        if t.langchain is not None:
            targets.append(_langchain_target(t, factory=factory, prewarm=prewarm, secrets=secrets))
            continue
        targets.append(
            BedrockTarget(
                client_factory=factory(t.region),
                model_id=t.model_id,
                region=t.region,
                max_tokens=t.max_tokens,
                guardrail=t.guardrail,
                prewarm=prewarm,
                name=t.name,
                version=_switched_version(board, t),
            )
        )
    dynamodb_given = dynamodb  # tests and the sandbox pass theirs; in AWS the catalog gets its own client
    dynamodb = dynamodb or data_client("dynamodb")
    cache = (
        DynamoAnswerCache(client=dynamodb, table_name=settings.cache_table_name) if settings.cache_table_name else None
    )
    gateway = ModelGateway(
        targets=targets,
        settings=gateway_settings,
        cache=cache,
        metrics=PowertoolsGatewayMetrics(),
        switches=board.current if board is not None else None,
        tracing=tracing,  # a span per attempt (adapters/tracing.py in Lambda)
    )
    prompts = switched_prompts(
        settings,
        build_active_prompt(settings, dynamodb=dynamodb_given, clock=prompt_clock),
        board,
        dynamodb=dynamodb_given,
    )
    store = DynamoConversationStore(client=dynamodb, table_name=settings.table_name)
    residue = DynamoConversationResidue(
        client=dynamodb,
        cache_table=settings.cache_table_name,
        jobs_table=settings.jobs_table_name,
        idempotency_table=settings.idempotency_table_name,
    )
    if retriever is None and settings.knowledge_enabled:
        retriever = build_retriever(
            settings, dynamodb=dynamodb, s3vectors=s3vectors, bedrock_factory=bedrock_factory, tracing=tracing
        )
    return ChatService(
        store=store,
        model=gateway,
        limits=settings.limits,
        deadline_s=settings.deadline_s,
        residue=residue,
        store_reserve_s=data_call_worst_case_s(),
        retriever=retriever,
        prompts=prompts,
        curated=DeferredCurated(
            lambda: build_curated_answers(
                settings, dynamodb=dynamodb_given, bedrock_factory=bedrock_factory, embed=retriever is None
            )
        )
        if settings.curated_table_name
        else None,
        greetings=GreetingFilter(extra_phrases=settings.greetings_phrases, replies=settings.greetings_replies)
        if settings.greetings_enabled
        else None,
        on_greeting=record_greeting,
        drift=build_drift_observer(settings, dynamodb=dynamodb) if settings.drift_signals else None,
    )


def build_drift_observer(settings: Settings, *, dynamodb: Any) -> Any:
    """Per-request drift signals (EMF) and the corpus centroid, read from the prompts table on the first request
    that has a question embedding, then every `drift_centroid_cache_s` (the cold start reads nothing)."""
    from adapters.drift_store import DynamoCentroid, EmfSignalSink
    from core.drift import DriftObserver

    centroid = None
    if settings.prompts_table_name and settings.knowledge_enabled:
        centroid = DynamoCentroid(
            client=dynamodb,
            table_name=settings.prompts_table_name,
            region=_region(dynamodb),
            ttl_s=settings.drift_centroid_cache_s,
        )
    return DriftObserver(sink=EmfSignalSink(), centroid=centroid)


T = TypeVar("T")


class Deferred(Generic[T]):
    """A part of the environment built on its first use, once: the routes that need it (deep health, jobs) pay
    for its modules, not every cold start. Under a lock: the sandbox serves one environment on several threads."""

    def __init__(self, build: Callable[[], T]) -> None:
        self._build: Callable[[], T] | None = build
        self._value: T | None = None
        self._lock = threading.Lock()

    def get(self) -> T:
        if self._build is not None:
            with self._lock:
                if self._build is not None:
                    self._value, self._build = self._build(), None
        return self._value  # type: ignore[return-value]


class DeferredCurated:
    """Curated answers built when the chat path first degrades (most execution environments never do), so a
    cold start does not load their modules."""

    def __init__(self, build: Callable[[], Any]) -> None:
        self._answers: Deferred[Any] = Deferred(build)

    def embed(self, question: str, *, budget_s: float) -> Any:
        return self._answers.get().embed(question, budget_s=budget_s)

    def match(self, vector: Any, *, prompt_version: str, budget_s: float) -> Any:
        return self._answers.get().match(vector, prompt_version=prompt_version, budget_s=budget_s)


def _region(client: Any) -> str:
    return str(client.meta.region_name)


class LazyClient:
    """A botocore client made on its first use. The chat Lambda's cold start then pays only for the clients
    every request needs (DynamoDB, Bedrock): the S3 and S3 Vectors clients of the documents routes and of
    retrieval cost about 100 ms to build and wait for the first request that uses them."""

    def __init__(self, factory: Callable[[], Any]) -> None:
        self._factory = factory
        self._client: Any = None
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        if self._client is None:
            with self._lock:
                if self._client is None:
                    self._client = self._factory()
        return getattr(self._client, name)


def _vectors_client(region: str) -> LazyClient:
    """An S3 Vectors client made when first used. Not cached per process: each bootstrap (an execution
    environment, or a sandbox with its own endpoints) gets its own, bound to the endpoints of its time."""
    return LazyClient(lambda: data_client("s3vectors", region_name=region))


def build_vector_index(settings: KnowledgeSettings, *, s3vectors: Any = None, region: str | None = None) -> Any:
    """This region's S3 Vectors index (imported here: only deployments with knowledge pay for it)."""
    from adapters.s3vectors import S3VectorIndex

    region = region or shared_session().get_config_variable("region") or ""
    return S3VectorIndex(
        client=s3vectors or _vectors_client(region),
        bucket_name=settings.vector_bucket_name or "",
        index_name=settings.vector_index_name or "",
        dimension=settings.embedding_dimensions,
        # Retrieval's queries: clients whose timeouts fit what is left of the retrieval deadline.
        client_factory=None
        if s3vectors is not None
        else lambda config: shared_session().create_client("s3vectors", region_name=region, config=config),
    )


def build_retriever(
    settings: KnowledgeSettings,
    *,
    dynamodb: Any,
    s3vectors: Any = None,
    bedrock_factory: Any = None,
    tracing: Tracing | None = None,
) -> Retriever:
    """The question's embedding (in the Lambda's region, no retries, the retrieval deadline as its timeout)
    and this region's index, with the catalog to name the cited documents."""
    from adapters.document_catalog import DynamoDocumentCatalog, TitanQuestionEmbedder

    region = _region(dynamodb)
    if bedrock_factory is not None:
        client_factory = lambda config: bedrock_factory(region, config)  # noqa: E731
    else:
        client_factory = lambda config: shared_session().create_client(  # noqa: E731
            "bedrock-runtime", region_name=region, config=config
        )
    return Retriever(
        embedder=TitanQuestionEmbedder(
            client_factory=client_factory,
            model_id=settings.embedding_model_id,
            dimensions=settings.embedding_dimensions,
        ),
        index=build_vector_index(settings, s3vectors=s3vectors, region=region),
        catalog=DynamoDocumentCatalog(client=dynamodb, table_name=settings.documents_table_name or "", region=region),
        top_k=settings.retrieval_top_k,
        context_chars=settings.retrieval_context_chars,
        deadline_s=settings.retrieval_deadline_s,
        tracing=tracing,
    )


def documents_s3_client(region: str) -> Any:
    """SigV4 (presigned POSTs need it) on the regional virtual-hosted endpoint, so an upload URL names this
    region's bucket host (<bucket>.s3.<region>.amazonaws.com), the host the site's CSP allows."""
    regional = Config(
        signature_version="s3v4", s3={"addressing_style": "virtual", "us_east_1_regional_endpoint": "regional"}
    )
    return shared_session().create_client("s3", region_name=region, config=data_client_config().merge(regional))


def build_document_service(
    settings: KnowledgeSettings, *, dynamodb: Any, s3: Any = None, s3vectors: Any = None
) -> DocumentService | None:
    """The /documents routes' service; None where this deployment has no knowledge configured."""
    if not (settings.knowledge_enabled and settings.documents_bucket):
        return None
    from adapters.document_catalog import DynamoDocumentCatalog, S3DocumentFiles

    region = _region(dynamodb)
    s3 = s3 or LazyClient(lambda: documents_s3_client(region))
    return DocumentService(
        catalog=DynamoDocumentCatalog(client=dynamodb, table_name=settings.documents_table_name or "", region=region),
        files=S3DocumentFiles(client=s3, bucket=settings.documents_bucket),
        index=build_vector_index(settings, s3vectors=s3vectors, region=region),
        max_bytes=settings.max_document_bytes,
    )


def _langchain_target(t: TargetSetting, *, factory: Any, prewarm: tuple[float, ...], secrets: Any) -> TargetModel:
    """Another provider's model: its credentials read from Secrets Manager now (cold start, only because it is
    configured), and this region's guardrail applied to its question and answer (ApplyGuardrail)."""
    from adapters.guardrail import GuardedTarget
    from adapters.langchain_target import LangChainTarget, UnavailableTarget, load_chat_model

    secret_kwargs = None
    if t.secret_arn:
        from adapters.secrets import provider_kwargs, secret_region

        client = secrets or data_client("secretsmanager", region_name=secret_region(t.secret_arn))
        try:
            secret_kwargs = provider_kwargs(client, t.secret_arn)
        except Exception as error:  # one secondary's set-up must not stop the Lambda from starting
            code = getattr(error, "response", {}).get("Error", {}).get("Code") or type(error).__name__
            _log.warning("target %s disabled: its secret could not be read (%s)", t.display_name, code)
            return UnavailableTarget(name=t.display_name, region=t.region, code=code)
    model = LangChainTarget(
        chat_model=load_chat_model(t.langchain or {}, secret_kwargs), name=t.display_name, region=t.region
    )
    if t.guardrail is None:
        return model  # no guardrail in this deployment: its answers are not cached (synth warned)
    return GuardedTarget(
        inner=model, client_factory=factory(t.guardrail_region or t.region), guardrail=t.guardrail, prewarm=prewarm
    )


def build_job_service(
    settings: Settings, *, chat: ChatService | None, dynamodb: Any = None, sqs: Any = None
) -> JobService | None:
    """The jobs side (API: submit/status; worker: answer). None where no queue is configured."""
    if not (settings.jobs_table_name and settings.jobs_queue_url):
        return None
    from adapters.jobs import DynamoJobStore, DynamoOpenJobSlots, PowertoolsJobEvents, SqsJobQueue
    from core.jobs import JobService, JobSettings

    dynamodb = dynamodb or data_client("dynamodb")
    events = PowertoolsJobEvents()

    # The worker's answers spend the users' token budgets too (the API checks them at submit).
    def unavailable() -> None:
        events.record("UserLimitUnavailable")

    budget = build_user_limits(settings, dynamodb=dynamodb, on_unavailable=unavailable) if chat is not None else None
    return JobService(
        store=DynamoJobStore(client=dynamodb, table_name=settings.jobs_table_name),
        queue=SqsJobQueue(client=sqs, client_factory=lambda: data_client("sqs"), queue_url=settings.jobs_queue_url),
        chat=chat,
        settings=JobSettings(
            max_age_s=settings.job_max_age_s,
            deadline_s=settings.job_deadline_s,
            backoff_base_s=settings.job_backoff_s,
            max_open_per_user=settings.max_open_jobs_per_user,
            stranded_after_s=settings.job_stranded_after_s,  # GET /jobs/{id} adopts a lost region's job
        ),
        clock=time.time,
        pacing=RateLimiter(settings.worker_rate_per_s) if chat is not None and settings.worker_rate_per_s else None,
        slots=DynamoOpenJobSlots(client=dynamodb, table_name=settings.jobs_table_name),
        events=events,
        budget=budget,
    )


def build_user_limits(settings: Settings, *, dynamodb: Any, on_unavailable: Any = None) -> UserLimits | None:
    """Per-user limits (request rate, daily token budget); None where no counter table or no limit is configured.
    Token items are written under the DynamoDB client's region (each region its own item of the day)."""
    limits = UserLimitSettings(
        requests_per_minute=settings.user_requests_per_minute, daily_tokens=settings.daily_tokens_per_user
    )
    if not (settings.usage_table_name and limits.enabled):
        return None
    return UserLimits(
        counters=DynamoUsageCounters(client=dynamodb, table_name=settings.usage_table_name),
        settings=limits,
        region=str(dynamodb.meta.region_name),
        on_unavailable=on_unavailable or (lambda: None),
    )
