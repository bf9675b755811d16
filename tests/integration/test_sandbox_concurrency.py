"""The sandbox under concurrent users: no 5xx, nothing lost, no request answered with another's data.

Outcomes only (statuses, stored turns, whose data came back), never elapsed times: CI machines are small.
"""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from local.users import signed_in_users
from tests.sandbox_fixture import call, sandbox  # noqa: F401 - the fixture

USERS = 24  # one thread each, every user well under the per-user request rate
TURNS = 8  # per user: a new conversation, follow-ups that read the history back, lists, reads and a job
PASSWORD = "Concurrent-Passw0rd!2026"


def test_concurrent_users_get_no_5xx_and_every_answer_is_stored_in_their_own_history(sandbox: Any) -> None:  # noqa: F811
    tokens = signed_in_users(sandbox, USERS, prefix="concurrent", password=PASSWORD)

    def session(index: int) -> dict[str, Any]:
        token, statuses, conversation, answered = tokens[index], [], None, 0
        status, job, _ = call(sandbox, "POST", "/jobs", token=token, body={"message": f"Job of user {index}."})
        statuses.append(status)
        for turn in range(TURNS):
            fact = f"Token{index}x{turn} is Word{index}y{turn}."  # the emulator answers with the matching fact
            body: dict[str, Any] = {"message": f"{fact} What is token{index}x{turn}?"}
            if conversation is not None:
                body["conversation_id"] = conversation
            status, answer, _ = call(sandbox, "POST", "/chat", token=token, body=body)
            statuses.append(status)
            if status == 200:
                assert answer["answer"] == fact  # the answer to its own question, not another request's
                assert answer["saved"] is True, answer.get("save_error")
                conversation, answered = answer["conversation_id"], answered + 1
            status, listed, _ = call(sandbox, "GET", "/conversations", token=token)
            statuses.append(status)
            if status == 200:
                assert conversation in [c["conversation_id"] for c in listed["conversations"]]  # (the job adds one)
        status, stored, _ = call(sandbox, "GET", f"/conversations/{conversation}", token=token)
        statuses.append(status)
        status, job_now, _ = call(sandbox, "GET", f"/jobs/{job['job_id']}", token=token)
        statuses.append(status)
        return {"statuses": statuses, "answered": answered, "stored": stored, "job": job_now}

    with ThreadPoolExecutor(max_workers=USERS) as pool:
        sessions = list(pool.map(session, range(USERS)))

    statuses = Counter(status for s in sessions for status in s["statuses"])
    assert sum(statuses.values()) == USERS * (2 * TURNS + 3)
    assert set(statuses) <= {200, 202}, statuses  # no 5xx, and no 4xx either: nothing was wrong with the requests
    for index, s in enumerate(sessions):
        assert s["stored"]["turn_count"] == s["answered"] == TURNS
        assert [t["assistant"] for t in s["stored"]["turns"]] == [
            f"Token{index}x{t} is Word{index}y{t}." for t in range(TURNS)
        ]
        assert s["job"]["status"] in ("queued", "running", "done")
