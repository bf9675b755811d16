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
    jobs_table_name: str | None = None
    jobs_queue_url: str | None = None
    idempotency_table_name: str | None = None
    job_max_age_s: float = 3600.0
    job_deadline_s: float = 90.0
    job_backoff_s: int = 5  # first requeue delay of a job the model could not answer; doubles
    breaker_open_s: float = 30.0
    worker_rate_per_s: float | None = None  # model calls per second this environment may start
    max_receive_count: int = 4  # the queue's redrive policy; the worker fails the job on the last receive
    shed_to_jobs: bool = False  # when every breaker is open: accept /chat as a job (202) instead of 503
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
            jobs_table_name=env.get("JOBS_TABLE_NAME") or None,
            jobs_queue_url=env.get("JOBS_QUEUE_URL") or None,
            idempotency_table_name=env.get("IDEMPOTENCY_TABLE_NAME") or None,
            job_max_age_s=float(env.get("JOB_MAX_AGE_SECONDS", "3600")),
            job_deadline_s=float(env.get("JOB_DEADLINE_SECONDS", "90")),
            shed_to_jobs=env.get("SHED_TO_JOBS", "false").lower() == "true",
            max_receive_count=int(env.get("MAX_RECEIVE_COUNT", "4")),
            worker_rate_per_s=float(env["WORKER_RATE_PER_SECOND"]) if env.get("WORKER_RATE_PER_SECOND") else None,
            job_backoff_s=int(env.get("JOB_BACKOFF_SECONDS", "5")),
            breaker_open_s=float(env.get("BREAKER_OPEN_SECONDS", "30")),
            degraded_status=int(env.get("DEGRADED_STATUS", "200")),
        )
