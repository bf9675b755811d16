"""`make switch` (tools/switch.py): read the deployed switches, change one, check it with the Lambdas' parser,
deploy it. The sandbox path runs against the AppConfig emulator the chat Lambda reads; the AWS path's calls are
checked against AppConfig's API model with botocore's Stubber (moto implements hosted configuration versions but
not ListDeployments, StartDeployment or GetDeployment)."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber

from core.switches import FORCE_DEGRADED, FORCE_OPEN, MODEL_VERSIONS, PROMPT_VERSION, default_document
from local.appconfig_emulator import SWITCH_VARIABLES, AppConfigEmulator
from tests.fakes import emulator_client
from tools import switch

CURRENT, PREVIOUS = "us.amazon.nova-2-lite-v1:0", "us.amazon.nova-lite-v1:0"
CHAIN = switch.Chain(
    targets=((CURRENT, "us-east-1"), ("amazon.nova-pro-v1:0", "us-west-2")),
    versions={CURRENT: (CURRENT, PREVIOUS), "amazon.nova-pro-v1:0": ("amazon.nova-pro-v1:0",)},
)


@pytest.fixture
def emulator() -> Iterator[AppConfigEmulator]:
    server = AppConfigEmulator(
        application=SWITCH_VARIABLES["SWITCHES_APPLICATION"],
        environment=SWITCH_VARIABLES["SWITCHES_ENVIRONMENT"],
        profile=SWITCH_VARIABLES["SWITCHES_PROFILE"],
    ).start()
    yield server
    server.stop()


def sandbox(emulator: AppConfigEmulator) -> switch.SandboxSwitches:
    return switch.SandboxSwitches(
        url=emulator.url,
        application=SWITCH_VARIABLES["SWITCHES_APPLICATION"],
        environment=SWITCH_VARIABLES["SWITCHES_ENVIRONMENT"],
        profile=SWITCH_VARIABLES["SWITCHES_PROFILE"],
        client=emulator_client("appconfigdata", emulator, "us-east-1"),
    )


def flip(store: Any, *argv: str) -> tuple[int, str]:
    out = io.StringIO()
    args = switch.parser().parse_args(["--sandbox", *argv])
    return switch.run(store, CHAIN, args, out), out.getvalue()


def deployed(emulator: AppConfigEmulator) -> dict[str, Any]:
    return switch.values(json.loads(emulator.state.document))


def test_roll_a_model_back_in_the_sandbox_and_forward_again(emulator: AppConfigEmulator) -> None:
    store = sandbox(emulator)
    assert flip(store, "model-version", CURRENT, PREVIOUS)[0] == 0
    assert deployed(emulator)[MODEL_VERSIONS] == {CURRENT: PREVIOUS}
    code, shown = flip(store, "show")
    assert code == 0 and f'"{CURRENT}": "{PREVIOUS}"' in shown and f"may roll back to {PREVIOUS}" in shown

    assert flip(store, "model-version", CURRENT, "current")[0] == 0
    assert deployed(emulator)[MODEL_VERSIONS] == {}


def test_a_version_the_lambdas_would_ignore_is_refused_before_it_is_deployed(
    emulator: AppConfigEmulator, capsys: pytest.CaptureFixture[str]
) -> None:
    store, before = sandbox(emulator), emulator.state.version
    assert flip(store, "model-version", CURRENT, "us.amazon.nova-pro-v1:0")[0] == 2
    assert flip(store, "model-version", "amazon.nova-pro-v1:0", "amazon.nova-pro-v1:1")[0] == 2
    assert flip(store, "set", FORCE_OPEN, '["not-in-the-chain"]')[0] == 2
    assert flip(store, "set", FORCE_OPEN, "not json")[0] == 2
    assert flip(store, "prompt-version", "v3")[0] == 2
    assert emulator.state.version == before  # nothing was deployed
    assert "ignore" in capsys.readouterr().err


def test_set_unset_force_degraded_and_reset_keep_the_other_switches(emulator: AppConfigEmulator) -> None:
    store = sandbox(emulator)
    assert flip(store, "set", FORCE_OPEN, f'["{CURRENT}@us-east-1"]')[0] == 0
    assert flip(store, "force-degraded", "on")[0] == 0
    assert flip(store, "prompt-version", "3")[0] == 0
    now = deployed(emulator)
    assert (now[FORCE_OPEN], now[FORCE_DEGRADED], now[PROMPT_VERSION]) == ([f"{CURRENT}@us-east-1"], True, "3")
    assert flip(store, "unset", FORCE_OPEN)[0] == 0
    assert deployed(emulator)[FORCE_OPEN] == [] and deployed(emulator)[FORCE_DEGRADED] is True
    version = emulator.state.version
    assert flip(store, "unset", FORCE_OPEN) == (0, "switch: nothing to change\n")
    assert emulator.state.version == version
    assert flip(store, "reset")[0] == 0
    assert json.loads(emulator.state.document) == default_document()


def test_the_chain_comes_from_the_lambda_settings_or_cdk_json() -> None:
    from handlers.settings import TargetSetting
    from stacks.config import AppConfig
    from tests.conftest import TEST_SETTINGS, cdk_context

    settings = TEST_SETTINGS.but(
        targets=(TargetSetting(model_id=CURRENT, region="us-east-1", max_tokens=9, previous_versions=(PREVIOUS,)),)
    )
    assert switch.chain_from_settings(settings) == switch.Chain(
        targets=((CURRENT, "us-east-1"),),
        versions={CURRENT: (CURRENT, PREVIOUS), f"{CURRENT}@us-east-1": (CURRENT, PREVIOUS)},
    )
    config = AppConfig.from_context(
        cdk_context(
            models=[
                {"model_id": CURRENT, "region": "us-east-1", "previous_versions": [PREVIOUS]},
                {"model_id": "amazon.nova-pro-v1:0", "region": "us-west-2"},
            ]
        )["bulwark"]
    )
    assert switch.chain_from_config(config, "us-west-2") == switch.Chain(
        targets=(("amazon.nova-pro-v1:0", "us-west-2"), (CURRENT, "us-east-1")),
        versions={
            "amazon.nova-pro-v1:0": ("amazon.nova-pro-v1:0",),
            "amazon.nova-pro-v1:0@us-west-2": ("amazon.nova-pro-v1:0",),
            CURRENT: (CURRENT, PREVIOUS),
            f"{CURRENT}@us-east-1": (CURRENT, PREVIOUS),
        },
    )


# --- AWS: the control plane's calls, checked against the API model -------------------------------
IDS = {"ApplicationId": "abc1234", "ConfigurationProfileId": "prf1234"}


def _body(document: dict[str, Any]) -> StreamingBody:
    raw = json.dumps(document).encode()
    return StreamingBody(io.BytesIO(raw), len(raw))


def test_in_aws_a_new_hosted_version_is_deployed_with_the_incident_strategy() -> None:
    client = boto3.client("appconfig", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    stub = Stubber(client)
    running = default_document()
    stub.add_response(
        "list_hosted_configuration_versions",
        {"Items": [{**IDS, "VersionNumber": 7}, {**IDS, "VersionNumber": 5}]},
        IDS,
    )
    stub.add_response(
        "list_deployments",
        {
            "Items": [
                {"DeploymentNumber": 3, "ConfigurationVersion": "7", "State": "ROLLED_BACK"},
                {"DeploymentNumber": 2, "ConfigurationVersion": "5", "State": "COMPLETE"},
            ]
        },
        {"ApplicationId": "abc1234", "EnvironmentId": "env1234"},
    )
    stub.add_response(
        "get_hosted_configuration_version",
        {**IDS, "VersionNumber": 5, "Content": _body(running), "ContentType": "application/json"},
        {**IDS, "VersionNumber": 5},
    )
    wanted = switch.with_value(running, MODEL_VERSIONS, {CURRENT: PREVIOUS})
    description = f"model-version {CURRENT} {PREVIOUS}"
    stub.add_response(
        "create_hosted_configuration_version",
        {**IDS, "VersionNumber": 8, "ContentType": "application/json"},
        {**IDS, "Content": json.dumps(wanted).encode(), "ContentType": "application/json", "Description": description,
         "LatestVersionNumber": 7},  # the lock: the newest hosted version, though 5 is the one deployed
    )  # fmt: skip
    stub.add_response(
        "start_deployment",
        {"DeploymentNumber": 4, "State": "DEPLOYING"},
        {
            "ApplicationId": "abc1234",
            "EnvironmentId": "env1234",
            "DeploymentStrategyId": "str1234",
            "ConfigurationProfileId": "prf1234",
            "ConfigurationVersion": "8",
            "Description": description,
        },
    )
    stub.add_response(
        "get_deployment",
        {"DeploymentNumber": 4, "State": "COMPLETE"},
        {"ApplicationId": "abc1234", "EnvironmentId": "env1234", "DeploymentNumber": 4},
    )
    slept: list[float] = []
    store = switch.HostedSwitches(
        client=client,
        application_id="abc1234",
        environment_id="env1234",
        profile_id="prf1234",
        strategy_id="str1234",
        sleep=slept.append,
        clock=lambda: 0.0,
    )
    out = io.StringIO()
    with stub:
        code = switch.run(
            store, CHAIN, switch.parser().parse_args(["--stack", "S", "model-version", CURRENT, PREVIOUS]), out
        )
    stub.assert_no_pending_responses()
    assert code == 0 and "hosted version 8, deployment 4 complete" in out.getvalue()
    assert slept == [2.0]


def test_the_api_stack_outputs_name_the_profile() -> None:
    cfn = boto3.client("cloudformation", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    stub = Stubber(cfn)
    outputs = [
        {"OutputKey": f"{name}1A2B3C", "OutputValue": f"id-{index}"} for index, name in enumerate(switch.OUTPUTS)
    ]
    stub.add_response(
        "describe_stacks",
        {
            "Stacks": [
                {"StackName": "S", "CreationTime": "2026-01-01", "StackStatus": "UPDATE_COMPLETE", "Outputs": outputs}
            ]
        },
        {"StackName": "S"},
    )
    appconfig = boto3.client("appconfig", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    with stub:
        store, chain = switch.aws_store("S", "us-east-1", switch.ROOT / "cdk.json", client=appconfig, cfn=cfn)
    assert store._strategy_id == "id-3" and store._environment_id == "id-1"
    assert chain.targets[0][1] == "us-east-1"


def _reading_version_5() -> tuple[Any, Stubber]:
    """An AppConfig client whose newest and deployed hosted version is 5 (every switch off)."""
    client = boto3.client("appconfig", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    stub = Stubber(client)
    stub.add_response("list_hosted_configuration_versions", {"Items": [{**IDS, "VersionNumber": 5}]}, IDS)
    stub.add_response(
        "list_deployments",
        {"Items": [{"DeploymentNumber": 2, "ConfigurationVersion": "5", "State": "COMPLETE"}]},
        {"ApplicationId": "abc1234", "EnvironmentId": "env1234"},
    )
    stub.add_response(
        "get_hosted_configuration_version",
        {**IDS, "VersionNumber": 5, "Content": _body(default_document()), "ContentType": "application/json"},
        {**IDS, "VersionNumber": 5},
    )
    return client, stub


def _force_degraded(client: Any, stub: Stubber) -> int:
    """`switch force-degraded on` against the stubbed client; every stubbed call must have been made."""
    store = switch.HostedSwitches(
        client=client, application_id="abc1234", environment_id="env1234", profile_id="prf1234",
        strategy_id="str1234", sleep=lambda _: None, clock=lambda: 0.0,
    )  # fmt: skip
    with stub:
        code = switch.run(
            store, CHAIN, switch.parser().parse_args(["--stack", "S", "force-degraded", "on"]), io.StringIO()
        )
    stub.assert_no_pending_responses()
    return code


def test_a_version_created_meanwhile_by_someone_else_wins_and_nothing_is_deployed() -> None:
    client, stub = _reading_version_5()
    # AppConfig refuses the lock: version 6 exists now. No start_deployment may follow (the stub would fail).
    stub.add_client_error("create_hosted_configuration_version", service_error_code="ConflictException")
    assert _force_degraded(client, stub) == 3


def test_a_deployment_already_in_progress_is_said_plainly_not_a_traceback() -> None:
    client, stub = _reading_version_5()
    stub.add_response(
        "create_hosted_configuration_version", {**IDS, "VersionNumber": 6, "ContentType": "application/json"}
    )
    stub.add_client_error("start_deployment", service_error_code="ConflictException")
    assert _force_degraded(client, stub) == 3
