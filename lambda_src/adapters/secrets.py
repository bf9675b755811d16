"""Provider credentials from Secrets Manager, read once at cold start, only for targets that name a secret.

The secret holds a JSON object (e.g. {"api_key": "..."}) whose keys are passed to the provider's chat
model constructor. It never enters the template, the Lambda environment, logs or traces.
"""

from __future__ import annotations

import json
from typing import Any


class SecretFormatError(ValueError):
    """The secret exists but does not hold a JSON object of constructor arguments."""


def provider_kwargs(client: Any, secret_id: str) -> dict[str, Any]:
    """The constructor arguments stored in `secret_id` (an ARN or a name)."""
    text = client.get_secret_value(SecretId=secret_id).get("SecretString")
    try:
        parsed = json.loads(text) if isinstance(text, str) else None
    except json.JSONDecodeError:
        parsed = None
    if not isinstance(parsed, dict):
        # Never echo the value: it is a credential, however malformed.
        raise SecretFormatError(
            f'secret {secret_id} must hold a JSON object of constructor arguments as text, such as {{"api_key": "..."}}'
        )
    return parsed


def secret_region(secret_id: str) -> str | None:
    """The region in a secret's ARN (a secret named without an ARN lives in the caller's region)."""
    parts = secret_id.split(":")
    return parts[3] if secret_id.startswith("arn:") and len(parts) > 3 and parts[3] else None
