"""DynamoDB global tables for the embedded AWS: replication between regions' tables, which moto does not do.

moto keeps each region's tables apart and ignores replicas. This replicator runs inside the embedded AWS's
process (local/embedded_aws.py) and reads each replica's DynamoDB stream, the records moto keeps for a table
created with a StreamSpecification (as the template's global tables have: NEW_AND_OLD_IMAGES), in order. Each
record written by the application in one region is applied to the same table in every other region, as global
tables (version 2019.11.21) do:
- asynchronously: a record is applied `lag_s` after it was written (DynamoDB's ReplicationLatency; the sandbox
  picks it, it is not a measurement of AWS);
- in both directions, whole items: the record's new image is put, a REMOVE deletes the item;
- last writer wins per item: every replica remembers the timestamp of the write that made each item what it is
  (the stream record's ApproximateCreationDateTime, or the origin's for a replicated write); a replicated
  write older than that is dropped (counted as superseded), so concurrent writes converge on the latest one,
  and a write stuck in a failed region does not overwrite what the other region wrote later;
- writes the replicator itself applied are not replicated again;
- a region marked unavailable neither sends nor receives: its writes wait, and so do the other regions' writes
  to it, until it is available again (a regional outage; AWS FIS's global-table-pause-replication does the same).

The replicator reads moto's stream shards in-process (the same records GetRecords would serve) under the
embedded AWS's one-request-at-a-time lock, so a replicated write never interleaves with a request. What it does
not model: DynamoDB's multi-region strong consistency (MRSC), TTL deletions (moto has none), binary attributes
(replicated as their base64 text) and the stream's 24-hour retention beyond trimming what it has read.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

DEFAULT_LAG_S = 0.5
PUMP_INTERVAL_S = 0.05
STREAM_RETENTION_S = 24 * 3600.0


@dataclass(frozen=True)
class _Change:
    """One application write read from a replica's stream, on its way to another replica."""

    table: str
    keys: dict[str, Any]  # the item's key, DynamoDB JSON
    image: dict[str, Any] | None  # the new image; None for a REMOVE
    written_at: float  # epoch seconds (the stream record's ApproximateCreationDateTime)


@dataclass
class _Direction:
    source: str
    target: str
    queues: dict[str, deque[_Change]] = field(default_factory=dict)  # per table, in stream order
    replicated: int = 0
    superseded: int = 0  # dropped: the target holds a later write of that item
    last_lag_s: float | None = None  # written -> applied, for the last applied change

    def pending(self) -> int:
        return sum(len(queue) for queue in self.queues.values())


class GlobalTables:
    """The replicator: configure it with the global tables and regions, then `pump()` (a thread does it)."""

    def __init__(
        self,
        *,
        lock: threading.Lock,
        clock: Callable[[], float] = time.time,
        backends: Callable[[str], Any] | None = None,
    ) -> None:
        """`lock`: the embedded AWS's request lock. `backends(region)`: moto's DynamoDB backend of a region."""
        self._lock = lock
        self._clock = clock
        self._backends = backends or _moto_backend
        self._state_lock = threading.Lock()  # configuration and stats, taken inside `lock` only
        self.tables: list[str] = []
        self.regions: list[str] = []
        self.lag_s = DEFAULT_LAG_S
        self.unavailable: set[str] = set()
        self._positions: dict[tuple[str, str], int] = {}  # (region, table) -> next stream record to read
        self._shards: dict[tuple[str, str], Any] = {}  # (region, table) -> the shard the position is in
        self._written: dict[tuple[str, str], dict[str, float]] = {}  # (region, table) -> item key -> timestamp
        self._directions: dict[tuple[str, str], _Direction] = {}
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self.errors: list[str] = []

    # --- configuration ----------------------------------------------------------------------------------
    def configure(
        self,
        *,
        tables: list[str] | None = None,
        regions: list[str] | None = None,
        lag_s: float | None = None,
        unavailable: list[str] | None = None,
    ) -> None:
        """Which tables replicate between which regions, the lag, and which regions are down. Tables and regions,
        when given, start replicating from their streams' current end (set them up before writing)."""
        if lag_s is not None and not 0 <= lag_s <= 3600:
            raise ValueError(f"lag_s must be between 0 and 3600 seconds, got {lag_s}")
        with self._lock, self._state_lock:
            if tables is not None or regions is not None:
                self.tables = list(tables if tables is not None else self.tables)
                self.regions = list(regions if regions is not None else self.regions)
                if len(set(self.regions)) != len(self.regions):
                    raise ValueError(f"regions must be distinct: {self.regions}")
                self._positions.clear()
                self._shards.clear()
                self._written.clear()
                self._directions = {
                    (a, b): _Direction(source=a, target=b) for a in self.regions for b in self.regions if a != b
                }
                for region in self.regions:
                    for table in self.tables:
                        shard = self._shard(region, table)
                        if shard is None:
                            raise ValueError(
                                f"table {table} in {region} does not exist or has no stream (a global table's "
                                "replicas need StreamSpecification NEW_AND_OLD_IMAGES)"
                            )
                        self._shards[(region, table)] = shard
                        self._positions[(region, table)] = len(shard.items)
            if lag_s is not None:
                self.lag_s = float(lag_s)
            if unavailable is not None:
                unknown = set(unavailable) - set(self.regions)
                if unknown:
                    raise ValueError(f"unknown regions {sorted(unknown)}: replicating {self.regions}")
                self.unavailable = set(unavailable)

    def start(self, interval_s: float = PUMP_INTERVAL_S) -> GlobalTables:
        def loop() -> None:
            while not self._stop.wait(interval_s):
                try:
                    self.pump()
                except Exception as error:  # kept for the stats; the next pump tries again
                    self.errors.append(f"{type(error).__name__}: {error}")
                    del self.errors[:-20]

        self._thread = threading.Thread(target=loop, name="global-tables", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    # --- replication ------------------------------------------------------------------------------------
    def pump(self) -> int:
        """Read every replica's new stream records, then apply the changes that are due. Returns how many were
        applied (or superseded)."""
        if not self._directions:  # not configured (one region): never take the embedded AWS's lock
            return 0
        with self._lock, self._state_lock:
            if not self._directions:
                return 0
            for region in self.regions:
                for table in self.tables:
                    self._read(region, table)
            now = self._clock()
            done = 0
            for direction in self._directions.values():
                if direction.source in self.unavailable or direction.target in self.unavailable:
                    continue
                for queue in direction.queues.values():
                    while queue and queue[0].written_at + self.lag_s <= now:
                        done += self._apply(direction, queue.popleft(), now)
            self._trim(now)
            return done

    def _read(self, region: str, table: str) -> None:
        shard = self._shard(region, table)
        if shard is None:
            return
        if shard is not self._shards.get((region, table)):
            # moto replaced the table object (its own whole-table rollback of a cancelled transaction restores a
            # copy, stream included): keep reading at the same sequence number in the new shard.
            old = self._shards.get((region, table))
            next_sequence = (old.starting_sequence_number if old else 0) + self._positions.get((region, table), 0)
            self._shards[(region, table)] = shard
            self._positions[(region, table)] = max(0, next_sequence - shard.starting_sequence_number)
        position = self._positions[(region, table)]
        records = shard.items[position:]
        self._positions[(region, table)] = position + len(records)
        written = self._written.setdefault((region, table), {})
        for stream_record in records:
            record = stream_record.record["dynamodb"]
            keys = record["Keys"]
            at = _epoch(record["ApproximateCreationDateTime"])
            written[_key_id(keys)] = at
            image = record.get("NewImage") if stream_record.record["eventName"] != "REMOVE" else None
            change = _Change(table=table, keys=keys, image=image, written_at=at)
            for target in self.regions:
                if target != region:
                    self._directions[(region, target)].queues.setdefault(table, deque()).append(change)

    def _apply(self, direction: _Direction, change: _Change, now: float) -> int:
        key = _key_id(change.keys)
        written = self._written.setdefault((direction.target, change.table), {})
        newest = written.get(key)
        if newest is not None and (newest, direction.target) > (change.written_at, direction.source):
            direction.superseded += 1  # last writer wins: the target's own later write stays
            return 1
        table = self._backends(direction.target).get_table(change.table)
        shard = table.stream_shard
        before = len(shard.items) if shard is not None else 0
        if change.image is not None:
            table.put_item(change.image, overwrite=True)
        else:
            hash_key, range_key = _dynamo_keys(table, change.keys)
            if table.get_item(hash_key, range_key) is not None:
                table.delete_item(hash_key, range_key)
        written[key] = change.written_at
        if shard is not None:  # our own write's stream records are not the application's: never replicated back
            self._positions[(direction.target, change.table)] += len(shard.items) - before
        direction.replicated += 1
        direction.last_lag_s = now - change.written_at
        return 1

    def _trim(self, now: float) -> None:
        """Drop stream records both read and older than the stream's retention (DynamoDB Streams keeps 24 h)."""
        for (region, table), shard in self._shards.items():
            position = self._positions[(region, table)]
            old = 0
            while old < position and _epoch(shard.items[old].record["dynamodb"]["ApproximateCreationDateTime"]) < (
                now - STREAM_RETENTION_S
            ):
                old += 1
            if old:
                del shard.items[:old]
                shard.starting_sequence_number += old
                self._positions[(region, table)] = position - old

    def _shard(self, region: str, table: str) -> Any:
        try:
            return self._backends(region).get_table(table).stream_shard
        except Exception:  # moto's ResourceNotFound: the table is not there (yet)
            return None

    # --- what the drill and the tests read --------------------------------------------------------------
    def stats(self, *, keys: bool = False) -> dict[str, Any]:
        """Per direction: what is pending, its oldest write's age, what was replicated or superseded. The streams
        are read first, so a write answered before this call counts as pending until it is applied."""
        with self._lock, self._state_lock:
            for region in self.regions:
                for table in self.tables:
                    self._read(region, table)
            now = self._clock()
            directions = {}
            for (source, target), direction in self._directions.items():
                oldest = min((q[0].written_at for q in direction.queues.values() if q), default=None)
                entry: dict[str, Any] = {
                    "pending": direction.pending(),
                    "oldest_pending_age_s": None if oldest is None else round(now - oldest, 3),
                    "replicated": direction.replicated,
                    "superseded": direction.superseded,
                    "last_lag_s": None if direction.last_lag_s is None else round(direction.last_lag_s, 3),
                    "paused": source in self.unavailable or target in self.unavailable,
                }
                if keys:
                    entry["pending_keys"] = [
                        {"table": change.table, "keys": change.keys, "written_at": change.written_at}
                        for queue in direction.queues.values()
                        for change in queue
                    ]
                directions[f"{source}->{target}"] = entry
            return {
                "tables": list(self.tables),
                "regions": list(self.regions),
                "lag_s": self.lag_s,
                "unavailable": sorted(self.unavailable),
                "directions": directions,
                "errors": list(self.errors),
            }


def _moto_backend(region: str) -> Any:
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.dynamodb.models import dynamodb_backends

    return dynamodb_backends[DEFAULT_ACCOUNT_ID][region]


def _epoch(value: Any) -> float:
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()
    return float(value)


def _key_id(keys: dict[str, Any]) -> str:
    return repr(sorted((name, sorted(value.items())) for name, value in keys.items()))


def _dynamo_keys(table: Any, keys: dict[str, Any]) -> tuple[Any, Any]:
    from moto.dynamodb.models.dynamo_type import DynamoType

    hash_key = DynamoType(keys[table.hash_key_attr])
    range_key = DynamoType(keys[table.range_key_attr]) if table.range_key_attr else None
    return hash_key, range_key
