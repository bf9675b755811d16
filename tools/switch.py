"""Flip a runtime switch (issue 11): `make switch ARGS="..."`, in AWS or in the sandbox, without a deploy.

    python tools/switch.py --stack Bulwark-dev-Api [--region us-east-1] show          # AWS (your credentials)
    python tools/switch.py --sandbox show                                               # make dev running
    python tools/switch.py ... set force_open_targets '["us.amazon.nova-lite-v1:0"]'   # a value as JSON
    python tools/switch.py ... unset chain_order                                        # back to its default
    python tools/switch.py ... force-degraded on|off
    python tools/switch.py ... model-version TARGET VERSION|current                     # roll a model back / forth
    python tools/switch.py ... prompt-version N|active

Reads the switches as deployed, applies the change, and checks the result with the parser the Lambdas use
(core.switches.parse_switches) against the chain they call: a value they would ignore (a target not in the
chain, a model version that is not one of the target's configured ones) is refused here, before anything is
deployed. In AWS: the deployed version (ListDeployments, newest first; GetHostedConfigurationVersion), then
CreateHostedConfigurationVersion and StartDeployment with the stack's incident strategy (all at once), waiting
for the deployment to complete; the ids are the API stack's Switches* outputs and the chain is cdk.json's
(--cdk-json). In the sandbox: the AppConfig emulator the chat Lambda reads (its data plane, from the state file
`make dev` writes, or --endpoint-url), written through its /_emulator/configuration route, which stands in for
the two control-plane calls. The Lambdas see the change within their cache interval (SWITCHES_CACHE_SECONDS).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from botocore.exceptions import ClientError

from core.switches import (
    FLAG_DEFAULTS,
    FORCE_DEGRADED,
    MODEL_VERSIONS,
    PROMPT_VERSION,
    default_document,
    parse_switches,
    version_table,
)

ROOT = Path(__file__).resolve().parents[1]
SANDBOX_STATE = ROOT / ".sandbox" / "state.json"
OUTPUTS = ("SwitchesApplicationId", "SwitchesEnvironmentId", "SwitchesProfileId", "SwitchesStrategyId")
# A deployment that is over, one way or the other (the others are still going).
_FINAL_STATES = {"COMPLETE", "ROLLED_BACK", "REVERTED"}
_LIVE_STATES = {"COMPLETE", "DEPLOYING", "BAKING", "VALIDATING"}


@dataclass(frozen=True)
class Chain:
    """What the Lambdas call: (name, region) per target and each target's allowed model versions."""

    targets: tuple[tuple[str, str], ...]
    versions: Mapping[str, tuple[str, ...]]


def chain_from_settings(settings: Any) -> Chain:
    """From a Lambda's settings (handlers.settings.Settings): exactly what the wiring gives its SwitchBoard."""
    return Chain(
        targets=tuple((t.display_name, t.region) for t in settings.targets),
        versions=version_table((t.display_name, t.region, t.versions) for t in settings.targets if t.langchain is None),
    )


def chain_from_config(config: Any, region: str) -> Chain:
    """From cdk.json (stacks.config.AppConfig): the chain `region`'s Lambdas call, as stacks/lambda_settings.py
    renders it (a target's name is its display name; versions only for targets that may roll back)."""
    chain = config.chain_for(region)
    return Chain(
        targets=tuple((t.display_name, t.region) for t in chain),
        versions=version_table(
            (t.display_name, t.region, (t.model_id, *t.previous_versions)) for t in chain if t.kind != "langchain"
        ),
    )


class SwitchStore(Protocol):
    def read(self) -> dict[str, Any]: ...

    def write(self, document: dict[str, Any], *, description: str) -> str: ...


class SwitchConflict(RuntimeError):
    """Another operator wrote the switches between our read and our write."""


class HostedSwitches:
    """The switches' hosted configuration in AWS AppConfig (control plane)."""

    def __init__(
        self,
        *,
        client: Any,
        application_id: str,
        environment_id: str,
        profile_id: str,
        strategy_id: str,
        timeout_s: float = 120.0,
        poll_s: float = 2.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._ids = {"ApplicationId": application_id, "ConfigurationProfileId": profile_id}
        self._environment_id = environment_id
        self._strategy_id = strategy_id
        self._timeout_s, self._poll_s, self._sleep, self._clock = timeout_s, poll_s, sleep, clock

    def deployed_version(self) -> int | None:
        """The hosted version the environment runs: its newest deployment that is not rolled back."""
        pages = self._client.get_paginator("list_deployments").paginate(
            ApplicationId=self._ids["ApplicationId"], EnvironmentId=self._environment_id
        )
        for page in pages:
            for item in page.get("Items", []):  # newest first
                if item.get("State") in _LIVE_STATES:
                    return int(item["ConfigurationVersion"])
        return None

    def latest_version(self) -> int | None:
        """The newest hosted version, deployed or not: the locking token of the next write."""
        pages = self._client.get_paginator("list_hosted_configuration_versions").paginate(**self._ids)
        numbers = [int(item["VersionNumber"]) for page in pages for item in page.get("Items", [])]
        return max(numbers, default=None)

    def read(self) -> dict[str, Any]:
        # Read the lock first: a version another operator creates after this point makes our write fail
        # (ConflictException) instead of silently replacing theirs.
        self._latest = self.latest_version()
        version = self.deployed_version()
        if version is None:
            return default_document()
        response = self._client.get_hosted_configuration_version(**self._ids, VersionNumber=version)
        return _document(response["Content"].read())

    def write(self, document: dict[str, Any], *, description: str) -> str:
        lock = {} if getattr(self, "_latest", None) is None else {"LatestVersionNumber": self._latest}
        try:
            created = self._client.create_hosted_configuration_version(
                **self._ids,
                Content=json.dumps(document).encode(),
                ContentType="application/json",
                Description=description[:1024],
                **lock,
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ConflictException":
                raise SwitchConflict(
                    "someone created a new switches version while this change was prepared; nothing was "
                    "deployed: run `show` and apply your change again"
                ) from error
            raise
        version = str(created["VersionNumber"])
        try:
            deployment = self._start(version, description)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ConflictException":
                raise SwitchConflict(
                    f"another deployment of the switches is in progress; version {version} was created but not "
                    "deployed: run `show`, then apply your change again when that deployment is over"
                ) from error
            raise
        number = deployment["DeploymentNumber"]
        state, deadline = deployment.get("State"), self._clock() + self._timeout_s
        while state not in _FINAL_STATES and self._clock() < deadline:
            self._sleep(self._poll_s)
            state = self._client.get_deployment(
                ApplicationId=self._ids["ApplicationId"], EnvironmentId=self._environment_id, DeploymentNumber=number
            )["State"]
        if state != "COMPLETE":
            raise SystemExit(f"deployment {number} of version {version} ended {state}: the switches did not change")
        return f"hosted version {version}, deployment {number} complete"

    def _start(self, version: str, description: str) -> dict[str, Any]:
        """Deploy `version` with the stack's incident strategy (all at once)."""
        return dict(
            self._client.start_deployment(
                ApplicationId=self._ids["ApplicationId"],
                EnvironmentId=self._environment_id,
                DeploymentStrategyId=self._strategy_id,
                ConfigurationProfileId=self._ids["ConfigurationProfileId"],
                ConfigurationVersion=version,
                Description=description[:1024],
            )
        )


class SandboxSwitches:
    """The sandbox's AppConfig emulator: read through the data plane like the Lambdas, written through its
    operator route (the stand-in for CreateHostedConfigurationVersion + StartDeployment)."""

    def __init__(self, *, url: str, application: str, environment: str, profile: str, client: Any = None) -> None:
        self._url = url.rstrip("/")
        self._names = {
            "ApplicationIdentifier": application,
            "EnvironmentIdentifier": environment,
            "ConfigurationProfileIdentifier": profile,
        }
        if client is None:
            import boto3

            client = boto3.client(
                "appconfigdata",
                endpoint_url=self._url,
                region_name="us-east-1",
                aws_access_key_id="sandbox",
                aws_secret_access_key="sandbox",
            )
        self._client = client

    def read(self) -> dict[str, Any]:
        token = self._client.start_configuration_session(**self._names)["InitialConfigurationToken"]
        return _document(self._client.get_latest_configuration(ConfigurationToken=token)["Configuration"].read())

    def write(self, document: dict[str, Any], *, description: str) -> str:
        request = urllib.request.Request(
            f"{self._url}/_emulator/configuration",
            data=json.dumps(document).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return f"sandbox version {json.loads(response.read())['version']}"


def _document(raw: bytes) -> dict[str, Any]:
    try:
        document = json.loads(raw or b"{}")
    except ValueError as error:
        raise SystemExit(f"the deployed switches are not JSON ({error}); set every switch again with reset") from error
    if not isinstance(document, dict):
        raise SystemExit("the deployed switches are not a JSON object; set every switch again with reset")
    return document


def values(document: Mapping[str, Any]) -> dict[str, Any]:
    """Each switch's value as the Lambdas evaluate it (a flag's `default`; a missing flag: its default)."""
    found = {}
    for name, default in FLAG_DEFAULTS.items():
        flag = document.get(name)
        found[name] = flag.get("default", default) if isinstance(flag, Mapping) else default
    return found


def with_value(document: Mapping[str, Any], name: str, value: Any) -> dict[str, Any]:
    """The document with one switch set (every other flag kept as deployed)."""
    if name not in FLAG_DEFAULTS:
        raise ValueError(f"no switch named {name!r}; the switches are: {', '.join(FLAG_DEFAULTS)}")
    changed = {**default_document(), **{key: dict(flag) for key, flag in document.items() if key in FLAG_DEFAULTS}}
    changed[name] = {**default_document()[name], "default": value}
    return changed


def parse_value(name: str, text: str) -> Any:
    """A value from the command line: JSON for lists and maps, true/false/on/off for a boolean, text for text."""
    default = FLAG_DEFAULTS.get(name)
    if isinstance(default, bool):
        if text.lower() not in ("true", "false", "on", "off"):
            raise ValueError(f"{name} is on or off, got {text!r}")
        return text.lower() in ("true", "on")
    if isinstance(default, str):
        return text
    try:
        return json.loads(text)
    except ValueError as error:
        kind = "a JSON list" if isinstance(default, list) else "a JSON object"
        raise ValueError(f"{name} takes {kind}, e.g. {json.dumps(default or ['target'])}: {error}") from error


def change(document: Mapping[str, Any], args: argparse.Namespace) -> tuple[dict[str, Any], str]:
    """The new document and a description of the change (stored with the hosted version)."""
    current = values(document)
    if args.command == "set":
        return with_value(document, args.key, parse_value(args.key, args.value)), f"set {args.key}"
    if args.command == "unset":
        return with_value(document, args.key, FLAG_DEFAULTS.get(args.key)), f"unset {args.key}"
    if args.command == "reset":
        return default_document(), "every switch off"
    if args.command == "force-degraded":
        return with_value(document, FORCE_DEGRADED, args.state == "on"), f"force-degraded {args.state}"
    if args.command == "prompt-version":
        version = "" if args.version == "active" else args.version
        return with_value(document, PROMPT_VERSION, version), f"prompt-version {args.version}"
    if args.command == "model-version":
        versions = dict(current[MODEL_VERSIONS]) if isinstance(current[MODEL_VERSIONS], Mapping) else {}
        if args.version == "current":
            versions.pop(args.target, None)
        else:
            versions[args.target] = args.version
        return with_value(document, MODEL_VERSIONS, versions), f"model-version {args.target} {args.version}"
    raise ValueError(f"unknown command {args.command}")


def problems(document: Mapping[str, Any], chain: Chain) -> list[str]:
    """What the Lambdas would ignore in this document (the same parser, the same chain)."""
    _, found = parse_switches(values(document), targets=chain.targets, versions=chain.versions)
    return found


def describe(document: Mapping[str, Any], chain: Chain) -> list[str]:
    lines = [f"  {name} = {json.dumps(value)}" for name, value in values(document).items()]
    lines.append("  chain: " + ", ".join(f"{name}@{region}" for name, region in chain.targets))
    for name, allowed in chain.versions.items():
        if len(allowed) > 1:
            lines.append(f"  {name}: current {allowed[0]}, may roll back to {', '.join(allowed[1:])}")
    ignored = problems(document, chain)
    lines += [f"  ignored by the Lambdas: {problem}" for problem in ignored]
    return lines


def run(store: SwitchStore, chain: Chain, args: argparse.Namespace, out: Any = sys.stdout) -> int:
    document = store.read()
    if args.command == "show":
        print("Runtime switches as deployed:", file=out)
        print("\n".join(describe(document, chain)), file=out)
        return 0
    try:
        changed, description = change(document, args)
    except ValueError as error:
        print(f"switch: {error}", file=sys.stderr)
        return 2
    refused = problems(changed, chain)
    if refused:
        print("switch: not deployed, the Lambdas would ignore it:\n  " + "\n  ".join(refused), file=sys.stderr)
        return 2
    if values(changed) == values(document):
        print("switch: nothing to change", file=out)
        return 0
    try:
        written = store.write(changed, description=description)
    except SwitchConflict as error:
        print(f"switch: {error}", file=sys.stderr)
        return 3
    print(f"{description}: {written}", file=out)
    print("\n".join(describe(changed, chain)), file=out)
    return 0


def sandbox_store(state_file: Path, endpoint_url: str | None, *, region: str | None = None) -> tuple[Any, Chain]:
    """The sandbox's switches and chain (its chat Lambda's environment, from the state file)."""
    from handlers.settings import Settings

    if not state_file.exists():
        raise SystemExit(f"no sandbox state at {state_file}: start it with make dev")
    state = json.loads(state_file.read_text())
    env = state["regions"][region or state["region"]]["chat_env"]
    settings = Settings.from_env(env)
    store = SandboxSwitches(
        url=endpoint_url or env["AWS_ENDPOINT_URL_APPCONFIGDATA"],
        application=settings.switches_application or "",
        environment=settings.switches_environment or "",
        profile=settings.switches_profile or "",
    )
    return store, chain_from_settings(settings)


def aws_store(
    stack: str, region: str | None, cdk_json: Path, *, client: Any = None, cfn: Any = None
) -> tuple[Any, Chain]:
    """A deployed API stack's switches (its outputs) and the chain its Lambdas call (cdk.json)."""
    import boto3

    from tools.models_report import load_config
    from tools.stack_outputs import outputs_by_prefix

    config = load_config(cdk_json)
    if region is None and client is None and stack.endswith("-Api-DR"):
        region = config.dr_region  # the DR API stack lives in the DR region, whatever the default region is
    elif region is None and client is None and stack.endswith("-Api"):
        region = config.primary_region
    client = client or boto3.client("appconfig", region_name=region)
    application, environment, profile, strategy = outputs_by_prefix(
        stack, region, OUTPUTS, kind="an API stack (deployed with runtime switches)", client=cfn
    )
    store = HostedSwitches(
        client=client,
        application_id=application,
        environment_id=environment,
        profile_id=profile,
        strategy_id=strategy,
    )
    return store, chain_from_config(config, str(client.meta.region_name))


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--stack", help="AWS: the API stack (e.g. Bulwark-dev-Api, or Bulwark-dev-Api-DR)")
    where.add_argument("--sandbox", action="store_true", help="the running sandbox (its state file)")
    p.add_argument("--region", help="AWS: the stack's region; sandbox: which region's chat Lambda (default primary)")
    p.add_argument("--endpoint-url", help="sandbox: the AppConfig emulator's URL (default: from the state file)")
    p.add_argument("--state", type=Path, default=SANDBOX_STATE, help="the sandbox's state file")
    p.add_argument("--cdk-json", type=Path, default=ROOT / "cdk.json", help="AWS: the config the chain comes from")
    commands = p.add_subparsers(dest="command", required=True)
    commands.add_parser("show", help="every switch as deployed, the chain and the versions it may roll back to")
    setter = commands.add_parser("set", help="one switch's value (JSON for lists and maps)")
    setter.add_argument("key", choices=list(FLAG_DEFAULTS))
    setter.add_argument("value")
    commands.add_parser("unset", help="one switch back to its default").add_argument("key", choices=list(FLAG_DEFAULTS))
    commands.add_parser("reset", help="every switch off")
    commands.add_parser("force-degraded").add_argument("state", choices=["on", "off"])
    version = commands.add_parser("model-version", help="a target calls another of its configured versions")
    version.add_argument("target", help="the target's name, or name@region")
    version.add_argument("version", help="one of its versions (make models lists them), or 'current'")
    commands.add_parser("prompt-version").add_argument("version", help="a catalog version, or 'active'")
    return p


def main(argv: Sequence[str] | None = None, *, out: Any = sys.stdout) -> int:
    args = parser().parse_args(argv)
    if args.sandbox:
        store, chain = sandbox_store(args.state, args.endpoint_url, region=args.region)
    else:
        store, chain = aws_store(args.stack, args.region, args.cdk_json)
    return run(store, chain, args, out)


if __name__ == "__main__":
    sys.exit(main())
