"""Value objects of the chat domain. Pure: no AWS imports."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal

from core.errors import InvalidRequest, PayloadTooLarge

Role = Literal["user", "assistant"]
JobStatus = Literal["queued", "running", "done", "failed"]
# Always fullmatch: `$` would also accept a trailing newline ("<uuid>\n").
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


@dataclass(frozen=True, kw_only=True)
class Limits:
    max_message_chars: int
    max_history_turns: int
    max_body_bytes: int


@dataclass(frozen=True, kw_only=True)
class Message:
    role: Role
    text: str


@dataclass(frozen=True, kw_only=True)
class ChatRequest:
    message: str
    conversation_id: str | None = None

    @classmethod
    def parse(cls, body: Any, limits: Limits) -> ChatRequest:
        """Validate a decoded JSON body; every failure names the field and what is allowed."""
        if not isinstance(body, dict):
            raise InvalidRequest('the request body must be a JSON object such as {"message": "Hello"}')
        unknown = set(body) - {"message", "conversation_id"}
        if unknown:  # the count, never the client's key names: the reason is logged
            raise InvalidRequest(f"{len(unknown)} unknown field(s); allowed: message, conversation_id")
        message = body.get("message")
        if message is None:
            raise InvalidRequest("message is required: send the text to ask as a string")
        if not isinstance(message, str):
            raise InvalidRequest(f"message must be a string, got {_json_type(message)}")
        if not message.strip():
            raise InvalidRequest("message must not be empty")
        if len(message) > limits.max_message_chars:
            raise PayloadTooLarge(
                f"message is {len(message)} characters; the limit is {limits.max_message_chars}. "
                "Shorten it or split it over several messages."
            )
        conversation_id = body.get("conversation_id")
        if conversation_id is not None:
            validate_conversation_id(conversation_id)
        return cls(message=message, conversation_id=conversation_id)


def validate_conversation_id(value: Any, *, field: str = "conversation_id") -> str:
    if not isinstance(value, str):
        raise InvalidRequest(f"{field} must be a string, got {_json_type(value)}")
    if not _UUID.fullmatch(value):
        source = "POST /chat" if field == "conversation_id" else "POST /jobs"
        raise InvalidRequest(f"{field} must be a lowercase UUID as returned by {source}")
    return value


def _json_type(value: Any) -> str:
    names = {bool: "a boolean", int: "a number", float: "a number", list: "an array", dict: "an object"}
    return names.get(type(value), type(value).__name__)


@dataclass(frozen=True, kw_only=True)
class TargetRef:
    """Which model target produced an answer."""

    model_id: str
    region: str


@dataclass(frozen=True, kw_only=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens


@dataclass(frozen=True, kw_only=True)
class ModelReply:
    text: str
    usage: Usage
    target: TargetRef
    stop_reason: str = "end_turn"
    degraded: bool = False
    degraded_reason: str | None = None
    # A guardrail assessed the question and this answer (Converse with a guardrail, or ApplyGuardrail on
    # both sides). Only such answers, when the guardrail let them pass, are cached.
    guardrail_checked: bool = False
    cache_key: str | None = None  # set when the answer was cached, so deleting its conversation removes it
    # A streamed answer whose stream broke after its first token: the text is what arrived, never failed over.
    incomplete: bool = False
    incomplete_reason: str | None = None  # short, names the cause (an error code), never the user's text

    @property
    def guardrail_intervened(self) -> bool:
        """A guardrail intervention is an answer, not an error: returned as is, never cached."""
        return self.stop_reason == "guardrail_intervened"

    @property
    def cacheable(self) -> bool:
        return self.guardrail_checked and not self.guardrail_intervened and not self.degraded and not self.incomplete


@dataclass(frozen=True, kw_only=True)
class Citation:
    """A passage of one of the caller's documents that an answer was given with: source `[n]` in the prompt."""

    source: int  # the number the prompt gave the passage: [1], [2], ...
    document_id: str
    name: str | None  # the document's file name, when the catalog knew it
    page: int | None  # 1-based; None for formats without pages
    snippet: str
    score: float

    def to_api(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "document_id": self.document_id,
            "name": self.name,
            "page": self.page,
            "snippet": self.snippet,
            "score": round(self.score, 4),
        }

    @classmethod
    def from_api(cls, raw: dict[str, Any]) -> Citation:
        page = raw.get("page")
        name = raw.get("name")
        return cls(
            source=int(raw["source"]),
            document_id=str(raw["document_id"]),
            name=str(name) if name is not None else None,
            page=int(page) if page is not None else None,
            snippet=str(raw.get("snippet", "")),
            score=float(raw.get("score", 0.0)),
        )


@dataclass(frozen=True, kw_only=True)
class RetrievalReport:
    """Whether an answer was given with passages of the caller's documents, and if not, why not."""

    used: bool
    reason: str | None = None
    passages: int = 0
    # How long the search took (embedding, vector query, naming the cited documents; or until it failed), for the
    # RetrievalLatency metric; not part of the answer the user gets.
    latency_ms: int | None = field(default=None, compare=False)

    def to_api(self) -> dict[str, Any]:
        body: dict[str, Any] = {"used": self.used, "passages": self.passages}
        if self.reason is not None:
            body["reason"] = self.reason
        return body


@dataclass(frozen=True, kw_only=True)
class Turn:
    index: int
    user: str
    assistant: str
    created_at: str
    target: TargetRef
    usage: Usage
    cache_key: str | None = None  # the response-cache entry this turn's answer was stored under, if any
    citations: tuple[Citation, ...] = ()  # the passages the answer was given with
    prompt_version: str | None = None  # the system prompt's catalog version ("builtin": the built-in one)
    incomplete: bool = False  # a streamed answer that broke after its first token: the part that arrived


@dataclass(frozen=True, kw_only=True)
class Conversation:
    conversation_id: str
    title: str
    created_at: str
    updated_at: str
    turn_count: int
    turns: tuple[Turn, ...] = field(default_factory=tuple)
    # Response-cache entries its answers were stored under: removed with the conversation.
    cache_keys: tuple[str, ...] = ()

    def summary(self) -> dict[str, Any]:
        return {
            "conversation_id": self.conversation_id,
            "title": self.title,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "turn_count": self.turn_count,
        }

    def to_api(self) -> dict[str, Any]:
        return {
            **self.summary(),
            "turns": [
                {
                    "index": turn.index,
                    "user": turn.user,
                    "assistant": turn.assistant,
                    "created_at": turn.created_at,
                    "target": {"model_id": turn.target.model_id, "region": turn.target.region},
                    "usage": _usage(turn.usage),
                    "citations": [citation.to_api() for citation in turn.citations],
                    **({"incomplete": True} if turn.incomplete else {}),
                }
                for turn in self.turns
            ],
        }


@dataclass(frozen=True, kw_only=True)
class ChatAnswer:
    conversation_id: str | None  # None when a degraded answer to a new conversation stored nothing
    answer: str
    usage: Usage
    target: TargetRef
    turn: int | None
    degraded: bool = False
    degraded_reason: str | None = None
    guardrail_intervened: bool = False
    saved: bool = True  # False when the turn is not in the history: degraded, or its write failed
    save_error: str | None = None  # why the write failed (the answer is given all the same)
    citations: tuple[Citation, ...] = ()  # the passages of the caller's documents the answer was given with
    retrieval: RetrievalReport | None = None  # None where retrieval is not configured
    matched_question: str | None = None  # a curated answer: the operators' question it answers
    # A streamed answer that broke after its first token: the partial text, marked so and offered for a retry.
    incomplete: bool = False
    incomplete_reason: str | None = None

    def to_api(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "conversation_id": self.conversation_id,
            "answer": self.answer,
            "usage": _usage(self.usage),
            "target": {"model_id": self.target.model_id, "region": self.target.region},
            "turn": self.turn,
            "degraded": self.degraded,
            "guardrail_intervened": self.guardrail_intervened,
            "saved": self.saved,
            "citations": [citation.to_api() for citation in self.citations],
        }
        if self.retrieval is not None:
            body["retrieval"] = self.retrieval.to_api()
        if self.degraded:
            body["degraded_reason"] = self.degraded_reason
        if self.save_error is not None:
            body["save_error"] = self.save_error
        if self.matched_question is not None:
            body["matchedQuestion"] = self.matched_question
        if self.incomplete:
            body["incomplete"] = True
            body["incompleteReason"] = self.incomplete_reason
            body["retry"] = True
        return body


def _usage(usage: Usage) -> dict[str, int]:
    return {
        "input_tokens": usage.input_tokens,
        "output_tokens": usage.output_tokens,
        "total_tokens": usage.total_tokens,
    }


@dataclass(frozen=True, kw_only=True)
class Job:
    job_id: str
    user_id: str
    message: str
    conversation_id: str | None
    status: JobStatus
    created_at: float
    updated_at: float
    enqueued: bool = False
    answer: dict[str, Any] | None = None
    reason: str | None = None
    requeues: int = 0
    # Disaster recovery: the region whose queue holds the job (the one that accepted it, until another region
    # adopts it after that region went quiet) and when that region last showed it was working on the job.
    # The heartbeat is kept only while the job is open, so only open jobs are in the recovery index.
    owner_region: str | None = None
    heartbeat_at: float | None = None
    accepted_in: str | None = None  # the region that accepted the job; never changes
    # "chat" (one answer through the gateway) or "summarize" (a durable workflow over `document_id`, whose
    # progress, steps done of total, is written while it runs: core.workflow).
    kind: str = "chat"
    document_id: str | None = None
    progress: dict[str, int] | None = None

    @property
    def open(self) -> bool:
        return self.status in ("queued", "running")

    def to_api(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "job_id": self.job_id,
            "status": self.status,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }
        if self.answer is not None:
            body["result"] = self.answer
        if self.reason is not None:
            body["reason"] = self.reason
        if self.kind != "chat":
            body["kind"] = self.kind
            body["document_id"] = self.document_id
        if self.progress is not None:
            body["progress"] = self.progress
        return body


@dataclass(frozen=True, kw_only=True)
class OpenJob:
    """An unfinished job as the recovery index shows it: who owns it and since when, never its text."""

    job_id: str
    user_id: str
    status: JobStatus
    created_at: float
    owner_region: str
    heartbeat_at: float
    enqueued: bool
