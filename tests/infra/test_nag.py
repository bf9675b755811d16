"""Every stack passes AwsSolutions, NIST 800-53 rev 5 and HIPAA Security with zero open findings."""

from __future__ import annotations

import csv
import re
from pathlib import Path

from stacks.constructs.nag import PACK_PREFIXES
from tests.infra.conftest import Synth, open_nag_findings


def test_no_unsuppressed_nag_errors_or_warnings(synth: Synth) -> None:
    assert open_nag_findings(synth.stacks) == []


def test_every_pack_reported_every_stack_with_reasons_for_each_suppression(synth: Synth) -> None:
    outdir = Path(synth.app.outdir)
    for name in synth.stacks:
        for pack in PACK_PREFIXES:
            report = outdir / f"{pack}--{name}-NagReport.csv"
            assert report.exists(), f"missing {report.name}"
            rows = list(csv.DictReader(report.open()))
            assert {row["Compliance"] for row in rows} <= {"Compliant", "Suppressed", "UNKNOWN"}, report.name
            for row in rows:
                if row["Compliance"] == "Suppressed":
                    assert len(row["Exception Reason"]) >= 40, f"{name} {row['Rule ID']}: reason too thin"


def test_nag_rules_were_really_evaluated(synth: Synth) -> None:
    """Guards against a silent no-op: the API stack must have many compliant checks per pack."""
    outdir = Path(synth.app.outdir)
    for pack in PACK_PREFIXES:
        rows = list(csv.DictReader((outdir / f"{pack}--Bulwark-dev-Api-NagReport.csv").open()))
        compliant = [row for row in rows if row["Compliance"] == "Compliant"]
        assert len(compliant) >= 20, (pack, len(compliant))
        assert all(re.match(rf"^{re.escape(pack)}-", row["Rule ID"]) for row in rows)
