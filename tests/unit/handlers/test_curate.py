"""The scheduled curate Lambda on moto and the Bedrock emulator: nothing to do while every question has an answer
for the active prompt; a prompt activated since gets its answers on the next run, within the Lambda's time."""

from __future__ import annotations

from typing import Any

from adapters.curated_answers import DynamoCuratedAnswers
from adapters.prompt_catalog import DynamoPromptCatalog
from handlers.curate import bootstrap
from local.bedrock_emulator import BedrockEmulator
from local.resources import create_table
from tests.fakes import fixture_aws  # noqa: F401 - the fixture `aws`
from tests.unit.tools.test_curate import SETTINGS, bedrock_factory, emulator, table  # noqa: F401 - fixtures
from tools import curate

PROMPTS = "prompts-test"
JOB_SETTINGS = SETTINGS.but(prompts_table_name=PROMPTS, prompt_environment="dev", prompt_cache_s=0.0)


class Context:
    def __init__(self, remaining_s: float) -> None:
        self.remaining_s = remaining_s

    def get_remaining_time_in_millis(self) -> int:
        return int(self.remaining_s * 1000)


def test_a_newly_active_prompt_gets_its_curated_answers_on_the_next_run(
    aws: dict[str, Any],
    emulator: BedrockEmulator,  # noqa: F811 - a fixture
    table: DynamoCuratedAnswers,  # noqa: F811 - a fixture
) -> None:
    # GIVEN make curate ran with the built-in prompt
    create_table(aws["dynamodb"], PROMPTS, [("pk", "HASH"), ("sk", "RANGE")])
    assert curate.run(JOB_SETTINGS, curate.QUESTIONS, dynamodb=aws["dynamodb"],
                      bedrock_factory=bedrock_factory(emulator), region="us-east-1") == 0  # fmt: skip
    job = bootstrap(
        JOB_SETTINGS, dynamodb=aws["dynamodb"], region="us-east-1", bedrock_factory=bedrock_factory(emulator)
    )

    # WHEN nothing changed THEN the run has nothing to do
    assert job({}, Context(900)) == {"prompt_version": "builtin", "due": 0, "stored": 0, "not_stored": {}}

    # WHEN an operator activates prompt version 1 THEN the next run answers every question with it, as many as the
    # Lambda's time allows per run (25 s deadline each, 30 s kept free)
    catalog = DynamoPromptCatalog(client=aws["dynamodb"], table_name=PROMPTS)
    catalog.add("You are Bulwark v1.")
    catalog.activate("dev", "1")
    first = job({}, Context(30 + 2 * 25))
    second = job({}, Context(900))

    assert (first["prompt_version"], first["due"], first["stored"]) == ("1", 2, 2)
    assert (second["due"], second["stored"]) == (4, 4)
    versions = sorted(entry.prompt_version for entry in table.load(limit=100))
    assert versions == ["1"] * 6 + ["builtin"] * 6  # the built-in prompt's answers stay, for a rollback
