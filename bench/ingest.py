"""Ingest benchmark: a mixed corpus through the real ingest handler against the embedding quota.

moto's server (S3 versioned bucket + DynamoDB), the Bedrock emulator (Titan embeddings under an `rpm` token
bucket that answers ThrottlingException past the quota) and the S3 Vectors emulator run as processes. The
ingest Lambda is sized as the stacks size it (stacks.lambda_settings: ingest_sizing and ingest_settings from
the knowledge config's embedding quota): that many execution environments, each its own `bootstrap()` paced
to its share (EMBED_RATE_PER_SECOND), one document per invocation (batch size 1), a failed message received
again after a short visibility timeout until max_receive_count, then parked (the DLQ).

Printed, in one run:
- ingest: documents, chunks, embedding throughput as a share of the quota (goal >= 90 %), throttles seen,
  retries/calls (goal <= 10 %), documents lost (goal 0), every bad document's failure code (count by code);
- rebuild (tools/rebuild_index.py's forced messages after the index is wiped): seconds per 1,000 chunks at
  the quota, against the quota's own floor;
- recall@k of the retrieval quality set (bench/corpus.py) over the emulator's hashed bag-of-words embeddings;
- chat latency p50/p99 with retrieval and without (the same ChatService wiring, the same emulators);
- knowledge RPO in the sandbox: a document put in the primary bucket until a search of the DR index finds it,
  p50/p99, on the sandbox's real knowledge side (local/knowledge.py start_knowledge, from freshly synthesized
  templates: both regions' buckets, S3 event notifications, replication, both ingest pumps), once with no extra
  replication lag and once with a simulated lag, with where the time went (the notifier's detection, the copy,
  the DR pipeline). This is the sandbox's pipeline latency; AWS's S3 RTC promises 15 minutes.

    make bench-ingest                  # 200 documents (a few minutes)
    BENCH_QUICK=1 make bench-ingest    # 60 documents
"""

from __future__ import annotations

import contextlib
import io
import itertools
import json
import os
import queue
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
import warnings
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

os.environ.update(
    {
        "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",  # the RPO run synthesizes the templates
        "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1",
        "POWERTOOLS_METRICS_NAMESPACE": "BulwarkBench", "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_SERVICE_NAME": "bench", "POWERTOOLS_LOG_LEVEL": "CRITICAL", "POWERTOOLS_METRICS_DISABLED": "true",
    }
)  # fmt: skip

warnings.filterwarnings("ignore", message="No application metrics to publish")  # a skipped event has none
QUICK = bool(os.environ.get("BENCH_QUICK"))
REGION = "us-east-1"
QUOTA_RPM = 600  # 10 embeddings per second: the knowledge config's default embed_quota_rpm
DOCUMENTS = 60 if QUICK else 200
CHAT_QUESTIONS = 30 if QUICK else 100
RPO_DOCUMENTS = 10 if QUICK else 30  # per lag setting, one at a time
RPO_LAG_S = 2.0  # the simulated replication lag of the second RPO run
RPO_GUARD_S = 120.0  # a document not searchable in DR by then is reported lost
# The notifier lists both buckets this often in the RPO runs (make dev: local/knowledge.POLL_INTERVAL_S, 0.5 s),
# so that the figure measures replication and the DR pipeline, not mostly the sandbox's polling.
RPO_POLL_S = 0.05
EMBED_MODEL = "amazon.titan-embed-text-v2:0"
CHAT_MODEL = "us.amazon.nova-lite-v1:0"
DIMENSIONS = 256
MAX_PAGES = 20
VISIBILITY_S = 1.0  # how soon a failed message is received again (the queue's is 6x the Lambda timeout)
OWNERS = [f"bench-owner-{n}" for n in range(5)]
QUALITY_OWNER = "bench-quality-owner"
TABLE, BUCKET, VECTOR_BUCKET, INDEX = "documents-bench", "documents-bench", "knowledge-bench", "chunks"


@contextmanager
def s3vectors_process() -> Iterator[str]:
    from local.processes import child, free_port

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with child([sys.executable, "-m", "local.s3vectors_emulator", "--port", str(port)],
               health_url=url + "/_emulator/health"):  # fmt: skip
        yield url


@contextmanager
def world(tmp: Path) -> Iterator[dict[str, Any]]:
    import boto3
    from botocore.config import Config

    from adapters.s3vectors import NON_FILTERABLE_KEYS
    from local.processes import emulator_process, moto_server
    from local.resources import create_table
    from stacks.config import AppConfig
    from stacks.lambda_settings import KnowledgeNames, TableNames, ingest_settings, ingest_sizing

    config = AppConfig.from_context(
        {"models": [{"model_id": CHAT_MODEL, "region": REGION}],
         "knowledge": {"embed_quota_rpm": QUOTA_RPM, "dimensions": DIMENSIONS, "max_pages": MAX_PAGES}}
    )  # fmt: skip
    sizing = ingest_sizing(config)
    tables = TableNames(conversations="conversations-bench", response_cache="cache-bench", jobs="jobs-bench",
                        idempotency="idem-bench", usage="usage-bench", documents=TABLE)  # fmt: skip
    names = KnowledgeNames(documents_bucket=BUCKET, vector_bucket=VECTOR_BUCKET, vector_index=INDEX)
    settings = ingest_settings(config, tables=tables, knowledge=names)
    faults = tmp / "faults.json"
    quota = {"rpm": QUOTA_RPM, "burst_s": 1, "latency_ms": [20, 60]}  # a one-second bucket: the quota binds
    faults.write_text(json.dumps({"default": {"latency_ms": [20, 60]}, "targets": {EMBED_MODEL: quota}}))
    with moto_server() as aws, emulator_process(faults) as bedrock_url, s3vectors_process() as vectors_url:
        s3 = boto3.client("s3", endpoint_url=aws, region_name=REGION)
        dynamodb = boto3.client("dynamodb", endpoint_url=aws, region_name=REGION,
                                config=Config(max_pool_connections=64))  # fmt: skip
        s3.create_bucket(Bucket=BUCKET)
        s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
        create_table(dynamodb, TABLE, [("pk", "HASH"), ("sk", "RANGE")])
        s3vectors = boto3.client("s3vectors", region_name=REGION, endpoint_url=vectors_url,
                                 config=Config(retries={"total_max_attempts": 1}, max_pool_connections=64))  # fmt: skip
        s3vectors.create_vector_bucket(vectorBucketName=VECTOR_BUCKET)

        def create_index() -> None:
            s3vectors.create_index(
                vectorBucketName=VECTOR_BUCKET, indexName=INDEX, dataType="float32", dimension=DIMENSIONS,
                distanceMetric="cosine", metadataConfiguration={"nonFilterableMetadataKeys": list(NON_FILTERABLE_KEYS)},
            )  # fmt: skip

        create_index()

        def bedrock(config: Any) -> Any:
            return boto3.client("bedrock-runtime", region_name=REGION, endpoint_url=bedrock_url, config=config)

        yield {"config": config, "sizing": sizing, "settings": settings, "s3": s3, "dynamodb": dynamodb,
               "s3vectors": s3vectors, "bedrock": bedrock, "bedrock_url": bedrock_url, "create_index": create_index,
               "aws": aws, "tables": tables, "names": names, "vectors_url": vectors_url}  # fmt: skip


def emulator_stats(url: str, model_id: str) -> dict[str, Any]:
    with urllib.request.urlopen(url + "/_emulator/stats") as response:
        stats = json.loads(response.read())
    return stats.get(f"{model_id}@{REGION}", {"calls": 0, "outcomes": {}})  # type: ignore[no-any-return]


class IngestEnvironments:
    """The ingest Lambda's reserved concurrency: N execution environments taking one message at a time."""

    def __init__(self, w: dict[str, Any]) -> None:
        from handlers import ingest
        from local.lambda_context import LocalContext

        self._context = LocalContext
        self._settings = w["settings"]
        self._messages: queue.Queue[tuple[str, int] | None] = queue.Queue()
        self._outstanding = 0
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self.parked: list[str] = []
        self.redeliveries = 0
        self._threads = []
        for _ in range(w["sizing"].max_concurrency):
            handler = ingest.bootstrap(self._settings, dynamodb=w["dynamodb"], s3=w["s3"], s3vectors=w["s3vectors"],
                                       bedrock=w["bedrock"], region=REGION)  # fmt: skip
            thread = threading.Thread(target=self._run, args=(handler,), daemon=True)
            thread.start()
            self._threads.append(thread)

    def send(self, body: str) -> None:
        with self._lock:
            self._outstanding += 1
        self._messages.put((body, 1))

    def drain(self) -> None:
        with self._idle:
            while self._outstanding:
                self._idle.wait()

    def stop(self) -> None:
        for _ in self._threads:
            self._messages.put(None)

    def _run(self, handler: Any) -> None:
        while (item := self._messages.get()) is not None:
            body, receives = item
            record = {"messageId": "m", "receiptHandle": "r", "eventSource": "aws:sqs", "body": body,
                      "attributes": {"ApproximateReceiveCount": str(receives)}, "messageAttributes": {},
                      "md5OfBody": "", "eventSourceARN": "arn:aws:sqs:us-east-1:1:ingest",
                      "awsRegion": REGION}  # fmt: skip
            context = self._context(function_name="ingest", timeout_s=self._settings.ingest_deadline_s / 0.8)
            failed = handler({"Records": [record]}, context)["batchItemFailures"]
            if failed and receives < self._settings.max_receive_count:
                self.redeliveries += 1
                threading.Timer(VISIBILITY_S, self._messages.put, args=((body, receives + 1),)).start()
                continue
            with self._idle:
                if failed:
                    self.parked.append(body)
                self._outstanding -= 1
                self._idle.notify_all()


def notification(key: str, version_id: str, size: int, sequencer: int) -> str:
    obj = {"key": quote_plus(key), "versionId": version_id, "size": size, "eTag": "0", "sequencer": f"{sequencer:018X}"}
    return json.dumps({"Records": [{"eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": REGION,
                                    "eventName": "ObjectCreated:Put", "eventTime": "2027-01-01T00:00:00.000Z",
                                    "s3": {"bucket": {"name": BUCKET}, "object": obj}}]})  # fmt: skip


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def run(tmp: Path) -> dict[str, Any]:
    from adapters.documents import DynamoDocumentStore
    from adapters.s3vectors import S3VectorIndex
    from bench.corpus import QUALITY_PASSAGES, QUALITY_QUESTIONS, mixed_corpus, recall_at_k
    from core.documents import DocumentState
    from local.bedrock_emulator import embedding
    from tools.rebuild_index import current_documents, ready_chunks, rebuild_message

    report: dict[str, Any] = {}
    with world(tmp) as w:
        sizing = w["sizing"]
        report["sizing"] = (sizing.max_concurrency, sizing.embeds_per_second, sizing.rate_per_environment)
        corpus = mixed_corpus(DOCUMENTS, max_pages=MAX_PAGES)
        sequencer = itertools.count(0x0055AED6DCD90281E5)
        expected: dict[tuple[str, str], str | None] = {}
        bodies = []
        for n, document in enumerate(corpus):  # uploads first, as users would have done before the burst
            owner, document_id = OWNERS[n % len(OWNERS)], f"doc-{n:04d}"
            key = f"documents/{owner}/{document_id}"
            put = w["s3"].put_object(Bucket=BUCKET, Key=key, Body=document.data, ContentType=document.content_type)
            expected[(owner, document_id)] = document.expected_code
            bodies.append(notification(key, put["VersionId"], len(document.data), next(sequencer)))
        for name, text in QUALITY_PASSAGES.items():
            key = f"documents/{QUALITY_OWNER}/{name}"
            put = w["s3"].put_object(Bucket=BUCKET, Key=key, Body=text.encode(), ContentType="text/plain")
            expected[(QUALITY_OWNER, name)] = None
            bodies.append(notification(key, put["VersionId"], len(text), next(sequencer)))

        environments = IngestEnvironments(w)
        before = emulator_stats(w["bedrock_url"], EMBED_MODEL)
        started = time.monotonic()
        for body in bodies:
            environments.send(body)
        environments.drain()
        elapsed = time.monotonic() - started
        after = emulator_stats(w["bedrock_url"], EMBED_MODEL)
        calls = after["calls"] - before["calls"]
        ok = after["outcomes"].get("ok", 0) - before["outcomes"].get("ok", 0)
        throttled = after["outcomes"].get("ThrottlingException", 0) - before["outcomes"].get("ThrottlingException", 0)

        store = DynamoDocumentStore(client=w["dynamodb"], table_name=TABLE)
        lost, wrong, codes = [], [], Counter[str]()
        for (owner, document_id), code in expected.items():
            record = store.get(owner, document_id)
            status = record.status_in(REGION) if record else None
            if status is None or status.state not in (DocumentState.READY, DocumentState.FAILED):
                lost.append(document_id)
            elif status.state is DocumentState.FAILED:
                codes[str(status.code)] += 1
                if code != status.code or not status.reason:
                    wrong.append(f"{document_id}: expected {code}, got failed {status.code}")
            elif code is not None:
                wrong.append(f"{document_id}: expected {code}, got ready")
        documents, chunks = ready_chunks(w["dynamodb"], TABLE, REGION)
        report["ingest"] = {
            "documents": len(expected), "ready": documents, "chunks": chunks, "elapsed_s": elapsed,
            "embeds": ok, "calls": calls, "throttled": throttled,
            "share": ok / elapsed / sizing.embeds_per_second,
            "retries_per_call": (calls - ok) / calls if calls else 0.0,
            "lost": lost, "parked": len(environments.parked), "wrong": wrong, "codes": dict(codes),
            "bad": sum(1 for code in expected.values() if code), "redeliveries": environments.redeliveries,
        }  # fmt: skip

        index = S3VectorIndex(client=w["s3vectors"], bucket_name=VECTOR_BUCKET, index_name=INDEX, dimension=DIMENSIONS)

        def ranked() -> dict[str, list[str]]:
            return {q: [p.document_id for p in index.query(QUALITY_OWNER, embedding(q, DIMENSIONS, True), 5)]
                    for q, _ in QUALITY_QUESTIONS}  # fmt: skip

        quality = ranked()
        report["recall"] = {k: recall_at_k(quality, k) for k in (1, 3, 5)}

        # Rebuild: the index is lost; every current object is sent again, forced, through the same pipeline.
        w["s3vectors"].delete_index(vectorBucketName=VECTOR_BUCKET, indexName=INDEX)
        w["create_index"]()
        before = emulator_stats(w["bedrock_url"], EMBED_MODEL)
        started = time.monotonic()
        objects = list(current_documents(w["s3"], BUCKET))
        for document in objects:
            environments.send(rebuild_message(BUCKET, document, REGION))
        environments.drain()
        rebuild_s = time.monotonic() - started
        after = emulator_stats(w["bedrock_url"], EMBED_MODEL)
        rebuilt = after["outcomes"].get("ok", 0) - before["outcomes"].get("ok", 0)
        report["rebuild"] = {
            "objects": len(objects), "chunks": rebuilt, "elapsed_s": rebuild_s,
            "per_1000_s": rebuild_s / rebuilt * 1000 if rebuilt else float("nan"),
            "floor_per_1000_s": 1000 / sizing.embeds_per_second, "recall_after": recall_at_k(ranked(), 3),
            "throttled": after["outcomes"].get("ThrottlingException", 0)
            - before["outcomes"].get("ThrottlingException", 0),
        }  # fmt: skip
        environments.stop()
        report["chat"] = chat_latency(w, [q for q, _ in QUALITY_QUESTIONS])
        report["rpo"] = knowledge_rpo(tmp, w)
    return report


def knowledge_rpo(tmp: Path, w: dict[str, Any]) -> dict[str, Any]:
    """Upload in the primary -> searchable in DR, through the sandbox's knowledge side on the same processes."""
    from aws_cdk import App

    from adapters.s3vectors import S3VectorIndex
    from app import build_app
    from local.bedrock_emulator import embedding
    from local.knowledge import POLL_INTERVAL_S, ReplicationEvent, Replicator, start_knowledge
    from local.templates import load
    from stacks.config import CONTEXT_KEY, AppConfig

    root = Path(__file__).resolve().parents[1]
    context = json.loads((root / "cdk.json").read_text())["context"]
    config = AppConfig.from_context(context[CONTEXT_KEY])
    cdk_out = tmp / "cdk.out"
    app = App(context={**context, "aws:cdk:bundling-stacks": []}, outdir=str(cdk_out))
    build_app(app, nag=False)
    app.synth()
    templates = load(cdk_out, config.prefix)
    primary, dr = config.primary_region, config.dr_region
    os.environ.update(
        {f"AWS_ENDPOINT_URL_{service}": w["aws"] for service in ("S3", "SQS", "DYNAMODB")}
        | {"AWS_ENDPOINT_URL_S3VECTORS": w["vectors_url"], "AWS_ENDPOINT_URL_BEDROCK_RUNTIME": w["bedrock_url"],
           "DATA_READ_TIMEOUT_SECONDS": "3"}
    )  # fmt: skip
    tables = {logical_id: f"rpo-{logical_id}".lower() for logical_id in templates.tables}
    for logical_id, spec in templates.tables.items():
        w["dynamodb"].create_table(
            TableName=tables[logical_id], KeySchema=spec.key_schema, BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[{"AttributeName": k["AttributeName"], "AttributeType": "S"} for k in spec.key_schema],
        )  # fmt: skip
    replications: dict[str, ReplicationEvent] = {}
    replicator = Replicator(on_replicated=lambda event: replications.setdefault(event.key, event))
    import boto3

    results: dict[str, Any] = {"poll_interval_s": RPO_POLL_S, "dev_poll_interval_s": POLL_INTERVAL_S,
                               "documents": RPO_DOCUMENTS}  # fmt: skip
    with contextlib.ExitStack() as stack:
        names = start_knowledge(templates, stack=stack, tables=tables, table_region=primary, replicator=replicator,
                                poll_interval_s=RPO_POLL_S)  # fmt: skip
        s3 = boto3.client("s3", region_name=primary, endpoint_url=w["aws"])
        dimension = next(spec.dimension for spec in templates.knowledge if spec.region == dr)
        index = S3VectorIndex(
            client=boto3.client("s3vectors", region_name=dr, endpoint_url=w["vectors_url"]),
            bucket_name=names[dr].vector_bucket, index_name=names[dr].vector_index, dimension=dimension,
        )  # fmt: skip
        for label, lag in (("no extra lag", 0.0), (f"{RPO_LAG_S:g} s simulated lag", RPO_LAG_S)):
            replicator.lag_s = lag
            samples, lost = [], 0
            for n in range(RPO_DOCUMENTS):
                owner, document_id = f"rpo-owner-{lag:g}-{n}", f"rpo-doc-{n:03d}"
                key = f"documents/{owner}/{document_id}"
                text = f"Replication drill note {n}: the harbour light of Skerrowby is checked at {n} o'clock."
                question = embedding(text, dimension, True)
                started = time.monotonic()
                s3.put_object(Bucket=names[primary].documents_bucket, Key=key, Body=text.encode(),
                              ContentType="text/plain")  # fmt: skip
                while not index.query(owner, question, 1):
                    if time.monotonic() - started > RPO_GUARD_S:
                        lost += 1
                        break
                    time.sleep(0.02)  # the measurement's own resolution
                else:
                    searchable = time.monotonic()
                    copy = replications.get(key)
                    samples.append(
                        {
                            "rpo_s": searchable - started,
                            "detect_s": copy.seen_at - started if copy else float("nan"),
                            "copy_s": copy.replicated_at - copy.seen_at if copy else float("nan"),
                            "dr_pipeline_s": searchable - copy.replicated_at if copy else float("nan"),
                        }
                    )
            rpo = [sample["rpo_s"] for sample in samples]
            results[label] = {
                "lag_s": lag, "lost": lost, "n": len(rpo),
                "p50": statistics.median(rpo) if rpo else float("nan"),
                "p99": percentile(rpo, 0.99) if rpo else float("nan"),
                **{part: statistics.median(sample[part] for sample in samples) if samples else float("nan")
                   for part in ("detect_s", "copy_s", "dr_pipeline_s")},
            }  # fmt: skip
    return results


def chat_latency(w: dict[str, Any], questions: list[str]) -> dict[str, dict[str, float]]:
    """The same ChatService wiring with the knowledge names (retrieval: embed the question, query the index,
    name the cited documents) and without; questions asked in turn, alternating, so both see the same load."""
    from core.models import ChatRequest
    from handlers.settings import TargetSetting
    from handlers.wiring import build_chat_service
    from local.resources import create_tables
    from stacks.lambda_settings import chat_settings

    targets = (TargetSetting(model_id=CHAT_MODEL, region=REGION, max_tokens=256),)
    with_knowledge = chat_settings(w["config"], tables=w["tables"], targets=targets, queue_url="http://unused",
                                   knowledge=w["names"]).but(cache_table_name=None)  # fmt: skip
    without = with_knowledge.but(documents_table_name=None, vector_bucket_name=None, vector_index_name=None)
    create_tables(w["dynamodb"], without)

    def factory(region: str, config: Any) -> Any:
        return w["bedrock"](config)

    services = {
        "with retrieval": build_chat_service(with_knowledge, dynamodb=w["dynamodb"], bedrock_factory=factory,
                                             s3vectors=w["s3vectors"]),
        "without": build_chat_service(without, dynamodb=w["dynamodb"], bedrock_factory=factory),
    }  # fmt: skip
    for service in services.values():  # clients made and connections opened, as in a warm Lambda
        service.answer(user_id=QUALITY_OWNER, request=ChatRequest(message=questions[0]))
    timings: dict[str, list[float]] = {name: [] for name in services}
    cited = 0
    for i in range(CHAT_QUESTIONS):
        for name, service in services.items():
            started = time.perf_counter()
            answer = service.answer(user_id=QUALITY_OWNER, request=ChatRequest(message=questions[i % len(questions)]))
            timings[name].append((time.perf_counter() - started) * 1000)
            if name == "with retrieval" and getattr(answer, "citations", None):
                cited += 1
    result = {name: {"p50": statistics.median(t), "p99": percentile(t, 0.99)} for name, t in timings.items()}
    result["with retrieval"]["cited"] = cited / CHAT_QUESTIONS
    return result


def main() -> None:
    print(f"ingest benchmark: {DOCUMENTS} documents (+{12} quality passages), embedding quota {QUOTA_RPM}/min")
    with tempfile.TemporaryDirectory() as tmp, contextlib.redirect_stdout(io.StringIO()):
        report = run(Path(tmp))
    concurrency, rate, share = report["sizing"]
    print(f"sizing as the stacks: {concurrency} environments x {share}/s = {rate:.1f} embeds/s (the quota)")
    r = report["ingest"]
    print(f"{'documents':>9} {'ready':>5} {'chunks':>6} {'elapsed s':>9} {'embeds/s':>8} {'quota %':>7} "
          f"{'throttled':>9} {'retries/calls':>13} {'lost':>4} {'parked':>6}")  # fmt: skip
    print(f"{r['documents']:9d} {r['ready']:5d} {r['chunks']:6d} {r['elapsed_s']:9.1f} "
          f"{r['embeds'] / r['elapsed_s']:8.2f} {100 * r['share']:6.1f}% {r['throttled']:9d} "
          f"{100 * r['retries_per_call']:12.1f}% {len(r['lost']):4d} {r['parked']:6d}")  # fmt: skip
    print(f"goals: quota share >= 90 % {'met' if r['share'] >= 0.9 else 'NOT met'}; retries/calls <= 10 % "
          f"{'met' if r['retries_per_call'] <= 0.1 else 'NOT met'}; "
          f"lost 0 {'met' if not r['lost'] else 'NOT met'}")  # fmt: skip
    failed = sum(r["codes"].values())
    print(
        f"bad documents: {r['bad']} in the corpus, {failed} failed with a reason: "
        + ", ".join(f"{code} {count}" for code, count in sorted(r["codes"].items()))
    )
    for problem in r["wrong"] + [f"{d}: lost" for d in r["lost"]]:
        print(f"  MISMATCH {problem}")
    b = report["rebuild"]
    print(f"rebuild (index wiped, {b['objects']} objects forced through ingest): {b['chunks']} chunks in "
          f"{b['elapsed_s']:.1f} s = {b['per_1000_s']:.0f} s per 1,000 chunks (the quota's floor "
          f"{b['floor_per_1000_s']:.0f} s, ratio {b['per_1000_s'] / b['floor_per_1000_s']:.2f}); "
          f"throttled {b['throttled']}; recall@3 after {b['recall_after']:.2f}")  # fmt: skip
    print("retrieval quality (hashed bag-of-words embeddings): "
          + ", ".join(f"recall@{k} {v:.2f}" for k, v in report["recall"].items()))  # fmt: skip
    c = report["chat"]
    print(f"chat latency, {CHAT_QUESTIONS} questions each, same run: with retrieval p50 "
          f"{c['with retrieval']['p50']:.1f} ms p99 {c['with retrieval']['p99']:.1f} ms "
          f"(cited {100 * c['with retrieval']['cited']:.0f} %); without p50 {c['without']['p50']:.1f} ms "
          f"p99 {c['without']['p99']:.1f} ms; "
          f"p50 ratio {c['with retrieval']['p50'] / c['without']['p50']:.2f}")  # fmt: skip
    rpo = report["rpo"]
    print(f"knowledge RPO in the sandbox (put in the primary bucket -> found by a search of the DR index), "
          f"{rpo['documents']} documents one at a time per setting (p99 of so few is about the maximum):")  # fmt: skip
    print(f"  {'replication':<22} {'p50 s':>6} {'p99 s':>6} {'lost':>4}   median parts: {'detect':>6} "
          f"{'copy':>6} {'DR ingest':>9}")  # fmt: skip
    for label, figures in rpo.items():
        if isinstance(figures, dict):
            parts = f"{figures['detect_s']:6.2f} {figures['copy_s']:6.2f} {figures['dr_pipeline_s']:9.2f}"
            print(f"  {label:<22} {figures['p50']:6.2f} {figures['p99']:6.2f} {figures['lost']:4d}   "
                  f"{'':>13} {parts}")  # fmt: skip
    print(f"  detect: the sandbox notifier lists both buckets every {rpo['poll_interval_s']:g} s here (make dev: "
          f"every {rpo['dev_poll_interval_s']:g} s, about {rpo['dev_poll_interval_s'] / 2:g} s more on average); copy: "
          "the lag plus moto's get and put; DR ingest: the replica's notification (at once), the SQS pump (its idle "
          "poll, up to 0.2 s), parse, embed, index. In AWS, S3 RTC replicates 99.99 % of objects within "
          "15 minutes.")  # fmt: skip


if __name__ == "__main__":
    main()
