"""Curated answers (issue 11): the model answers the operators' critical questions ahead of an outage.

    python tools/curate.py --sandbox                       # the running sandbox (make dev): its state file
    python tools/curate.py --region eu-west-1              # AWS: the deployed chat Lambda's settings
    python tools/curate.py --region eu-west-1 --function Bulwark-dev-Api-ChatXXXX --questions my.json
    python tools/curate.py calibrate --region eu-west-1    # the threshold, from labelled pairs, on real Titan v2
    python tools/curate.py calibrate --sandbox             # ... on the sandbox emulator's embeddings

Each question of curated/questions.json is answered through the gateway the chat Lambda builds
(handlers.wiring.build_chat_service: its targets, guardrails, failover, the active prompt), with no history and
no documents. Only answers a guardrail checked and let pass, written by a model (not degraded, not from the
cache), are stored, each with the prompt version and the model that produced it and the question's embedding
(Titan v2, as the chat path embeds questions). Against AWS the settings are the chat function's environment
(found by name: the one function whose name holds "Chat" and that names a curated table); against the sandbox,
its state file names the endpoints and the chat environment. Exit 1 when a question could not be curated.

`calibrate` embeds the labelled pairs of curated/calibration.json (a user's question, a curated question, related
or not) through the same embedder the chat path uses for curated matches, prints the similarity distributions of
related and unrelated pairs, and the threshold that lets no unrelated pair match (a curated answer is served when
the similarity reaches the threshold) with the best recall of related ones, beside the configured threshold's
figures. Run it against real Bedrock before enabling curated answers: the emulator's embeddings are a stand-in.
Exit 1 when the configured threshold lets an unrelated pair match.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from adapters.curated_answers import DynamoCuratedAnswers
from core.curated import cosine, curate, parse_questions
from core.errors import DomainError
from handlers.settings import Settings
from handlers.wiring import build_chat_service, question_embedder

ROOT = Path(__file__).resolve().parents[1]
QUESTIONS = ROOT / "curated" / "questions.json"
PAIRS = ROOT / "curated" / "calibration.json"
EMBED_TIMEOUT_S = 10.0
SANDBOX_STATE = ROOT / ".sandbox" / "state.json"
FUNCTION_MARK = "Chat"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def run(
    settings: Settings,
    questions_file: Path,
    *,
    dynamodb: Any = None,
    bedrock_factory: Any = None,
    region: str,
    out: Any = sys.stdout,
) -> int:
    if not settings.curated_table_name:
        print("curate: the chat function names no curated answers table (CURATED_TABLE_NAME)", file=sys.stderr)
        return 1
    questions = parse_questions(json.loads(questions_file.read_text()))
    # No answer cache: a curated answer is not a user's cached answer (and the scheduled job may not write it).
    service = build_chat_service(
        settings.but(cache_table_name=None), dynamodb=dynamodb, bedrock_factory=bedrock_factory
    )
    if dynamodb is None:
        from handlers.wiring import data_client

        dynamodb = data_client("dynamodb", region_name=region)
    store = DynamoCuratedAnswers(client=dynamodb, table_name=settings.curated_table_name)
    for question in questions:  # the list the scheduled job answers again when another prompt is activated
        store.put_question(question)
    results = curate(
        questions,
        model=service.model,
        prompts=service.prompts,
        embedder=question_embedder(settings, region=region, bedrock_factory=bedrock_factory),
        store=store,
        deadline_s=settings.deadline_s,
        clock=_now,
    )
    for result in results:
        if result.stored and result.target is not None:
            where = f"{result.target.model_id}@{result.target.region}, prompt version {result.prompt_version}"
            print(f"{result.question_id}: stored ({where})", file=out)
        else:
            print(f"{result.question_id}: not stored: {result.reason}", file=out)
    stored = sum(result.stored for result in results)
    print(f"{stored} of {len(results)} questions curated", file=out)
    return 0 if stored == len(results) else 1


@dataclass(frozen=True)
class Pair:
    question: str
    curated: str
    related: bool


def parse_pairs(raw: Any) -> list[Pair]:
    """The labelled pairs file: {"pairs": [{"question", "curated", "related": true|false}, ...]}."""
    items = raw.get("pairs") if isinstance(raw, dict) else None
    if not isinstance(items, list) or not items:
        raise ValueError('the pairs file must hold {"pairs": [{"question", "curated", "related"}, ...]}')
    pairs = []
    for index, item in enumerate(items):
        if not (
            isinstance(item, dict)
            and isinstance(item.get("question"), str)
            and item["question"].strip()
            and isinstance(item.get("curated"), str)
            and item["curated"].strip()
            and isinstance(item.get("related"), bool)
        ):
            raise ValueError(f"pairs[{index}] needs a question, a curated question and related: true or false")
        pairs.append(Pair(item["question"], item["curated"], item["related"]))
    if not any(pair.related for pair in pairs) or all(pair.related for pair in pairs):
        raise ValueError("the pairs must include related and unrelated ones")
    return pairs


@dataclass(frozen=True)
class Calibration:
    related: tuple[float, ...]  # similarity of each related pair, sorted
    unrelated: tuple[float, ...]
    threshold: float | None  # the suggested threshold; None when no threshold <= 1 keeps every unrelated pair out
    recall: float  # related pairs it serves

    @property
    def highest_unrelated(self) -> float:
        return self.unrelated[-1]


def _ceil(value: float, places: int = 3) -> float:
    return math.ceil(round(value * 10**places, 6)) / 10**places


def calibrate_scores(related: Sequence[float], unrelated: Sequence[float]) -> Calibration:
    """The threshold with no false match and the best recall: any value above the highest unrelated similarity
    and at most the lowest related one above it serves the same pairs; the middle of that gap (rounded up to 3
    places) leaves the most room on both sides for questions the file does not hold."""
    related, unrelated = tuple(sorted(related)), tuple(sorted(unrelated))
    ceiling = unrelated[-1]
    above = [score for score in related if score > ceiling]
    if not above or ceiling >= 1.0:
        return Calibration(related, unrelated, None, 0.0)
    # Rounding up may overshoot a gap narrower than the rounding: never past the lowest related score above it.
    threshold = min(1.0, _ceil((ceiling + above[0]) / 2), above[0])
    served = sum(score >= threshold for score in related)
    return Calibration(related, unrelated, threshold, served / len(related))


def measure(threshold: float, calibration: Calibration) -> tuple[int, int]:
    """(unrelated pairs matched, related pairs served) at `threshold`."""
    return (
        sum(score >= threshold for score in calibration.unrelated),
        sum(score >= threshold for score in calibration.related),
    )


def _quantile(values: Sequence[float], q: float) -> float:
    return values[min(len(values) - 1, int(q * len(values)))]


def _histogram(calibration: Calibration) -> list[str]:
    """Pairs per tenth of similarity, highest first (# related, x unrelated); below 0 counted together."""

    def tenth(score: float) -> int:
        return min(9, math.floor(score * 10)) if score >= 0 else -1

    lines = ["  similarity  related / unrelated"]
    related = [tenth(score) for score in calibration.related]
    unrelated = [tenth(score) for score in calibration.unrelated]
    lowest = min(related + unrelated)
    for index in range(9, max(lowest, 0) - 1, -1):
        bar = f"{'#' * related.count(index):<12}{'x' * unrelated.count(index)}"
        lines.append(f"  {index / 10:.1f}-{(index + 1) / 10:.1f}     {bar}")
    if lowest < 0:
        lines.append(f"  below 0.0   {'#' * related.count(-1):<12}{'x' * unrelated.count(-1)}")
    return lines


def render_calibration(calibration: Calibration, *, configured: float, source: str) -> list[str]:
    lines = [f"Curated threshold calibration on {source}: {len(calibration.related)} related pairs, "
             f"{len(calibration.unrelated)} unrelated (near misses included)"]  # fmt: skip
    for name, scores in (("related", calibration.related), ("unrelated", calibration.unrelated)):
        lines.append(
            f"  {name:<9} min {scores[0]:.3f}  p25 {_quantile(scores, 0.25):.3f}  median {_quantile(scores, 0.5):.3f}"
            f"  p75 {_quantile(scores, 0.75):.3f}  max {scores[-1]:.3f}"
        )
    lines += _histogram(calibration)
    false, served = measure(configured, calibration)
    lines.append(
        f"configured threshold {configured:.3f}: {false} unrelated pairs matched, "
        f"{served} of {len(calibration.related)} related served"
    )
    if calibration.threshold is None:
        lines.append(
            f"no threshold keeps every unrelated pair out (the highest, {calibration.highest_unrelated:.3f}, is at or "
            "above every related one): these embeddings cannot tell them apart; keep curated answers off"
        )
    else:
        served = round(calibration.recall * len(calibration.related))
        lines.append(
            f"suggested threshold {calibration.threshold:.3f}: no unrelated pair matched (highest "
            f"{calibration.highest_unrelated:.3f}), {served} of {len(calibration.related)} related served "
            f"({calibration.recall:.0%}); set curated.threshold in cdk.json"
        )
    return lines


def calibrate(
    pairs: Sequence[Pair], embed: Callable[[str], Sequence[float]], *, configured: float, source: str, out: Any
) -> int:
    """Embed every distinct text once, score each pair, print the figures. Exit 1 when the configured threshold
    lets an unrelated pair match."""
    vectors: dict[str, Sequence[float]] = {}
    for text in dict.fromkeys(text for pair in pairs for text in (pair.question, pair.curated)):
        vectors[text] = embed(text)
    related = [cosine(vectors[p.question], vectors[p.curated]) for p in pairs if p.related]
    unrelated = [cosine(vectors[p.question], vectors[p.curated]) for p in pairs if not p.related]
    calibration = calibrate_scores(related, unrelated)
    print("\n".join(render_calibration(calibration, configured=configured, source=source)), file=out)
    return 1 if measure(configured, calibration)[0] else 0


def run_calibration(
    settings: Settings, pairs_file: Path, *, region: str, bedrock_factory: Any = None, out: Any = sys.stdout
) -> int:
    """The pairs embedded by the chat path's question embedder (Titan v2 in the Lambda's region, or the
    sandbox's emulator), scored against the configured threshold."""
    try:
        pairs = parse_pairs(json.loads(pairs_file.read_text()))
    except ValueError as error:
        print(f"curate calibrate: {pairs_file}: {error}", file=sys.stderr)
        return 2
    embedder = question_embedder(settings, region=region, bedrock_factory=bedrock_factory)
    source = f"{settings.embedding_model_id} ({settings.embedding_dimensions} dimensions) in {region}"
    return calibrate(
        pairs,
        lambda text: embedder.embed(text, timeout_s=EMBED_TIMEOUT_S),
        configured=settings.curated_threshold,
        source=source,
        out=out,
    )


def sandbox_settings(state_file: Path) -> tuple[Settings, str]:
    """The sandbox's chat environment (primary region) and endpoints, from the state file `make dev` writes."""
    if not state_file.exists():
        raise SystemExit(f"no sandbox state at {state_file}: start it with make dev")
    state = json.loads(state_file.read_text())
    os.environ.update(state["aws_environment"])
    region = state["region"]
    return Settings.from_env(state["regions"][region]["chat_env"]), region


def aws_settings(region: str | None, function: str | None, client: Any = None) -> tuple[Settings, str]:
    """The deployed chat function's settings: its environment, read with your credentials."""
    import boto3

    client = client or boto3.client("lambda", region_name=region)
    region = str(client.meta.region_name)
    if function is None:
        names: list[str] = []
        for page in client.get_paginator("list_functions").paginate():
            for fn in page["Functions"]:
                env = fn.get("Environment", {}).get("Variables", {})
                if FUNCTION_MARK in fn["FunctionName"] and "CURATED_TABLE_NAME" in env:
                    names.append(fn["FunctionName"])
        if len(names) != 1:
            found = ", ".join(names) or "none"
            raise SystemExit(
                f"expected one chat function (name containing {FUNCTION_MARK!r}), found {found}: give --function"
            )
        function = names[0]
    env = client.get_function_configuration(FunctionName=function).get("Environment", {}).get("Variables", {})
    return Settings.from_env(env), region


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "command", nargs="?", choices=["answer", "calibrate"], default="answer",
        help="answer: curate the questions (default); calibrate: the threshold from labelled pairs",
    )  # fmt: skip
    p.add_argument("--pairs", type=Path, default=PAIRS, help="calibrate: the labelled pairs (default: %(default)s)")
    p.add_argument("--questions", type=Path, default=QUESTIONS, help="the operators' list (default: %(default)s)")
    p.add_argument("--sandbox", action="store_true", help="the running sandbox (its state file)")
    p.add_argument("--state", type=Path, default=SANDBOX_STATE, help="the sandbox's state file")
    p.add_argument("--region", help="AWS: the region whose chat function answers")
    p.add_argument("--function", help="AWS: the chat function's name (default: found by name)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    settings, region = sandbox_settings(args.state) if args.sandbox else aws_settings(args.region, args.function)
    os.environ.setdefault("AWS_DEFAULT_REGION", region)  # the clients the chat wiring makes
    if args.command == "calibrate":
        return run_calibration(settings, args.pairs, region=region)
    try:
        return run(settings, args.questions, region=region)
    except DomainError as error:
        print(f"curate: {error.message}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
