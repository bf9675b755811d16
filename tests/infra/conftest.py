"""Infra tests share the session-wide synth from tests/conftest.py."""

from __future__ import annotations

from tests.conftest import Synth, cdk_context, synth

__all__ = ["Synth", "cdk_context", "synth"]
