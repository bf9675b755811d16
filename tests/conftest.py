"""Shared test set-up: no real AWS, no network beyond loopback."""

from __future__ import annotations

import os

# Set before any handler module is imported: handlers read their settings at cold start.
_TEST_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "POWERTOOLS_TRACE_DISABLED": "true",
    "POWERTOOLS_METRICS_NAMESPACE": "BulwarkTest",
    "POWERTOOLS_SERVICE_NAME": "chat",
    "TABLE_NAME": "conversations-test",
    "MODEL_TARGETS": '[{"model_id": "us.amazon.nova-lite-v1:0", "region": "us-east-1", "max_tokens": 512}]',
    "MAX_MESSAGE_CHARS": "200",
    "MAX_HISTORY_TURNS": "3",
    "MAX_BODY_BYTES": "2048",
    "DEADLINE_SECONDS": "25",
}
for _key, _value in _TEST_ENV.items():
    os.environ[_key] = _value
# Never let a developer's own profile or config leak into a test.
for _key in ("AWS_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
    os.environ.pop(_key, None)
