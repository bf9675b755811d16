"""The shortened disaster-recovery drill (tools/drill.py --quick) on the two-region sandbox: outcomes, never timings.

One run: steady traffic through the failover client, a backup, the primary region down, restores in DR, the
primary back. Every wait inside the drill is on an observable state (an answer from DR, a job done, a document
ready, the replication drained) under a generous ceiling; what this asserts holds on a slow machine as on a fast
one. The timed figures (RTO, RPO in seconds) are the drill's own output, not checked here."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tools.drill import DrillReport, DrillSettings, run


@pytest.fixture(scope="module")
def report(synth: Any) -> Iterator[DrillReport]:
    saved = dict(os.environ)
    try:
        yield run(DrillSettings.quick_mode(), cdk_out=Path(synth.app.outdir), progress=lambda message: None)
    finally:
        os.environ.clear()
        os.environ.update(saved)


def test_chat_fails_over_to_dr_and_back(report: DrillReport) -> None:
    assert report.facts["dr_answered_chat"], report.table()
    assert report.facts["failed_back"] and report.facts["failback_drained"], report.table()


def test_every_accepted_job_is_answered_exactly_once(report: DrillReport) -> None:
    facts = report.facts
    assert facts["stranded_jobs"], "the drill let jobs wait in the primary's queue at the outage"
    assert facts["stranded_jobs_open_in_dr"] == [], "DR answered the jobs left in the primary's queue"
    # ...adopted by DR's scheduled sweep on its own (the drill reads the table, never GET /jobs/{id} in DR)
    assert facts["stranded_owned_by_dr"] == len(facts["stranded_jobs"]) == facts["adopted_by_dr_sweep"]
    assert facts["jobs_open"] == [] and facts["jobs_never_answered"] == []
    # The failback race (DR's sweep adopts a job the returning primary's worker then receives before the adoption
    # replicated) is closed by the worker's settle step (JobService.settle, core/jobs.py): the drill's replication
    # lag is shorter than the settle delay, so no job may be answered twice.
    assert facts["jobs_answered_twice"] == [], "jobs answered in both regions"


def test_no_turn_is_lost_beyond_the_replication_window(report: DrillReport) -> None:
    facts = report.facts
    # What DR lacked at the outage was exactly what had not replicated yet...
    assert facts["turns_lost_outside_replication_window"] == []
    # ...and after failback every acknowledged turn is in both regions, but the window's that DR overwrote.
    assert facts["turns_gone"] == []
    assert set(map(tuple, facts["turns_overwritten"])) <= set(map(tuple, facts["turns_lost_at_outage"]))


def test_failback_leaves_no_duplicate_and_the_replicas_converge(report: DrillReport) -> None:
    facts = report.facts
    assert facts["duplicated_turns"] == []
    assert facts["header_mismatches"] == []
    assert facts["replicas_equal"]


def test_documents_replicated_before_the_outage_are_searchable_in_dr_and_all_in_both_after(
    report: DrillReport,
) -> None:
    facts = report.facts
    assert facts["documents_before_outage"] >= 1
    assert facts["documents_unready_in_dr"] == []  # of those S3 had replicated before the outage
    # After failback every document is indexed in both regions: the rest caught up, DR's uploads went back.
    assert facts["documents_unsearchable_after_failback"] == []
    # A status that is not ready belongs to an indexed document: only the status write was lost (both regions'
    # pipelines write one item of the documents global table; the drill reports it as a failed figure).
    assert set(map(tuple, facts["documents_unready_after_failback"])) == set(
        map(tuple, facts["documents_status_overwritten"])
    )
    if facts["documents_status_overwritten"]:
        pytest.xfail(
            "a region's document status was lost to the other region's concurrent write of the same item: the "
            "documents global table keeps both regions' status in one item, and global tables resolve conflicts "
            "per item (last writer wins); lambda_src/adapters/document_catalog.py"
        )


def test_the_restores_match_what_was_written(report: DrillReport) -> None:
    facts = report.facts
    assert facts["backup_expected"] >= 1 and facts["backup_mismatched"] == 0
    assert facts["pitr_missing"] == 0 and facts["pitr_changed"] == 0
    # moto 5.2 restores the current items whatever RestoreDateTime says: the drill reports it, never passes it off
    # as a restore to that time.
    earlier = next(f for f in report.figures if f.name == "restore to an earlier point in time")
    assert earlier.passed is (True if facts["pitr_time_honoured"] else None)
