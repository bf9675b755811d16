"""tools/prompts.py on moto: the operator's commands, a rollback in one command, clear refusals."""

from __future__ import annotations

import io
from typing import Any

import pytest

from adapters.prompt_catalog import DynamoPromptCatalog
from core.prompts import BUILTIN_PROMPT
from local.resources import create_table
from tests.fakes import fixture_aws  # noqa: F401 - the fixture `aws`
from tools import prompts

TABLE = "PromptsABC123"  # the sandbox names tables by logical id


def run(aws: dict[str, Any], *argv: str) -> tuple[int, str]:
    out = io.StringIO()
    code = prompts.main(["--environment", "dev", *argv], client=aws["dynamodb"], out=out)
    return code, out.getvalue()


@pytest.fixture
def catalog(aws: dict[str, Any]) -> DynamoPromptCatalog:
    create_table(aws["dynamodb"], TABLE, [("pk", "HASH"), ("sk", "RANGE")])
    create_table(aws["dynamodb"], "Conversations123", [("pk", "HASH"), ("sk", "RANGE")])
    return DynamoPromptCatalog(client=aws["dynamodb"], table_name=TABLE)


def test_seed_add_activate_and_roll_back_by_one_command(
    aws: dict[str, Any], catalog: DynamoPromptCatalog, tmp_path: Any
) -> None:
    assert run(aws, "seed")[1] == "seeded version 1 (the built-in prompt), active in dev\n"
    assert run(aws, "seed")[1].startswith("the catalog has versions already")
    prompt = tmp_path / "v2.txt"
    prompt.write_text("You are Bulwark, now terser.")
    assert run(aws, "add", "--file", str(prompt), "--note", "terser", "--activate")[0] == 0
    assert catalog.active("dev").version == "2"  # type: ignore[union-attr]

    code, listing = run(aws, "list")
    assert code == 0 and "<- active in dev" in listing and "dev: version 2, before it: 1" in listing

    assert run(aws, "rollback") == (0, "dev: rolled back to version 1\n")
    active = catalog.active("dev")
    assert active is not None and (active.version, active.text) == ("1", BUILTIN_PROMPT)


def test_refusals_are_a_sentence_and_exit_1(
    aws: dict[str, Any], catalog: DynamoPromptCatalog, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(aws, "rollback")[0] == 1
    assert "nothing to roll back" in capsys.readouterr().err
    assert run(aws, "activate", "9")[0] == 1
    assert "no version 9" in capsys.readouterr().err
    assert run(aws, "add", "--text", " ")[0] == 1


def test_the_table_is_found_by_name_unless_ambiguous(aws: dict[str, Any], catalog: DynamoPromptCatalog) -> None:
    assert prompts.find_table(aws["dynamodb"]) == TABLE
    create_table(aws["dynamodb"], "Bulwark-prod-Data-PromptsXYZ", [("pk", "HASH"), ("sk", "RANGE")])
    with pytest.raises(SystemExit, match="give --table"):
        prompts.find_table(aws["dynamodb"])
