"""ConversationStore on DynamoDB.

Layout (one table, partitioned by the caller's Cognito `sub`, so a user can only ever address
their own items):
    pk=<sub>  sk=C#<conversation id>            header: title, created_at, updated_at, turn_count
    pk=<sub>  sk=T#<conversation id>#<000042>   one question/answer turn (its citations as a JSON list)
"""

from __future__ import annotations

import json
import time
from typing import Any

from botocore.exceptions import ClientError

from adapters.aws_errors import THROTTLING_CODES, cancellation_codes, dependency, throttled
from core.errors import Conflict
from core.models import Citation, Conversation, TargetRef, Turn, Usage

_BATCH = 25
_UNPROCESSED_ROUNDS = 5
_DYNAMODB = "DynamoDB (the conversation store)"


def _header_key(user_id: str, conversation_id: str) -> dict[str, Any]:
    return {"pk": {"S": user_id}, "sk": {"S": f"C#{conversation_id}"}}


def _turn_prefix(conversation_id: str) -> str:
    return f"T#{conversation_id}#"


class DynamoConversationStore:
    def __init__(self, *, client: Any, table_name: str) -> None:
        self._client = client
        self._table = table_name

    @dependency(_DYNAMODB, "read your conversation")
    def get(self, user_id: str, conversation_id: str, *, last_turns: int | None = None) -> Conversation | None:
        item = self._client.get_item(
            TableName=self._table, Key=_header_key(user_id, conversation_id), ConsistentRead=True
        ).get("Item")
        if item is None:
            return None
        turns: list[Turn] = []
        if last_turns != 0:
            query: dict[str, Any] = {
                "TableName": self._table,
                "KeyConditionExpression": "pk = :pk AND begins_with(sk, :prefix)",
                "ExpressionAttributeValues": {
                    ":pk": {"S": user_id},
                    ":prefix": {"S": _turn_prefix(conversation_id)},
                },
                "ConsistentRead": True,
                "ScanIndexForward": last_turns is None,  # newest first when only the tail is wanted
            }
            if last_turns is not None:
                query["Limit"] = last_turns
            for page in self._pages(query, stop_after=last_turns):
                turns.extend(_turn(raw) for raw in page)
            turns.sort(key=lambda turn: turn.index)
            if last_turns is not None:
                turns = turns[-last_turns:]
        return _conversation(item, tuple(turns))

    @dependency(_DYNAMODB, "list your conversations")
    def list(self, user_id: str) -> list[Conversation]:
        query = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :prefix)",
            "ExpressionAttributeValues": {":pk": {"S": user_id}, ":prefix": {"S": "C#"}},
        }
        conversations = [_conversation(raw, ()) for page in self._pages(query) for raw in page]
        return sorted(conversations, key=lambda c: c.updated_at, reverse=True)

    def append_turn(self, user_id: str, conversation_id: str, *, expected_turns: int, turn: Turn, title: str) -> None:
        turn_item = {
            "pk": {"S": user_id},
            "sk": {"S": f"{_turn_prefix(conversation_id)}{turn.index:06d}"},
            "index": {"N": str(turn.index)},
            "user": {"S": turn.user},
            "assistant": {"S": turn.assistant},
            "created_at": {"S": turn.created_at},
            "model_id": {"S": turn.target.model_id},
            "region": {"S": turn.target.region},
            "input_tokens": {"N": str(turn.usage.input_tokens)},
            "output_tokens": {"N": str(turn.usage.output_tokens)},
        }
        if turn.cache_key:
            turn_item["cache_key"] = {"S": turn.cache_key}
        if turn.prompt_version:
            turn_item["prompt_version"] = {"S": turn.prompt_version}
        if turn.citations:
            turn_item["citations"] = {"S": json.dumps([citation.to_api() for citation in turn.citations])}
        if turn.incomplete:
            turn_item["incomplete"] = {"BOOL": True}  # a streamed answer that broke after its first token
        if expected_turns == 0:
            header: dict[str, Any] = {
                "Put": {
                    "TableName": self._table,
                    "Item": {
                        **_header_key(user_id, conversation_id),
                        "title": {"S": title},
                        "created_at": {"S": turn.created_at},
                        "updated_at": {"S": turn.created_at},
                        "turn_count": {"N": "1"},
                        # The header lists the conversation's cache entries, so a delete finds them in one read.
                        **({"cache_keys": {"SS": [turn.cache_key]}} if turn.cache_key else {}),
                    },
                    "ConditionExpression": "attribute_not_exists(sk)",
                }
            }
        else:
            header = {
                "Update": {
                    "TableName": self._table,
                    "Key": _header_key(user_id, conversation_id),
                    "UpdateExpression": "SET turn_count = :next, updated_at = :now"
                    + (" ADD cache_keys :cache_key" if turn.cache_key else ""),
                    "ConditionExpression": "turn_count = :expected",
                    "ExpressionAttributeValues": {
                        ":next": {"N": str(expected_turns + 1)},
                        ":expected": {"N": str(expected_turns)},
                        ":now": {"S": turn.created_at},
                        **({":cache_key": {"SS": [turn.cache_key]}} if turn.cache_key else {}),
                    },
                }
            }
        try:
            with dependency(_DYNAMODB, "save this turn"):
                self._client.transact_write_items(
                    TransactItems=[
                        header,
                        {
                            "Put": {
                                "TableName": self._table,
                                "Item": turn_item,
                                "ConditionExpression": "attribute_not_exists(sk)",
                            }
                        },
                    ]
                )
        except ClientError as error:
            if error.response["Error"]["Code"] != "TransactionCanceledException":
                raise
            if THROTTLING_CODES & set(cancellation_codes(error)):  # cancelled by a throttle, not by a writer
                raise throttled(service=_DYNAMODB, doing="save this turn") from error
            raise Conflict(
                "this conversation changed while the answer was being written (another message or a "
                "delete); reload it and send the message again"
            ) from error

    @dependency(_DYNAMODB, "delete your conversation")
    def delete(self, user_id: str, conversation_id: str) -> bool:
        old = self._client.delete_item(
            TableName=self._table, Key=_header_key(user_id, conversation_id), ReturnValues="ALL_OLD"
        ).get("Attributes")
        query = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :prefix)",
            "ExpressionAttributeValues": {":pk": {"S": user_id}, ":prefix": {"S": _turn_prefix(conversation_id)}},
            "ProjectionExpression": "pk, sk",
        }
        keys = [raw for page in self._pages(query) for raw in page]
        for start in range(0, len(keys), _BATCH):
            requests = [{"DeleteRequest": {"Key": key}} for key in keys[start : start + _BATCH]]
            for attempt in range(_UNPROCESSED_ROUNDS):  # unprocessed items mean throttling: back off, then give up
                if not requests:
                    break
                time.sleep(0.05 * (2**attempt) if attempt else 0)
                result = self._client.batch_write_item(RequestItems={self._table: requests})
                requests = result.get("UnprocessedItems", {}).get(self._table, [])
            if requests:
                raise throttled(service=_DYNAMODB, doing="delete every turn of your conversation")
        return old is not None or bool(keys)

    def _pages(self, query: dict[str, Any], *, stop_after: int | None = None) -> Any:
        seen = 0
        while True:
            page = self._client.query(**query)
            items = page.get("Items", [])
            seen += len(items)
            yield items
            start = page.get("LastEvaluatedKey")
            if start is None or (stop_after is not None and seen >= stop_after):
                return
            query = {**query, "ExclusiveStartKey": start}


def _conversation(item: dict[str, Any], turns: tuple[Turn, ...]) -> Conversation:
    return Conversation(
        conversation_id=item["sk"]["S"][2:],
        title=item["title"]["S"],
        created_at=item["created_at"]["S"],
        updated_at=item["updated_at"]["S"],
        turn_count=int(item["turn_count"]["N"]),
        turns=turns,
        cache_keys=tuple(sorted(item.get("cache_keys", {}).get("SS", []))),
    )


def _turn(item: dict[str, Any]) -> Turn:
    return Turn(
        index=int(item["index"]["N"]),
        user=item["user"]["S"],
        assistant=item["assistant"]["S"],
        created_at=item["created_at"]["S"],
        target=TargetRef(model_id=item["model_id"]["S"], region=item["region"]["S"]),
        usage=Usage(input_tokens=int(item["input_tokens"]["N"]), output_tokens=int(item["output_tokens"]["N"])),
        cache_key=item.get("cache_key", {}).get("S"),
        citations=_citations(item.get("citations", {}).get("S")),
        prompt_version=item.get("prompt_version", {}).get("S"),
        incomplete=item.get("incomplete", {}).get("BOOL", False),
    )


def _citations(raw: str | None) -> tuple[Citation, ...]:
    if not raw:
        return ()
    return tuple(Citation.from_api(entry) for entry in json.loads(raw))
