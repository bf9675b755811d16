"""The AppConfig data plane for the sandbox: StartConfigurationSession and GetLatestConfiguration, one profile.

moto does not implement `appconfigdata`, so the sandbox runs this instead and the Lambdas' unmodified boto3
client (Powertools' AppConfigStore) reaches it through AWS_ENDPOINT_URL_APPCONFIGDATA. It serves the
runtime switches' feature flags document for the application / environment / profile it was started with,
like AppConfig after a deployment with the AllAtOnce strategy: a new document is seen by the next poll.
As AppConfig does, GetLatestConfiguration returns the document only when it changed since that session's
last poll (an empty body otherwise), and every token is single-use.

The sandbox (local/sandbox.py) starts one for both regions (`local_switches`) and prints its URL. The
operator's side (`deploy`, or `POST /_emulator/configuration` with the JSON document as body) stands in
for CreateHostedConfigurationVersion + StartDeployment. `fail(True)` makes every call answer 503, as an
AppConfig outage would.

    python -m local.appconfig_emulator --port 8091 --application bulwark --environment dev --profile switches
"""

from __future__ import annotations

import argparse
import json
import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

from core.switches import default_document

POLL_INTERVAL_S = 15  # AppConfig's smallest RequiredMinimumPollIntervalInSeconds
# The sandbox's names for the profile the templates' SWITCHES_* variables point at (Refs in AWS).
SWITCH_VARIABLES = {
    "SWITCHES_APPLICATION": "bulwark-switches",
    "SWITCHES_ENVIRONMENT": "local",
    "SWITCHES_PROFILE": "switches",
}


@dataclass
class ProfileState:
    application: str
    environment: str
    profile: str
    document: bytes = b"{}"
    version: int = 1
    down: bool = False
    tokens: dict[str, int] = field(default_factory=dict)  # token -> version its session last received (0: none)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def deploy(self, document: dict[str, Any] | bytes) -> int:
        raw = document if isinstance(document, bytes) else json.dumps(document).encode()
        with self.lock:
            self.document, self.version = raw, self.version + 1
            return self.version


class _Handler(BaseHTTPRequestHandler):
    server: AppConfigEmulator

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        for name, value in {**headers, "Content-Length": str(len(body))}.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def _error(self, status: int, code: str, message: str) -> None:
        body = json.dumps({"Message": message}).encode()
        self._send(status, body, {"Content-Type": "application/json", "x-amzn-ErrorType": code})

    def _body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def do_POST(self) -> None:
        state = self.server.state
        path = urlparse(self.path).path
        raw = self._body()
        if path == "/_emulator/configuration":
            try:
                document = json.loads(raw)
            except ValueError:
                document = raw  # served as sent: the clients must cope with an invalid document
            version = state.deploy(document if isinstance(document, dict) else raw)
            self._send(200, json.dumps({"version": version}).encode(), {"Content-Type": "application/json"})
            return
        if state.down:
            self._error(503, "InternalServerException", "AppConfig is down (emulated)")
            return
        if path != "/configurationsessions":
            self._error(404, "ResourceNotFoundException", f"no route for POST {path}")
            return
        try:
            request = json.loads(raw or b"{}")
        except ValueError:
            self._error(400, "BadRequestException", "the body is not JSON")
            return
        wanted = (state.application, state.environment, state.profile)
        asked = tuple(
            request.get(key)
            for key in ("ApplicationIdentifier", "EnvironmentIdentifier", "ConfigurationProfileIdentifier")
        )
        if asked != wanted:
            self._error(404, "ResourceNotFoundException", "no such application, environment or profile")
            return
        token = secrets.token_urlsafe(24)
        with state.lock:
            state.tokens[token] = 0
        self._send(201, json.dumps({"InitialConfigurationToken": token}).encode(), {"Content-Type": "application/json"})

    def do_GET(self) -> None:
        state = self.server.state
        url = urlparse(self.path)
        if state.down:
            self._error(503, "InternalServerException", "AppConfig is down (emulated)")
            return
        if url.path != "/configuration":
            self._error(404, "ResourceNotFoundException", f"no route for GET {url.path}")
            return
        token = (parse_qs(url.query).get("configuration_token") or [""])[0]
        with state.lock:
            seen = state.tokens.pop(token, None)  # single-use
            if seen is None:
                self._error(400, "BadRequestException", "the configuration token is not valid")
                return
            body = state.document if seen != state.version else b""
            next_token = secrets.token_urlsafe(24)
            state.tokens[next_token] = state.version
            version = state.version
        self._send(
            200,
            body,
            {
                "Content-Type": "application/json",
                "Next-Poll-Configuration-Token": next_token,
                "Next-Poll-Interval-In-Seconds": str(POLL_INTERVAL_S),
                "Version-Label": str(version),
            },
        )


class AppConfigEmulator(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(
        self,
        *,
        application: str,
        environment: str,
        profile: str,
        document: dict[str, Any] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        super().__init__((host, port), _Handler)
        self.state = ProfileState(application=application, environment=environment, profile=profile)
        self.state.deploy(document if document is not None else default_document())
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> AppConfigEmulator:
        self._thread = threading.Thread(target=self.serve_forever, name="appconfig-emulator", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()

    def deploy(self, document: dict[str, Any] | bytes) -> int:
        return self.state.deploy(document)

    def fail(self, down: bool) -> None:
        self.state.down = down


@contextmanager
def local_switches() -> Iterator[str]:
    """The sandbox's AppConfig data plane (every switch off), its URL for AWS_ENDPOINT_URL_APPCONFIGDATA."""
    server = AppConfigEmulator(
        application=SWITCH_VARIABLES["SWITCHES_APPLICATION"],
        environment=SWITCH_VARIABLES["SWITCHES_ENVIRONMENT"],
        profile=SWITCH_VARIABLES["SWITCHES_PROFILE"],
    ).start()
    try:
        yield server.url
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8091)
    parser.add_argument("--application", required=True)
    parser.add_argument("--environment", required=True)
    parser.add_argument("--profile", required=True)
    args = parser.parse_args()
    server = AppConfigEmulator(
        application=args.application, environment=args.environment, profile=args.profile, port=args.port
    )
    print(f"AppConfig data plane (emulated) on {server.url}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
