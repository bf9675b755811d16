"""Every malformed or hostile request body is a 400/413 with a message, never an exception that becomes a 500."""

from __future__ import annotations

import base64
import json

import pytest

from core.errors import InvalidRequest, PayloadTooLarge
from handlers.request_body import decode_json_body, json_depth

LIMIT = 300_000


def refused(body: str | bytes | None, *, is_base64: bool = False, max_depth: int = 32) -> str:
    with pytest.raises(InvalidRequest) as caught:
        decode_json_body(body, is_base64=is_base64, max_bytes=LIMIT, max_depth=max_depth)
    assert caught.value.status == 400
    return caught.value.message


def test_a_json_body_decodes_from_text_and_from_base64() -> None:
    assert decode_json_body('{"message": "h\u00e9"}', max_bytes=LIMIT) == {"message": "h\u00e9"}
    encoded = base64.b64encode('{"message": "h\u00e9 \U0001f600"}'.encode()).decode()
    assert decode_json_body(encoded, is_base64=True, max_bytes=LIMIT) == {"message": "h\u00e9 \U0001f600"}
    assert decode_json_body(b'["ok"]', max_bytes=LIMIT) == ["ok"]


def test_nesting_past_the_limit_is_refused_without_recursing() -> None:
    deep = '{"a": ' * 1000 + "1" + "}" * 1000  # about 6 KB, 1000 levels: json.loads would raise RecursionError
    assert "more than 32 levels deep" in refused(deep.replace(" ", ""), max_depth=32)
    assert "more than 5 levels deep" in refused("[" * 200_000, max_depth=5)  # unclosed, still no recursion
    assert decode_json_body("[" * 32 + "]" * 32, max_bytes=LIMIT) is not None


def test_brackets_inside_strings_do_not_count_towards_the_depth() -> None:
    text = json.dumps({"message": "[[[[{{{{" * 100 + '\\"]]]"'})
    assert json_depth(text) == 1
    assert decode_json_body(text, max_bytes=LIMIT, max_depth=1)["message"].startswith("[[[[")
    assert json_depth('["a\\\\", ["b"]]') == 2  # an escaped backslash ends the string


@pytest.mark.parametrize(
    ("body", "is_base64", "expected"),
    [(b"\xff\xfe{}", False, "not valid UTF-8"),
     ('{"message": "\ud800"}', False, "not valid UTF-8"),  # a lone surrogate in the event's text itself
     (base64.b64encode(b'{"message": "\xc3"}').decode(), True, "not valid UTF-8"),
     ("not base64!", True, "not valid base64"),
     ("eyJhIjo", True, "not valid base64"),
     ("", False, "empty"), ("  \n ", False, "empty"), (None, False, "empty"),
     ('{"message": "hi"', False, "not valid JSON"),
     ('{"message": NaN}', False, "NaN is not a JSON value"),
     ("[Infinity]", False, "Infinity is not a JSON value"),
     ("1" * 5000, False, "too many digits"),
     ('{"message": "\\ud800"}', False, "unpaired UTF-16 surrogate"),
     ('{"\\udfff": 1}', False, "unpaired UTF-16 surrogate"),
     ("\ufeff{}", False, "not valid JSON")],
)  # fmt: skip
def test_malformed_bodies_are_400_with_a_message(body: str | bytes | None, is_base64: bool, expected: str) -> None:
    assert expected in refused(body, is_base64=is_base64)


def test_a_paired_surrogate_escape_is_just_an_emoji() -> None:
    assert decode_json_body('{"m": "\\ud83d\\ude00"}', max_bytes=LIMIT) == {"m": "\U0001f600"}


@pytest.mark.parametrize(
    ("body", "is_base64"),
    [("x" * (LIMIT + 1), False), ("\u00e9" * (LIMIT // 2 + 1), False), (b"x" * (LIMIT + 1), False),
     (base64.b64encode(b"x" * (LIMIT + 10)).decode(), True), ("A" * 10_000_000, True)],
)  # fmt: skip
def test_bodies_over_the_byte_limit_are_413(body: str | bytes, is_base64: bool) -> None:
    with pytest.raises(PayloadTooLarge) as caught:
        decode_json_body(body, is_base64=is_base64, max_bytes=LIMIT)
    assert caught.value.status == 413 and "limit" in caught.value.message
