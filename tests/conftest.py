"""Shared test set-up: no real AWS, no network beyond loopback."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, Stack
from aws_cdk.assertions import Template

# Set before any handler module is imported: handlers read their settings at cold start. The
# Lambda variables come from the environment contract (handlers.settings), like the stacks' do.
from handlers.settings import Settings, TargetSetting

TEST_SETTINGS = Settings(
    table_name="conversations-test",
    targets=(TargetSetting(model_id="us.amazon.nova-lite-v1:0", region="us-east-1", max_tokens=512),),
    max_message_chars=200,
    max_history_turns=3,
    max_body_bytes=2048,
    deadline_s=25.0,
    cache_table_name="cache-test",
    jobs_table_name="jobs-test",
    jobs_queue_url="https://sqs.us-east-1.amazonaws.com/123456789012/jobs-test",
    idempotency_table_name="idempotency-test",
    usage_table_name="usage-test",
    # Off here: many tests say "hi" to reach the model. The greetings tests turn it on (tests/*/test_greetings*.py).
    greetings_enabled=False,
)
_TEST_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "POWERTOOLS_TRACE_DISABLED": "true",
    "POWERTOOLS_METRICS_NAMESPACE": "BulwarkTest",
    "POWERTOOLS_SERVICE_NAME": "chat",
    **TEST_SETTINGS.to_env(),
}
for _key, _value in _TEST_ENV.items():
    os.environ[_key] = _value
# Never let a developer's own profile or config leak into a test.
for _key in ("AWS_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
    os.environ.pop(_key, None)


ROOT = Path(__file__).resolve().parents[1]


def cdk_context(**overrides: Any) -> dict[str, Any]:
    context = json.loads((ROOT / "cdk.json").read_text())["context"]
    context["aws:cdk:bundling-stacks"] = []  # no pip bundling in tests
    for key, value in overrides.items():
        context["bulwark"] = {**context["bulwark"], key: value}
    return context


class Synth:
    def __init__(self, app: App) -> None:
        self.app = app
        self.stacks = {child.stack_name: child for child in app.node.children if isinstance(child, Stack)}
        self._templates: dict[str, Template] = {}

    def template(self, name: str) -> Template:
        if name not in self._templates:
            self._templates[name] = Template.from_stack(self.stacks[name])
        return self._templates[name]


@pytest.fixture(scope="session")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    """Synthesize the whole app once per session (no bundling), with all three cdk-nag packs."""
    from app import build_app

    app = App(context=cdk_context(), outdir=str(tmp_path_factory.mktemp("cdk.out")))
    build_app(app)
    app.synth()
    return Synth(app)
