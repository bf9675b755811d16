"""`make drill`: a regional disaster, measured, on the two-region sandbox (no AWS account).

    python tools/drill.py [--quick] [--cdk-out cdk.out.local] [--json report.json]

With steady synthetic traffic (chat, jobs, document uploads) from a few users, each through the client-side
failover helper (tools/failover_client.py: the primary's endpoint first, the DR region's second), it:
1. takes a backup of the DR replica of the conversations table while traffic runs;
2. lets the primary's jobs back up (its jobs pump stops a few seconds before the outage, as a backlog would), then
   takes the primary region down (local.sandbox.Sandbox.outage: its API refuses connections, its models fail,
   its pump, schedules and replication stop) and measures chat RTO (outage -> the first answer from DR) and the
   requests that failed meanwhile; RPO for conversations and jobs (acknowledged before the outage, missing in
   DR); the primary's accepted jobs answered in DR by its recovery sweep; documents uploaded before the outage
   and searchable in DR;
3. restores the backup, and the table to its latest restorable time (PITR), into new tables in DR with moto and
   compares them with what was written; a restore to an earlier time is tried too and reported as moto handles it
   (moto 5.2 copies the current items whatever the time asked: not a test of PITR's time travel);
4. brings the primary back, lets the clients fail back, and checks that nothing acknowledged was lost, that no
   turn is duplicated, that both regions' tables converged and that every accepted job was answered exactly once
   (the Bedrock emulator counts answers per question digest);
5. prints each figure with its target (../shared/DESIGN.md: chat RTO <= 60 s, RPO <= 1 s for conversations and
   jobs, <= 15 min for documents, the whole app back <= 15 min) and exits 1 when one is missed.

The default run uses the deployed timings (the recovery sweep every minute, jobs adopted after the template's
JOB_STRANDED_AFTER_SECONDS: about 12 minutes); `--quick` shortens the sweep period, the stranded threshold and the
phases (about 2 minutes) and says so in the table. The replication lag is the sandbox's parameter (0.5 s by
default), not a measurement of AWS: the drill proves that what is lost is what was in flight in that window.
Timings here are this machine's; tests/integration/test_drill.py runs the quick drill and asserts outcomes only.
"""

from __future__ import annotations

import argparse
import base64
import itertools
import json
import random
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import boto3

from adapters.document_catalog import document_views
from local.polling import wait_until
from tools.failover_client import AllEndpointsFailed, FailoverClient

ROOT = Path(__file__).resolve().parents[1]
PASSWORD = "Drill-Passw0rd!2026"
TARGETS = {
    "chat_rto_s": 60.0,
    "rpo_conversations_s": 1.0,
    "rpo_jobs_s": 1.0,
    "rpo_documents_s": 15 * 60.0,
    "whole_app_s": 15 * 60.0,
}
_WORDS = ["lighthouse", "harbour", "glacier", "orchard", "quarry", "meadow", "canyon", "delta", "atoll", "fjord"]
_COLOURS = ["amber", "cobalt", "crimson", "ivory", "jade", "ochre", "scarlet", "teal", "umber", "violet"]


@dataclass(frozen=True, kw_only=True)
class DrillSettings:
    users: int = 4
    pause_s: float = 1.2  # between one user's requests (the per-user limit is 60 a minute)
    warmup_s: float = 40.0  # steady traffic before the outage
    backlog_s: float = 6.0  # the primary's jobs pump is stopped this long before the outage
    outage_s: float = 30.0  # at least this long on DR (and until every recovery is observed)
    failback_s: float = 30.0  # traffic after the primary is back (and until the clients have failed back)
    replication_lag_s: float = 0.5
    documents_lag_s: float = 5.0  # S3 replication (RTC: most objects in seconds, 99.99 % within 15 minutes)
    stranded_after_s: float | None = None  # None: the template's JOB_STRANDED_AFTER_SECONDS
    sweep_every_s: float | None = None  # None: the template's schedule (rate(1 minute))
    client_cooldown_s: float = 30.0  # how long the failover client parks a failed endpoint
    client_timeout_s: float = 30.0
    document_every: int = 10  # every Nth request of a user is a document upload
    job_every: int = 3  # every Nth request is a job
    ceiling_s: float = 1800.0  # event-driven waits give up after this (a generous guard, not a timing)
    quick: bool = False

    @classmethod
    def quick_mode(cls) -> DrillSettings:
        return cls(
            users=3, warmup_s=12.0, backlog_s=3.0, outage_s=6.0, failback_s=6.0, stranded_after_s=8.0,
            sweep_every_s=1.0, client_cooldown_s=3.0, documents_lag_s=2.0, document_every=5, quick=True,
        )  # fmt: skip


# --- what the traffic saw -------------------------------------------------------------------------------------
@dataclass
class Call:
    kind: str  # chat, job, document
    user: int
    started: float  # monotonic
    ended: float = 0.0
    status: int | None = None
    region: str | None = None  # the region whose endpoint answered
    error: str | None = None
    question: str = ""
    answer: str = ""
    conversation_id: str | None = None
    turn: int | None = None
    job_id: str | None = None
    document_id: str | None = None
    uploaded: bool = False

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300 and self.error is None


class Ledger:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.calls: list[Call] = []

    def add(self, call: Call) -> None:
        with self._lock:
            self.calls.append(call)

    def snapshot(self) -> list[Call]:
        with self._lock:
            return list(self.calls)

    def count(self, kind: str, *, before: float | None = None) -> int:
        return sum(1 for c in self.snapshot() if c.kind == kind and c.ok and (before is None or c.ended < before))


@dataclass
class User:
    index: int
    token: str
    sub: str
    client: FailoverClient
    conversation_id: str | None = None
    turns: int = 0


class Traffic:
    """One thread per user: chat turns in a conversation (a new one every few turns), jobs, document uploads."""

    def __init__(self, users: list[User], ledger: Ledger, settings: DrillSettings, regions: dict[str, str]) -> None:
        self._users = users
        self._ledger = ledger
        self._settings = settings
        self._regions = regions  # endpoint base URL -> region
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> Traffic:
        for user in self._users:
            thread = threading.Thread(target=self._run, args=(user,), name=f"drill-user-{user.index}", daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=self._settings.client_timeout_s * 3)

    def _run(self, user: User) -> None:
        rng = random.Random(user.index)
        for step in itertools.count(1):
            if self._stop.is_set():
                return
            if step % self._settings.document_every == 0:
                self._document(user)
            elif step % self._settings.job_every == 0:
                self._job(user, rng)
            else:
                self._chat(user, rng)
            self._stop.wait(self._settings.pause_s)

    def _request(self, call: Call, user: User, method: str, path: str, body: Any, headers: dict[str, str]) -> Any:
        try:
            response = user.client.request(method, path, body=body, headers={"Authorization": user.token, **headers})
        except AllEndpointsFailed as error:
            call.error = f"no region answered: {error}"[:300]
            return None
        except Exception as error:  # the drill records every failure; it never stops the traffic
            call.error = f"{type(error).__name__}: {error}"[:300]
            return None
        finally:
            call.ended = time.monotonic()
        call.status = response.status
        call.region = self._regions.get(response.endpoint)
        return response.body if response.ok else None

    def _chat(self, user: User, rng: random.Random) -> None:
        token = uuid.uuid4().hex[:12]
        word, colour = rng.choice(_WORDS), rng.choice(_COLOURS)
        question = f"Drill note {token}: the {word} {token} is {colour}. What colour is the {word} {token}?"
        if user.conversation_id is None or user.turns >= 5:
            user.conversation_id, user.turns = None, 0
        body: dict[str, Any] = {"message": question}
        if user.conversation_id:
            body["conversation_id"] = user.conversation_id
        call = Call(kind="chat", user=user.index, started=time.monotonic(), question=question)
        answer = self._request(call, user, "POST", "/chat", body, {})
        if answer is not None and answer.get("saved", True) and answer.get("conversation_id"):
            call.conversation_id = answer["conversation_id"]
            call.turn = answer.get("turn")
            call.answer = answer.get("answer", "")
            user.conversation_id, user.turns = call.conversation_id, user.turns + 1
        elif answer is not None:
            call.error = f"answered but not saved: {answer.get('save_error')}"
        elif call.status in (404, 409):  # not (yet) in this region, or changed under us: start another
            user.conversation_id = None
        self._ledger.add(call)

    def _job(self, user: User, rng: random.Random) -> None:
        token = uuid.uuid4().hex[:12]
        word, colour = rng.choice(_WORDS), rng.choice(_COLOURS)
        question = f"Drill job {token}: the {word} {token} is {colour}. What colour is the {word} {token}?"
        call = Call(kind="job", user=user.index, started=time.monotonic(), question=question)
        answer = self._request(call, user, "POST", "/jobs", {"message": question}, {"Idempotency-Key": token})
        if answer is not None:
            call.job_id = answer.get("job_id")
        self._ledger.add(call)

    def _document(self, user: User) -> None:
        token = uuid.uuid4().hex[:12]
        text = (
            f"Drill document {token}.\n\nThe keeper of the {token} archive is named Wren {token}. "
            f"The archive {token} opened in the spring.\n"
        ).encode()
        call = Call(kind="document", user=user.index, started=time.monotonic(), question=token)
        created = self._request(
            call, user, "POST", "/documents",
            {"name": f"drill-{token}.md", "content_type": "text/markdown", "size": len(text)}, {},
        )  # fmt: skip
        if created is not None:
            call.document_id = created["document"]["document_id"]
            try:
                status = post_presigned(created["upload"], text, "text/markdown", filename="drill.md")
                call.uploaded = status in (200, 201, 204)
            except OSError as error:
                call.error = f"upload failed: {error}"[:300]
            call.ended = time.monotonic()
        self._ledger.add(call)


def post_presigned(form: dict[str, Any], data: bytes, content_type: str, *, filename: str = "upload") -> int:
    """POST the file with the presigned form (POST /documents' `upload`), as a browser does (multipart/form-data,
    the file last); the S3 status."""
    boundary = uuid.uuid4().hex
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        for name, value in form["fields"].items()
    ]
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
        f"Content-Type: {content_type}\r\n\r\n".encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    request = urllib.request.Request(
        form["url"], data=b"".join(parts), headers={"Content-Type": f"multipart/form-data; boundary={boundary}"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return int(response.status)


# --- the report -----------------------------------------------------------------------------------------------
@dataclass
class Figure:
    name: str
    target: str
    measured: str
    passed: bool | None  # None: reported, no target (or not testable here)
    note: str = ""


@dataclass
class DrillReport:
    settings: dict[str, Any]
    figures: list[Figure] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)  # the outcomes the test asserts

    @property
    def passed(self) -> bool:
        return all(f.passed is not False for f in self.figures)

    def add(self, name: str, target: str, measured: str, passed: bool | None, note: str = "") -> None:
        self.figures.append(Figure(name, target, measured, passed, note))

    def table(self) -> str:
        rows = [("figure", "target", "measured", "result")]
        for f in self.figures:
            verdict = "PASS" if f.passed else ("n/a" if f.passed is None else "FAIL")
            rows.append((f.name, f.target, f.measured, verdict))
        widths = [max(len(row[i]) for row in rows) for i in range(4)]
        lines = [" | ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)) for row in rows]
        lines.insert(1, "-+-".join("-" * w for w in widths))
        notes = [f"  {f.name}: {f.note}" for f in self.figures if f.note]
        return "\n".join([*lines, "", "notes:", *notes] if notes else lines)


# --- the drill ------------------------------------------------------------------------------------------------
def _sub(token: str) -> str:
    payload = token.split(".")[1]
    return str(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["sub"])


def _fmt_s(seconds: float | None) -> str:
    return "-" if seconds is None else (f"{seconds:.2f} s" if seconds < 120 else f"{seconds / 60:.1f} min")


class Drill:
    def __init__(self, sandbox: Any, settings: DrillSettings, progress: Callable[[str], None]) -> None:
        self.sb = sandbox
        self.settings = settings
        self.progress = progress
        self.primary = sandbox.region
        self.dr = sandbox.dr_region
        self.ledger = Ledger()
        self.report = DrillReport(settings=asdict(settings))
        self.dynamodb = {
            region: boto3.client("dynamodb", endpoint_url=sandbox.aws_url, region_name=region)
            for region in (self.primary, self.dr)
        }
        self.conversations = sandbox.chat_env["TABLE_NAME"]
        self.jobs = sandbox.chat_env["JOBS_TABLE_NAME"]
        self.documents = sandbox.chat_env["DOCUMENTS_TABLE_NAME"]

    # --- helpers --------------------------------------------------------------------------------------------
    def _turns(self, region: str, table: str | None = None) -> dict[tuple[str, str], dict[str, Any]]:
        """Every item of a region's conversations table (or `table`): (pk, sk) -> item."""
        items = {}
        for page in self.dynamodb[region].get_paginator("scan").paginate(TableName=table or self.conversations):
            for item in page["Items"]:
                items[(item["pk"]["S"], item["sk"]["S"])] = item
        return items

    def _job(self, region: str, call: Call) -> dict[str, Any] | None:
        """The job's row in `region`'s replica of the jobs table (status, owner_region), or None."""
        item = self.dynamodb[region].get_item(
            TableName=self.jobs, Key={"pk": {"S": self.users[call.user].sub}, "sk": {"S": call.job_id or ""}},
            ConsistentRead=True,
        ).get("Item")  # fmt: skip
        if item is None:
            return None
        return {name: next(iter(value.values())) for name, value in item.items() if name in ("status", "owner_region")}

    def _in_bucket(self, region: str, call: Call) -> bool:
        """Whether the document's file is in `region`'s documents bucket (uploaded there or replicated)."""
        s3 = boto3.client("s3", endpoint_url=self.sb.aws_url, region_name=region)
        key = f"documents/{self.users[call.user].sub}/{call.document_id}"
        try:
            s3.head_object(Bucket=self.sb.knowledge[region]["documents_bucket"], Key=key)
        except s3.exceptions.ClientError:
            return False
        return True

    def _document_states(self, region: str) -> dict[str, str | None]:
        """Document id -> its state in `region` as that region's replica of the documents table says (what
        GET /documents/{id} there answers: the metadata item and the region's own status item)."""
        items = [item for page in self.dynamodb[region].get_paginator("scan").paginate(TableName=self.documents)
                 for item in page["Items"]]  # fmt: skip
        return {view.document_id: view.status for view in document_views(items, region)}

    def _indexed(self, region: str) -> set[str]:
        """The documents with vectors in `region`'s index (what retrieval there can find)."""
        names = self.sb.knowledge[region]
        client = boto3.client("s3vectors", endpoint_url=self.sb.vectors_url, region_name=region)
        found = set()
        for page in client.get_paginator("list_vectors").paginate(
            vectorBucketName=names["vector_bucket"], indexName=names["vector_index"], returnMetadata=True
        ):
            found |= {str(v.get("metadata", {}).get("document_id")) for v in page["vectors"]}
        return found

    def _pipelines_idle(self, regions: list[str], *, replication: bool) -> bool:
        """No ingest work queued or running in `regions` (and, with `replication`, no S3 copy or table change
        pending anywhere): nothing more will change."""
        for region in regions:
            sqs = boto3.client("sqs", endpoint_url=self.sb.aws_url, region_name=region)
            attributes = sqs.get_queue_attributes(
                QueueUrl=self.sb.knowledge[region]["queue_url"],
                AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
                                "ApproximateNumberOfMessagesDelayed"],
            )["Attributes"]  # fmt: skip
            if any(int(value) for value in attributes.values()):
                return False
        if replication:
            return self.sb.documents_replication.pending() == 0 and self.sb.wait_replicated(timeout_s=0)
        return True

    def _settle(self, done: Callable[[], bool], regions: list[str], *, replication: bool) -> None:
        """Wait until `done()`, or until the pipelines have been idle on two checks in a row (the second after
        the table writes of the last ingest had time to replicate)."""
        idle = 0
        end = time.monotonic() + self.settings.ceiling_s
        while not done() and time.monotonic() < end:
            idle = idle + 1 if self._pipelines_idle(regions, replication=replication) else 0
            if idle >= 2:
                return
            time.sleep(max(1.0, self.settings.replication_lag_s * 2))

    def _answers(self) -> dict[str, int]:
        with urllib.request.urlopen(f"{self.sb.emulator_url}/_emulator/answers", timeout=30) as response:
            return json.loads(response.read())  # type: ignore[no-any-return]

    # --- phases ---------------------------------------------------------------------------------------------
    def run(self) -> DrillReport:
        s = self.settings
        tokens = _sign_in_users(self.sb, s.users, prefix=f"drill-{uuid.uuid4().hex[:6]}")
        endpoints = [self.sb.regions[self.primary].api_url, self.sb.regions[self.dr].api_url]
        region_of = {url: region for url, region in zip(endpoints, (self.primary, self.dr), strict=True)}
        users = [
            User(index=i, token=t, sub=_sub(t),
                 client=FailoverClient(endpoints, timeout_s=s.client_timeout_s, cooldown_s=s.client_cooldown_s))
            for i, t in enumerate(tokens)
        ]  # fmt: skip
        self.users = {u.index: u for u in users}
        for region in (self.primary, self.dr):
            self.dynamodb[region].update_continuous_backups(
                TableName=self.conversations, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True}
            )
        traffic = Traffic(users, self.ledger, s, region_of).start()
        try:
            self.progress(f"steady traffic from {s.users} users through the failover client ({s.warmup_s:g} s)")
            started = time.monotonic()
            wait_until(
                lambda: time.monotonic() - started >= s.warmup_s / 2 and self.ledger.count("chat") >= 1,
                ceiling_s=s.ceiling_s,
            )
            backup = self._backup()
            wait_until(
                lambda: time.monotonic() - started >= s.warmup_s
                and self.ledger.count("chat") >= 2 and self.ledger.count("job") >= 1
                and self.ledger.count("document") >= 1,
                ceiling_s=s.ceiling_s,
            )  # fmt: skip
            self.progress(f"the primary's jobs pump stops {s.backlog_s:g} s before the outage (a backlog)")
            self.sb.regions[self.primary].stop_worker()
            stopped = time.monotonic()
            wait_until(  # and at least one job waits in the primary's queue
                lambda: time.monotonic() - stopped >= s.backlog_s
                and any(c.kind == "job" and c.ok and c.region == self.primary and c.started > stopped
                        for c in self.ledger.snapshot()),
                ceiling_s=s.ceiling_s,
            )  # fmt: skip
            outage = self._outage()
            self._restore(backup, outage)
            self._failback(outage, traffic)
        finally:
            traffic.stop()
        self._final_checks()
        return self.report

    def _backup(self) -> dict[str, Any]:
        """A backup of DR's replica holding every turn acknowledged before it (the replication is drained first)."""
        cut = time.monotonic()
        expected = [c for c in self.ledger.snapshot() if c.kind == "chat" and c.ok and c.turn and c.ended < cut]
        if not self.sb.wait_replicated(timeout_s=self.settings.ceiling_s):
            raise RuntimeError("the global tables did not drain before the backup")
        arn = self.dynamodb[self.dr].create_backup(
            TableName=self.conversations, BackupName=f"drill-{int(time.time())}"
        )["BackupDetails"]["BackupArn"]
        self.progress(f"backup of the conversations table in {self.dr} ({len(expected)} turns acknowledged before it)")
        return {"arn": arn, "expected": expected, "wall": time.time(), "monotonic": time.monotonic()}

    def _outage(self) -> dict[str, Any]:
        s = self.settings
        before = self.ledger.snapshot()
        at = time.monotonic()
        self.sb.outage(self.primary)
        pending = self.sb.replication(keys=True)["directions"][f"{self.primary}->{self.dr}"]["pending_keys"]
        self.progress(f"OUTAGE: {self.primary} is down ({len(pending)} changes had not reached {self.dr})")
        pending_keys = {(p["keys"]["pk"]["S"], p["keys"]["sk"]["S"]) for p in pending if "sk" in p["keys"]}

        # Chat RTO: the first answer from DR after the outage, and what failed before it.
        first_dr = wait_until(
            lambda: min(
                (c.ended for c in self.ledger.snapshot()
                 if c.kind == "chat" and c.ok and c.region == self.dr and c.started >= at),
                default=None,
            ),
            ceiling_s=s.ceiling_s,
        )  # fmt: skip
        rto = None if first_dr is None else first_dr - at
        failed = [
            c
            for c in self.ledger.snapshot()
            if not c.ok and c.ended >= at and (first_dr is None or c.ended <= first_dr)
        ]
        total = [c for c in self.ledger.snapshot() if c.ended >= at and (first_dr is None or c.ended <= first_dr)]
        self.report.add("chat RTO (outage -> first answer from DR)", "<= 60 s", _fmt_s(rto),
                        rto is not None and rto <= TARGETS["chat_rto_s"],
                        "client-side failover (tools/failover_client.py); with a domain, Route 53's health check adds "
                        "its interval and the record's TTL")  # fmt: skip
        self.report.add("requests failed during the failover", "reported", f"{len(failed)} of {len(total)}", None)
        self.report.facts["failed_during_failover"] = [c.error or str(c.status) for c in failed]

        # RPO, conversations: turns the primary acknowledged before the outage that DR lacks (its replica, now).
        dr_items = self._turns(self.dr)
        acked = [c for c in before if c.kind == "chat" and c.ok and c.turn and c.region == self.primary]
        lost = []
        for c in acked:
            key = (self.users[c.user].sub, f"T#{c.conversation_id}#{c.turn:06d}")
            item = dr_items.get(key)
            if item is None or item["user"]["S"] != c.question:
                lost.append((c, key))
        window = max((at - c.ended for c, _ in lost), default=0.0)
        self.report.add("RPO conversations (acknowledged turns DR lacks)", "<= 1 s",
                        f"{_fmt_s(window)} ({len(lost)} of {len(acked)} turns)",
                        window <= TARGETS["rpo_conversations_s"])  # fmt: skip
        self.report.facts["turns_lost_at_outage"] = [key for _, key in lost]
        self.report.facts["turns_lost_outside_replication_window"] = [k for _, k in lost if k not in pending_keys]

        # RPO, jobs: jobs the primary accepted before the outage that DR does not know.
        accepted = [c for c in before if c.kind == "job" and c.ok and c.job_id and c.region == self.primary]
        missing = [c for c in accepted if self._job(self.dr, c) is None]
        jobs_window = max((at - c.ended for c in missing), default=0.0)
        self.report.add("RPO jobs (accepted jobs DR lacks)", "<= 1 s",
                        f"{_fmt_s(jobs_window)} ({len(missing)} of {len(accepted)} jobs)",
                        jobs_window <= TARGETS["rpo_jobs_s"])  # fmt: skip

        # Jobs the primary accepted and had not answered: DR's recovery sweep adopts and answers them.
        known = [c for c in accepted if c not in missing]

        # Read from DR's replica of the jobs table, not through GET /jobs/{id}: a status read in DR adopts a stranded
        # job too, and this must show what the sweep does on its own, with nobody asking.
        def open_in_dr() -> list[Call]:
            return [c for c in known if (self._job(self.dr, c) or {}).get("status") not in ("done", "failed")]

        stranded = open_in_dr()
        self.progress(f"{len(stranded)} of the primary's accepted jobs were not answered: waiting for DR's sweep")
        left = wait_until(lambda: not open_in_dr() or None, ceiling_s=s.ceiling_s, poll_s=1.0)
        adopted_done_at = time.monotonic()
        still_open = open_in_dr() if left is None else []
        recovered = len(stranded) - len(still_open)
        adopted_by_dr = [c for c in stranded if (self._job(self.dr, c) or {}).get("owner_region") == self.dr]
        sweeps = self.sb.regions[self.dr].schedules.get("recovery")
        swept = sum(r.get("adopted", 0) for r in (sweeps.results if sweeps else []) if isinstance(r, dict))
        self.report.facts.update(stranded_owned_by_dr=len(adopted_by_dr), adopted_by_dr_sweep=swept)
        self.report.add("primary's open jobs answered in DR", "all", f"{recovered} of {len(stranded)}",
                        not still_open and (bool(stranded) or not known))  # fmt: skip
        jobs_rto = adopted_done_at - at if stranded else None
        self.report.facts["stranded_jobs"] = [c.job_id for c in stranded]
        self.report.facts["jobs_held_by_primary_at_outage"] = [c.job_id for c in [*stranded, *missing]]
        self.report.facts["stranded_jobs_open_in_dr"] = [c.job_id for c in still_open]
        self.report.facts["dr_answered_chat"] = rto is not None

        # Documents uploaded before the outage: those S3 had replicated are searchable in DR (ready there); those it
        # had not are the documents' RPO (they wait in the primary's bucket until it is back).
        docs = [c for c in before if c.kind == "document" and c.ok and c.uploaded and c.region == self.primary]
        replicated = [c for c in docs if self._in_bucket(self.dr, c)]
        stuck = [c for c in docs if c not in replicated]

        def not_ready_in_dr() -> list[Call]:
            states = self._document_states(self.dr)
            return [c for c in replicated if states.get(c.document_id or "") != "ready"]

        # Until every replicated one is ready in DR, or DR's pipeline has nothing left to do (then what is not ready
        # will not be).
        self._settle(lambda: not not_ready_in_dr(), [self.dr], replication=False)
        docs_at = time.monotonic()
        unready = not_ready_in_dr()
        docs_window = max((at - c.ended for c in [*stuck, *unready]), default=0.0)
        self.report.add("RPO documents (uploaded before, not searchable in DR)", "<= 15 min",
                        f"{_fmt_s(docs_window)} ({len(stuck) + len(unready)} of {len(docs)} documents)",
                        docs_window <= TARGETS["rpo_documents_s"])  # fmt: skip
        whole = max(x for x in (rto or 0.0, jobs_rto or 0.0, docs_at - at if docs else 0.0))
        self.report.add("whole app in DR (chat, jobs, documents)", "<= 15 min", _fmt_s(whole),
                        rto is not None and whole <= TARGETS["whole_app_s"] and not still_open)  # fmt: skip
        self.report.facts.update(
            jobs_recovery_s=jobs_rto,
            documents_ready_in_dr_s=docs_at - at if docs else None,
            documents_before_outage=len(docs),
            documents_replicated_before_outage=len(replicated),
            documents_unready_in_dr=[c.document_id for c in unready],
        )

        wait_until(lambda: time.monotonic() - at >= s.outage_s, ceiling_s=s.outage_s + 1)
        return {"at": at, "wall": time.time() - (time.monotonic() - at), "lost": lost, "missing_jobs": missing}

    def _restore(self, backup: dict[str, Any], outage: dict[str, Any]) -> None:
        """Restore the backup and the latest restorable time into new tables in DR; compare with what was written."""
        client = self.dynamodb[self.dr]
        suffix = uuid.uuid4().hex[:6]
        from_backup = f"{self.conversations}-drill-backup-{suffix}"
        client.restore_table_from_backup(TargetTableName=from_backup, BackupArn=backup["arn"])
        restored = self._turns(self.dr, from_backup)
        mismatched = [
            c for c in backup["expected"]
            if (item := restored.get((self.users[c.user].sub, f"T#{c.conversation_id}#{c.turn:06d}"))) is None
            or item["user"]["S"] != c.question or item["assistant"]["S"] != c.answer
        ]  # fmt: skip
        self.report.add("restore from backup = what was written", "every turn",
                        f"{len(backup['expected']) - len(mismatched)} of {len(backup['expected'])} turns",
                        not mismatched and bool(backup["expected"]))  # fmt: skip

        cut = time.monotonic()
        acked_in_dr = [
            c
            for c in self.ledger.snapshot()
            if c.kind == "chat" and c.ok and c.turn and c.region == self.dr and c.ended < cut
        ]
        latest = f"{self.conversations}-drill-pitr-{suffix}"
        client.restore_table_to_point_in_time(
            SourceTableName=self.conversations, TargetTableName=latest, UseLatestRestorableTime=True
        )
        source = self._turns(self.dr)
        pitr = self._turns(self.dr, latest)
        missing = [
            c for c in acked_in_dr if (self.users[c.user].sub, f"T#{c.conversation_id}#{c.turn:06d}") not in pitr
        ]
        changed = [k for k, item in pitr.items() if k[1].startswith("T#") and source.get(k) != item]
        self.report.add("restore to the latest restorable time", "every turn",
                        f"{len(acked_in_dr) - len(missing)} of {len(acked_in_dr)} turns, {len(changed)} differ",
                        not missing and not changed)  # fmt: skip

        earlier = f"{self.conversations}-drill-pitr-earlier-{suffix}"
        client.restore_table_to_point_in_time(
            SourceTableName=self.conversations, TargetTableName=earlier, RestoreDateTime=backup["wall"]
        )
        after_backup = [
            c
            for c in self.ledger.snapshot()
            if c.kind == "chat" and c.ok and c.turn and c.region == self.dr and c.started > backup["monotonic"]
        ]
        back_in_time = self._turns(self.dr, earlier)
        later_present = [
            c for c in after_backup if (self.users[c.user].sub, f"T#{c.conversation_id}#{c.turn:06d}") in back_in_time
        ]
        honoured = not later_present
        measured = "as it was" if honoured else f"the current items ({len(later_present)} later turns)"
        note = (
            ""
            if honoured
            else (
                "moto 5.2 ignores RestoreDateTime (it copies the source's current items): PITR's time travel is not "
                "tested here; AWS Backup's restore testing plan covers it in AWS"
            )
        )
        self.report.add("restore to an earlier point in time", "the table as it was", measured,
                        True if honoured else None, note)  # fmt: skip
        self.report.facts.update(
            backup_mismatched=len(mismatched), backup_expected=len(backup["expected"]),
            pitr_missing=len(missing), pitr_changed=len(changed), pitr_time_honoured=honoured,
        )  # fmt: skip
        self.progress("restored the backup and the latest point in time into new tables in DR, and compared them")

    def _failback(self, outage: dict[str, Any], traffic: Traffic) -> None:
        s = self.settings
        back = time.monotonic()
        self.sb.recover(self.primary)
        self.progress(f"the primary is back: replication resumes, clients fail back after {s.client_cooldown_s:g} s")
        drained = self.sb.wait_replicated(timeout_s=s.ceiling_s)
        first_primary = wait_until(
            lambda: min(
                (c.ended for c in self.ledger.snapshot()
                 if c.kind == "chat" and c.ok and c.region == self.primary and c.started >= back),
                default=None,
            ),
            ceiling_s=s.ceiling_s,
        )  # fmt: skip
        wait_until(lambda: time.monotonic() - back >= s.failback_s, ceiling_s=s.failback_s + 1)
        self.report.add("failback: first answer from the primary", "reported",
                        _fmt_s(None if first_primary is None else first_primary - back), None,
                        "the failover client parks a failed region for its cooldown, then probes /health")  # fmt: skip
        self.report.facts.update(failback_drained=drained, failed_back=first_primary is not None)

    def _final_checks(self) -> None:
        s = self.settings
        calls = self.ledger.snapshot()
        # Every accepted job finishes (the primary's queue still holds the adopted ones: its worker must drop them).
        jobs = [c for c in calls if c.kind == "job" and c.ok and c.job_id]

        def unfinished() -> list[Call]:
            return [
                c for c in jobs
                if (self._job(self.primary, c) or {}).get("status") not in ("done", "failed")
            ]  # fmt: skip

        self.progress("traffic stopped: waiting for every accepted job, the primary's queue and the replication")
        left = wait_until(lambda: not unfinished() or None, ceiling_s=s.ceiling_s, poll_s=1.0)
        open_jobs = unfinished() if left is None else []
        # The primary's queue holds the messages of the jobs DR adopted: let its worker see them all (and drop
        # or replay them) before counting answers.
        wait_until(
            lambda: all(_jobs_settled(self.sb, region) for region in (self.primary, self.dr)),
            ceiling_s=s.ceiling_s,
            poll_s=1.0,
        )
        self.sb.wait_replicated(timeout_s=s.ceiling_s)
        from local.bedrock_emulator import question_digest

        self.progress("comparing: answers per job, every acknowledged turn in both regions, duplicates")
        answers = self._answers()
        counts = Counter(answers.get(question_digest(c.question), 0) for c in jobs)
        twice = [c.job_id for c in jobs if answers.get(question_digest(c.question), 0) > 1]
        never = [c.job_id for c in jobs if answers.get(question_digest(c.question), 0) == 0]
        # Jobs the primary held when it went down (queued there, or not yet replicated): at failback its worker
        # answers them from its queue while DR's sweep may adopt them (their heartbeats went stale during the
        # outage) before the other region's writes have replicated; both regions then answer. Any other job
        # answered twice is a different failure.
        held = set(self.report.facts.get("jobs_held_by_primary_at_outage", []))
        raced = [job for job in twice if job in held]
        note = ""
        if raced:
            note = (
                f"{len(raced)} job(s) the primary held at the outage were answered in both regions at failback: DR's "
                "sweep adopts open jobs with stale heartbeats as soon as they replicate, while the returning "
                "primary's worker answers them from its queue (the adoption rule in core/jobs.py needs the owner "
                "region's liveness, not only the job's heartbeat)"
            )
        self.report.add("every accepted job answered exactly once", "all",
                        f"{counts.get(1, 0)} of {len(jobs)} (twice: {len(twice)}, unanswered: {len(never)})",
                        not twice and not never and not open_jobs, note)  # fmt: skip

        # Nothing acknowledged lost, no turn duplicated, both replicas equal.
        east, west = self._turns(self.primary), self._turns(self.dr)
        acked = [c for c in calls if c.kind == "chat" and c.ok and c.turn]
        outage_lost = {tuple(k) for k in self.report.facts.get("turns_lost_at_outage", [])}
        gone = []
        for c in acked:
            key = (self.users[c.user].sub, f"T#{c.conversation_id}#{c.turn:06d}")
            if any((item := items.get(key)) is None or item["user"]["S"] != c.question for items in (east, west)):
                gone.append(key)
        overwritten = [k for k in gone if k in outage_lost]
        really_gone = [k for k in gone if k not in outage_lost]
        self.report.add("failback: acknowledged turns kept", "all but the RPO window's",
                        f"{len(acked) - len(gone)} of {len(acked)} ({len(overwritten)} of the window overwritten)",
                        not really_gone)  # fmt: skip
        duplicates = _duplicated_turns(east.values())
        inconsistent = _header_mismatches(east)
        self.report.add("failback: conversations without duplicates", "0 duplicated turns",
                        f"{len(duplicates)} duplicated, {len(inconsistent)} headers off",
                        not duplicates and not inconsistent)  # fmt: skip
        differ = _differences(east, west)
        self.report.add("failback: replicas converged", "identical",
                        "identical" if not differ else f"{differ} items differ", not differ)  # fmt: skip
        docs = [c for c in calls if c.kind == "document" and c.ok and c.uploaded]
        docs_dr = [c for c in docs if c.region == self.dr]

        regions = (self.primary, self.dr)

        def unready_somewhere() -> list[tuple[str, str]]:
            states = {region: self._document_states(region) for region in regions}
            return [
                (c.document_id or "", r) for c in docs for r in regions if states[r].get(c.document_id or "") != "ready"
            ]

        self._settle(lambda: not unready_somewhere(), list(regions), replication=True)
        unready = unready_somewhere()
        indexed = {region: self._indexed(region) for region in regions}
        unsearchable = [(c.document_id or "", r) for c in docs for r in regions if c.document_id not in indexed[r]]
        # Indexed, yet its status there is not ready: the region's status write was lost, not its ingest (what
        # one shared item per document did under global tables' last writer wins; each region's status is its own
        # item now, adapters.document_catalog).
        overwritten = [(doc, r) for doc, r in unready if doc in indexed[r]]
        self.report.add("failback: documents searchable in both regions", "all",
                        f"{len(docs) * 2 - len(unsearchable)} of {len(docs) * 2} (document, region)",
                        not unsearchable)  # fmt: skip
        self.report.add("failback: documents' status ready in both regions", "all",
                        f"{len(docs) * 2 - len(unready)} of {len(docs) * 2} ({len(overwritten)} indexed, status lost)",
                        not unready,
                        "" if not overwritten else "a region's status item disagrees with its index "
                        "(its status write lost or never made: see documents_status_overwritten)")  # fmt: skip
        self.report.facts.update(
            jobs_answered_twice=twice, jobs_never_answered=never, jobs_open=[c.job_id for c in open_jobs],
            turns_gone=really_gone, turns_overwritten=overwritten, duplicated_turns=duplicates,
            header_mismatches=inconsistent, replicas_equal=east == west, documents_uploaded_in_dr=len(docs_dr),
            documents_unsearchable_after_failback=unsearchable,
            documents_unready_after_failback=unready,
            documents_status_overwritten=overwritten,
            requests=Counter(c.kind for c in calls), failures=Counter(c.kind for c in calls if not c.ok),
        )  # fmt: skip


def _differences(a: dict[Any, Any], b: dict[Any, Any]) -> int:
    return sum(1 for key in set(a) | set(b) if a.get(key) != b.get(key))


def _duplicated_turns(items: Iterable[dict[str, Any]]) -> list[str]:
    """Turns whose question appears more than once in their conversation."""
    seen: Counter[tuple[str, str, str]] = Counter()
    for item in items:
        sk = item["sk"]["S"]
        if sk.startswith("T#"):
            seen[(item["pk"]["S"], sk.split("#")[1], item["user"]["S"])] += 1
    return [f"{pk}/{conversation}" for (pk, conversation, _), n in seen.items() if n > 1]


def _header_mismatches(items: dict[tuple[str, str], dict[str, Any]]) -> list[str]:
    """Conversations whose header's turn_count is not the number of their turns."""
    turns: Counter[tuple[str, str]] = Counter()
    headers = {}
    for (pk, sk), item in items.items():
        if sk.startswith("T#"):
            turns[(pk, sk.split("#")[1])] += 1
        elif sk.startswith("C#"):
            headers[(pk, sk[2:])] = int(item.get("turn_count", {}).get("N", "0"))
    return [f"{pk}/{cid}" for (pk, cid), count in headers.items() if turns[(pk, cid)] != count]


def _jobs_settled(sandbox: Any, region: str) -> bool:
    """Nothing for the region's worker to do now: no message visible or delayed in its jobs queue and no batch in
    its hands. (A message a failed attempt left in flight reappears after the visibility timeout, minutes away; its
    job is answered by then, and the redelivery replays the stored answer.)"""
    sqs = boto3.client("sqs", endpoint_url=sandbox.aws_url, region_name=region)
    attributes = sqs.get_queue_attributes(
        QueueUrl=sandbox.regions[region].queue_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesDelayed"],
    )["Attributes"]
    worker = sandbox.regions[region].worker
    return all(int(value) == 0 for value in attributes.values()) and (worker is None or worker.in_flight == 0)


def _sign_in_users(sandbox: Any, count: int, *, prefix: str) -> list[str]:
    from local.users import signed_in_users

    return signed_in_users(sandbox, count, prefix=prefix, password=PASSWORD)


def run(
    settings: DrillSettings,
    *,
    cdk_out: Path,
    progress: Callable[[str], None] = lambda message: print(f"==> {message}", flush=True),
) -> DrillReport:
    """Start the two-region sandbox, run the drill, stop the sandbox; the report."""
    from local import sandbox as sandbox_module

    overrides = {}
    if settings.stranded_after_s is not None:
        overrides["JOB_STRANDED_AFTER_SECONDS"] = f"{settings.stranded_after_s:g}"
    saved_state_file = sandbox_module.STATE_FILE
    try:
        with tempfile.TemporaryDirectory() as state:
            sandbox_module.STATE_FILE = Path(state) / "state.json"  # never the state of a `make dev` beside it
            sandbox = sandbox_module.start(
                cdk_out=cdk_out,
                progress=progress,
                dr=True,
                replication_lag_s=settings.replication_lag_s,
                schedule_periods={"recovery": settings.sweep_every_s} if settings.sweep_every_s else None,
                env_overrides=overrides,
                documents_lag_s=settings.documents_lag_s,
            )
            try:
                schedules = sandbox.regions[sandbox.dr_region].schedules
                report = Drill(sandbox, settings, progress).run()
                report.facts["sweep_every_s"] = {name: s.every_s for name, s in schedules.items()}
                report.facts["stranded_after_s"] = sandbox.regions[sandbox.dr_region].worker_env.get(
                    "JOB_STRANDED_AFTER_SECONDS"
                )
                return report
            finally:
                sandbox.stop()
    finally:
        sandbox_module.STATE_FILE = saved_state_file


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--quick", action="store_true", help="short phases, sweep every second, jobs stranded after 8 s"
    )
    parser.add_argument("--cdk-out", type=Path, default=ROOT / "cdk.out.local")
    parser.add_argument("--users", type=int)
    parser.add_argument("--warmup", type=float, help="seconds of traffic before the outage")
    parser.add_argument("--outage", type=float, help="seconds at least on DR")
    parser.add_argument("--replication-lag", type=float, help="global tables' lag in seconds (default 0.5)")
    parser.add_argument("--json", type=Path, help="write the report (figures and facts) here")
    args = parser.parse_args(argv)
    settings = DrillSettings.quick_mode() if args.quick else DrillSettings()
    changes = {
        name: value
        for name, value in (("users", args.users), ("warmup_s", args.warmup), ("outage_s", args.outage),
                            ("replication_lag_s", args.replication_lag))
        if value is not None
    }  # fmt: skip
    settings = replace(settings, **changes)
    began = time.monotonic()
    report = run(
        settings,
        cdk_out=args.cdk_out,
        progress=lambda message: print(f"==> [{time.monotonic() - began:6.1f} s] {message}", flush=True),
    )
    print()
    print(report.table())
    if settings.quick:
        print(
            "\n(quick mode: the recovery sweep runs every second and jobs are stranded after "
            f"{settings.stranded_after_s:g} s; the deployed timings are a minute and the template's value)"
        )
    if args.json:
        args.json.write_text(json.dumps({"figures": [asdict(f) for f in report.figures], "facts": report.facts,
                                         "settings": report.settings}, indent=2, default=str))  # fmt: skip
    print(f"\ndrill {'PASSED' if report.passed else 'FAILED'}", flush=True)
    return 0 if report.passed else 1


if __name__ == "__main__":
    sys.exit(main())
