"""Scheduled curate Lambda (issue 11): every hour in the primary region, answers the operators' questions that
have no curated answer for the active prompt version yet (a question `make curate` added, or a prompt activated
or rolled back since), through the same gateway as the chat path, and stores the guardrail-passed ones.

Usually there is nothing to do: one Scan of the curated table and one read of the prompt catalog, no model call.
Questions come from the table (`make curate` stores the list); their text is operators' data, never a user's.
The table is global: the DR region serves what this one wrote.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from adapters.curated_answers import DynamoCuratedAnswers
from core.curated import MAX_QUESTIONS, curate, due
from handlers.entry import built_on_first_call
from handlers.recovery import Handler
from handlers.settings import Settings
from handlers.wiring import build_chat_service, data_client, question_embedder

logger = Logger()
RESERVE_S = 30.0  # a question takes at most the deadline: one is started only with this much more time left


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def bootstrap(
    settings: Settings | None = None, *, dynamodb: Any = None, region: str | None = None, bedrock_factory: Any = None
) -> Handler:
    """The job's composition root: once at cold start, or by the sandbox and the tests with their clients."""
    settings = settings or Settings.from_env()
    if not settings.curated_table_name:
        raise RuntimeError("the curate job is not configured: CURATED_TABLE_NAME is not set")
    dynamodb = dynamodb or data_client("dynamodb")
    region = region or str(dynamodb.meta.region_name)
    service = build_chat_service(
        settings.but(cache_table_name=None), dynamodb=dynamodb, bedrock_factory=bedrock_factory
    )
    store = DynamoCuratedAnswers(client=dynamodb, table_name=settings.curated_table_name)
    embedder = question_embedder(settings, region=region, bedrock_factory=bedrock_factory)

    def handle(event: dict[str, Any], context: LambdaContext | None) -> dict[str, Any]:
        prompt = service.prompts.current()
        todo = due(store.questions(limit=MAX_QUESTIONS), store.load(limit=MAX_QUESTIONS), prompt_version=prompt.version)
        if context is not None:  # as many as the Lambda's time allows; the next run does the rest
            fits = int(max(0.0, context.get_remaining_time_in_millis() / 1000 - RESERVE_S) // settings.deadline_s)
            todo = todo[:fits]
        results = curate(
            todo, model=service.model, prompts=service.prompts, embedder=embedder, store=store,
            deadline_s=settings.deadline_s, clock=_now,
        )  # fmt: skip
        summary = {
            "prompt_version": prompt.version,
            "due": len(todo),
            "stored": sum(r.stored for r in results),
            "not_stored": dict(Counter(r.reason.split(" (")[0] for r in results if not r.stored)),
        }
        logger.info("curate pass", extra=summary)
        return summary

    return handle


handler = built_on_first_call(bootstrap)  # an hourly job: no request waits on its cold start
