"""The prompt catalog's pure parts: version numbers, activation and rollback, and the cached reader."""

from __future__ import annotations

import pytest

from core.errors import Conflict, InvalidRequest, NotFound
from core.prompts import (
    BUILTIN,
    HISTORY_LIMIT,
    MAX_PROMPT_CHARS,
    Activation,
    ActivePrompt,
    PromptCacheSettings,
    PromptVersion,
    activate,
    next_version,
    rollback,
    validate_environment,
    validate_text,
    validate_version,
)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Source:
    """A catalog whose answer (a version, None, or an exception) the test sets; counts the reads."""

    def __init__(self, answer: PromptVersion | Exception | None = None) -> None:
        self.answer = answer
        self.reads = 0

    def active(self, environment: str) -> PromptVersion | None:
        self.reads += 1
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


V1 = PromptVersion(version="1", text="first")
V2 = PromptVersion(version="2", text="second")
SETTINGS = PromptCacheSettings(ttl_s=30, retry_after_error_s=5, read_worst_case_s=1)


def test_versions_are_numbered_after_the_highest_and_never_reused() -> None:
    assert next_version([]) == "1"
    assert next_version(["1", "2", "10", "9"]) == "11"


@pytest.mark.parametrize("bad", ["0", "01", "v1", "latest", "", "1.0", "1234567"])
def test_a_version_is_a_plain_number(bad: str) -> None:
    with pytest.raises(InvalidRequest, match="number"):
        validate_version(bad)


def test_text_and_environment_are_checked() -> None:
    assert validate_text("hello") == "hello" and validate_environment("prod-eu") == "prod-eu"
    with pytest.raises(InvalidRequest):
        validate_text("  ")
    with pytest.raises(InvalidRequest, match=str(MAX_PROMPT_CHARS)):
        validate_text("x" * (MAX_PROMPT_CHARS + 1))
    with pytest.raises(InvalidRequest):
        validate_environment("1dev")


def test_activation_remembers_the_previous_version_and_rollback_returns_to_it() -> None:
    first = activate(None, "1")
    second = activate(first, "2")
    third = activate(second, "3")

    assert third == Activation(version="3", history=("1", "2"))
    assert rollback(third) == Activation(version="2", history=("1",))
    assert rollback(rollback(third)) == Activation(version="1", history=())
    with pytest.raises(NotFound, match="nothing to roll back"):
        rollback(first)
    with pytest.raises(NotFound):
        rollback(None)
    with pytest.raises(Conflict, match="already active"):
        activate(third, "3")


def test_history_is_bounded() -> None:
    state = activate(None, "1")
    for version in range(2, HISTORY_LIMIT + 5):
        state = activate(state, str(version))

    assert len(state.history) == HISTORY_LIMIT and state.history[-1] == str(HISTORY_LIMIT + 3)


def test_read_once_then_cached_for_the_ttl_then_read_again() -> None:
    clock, source = Clock(), Source(V1)
    prompts = ActivePrompt(source=source, environment="dev", settings=SETTINGS, clock=clock)

    assert prompts.current() == V1
    source.answer = V2
    clock.now += 29.9
    assert prompts.current() == V1 and source.reads == 1  # inside the TTL: no read
    clock.now += 0.2
    assert prompts.current() == V2 and source.reads == 2


def test_no_active_version_means_the_builtin_prompt() -> None:
    prompts = ActivePrompt(source=Source(None), environment="dev", settings=SETTINGS, clock=Clock())

    assert prompts.current() == BUILTIN and BUILTIN.version == "builtin"


def test_an_unreachable_catalog_keeps_the_last_prompt_and_waits_before_trying_again() -> None:
    clock, source = Clock(), Source(ConnectionError("down"))
    prompts = ActivePrompt(source=source, environment="dev", settings=SETTINGS, clock=clock)

    assert prompts.current() == BUILTIN  # never read: the built-in prompt, the request is not failed
    assert prompts.current() == BUILTIN and source.reads == 1  # not retried on every request
    source.answer = V1
    clock.now += 5.1
    assert prompts.current() == V1
    source.answer = RuntimeError("throttled")
    clock.now += 31
    assert prompts.current() == V1  # a failed refresh keeps the last prompt read


def test_a_read_is_skipped_when_the_request_has_too_little_time_left() -> None:
    clock, source = Clock(), Source(V1)
    prompts = ActivePrompt(source=source, environment="dev", settings=SETTINGS, clock=clock)

    assert prompts.current(budget_s=1.5) == BUILTIN and source.reads == 0  # worst case 1 s > half of 1.5 s
    assert prompts.current(budget_s=20) == V1 and source.reads == 1
