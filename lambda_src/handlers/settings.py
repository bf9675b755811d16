"""Runtime settings from the environment the stack sets; read once per cold start."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass

from core.models import Limits


@dataclass(frozen=True, kw_only=True)
class TargetSetting:
    model_id: str  # what Converse is called with (an id, or an application/provisioned ARN)
    region: str
    max_tokens: int
    guardrail: tuple[str, str] | None = None  # (identifier, version) in the target's region
    langchain: dict[str, object] | None = None  # {"class": "pkg.module:Class", "kwargs": {...}}


@dataclass(frozen=True, kw_only=True)
class Settings:
    table_name: str
    targets: tuple[TargetSetting, ...]
    limits: Limits
    deadline_s: float
    cache_table_name: str | None = None
    degraded_status: int = 200  # 200: answer with the degraded flag; 503: refuse with Retry-After

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        targets = tuple(
            TargetSetting(
                model_id=t["model_id"],
                region=t["region"],
                max_tokens=int(t["max_tokens"]),
                guardrail=(t["guardrail_id"], str(t["guardrail_version"])) if t.get("guardrail_id") else None,
                langchain=t.get("langchain"),
            )
            for t in json.loads(env["MODEL_TARGETS"])
        )
        if not targets:
            raise ValueError("MODEL_TARGETS must list at least one target")
        return cls(
            table_name=env["TABLE_NAME"],
            targets=targets,
            limits=Limits(
                max_message_chars=int(env.get("MAX_MESSAGE_CHARS", "8000")),
                max_history_turns=int(env.get("MAX_HISTORY_TURNS", "20")),
                max_body_bytes=int(env.get("MAX_BODY_BYTES", "65536")),
            ),
            deadline_s=float(env.get("DEADLINE_SECONDS", "25")),
            cache_table_name=env.get("CACHE_TABLE_NAME") or None,
            degraded_status=int(env.get("DEGRADED_STATUS", "200")),
        )
