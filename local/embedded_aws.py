"""The sandbox's embedded AWS: moto's server with one request at a time, and without its table-size costs.

moto's server runs every request on a thread of its own, but its backends are not thread-safe: DynamoDB
TransactWriteItems deep-copies each table it touches (to roll back a cancelled transaction) while other
threads write to it, which fails with `RuntimeError: dictionary changed size during iteration` (a 500 to
the client) and, worse, a rollback puts back a copy that lacks the writes other requests made meanwhile.
Here every request runs alone: its body is read before it waits for its turn and its answer is built
before the next one starts. Nothing is lost by that: moto is pure Python, one GIL runs it anyway. An SQS
long poll is the one request that waits inside moto; it is served as short polls, each in its turn, until
a message arrives or its wait time is over, so it never holds up the others.

Two costs grew with the tables, so the sandbox slowed down the longer it ran (measured with moto 5.2.5:
a transaction took 6 ms on an empty table and 306 ms at 5,000 items; a query 7 ms and 97 ms):
- TransactWriteItems deep-copied every table it touches; here it copies only the items it touches, and
  a cancelled transaction puts those back (`_transact_write_items`).
- Query on a table's own key sorted every item of the table to find one partition; here it reads that
  partition (`_partition_items`).
And two costs every request paid (a sixth of moto's time in a profile of the burst bench): finding the
request's service listed moto's package directory on disk, and dispatching it listed its handler's
methods by introspection; both lists are fixed, so they are computed once (`_cache_request_routing`).
All of these replace moto internals (moto is pinned in constraints.txt). If an upgrade moves them,
`install_speedups` says so on stderr and the sandbox runs serialized at moto's own speed.

    python -m local.embedded_aws --port 4566
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import io
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qsl, urlencode

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
_POLL_INTERVAL_S = 0.05  # between the short polls that stand in for one long poll


class OneAtATime:
    """WSGI middleware: the wrapped app serves one request at a time. Requests under `/_bulwark/` go to
    `admin` instead (the sandbox's own controls, such as global tables' replication), outside the turn."""

    def __init__(
        self, app: WsgiApp, *, clock: Callable[[], float] = time.monotonic, admin: WsgiApp | None = None
    ) -> None:
        self._app = app
        self.admin = admin
        self._lock = threading.Lock()
        self._clock = clock
        # DynamoDB's idempotency window for TransactWriteItems' ClientRequestToken (botocore fills it in):
        # a retry of a transaction that already committed (its answer lost to a client timeout) gets that
        # answer again instead of running twice and being cancelled by its own first run, as in DynamoDB.
        self._transactions: dict[str, tuple[float, str, tuple[str, list[tuple[str, str]], bytes]]] = {}
        self._transactions_lock = threading.Lock()  # taken before the app's lock, never inside it

    @property
    def lock(self) -> threading.Lock:
        """Held while moto serves a request: whatever else changes moto's state takes it too."""
        return self._lock

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if self.admin is not None and str(environ.get("PATH_INFO", "")).startswith("/_bulwark/"):
            return self.admin(environ, start_response)
        body = _read_body(environ)
        wait_s, short_poll = _long_poll(environ, body)
        if short_poll is None:
            return self._serve(environ, body, start_response)
        deadline = self._clock() + wait_s
        while True:  # a long poll as short polls: the lock is never held while waiting for a message
            status, headers, data = self._call(environ, short_poll)
            if _has_messages(data) or not status.startswith("200") or self._clock() >= deadline:
                start_response(status, headers)
                return [data]
            time.sleep(_POLL_INTERVAL_S)

    def _serve(self, environ: dict[str, Any], body: bytes, start_response: Callable[..., Any]) -> Iterable[bytes]:
        status, headers, data = self._call(environ, body)
        start_response(status, headers)
        return [data]

    def _call(self, environ: dict[str, Any], body: bytes) -> tuple[str, list[tuple[str, str]], bytes]:
        token = _transaction_token(environ, body)
        if token is None:
            return self._run(environ, body)
        digest = hashlib.sha256(body).hexdigest()
        with self._transactions_lock:
            now = self._clock()
            for old in [t for t, (at, _, _) in self._transactions.items() if now - at > _IDEMPOTENCY_WINDOW_S]:
                del self._transactions[old]
            seen = self._transactions.get(token)
            if seen is not None:
                if seen[1] != digest:
                    return _dynamodb_error(
                        "IdempotentParameterMismatchException",
                        "The request uses the same client token as a previous, but non-identical request.",
                    )
                return seen[2]
            answer = self._run(environ, body)
            if answer[0].startswith("200"):
                self._transactions[token] = (now, digest, answer)
            return answer

    def _run(self, environ: dict[str, Any], body: bytes) -> tuple[str, list[tuple[str, str]], bytes]:
        environ = {**environ, "wsgi.input": io.BytesIO(body), "CONTENT_LENGTH": str(len(body))}
        answer: list[Any] = []

        def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[[bytes], None]:
            answer[:] = [status, headers]
            return chunks.append

        chunks: list[bytes] = []
        with self._lock:
            result = self._app(environ, capture)
            try:
                chunks.extend(result)  # built inside the turn: a lazy body may still read moto's state
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()
        status, headers = answer
        data = b"".join(chunks)
        if environ.get("REQUEST_METHOD") == "HEAD":  # its Content-Length is the object's, not this empty body's
            return status, headers, data
        headers = [(name, value) for name, value in headers if name.lower() != "content-length"]
        return status, [*headers, ("Content-Length", str(len(data)))], data


_IDEMPOTENCY_WINDOW_S = 600.0  # DynamoDB keeps a ClientRequestToken for 10 minutes


def _transaction_token(environ: dict[str, Any], body: bytes) -> str | None:
    """The ClientRequestToken of a DynamoDB TransactWriteItems request, if it carries one."""
    if environ.get("HTTP_X_AMZ_TARGET") != "DynamoDB_20120810.TransactWriteItems":
        return None
    try:
        token = json.loads(body).get("ClientRequestToken")
    except (ValueError, AttributeError):
        return None
    return token if isinstance(token, str) and token else None


def _dynamodb_error(code: str, message: str) -> tuple[str, list[tuple[str, str]], bytes]:
    data = json.dumps({"__type": f"com.amazonaws.dynamodb.v20120810#{code}", "message": message}).encode()
    return "400 Bad Request", [("Content-Type", "application/x-amz-json-1.0"), ("Content-Length", str(len(data)))], data


def _read_body(environ: dict[str, Any]) -> bytes:
    """The whole request body, read before the request waits for its turn (a slow client holds no one up)."""
    stream = environ.get("wsgi.input")
    if stream is None:
        return b""
    length = environ.get("CONTENT_LENGTH") or ""
    if length.isdigit():
        return bytes(stream.read(int(length)))
    if environ.get("wsgi.input_terminated"):
        return bytes(stream.read())
    return b""


def _long_poll(environ: dict[str, Any], body: bytes) -> tuple[float, bytes | None]:
    """(wait seconds, the same request with no wait) for an SQS ReceiveMessage that waits; else (0, None)."""
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    if target == "AmazonSQS.ReceiveMessage":  # the JSON protocol (botocore today)
        try:
            request = json.loads(body or b"{}")
            wait_s = float(request.get("WaitTimeSeconds") or 0)
        except (ValueError, TypeError, AttributeError):
            return 0.0, None
        return (wait_s, json.dumps({**request, "WaitTimeSeconds": 0}).encode()) if wait_s > 0 else (0.0, None)
    if b"Action=ReceiveMessage" in body:  # the query protocol (older SDKs)
        fields = parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
        waits = [float(value) for name, value in fields if name == "WaitTimeSeconds" and value.isdigit()]
        if waits and waits[0] > 0:
            fields = [(name, "0" if name == "WaitTimeSeconds" else value) for name, value in fields]
            return waits[0], urlencode(fields).encode()
    return 0.0, None


def _has_messages(data: bytes) -> bool:
    return b'"Messages"' in data or b"<Message>" in data


# --- moto's table-size costs ------------------------------------------------------------------------
_state = threading.local()  # requests run one at a time; thread-local all the same


def install_speedups() -> list[str]:
    """Patch moto's DynamoDB so transactions and queries cost what the items they touch cost.

    Returns what was patched; a moto whose internals moved is left alone (and named on stderr).
    """
    try:
        import moto.dynamodb.models as backend_module
        from moto.dynamodb.models import DynamoDBBackend
        from moto.dynamodb.models.table import Table
    except ImportError as error:  # pragma: no cover - moto is a pinned dependency of the sandbox
        print(f"embedded AWS: no speedups ({error})", file=sys.stderr)
        return []
    installed = []
    needed = ("transact_write_items", "get_table", "get_keys_value")
    if backend_module.copy is copy and all(hasattr(DynamoDBBackend, name) for name in needed):
        backend_module.copy = _TableCopies(Table)  # type: ignore[assignment]
        DynamoDBBackend.transact_write_items = _transact_write_items(DynamoDBBackend.transact_write_items)
        installed.append("TransactWriteItems rolls back the items it touched")
    else:
        print("embedded AWS: moto's transact_write_items moved; it keeps copying whole tables", file=sys.stderr)
    if hasattr(Table, "all_items") and hasattr(Table, "query") and not getattr(Table.query, "_bulwark", False):
        Table.all_items = _partition_items(Table.all_items)
        Table.query = _query_one_partition(Table.query)
        installed.append("Query reads one partition")
    if _cache_request_routing():
        installed.append("request routing computed once")
    return installed


def install_revoke_token() -> bool:
    """Cognito's RevokeToken, which moto lacks and the web UI's sign-out calls: the refresh token (issued to that app
    client) stops renewing, so InitiateAuth REFRESH_TOKEN_AUTH with it answers NotAuthorizedException "Refresh Token
    has been revoked", as moto's own sign-out makes it; an unknown token revokes nothing. False (and a line on
    stderr) when moto's internals moved."""
    try:
        from moto.cognitoidp.responses import CognitoIdpResponse
        from moto.core.responses import EmptyResult
    except ImportError as error:  # pragma: no cover - moto is a pinned dependency of the sandbox
        print(f"embedded AWS: no RevokeToken ({error})", file=sys.stderr)
        return False
    if hasattr(CognitoIdpResponse, "revoke_token"):
        return True  # moto has it (a newer moto) or it is installed already

    def revoke_token(self: Any) -> Any:
        client_id, token = self._get_param("ClientId"), self._get_param("Token")
        for pool in self.backend.user_pools.values():
            issued = pool.refresh_tokens.get(token)
            if issued is not None and issued[0] == client_id:
                pool.refresh_tokens[token] = None  # what moto's sign-out does to a user's refresh tokens
        return EmptyResult()

    CognitoIdpResponse.revoke_token = revoke_token  # type: ignore[attr-defined]
    return True


def _cache_request_routing() -> bool:
    import moto.backends
    import moto.core.responses

    listing = getattr(moto.backends, "list_of_moto_modules", None)
    introspect = getattr(moto.core.responses, "method_names_from_class", None)
    if listing is None or introspect is None or getattr(introspect, "_bulwark", False):
        print("embedded AWS: moto's request routing moved; it is computed per request", file=sys.stderr)
        return False
    modules = tuple(listing())  # moto's own service packages: fixed while the process runs
    moto.backends.list_of_moto_modules = lambda: modules  # type: ignore[assignment]
    methods: dict[type, tuple[str, ...]] = {}

    def method_names_from_class(clazz: Any) -> tuple[str, ...]:
        if clazz not in methods:
            methods[clazz] = tuple(introspect(clazz))
        return methods[clazz]

    method_names_from_class._bulwark = True  # type: ignore[attr-defined]
    moto.core.responses.method_names_from_class = method_names_from_class  # type: ignore[assignment]
    return True


class _TableCopies:
    """Stands in for the `copy` module in moto's DynamoDB backend: while a transaction snapshots its
    items itself, `copy.deepcopy(table)` hands back the table (moto's whole-table rollback becomes a
    no-op); every other copy is a real one."""

    def __init__(self, table_type: type) -> None:
        self._table_type = table_type

    def __getattr__(self, name: str) -> Any:
        return getattr(copy, name)

    def deepcopy(self, value: Any, memo: Any = None) -> Any:
        if getattr(_state, "item_rollback", False) and isinstance(value, self._table_type):
            return value
        return copy.deepcopy(value, memo)


def _transact_write_items(original: Callable[..., None]) -> Callable[..., None]:
    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        try:
            touched = _snapshot(self, transact_items)
        except Exception:  # a malformed transaction: moto's own path answers it (with its whole-table copy)
            return original(self, transact_items)
        # A cancelled transaction wrote nothing: the stream records of the items it wrote before failing go too
        # (moto's whole-table rollback took the stream back with the table; global tables read these streams).
        streams = {id(t): (t.stream_shard, len(t.stream_shard.items)) for t, *_ in touched if t.stream_shard}
        _state.item_rollback = True
        try:
            original(self, transact_items)
        except BaseException:
            for table, hash_key, range_key, item in touched:
                _restore(table, hash_key, range_key, item)
            for shard, length in streams.values():
                del shard.items[length:]
            raise
        finally:
            _state.item_rollback = False

    transact_write_items._bulwark = True  # type: ignore[attr-defined]
    return transact_write_items


def _snapshot(backend: Any, transact_items: list[dict[str, Any]]) -> list[tuple[Any, Any, Any, Any]]:
    """(table, hash key, range key, a copy of the item or None) for each item the transaction writes."""
    touched = []
    for entry in transact_items:
        (kind, operation), *_ = entry.items()
        table = backend.get_table(operation["TableName"])
        if kind == "Put":
            attributes = operation["Item"]
            names = [table.hash_key_attr] + ([table.range_key_attr] if table.range_key_attr else [])
            key = {name: attributes[name] for name in names}
        else:
            key = operation["Key"]
        hash_key, range_key = backend.get_keys_value(table, key)
        touched.append((table, hash_key, range_key, copy.deepcopy(table.get_item(hash_key, range_key))))
    return touched


def _restore(table: Any, hash_key: Any, range_key: Any, item: Any) -> None:
    if range_key is not None:
        partition = table.items.get(hash_key)
        if item is not None:
            table.items[hash_key][range_key] = item
        elif partition is not None:
            partition.pop(range_key, None)
    elif item is not None:
        table.items[hash_key] = item
    else:
        table.items.pop(hash_key, None)


def _query_one_partition(original: Callable[..., Any]) -> Callable[..., Any]:
    def query(self: Any, hash_key: Any, *args: Any, **kwargs: Any) -> Any:
        index_name = args[6] if len(args) > 6 else kwargs.get("index_name")
        if index_name or hash_key is None or not self.range_key_attr:
            return original(self, hash_key, *args, **kwargs)
        _state.table, _state.hash_key = self, hash_key
        try:
            return original(self, hash_key, *args, **kwargs)
        finally:
            _state.table = _state.hash_key = None

    query._bulwark = True  # type: ignore[attr-defined]
    return query


def _partition_items(original: Callable[..., Any]) -> Callable[..., Any]:
    """Inside a query on the table's key, the items of that one partition (the only ones it keeps)."""

    def all_items(self: Any) -> Any:
        if getattr(_state, "table", None) is self:
            items = list(self.items.get(_state.hash_key, {}).values())
            return sorted(items, key=lambda item: item.range_key)
        return original(self)

    return all_items


# --- the server ----------------------------------------------------------------------------------------
def build_app() -> WsgiApp:
    """moto's server app (as `python -m moto.server` builds it), one request at a time, with global tables'
    replication (local/global_tables.py) controlled at /_bulwark/global-tables."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    from local.global_tables import GlobalTables

    app = OneAtATime(DomainDispatcherApplication(create_backend_app))
    replication = GlobalTables(lock=app.lock).start()
    app.admin = _admin_app(replication)
    return app


def _admin_app(replication: Any) -> WsgiApp:
    """GET /_bulwark/global-tables[?keys=1]: the replication's state (per direction: pending changes, their oldest
    age, replicated and superseded counts; with keys=1 the pending items' keys). POST it with any of
    {"tables": [...], "regions": [...], "lag_s": 0.5, "unavailable": ["us-east-1"]} to configure it."""

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        method = environ.get("REQUEST_METHOD", "GET")
        status, payload = "404 Not Found", {"message": f"no route {method} {path}"}
        if path == "/_bulwark/global-tables":
            try:
                if method == "POST":
                    replication.configure(**json.loads(_read_body(environ) or b"{}"))
                    status, payload = "200 OK", replication.stats()
                elif method == "GET":
                    keys = dict(parse_qsl(environ.get("QUERY_STRING", ""))).get("keys") == "1"
                    status, payload = "200 OK", replication.stats(keys=keys)
            except (ValueError, TypeError) as error:
                status, payload = "400 Bad Request", {"message": str(error)}
        data = json.dumps(payload).encode()
        start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
        return [data]

    return app


def main(argv: list[str] | None = None) -> None:
    from moto.moto_server.werkzeug_app import MotoRequestHandler
    from werkzeug.serving import run_simple

    parser = argparse.ArgumentParser(description="moto's server for the sandbox: one request at a time.")
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, required=True)
    args = parser.parse_args(argv)
    os.environ.setdefault("MOTO_PORT", str(args.port))  # as moto's own server sets it
    install_speedups()
    install_revoke_token()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    run_simple(args.host, args.port, build_app(), threaded=True, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main()
