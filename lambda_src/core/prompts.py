"""The prompt catalog: system prompts as versioned data, one active version per environment. Pure: no AWS imports.

Versions are immutable and numbered "1", "2", ...; each environment points at one of them and remembers the
versions it pointed at before, so a rollback is one step back. When the catalog has no active version for the
environment, or cannot be read, the Lambdas answer with the built-in prompt, recorded as version "builtin".
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

from core.errors import Conflict, InvalidRequest, NotFound

BUILTIN_VERSION = "builtin"
BUILTIN_PROMPT = (
    "You are Bulwark, a concise and honest assistant. If you do not know, say so. "
    "Answer in the language of the question."
)
DEFAULT_PROMPT_NAME = "system"
MAX_PROMPT_CHARS = 20_000
HISTORY_LIMIT = 20  # earlier active versions an environment remembers (rollbacks in a row)
_VERSION = re.compile(r"[1-9][0-9]{0,5}")
_ENVIRONMENT = re.compile(r"[A-Za-z][A-Za-z0-9-]{0,39}")
_log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class PromptVersion:
    version: str
    text: str


BUILTIN = PromptVersion(version=BUILTIN_VERSION, text=BUILTIN_PROMPT)


@dataclass(frozen=True, kw_only=True)
class Activation:
    """An environment's pointer: its active version and the versions active before it (most recent last)."""

    version: str
    history: tuple[str, ...] = ()


def validate_version(value: str) -> str:
    if not isinstance(value, str) or not _VERSION.fullmatch(value):
        raise InvalidRequest(f"a prompt version is a number such as 1 or 12, got {value!r}")
    return value


def validate_environment(value: str) -> str:
    if not isinstance(value, str) or not _ENVIRONMENT.fullmatch(value):
        raise InvalidRequest(f"an environment is 1-40 letters, digits or hyphens starting with a letter, got {value!r}")
    return value


def validate_text(text: str) -> str:
    if not isinstance(text, str) or not text.strip():
        raise InvalidRequest("a prompt must be non-empty text")
    if len(text) > MAX_PROMPT_CHARS:
        raise InvalidRequest(f"a prompt is at most {MAX_PROMPT_CHARS} characters, got {len(text)}")
    return text


def next_version(existing: Iterable[str]) -> str:
    """The number after the highest version stored (versions are never reused, even after a rollback)."""
    return str(max((int(version) for version in existing), default=0) + 1)


def activate(current: Activation | None, version: str) -> Activation:
    """Point at `version`; the version active until now becomes the one a rollback returns to."""
    validate_version(version)
    if current is None:
        return Activation(version=version)
    if current.version == version:
        raise Conflict(f"version {version} is already active")
    return Activation(version=version, history=(*current.history, current.version)[-HISTORY_LIMIT:])


def rollback(current: Activation | None) -> Activation:
    """Back to the version that was active before the current one."""
    if current is None or not current.history:
        raise NotFound("nothing to roll back to: no version was active before the current one")
    return Activation(version=current.history[-1], history=current.history[:-1])


class PromptSource(Protocol):
    def active(self, environment: str) -> PromptVersion | None:
        """The environment's active version; None when the catalog has none for it."""
        ...


class PromptProvider(Protocol):
    def current(self, *, budget_s: float | None = None) -> PromptVersion: ...


class FixedPrompt:
    """The built-in prompt (or any fixed one): where no catalog is configured."""

    def __init__(self, prompt: PromptVersion = BUILTIN) -> None:
        self._prompt = prompt

    def current(self, *, budget_s: float | None = None) -> PromptVersion:
        return self._prompt


@dataclass(frozen=True, kw_only=True)
class PromptCacheSettings:
    ttl_s: float = 30.0  # a new activation or a rollback reaches every execution environment within this
    retry_after_error_s: float = 5.0  # after a failed read, the last known prompt serves this long untried
    read_worst_case_s: float = 1.0  # the longest one catalog read can take (its client's timeouts and retries)


class ActivePrompt:
    """The environment's active prompt, read once per execution environment and then every `ttl_s`.

    Never fails a request: when the catalog cannot be read (or the request has too little time left for a
    read) the last prompt read is used, or the built-in one before any read succeeded. A read happens on the
    first request, not at import: the init phase stays cheap and a snapshot never holds a stale prompt.
    """

    def __init__(
        self,
        *,
        source: PromptSource,
        environment: str,
        settings: PromptCacheSettings | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._source = source
        self._environment = validate_environment(environment)
        self._settings = settings or PromptCacheSettings()
        self._clock = clock
        self._prompt: PromptVersion = BUILTIN
        self._next_read: float | None = None  # None: never read
        self._lock = threading.Lock()

    def current(self, *, budget_s: float | None = None) -> PromptVersion:
        """The prompt to answer with. `budget_s`: the request's time left; a read is tried only when the
        worst case of one read takes at most half of it."""
        now = self._clock()
        if self._next_read is not None and now < self._next_read:
            return self._prompt
        if budget_s is not None and budget_s < 2 * self._settings.read_worst_case_s:
            return self._prompt  # not now: the next request with time to spare reads it
        if not self._lock.acquire(blocking=False):
            return self._prompt  # another request is reading it
        try:
            try:
                found = self._source.active(self._environment)
            except Exception as error:
                code = getattr(error, "response", {}).get("Error", {}).get("Code") or type(error).__name__
                _log.warning("prompt catalog unavailable (%s); answering with prompt %s", code, self._prompt.version)
                self._next_read = self._clock() + self._settings.retry_after_error_s
                return self._prompt
            self._prompt = found or BUILTIN
            self._next_read = self._clock() + self._settings.ttl_s
            return self._prompt
        finally:
            self._lock.release()
