"""A Bedrock-runtime-compatible HTTP server for loopback, with fault injection.

Unmodified boto3 / langchain-aws clients talk to it through `endpoint_url`. It answers
Converse (`POST /model/{id}/converse`), ConverseStream (`POST /model/{id}/converse-stream`: event-stream
frames, with pacing and faults that strike mid-stream), Titan text embeddings v2 (`POST /model/{id}/invoke`) and
ApplyGuardrail (`POST /guardrail/{id}/version/{version}/apply`),
honestly and deterministically: answers are extracted from the text it was sent, embeddings are
hashed bags of words (texts that share words are close). It is a test double and says so: every
answer carries `"emulated": true` in its metrics.

Faults are set per model id and region (the region is read from the SigV4 credential scope):
token-bucket quotas (requests and tokens per minute, 429 ThrottlingException), error rates per
runtime error code, a latency range, hangs past the client's timeout, connection resets and hard
outages. Change them at run time with `POST /_emulator/faults`; read per-target counters with
`GET /_emulator/stats`, and how many times each question was answered with `GET /_emulator/answers` (by the
SHA-256 digest of the last user message: `question_digest`); `POST /_emulator/reset` clears counters and buckets.

    python -m local.bedrock_emulator --port 8089 --config faults.json
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import re
import struct
import time
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar
from urllib.parse import unquote

from local.emulator_server import EmulatorHandler, EmulatorServer, Faults, FaultState, LoopbackEmulator, TokenBucket

# Runtime error codes and the HTTP status Bedrock answers them with.
ERROR_STATUS = {
    "ThrottlingException": 429,
    "ServiceUnavailableException": 503,
    "InternalServerException": 500,
    "ModelNotReadyException": 429,
    "ModelTimeoutException": 408,
    "ModelErrorException": 424,
    "ValidationException": 400,
    "AccessDeniedException": 403,
    "ResourceNotFoundException": 404,
}
# The exception events ConverseStream can send inside the stream (event type -> the error code boto3 raises).
STREAM_EXCEPTIONS = {
    "modelStreamErrorException": "ModelStreamErrorException",
    "throttlingException": "ThrottlingException",
    "internalServerException": "InternalServerException",
    "serviceUnavailableException": "ServiceUnavailableException",
    "validationException": "ValidationException",
}
# ApplyGuardrail's request constraints, as bedrock-runtime declares them.
GUARDRAIL_ID = re.compile(r"([a-z0-9]+)|(arn:aws(-[^:]+)?:bedrock:[a-z0-9-]{1,20}:[0-9]{12}:guardrail/[a-z0-9]+)")
GUARDRAIL_VERSION = re.compile(r"([1-9][0-9]{0,7})|(DRAFT)")
# A few PII detectors (Bedrock detects many more types, with a model): enough to exercise BLOCK and ANONYMIZE.
PII_PATTERNS = {
    "EMAIL": re.compile(r"[\w.+-]+@[\w-]+(\.[\w-]+)+"),
    "PHONE": re.compile(r"(\+?\d{1,2}[ .-]?)?\(?\d{3}\)?[ .-]?\d{3}[ .-]?\d{4}\b"),
    "US_SOCIAL_SECURITY_NUMBER": re.compile(r"\b\d{3}-\d{2}-\d{4}\b"),
    "AWS_ACCESS_KEY": re.compile(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b"),
    "CREDIT_DEBIT_CARD_NUMBER": re.compile(r"\b(?:\d[ -]?){13,16}\b"),
}
_WORD = re.compile(r"[A-Za-z0-9']+")
_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n+")
_STOP = {
    "the", "a", "an", "is", "are", "was", "what", "which", "who", "of", "to", "in", "on", "and", "or",
    "for", "it", "do", "does", "i", "you", "me", "my", "your", "how", "why", "when", "where", "be", "with",
}  # fmt: skip


@dataclass
class TargetFaults(Faults):
    """Fault settings for one model id (optionally one region): the shared ones, quotas and the context window."""

    KNOWN_ERRORS: ClassVar[Mapping[str, int]] = ERROR_STATUS

    rpm: float | None = None  # requests per minute (token bucket)
    tpm: float | None = None  # input+output tokens per minute
    burst_s: float = 60.0  # bucket size in seconds of quota (Bedrock quotas are per minute)
    latency_ms: tuple[float, float] = (5.0, 20.0)  # uniform range added to every answer
    context_window: int = 32000  # input tokens above this are a ValidationException
    # ConverseStream pacing: words per contentBlockDelta and the pause between deltas (time to first token is
    # `latency_ms` + `hang_s`, before the first delta).
    stream_chunk_words: int = 3
    stream_delay_ms: float = 0.0
    # Mid-stream faults: after this many deltas (0: before the first), with this probability, the stream
    # breaks: an exception event (modelStreamErrorException, throttlingException, internalServerException,
    # serviceUnavailableException, validationException) or "drop" (the connection is reset).
    stream_break_after: int | None = None
    stream_break: str = "modelStreamErrorException"
    stream_break_rate: float = 1.0
    # A stall: after this many deltas, wait `stream_stall_s` before the next (past the client's read timeout).
    stream_stall_after: int | None = None
    stream_stall_s: float = 0.0

    def __post_init__(self) -> None:
        if self.stream_break not in STREAM_EXCEPTIONS and self.stream_break != "drop":
            raise ValueError(
                f"stream_break must be drop or one of {sorted(STREAM_EXCEPTIONS)}, got {self.stream_break!r}"
            )
        if self.stream_chunk_words < 1:
            raise ValueError("stream_chunk_words must be at least 1")


class EmulatorState(FaultState):
    """Faults, buckets and counters, shared by the server's threads."""

    def configure(self, config: dict[str, Any]) -> None:
        """Replace the faults (quota buckets restart full); counters are kept."""
        unknown = set(config) - {
            "seed", "default", "targets", "guardrail_patterns", "guardrail_message", "guardrail_pii", "guardrails",
        }  # fmt: skip
        if unknown:
            raise ValueError(f"unknown config keys: {sorted(unknown)}")
        pii = config.get("guardrail_pii", {})
        for source, entities in pii.items():
            if source not in ("input", "output"):
                raise ValueError(f"guardrail_pii keys are input and output, got {source!r}")
            for kind, action in entities.items():
                if kind not in PII_PATTERNS or action not in ("BLOCK", "ANONYMIZE"):
                    raise ValueError(
                        f"guardrail_pii.{source}: {kind}={action!r}; types {sorted(PII_PATTERNS)}, BLOCK or ANONYMIZE"
                    )
        with self._lock:
            self.default = TargetFaults.parse(config.get("default", {}))
            self.targets = {key: TargetFaults.parse(value) for key, value in config.get("targets", {}).items()}
            self.guardrail = [re.compile(p, re.IGNORECASE) for p in config.get("guardrail_patterns", [])]
            self.guardrail_message = config.get(
                "guardrail_message", "Sorry, I can't help with that request: it was blocked by the guardrail."
            )
            # ApplyGuardrail: PII per source ({"input": {"EMAIL": "BLOCK"}, "output": {"EMAIL": "ANONYMIZE"}})
            # and, if listed, the only guardrail ids that exist (others are ResourceNotFoundException).
            self.guardrail_pii: dict[str, dict[str, str]] = {
                "INPUT": dict(pii.get("input", {})),
                "OUTPUT": dict(pii.get("output", {})),
            }
            self.guardrail_ids: set[str] | None = set(config["guardrails"]) if "guardrails" in config else None
            self.random = random.Random(config.get("seed", 7))
            self.buckets: dict[tuple[str, str, str], TokenBucket] = {}
            if not hasattr(self, "answers"):
                self.answers: dict[str, int] = {}  # question digest -> answers given (kept across configure)

    def answered(self, question: str) -> None:
        """Count an answer (not a guardrail block) per question, by digest: how often a model answered it."""
        digest = question_digest(question)
        with self._lock:
            self.answers[digest] = self.answers.get(digest, 0) + 1

    def reset(self, config: dict[str, Any]) -> None:
        super().reset(config)
        with self._lock:
            self.answers = {}

    def faults_for(self, model_id: str, region: str) -> TargetFaults:
        for key in (f"{model_id}@{region}", model_id, f"*@{region}"):
            if key in self.targets:
                return self.targets[key]
        return self.default

    def guardrail_faults(self, key: str, region: str) -> TargetFaults:
        """A guardrail's faults are only those set for it (`guardrail/<id>[@region]`): the `default` faults are
        the models', so "every model is down" leaves the guardrail up unless it is named."""
        for candidate in (f"{key}@{region}", key):
            if candidate in self.targets:
                return self.targets[candidate]
        return TargetFaults()

    def stats(self) -> dict[str, Any]:
        return self.calls()

    def admit(self, model_id: str, region: str, faults: TargetFaults, tokens: int) -> bool:
        """Quota check: both buckets must have room, else the call is throttled."""
        with self._lock:
            for kind, limit, amount in (("rpm", faults.rpm, 1), ("tpm", faults.tpm, tokens)):
                if limit is None:
                    continue
                bucket = self.buckets.setdefault((model_id, region, kind), TokenBucket(limit / 60.0, faults.burst_s))
                if not bucket.take(amount):
                    return False
            return True


def _guardrail_request_problem(identifier: str, version: str, body: Any) -> str | None:
    """Why Bedrock would refuse this ApplyGuardrail request (a ValidationException message), or None."""

    def constraint(name: str, value: Any, rule: str) -> str:
        return f"1 validation error detected: Value {value!r} at '{name}' failed to satisfy constraint: {rule}"

    if not GUARDRAIL_ID.fullmatch(identifier):
        return constraint(
            "guardrailIdentifier", identifier, f"Member must satisfy regular expression pattern: {GUARDRAIL_ID.pattern}"
        )
    if not GUARDRAIL_VERSION.fullmatch(version):
        return constraint(
            "guardrailVersion", version, f"Member must satisfy regular expression pattern: {GUARDRAIL_VERSION.pattern}"
        )
    if not isinstance(body, dict) or body.get("source") not in ("INPUT", "OUTPUT"):
        source = body.get("source") if isinstance(body, dict) else None
        return constraint("source", source, "Member must satisfy enum value set: [INPUT, OUTPUT]")
    if body.get("outputScope", "INTERVENTIONS") not in ("INTERVENTIONS", "FULL"):
        return constraint(
            "outputScope", body["outputScope"], "Member must satisfy enum value set: [INTERVENTIONS, FULL]"
        )
    content = body.get("content")
    if not isinstance(content, list) or not content:
        return constraint("content", content, "Member must not be null and must have at least 1 block")
    for block in content:
        text = block.get("text") if isinstance(block, dict) else None
        if not isinstance(text, dict) or not isinstance(text.get("text"), str):
            return 'The emulator assesses text content blocks ({"text": {"text": ...}}) only.'
    return None


@dataclass(frozen=True)
class _Composed:
    text: str
    stop_reason: str
    input_tokens: int
    asked: str  # the last user message, for the per-question answer count
    guarded: bool


def _header(name: str, value: str) -> bytes:
    """An event-stream header of type string (7): name length (1 byte), name, type, value length (2), value."""
    raw_name, raw_value = name.encode(), value.encode()
    return struct.pack("!B", len(raw_name)) + raw_name + struct.pack("!BH", 7, len(raw_value)) + raw_value


def encode_frame(headers: Mapping[str, str], payload: bytes) -> bytes:
    """One `application/vnd.amazon.eventstream` message: prelude (total length, headers length, CRC32 of
    those 8 bytes), headers, payload, CRC32 of everything before it (botocore/eventstream.py checks both)."""
    header_bytes = b"".join(_header(name, value) for name, value in headers.items())
    total = 12 + len(header_bytes) + len(payload) + 4
    prelude = struct.pack("!II", total, len(header_bytes))
    prelude += struct.pack("!I", zlib.crc32(prelude) & 0xFFFFFFFF)
    message = prelude + header_bytes + payload
    return message + struct.pack("!I", zlib.crc32(message) & 0xFFFFFFFF)


def event_frame(event_type: str, body: dict[str, Any]) -> bytes:
    return encode_frame(
        {":event-type": event_type, ":content-type": "application/json", ":message-type": "event"},
        json.dumps(body).encode(),
    )


def exception_frame(exception_type: str, message: str) -> bytes:
    return encode_frame(
        {":exception-type": exception_type, ":content-type": "application/json", ":message-type": "exception"},
        json.dumps({"message": message}).encode(),
    )


def stream_chunks(text: str, words: int) -> list[str]:
    """The deltas of an answer, `words` words each; joined they give the text back exactly."""
    parts = text.split(" ")
    return [
        " ".join(parts[i : i + words]) + (" " if i + words < len(parts) else "") for i in range(0, len(parts), words)
    ]


def count_tokens(text: str) -> int:
    return max(1, math.ceil(len(_WORD.findall(text)) * 1.3))


def _words(text: str) -> set[str]:
    return {w.lower() for w in _WORD.findall(text)} - _STOP


def extractive_answer(question: str, context: list[str]) -> str:
    """The sentences of the context that share most words with the question, in their order."""
    wanted = _words(question)
    sentences = [s.strip() for block in context for s in _SENTENCE.split(block) if s.strip()]
    scored = [(len(wanted & _words(s)), i, s) for i, s in enumerate(sentences)]
    top = max((score for score, _, _ in scored), default=0)
    # Sentences as relevant as the most relevant one (at most three), in document order.
    best = [item for item in scored if item[0] == top and top > 0][:3]
    if not best:
        return f'I don\'t know: nothing I was given answers "{question.strip()[:200]}".'
    return " ".join(sentence for _, _, sentence in sorted(best, key=lambda item: item[1]))


def embedding(text: str, dimensions: int, normalize: bool) -> list[float]:
    vector = [0.0] * dimensions
    for word in _WORD.findall(text.lower()):
        digest = hashlib.sha256(word.encode()).digest()
        index = int.from_bytes(digest[:4], "big") % dimensions
        vector[index] += 1.0 if digest[4] % 2 else -1.0
    if normalize:
        norm = math.sqrt(sum(v * v for v in vector)) or 1.0
        vector = [v / norm for v in vector]
    return vector


def question_digest(text: str) -> str:
    """How `GET /_emulator/answers` names a question (the last user message): never the text itself."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


class _Handler(EmulatorHandler):
    server: EmulatorServer[EmulatorState]

    def do_GET(self) -> None:
        if self.path == "/_emulator/answers":  # Converse answers per question digest (question_digest)
            with self.server.state._lock:
                self._send(200, dict(self.server.state.answers))
            return
        super().do_GET()

    def _body(self) -> Any:
        raw = self._raw_body()
        return json.loads(raw) if raw else {}

    def _error(self, code: str, message: str) -> None:
        self._send(
            ERROR_STATUS[code], {"message": message}, {"x-amzn-ErrorType": f"{code}:http://internal.amazon.com/"}
        )

    def do_POST(self) -> None:
        state = self.server.state
        if self.path.startswith("/_emulator/"):
            self._admin(self._raw_body())
            return
        guardrail = re.fullmatch(r"/guardrail/([^/]+)/version/([^/]+)/apply", self.path)
        if guardrail is not None:
            self._apply_guardrail(unquote(guardrail.group(1)), unquote(guardrail.group(2)), self._body())
            return
        match = re.fullmatch(r"/model/([^/]+)/(converse-stream|converse|invoke)", self.path)
        if match is None:
            self._send(404, {"message": f"no route {self.path}"})
            return
        model_id, operation = unquote(match.group(1)), match.group(2)
        region = self._region()
        body = self._body()
        faults = state.faults_for(model_id, region)
        state.arrive(model_id, region)
        started = time.monotonic()
        if self._injected(faults, model_id, region, "The service is down (emulated outage)."):
            return
        if operation == "invoke":
            self._invoke(model_id, region, body, faults)
            return
        if operation == "converse-stream":
            self._converse_stream(model_id, region, body, faults, started)
            return
        self._converse(model_id, region, body, faults, started)

    def _delay(self, faults: TargetFaults) -> None:
        low, high = faults.latency_ms
        time.sleep((low + (high - low) * self.server.state.roll()) / 1000.0)
        if faults.hang_s:
            time.sleep(faults.hang_s)

    def _compose(self, model_id: str, region: str, body: dict[str, Any], faults: TargetFaults) -> _Composed | None:
        """The answer Converse and ConverseStream give (after request checks, the quota and the latency), or
        None when an error was already sent."""
        state = self.server.state
        messages = body.get("messages") or []
        if not messages or messages[-1].get("role") != "user":
            state.count(model_id, region, "ValidationException")
            self._error("ValidationException", "A conversation must end with a user message.")
            return None
        texts = [b.get("text", "") for m in messages for b in m.get("content", [])]
        system = [b.get("text", "") for b in body.get("system") or []]
        question = asked = "".join(b.get("text", "") for b in messages[-1]["content"])
        # "Some facts. A question?" in one message: the facts are context, the last sentence asks.
        sentences = [s for s in _SENTENCE.split(question.strip()) if s.strip()]
        if len(sentences) > 1:
            texts = [*texts[:-1], " ".join(sentences[:-1]), sentences[-1]]
            question = sentences[-1]
        input_tokens = count_tokens(" ".join(system + texts))
        if input_tokens > faults.context_window:
            state.count(model_id, region, "ValidationException")
            self._error(
                "ValidationException",
                f"Input is too long for requested model ({input_tokens} tokens > {faults.context_window}).",
            )
            return None
        max_tokens = int((body.get("inferenceConfig") or {}).get("maxTokens", 512))
        if not state.admit(model_id, region, faults, input_tokens + max_tokens):
            state.count(model_id, region, "ThrottlingException")
            self._error("ThrottlingException", "Too many requests, please wait before trying again.")
            return None
        guardrail = body.get("guardrailConfig")
        if guardrail and any(p.search(question) for p in state.guardrail):
            return _Composed(state.guardrail_message, "guardrail_intervened", input_tokens, asked, guarded=True)
        answer = extractive_answer(question, system + texts[:-1])
        stop = "end_turn"
        if count_tokens(answer) > max_tokens:
            answer, stop = " ".join(answer.split()[: max(1, int(max_tokens / 1.3))]), "max_tokens"
        return _Composed(answer, stop, input_tokens, asked, guarded=bool(guardrail))

    def _converse(self, model_id: str, region: str, body: dict[str, Any], faults: TargetFaults, started: float) -> None:
        state = self.server.state
        composed = self._compose(model_id, region, body, faults)
        if composed is None:
            return
        self._delay(faults)
        answer, stop, input_tokens = composed.text, composed.stop_reason, composed.input_tokens
        if stop == "guardrail_intervened":
            state.count(model_id, region, "guardrail_intervened")
        else:
            state.count(model_id, region, "ok")
            state.answered(composed.asked)
        output_tokens = count_tokens(answer)
        payload: dict[str, Any] = {
            "output": {"message": {"role": "assistant", "content": [{"text": answer}]}},
            "stopReason": stop,
            "usage": {
                "inputTokens": input_tokens,
                "outputTokens": output_tokens,
                "totalTokens": input_tokens + output_tokens,
            },
            "metrics": {"latencyMs": int((time.monotonic() - started) * 1000)},
        }
        if stop == "guardrail_intervened":
            payload["trace"] = {"guardrail": {"inputAssessment": {"emulated": {"matched": True}}}}
        self._send(200, payload)

    def _converse_stream(
        self, model_id: str, region: str, body: dict[str, Any], faults: TargetFaults, started: float
    ) -> None:
        """ConverseStream: the same answer as Converse, as event-stream frames over a chunked response.

        Errors before the stream (quota, faults, validation) are plain HTTP errors as for Converse. The response
        headers and messageStart go out at once; the latency (and any hang) comes before the first delta, as a
        model's time to first token does. Then `stream_chunk_words` words per contentBlockDelta, `stream_delay_ms`
        apart; a mid-stream fault after `stream_break_after` deltas (an exception event, or a dropped
        connection), or a stall of `stream_stall_s` after `stream_stall_after` deltas."""
        state = self.server.state
        composed = self._compose(model_id, region, body, faults)
        if composed is None:
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/vnd.amazon.eventstream")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("x-amzn-RequestId", f"emu-{time.monotonic_ns()}")
        try:
            self.end_headers()
            self._frame(event_frame("messageStart", {"role": "assistant"}))
            self._delay(faults)
            words = composed.text.split(" ")
            size = max(1, faults.stream_chunk_words)
            chunks = [
                " ".join(words[i : i + size]) + (" " if i + size < len(words) else "")
                for i in range(0, len(words), size)
            ]
            breaks = faults.stream_break_after is not None and state.roll() < faults.stream_break_rate
            for sent, chunk in enumerate(chunks):
                if breaks and sent == faults.stream_break_after:
                    self._break_stream(model_id, region, faults.stream_break)
                    return
                if faults.stream_stall_after is not None and sent == faults.stream_stall_after:
                    time.sleep(faults.stream_stall_s)
                elif sent and faults.stream_delay_ms:
                    time.sleep(faults.stream_delay_ms / 1000.0)
                self._frame(event_frame("contentBlockDelta", {"delta": {"text": chunk}, "contentBlockIndex": 0}))
            if breaks and faults.stream_break_after is not None and faults.stream_break_after >= len(chunks):
                self._break_stream(model_id, region, faults.stream_break)
                return
            output_tokens = count_tokens(composed.text)
            self._frame(event_frame("contentBlockStop", {"contentBlockIndex": 0}))
            self._frame(event_frame("messageStop", {"stopReason": composed.stop_reason}))
            metadata: dict[str, Any] = {
                "usage": {
                    "inputTokens": composed.input_tokens,
                    "outputTokens": output_tokens,
                    "totalTokens": composed.input_tokens + output_tokens,
                },
                "metrics": {"latencyMs": int((time.monotonic() - started) * 1000)},
            }
            if composed.stop_reason == "guardrail_intervened":
                metadata["trace"] = {"guardrail": {"inputAssessment": {"emulated": {"matched": True}}}}
            self._frame(event_frame("metadata", metadata))
            self._end_chunks()
        except (BrokenPipeError, ConnectionResetError):
            state.count(model_id, region, "ClientGone")  # the client stopped reading (its timeout, or a hedge won)
            self.close_connection = True
            return
        if composed.stop_reason == "guardrail_intervened":
            state.count(model_id, region, "guardrail_intervened")
        else:
            state.count(model_id, region, "ok")
            state.answered(composed.asked)

    def _break_stream(self, model_id: str, region: str, kind: str) -> None:
        """A fault after the first bytes: an exception event (then the stream ends), or a dropped connection."""
        self.server.state.count(model_id, region, f"stream:{kind}")
        if kind == "drop":
            self._reset()
            return
        self._frame(exception_frame(kind, f"Emulated {kind} mid-stream."))
        self._end_chunks()

    def _frame(self, frame: bytes) -> None:
        """One event-stream frame as one HTTP chunk, flushed at once (the client reads it as it comes)."""
        self.wfile.write(f"{len(frame):X}\r\n".encode() + frame + b"\r\n")
        self.wfile.flush()

    def _end_chunks(self) -> None:
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _apply_guardrail(self, identifier: str, version: str, body: dict[str, Any]) -> None:
        """ApplyGuardrail as Bedrock answers it: request checks (ValidationException), an unknown guardrail
        (ResourceNotFoundException, when `guardrails` lists the known ones), faults set for the key
        `guardrail/<id>` (not the models' `default`), then the action, the outputs (the blocked message, or
        the text with PII masked as {EMAIL}) and the assessments (patterns as custom words, PII entities)
        with usage and coverage."""
        state = self.server.state
        region = self._region()
        key = f"guardrail/{identifier.rsplit('/', 1)[-1]}"
        state.arrive(key, region)
        started = time.monotonic()
        problem = _guardrail_request_problem(identifier, version, body)
        if problem is not None:
            state.count(key, region, "ValidationException")
            self._error("ValidationException", problem)
            return
        if state.guardrail_ids is not None and key.split("/", 1)[1] not in state.guardrail_ids:
            state.count(key, region, "ResourceNotFoundException")
            self._error("ResourceNotFoundException", f"The guardrail {identifier} was not found.")
            return
        faults = state.guardrail_faults(key, region)
        if faults.down:
            state.count(key, region, "ServiceUnavailableException")
            self._error("ServiceUnavailableException", "The service is down (emulated outage).")
            return
        for code, probability in faults.errors.items():
            if state.roll() < probability:
                state.count(key, region, code)
                self._error(code, f"Emulated {code}.")
                return
        texts = [block["text"]["text"] for block in body["content"]]
        units = sum(max(1, math.ceil(len(text) / 1000)) for text in texts)
        if not state.admit(key, region, faults, units):
            state.count(key, region, "ThrottlingException")
            self._error("ThrottlingException", "Too many requests, please wait before trying again.")
            return
        self._delay(faults)
        blocked = False
        words: list[dict[str, Any]] = []
        entities: list[dict[str, Any]] = []
        outputs: list[str] = []
        for text in texts:
            for pattern in state.guardrail:
                found = pattern.search(text)
                if found:
                    words.append({"match": found.group(0), "action": "BLOCKED", "detected": True})
                    blocked = True
            masked = text
            for kind, action in state.guardrail_pii[body["source"]].items():
                for found in PII_PATTERNS[kind].finditer(text):
                    verdict = "BLOCKED" if action == "BLOCK" else "ANONYMIZED"
                    entities.append({"match": found.group(0), "type": kind, "action": verdict, "detected": True})
                    blocked = blocked or action == "BLOCK"
                if action == "ANONYMIZE":
                    masked = PII_PATTERNS[kind].sub("{" + kind + "}", masked)
            outputs.append(masked)
        intervened = blocked or bool(entities)
        if blocked:
            outputs = [state.guardrail_message]
        characters = sum(len(text) for text in texts)
        usage = {
            "topicPolicyUnits": 0,
            "contentPolicyUnits": 0,
            "wordPolicyUnits": units if state.guardrail else 0,
            "sensitiveInformationPolicyUnits": units if state.guardrail_pii[body["source"]] else 0,
            "sensitiveInformationPolicyFreeUnits": 0,
            "contextualGroundingPolicyUnits": 0,
        }
        coverage = {"textCharacters": {"guarded": characters, "total": characters}}
        assessment: dict[str, Any] = {
            "invocationMetrics": {
                "guardrailProcessingLatency": int((time.monotonic() - started) * 1000),
                "usage": usage,
                "guardrailCoverage": coverage,
            }
        }
        if words:
            assessment["wordPolicy"] = {"customWords": words, "managedWordLists": []}
        if entities:
            assessment["sensitiveInformationPolicy"] = {"piiEntities": entities, "regexes": []}
        state.count(key, region, "guardrail_intervened" if intervened else "ok")
        self._send(
            200,
            {
                "usage": usage,
                "action": "GUARDRAIL_INTERVENED" if intervened else "NONE",
                "outputs": [{"text": text} for text in outputs] if intervened else [],
                "assessments": [assessment],
                "guardrailCoverage": coverage,
            },
        )

    def _invoke(self, model_id: str, region: str, body: dict[str, Any], faults: TargetFaults) -> None:
        state = self.server.state
        text = body.get("inputText")
        dimensions = int(body.get("dimensions", 1024))
        if not isinstance(text, str) or not text or dimensions not in (256, 512, 1024):
            state.count(model_id, region, "ValidationException")
            self._error("ValidationException", "inputText must be a non-empty string; dimensions 256, 512 or 1024.")
            return
        tokens = count_tokens(text)
        if tokens > 8192:
            state.count(model_id, region, "ValidationException")
            self._error("ValidationException", f"Too many input tokens ({tokens} > 8192).")
            return
        if not state.admit(model_id, region, faults, tokens):
            state.count(model_id, region, "ThrottlingException")
            self._error("ThrottlingException", "Too many requests, please wait before trying again.")
            return
        self._delay(faults)
        state.count(model_id, region, "ok")
        self._send(
            200,
            {
                "embedding": embedding(text, dimensions, bool(body.get("normalize", True))),
                "inputTextTokenCount": tokens,
            },
        )


class BedrockEmulator(LoopbackEmulator):
    NAME = "bedrock emulator"
    HANDLER = _Handler
    STATE = EmulatorState

    def calls(self, model_id: str, region: str) -> int:
        return int(self.stats().get(f"{model_id}@{region}", {}).get("calls", 0))


def main() -> None:
    BedrockEmulator.main(__doc__, default_port=8089)


if __name__ == "__main__":
    main()
