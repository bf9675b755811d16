"""`make curate ARGS=calibrate` (tools/curate.py): the curated threshold from labelled pairs. The pure part on
hand-made similarities; the whole command on the repository's pairs file through the chat path's embedder and the
Bedrock emulator (bag-of-words embeddings: the figures are the emulator's, the mechanics are the real ones)."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.curated import cosine
from local.bedrock_emulator import BedrockEmulator, embedding
from tests.conftest import TEST_SETTINGS
from tests.unit.tools.test_curate import bedrock_factory
from tools import curate


def test_the_threshold_keeps_every_unrelated_pair_out_with_the_best_recall() -> None:
    calibration = curate.calibrate_scores(related=[0.95, 0.9, 0.7, 0.55], unrelated=[0.2, 0.6, 0.4])
    assert calibration.threshold == pytest.approx(0.65)  # the middle of (0.6, 0.7]
    assert calibration.recall == 0.75
    assert curate.measure(calibration.threshold, calibration) == (0, 3)
    assert curate.measure(0.5, calibration) == (1, 4)


def test_a_threshold_just_above_a_close_unrelated_pair_still_excludes_it() -> None:
    calibration = curate.calibrate_scores(related=[0.8001], unrelated=[0.8])
    assert calibration.threshold is not None and calibration.threshold > 0.8
    # A gap narrower than the rounding: the threshold stops at the related pair instead of rounding past it.
    assert calibration.threshold == pytest.approx(0.8001) and calibration.recall == 1.0
    assert curate.measure(calibration.threshold, calibration) == (0, 1)
    wide = curate.calibrate_scores(related=[0.81], unrelated=[0.8])
    assert curate.measure(wide.threshold, wide) == (0, 1)  # type: ignore[arg-type]


def test_when_no_threshold_separates_them_none_is_suggested() -> None:
    calibration = curate.calibrate_scores(related=[0.5, 0.7], unrelated=[0.9])
    assert calibration.threshold is None and calibration.recall == 0.0
    text = "\n".join(curate.render_calibration(calibration, configured=0.8, source="test"))
    assert "keep curated answers off" in text and "1 unrelated pairs matched" in text


@pytest.mark.parametrize(
    "raw",
    [
        {},
        {"pairs": []},
        {"pairs": [{"question": "a", "curated": "b"}]},
        {"pairs": [{"question": "a", "curated": "b", "related": "yes"}]},
        {"pairs": [{"question": " ", "curated": "b", "related": True}]},
        {"pairs": [{"question": "a", "curated": "b", "related": True}]},  # no unrelated pair
    ],
)
def test_a_bad_pairs_file_is_refused(raw: object) -> None:
    with pytest.raises(ValueError):
        curate.parse_pairs(raw)


def test_the_repository_pairs_cover_every_curated_question_with_near_misses() -> None:
    pairs = curate.parse_pairs(json.loads(curate.PAIRS.read_text()))
    curated = {q["question"] for q in json.loads(curate.QUESTIONS.read_text())["questions"]}
    assert len(pairs) >= 40
    assert {p.curated for p in pairs} == curated
    for question in curated:
        kinds = {p.related for p in pairs if p.curated == question}
        assert kinds == {True, False}, question  # each has paraphrases and near misses


@pytest.fixture(scope="module")
def emulator() -> Iterator[BedrockEmulator]:
    with BedrockEmulator({"default": {"latency_ms": [0, 1]}}) as emu:
        yield emu


def test_calibrate_on_the_emulator_through_the_chat_paths_embedder(emulator: BedrockEmulator) -> None:
    out = io.StringIO()
    code = curate.run_calibration(
        TEST_SETTINGS.but(curated_threshold=0.8),
        curate.PAIRS,
        region="us-east-1",
        bedrock_factory=bedrock_factory(emulator),
        out=out,
    )
    report = out.getvalue()
    pairs = curate.parse_pairs(json.loads(curate.PAIRS.read_text()))
    dimensions = TEST_SETTINGS.embedding_dimensions

    def score(pair: curate.Pair) -> float:
        return cosine(embedding(pair.question, dimensions, True), embedding(pair.curated, dimensions, True))

    expected = curate.calibrate_scores(
        [score(p) for p in pairs if p.related], [score(p) for p in pairs if not p.related]
    )
    assert emulator.calls(TEST_SETTINGS.embedding_model_id, "us-east-1") == len(
        {text for p in pairs for text in (p.question, p.curated)}
    )  # each distinct text embedded once
    false, served = curate.measure(0.8, expected)
    assert f"configured threshold 0.800: {false} unrelated pairs matched, {served} of 20 related served" in report
    assert code == (1 if false else 0)
    assert f"max {expected.highest_unrelated:.3f}" in report
    if expected.threshold is not None:
        assert f"suggested threshold {expected.threshold:.3f}: no unrelated pair matched" in report
        assert curate.measure(expected.threshold, expected)[0] == 0
    print(report)  # the figures, for whoever runs the test with -s


def test_a_bad_pairs_file_exits_2(tmp_path: Path, emulator: BedrockEmulator) -> None:
    bad = tmp_path / "pairs.json"
    bad.write_text('{"pairs": []}')
    assert (
        curate.run_calibration(TEST_SETTINGS, bad, region="us-east-1", bedrock_factory=bedrock_factory(emulator)) == 2
    )
