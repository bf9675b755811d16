"""Greetings benchmark: how many model calls the greetings filter saves on a help chat's messages, and at what cost.

The sample (bench/greetings_sample.txt) is a help chat's mix, labelled by hand: greeting, thanks, goodbye (a call
that can be saved) or other (the model must answer), with many near misses ("thanks, now explain X"). Printed:
the share of messages answered without a model call, the false positives (a real question stolen from the model:
the figure that must stay at zero) and false negatives (a model call not saved), the kind agreement, and the
classifier's time per message (best of several passes, after the first message built its tables).
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

from core.greetings import KINDS, GreetingFilter

ROOT = Path(__file__).resolve().parents[1]

SAMPLE = ROOT / "bench" / "greetings_sample.txt"
PASSES = 20


def load(path: Path = SAMPLE) -> list[tuple[str, str]]:
    """(label, message) pairs; '#' lines are comments."""
    pairs = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        label, _, message = line.partition("\t")
        if label not in (*KINDS, "other") or not message:
            raise SystemExit(f"{path.name}:{number}: expected 'label<TAB>message' with a known label, got {line!r}")
        pairs.append((label, message))
    return pairs


def main() -> None:
    sample = load()
    filter_ = GreetingFilter()
    started = time.perf_counter()
    filter_.classify("hello")  # builds the tables (once per execution environment)
    build_ms = (time.perf_counter() - started) * 1000
    found = [filter_.classify(message) for _, message in sample]

    answered = sum(1 for match in found if match is not None)
    positives = [label != "other" for label, _ in sample]
    false_pos = [(m, g.kind) for (label, m), g in zip(sample, found, strict=True) if g is not None and label == "other"]
    false_neg = [(label, m) for (label, m), g in zip(sample, found, strict=True) if g is None and label != "other"]
    wrong_kind = [
        (label, g.kind, m)
        for (label, m), g in zip(sample, found, strict=True)
        if g is not None and label != "other" and g.kind != label
    ]

    timings = []
    for _ in range(PASSES):
        started = time.perf_counter()
        for _, message in sample:
            filter_.classify(message)
        timings.append((time.perf_counter() - started) / len(sample))
    per_message_us = min(timings) * 1e6

    total, labelled = len(sample), sum(positives)
    print(f"greetings filter on {total} hand-labelled help-chat messages ({SAMPLE.relative_to(ROOT)})")
    print(f"  labelled greeting/thanks/goodbye: {labelled} ({labelled / total:.1%})")
    print(f"  answered without a model call:    {answered} ({answered / total:.1%} of model calls saved)")
    print(f"  recall on the labelled ones:      {(labelled - len(false_neg)) / labelled:.1%}")
    print(f"  false positives (questions taken from the model): {len(false_pos)}")
    for message, kind in false_pos:
        print(f"    as {kind}: {message!r}")
    print(f"  false negatives (calls not saved): {len(false_neg)}")
    for label, message in false_neg:
        print(f"    {label}: {message!r}")
    print(f"  answered with another kind than labelled: {len(wrong_kind)}")
    for label, kind, message in wrong_kind:
        print(f"    labelled {label}, answered as {kind}: {message!r}")
    print(
        f"  time per message: {per_message_us:.1f} us (best of {PASSES} passes; "
        f"median {statistics.median(timings) * 1e6:.1f} us); tables built on the first message in {build_ms:.2f} ms"
    )


if __name__ == "__main__":
    main()
