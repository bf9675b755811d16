"""The web UI's Content-Security-Policy, shared by CloudFront (stacks/web_stack.py, stacks/web_content_stack.py)
and the sandbox (local/sandbox.py). Pure: no CDK import, so the sandbox starts without the CDK runtime."""

from __future__ import annotations

from collections.abc import Sequence


def content_security_policy(*, connect: Sequence[str]) -> str:
    """Only the site's own files, no framing, and fetches only to the site itself and `connect`."""
    return (
        f"default-src 'self'; connect-src 'self' {' '.join(connect)}; img-src 'self' data:; style-src 'self'; "
        "script-src 'self'; object-src 'none'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'"
    )


def connect_only_policy(*, connect: Sequence[str]) -> str:
    """The policy for index.html's meta tag: it narrows connect-src only (a meta tag cannot carry
    frame-ancestors; the CloudFront header holds the rest, and browsers enforce both)."""
    return f"connect-src 'self' {' '.join(connect)}"
