"""Runtime switches: parsing with safe defaults, the chain's order per request, the cached board, and the
gateway applying them without rebuilding anything."""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Future
from typing import Any

import pytest

from core.errors import Overloaded
from core.gateway import DEGRADED_TEXT, NONE_TARGET, GatewaySettings, ModelGateway
from core.models import Message, ModelReply, TargetRef, Usage
from core.prompts import BUILTIN, FixedPrompt, PromptVersion
from core.switches import (
    CHAIN_ORDER,
    FORCE_DEGRADED,
    FORCE_OPEN,
    MODEL_PINS,
    MODEL_VERSIONS,
    NO_SWITCHES,
    PROMPT_VERSION,
    SwitchBoard,
    SwitchCacheSettings,
    SwitchedPrompt,
    Switches,
    arrange,
    default_document,
    parse_switches,
    version_table,
)

CHAIN = [("claude-v2", "us-east-1"), ("claude-v1", "us-east-1"), ("claude-v2", "us-west-2")]
ASK = [Message(role="user", text="hello")]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# --- parsing ----------------------------------------------------------------------------------
def test_the_deployed_document_parses_to_no_switches() -> None:
    values = {name: flag["default"] for name, flag in default_document().items()}
    assert parse_switches(values, targets=CHAIN) == (NO_SWITCHES, [])
    assert parse_switches({}, targets=CHAIN) == (NO_SWITCHES, [])


def test_every_switch_is_read() -> None:
    switches, problems = parse_switches(
        {
            FORCE_OPEN: ["claude-v2@us-east-1"],
            CHAIN_ORDER: ["claude-v1", "claude-v1"],
            MODEL_PINS: {"claude-v2": "claude-v1"},
            FORCE_DEGRADED: True,
            PROMPT_VERSION: "3",
        },
        targets=CHAIN,
    )
    assert problems == []
    assert switches == Switches(
        force_open=frozenset({"claude-v2@us-east-1"}),
        chain_order=("claude-v1",),
        pins={"claude-v2": "claude-v1"},
        degraded=True,
        prompt_version="3",
    )


@pytest.mark.parametrize(
    "values",
    [
        {FORCE_OPEN: "claude-v2"},  # not a list
        {FORCE_OPEN: ["no-such-model"]},
        {CHAIN_ORDER: [1, 2]},
        {MODEL_PINS: {"claude-v2": "anthropic.any-model-v9:0"}},  # free text: never a model outside the chain
        {MODEL_PINS: {"unknown": "claude-v1"}},
        {MODEL_PINS: ["claude-v1"]},
        {FORCE_DEGRADED: "yes"},
        {PROMPT_VERSION: "latest"},
        {PROMPT_VERSION: 3},
    ],
)
def test_a_bad_value_is_ignored_with_a_problem_named(values: dict[str, Any]) -> None:
    switches, problems = parse_switches(values, targets=CHAIN)
    assert switches == NO_SWITCHES
    assert len(problems) == 1 and next(iter(values)) in problems[0]


# --- the chain per request --------------------------------------------------------------------
def test_order_moves_named_targets_first_and_keeps_the_rest() -> None:
    assert arrange(CHAIN, NO_SWITCHES) == [0, 1, 2]
    assert arrange(CHAIN, Switches(chain_order=("claude-v1",))) == [1, 0, 2]
    assert arrange(CHAIN, Switches(chain_order=("claude-v2@us-west-2", "claude-v1"))) == [2, 1, 0]


def test_a_pin_serves_the_position_with_the_configured_model() -> None:
    assert arrange(CHAIN, Switches(pins={"claude-v2@us-east-1": "claude-v1"})) == [1, 2]
    assert arrange(CHAIN, Switches(pins={"claude-v2": "claude-v1"})) == [1]


# --- the board: cached, never failing ---------------------------------------------------------
class Reads:
    def __init__(self) -> None:
        self.values: dict[str, Any] | Exception = {}
        self.count = 0

    def __call__(self) -> dict[str, Any]:
        self.count += 1
        if isinstance(self.values, Exception):
            raise self.values
        return self.values


def board_on(reads: Reads, clock: Clock) -> SwitchBoard:
    return SwitchBoard(
        read=reads, targets=CHAIN, settings=SwitchCacheSettings(ttl_s=30, retry_after_error_s=10), clock=clock
    )


def test_a_flip_is_seen_within_the_cache_interval_and_not_read_before() -> None:
    reads, clock = Reads(), Clock()
    board = board_on(reads, clock)
    assert board.current() == NO_SWITCHES
    reads.values = {FORCE_DEGRADED: True}
    clock.now += 29.9
    assert board.current().degraded is False and reads.count == 1
    clock.now += 0.1
    assert board.current().degraded is True and reads.count == 2
    reads.values = {}
    clock.now += 30
    assert board.current() == NO_SWITCHES


def test_an_unreachable_store_keeps_the_last_good_switches_and_retries_later() -> None:
    reads, clock = Reads(), Clock()
    board = board_on(reads, clock)
    assert board.current() == NO_SWITCHES  # before any good read: no switches
    reads.values = {FORCE_DEGRADED: True}
    clock.now += 30
    assert board.current().degraded
    reads.values = ConnectionError("appconfig down")
    clock.now += 30
    assert board.current().degraded and reads.count == 3
    clock.now += 9
    assert board.current().degraded and reads.count == 3  # not hammered
    reads.values = {}
    clock.now += 1
    assert board.current() == NO_SWITCHES


def test_a_switched_prompt_version_wins_until_switched_back() -> None:
    reads, clock = Reads(), Clock()
    board = board_on(reads, clock)
    looked_up: list[str] = []

    def lookup(version: str) -> PromptVersion:
        looked_up.append(version)
        if version == "9":
            raise LookupError("no such version")
        return PromptVersion(version=version, text=f"prompt {version}")

    prompt = SwitchedPrompt(active=FixedPrompt(), board=board, lookup=lookup)
    assert prompt.current() == BUILTIN
    reads.values = {PROMPT_VERSION: "2"}
    clock.now += 30
    assert prompt.current().version == "2" and prompt.current().version == "2"
    assert looked_up == ["2"]  # a version is immutable: read once
    reads.values = {PROMPT_VERSION: "9"}
    clock.now += 30
    assert prompt.current() == BUILTIN  # a version that cannot be read leaves the active one
    reads.values = {}
    clock.now += 30
    assert prompt.current() == BUILTIN


# --- the gateway applies them per request -----------------------------------------------------
class InlineExecutor:
    """Runs a lane at once on the caller's thread: no threads, no timing."""

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Future[Any]:
        future: Future[Any] = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except Exception as error:
            future.set_exception(error)
        return future


class Answering:
    def __init__(self, name: str, region: str) -> None:
        self._target = TargetRef(model_id=name, region=region)
        self.calls = 0

    @property
    def target(self) -> TargetRef:
        return self._target

    def call(self, *, system: str, messages: Sequence[Message], timeout_s: float) -> ModelReply:
        self.calls += 1
        return ModelReply(
            text=f"from {self._target.model_id}@{self._target.region}", usage=Usage(), target=self._target
        )


def gateway_with(switches: list[Switches]) -> tuple[ModelGateway, list[Answering]]:
    targets = [Answering(name, region) for name, region in CHAIN]
    gateway = ModelGateway(
        targets=targets,
        settings=GatewaySettings(hedging=False),
        executor=InlineExecutor(),
        switches=lambda: switches[0],
    )
    return gateway, targets


def ask(gateway: ModelGateway) -> ModelReply:
    return gateway.converse(system="s", messages=ASK, deadline_s=10)


def test_the_gateway_follows_each_switch_per_request_with_the_same_targets() -> None:
    current = [NO_SWITCHES]
    gateway, _ = gateway_with(current)
    assert ask(gateway).text == "from claude-v2@us-east-1"
    current[0] = Switches(force_open=frozenset({"claude-v2@us-east-1"}))
    assert ask(gateway).text == "from claude-v1@us-east-1"
    current[0] = Switches(force_open=frozenset({"claude-v2"}))
    assert ask(gateway).text == "from claude-v1@us-east-1"
    current[0] = Switches(chain_order=("claude-v2@us-west-2",))
    assert ask(gateway).text == "from claude-v2@us-west-2"
    current[0] = Switches(pins={"claude-v2@us-east-1": "claude-v1"})
    assert ask(gateway).text == "from claude-v1@us-east-1"
    current[0] = NO_SWITCHES
    assert ask(gateway).text == "from claude-v2@us-east-1"
    assert gateway.breaker_state(0).value == "closed"  # a forced open never touched the real breaker


def test_forced_degraded_mode_calls_no_model() -> None:
    gateway, targets = gateway_with([Switches(degraded=True)])
    reply = ask(gateway)
    assert (reply.text, reply.target, reply.degraded) == (DEGRADED_TEXT, NONE_TARGET, True)
    assert sum(t.calls for t in targets) == 0


def test_every_target_forced_open_sheds_with_retry_after() -> None:
    gateway, targets = gateway_with([Switches(force_open=frozenset({"claude-v2", "claude-v1"}))])
    with pytest.raises(Overloaded) as refused:
        ask(gateway)
    assert refused.value.retry_after >= 1 and sum(t.calls for t in targets) == 0


# --- model version rollback (issue 11) ------------------------------------------------------------
VERSIONS = {"claude-v2": ("anthropic.claude-v2:1", "anthropic.claude-v2:0")}


def test_a_model_version_switch_selects_one_of_the_targets_configured_versions() -> None:
    switches, problems = parse_switches(
        {MODEL_VERSIONS: {"claude-v2": "anthropic.claude-v2:0"}}, targets=CHAIN, versions=VERSIONS
    )
    assert problems == []
    assert switches.active
    assert switches.model_version("claude-v2", "us-east-1") == "anthropic.claude-v2:0"
    assert switches.model_version("claude-v2", "us-west-2") == "anthropic.claude-v2:0"
    assert switches.model_version("claude-v1", "us-east-1") is None


def test_a_model_version_switch_may_name_one_region_of_a_target() -> None:
    switches, problems = parse_switches(
        {MODEL_VERSIONS: {"claude-v2@us-west-2": "anthropic.claude-v2:0"}}, targets=CHAIN, versions=VERSIONS
    )
    assert problems == []
    assert switches.model_version("claude-v2", "us-west-2") == "anthropic.claude-v2:0"
    assert switches.model_version("claude-v2", "us-east-1") is None


@pytest.mark.parametrize(
    "value",
    [
        {"claude-v2": "anthropic.claude-v3:0"},  # not one of its versions: IAM would refuse it anyway
        {"claude-v2": "anthropic.claude-v2"},
        {"claude-v1": "anthropic.claude-v2:0"},  # claude-v1 has no other versions configured
        {"unknown": "anthropic.claude-v2:0"},
        {"claude-v2@eu-west-1": "anthropic.claude-v2:0"},
        {"claude-v2": 2},
        ["anthropic.claude-v2:0"],
        "anthropic.claude-v2:0",
    ],
)
def test_an_unknown_model_version_is_ignored_with_a_problem_never_an_error(value: Any) -> None:
    switches, problems = parse_switches({MODEL_VERSIONS: value}, targets=CHAIN, versions=VERSIONS)
    assert switches.model_versions == {}
    assert len(problems) == 1 and problems[0].startswith(f"{MODEL_VERSIONS}:")


def test_the_board_counts_each_ignored_value_and_keeps_the_good_ones() -> None:
    ignored: list[str] = []
    board = SwitchBoard(
        read=lambda: {MODEL_VERSIONS: {"claude-v2": "anthropic.claude-v9:0"}, FORCE_DEGRADED: True},
        targets=CHAIN,
        versions=VERSIONS,
        on_ignored=ignored.append,
    )
    switches = board.current()
    assert switches.degraded and switches.model_versions == {}
    assert ignored == [MODEL_VERSIONS]


def test_a_failing_metric_does_not_fail_the_read() -> None:
    def broken(flag: str) -> None:
        raise RuntimeError("metrics down")

    board = SwitchBoard(
        read=lambda: {MODEL_VERSIONS: {"claude-v2": "nope"}}, targets=CHAIN, versions=VERSIONS, on_ignored=broken
    )
    assert board.current() == NO_SWITCHES


def test_the_deployed_document_carries_the_model_versions_switch_empty() -> None:
    assert default_document()[MODEL_VERSIONS] == {"default": {}, "boolean_type": False}


def test_a_bare_name_picks_only_a_version_every_region_of_that_name_allows() -> None:
    # The same target name in two geographies: each region's target has its own profile ids.
    targets = [("claude", "us-east-1"), ("claude", "eu-west-1")]
    versions = version_table(
        [
            ("claude", "us-east-1", ("us.anthropic.claude-b-v2:0", "us.anthropic.claude-a-v1:0")),
            ("claude", "eu-west-1", ("eu.anthropic.claude-b-v2:0", "eu.anthropic.claude-a-v1:0")),
        ]
    )
    bare, problems = parse_switches(
        {MODEL_VERSIONS: {"claude": "us.anthropic.claude-a-v1:0"}}, targets=targets, versions=versions
    )
    assert bare.model_versions == {} and problems  # would send a us. id to the eu-west-1 target
    one, problems = parse_switches(
        {MODEL_VERSIONS: {"claude@eu-west-1": "eu.anthropic.claude-a-v1:0"}}, targets=targets, versions=versions
    )
    assert one.model_versions == {"claude@eu-west-1": "eu.anthropic.claude-a-v1:0"} and not problems
    assert one.model_version("claude", "eu-west-1") == "eu.anthropic.claude-a-v1:0"
    assert one.model_version("claude", "us-east-1") is None
