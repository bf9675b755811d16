"""The sandbox's API end to end under hostile input: every route of the template, raw HTTP over a socket
(any verb, any bytes, any header), signed in as user A while user B has a conversation and a job.

Each answer must be < 500 and arrive (no dropped connection), carry a JSON {"message"} when it is a 4xx,
show no stack trace, and hold none of B's data."""

from __future__ import annotations

import http.client
import json
import socket
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from hypothesis import given
from hypothesis import strategies as st

from local.sandbox import DEMO_PASSWORD, DEMO_USER
from local.templates import load
from tests.property.hostile import (
    assert_safe_answer,
    bodies,
    content_types,
    extra_headers,
    idempotency_keys,
    methods,
    route_paths,
)
from tests.sandbox_fixture import call, sandbox, sign_in  # noqa: F401 - the fixture

USER_B = "bob@bulwark.local"
PASSWORD_B = "Bob-Passw0rd!2026-x"
B_SECRET = "Bergamot-7731"  # in B's conversation only
B_JOB_SECRET = "Quillfeather-5519"  # in B's job only


@dataclass(frozen=True)
class World:
    host: str
    port: int
    token_a: str
    secrets: tuple[str, ...]  # B's conversation id, job id, message texts and sub
    route_paths: tuple[str, ...]  # the template's routes (API paths)
    known_ids: tuple[str, ...]  # B's ids, for A to try


@pytest.fixture(scope="module")
def world(sandbox: Any, synth: Any) -> Iterator[World]:  # noqa: F811
    cognito = boto3.client(
        "cognito-idp", endpoint_url=sandbox.aws_url, region_name=sandbox.region,
        aws_access_key_id="sandbox", aws_secret_access_key="sandbox",
    )  # fmt: skip
    cognito.admin_create_user(
        UserPoolId=sandbox.user_pool_id, Username=USER_B, MessageAction="SUPPRESS",
        UserAttributes=[{"Name": "email", "Value": USER_B}, {"Name": "email_verified", "Value": "true"}],
    )  # fmt: skip
    cognito.admin_set_user_password(
        UserPoolId=sandbox.user_pool_id, Username=USER_B, Password=PASSWORD_B, Permanent=True
    )
    token_b = sign_in(sandbox, USER_B, PASSWORD_B)
    sub_b = next(
        a["Value"]
        for a in cognito.admin_get_user(UserPoolId=sandbox.user_pool_id, Username=USER_B)["UserAttributes"]
        if a["Name"] == "sub"
    )
    status, chat, _ = call(
        sandbox, "POST", "/chat", token=token_b, body={"message": f"{B_SECRET} is the word. What is the word?"}
    )
    assert status == 200, chat
    status, job, _ = call(
        sandbox, "POST", "/jobs", token=token_b, body={"message": f"{B_JOB_SECRET} is the code. What is the code?"}
    )
    assert status == 202, job
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and call(sandbox, "GET", f"/jobs/{job['job_id']}", token=token_b)[1][
        "status"
    ] not in ("done", "failed"):
        time.sleep(0.2)
    templates = load(Path(synth.app.outdir), "Bulwark-dev")
    url = urllib.parse.urlsplit(sandbox.web_url)
    yield World(
        host=url.hostname or "127.0.0.1",
        port=url.port or 80,
        token_a=sign_in(sandbox, DEMO_USER, DEMO_PASSWORD),
        secrets=(chat["conversation_id"], job["job_id"], B_SECRET, B_JOB_SECRET, sub_b),
        route_paths=tuple(sorted({r.path for r in templates.routes + templates.preflights})),
        known_ids=(chat["conversation_id"], job["job_id"]),
    )


def exchange(
    world: World, method: str, target: bytes, headers: list[tuple[str, bytes]], body: bytes
) -> tuple[int, bytes]:
    """One request as raw bytes on a fresh connection; a dropped connection raises (the test fails)."""
    head = method.encode("latin-1") + b" /api" + target + b" HTTP/1.1\r\nHost: localhost\r\n"
    head += b"".join(name.encode() + b": " + value + b"\r\n" for name, value in headers)
    head += f"Content-Length: {len(body)}\r\n\r\n".encode()
    with socket.create_connection((world.host, world.port), timeout=60) as sock:
        sock.sendall(head + body)
        response = http.client.HTTPResponse(sock, method=method)
        response.begin()
        return response.status, response.read()


def authorization(world: World) -> st.SearchStrategy[bytes | None]:
    token = world.token_a.encode()
    return st.one_of(
        st.just(token),
        st.just(token),
        st.none(),
        st.just(b"Bearer " + token),
        st.just(token[:-6] + b"xxxxxx"),
        st.binary(max_size=80).map(lambda b: b.replace(b"\r", b"").replace(b"\n", b"")),
        st.just(b"eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."),  # alg none
    )


def send(world: World, data: st.DataObject, *, method: str, path: str, body: bytes, auth: bytes | None) -> None:
    headers: list[tuple[str, bytes]] = []
    if auth is not None:
        headers.append(("Authorization", auth))
    content_type = data.draw(content_types, label="content-type")
    if content_type is not None:
        headers.append(("Content-Type", content_type.encode("utf-8", "surrogatepass")))
    key = data.draw(idempotency_keys, label="idempotency-key")
    if key is not None:
        headers.append(("Idempotency-Key", key.encode("utf-8", "surrogatepass")))
    headers += [(n, v.encode("utf-8", "surrogatepass")) for n, v in data.draw(extra_headers, label="extra headers")]
    target = path.encode("utf-8", "surrogatepass")
    status, answer = exchange(world, method, target, headers, body)
    sent = target + b"".join(v for _, v in headers) + body
    assert_safe_answer(status, answer, method=method, sent=sent, secrets=world.secrets)


@given(data=st.data())
def test_json_bodies_on_every_route(world: World, data: st.DataObject) -> None:
    path = data.draw(st.sampled_from(world.route_paths).map(lambda p: p.replace("{", "").replace("}", "")))
    method = data.draw(st.sampled_from(["POST", "GET", "DELETE"]), label="method")
    body = data.draw(bodies, label="body")
    send(world, data, method=method, path=path, body=body, auth=world.token_a.encode())


@given(data=st.data())
def test_chat_and_jobs_with_any_body_and_headers(world: World, data: st.DataObject) -> None:
    path = data.draw(st.sampled_from(["/chat", "/jobs"]), label="path")
    body = data.draw(bodies, label="body")
    send(world, data, method="POST", path=path, body=body, auth=data.draw(authorization(world), label="auth"))


@given(data=st.data())
def test_any_method_on_any_path(world: World, data: st.DataObject) -> None:
    method = data.draw(methods, label="method")
    path = data.draw(route_paths(world.route_paths, extra_ids=world.known_ids), label="path")
    body = data.draw(st.one_of(st.just(b""), bodies), label="body")
    send(world, data, method=method, path=path, body=body, auth=data.draw(authorization(world), label="auth"))


@given(data=st.data())
def test_reading_b_s_resources_as_a_is_a_404_without_b_s_data(world: World, data: st.DataObject) -> None:
    conversation_id, job_id = world.known_ids
    method, path = data.draw(
        st.sampled_from(
            [("GET", f"/conversations/{conversation_id}"), ("DELETE", f"/conversations/{conversation_id}"),
             ("GET", f"/jobs/{job_id}"), ("GET", "/conversations"), ("GET", f"/conversations/{conversation_id}/"),
             ("GET", f"/conversations/{conversation_id.upper()}"), ("GET", f"/jobs/{job_id}%20")]
        ),
        label="request",
    )  # fmt: skip
    status, answer = exchange(world, method, path.encode(), [("Authorization", world.token_a.encode())], b"")
    assert_safe_answer(status, answer, method=method, sent=path, secrets=world.secrets)
    if path != "/conversations":
        assert status in (400, 404), (status, answer)
    else:
        listed = json.loads(answer)["conversations"]
        assert conversation_id not in {c["conversation_id"] for c in listed}
