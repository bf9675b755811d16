"""Curated answers on DynamoDB (a global table, backed up like the other data).

Layout:
    pk=<question id>  sk=Q                    the operators' question (make curate writes the list)
    pk=<question id>  sk=P#<prompt version>   its answer with that prompt: the question, the answer, the model that
                                              wrote it (model_id, region), created_at and the question's embedding
                                              as little-endian float32 (4 KB for 1024 dimensions, not ~20 KB)
One entry per question and prompt version, so a prompt rollback finds the answers its version wrote.

The Lambdas read the whole table with a bounded Scan (at most `MAX_PAGES` pages); writes are `make curate`'s
(tools/curate.py) and the scheduled curate Lambda's (handlers/curate.py: answers for a newly active prompt).
"""

from __future__ import annotations

import struct
from typing import Any

from core.curated import CuratedAnswer, CuratedQuestion
from core.models import TargetRef

MAX_PAGES = 2  # a cold start's read of the table: at most 2 Scan calls of 1 MB (about 400 entries of 1024 dimensions)
_PROMPT_PREFIX = "P#"
_QUESTION_SK = "Q"


def pack(vector: tuple[float, ...]) -> bytes:
    return struct.pack(f"<{len(vector)}f", *vector)


def unpack(blob: bytes) -> tuple[float, ...]:
    return struct.unpack(f"<{len(blob) // 4}f", blob)


class DynamoCuratedAnswers:
    def __init__(self, *, client: Any, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def load(self, *, limit: int) -> list[CuratedAnswer]:
        return [_entry(item) for item in self._scan(limit) if item["sk"]["S"].startswith(_PROMPT_PREFIX)][:limit]

    def questions(self, *, limit: int) -> list[CuratedQuestion]:
        """The list `make curate` stored last (the scheduled job answers these)."""
        return [
            CuratedQuestion(question_id=item["pk"]["S"], question=item["question"]["S"])
            for item in self._scan(limit)
            if item["sk"]["S"] == _QUESTION_SK
        ][:limit]

    def put_question(self, question: CuratedQuestion) -> None:
        self._client.put_item(
            TableName=self._table,
            Item={"pk": {"S": question.question_id}, "sk": {"S": _QUESTION_SK}, "question": {"S": question.question}},
        )

    def _scan(self, limit: int) -> list[dict[str, Any]]:
        """Every item, in at most MAX_PAGES Scan calls (1 MB each): a cold start's read stays bounded."""
        items: list[dict[str, Any]] = []
        scan: dict[str, Any] = {"TableName": self._table}
        for _ in range(MAX_PAGES):
            page = self._client.scan(**scan)
            items.extend(page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                break
            scan["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        return items

    def put(self, entry: CuratedAnswer) -> None:
        self._client.put_item(
            TableName=self._table,
            Item={
                "pk": {"S": entry.question_id},
                "sk": {"S": f"{_PROMPT_PREFIX}{entry.prompt_version}"},
                "question": {"S": entry.question},
                "answer": {"S": entry.answer},
                "prompt_version": {"S": entry.prompt_version},
                "model_id": {"S": entry.target.model_id},
                "region": {"S": entry.target.region},
                "embedding": {"B": pack(entry.embedding)},
                "created_at": {"S": entry.created_at},
            },
        )


def _entry(item: dict[str, Any]) -> CuratedAnswer:
    blob = item["embedding"]["B"]
    return CuratedAnswer(
        question_id=item["pk"]["S"],
        question=item["question"]["S"],
        answer=item["answer"]["S"],
        prompt_version=item["prompt_version"]["S"],
        target=TargetRef(model_id=item["model_id"]["S"], region=item["region"]["S"]),
        embedding=unpack(bytes(blob)),
        created_at=item["created_at"]["S"],
    )
