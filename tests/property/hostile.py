"""What a hostile client sends, as Hypothesis strategies, and what every answer must satisfy."""

from __future__ import annotations

import json
import string
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote

from hypothesis import strategies as st

# --- bodies -----------------------------------------------------------------------------------------
json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=40),
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=16,
)
# Close to a real request, so validation passes further: odd field types, extra fields, bad ids.
chat_like = st.fixed_dictionaries(
    {"message": st.one_of(st.text(max_size=60), json_values)},
    optional={
        "conversation_id": st.one_of(st.uuids().map(str), st.text(max_size=40), json_values),
        "extra": json_values,
    },
)


def _nested(depth: int, opener: str) -> str:
    closer = "]" if opener == "[" else "}"
    return opener * depth + "1" + closer * depth


# Around the interpreter's recursion limit (about 1000) is where a recursive parser breaks; a 2 KB body does it.
_depths = st.one_of(st.integers(20, 200), st.integers(800, 1200), st.integers(1200, 20_000))
deep_json = st.tuples(_depths, st.sampled_from(["[", '{"a":', '{"":'])).map(lambda t: _nested(*t))
deep_message = _depths.map(lambda n: '{"message": ' + "[" * n + '"hi"' + "]" * n + "}")
big_numbers = st.integers(4000, 20_000).map(lambda n: '{"message": "hi", "n": ' + "7" * n + "}")
huge_message = st.integers(1, 300_000).map(lambda n: json.dumps({"message": "x" * n}))
odd_texts = st.sampled_from(
    [
        '{"message": "\\ud800"}',
        '{"\\udfff": "x", "message": "hi"}',
        '{"message": "hi", "message": 5}',
        '{"message": NaN}',
        '{"message": Infinity}',
        "1" * 5000,
        '{"message": 1e999}',
        "\ufeff{}",
        '{"message": "hi"}' + " " * 10_000,
        '{"message": "hi"} trailing',
        '"just a string"',
        "null",
        "[]",
        "{}",
        "",
        " ",
        '{"message": "' + "\\u0000" * 50 + '"}',
        '{"message": "' + "\u202e\u0000\U0001f600" * 20 + '"}',
    ]
)
text_bodies = st.one_of(
    json_values.map(json.dumps),
    st.tuples(chat_like, st.booleans()).map(lambda t: json.dumps(t[0], ensure_ascii=t[1])),
    deep_json,
    deep_message,
    big_numbers,
    huge_message,
    odd_texts,
    st.text(max_size=200),
)
bodies = st.one_of(text_bodies.map(lambda t: t.encode("utf-8", "surrogatepass")), st.binary(max_size=2048))

# --- headers ----------------------------------------------------------------------------------------
_HEADER_TEXT = st.text(st.characters(blacklist_characters="\r\n"), max_size=60)
content_types = st.one_of(
    st.none(),
    st.sampled_from(
        [
            "application/json",
            "application/json; charset=utf-8",
            "APPLICATION/JSON",
            "application/json;charset=latin-1",
            "text/plain",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=xyz",
            "application/octet-stream",
            "",
            ";",
            "*/*",
        ]
    ),
    _HEADER_TEXT,
)
idempotency_keys = st.one_of(
    st.none(),
    st.text(st.characters(blacklist_characters="\r\n"), max_size=300),
    st.text(alphabet=string.printable.strip("\r\n\x0b\x0c"), min_size=190, max_size=210),
    st.sampled_from(["", " ", "\t", "\x00", "\x7f", "k\u00e9y", "\U0001f600", "\ud800", "a" * 200, "a" * 201]),
)
extra_headers = st.lists(
    st.tuples(
        st.sampled_from(["X-Forwarded-For", "Accept", "Origin", "Cookie", "Content-Type", "X-Junk"]), _HEADER_TEXT
    ),
    max_size=3,
)

# --- methods and paths ------------------------------------------------------------------------------
_TOKEN = string.ascii_letters + string.digits + "!#$%&'*+-.^_`|~"
methods = st.one_of(
    st.sampled_from(["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "TRACE", "CONNECT", "get"]),
    st.text(alphabet=_TOKEN, min_size=1, max_size=16),
)
_segments = st.one_of(
    st.text(max_size=30).map(lambda s: quote(s, safe="")),
    st.text(st.characters(blacklist_characters=" \r\n\t#?/"), max_size=20),  # raw, non-ASCII included
    st.sampled_from(["", ".", "..", "%2e%2e", "%2F", "%", "%zz", "%ff%fe", "%00", "a%2Fb", "~", "%C3%A9", "-"]),
    st.integers(200, 4000).map(lambda n: "a" * n),
    st.uuids().map(str),
)


def route_paths(route_templates: Iterable[str], *, extra_ids: Iterable[str] = ()) -> st.SearchStrategy[str]:
    """API paths: the template's routes with random (or known) parameters, and random paths altogether."""
    ids = list(extra_ids)
    segment = st.one_of(_segments, st.sampled_from(ids)) if ids else _segments

    def fill(template: str, values: list[str]) -> str:
        parts = template.strip("/").split("/") if template != "/" else []
        filled = [values.pop() if p.startswith("{") and values else p for p in parts]
        return "/" + "/".join(filled)

    templated = st.tuples(st.sampled_from(sorted(set(route_templates))), st.lists(segment, min_size=2, max_size=2))
    return st.one_of(
        templated.map(lambda t: fill(t[0], t[1])),
        st.tuples(templated.map(lambda t: fill(t[0], t[1])), st.sampled_from(["/", "//", "/x", "?a=1&a=%ff"])).map(
            "".join
        ),
        st.lists(segment, max_size=5).map(lambda parts: "/" + "/".join(parts)),
    )


# --- the properties ---------------------------------------------------------------------------------
def assert_safe_answer(
    status: int, body: bytes, *, method: str = "GET", sent: bytes | str = b"", secrets: Iterable[str] = ()
) -> None:
    """< 500; a JSON {"message"} on every 4xx; no stack trace; none of another user's data.

    A secret the caller sent itself (B's id in A's path) may be echoed back ("conversation <id> was not found"):
    only data the request did not carry counts as a leak.
    """
    text = body.decode("utf-8", "replace")
    assert status < 500, f"{status}: {text[:500]}"
    if 400 <= status < 500 and method.upper() != "HEAD":
        payload = json.loads(body)
        assert isinstance(payload, dict), text[:500]
        assert isinstance(payload.get("message"), str) and payload["message"], text[:500]
    assert "Traceback" not in text and 'File "' not in text, text[:500]
    request_text = sent.decode("utf-8", "replace") if isinstance(sent, bytes) else sent
    for secret in secrets:
        if secret not in request_text:
            assert secret not in text, f"another user's data ({secret}) in: {text[:500]}"


def describe(value: Any, limit: int = 300) -> str:
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} chars)"
