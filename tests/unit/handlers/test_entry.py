"""Entry points built on their first invocation (handlers/entry.py)."""

from __future__ import annotations

from typing import Any

import pytest

from handlers.entry import built_on_first_call


def test_the_handler_is_built_once_on_the_first_call_and_kept() -> None:
    builds: list[int] = []

    def build() -> Any:
        builds.append(1)
        return lambda event, context: ("answered", event, len(builds))

    handler = built_on_first_call(build)
    assert builds == []  # nothing at import
    assert handler("e1", None) == ("answered", "e1", 1)
    assert handler("e2", None) == ("answered", "e2", 1)
    assert builds == [1]


def test_a_failed_build_keeps_nothing_and_the_next_call_tries_again() -> None:
    attempts: list[int] = []

    def build() -> Any:
        attempts.append(1)
        if len(attempts) == 1:
            raise KeyError("SOME_TABLE_NAME")
        return lambda event, context: "answered"

    handler = built_on_first_call(build)
    with pytest.raises(KeyError, match="SOME_TABLE_NAME"):
        handler({}, None)
    assert handler({}, None) == "answered" and len(attempts) == 2
