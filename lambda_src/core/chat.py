"""The chat use case: load own history, ask the model, store the turn."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Protocol

from core.errors import AtCapacity, Conflict, DependencyUnavailable, NotFound, Overloaded
from core.gateway import CACHE_TARGET, NONE_TARGET
from core.greetings import GREETING_TARGET, Greeting, GreetingFilter
from core.models import (
    ChatAnswer,
    ChatRequest,
    Conversation,
    Limits,
    Message,
    ModelReply,
    TargetRef,
    Turn,
    Usage,
    validate_conversation_id,
)
from core.ports import ChatModel, ConversationResidue, ConversationStore, ReplyStream
from core.prompts import BUILTIN_PROMPT, FixedPrompt, PromptProvider
from core.retrieval import PASSAGES_TARGET, Retrieval, Retriever, extractive_answer, grounded_system_prompt

if TYPE_CHECKING:  # core.curated is loaded by whoever builds curated answers, not by every cold start
    from core.curated import CuratedMatch
    from core.drift import DriftObserver


class CuratedSource(Protocol):
    """What the chat path asks of curated answers (core.curated.CuratedAnswers, or a deferred one)."""

    def embed(self, question: str, *, budget_s: float) -> tuple[float, ...] | None: ...

    def match(self, vector: Sequence[float] | None, *, prompt_version: str, budget_s: float) -> CuratedMatch | None: ...


SYSTEM_PROMPT = BUILTIN_PROMPT  # the built-in prompt (version "builtin"); the catalog's active version wins
_TITLE_CHARS = 80
_log = logging.getLogger(__name__)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class _LiveEmitter:
    """The stream's events as they happen: `start` at most once, then deltas."""

    def __init__(self, emit: Callable[[dict[str, object]], None]) -> None:
        self._emit = emit
        self.started = False

    def start(self, conversation_id: str | None, target: TargetRef) -> None:
        self.started = True
        self._emit(
            {
                "type": "start",
                "conversationId": conversation_id,
                "target": {"model_id": target.model_id, "region": target.region},
            }
        )

    def delta(self, text: str) -> None:
        if text:
            self._emit({"type": "delta", "text": text})


def _read_all(stream: ReplyStream) -> ModelReply:
    for _ in stream:
        pass
    return stream.reply()


def cache_scope(user_id: str, retrieval: Retrieval | None, prompt_version: str | None = None) -> str:
    """The answer cache's scope: the user and, with retrieval, what the answer was built from (whether the
    documents were searched, which document versions were passed). A cached answer is served only while the
    same search would give the model the same sources: never once its document is deleted or replaced. With
    `prompt_version`, only while the same system prompt is active (a rollback never serves the other's)."""
    scope = user_id if retrieval is None else f"{user_id}|{retrieval.fingerprint}"
    return scope if prompt_version is None else f"{scope}|prompt={prompt_version}"


class ChatService:
    def __init__(
        self,
        *,
        store: ConversationStore,
        model: ChatModel,
        limits: Limits,
        deadline_s: float,
        clock: Callable[[], str] = _now,
        new_id: Callable[[], str] = lambda: str(uuid.uuid4()),
        timer: Callable[[], float] = time.monotonic,
        store_reserve_s: float = 0.0,
        residue: ConversationResidue | None = None,
        retriever: Retriever | None = None,
        prompts: PromptProvider | None = None,
        curated: CuratedSource | None = None,
        greetings: GreetingFilter | None = None,
        on_greeting: Callable[[str], None] | None = None,
        drift: DriftObserver | None = None,
    ) -> None:
        self._store = store
        self._drift = drift  # per-request numbers for the drift baselines (core.drift); None: not recorded
        self._curated = curated  # operators' curated answers: served when no model can answer
        self._greetings = greetings  # greetings and thanks answered without a model call; None: all to the model
        self._on_greeting = on_greeting  # counts them by kind (a metric); never sees the message
        self._prompts = prompts or FixedPrompt()  # the prompt catalog's active version, cached
        self._retriever = retriever  # the caller's documents as context; None: answers from the model alone
        self._residue = residue  # the conversation's text outside its table: cached answers, jobs
        self._model = model
        self._limits = limits
        self._deadline_s = deadline_s
        self._clock = clock
        self._new_id = new_id
        self._timer = timer
        # The longest one store call can take (its client's attempts, timeouts and backoff): kept free after
        # the model's deadline, so the turn's write still ends before the Lambda does.
        self._store_reserve_s = store_reserve_s

    @property
    def model(self) -> ChatModel:
        """The model port (the gateway in Lambda), for the deep health route to read its breakers."""
        return self._model

    @property
    def prompts(self) -> PromptProvider:
        """The active prompt's provider, for `make curate` to answer with the same prompt."""
        return self._prompts

    def answer(self, *, user_id: str, request: ChatRequest, remaining_s: float | None = None) -> ChatAnswer:
        """Answer one message. `remaining_s` is the Lambda's remaining time, if known.

        One deadline for the whole request: reading the history comes out of the model's time, and the
        turn's write keeps its reserve inside the Lambda's remaining time. A turn that cannot be stored
        after the model answered is answered all the same (`saved` false, with the reason): the user
        paid for it. Only a concurrent write (Conflict, 409) refuses the answer.
        """
        answer, retrieval = self._answer(user_id, request, remaining_s)
        if self._drift is not None:
            self._drift.observe(request.message, retrieval, answer)
        return answer

    def stream(
        self,
        *,
        user_id: str,
        request: ChatRequest,
        emit: Callable[[dict[str, object]], None],
        remaining_s: float | None = None,
    ) -> ChatAnswer:
        """`answer`, emitted as it is written: `start` (once the answering target's first token is known to
        come: failover, hedging and the breakers act before it), `delta`s, then `end` with the answer's body
        and `incomplete`. A stream that breaks after its first token ends with the text that arrived, marked
        incomplete in the answer and in the stored turn, with a retry offered. Errors before the first token
        raise as `answer` does. An answer that is whole at once (a greeting, a cached, curated or degraded one)
        is one start, one delta and the end; its start names the conversation as the end does (None when a
        degraded answer to a new conversation stored nothing)."""
        live = _LiveEmitter(emit)
        answer, retrieval = self._answer(user_id, request, remaining_s, live)
        if self._drift is not None:
            self._drift.observe(request.message, retrieval, answer)
        if not live.started:
            live.start(answer.conversation_id, answer.target)
            if answer.answer:
                emit({"type": "delta", "text": answer.answer})
        emit({"type": "end", **answer.to_api(), "incomplete": answer.incomplete})
        return answer

    def _answer(
        self, user_id: str, request: ChatRequest, remaining_s: float | None, live: _LiveEmitter | None = None
    ) -> tuple[ChatAnswer, Retrieval | None]:
        started = self._timer()
        if request.conversation_id is None:
            conversation_id, history, turn_count = self._new_id(), [], 0
            title = request.message.strip().splitlines()[0][:_TITLE_CHARS]
        else:
            existing = self._store.get(user_id, request.conversation_id, last_turns=self._limits.max_history_turns)
            if existing is None:
                raise NotFound(f"conversation {request.conversation_id} was not found")
            conversation_id, turn_count, title = existing.conversation_id, existing.turn_count, existing.title
            history = [
                message
                for turn in existing.turns
                for message in (Message(role="user", text=turn.user), Message(role="assistant", text=turn.assistant))
            ]
        greeting = self._greetings.classify(request.message) if self._greetings is not None else None
        if greeting is not None:  # before retrieval and the model: neither is needed
            return self._greet(user_id, request, greeting, conversation_id, turn_count, title), None
        budget = self._deadline_s if remaining_s is None else min(self._deadline_s, remaining_s - self._store_reserve_s)
        retrieval: Retrieval | None = None
        if self._retriever is not None:
            # Its own short deadline, out of the request's: whatever it finds (or not), the model still answers.
            retrieval = self._retriever.retrieve(
                user_id, request.message, deadline_s=budget - (self._timer() - started)
            )
        prompt = self._prompts.current(budget_s=budget - (self._timer() - started))
        deadline = max(0.0, budget - (self._timer() - started))
        system = grounded_system_prompt(prompt.text, retrieval) if retrieval else prompt.text
        messages = [*history, Message(role="user", text=request.message)]
        scope = cache_scope(user_id, retrieval, prompt.version)
        report = retrieval.report if retrieval else None
        try:
            if live is None:
                reply = self._model.converse(system=system, messages=messages, deadline_s=deadline, scope=scope)
            else:
                reply = self._streamed(live, conversation_id, system, messages, deadline, scope)
        except Overloaded as error:
            # Every breaker open: no target can answer. Back-pressure (at capacity) stays a 429: retry soon.
            if isinstance(error, AtCapacity):
                raise
            curated = self._curated_answer(request, retrieval, prompt.version, budget - (self._timer() - started))
            if curated is None:
                raise
            return replace(curated, degraded_reason=f"curated answer: {error.message}", retrieval=report), retrieval
        citations = retrieval.citations if retrieval else ()
        if reply.degraded and reply.target in (NONE_TARGET, CACHE_TARGET):
            # No model answered: the operators' curated answer, if the question is close to one, comes first.
            curated = self._curated_answer(request, retrieval, prompt.version, budget - (self._timer() - started))
            if curated is not None:
                return replace(
                    curated, degraded_reason=f"curated answer: {reply.degraded_reason}", retrieval=report
                ), retrieval
        if reply.degraded:
            text, target = reply.text, reply.target
            if retrieval and retrieval.citations and reply.target == NONE_TARGET:
                # No model and no cached answer: quote the best passages rather than only apologise.
                text, target = extractive_answer(retrieval), TargetRef(model_id=PASSAGES_TARGET, region="-")
            else:
                citations = ()  # a canned or cached answer: not written from these passages
            # Not stored: a degraded answer must not become history the model later builds on.
            return ChatAnswer(
                conversation_id=conversation_id if request.conversation_id else None,
                answer=text,
                usage=reply.usage,
                target=target,
                turn=None,
                degraded=True,
                degraded_reason=reply.degraded_reason,
                saved=False,
                citations=citations,
                retrieval=report,
            ), retrieval
        turn = Turn(
            index=turn_count,
            user=request.message,
            assistant=reply.text,
            created_at=self._clock(),
            target=reply.target,
            usage=reply.usage,
            cache_key=reply.cache_key,
            citations=citations,
            prompt_version=prompt.version,
            incomplete=reply.incomplete,
        )
        try:
            self._store.append_turn(user_id, conversation_id, expected_turns=turn_count, turn=turn, title=title)
        except Conflict:
            raise
        except Exception as error:
            return replace(self._unsaved(request, reply, error), citations=citations, retrieval=report), retrieval
        return ChatAnswer(
            conversation_id=conversation_id,
            answer=reply.text,
            usage=reply.usage,
            target=reply.target,
            turn=turn_count,
            guardrail_intervened=reply.guardrail_intervened,
            citations=citations,
            retrieval=report,
            incomplete=reply.incomplete,
            incomplete_reason=reply.incomplete_reason,
        ), retrieval

    def _streamed(
        self,
        live: _LiveEmitter,
        conversation_id: str,
        system: str,
        messages: list[Message],
        deadline: float,
        scope: str,
    ) -> ModelReply:
        """The model's answer read from its stream, emitted as it comes. A whole answer (cached, degraded) is
        not emitted here: the caller may still put a curated answer in its place."""
        stream = self._model.stream(system=system, messages=messages, deadline_s=deadline, scope=scope)
        if stream.target in (NONE_TARGET, CACHE_TARGET):
            return _read_all(stream)
        try:
            live.start(conversation_id, stream.target)
            for chunk in stream:
                live.delta(chunk)
        finally:
            stream.close()  # a no-op after the end; otherwise (the emit failed) the model stream is released
        return stream.reply()

    def _curated_answer(
        self, request: ChatRequest, retrieval: Retrieval | None, prompt_version: str, budget_s: float
    ) -> ChatAnswer | None:
        """The closest curated answer above the threshold, or None. The question's embedding is the retrieval's
        when it computed one; when retrieval ran and could not embed, embedding is down: no match."""
        if self._curated is None:
            return None
        if retrieval is not None:
            vector = retrieval.embedding
        else:
            vector = self._curated.embed(request.message, budget_s=budget_s)
        match = self._curated.match(vector, prompt_version=prompt_version, budget_s=budget_s)
        if match is None:
            return None
        from core.curated import CURATED_TARGET  # loaded already: it built self._curated

        return ChatAnswer(
            conversation_id=request.conversation_id,
            answer=match.entry.answer,
            usage=Usage(),
            target=CURATED_TARGET,
            turn=None,
            degraded=True,
            saved=False,
            matched_question=match.entry.question,
        )

    def _greet(
        self, user_id: str, request: ChatRequest, greeting: Greeting, conversation_id: str, turn_count: int, title: str
    ) -> ChatAnswer:
        """The configured reply, stored as a turn like any other (the history stays whole), no tokens used."""
        if self._on_greeting is not None:
            self._on_greeting(greeting.kind)
        reply = ModelReply(text=greeting.reply, usage=Usage(), target=GREETING_TARGET)
        turn = Turn(
            index=turn_count,
            user=request.message,
            assistant=greeting.reply,
            created_at=self._clock(),
            target=GREETING_TARGET,
            usage=Usage(),
        )
        try:
            self._store.append_turn(user_id, conversation_id, expected_turns=turn_count, turn=turn, title=title)
        except Conflict:
            raise
        except Exception as error:
            return self._unsaved(request, reply, error)
        return ChatAnswer(
            conversation_id=conversation_id,
            answer=greeting.reply,
            usage=Usage(),
            target=GREETING_TARGET,
            turn=turn_count,
        )

    def _unsaved(self, request: ChatRequest, reply: ModelReply, error: Exception) -> ChatAnswer:
        """The answer without its turn in the history: nothing the user paid for is thrown away."""
        if isinstance(error, DependencyUnavailable):
            reason = f"{error.message}. The answer is not in your history: keep a copy if you need it"
        else:
            _log.exception("the turn could not be stored; answering without it")
            reason = "the conversation store failed unexpectedly. The answer is not in your history"
        return ChatAnswer(
            conversation_id=request.conversation_id,  # a new conversation was not created
            answer=reply.text,
            usage=reply.usage,
            target=reply.target,
            turn=None,
            guardrail_intervened=reply.guardrail_intervened,
            saved=False,
            save_error=reason,
            incomplete=reply.incomplete,
            incomplete_reason=reply.incomplete_reason,
        )

    def list_conversations(self, *, user_id: str) -> list[dict[str, object]]:
        return [conversation.summary() for conversation in self._store.list(user_id)]

    def get_conversation(self, *, user_id: str, conversation_id: str) -> Conversation:
        validate_conversation_id(conversation_id)
        conversation = self._store.get(user_id, conversation_id)
        if conversation is None:
            raise NotFound(f"conversation {conversation_id} was not found")
        return conversation

    def delete_conversation(self, *, user_id: str, conversation_id: str) -> None:
        """Delete the conversation and every copy of its text the app keeps elsewhere (cached answers, its
        jobs and their idempotency records). Backups keep theirs until they expire (README)."""
        validate_conversation_id(conversation_id)
        header = self._store.get(user_id, conversation_id, last_turns=0)
        deleted = self._store.delete(user_id, conversation_id)
        if self._residue is not None:
            # Also when nothing was left to delete: a delete retried after a failed cleanup finishes it.
            self._residue.purge(user_id, conversation_id, cache_keys=header.cache_keys if header else ())
        if not deleted:
            raise NotFound(f"conversation {conversation_id} was not found")
