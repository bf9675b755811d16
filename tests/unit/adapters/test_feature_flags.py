"""The switches read from AppConfig through Powertools' feature flags utility, against the local AppConfig data
plane (local/appconfig_emulator.py) with an unmodified boto3 client: flip a switch, see the answers change
within the cache interval (injected clock), flip back; an outage or an invalid document changes nothing."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities.feature_flags.exceptions import ConfigurationStoreError, SchemaValidationError
from botocore.config import Config

from adapters.feature_flags import AppConfigSwitches
from core.gateway import GatewaySettings, ModelGateway
from core.switches import (
    FLAG_DEFAULTS,
    FORCE_DEGRADED,
    FORCE_OPEN,
    SwitchBoard,
    SwitchCacheSettings,
    default_document,
)
from local.appconfig_emulator import AppConfigEmulator
from tests.unit.core.test_switches import CHAIN, Answering, Clock, InlineExecutor, ask

APP, ENV, PROFILE = "bulwark", "dev", "switches"


@pytest.fixture
def appconfig() -> Iterator[AppConfigEmulator]:
    server = AppConfigEmulator(application=APP, environment=ENV, profile=PROFILE).start()
    yield server
    server.stop()


def switches_from(server: AppConfigEmulator) -> AppConfigSwitches:
    client = boto3.client(
        "appconfigdata",
        region_name="us-east-1",
        endpoint_url=server.url,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"mode": "standard", "max_attempts": 1}, connect_timeout=1, read_timeout=2),
    )
    return AppConfigSwitches(application=APP, environment=ENV, profile=PROFILE, client=client)


def with_flags(**values: Any) -> dict[str, Any]:
    document = default_document()
    for name, value in values.items():
        document[name]["default"] = value
    return document


def test_the_deployed_document_reads_as_every_switch_off(appconfig: AppConfigEmulator) -> None:
    assert switches_from(appconfig)() == FLAG_DEFAULTS
    # What the stack deploys (stacks/constructs/runtime_switches.py): an empty document, constant across deploys.
    appconfig.deploy({})
    assert switches_from(appconfig)() == FLAG_DEFAULTS


def test_a_new_deployment_is_read_by_the_next_poll_of_the_same_session(appconfig: AppConfigEmulator) -> None:
    read = switches_from(appconfig)
    assert read()[FORCE_DEGRADED] is False
    assert read()[FORCE_DEGRADED] is False  # unchanged: AppConfig sends no body, the last document serves
    appconfig.deploy(with_flags(force_degraded=True))
    assert read()[FORCE_DEGRADED] is True


def test_an_outage_or_an_invalid_document_raises_for_the_board_to_absorb(appconfig: AppConfigEmulator) -> None:
    read = switches_from(appconfig)
    read()
    appconfig.deploy({"force_degraded": {"default": "not a bool"}})  # not a valid feature flags document
    with pytest.raises(SchemaValidationError):
        read()
    appconfig.deploy(b"{not json")
    with pytest.raises(ConfigurationStoreError):
        read()
    appconfig.fail(True)
    with pytest.raises(ConfigurationStoreError):
        switches_from(appconfig)()


def test_flip_observe_within_the_cache_interval_flip_back(appconfig: AppConfigEmulator) -> None:
    """GIVEN a gateway reading its switches from AppConfig every 30 s (injected clock)
    WHEN the operator forces the primary's breaker open, then degraded mode, then reverts, and AppConfig fails
    THEN answers change within one interval of each flip, and an outage keeps the last good switches."""
    clock = Clock()
    board = SwitchBoard(
        read=switches_from(appconfig),
        targets=CHAIN,
        settings=SwitchCacheSettings(ttl_s=30, retry_after_error_s=30),
        clock=clock,
    )
    gateway = ModelGateway(
        targets=[Answering(name, region) for name, region in CHAIN],
        settings=GatewaySettings(hedging=False),
        executor=InlineExecutor(),
        switches=board.current,
    )
    assert ask(gateway).text == "from claude-v2@us-east-1"

    appconfig.deploy(with_flags(**{FORCE_OPEN: ["claude-v2@us-east-1"]}))
    clock.now += 29
    assert ask(gateway).text == "from claude-v2@us-east-1"  # still cached
    clock.now += 1
    assert ask(gateway).text == "from claude-v1@us-east-1"  # flipped within the interval

    appconfig.deploy(with_flags(**{FORCE_DEGRADED: True}))
    clock.now += 30
    assert ask(gateway).degraded

    appconfig.fail(True)
    clock.now += 30
    assert ask(gateway).degraded  # AppConfig unreachable: the last good switches, never an error
    appconfig.fail(False)

    appconfig.deploy(default_document())  # flip back
    clock.now += 30
    reply = ask(gateway)
    assert (reply.text, reply.degraded) == ("from claude-v2@us-east-1", False)
