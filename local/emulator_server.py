"""What the loopback AWS emulators (Bedrock, S3 Vectors) share: the HTTP server, the fault settings both
accept, the state their threads share, the admin routes and the process entry point.

Each emulator subclasses `Faults` (adding its quotas), `FaultState` (its config and stats), `EmulatorHandler`
(its routes and error shape) and `LoopbackEmulator` (its name and `calls()`); everything here behaves the
same in both. Admin routes: `GET /_emulator/stats`, `GET /_emulator/health`, `POST /_emulator/faults`
(replace the faults), `POST /_emulator/reset` (back to the given or initial config, counters cleared).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import re
import socket
import struct
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar, Generic, Self, TypeVar


@dataclass
class Faults:
    """The faults both emulators inject; subclasses add their quotas and name their error codes."""

    KNOWN_ERRORS: ClassVar[Mapping[str, int]] = {}  # the service's error codes and their HTTP status

    errors: dict[str, float] = field(default_factory=dict)  # code -> probability per call
    latency_ms: tuple[float, float] = (0.0, 0.0)  # uniform range added to every answer
    hang_s: float = 0.0  # sleep this long before answering (past the client's timeout)
    reset_rate: float = 0.0  # probability of closing the connection with a TCP reset
    down: bool = False  # hard outage: every call is ServiceUnavailableException

    @classmethod
    def parse(cls, raw: dict[str, Any]) -> Self:
        unknown = set(raw) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown fault keys: {sorted(unknown)}")
        for code in raw.get("errors", {}):
            if code not in cls.KNOWN_ERRORS:
                raise ValueError(f"unknown error code {code}; known: {sorted(cls.KNOWN_ERRORS)}")
        values = dict(raw)
        if "latency_ms" in values:
            low, high = values["latency_ms"]
            values["latency_ms"] = (float(low), float(high))
        return cls(**values)


class TokenBucket:
    """A quota: `per_second` refills, at most `burst_s` seconds of it saved up (never less than one call)."""

    def __init__(self, per_second: float, burst_s: float) -> None:
        self.rate = per_second
        self.capacity = max(1.0, per_second * burst_s)
        self.tokens = self.capacity
        self.stamp = time.monotonic()

    def take(self, amount: float = 1.0) -> bool:
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= amount:
            self.tokens -= amount
            return True
        return False


class FaultState:
    """Calls and outcomes per `key@region`, the seeded source of fault draws and the quota buckets, shared
    by the server's threads. Subclasses parse their config in `configure` and shape `stats`."""

    random: random.Random  # seeded by `configure`, so a config's fault draws repeat run after run
    buckets: dict[tuple[str, str, str], TokenBucket]  # emptied by `configure`: quotas restart full

    def __init__(self, config: dict[str, Any] | None = None) -> None:
        self._lock = threading.Lock()
        self.counters: dict[str, Counter[str]] = defaultdict(Counter)
        self.received: Counter[str] = Counter()
        self.configure(config or {})

    def configure(self, config: dict[str, Any]) -> None:
        """Replace the faults; counters are kept."""
        raise NotImplementedError

    def stats(self) -> dict[str, Any]:
        raise NotImplementedError

    def reset(self, config: dict[str, Any]) -> None:
        self.configure(config)
        with self._lock:
            self.counters = defaultdict(Counter)
            self.received = Counter()

    def arrive(self, key: str, region: str) -> None:
        with self._lock:
            self.received[f"{key}@{region}"] += 1

    def count(self, key: str, region: str, outcome: str) -> None:
        with self._lock:
            self.counters[f"{key}@{region}"][outcome] += 1

    def roll(self) -> float:
        with self._lock:
            return self.random.random()

    def calls(self) -> dict[str, Any]:
        """Calls are counted on arrival (a hanging call counts at once); outcomes when they end."""
        with self._lock:
            return {
                key: {"calls": calls, "outcomes": dict(self.counters.get(key, {}))}
                for key, calls in self.received.items()
            }


StateT = TypeVar("StateT", bound=FaultState)


class EmulatorHandler(BaseHTTPRequestHandler):
    """Plumbing, admin routes and fault injection; subclasses add `do_POST` for the service's operations and
    `_error` in the service's error shape."""

    server: EmulatorServer[Any]  # subclasses name their state: `server: EmulatorServer[EmulatorState]`
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.verbose:
            super().log_message(format, *args)

    def setup(self) -> None:
        super().setup()
        # Small requests and responses: without NODELAY and quick ACKs, Nagle's algorithm meets
        # delayed ACKs (botocore sends headers and body in two writes) and adds ~40 ms per call.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._quick_ack()

    def _quick_ack(self) -> None:
        if hasattr(socket, "TCP_QUICKACK"):  # Linux; re-armed before each read
            with contextlib.suppress(OSError):
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)

    def handle_one_request(self) -> None:
        self._quick_ack()
        super().handle_one_request()

    # --- plumbing -------------------------------------------------------------------------------------
    def _raw_body(self) -> bytes:
        self._quick_ack()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-amzn-RequestId", f"emu-{time.monotonic_ns()}")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        try:
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            # The client gave up first (its timeout fired while we hung): that is the point.
            self.close_connection = True

    def _error(self, code: str, message: str) -> None:
        raise NotImplementedError

    def _no_route(self, method: str) -> None:
        self._send(404, {"message": f"no route {self.path}"})

    def _reset(self) -> None:
        """Close with RST, as a dropped connection looks to the client."""
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()
        self.close_connection = True

    def _region(self) -> str:
        """The region the client signed for (its SigV4 credential scope)."""
        match = re.search(r"Credential=[^/]+/\d{8}/([a-z0-9-]+)/", self.headers.get("Authorization", ""))
        return match.group(1) if match else "us-east-1"

    def _injected(self, faults: Faults, key: str, region: str, down_message: str) -> bool:
        """Answer with the fault this call draws, if any (outage, connection reset, error code): True if so."""
        state = self.server.state
        if faults.down:
            state.count(key, region, "ServiceUnavailableException")
            self._error("ServiceUnavailableException", down_message)
            return True
        if faults.reset_rate and state.roll() < faults.reset_rate:
            state.count(key, region, "ConnectionReset")
            self._reset()
            return True
        for code, probability in faults.errors.items():
            if state.roll() < probability:
                state.count(key, region, code)
                self._error(code, f"Emulated {code}.")
                return True
        return False

    # --- admin routes ---------------------------------------------------------------------------------
    def do_GET(self) -> None:
        if self.path == "/_emulator/stats":
            self._send(200, self.server.state.stats())
        elif self.path == "/_emulator/health":
            self._send(200, {"status": "ok"})
        else:
            self._no_route("GET")

    def _admin(self, raw: bytes) -> None:
        state = self.server.state
        try:
            body = json.loads(raw) if raw else {}
            if self.path == "/_emulator/faults":
                state.configure(body)
            elif self.path == "/_emulator/reset":
                state.reset(body or self.server.initial_config)
            else:
                self._send(404, {"message": f"no route {self.path}"})
                return
        except (ValueError, TypeError) as error:
            self._send(400, {"message": str(error)})
            return
        self._send(200, {"status": "ok"})


class EmulatorServer(ThreadingHTTPServer, Generic[StateT]):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self,
        address: tuple[str, int],
        handler: type[EmulatorHandler],
        state: StateT,
        config: dict[str, Any],
        verbose: bool,
    ) -> None:
        super().__init__(address, handler)
        self.state = state
        self.initial_config = config
        self.verbose = verbose

    def handle_error(self, request: Any, client_address: Any) -> None:
        if self.verbose:
            super().handle_error(request, client_address)


class LoopbackEmulator:
    """Run in a thread (tests: `with XEmulator() as emu:`) or as a process (sandbox). Binds to loopback only."""

    NAME: ClassVar[str]  # "bedrock emulator": the thread's name and the process's first line say it
    HANDLER: ClassVar[type[EmulatorHandler]]
    STATE: ClassVar[type[FaultState]]
    POLL_INTERVAL_S: ClassVar[float] = 0.5  # how soon stop() takes effect

    def __init__(self, config: dict[str, Any] | None = None, *, port: int = 0, verbose: bool = False) -> None:
        self.config = config or {}
        self.state = self.STATE(self.config)
        self._server = EmulatorServer(("127.0.0.1", port), self.HANDLER, self.state, self.config, verbose)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> Self:
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": self.POLL_INTERVAL_S},
            name=self.NAME.replace(" ", "-"),
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def set_faults(self, config: dict[str, Any]) -> None:
        self.state.configure(config)

    def reset(self, config: dict[str, Any] | None = None) -> None:
        self.state.reset(config if config is not None else self.config)

    def stats(self) -> dict[str, Any]:
        return self.state.stats()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    @classmethod
    def main(cls, description: str | None, *, default_port: int) -> None:
        """The process entry point: `python -m local.<emulator> --port N --config faults.json [--verbose]`."""
        parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
        parser.add_argument("--port", type=int, default=default_port)
        parser.add_argument("--config", help="JSON file with faults (see module docstring)")
        parser.add_argument("--verbose", action="store_true")
        args = parser.parse_args()
        config = json.loads(Path(args.config).read_text()) if args.config else {}
        emulator = cls(config, port=args.port, verbose=args.verbose)
        print(f"{cls.NAME} listening on {emulator.url}", flush=True)
        try:
            emulator._server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            emulator._server.server_close()
