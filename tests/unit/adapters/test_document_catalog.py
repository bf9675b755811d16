"""DynamoDocumentCatalog on moto: a document is its metadata item (the API's) plus one status item per region
(each region's pipeline's); get and list read them in one Query, this region's status only, old-layout items
(a status map on the metadata item) through the fallback."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from adapters.document_catalog import DynamoDocumentCatalog, document_views, split_key, status_key
from core.retrieval import DocumentView
from local.resources import create_table

TABLE = "documents-test"
EAST, WEST = "us-east-1", "us-west-2"
ALICE, BOB = "alice-sub", "bob-sub"
DOCS = [f"5d1c7f0e-3333-4a2b-9c4d-{n:012d}" for n in range(5)]


class CountingClient:
    """The moto client, every Query cut into pages of `limit` items (as a large partition would be), counted."""

    def __init__(self, client: Any, limit: int) -> None:
        self._client, self._limit = client, limit
        self.queries = 0

    def query(self, **kwargs: Any) -> Any:
        self.queries += 1
        return self._client.query(**kwargs, Limit=self._limit)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


@pytest.fixture
def client() -> Iterator[Any]:
    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name=EAST)
        create_table(dynamodb, TABLE, [("pk", "HASH"), ("sk", "RANGE")])
        yield dynamodb


def _create(catalog: DynamoDocumentCatalog, owner: str, document_id: str) -> None:
    catalog.create(DocumentView(owner=owner, document_id=document_id, name=f"{document_id[-1]}.txt",
                                content_type="text/plain", size=3, created_at=f"2027-01-0{document_id[-1]}",
                                status="uploading"))  # fmt: skip


def _status(client: Any, owner: str, document_id: str, region: str, state: str, **extra: Any) -> None:
    client.put_item(TableName=TABLE, Item={"pk": {"S": owner}, "sk": {"S": status_key(document_id, region)},
                                           "region": {"S": region}, "state": {"S": state}, **extra})  # fmt: skip


def test_keys_split_back_into_document_and_region() -> None:
    assert split_key(status_key(DOCS[0], WEST)) == (DOCS[0], WEST)
    assert split_key(DOCS[0]) == (DOCS[0], None)
    assert split_key("odd#status#id" + "#status#" + EAST) == ("odd#status#id", EAST)


def test_the_api_writes_the_metadata_item_only_and_reads_uploading(client: Any) -> None:
    catalog = DynamoDocumentCatalog(client=client, table_name=TABLE, region=EAST)
    _create(catalog, ALICE, DOCS[0])
    assert [item["sk"]["S"] for item in client.scan(TableName=TABLE)["Items"]] == [DOCS[0]]
    assert catalog.get(ALICE, DOCS[0]).status == "uploading"  # type: ignore[union-attr]


def test_list_is_one_query_across_pages_with_this_regions_status_only(client: Any) -> None:
    for document_id in DOCS:
        _create(DynamoDocumentCatalog(client=client, table_name=TABLE, region=EAST), ALICE, document_id)
        _status(client, ALICE, document_id, EAST, "ready", chunk_count={"N": "2"})
        _status(client, ALICE, document_id, WEST, "failed", reason={"S": "no text"})
    _create(DynamoDocumentCatalog(client=client, table_name=TABLE, region=EAST), BOB, DOCS[0])
    counting = CountingClient(client, limit=2)  # a page boundary falls between a document's items
    catalog = DynamoDocumentCatalog(client=counting, table_name=TABLE, region=EAST)

    views = catalog.list(ALICE)

    assert sorted(view.document_id for view in views) == DOCS  # each once, Bob's not among them
    assert {(view.status, view.chunk_count, view.reason) for view in views} == {("ready", 2, None)}
    assert counting.queries == 8  # one Query, paginated: 15 items read 2 a page (the filter applies after the limit)
    west = DynamoDocumentCatalog(client=client, table_name=TABLE, region=WEST).get(ALICE, DOCS[3])
    assert west is not None and (west.status, west.reason, west.name) == ("failed", "no text", "3.txt")
    assert DynamoDocumentCatalog(client=client, table_name=TABLE, region=EAST).get(BOB, DOCS[1]) is None


def test_old_layout_items_read_through_the_fallback(client: Any) -> None:
    """Written before the upgrade: `status.<region>` in a map on the metadata item."""
    client.put_item(TableName=TABLE, Item={
        "pk": {"S": ALICE}, "sk": {"S": DOCS[0]}, "name": {"S": "old.md"}, "content_type": {"S": "text/markdown"},
        "size": {"N": "9"}, "created_at": {"S": "2026-12-01"},
        "status": {"M": {EAST: {"M": {"state": {"S": "ready"}, "chunk_count": {"N": "5"}}},
                         WEST: {"M": {"state": {"S": "ingesting"}}}}},
    })  # fmt: skip
    east = DynamoDocumentCatalog(client=client, table_name=TABLE, region=EAST)
    assert (east.get(ALICE, DOCS[0]).status, east.get(ALICE, DOCS[0]).chunk_count) == ("ready", 5)  # type: ignore[union-attr]
    _status(client, ALICE, DOCS[0], WEST, "ready", chunk_count={"N": "5"})  # the new item wins over the old entry
    west = DynamoDocumentCatalog(client=client, table_name=TABLE, region=WEST)
    assert [(v.name, v.status) for v in west.list(ALICE)] == [("old.md", "ready")]


def test_a_document_deleted_reads_deleted_in_every_region_whatever_its_status_items_say(client: Any) -> None:
    catalog = DynamoDocumentCatalog(client=client, table_name=TABLE, region=EAST)
    _create(catalog, ALICE, DOCS[0])
    _status(client, ALICE, DOCS[0], EAST, "ready", chunk_count={"N": "2"})
    catalog.mark_deleted(ALICE, DOCS[0], at="2027-02-01")
    for region in (EAST, WEST):
        view = DynamoDocumentCatalog(client=client, table_name=TABLE, region=region).get(ALICE, DOCS[0])
        assert view is not None and (view.status, view.chunk_count, view.updated_at) == ("deleted", None, "2027-02-01")


def test_a_document_uploaded_by_other_means_reads_from_its_status_item(client: Any) -> None:
    _status(client, ALICE, DOCS[0], EAST, "ready", name={"S": "dropped.pdf"}, size={"N": "77"},
            content_type={"S": "application/pdf"}, created_at={"S": "2027-03-01"})  # fmt: skip
    catalog = DynamoDocumentCatalog(client=client, table_name=TABLE, region=EAST)
    view = catalog.get(ALICE, DOCS[0])
    assert view is not None and (view.name, view.size, view.status) == ("dropped.pdf", 77, "ready")
    catalog.mark_deleted(ALICE, DOCS[0], at="2027-03-02")  # the API can delete it (creates its metadata item)
    assert catalog.list(ALICE)[0].status == "deleted"
    assert DynamoDocumentCatalog(client=client, table_name=TABLE, region=WEST).get(ALICE, DOCS[0]).status == (  # type: ignore[union-attr]
        "deleted"
    )


def test_document_views_group_a_scan_by_owner_and_document() -> None:
    items = [
        {"pk": {"S": ALICE}, "sk": {"S": DOCS[0]}, "name": {"S": "a"}},
        {"pk": {"S": BOB}, "sk": {"S": DOCS[0]}, "name": {"S": "b"}},
        {"pk": {"S": BOB}, "sk": {"S": status_key(DOCS[0], EAST)}, "state": {"S": "ready"}},
    ]
    views = {view.owner: view for view in document_views(items, EAST)}
    assert (views[ALICE].status, views[BOB].status, views[BOB].name) == ("uploading", "ready", "b")
