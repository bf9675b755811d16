"""Turn cdk-nag's per-pack CSVs into one reviewer-readable Markdown report per stack.

Usage: python tools/nag_report.py [cdk.out]   -> cdk.out/nag-report/<Stack>.md and README.md
Exits non-zero if any rule is Non-Compliant (an unsuppressed finding).
"""

from __future__ import annotations

import csv
import sys
from collections import Counter, defaultdict
from pathlib import Path

PACKS = ("AwsSolutions", "NIST.800.53.R5", "HIPAA.Security")


def _cell(text: str) -> str:
    return text.replace("|", "/")


def main(outdir: Path) -> int:
    rows_by_stack: dict[str, list[dict[str, str]]] = defaultdict(list)
    for pack in PACKS:
        for report in sorted(outdir.glob(f"{pack}--*-NagReport.csv")):
            stack = report.name[len(pack) + 2 : -len("-NagReport.csv")]
            rows_by_stack.setdefault(stack, [])
            for row in csv.DictReader(report.open()):
                rows_by_stack[stack].append({"Pack": pack, **row})
    if not rows_by_stack:
        print(f"no cdk-nag reports found in {outdir}; run make synth", file=sys.stderr)
        return 2
    target = outdir / "nag-report"
    target.mkdir(exist_ok=True)
    index = ["# cdk-nag report", "", "| stack | compliant | suppressed | open findings |", "|---|---|---|---|"]
    total_open = 0
    for stack, rows in sorted(rows_by_stack.items()):
        counts = Counter(row["Compliance"] for row in rows)
        total_open += counts["Non-Compliant"]
        index.append(
            f"| [{stack}]({stack}.md) | {counts['Compliant']} | {counts['Suppressed']} | {counts['Non-Compliant']} |"
        )
        lines = [f"# {stack}", "", f"Packs: {', '.join(PACKS)}.", ""]
        if not rows:
            lines += ["No resource in this stack is of a type any rule of these packs inspects.", ""]
        for status, title in (("Non-Compliant", "Open findings"), ("Suppressed", "Suppressions and their reasons")):
            chosen = [row for row in rows if row["Compliance"] == status]
            lines += [f"## {title} ({len(chosen)})", ""]
            if chosen:
                lines += ["| rule | resource | level | reason |", "|---|---|---|---|"]
                lines += [
                    f"| {r['Rule ID']} | `{r['Resource ID']}` | {r['Rule Level']} | {_cell(r['Exception Reason'])} |"
                    for r in sorted(chosen, key=lambda r: (r["Rule ID"], r["Resource ID"]))
                ]
            lines.append("")
        passed = sorted({row["Rule ID"] for row in rows if row["Compliance"] == "Compliant"})
        lines += [f"## Rules checked and compliant ({len(passed)})", "", ", ".join(passed), ""]
        (target / f"{stack}.md").write_text("\n".join(lines))
    (target / "README.md").write_text("\n".join(index) + "\n")
    print(f"==> nag report: {target}/README.md ({len(rows_by_stack)} stacks, {total_open} open findings)")
    for line in index[4:]:
        print("    " + line)
    return 1 if total_open else 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1] if len(sys.argv) > 1 else "cdk.out")))
