"""core.documents.DocumentStore on the Documents table: the ingest pipeline's writes to a document's status.

Same partition as the API's catalog (adapters.document_catalog, which describes the layout): pk = owner sub; the
document's metadata item (sk = document id: name, content_type, size, created_at, deleted_at) is the API's, and
each region's pipeline writes only its own status item (sk = `<document id>#status#<region>`):
    state, version_id, sequencer, chunk_count | code + reason, updated_at, lease_until,
    and the object's name, content_type, size, created_at (the first claim's), document_id, region
So no two regions ever write the same item: a global table's last-writer-wins (per item) cannot drop one
region's status in favour of the other's, as it did when every region's status was a map entry of one item.

An index rebuild re-takes a `ready` version's ingest with `reclaim` (same sequencer and version, a new lease).
Every transition is one conditional UpdateItem of the region's status item on the event's S3 sequencer
(normalized to a fixed width so that string order is event order): an older event never overwrites a newer
one's state, and only the event that claimed the ingest may finish it. A claim (and a reclaim) first reads the
document's items (one Query) and refuses a document the user deleted; the status write itself no longer
checks the metadata item atomically (another item). The gap is covered by S3's order: the user's delete removes
the object, whose delete event (sequencer newer than any create) marks the status `deleted` and removes the
vectors whenever it runs, and a `ready` written meanwhile is read as deleted (the metadata wins).

Migration from the old layout (the status map `status.<region>` on the metadata item): `get` reads a region's
old entry when it has no status item yet, and before its first write to a document the pipeline copies its
region's old entry into its status item (`_migrate`, conditional on the status item not existing), so the
sequencer order of events from before the upgrade still holds. The old map is never written again.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from adapters.aws_errors import dependency
from adapters.document_catalog import Items, group_items, legacy_status, query_all, region_status, status_key
from core.documents import Claim, DocumentRecord, DocumentState, RegionStatus

_DOCUMENTS = "DynamoDB (the documents table)"
_NAMES = {"#state": "state", "#seq": "sequencer", "#lease": "lease_until"}
# What the pipeline writes on its status item apart from the status itself.
_STATUS_FIELDS = ("state", "version_id", "sequencer", "chunk_count", "code", "reason", "updated_at", "lease_until")


def iso(epoch_s: float) -> str:
    return datetime.fromtimestamp(epoch_s, UTC).isoformat(timespec="milliseconds")


def _status_key(owner: str, document_id: str, region: str) -> dict[str, Any]:
    return {"pk": {"S": owner}, "sk": {"S": status_key(document_id, region)}}


def _s(item: dict[str, Any], name: str) -> str | None:
    value = item.get(name, {}).get("S")
    return str(value) if value is not None else None


def _n(item: dict[str, Any], name: str) -> float | None:
    value = item.get(name, {}).get("N")
    return float(value) if value is not None else None


def _region_status(raw: dict[str, Any]) -> RegionStatus:
    chunks = _n(raw, "chunk_count")
    try:
        state = DocumentState(_s(raw, "state") or "uploading")
    except ValueError:  # a state this version does not know (e.g. the API's "queued"): not ingesting
        state = DocumentState.UPLOADING
    return RegionStatus(
        state=state,
        version_id=_s(raw, "version_id"),
        sequencer=_s(raw, "sequencer"),
        chunk_count=int(chunks) if chunks is not None else None,
        code=_s(raw, "code"),
        reason=_s(raw, "reason"),
        updated_at=_s(raw, "updated_at"),
        lease_until=_n(raw, "lease_until"),
    )


def record_from_items(owner: str, document_id: str, metadata: dict[str, Any] | None,
                      statuses: dict[str, dict[str, Any]]) -> DocumentRecord:  # fmt: skip
    """The pipeline's view of a document from its items: every region's status (its status item, or the old
    layout's entry), the names from the metadata item (or, for an upload by other means, a status item)."""
    regions = set(statuses) | set((metadata or {}).get("status", {}).get("M", {}))
    about = metadata or next(iter(statuses.values()), {})
    size = _n(about, "size")
    updates = [_s(item, "updated_at") for item in (metadata or {}, *statuses.values())]
    return DocumentRecord(
        owner=owner,
        document_id=document_id,
        name=_s(about, "name") or "",
        content_type=_s(about, "content_type") or "",
        size=int(size) if size is not None else 0,
        version_id=_s(about, "version_id"),
        created_at=_s(about, "created_at"),
        updated_at=max((u for u in updates if u), default=None),
        deleted_at=_s(metadata or {}, "deleted_at"),
        status={region: _region_status(region_status(metadata, statuses, region)) for region in sorted(regions)},
    )


class DynamoDocumentStore:
    def __init__(self, *, client: Any, table_name: str, clock: Callable[[], float] = time.time) -> None:
        self._client = client
        self._table = table_name
        self._clock = clock

    @dependency(_DOCUMENTS, "read the document's record")
    def get(self, owner: str, document_id: str) -> DocumentRecord | None:
        found = self._items(owner, document_id)
        return record_from_items(owner, document_id, *found) if found else None

    @dependency(_DOCUMENTS, "record the document's status")
    def claim(
        self,
        owner: str,
        document_id: str,
        region: str,
        *,
        sequencer: str,
        version_id: str,
        name: str,
        content_type: str,
        size: int,
        lease_until: float,
    ) -> Claim:
        now = self._clock()
        found = self._items(owner, document_id)
        if found and "deleted_at" in (found[0] or {}):
            return Claim.STALE  # the user deleted it: never indexed again
        self._migrate(owner, document_id, region, found)
        try:
            self._client.update_item(
                TableName=self._table,
                Key=_status_key(owner, document_id, region),
                UpdateExpression=(
                    "SET #state = :ingesting, version_id = :v, #seq = :seq, updated_at = :now, #lease = :lease, "
                    "document_id = :id, #region = :region, #name = :name, content_type = :ct, #size = :size, "
                    "created_at = if_not_exists(created_at, :now) REMOVE chunk_count, code, reason"
                ),
                ConditionExpression=(
                    "(attribute_not_exists(#state) OR #state <> :deleted) AND ("
                    "attribute_not_exists(#seq)"
                    " OR (#seq < :seq AND (#state <> :ingesting OR #lease < :epoch))"
                    " OR (#seq = :seq AND #state IN (:ingesting, :failed)))"
                ),
                ExpressionAttributeNames={**_NAMES, "#region": "region", "#name": "name", "#size": "size"},
                ExpressionAttributeValues={
                    ":v": {"S": version_id},
                    ":ct": {"S": content_type},
                    ":size": {"N": str(size)},
                    ":name": {"S": name or document_id},
                    ":id": {"S": document_id},
                    ":region": {"S": region},
                    ":now": {"S": iso(now)},
                    ":seq": {"S": sequencer},
                    ":lease": {"N": repr(lease_until)},
                    ":ingesting": {"S": DocumentState.INGESTING.value},
                    ":failed": {"S": DocumentState.FAILED.value},
                    ":deleted": {"S": DocumentState.DELETED.value},
                    ":epoch": {"N": repr(now)},
                },
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as error:
            if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
            return self._refusal(self._refused(error, owner, document_id, region), sequencer)
        return Claim.STARTED

    @staticmethod
    def _refusal(status: RegionStatus | None, sequencer: str) -> Claim:
        """Why a claim was refused: BUSY only when an older event still holds its lease, STALE otherwise."""
        if status is None or status.state is DocumentState.DELETED:
            return Claim.STALE
        if status.sequencer is not None and status.sequencer < sequencer and status.state is DocumentState.INGESTING:
            return Claim.BUSY
        return Claim.STALE

    @dependency(_DOCUMENTS, "record the document's status")
    def reclaim(
        self, owner: str, document_id: str, region: str, *, sequencer: str, version_id: str, lease_until: float
    ) -> Claim:
        now = self._clock()
        found = self._items(owner, document_id)
        if not found or "deleted_at" in (found[0] or {}):
            return Claim.STALE
        self._migrate(owner, document_id, region, found)
        try:
            self._client.update_item(
                TableName=self._table,
                Key=_status_key(owner, document_id, region),
                UpdateExpression="SET #state = :ingesting, #lease = :lease, updated_at = :now REMOVE chunk_count",
                ConditionExpression=(
                    "#seq = :seq AND #v = :v AND (#state = :ready OR (#state = :ingesting AND #lease < :epoch))"
                ),
                ExpressionAttributeNames={**_NAMES, "#v": "version_id"},
                ExpressionAttributeValues={
                    ":ingesting": {"S": DocumentState.INGESTING.value},
                    ":ready": {"S": DocumentState.READY.value},
                    ":lease": {"N": repr(lease_until)},
                    ":now": {"S": iso(now)},
                    ":seq": {"S": sequencer},
                    ":v": {"S": version_id},
                    ":epoch": {"N": repr(now)},
                },
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as error:
            if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
            status = self._refused(error, owner, document_id, region)
            if status is None:
                return Claim.STALE
            held = status.state is DocumentState.INGESTING and status.sequencer == sequencer
            return Claim.BUSY if held and status.version_id == version_id else Claim.STALE
        return Claim.STARTED

    def mark_ready(self, owner: str, document_id: str, region: str, *, sequencer: str, chunk_count: int) -> bool:
        return self._finish(
            owner,
            document_id,
            region,
            sequencer=sequencer,
            state=DocumentState.READY,
            sets={"chunk_count": {"N": str(chunk_count)}},
            removes=("code", "reason", "lease_until"),
        )

    def mark_failed(self, owner: str, document_id: str, region: str, *, sequencer: str, code: str, reason: str) -> bool:
        return self._finish(
            owner,
            document_id,
            region,
            sequencer=sequencer,
            state=DocumentState.FAILED,
            sets={"code": {"S": code}, "reason": {"S": reason}},
            removes=("chunk_count", "lease_until"),
        )

    @dependency(_DOCUMENTS, "record the document's status")
    def _finish(
        self,
        owner: str,
        document_id: str,
        region: str,
        *,
        sequencer: str,
        state: DocumentState,
        sets: dict[str, Any],
        removes: tuple[str, ...],
    ) -> bool:
        """Only the event that holds the claim (same sequencer, still ingesting) may finish the ingest."""
        now = self._clock()
        names = {"#state": "state", "#seq": "sequencer"}
        values: dict[str, Any] = {
            ":state": {"S": state.value},
            ":now": {"S": iso(now)},
            ":seq": {"S": sequencer},
            ":ingesting": {"S": DocumentState.INGESTING.value},
        }
        assignments = ["#state = :state", "updated_at = :now"]
        for index, (name, value) in enumerate(sets.items()):
            names[f"#x{index}"] = name
            values[f":x{index}"] = value
            assignments.append(f"#x{index} = :x{index}")
        removals = []
        for index, name in enumerate(removes):
            names[f"#y{index}"] = name
            removals.append(f"#y{index}")
        try:
            self._client.update_item(
                TableName=self._table,
                Key=_status_key(owner, document_id, region),
                UpdateExpression=f"SET {', '.join(assignments)} REMOVE {', '.join(removals)}",
                ConditionExpression="#seq = :seq AND #state = :ingesting",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
            )
        except ClientError as error:
            if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
            return False
        return True

    @dependency(_DOCUMENTS, "record the document's deletion")
    def mark_deleted(self, owner: str, document_id: str, region: str, *, sequencer: str) -> bool:
        found = self._items(owner, document_id)
        if not found:
            return True  # no record at all (never created, or expired): nothing newer to protect
        self._migrate(owner, document_id, region, found)
        now = self._clock()
        try:
            self._client.update_item(
                TableName=self._table,
                Key=_status_key(owner, document_id, region),
                UpdateExpression=(
                    "SET #state = :deleted, #seq = :seq, updated_at = :now, document_id = :id, #region = :region "
                    "REMOVE version_id, chunk_count, code, reason, #lease"
                ),
                ConditionExpression="attribute_not_exists(#seq) OR #seq <= :seq",
                ExpressionAttributeNames={**_NAMES, "#region": "region"},
                ExpressionAttributeValues={
                    ":deleted": {"S": DocumentState.DELETED.value},
                    ":now": {"S": iso(now)},
                    ":seq": {"S": sequencer},
                    ":id": {"S": document_id},
                    ":region": {"S": region},
                },
            )
        except ClientError as error:
            if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
            return False
        return True

    def _items(self, owner: str, document_id: str) -> Items | None:
        """The document's metadata item and every region's status item: one consistent Query."""
        query = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :id)",
            "ExpressionAttributeValues": {":pk": {"S": owner}, ":id": {"S": document_id}},
            "ConsistentRead": True,
        }
        return group_items(query_all(self._client, query)).get((owner, document_id))

    def _migrate(self, owner: str, document_id: str, region: str, found: Items | None) -> None:
        """The old layout's `status.<region>` becomes the region's status item, once (before its first write)."""
        metadata, statuses = found or (None, {})
        entry = legacy_status(metadata, region) if region not in statuses else None
        if not entry or metadata is None:
            return
        item = {name: entry[name] for name in _STATUS_FIELDS if name in entry}
        for name in ("name", "content_type", "size", "created_at"):
            if name in metadata:
                item[name] = metadata[name]
        item.update(_status_key(owner, document_id, region), document_id={"S": document_id}, region={"S": region})
        try:
            self._client.put_item(TableName=self._table, Item=item, ConditionExpression="attribute_not_exists(sk)")
        except ClientError as error:
            if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise  # else: migrated meanwhile (a concurrent delivery): the item that exists is the newer one

    def _refused(self, error: ClientError, owner: str, document_id: str, region: str) -> RegionStatus | None:
        """The region's status as the refused write found it (None if its status item does not exist)."""
        item = error.response.get("Item")
        if item is None:
            found = self._items(owner, document_id)
            item = found[1].get(region) if found else None
        return _region_status(item) if item else None
