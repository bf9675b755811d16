"""core.documents.DocumentStore on the Documents table: the ingest pipeline's writes to a document's record.

Same items as the API's catalog (adapters.document_catalog): pk = owner sub, sk = document id; `name`,
`content_type`, `size`, `version_id`, `created_at`/`updated_at` (ISO 8601), `deleted_at` once the user deleted
it, and `status`, a map with one entry per region:
    status.<region> = {state, version_id, sequencer, chunk_count | code + reason, updated_at, lease_until}
Each region's pipeline writes only its own entry (its own copy of the object, its own vector index).

An index rebuild re-takes a `ready` version's ingest with `reclaim` (same sequencer and version, a new lease).
Every transition is one conditional UpdateItem on the event's S3 sequencer (normalized to a fixed width so
that string order is event order): an older event never overwrites a newer one's state, and only the event
that claimed the ingest may finish it. DynamoDB cannot SET a path inside a map that does not exist yet, so
a claim first makes sure the record and its `status` map exist (if_not_exists, idempotent).

Global tables resolve concurrent writes to one item in two regions by last writer wins, for the whole item:
the regions write at different times (the DR copy arrives with S3 replication, minutes later), so this is
rare, and a later event of the same region writes its entry again.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from adapters.aws_errors import dependency
from core.documents import Claim, DocumentRecord, DocumentState, RegionStatus

_DOCUMENTS = "DynamoDB (the documents table)"
_NAMES = {"#st": "status", "#r": "", "#state": "state", "#seq": "sequencer", "#lease": "lease_until"}


def iso(epoch_s: float) -> str:
    return datetime.fromtimestamp(epoch_s, UTC).isoformat(timespec="milliseconds")


def _key(owner: str, document_id: str) -> dict[str, Any]:
    return {"pk": {"S": owner}, "sk": {"S": document_id}}


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


def record_from_item(item: dict[str, Any]) -> DocumentRecord:
    size = _n(item, "size")
    return DocumentRecord(
        owner=item["pk"]["S"],
        document_id=item["sk"]["S"],
        name=_s(item, "name") or "",
        content_type=_s(item, "content_type") or "",
        size=int(size) if size is not None else 0,
        version_id=_s(item, "version_id"),
        created_at=_s(item, "created_at"),
        updated_at=_s(item, "updated_at"),
        deleted_at=_s(item, "deleted_at"),
        status={
            region: _region_status(raw.get("M", {})) for region, raw in item.get("status", {}).get("M", {}).items()
        },
    )


class DynamoDocumentStore:
    def __init__(self, *, client: Any, table_name: str, clock: Callable[[], float] = time.time) -> None:
        self._client = client
        self._table = table_name
        self._clock = clock

    @dependency(_DOCUMENTS, "read the document's record")
    def get(self, owner: str, document_id: str) -> DocumentRecord | None:
        item = self._client.get_item(TableName=self._table, Key=_key(owner, document_id), ConsistentRead=True).get(
            "Item"
        )
        return record_from_item(item) if item else None

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
        self._ensure(owner, document_id, name=name, now=now, create=True)
        entry = {
            "state": {"S": DocumentState.INGESTING.value},
            "version_id": {"S": version_id},
            "sequencer": {"S": sequencer},
            "updated_at": {"S": iso(now)},
            "lease_until": {"N": repr(lease_until)},
        }
        try:
            self._client.update_item(
                TableName=self._table,
                Key=_key(owner, document_id),
                UpdateExpression=(
                    "SET #st.#r = :entry, version_id = :v, content_type = :ct, #size = :size, updated_at = :now"
                ),
                ConditionExpression=(
                    "attribute_not_exists(deleted_at) AND ("
                    "attribute_not_exists(#st.#r.#seq)"
                    " OR (#st.#r.#seq < :seq AND (#st.#r.#state <> :ingesting OR #st.#r.#lease < :epoch))"
                    " OR (#st.#r.#seq = :seq AND #st.#r.#state IN (:ingesting, :failed)))"
                ),
                ExpressionAttributeNames={**_NAMES, "#r": region, "#size": "size"},
                ExpressionAttributeValues={
                    ":entry": {"M": entry},
                    ":v": {"S": version_id},
                    ":ct": {"S": content_type},
                    ":size": {"N": str(size)},
                    ":now": {"S": iso(now)},
                    ":seq": {"S": sequencer},
                    ":ingesting": {"S": DocumentState.INGESTING.value},
                    ":failed": {"S": DocumentState.FAILED.value},
                    ":epoch": {"N": repr(now)},
                },
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as error:
            if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
            item = error.response.get("Item") or self._item(owner, document_id)
            return self._refusal(item, region, sequencer)
        return Claim.STARTED

    @staticmethod
    def _refusal(item: dict[str, Any] | None, region: str, sequencer: str) -> Claim:
        """Why a claim was refused: BUSY only when an older event still holds its lease, STALE otherwise."""
        if not item or "deleted_at" in item:
            return Claim.STALE
        raw = item.get("status", {}).get("M", {}).get(region, {}).get("M", {})
        status = _region_status(raw)
        if status.sequencer is not None and status.sequencer < sequencer and status.state is DocumentState.INGESTING:
            return Claim.BUSY
        return Claim.STALE

    @dependency(_DOCUMENTS, "record the document's status")
    def reclaim(
        self, owner: str, document_id: str, region: str, *, sequencer: str, version_id: str, lease_until: float
    ) -> Claim:
        now = self._clock()
        try:
            self._client.update_item(
                TableName=self._table,
                Key=_key(owner, document_id),
                UpdateExpression=(
                    "SET #st.#r.#state = :ingesting, #st.#r.#lease = :lease, #st.#r.updated_at = :now, "
                    "updated_at = :now REMOVE #st.#r.chunk_count"
                ),
                ConditionExpression=(
                    "attribute_not_exists(deleted_at) AND #st.#r.#seq = :seq AND #st.#r.#v = :v AND ("
                    "#st.#r.#state = :ready OR (#st.#r.#state = :ingesting AND #st.#r.#lease < :epoch))"
                ),
                ExpressionAttributeNames={**_NAMES, "#r": region, "#v": "version_id"},
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
            item = error.response.get("Item") or self._item(owner, document_id)
            if not item or "deleted_at" in item:
                return Claim.STALE
            status = _region_status(item.get("status", {}).get("M", {}).get(region, {}).get("M", {}))
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
        names = {"#st": "status", "#r": region, "#state": "state", "#seq": "sequencer"}
        values: dict[str, Any] = {
            ":state": {"S": state.value},
            ":now": {"S": iso(now)},
            ":seq": {"S": sequencer},
            ":ingesting": {"S": DocumentState.INGESTING.value},
        }
        assignments = ["#st.#r.#state = :state", "#st.#r.updated_at = :now", "updated_at = :now"]
        for index, (name, value) in enumerate(sets.items()):
            names[f"#x{index}"] = name
            values[f":x{index}"] = value
            assignments.append(f"#st.#r.#x{index} = :x{index}")
        removals = []
        for index, name in enumerate(removes):
            names[f"#y{index}"] = name
            removals.append(f"#st.#r.#y{index}")
        try:
            self._client.update_item(
                TableName=self._table,
                Key=_key(owner, document_id),
                UpdateExpression=f"SET {', '.join(assignments)} REMOVE {', '.join(removals)}",
                ConditionExpression=(
                    "attribute_not_exists(deleted_at) AND #st.#r.#seq = :seq AND #st.#r.#state = :ingesting"
                ),
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
        now = self._clock()
        if not self._ensure(owner, document_id, name=None, now=now, create=False):
            return True  # no record at all (never created, or expired): nothing newer to protect
        entry = {
            "state": {"S": DocumentState.DELETED.value},
            "sequencer": {"S": sequencer},
            "updated_at": {"S": iso(now)},
        }
        try:
            self._client.update_item(
                TableName=self._table,
                Key=_key(owner, document_id),
                UpdateExpression="SET #st.#r = :entry, deleted_at = if_not_exists(deleted_at, :now), updated_at = :now",
                ConditionExpression="attribute_not_exists(#st.#r.#seq) OR #st.#r.#seq <= :seq",
                ExpressionAttributeNames={"#st": "status", "#r": region, "#seq": "sequencer"},
                ExpressionAttributeValues={":entry": {"M": entry}, ":now": {"S": iso(now)}, ":seq": {"S": sequencer}},
            )
        except ClientError as error:
            if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
            return False
        return True

    def _ensure(self, owner: str, document_id: str, *, name: str | None, now: float, create: bool) -> bool:
        """The record and its `status` map exist afterwards (False if `create` is off and there is no record)."""
        names = {"#st": "status"}
        values: dict[str, Any] = {":empty": {"M": {}}}
        sets = ["#st = if_not_exists(#st, :empty)"]
        if create:
            names["#name"] = "name"
            values[":name"] = {"S": name or document_id}
            values[":now"] = {"S": iso(now)}
            sets += ["#name = if_not_exists(#name, :name)", "created_at = if_not_exists(created_at, :now)"]
        try:
            self._client.update_item(
                TableName=self._table,
                Key=_key(owner, document_id),
                UpdateExpression="SET " + ", ".join(sets),
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
                **({} if create else {"ConditionExpression": "attribute_exists(sk)"}),
            )
        except ClientError as error:
            if create or error.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
            return False
        return True

    def _item(self, owner: str, document_id: str) -> dict[str, Any] | None:
        item: dict[str, Any] | None = self._client.get_item(
            TableName=self._table, Key=_key(owner, document_id), ConsistentRead=True
        ).get("Item")
        return item
