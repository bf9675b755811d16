"""The Lambdas themselves under hostile events, without API Gateway's checks in front: the chat handler with
any REST proxy event A's authorizer could pass on (bodies that skipped validation by Content-Type, odd
headers, any path parameters), and the worker with SQS batches of any bodies.

Chat: < 500, a JSON {"message"} on every 4xx, no stack trace, none of B's data. Worker: a record that cannot
be processed comes back as a batch item failure; nothing escapes the handler."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from local.apigw import rest_event
from local.lambda_context import LocalContext
from tests.jobs_fixtures import JobsWorld, jobs_world, worker_context
from tests.property.hostile import (
    assert_safe_answer,
    bodies,
    content_types,
    idempotency_keys,
    json_values,
    methods,
    text_bodies,
)

ALICE = "11111111-aaaa-4aaa-8aaa-111111111111"
BOB = "22222222-bbbb-4bbb-8bbb-222222222222"
B_SECRET = "Bergamot-7731"
B_JOB_SECRET = "Quillfeather-5519"
ROUTES = [
    ("POST", "/chat", None),
    ("POST", "/jobs", None),
    ("GET", "/jobs/{job_id}", "job_id"),
    ("GET", "/conversations", None),
    ("GET", "/conversations/{conversation_id}", "conversation_id"),
    ("DELETE", "/conversations/{conversation_id}", "conversation_id"),
]


class Handlers:
    """The wired Lambdas, B's secrets and ids (a plain class: Hypothesis prints its short repr on failure)."""

    def __init__(self, world: JobsWorld, secrets: tuple[str, ...], ids: tuple[str, str]) -> None:
        self.world = world
        self.secrets = secrets
        self.ids = ids  # B's conversation id and job id

    def __repr__(self) -> str:
        return f"Handlers(b_ids={self.ids})"


def call_chat(world: JobsWorld, event: dict[str, Any]) -> dict[str, Any]:
    return world.chat(event, LocalContext(function_name="chat", timeout_s=28))  # type: ignore[no-any-return]


def event_for(method: str, resource: str, path: str, **kwargs: Any) -> dict[str, Any]:
    return rest_event(method=method, path=path, resource=resource, **kwargs)


@pytest.fixture(scope="module")
def handlers() -> Iterator[Handlers]:
    with jobs_world(max_body_bytes=65_536) as world:  # the stack's limit (cdk.json), not the unit tests' 2 KB
        claims_b = {"sub": BOB, "email": "bob@example.com"}
        chat = call_chat(
            world,
            event_for("POST", "/chat", "/chat", claims=claims_b, headers={"Content-Type": "application/json"},
                      body=json.dumps({"message": f"{B_SECRET} is the word. What is the word?"})),
        )  # fmt: skip
        assert chat["statusCode"] == 200, chat
        job = call_chat(
            world,
            event_for("POST", "/jobs", "/jobs", claims=claims_b, headers={"Content-Type": "application/json"},
                      body=json.dumps({"message": f"{B_JOB_SECRET} is the code. What is the code?"})),
        )  # fmt: skip
        assert job["statusCode"] == 202, job
        ids = (json.loads(chat["body"])["conversation_id"], json.loads(job["body"])["job_id"])
        yield Handlers(world, (*ids, B_SECRET, B_JOB_SECRET, BOB), ids)


def path_parameter(ids: tuple[str, str]) -> st.SearchStrategy[str]:
    return st.one_of(
        st.text(max_size=60),
        st.uuids().map(str),
        st.sampled_from([*ids, "", "..", "%2e%2e", "a/b", " ", "\x00", ids[0].upper(), ids[1] + " "]),
        st.integers(100, 5000).map(lambda n: "a" * n),
    )


def headers_strategy() -> st.SearchStrategy[dict[str, str]]:
    return st.builds(
        lambda content_type, key, extra: {
            **({"Content-Type": content_type} if content_type is not None else {}),
            **({"Idempotency-Key": key} if key is not None else {}),
            **extra,
        },
        content_types,
        idempotency_keys,
        st.dictionaries(
            st.sampled_from(["idempotency-key", "IDEMPOTENCY-KEY", "Origin", "X-Junk"]), st.text(max_size=30)
        ),
    )


def claims_strategy() -> st.SearchStrategy[dict[str, Any] | None]:
    return st.one_of(
        st.just({"sub": ALICE, "email": "alice@example.com"}),
        st.just({"sub": ALICE, "email": "alice@example.com"}),
        st.none(),
        st.just({}),
        st.just({"sub": ""}),
        st.fixed_dictionaries({"sub": json_values}),
    )


@given(data=st.data())
def test_chat_handler_answers_any_event_with_a_4xx_at_worst(handlers: Handlers, data: st.DataObject) -> None:
    method, resource, name = data.draw(st.sampled_from(ROUTES), label="route")
    if data.draw(st.booleans(), label="random method"):
        method = data.draw(methods, label="method")
    params = {name: data.draw(path_parameter(handlers.ids), label="parameter")} if name else None
    path = resource.replace(f"{{{name}}}", params[name]) if name and params else resource
    body = data.draw(st.one_of(st.none(), text_bodies), label="body")
    event = event_for(
        method, resource, path, path_parameters=params, body=body,
        headers=data.draw(headers_strategy(), label="headers"),
        claims=data.draw(claims_strategy(), label="claims"),
    )  # fmt: skip
    response = call_chat(handlers.world, event)
    sent = json.dumps(event, ensure_ascii=False)
    assert_safe_answer(
        response["statusCode"], (response.get("body") or "").encode(), method=method, sent=sent,
        secrets=handlers.secrets,
    )  # fmt: skip


@given(path=st.sampled_from(["/chat", "/jobs"]), body=text_bodies, headers=headers_strategy())
def test_any_body_on_chat_and_jobs_is_answered_or_refused_with_a_4xx(
    handlers: Handlers, path: str, body: str, headers: dict[str, str]
) -> None:
    event = event_for("POST", path, path, body=body, headers=headers, claims={"sub": ALICE})
    response = call_chat(handlers.world, event)
    assert_safe_answer(
        response["statusCode"], (response.get("body") or "").encode(), sent=body, secrets=handlers.secrets
    )


@given(
    key=idempotency_keys.filter(lambda k: k is not None), header=st.sampled_from(["Idempotency-Key", "idempotency-key"])
)
def test_any_idempotency_key_on_a_valid_submit_is_a_202_or_a_400(handlers: Handlers, key: str, header: str) -> None:
    event = event_for(
        "POST", "/jobs", "/jobs", body=json.dumps({"message": "What is the capital of France?"}),
        headers={"Content-Type": "application/json", header: key}, claims={"sub": ALICE},
    )  # fmt: skip
    response = call_chat(handlers.world, event)
    assert_safe_answer(response["statusCode"], response["body"].encode(), sent=key, secrets=handlers.secrets)
    printable = key.isascii() and key.isprintable() and key.strip() and len(key) <= 200
    assert response["statusCode"] == (202 if printable else 400), (key, response["body"])


@given(data=st.data())
def test_chat_handler_refuses_base64_bodies_it_cannot_decode_with_a_4xx(
    handlers: Handlers, data: st.DataObject
) -> None:
    raw = data.draw(bodies, label="bytes")
    body = data.draw(st.one_of(st.just(base64.b64encode(raw).decode()), st.text(max_size=50)), label="base64 or not")
    event = event_for(
        "POST", "/chat", "/chat", body=body, is_base64_encoded=True,
        headers={"Content-Type": "application/json"}, claims={"sub": ALICE},
    )  # fmt: skip
    response = call_chat(handlers.world, event)
    assert_safe_answer(response["statusCode"], (response.get("body") or "").encode(), secrets=handlers.secrets)


# --- the worker ---------------------------------------------------------------------------------------
def sqs_record(body: str, receive_count: str) -> dict[str, Any]:
    return {
        "messageId": str(uuid.uuid4()),
        "receiptHandle": "r",
        "body": body,
        "attributes": {"ApproximateReceiveCount": receive_count, "SentTimestamp": "1795300000000"},
        "messageAttributes": {},
        "md5OfBody": "",
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:000000000000:jobs",
        "awsRegion": "us-east-1",
    }


poison_bodies = st.one_of(
    text_bodies,
    st.fixed_dictionaries({"job_id": json_values, "user_id": json_values}, optional={"requeues": json_values}).map(
        json.dumps
    ),
    st.fixed_dictionaries({"job_id": st.text(max_size=40)}).map(json.dumps),
)
receive_counts = st.one_of(st.sampled_from(["1", "2", "4", "99"]), st.text(max_size=5))


def harmless_record() -> dict[str, Any]:
    """A well-formed message for a job that does not exist: processed fine (nothing to answer)."""
    return sqs_record(json.dumps({"job_id": str(uuid.uuid4()), "user_id": ALICE, "requeues": 0}), "1")


@pytest.mark.filterwarnings("ignore:No idempotency key value found")  # a poison record's null job_id
@given(records=st.lists(st.tuples(poison_bodies, receive_counts), min_size=1, max_size=4))
def test_the_worker_reports_poison_records_as_batch_item_failures(
    handlers: Handlers, records: list[tuple[str, str]]
) -> None:
    batch = [harmless_record(), *(sqs_record(body, count) for body, count in records)]

    result = handlers.world.worker({"Records": batch}, worker_context())

    failed = {item["itemIdentifier"] for item in result["batchItemFailures"]}
    assert batch[0]["messageId"] not in failed
    assert failed <= {record["messageId"] for record in batch}
    for record in batch[1:]:
        try:
            message = json.loads(record["body"])
        except (ValueError, RecursionError):
            message = None
        if not (isinstance(message, dict) and {"job_id", "user_id"} <= set(message)):
            assert record["messageId"] in failed, record["body"][:200]


@pytest.mark.filterwarnings("ignore:No idempotency key value found")
@given(records=st.lists(st.tuples(poison_bodies, receive_counts), min_size=1, max_size=3))
def test_a_batch_of_only_poison_records_is_reported_not_raised(
    handlers: Handlers, records: list[tuple[str, str]]
) -> None:
    batch = [sqs_record("not json at all", "1"), *(sqs_record(body, count) for body, count in records)]

    result = handlers.world.worker({"Records": batch}, worker_context())

    assert batch[0]["messageId"] in {item["itemIdentifier"] for item in result["batchItemFailures"]}
