"""Global tables in the embedded AWS (local/global_tables.py): the replicator reads each replica's stream and
applies other regions' writes after the lag, both ways, last writer wins, and not while a region is down.

In-process moto with an injected clock and explicit pumps: outcomes only, no waiting on real time. The lag is
60 s of the test's clock, so "not yet" never depends on how fast this machine runs."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from local.global_tables import GlobalTables
from tests.global_tables_fixtures import EAST, WEST, Clock, replicated_regions


@pytest.fixture
def regions() -> Iterator[tuple[dict[str, Any], GlobalTables, Clock]]:
    with replicated_regions("t") as world:
        yield world


def _key(sk: str) -> dict[str, Any]:
    return {"pk": {"S": "user"}, "sk": {"S": sk}}


def _get(client: Any, sk: str) -> dict[str, Any] | None:
    return client.get_item(TableName="t", Key=_key(sk)).get("Item")  # type: ignore[no-any-return]


def _put(client: Any, sk: str, **values: str) -> None:
    client.put_item(TableName="t", Item={**_key(sk), **{name: {"S": value} for name, value in values.items()}})


def test_a_write_reaches_the_other_region_after_the_lag_and_not_before(regions: Any) -> None:
    clients, replication, clock = regions
    _put(clients[EAST], "a", text="hello", nested="x")

    replication.pump()
    assert _get(clients[WEST], "a") is None
    assert replication.stats()["directions"][f"{EAST}->{WEST}"]["pending"] == 1

    clock.after_lag()
    replication.pump()
    assert _get(clients[WEST], "a") == _get(clients[EAST], "a")
    assert replication.stats()["directions"][f"{EAST}->{WEST}"]["pending"] == 0


def test_both_directions_replicate_updates_and_deletes_and_nothing_echoes_back(regions: Any) -> None:
    clients, replication, clock = regions
    _put(clients[EAST], "a", text="from east")
    _put(clients[WEST], "b", text="from west")
    clients[WEST].update_item(
        TableName="t", Key=_key("b"), UpdateExpression="SET n = :n", ExpressionAttributeValues={":n": {"N": "2"}}
    )
    clock.after_lag()
    replication.pump()
    assert _get(clients[WEST], "a") == {**_key("a"), "text": {"S": "from east"}}
    assert _get(clients[EAST], "b") == {**_key("b"), "text": {"S": "from west"}, "n": {"N": "2"}}

    clients[WEST].delete_item(TableName="t", Key=_key("a"))
    clock.after_lag()
    for _ in range(3):  # more pumps change nothing: the replicated writes are not replicated again
        replication.pump()
    assert _get(clients[EAST], "a") is None and _get(clients[WEST], "a") is None
    directions = replication.stats()["directions"]
    assert directions[f"{EAST}->{WEST}"]["replicated"] == 1
    assert directions[f"{WEST}->{EAST}"]["replicated"] == 3  # put, update, delete
    assert all(d["pending"] == 0 for d in directions.values())


def test_concurrent_writes_to_one_item_converge_on_the_last_writer(regions: Any) -> None:
    clients, replication, clock = regions
    _put(clients[EAST], "a", text="first, in east")
    _put(clients[WEST], "a", text="last, in west")  # before east's write reached west

    clock.after_lag()
    replication.pump()

    winner = {**_key("a"), "text": {"S": "last, in west"}}
    assert _get(clients[EAST], "a") == winner and _get(clients[WEST], "a") == winner
    assert replication.stats()["directions"][f"{EAST}->{WEST}"]["superseded"] == 1


def test_a_region_down_neither_sends_nor_receives_and_catches_up_without_undoing_later_writes(regions: Any) -> None:
    clients, replication, clock = regions
    _put(clients[EAST], "stuck", text="written in east just before the outage")
    _put(clients[EAST], "shared", text="east's version, before the outage")
    replication.configure(unavailable=[EAST])
    _put(clients[WEST], "shared", text="west's version, during the outage")
    _put(clients[WEST], "new", text="written in west during the outage")

    clock.after_lag()
    replication.pump()
    assert _get(clients[WEST], "stuck") is None  # the outage's data loss: it waits in east
    assert _get(clients[EAST], "new") is None
    pending = replication.stats(keys=True)["directions"][f"{EAST}->{WEST}"]
    assert pending["paused"] and {k["keys"]["sk"]["S"] for k in pending["pending_keys"]} == {"stuck", "shared"}

    replication.configure(unavailable=[])  # failback
    replication.pump()
    for client in clients.values():
        assert _get(client, "stuck") == {**_key("stuck"), "text": {"S": "written in east just before the outage"}}
        assert _get(client, "new") == {**_key("new"), "text": {"S": "written in west during the outage"}}
        # east's older write, stuck during the outage, does not overwrite what west wrote later
        assert _get(client, "shared") == {**_key("shared"), "text": {"S": "west's version, during the outage"}}


def test_a_table_without_a_stream_cannot_be_a_global_table(regions: Any) -> None:
    clients, replication, _ = regions
    clients[EAST].create_table(
        TableName="plain",
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    with pytest.raises(ValueError, match="no stream"):
        replication.configure(tables=["t", "plain"], regions=[EAST, WEST])
    with pytest.raises(ValueError, match="unknown regions"):
        replication.configure(tables=["t"], regions=[EAST, WEST], unavailable=["eu-west-1"])


# --- in the embedded AWS, as the sandbox runs it ------------------------------------------------------------
def test_the_embedded_aws_replicates_and_a_cancelled_transaction_replicates_nothing() -> None:
    import json
    import urllib.request

    from local.processes import moto_server
    from local.resources import create_conversations_table

    with moto_server() as url:
        clients = {
            region: boto3.client("dynamodb", endpoint_url=url, region_name=region, aws_access_key_id="x",
                                 aws_secret_access_key="x")
            for region in (EAST, WEST)
        }  # fmt: skip
        for client in clients.values():
            create_conversations_table(client, "t")
            client.update_table(
                TableName="t", StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"}
            )
        settings = {"tables": ["t"], "regions": [EAST, WEST], "lag_s": 0}
        request = urllib.request.Request(f"{url}/_bulwark/global-tables", data=json.dumps(settings).encode())
        urllib.request.urlopen(request).close()
        east = clients[EAST]
        _put(east, "kept", text="committed")
        with pytest.raises(east.exceptions.TransactionCanceledException):
            east.transact_write_items(
                TransactItems=[
                    {"Put": {"TableName": "t", "Item": {**_key("phantom"), "text": {"S": "never committed"}}}},
                    {"Put": {"TableName": "t", "Item": {**_key("kept"), "text": {"S": "x"}},
                             "ConditionExpression": "attribute_not_exists(sk)"}},
                ]
            )  # fmt: skip
        _put(east, "last", text="after the transaction")

        deadline = time.monotonic() + 60  # generous: the replicator runs on its own thread
        while _get(clients[WEST], "last") is None and time.monotonic() < deadline:
            time.sleep(0.05)

        assert _get(clients[WEST], "kept") == {**_key("kept"), "text": {"S": "committed"}}
        assert _get(clients[WEST], "last") is not None
        assert _get(east, "phantom") is None and _get(clients[WEST], "phantom") is None
        with urllib.request.urlopen(f"{url}/_bulwark/global-tables") as response:
            assert json.loads(response.read())["directions"][f"{EAST}->{WEST}"]["replicated"] == 2


def test_concurrent_updates_of_different_attributes_keep_one_writers_item_whole(regions: Any) -> None:
    """Global tables resolve conflicts per item, not per attribute: two regions updating different attributes of
    one item at about the same time end with the later writer's item, the other's attribute lost."""
    clients, replication, clock = regions
    _put(clients[EAST], "doc", name="report.pdf")
    clock.after_lag()
    replication.pump()
    for region, state in ((EAST, "ready"), (WEST, "ingesting")):  # each region's pipeline writes its own status
        clients[region].update_item(
            TableName="t", Key=_key("doc"), UpdateExpression="SET #r = :s",
            ExpressionAttributeNames={"#r": f"status_{region}"}, ExpressionAttributeValues={":s": {"S": state}},
        )  # fmt: skip

    clock.after_lag()
    replication.pump()

    expected = {**_key("doc"), "name": {"S": "report.pdf"}, f"status_{WEST}": {"S": "ingesting"}}
    assert _get(clients[EAST], "doc") == expected and _get(clients[WEST], "doc") == expected
