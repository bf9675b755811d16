"""Start the sandbox's helper servers as child processes on loopback and wait until they answer."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(url: str, *, timeout_s: float = 30.0, process: subprocess.Popen[bytes] | None = None) -> None:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{process.args} exited with {process.returncode} before {url} answered")
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer within {timeout_s} s")


def _die_with_parent() -> None:
    """Linux: the child gets SIGTERM if this process dies, so no server outlives the sandbox."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


@contextmanager
def child(args: list[str], *, health_url: str, env: dict[str, str] | None = None) -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen(
        args,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=_die_with_parent,
    )
    try:
        wait_for(health_url, process=process)
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()


@contextmanager
def moto_server(port: int | None = None) -> Iterator[str]:
    """The embedded AWS: moto's server, in its own process (its CPU work off this process's GIL), serving
    one request at a time (moto's backends are not thread-safe: local/embedded_aws.py says why)."""
    port = port or free_port()
    url = f"http://127.0.0.1:{port}"
    with child(
        [sys.executable, "-m", "local.embedded_aws", "-H", "127.0.0.1", "-p", str(port)],
        health_url=url + "/moto-api/",
        # Cognito checks TOTP codes (against moto's one fixed secret) instead of accepting any code.
        env={"MOTO_COGNITO_IDP_USER_POOL_ENABLE_TOTP": "true"},
    ):
        yield url


@contextmanager
def emulator_process(config_file: Path | None = None, port: int | None = None) -> Iterator[str]:
    port = port or free_port()
    url = f"http://127.0.0.1:{port}"
    args = [sys.executable, "-m", "local.bedrock_emulator", "--port", str(port)]
    if config_file is not None:
        args += ["--config", str(config_file)]
    with child(args, health_url=url + "/_emulator/health"):
        yield url


@contextmanager
def s3vectors_process(port: int | None = None) -> Iterator[str]:
    """The S3 Vectors emulator (QueryVectors included, which moto lacks): state per region, from SigV4."""
    port = port or free_port()
    url = f"http://127.0.0.1:{port}"
    with child(
        [sys.executable, "-m", "local.s3vectors_emulator", "--port", str(port)], health_url=url + "/_emulator/health"
    ):
        yield url
