"""The prompt catalog on DynamoDB (a global table, backed up like the other data).

Layout (one partition per prompt name; the chat prompt is "system"):
    pk=<name>  sk=V#000001       one immutable version: text, created_at, note
    pk=<name>  sk=ACTIVE#<env>   an environment's pointer: version, a copy of its text, history (earlier versions)

The Lambdas read only the pointer (one GetItem, IAM allows nothing else): the version's text is copied into it
on activation, so a cold start pays one read. Writes (add, activate, rollback) are the operator's, through
tools/prompts.py; each pointer write is conditional on the pointer it was computed from.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from core.errors import Conflict, NotFound
from core.prompts import (
    DEFAULT_PROMPT_NAME,
    Activation,
    PromptVersion,
    activate,
    next_version,
    rollback,
    validate_environment,
    validate_text,
    validate_version,
)

_VERSION_PREFIX = "V#"
_ACTIVE_PREFIX = "ACTIVE#"


def _version_sk(version: str) -> str:
    return f"{_VERSION_PREFIX}{int(version):06d}"


def _active_sk(environment: str) -> str:
    return f"{_ACTIVE_PREFIX}{environment}"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass(frozen=True, kw_only=True)
class StoredVersion:
    version: str
    text: str
    created_at: str
    note: str = ""


class DynamoPromptCatalog:
    def __init__(self, *, client: Any, table_name: str, name: str = DEFAULT_PROMPT_NAME) -> None:
        self._client = client
        self._table = table_name
        self._name = name

    # --- what the Lambdas call ------------------------------------------------------------------
    def active(self, environment: str) -> PromptVersion | None:
        item = self._client.get_item(TableName=self._table, Key=self._key(_active_sk(environment))).get("Item")
        if item is None:
            return None
        return PromptVersion(version=item["version"]["S"], text=item["text"]["S"])

    # --- the operator's (tools/prompts.py) ------------------------------------------------------
    def versions(self) -> list[StoredVersion]:
        return [_stored(item) for item in self._query(_VERSION_PREFIX)]

    def version(self, version: str) -> StoredVersion:
        item = self._client.get_item(
            TableName=self._table, Key=self._key(_version_sk(validate_version(version))), ConsistentRead=True
        ).get("Item")
        if item is None:
            raise NotFound(f"prompt {self._name} has no version {version}")
        return _stored(item)

    def activations(self) -> dict[str, Activation]:
        """Every environment's pointer."""
        return {item["sk"]["S"][len(_ACTIVE_PREFIX) :]: _activation(item) for item in self._query(_ACTIVE_PREFIX)}

    def activation(self, environment: str) -> Activation | None:
        item = self._client.get_item(
            TableName=self._table, Key=self._key(_active_sk(validate_environment(environment))), ConsistentRead=True
        ).get("Item")
        return None if item is None else _activation(item)

    def add(self, text: str, *, note: str = "") -> str:
        """Store a new version (never overwrites one); returns its number."""
        validate_text(text)
        for _ in range(3):  # another operator may take the same number: take the next one
            version = next_version(stored.version for stored in self.versions())
            item = {
                **self._key(_version_sk(version)),
                "version": {"S": version},
                "text": {"S": text},
                "created_at": {"S": _now()},
                "note": {"S": note},
            }
            try:
                self._client.put_item(TableName=self._table, Item=item, ConditionExpression="attribute_not_exists(sk)")
                return version
            except ClientError as error:
                if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
                    raise
        raise Conflict("versions are being added concurrently; try again")

    def activate(self, environment: str, version: str) -> Activation:
        current = self.activation(environment)
        return self._point(environment, current, activate(current, version))

    def rollback(self, environment: str) -> Activation:
        current = self.activation(environment)
        return self._point(environment, current, rollback(current))

    def _point(self, environment: str, current: Activation | None, new: Activation) -> Activation:
        text = self.version(new.version).text
        item = {
            **self._key(_active_sk(environment)),
            "version": {"S": new.version},
            "text": {"S": text},
            "history": {"L": [{"S": version} for version in new.history]},
            "updated_at": {"S": _now()},
        }
        if current is None:
            condition: dict[str, Any] = {"ConditionExpression": "attribute_not_exists(sk)"}
        else:
            condition = {
                "ConditionExpression": "version = :seen",
                "ExpressionAttributeValues": {":seen": {"S": current.version}},
            }
        try:
            self._client.put_item(TableName=self._table, Item=item, **condition)
        except ClientError as error:
            if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
            raise Conflict(
                f"environment {environment}'s active version changed meanwhile; look and try again"
            ) from error
        return new

    def _key(self, sk: str) -> dict[str, Any]:
        return {"pk": {"S": self._name}, "sk": {"S": sk}}

    def _query(self, prefix: str) -> list[dict[str, Any]]:
        query: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :prefix)",
            "ExpressionAttributeValues": {":pk": {"S": self._name}, ":prefix": {"S": prefix}},
            "ConsistentRead": True,
        }
        items: list[dict[str, Any]] = []
        while True:
            page = self._client.query(**query)
            items.extend(page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                return items
            query["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _stored(item: dict[str, Any]) -> StoredVersion:
    return StoredVersion(
        version=item["version"]["S"],
        text=item["text"]["S"],
        created_at=item.get("created_at", {}).get("S", ""),
        note=item.get("note", {}).get("S", ""),
    )


def _activation(item: dict[str, Any]) -> Activation:
    return Activation(
        version=item["version"]["S"], history=tuple(entry["S"] for entry in item.get("history", {}).get("L", []))
    )
