"""The sandbox's S3 side (local/knowledge.py) on moto, driven step by step on a test clock (no threads): S3 event
records per new version, replication both ways without a loop, the replication lag and a paused region."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest

from local.knowledge import BucketEvents, Replication, Replicator
from local.templates import NotificationSpec

PRIMARY, DR = "us-east-1", "us-west-2"
KEY = "documents/0b5e2a8c-1111-4c3e-9a0e-aaaaaaaaaaaa/5d1c7f0e-3333-4a2b-9c4d-cccccccccccc"
EVENTS = NotificationSpec(events=("s3:ObjectCreated:*", "s3:ObjectRemoved:*"), prefix="documents/")


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Region:
    name: str
    s3: Any
    sqs: Any
    bucket: str
    queue_url: str
    events: BucketEvents | None = None

    def received(self) -> list[str]:
        """The S3 event names delivered to this region's ingest queue since the last call."""
        names = []
        while messages := self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10).get("Messages"):
            for message in messages:
                names += [record["eventName"] for record in json.loads(message["Body"])["Records"]]
                self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
        return names

    def versions(self) -> list[tuple[str, bool]]:
        """(version id, is a delete marker) of KEY, the current one first."""
        listing = self.s3.list_object_versions(Bucket=self.bucket, Prefix=KEY)
        found = [(v["VersionId"], False, v["IsLatest"]) for v in listing.get("Versions", [])]
        found += [(m["VersionId"], True, m["IsLatest"]) for m in listing.get("DeleteMarkers", [])]
        return [(version, marker) for version, marker, _ in sorted(found, key=lambda f: not f[2])]


@dataclass
class World:
    primary: Region
    dr: Region
    replicator: Replicator
    clock: Clock

    def poll(self) -> None:
        for region in (self.primary, self.dr):
            assert region.events is not None
            region.events.poll()


@pytest.fixture
def world() -> Iterator[World]:
    from moto import mock_aws

    with mock_aws():
        regions = {}
        for name in (PRIMARY, DR):
            s3, sqs = boto3.client("s3", region_name=name), boto3.client("sqs", region_name=name)
            bucket = f"documents-{name}"
            extra = {} if name == PRIMARY else {"CreateBucketConfiguration": {"LocationConstraint": name}}
            s3.create_bucket(Bucket=bucket, **extra)
            s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
            queue_url = sqs.create_queue(QueueName=f"ingest-{name}")["QueueUrl"]
            regions[name] = Region(name, s3, sqs, bucket, queue_url)
        clock = Clock()
        replicator = Replicator(clock=clock)
        sequencer = itertools.count(1)
        for source, target in ((regions[PRIMARY], regions[DR]), (regions[DR], regions[PRIMARY])):
            rule = Replication(source=source.s3, source_bucket=source.bucket, target=target.s3,
                               target_bucket=target.bucket, prefix="documents/", delete_markers=True,
                               source_region=source.name, target_region=target.name)  # fmt: skip
            source.events = BucketEvents(
                s3=source.s3, sqs=source.sqs, bucket=source.bucket, region=source.name,
                notifications=[(EVENTS, source.queue_url)],
                replicate=lambda entry, seen_at, rule=rule: replicator.submit(rule, entry, seen_at),
                sequencer=lambda: next(sequencer), clock=clock,
            )  # fmt: skip
        world = World(regions[PRIMARY], regions[DR], replicator, clock)
        world.poll()  # the starting state: empty buckets
        yield world


def test_a_document_uploaded_in_dr_replicates_back_once_and_is_announced_in_both_regions(world: World) -> None:
    # GIVEN a document uploaded in the DR region (the primary is out)
    world.dr.s3.put_object(Bucket=world.dr.bucket, Key=KEY, Body=b"written during the outage")
    world.poll()
    assert world.dr.received() == ["ObjectCreated:Put"]

    # WHEN replication runs
    assert world.replicator.run_due() == 1
    world.poll()

    # THEN the primary has it, its pipeline is told, and the replica is not replicated back to DR (no loop)
    body = world.primary.s3.get_object(Bucket=world.primary.bucket, Key=KEY)["Body"].read()
    assert body == b"written during the outage"
    assert world.primary.received() == ["ObjectCreated:Put"]
    assert world.replicator.pending() == 0 and world.replicator.run_due() == 0
    assert len(world.dr.versions()) == 1 and len(world.primary.versions()) == 1
    (event,) = world.replicator.events
    assert (event.source_region, event.target_region, event.key) == (DR, PRIMARY, KEY)


def test_a_delete_replicates_as_a_delete_marker_and_is_not_replicated_back(world: World) -> None:
    world.primary.s3.put_object(Bucket=world.primary.bucket, Key=KEY, Body=b"v1")
    world.poll()
    world.replicator.run_due()
    world.poll()
    world.primary.received(), world.dr.received()

    world.primary.s3.delete_object(Bucket=world.primary.bucket, Key=KEY)
    world.poll()
    assert world.replicator.run_due() == 1
    world.poll()

    assert [marker for _, marker in world.dr.versions()] == [True, False]  # the delete marker is current in DR
    assert world.dr.received() == ["ObjectRemoved:DeleteMarkerCreated"]
    assert world.replicator.pending() == 0
    assert [marker for _, marker in world.primary.versions()] == [True, False]  # no second marker came back


def test_the_replication_lag_holds_each_copy_until_it_is_due(world: World) -> None:
    world.replicator.lag_s = 30.0
    world.primary.s3.put_object(Bucket=world.primary.bucket, Key=KEY, Body=b"v1")
    world.poll()  # seen at 0: due at 30

    world.clock.now = 29.9
    assert world.replicator.run_due() == 0 and world.dr.versions() == []
    world.clock.now = 30.0
    assert world.replicator.run_due() == 1 and len(world.dr.versions()) == 1
    (event,) = world.replicator.events
    assert event.replicated_at - event.seen_at == 30.0


def test_a_paused_region_receives_nothing_until_it_is_resumed_then_catches_up(world: World) -> None:
    world.replicator.pause(DR)
    for body in (b"v1", b"v2"):
        world.primary.s3.put_object(Bucket=world.primary.bucket, Key=KEY, Body=body)
        world.poll()
    world.clock.now = 1000.0

    assert world.replicator.run_due() == 0 and world.replicator.pending() == 2

    world.replicator.resume(DR)
    assert world.replicator.run_due() == 2
    latest = world.dr.s3.get_object(Bucket=world.dr.bucket, Key=KEY)["Body"].read()
    assert latest == b"v2"  # oldest first: the newest version ends current, as in the source


def test_a_failed_copy_is_retried(world: World) -> None:
    class Flaky:
        def __init__(self, inner: Any) -> None:
            self.inner, self.failures = inner, 1

        def __getattr__(self, name: str) -> Any:
            if name == "put_object" and self.failures:
                self.failures -= 1
                raise ConnectionError("the DR endpoint did not answer")
            return getattr(self.inner, name)

    rule = Replication(source=world.primary.s3, source_bucket=world.primary.bucket, target=Flaky(world.dr.s3),
                       target_bucket=world.dr.bucket, prefix="documents/", delete_markers=True,
                       source_region=PRIMARY, target_region=DR)  # fmt: skip
    world.primary.s3.put_object(Bucket=world.primary.bucket, Key=KEY, Body=b"v1")
    (version,) = world.primary.versions()
    from local.knowledge import _Entry

    entry = _Entry(key=KEY, version_id=version[0], delete_marker=False, latest=True, last_modified=None)  # type: ignore[arg-type]
    world.replicator.submit(rule, entry, 0.0)

    assert world.replicator.run_due() == 0 and world.replicator.pending() == 1  # failed, queued again
    world.clock.now = Replicator.RETRY_S
    assert world.replicator.run_due() == 1 and len(world.dr.versions()) == 1
