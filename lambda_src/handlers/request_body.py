"""Turn an API Gateway request body into JSON, or refuse it with a 4xx a user can act on.

Every way a body can be wrong (bad base64, bytes that are not UTF-8, too many bytes, nothing at all, broken
syntax, nesting deep enough to make `json.loads` recurse past the interpreter's limit, numbers too long to
convert, unpaired UTF-16 surrogate escapes that no store or model client can encode) becomes InvalidRequest or
PayloadTooLarge here, before it can surface later as a 500. Pure: no AWS, no Powertools, so the same rules serve
the handler and the tests.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Any, NoReturn

from core.errors import InvalidRequest, PayloadTooLarge

DEFAULT_MAX_DEPTH = 32  # arrays/objects inside each other; a chat request needs 1
_EXAMPLE = 'send JSON such as {"message": "Hello"}'
# A JSON string literal (escapes included, possibly unterminated) or one bracket: strings are skipped whole, so
# brackets inside them never count towards the depth.
_TOKENS = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"?|[\[\]{}]', re.DOTALL)
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def decode_json_body(
    body: str | bytes | None,
    *,
    is_base64: bool = False,
    max_bytes: int,
    max_depth: int = DEFAULT_MAX_DEPTH,
) -> Any:
    """The decoded JSON value of a proxy event's `body` (with its `isBase64Encoded` flag)."""
    text = body_text(body, is_base64=is_base64, max_bytes=max_bytes)
    if not text.strip():
        raise InvalidRequest(f"the request body is empty; {_EXAMPLE}")
    check_depth(text, max_depth=max_depth)
    try:
        value = json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as error:
        raise InvalidRequest(
            f"the request body is not valid JSON ({error.msg} at line {error.lineno} column {error.colno}); {_EXAMPLE}"
        ) from error
    except RecursionError as error:  # unreachable after check_depth unless max_depth is set very high
        raise InvalidRequest(f"the request body nests JSON too deeply; the limit is {max_depth} levels") from error
    except ValueError as error:  # an integer literal longer than Python converts (4300 digits)
        raise InvalidRequest("the request body holds a number with too many digits to read") from error
    if _SURROGATE_ESCAPE.search(text):
        _check_unicode(value)
    return value


def body_text(body: str | bytes | None, *, is_base64: bool = False, max_bytes: int) -> str:
    """The body as text: base64 decoded when flagged, at most `max_bytes` bytes, strictly UTF-8."""
    if body is None:
        return ""
    if is_base64:
        encoded = body.encode("ascii", "replace") if isinstance(body, str) else body
        if len(encoded) // 4 * 3 > max_bytes + 3:  # refuse before decoding megabytes
            _too_large(len(encoded) // 4 * 3, max_bytes, about=True)
        try:
            data = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError) as error:
            raise InvalidRequest("the request body is flagged base64-encoded but is not valid base64") from error
    elif isinstance(body, str):
        data = body.encode("utf-8", "surrogatepass")  # a lone surrogate stays detectable as invalid UTF-8
    else:
        data = bytes(body)
    if len(data) > max_bytes:
        _too_large(len(data), max_bytes)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise InvalidRequest(
            f"the request body is not valid UTF-8 (byte {error.start} cannot be decoded); send JSON text in UTF-8"
        ) from error


def json_depth(text: str, *, stop_above: int | None = None) -> int:
    """How deeply arrays/objects nest in `text`, scanned without recursion (brackets inside strings ignored).

    Stops early once the depth exceeds `stop_above`. Malformed text still gets a number: json.loads judges syntax.
    """
    depth = deepest = 0
    for token in _TOKENS.finditer(text):
        char = token.group()[0]
        if char in "[{":
            depth += 1
            if depth > deepest:
                deepest = depth
                if stop_above is not None and deepest > stop_above:
                    break
        elif char in "]}":
            depth = max(0, depth - 1)
    return deepest


def check_depth(text: str, *, max_depth: int) -> None:
    if json_depth(text, stop_above=max_depth) > max_depth:
        raise InvalidRequest(
            f"the request body nests JSON arrays/objects more than {max_depth} levels deep; the limit is {max_depth}"
        )


def _check_unicode(value: Any) -> None:
    """Refuse strings holding unpaired surrogates (JSON allows the escape; UTF-8 cannot carry the result)."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError as error:
                raise InvalidRequest(
                    "the request body contains an unpaired UTF-16 surrogate escape (such as \\ud800); "
                    "send valid Unicode text"
                ) from error
        elif isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)


def _reject_constant(name: str) -> NoReturn:
    raise InvalidRequest(f"the request body is not valid JSON ({name} is not a JSON value); {_EXAMPLE}")


def _too_large(size: int, limit: int, *, about: bool = False) -> NoReturn:
    raise PayloadTooLarge(f"the request body is {'about ' if about else ''}{size} bytes; the limit is {limit}")
