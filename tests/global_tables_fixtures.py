"""Two moto regions holding one pk/sk table with a stream, replicated by the sandbox's replicator
(local/global_tables.py) on an injected clock: tests pump it explicitly, never wait on real time. The lag is
60 s of the test's clock, so "not yet" never depends on how fast this machine runs."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import boto3
from moto import mock_aws

from local.global_tables import GlobalTables

EAST, WEST = "us-east-1", "us-west-2"
LAG_S = 60.0


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def after_lag(self) -> None:
        self.now = time.time() + LAG_S + 1


@contextmanager
def replicated_regions(table: str) -> Iterator[tuple[dict[str, Any], GlobalTables, Clock]]:
    """(a DynamoDB client per region, the replicator of `table` between EAST and WEST, its clock)."""
    with mock_aws():
        clients = {region: boto3.client("dynamodb", region_name=region) for region in (EAST, WEST)}
        for client in clients.values():
            client.create_table(
                TableName=table,
                KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
                AttributeDefinitions=[
                    {"AttributeName": "pk", "AttributeType": "S"},
                    {"AttributeName": "sk", "AttributeType": "S"},
                ],
                BillingMode="PAY_PER_REQUEST",
                StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
            )
        clock = Clock()
        replication = GlobalTables(lock=threading.Lock(), clock=clock)
        replication.configure(tables=[table], regions=[EAST, WEST], lag_s=LAG_S)
        yield clients, replication, clock
