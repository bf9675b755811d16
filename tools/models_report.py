"""What each region's Lambdas call, in order: `make models` (issue 11, model version pinning).

    python tools/models_report.py                        # from cdk.json (the config every synth is built from)
    python tools/models_report.py --cdk-out cdk.out      # and checked against the synthesized templates
    python tools/models_report.py --sandbox              # and what the runtime switches select now (make dev)
    python tools/models_report.py --stack Bulwark-dev-Api --region us-east-1   # ... in AWS (your credentials)

Per region: the failover chain as that region's chat and worker Lambdas see it (its own region's targets first),
each entry's exact model version, how it is called (foundation model, system inference profile and where it may
route, application inference profile, provisioned throughput, another provider through LangChain) and the
guardrail applied, and the versions a runtime switch may roll it back to (previous_versions). With --sandbox or
--stack, the switches as deployed: which version each target calls now (model_versions), pins, forced-open
breakers, the chain's order and forced degraded mode. With --cdk-out, the chain in each API stack's Lambda
environment (MODEL_TARGETS) must list the same models in the same order, or the report says where they differ
and exits 1.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from stacks.config import CONTEXT_KEY, AppConfig, ModelTarget

ROOT = Path(__file__).resolve().parents[1]


def load_config(path: Path = ROOT / "cdk.json") -> AppConfig:
    return AppConfig.from_context(json.loads(path.read_text())["context"].get(CONTEXT_KEY))


def how_called(target: ModelTarget) -> str:
    if target.kind == "langchain":
        return f"another provider ({(target.langchain or {}).get('class')})"
    if target.kind == "provisioned":
        return "provisioned throughput (existing)"
    if target.provision_model_units:
        return f"provisioned throughput ({target.provision_model_units} model units, created)"
    base = "system inference profile" if target.kind == "system-profile" else "foundation model"
    return f"{base} in an application inference profile" if target.application_profile else base


def guardrail(config: AppConfig, region: str, target: ModelTarget) -> str:
    if not config.guardrail.enabled:
        return "none"
    if target.kind == "langchain":
        return f"{region}'s (ApplyGuardrail)"
    return f"{target.region}'s"


def chain_rows(config: AppConfig, region: str) -> list[dict[str, str]]:
    return [
        {
            "order": str(index),
            "model": target.display_name,
            "version": target.version,
            "rollback to": ", ".join(target.previous_versions) or "-",
            "region": target.region,
            "called as": how_called(target),
            "may run in": ",".join(target.destination_regions()),
            "guardrail": guardrail(config, region, target),
        }
        for index, target in enumerate(config.chain_for(region), start=1)
    ]


def render(config: AppConfig) -> str:
    lines = [f"Model chains of {config.prefix} (every entry an exact model version)"]
    for region in config.regions:
        role = "primary" if region == config.primary_region else "DR"
        rows = chain_rows(config, region)
        columns = list(rows[0])
        widths = {column: max(len(column), *(len(row[column]) for row in rows)) for column in columns}
        lines.append(f"\n{region} ({role}): its Lambdas try, in order")
        lines.append("  " + "  ".join(column.ljust(widths[column]) for column in columns).rstrip())
        for row in rows:
            lines.append("  " + "  ".join(row[column].ljust(widths[column]) for column in columns).rstrip())
    return "\n".join(lines)


def switch_lines(document: dict[str, Any], chain: Any) -> list[str]:
    """What the deployed switches change in one region's chain (tools/switch.py reads them)."""
    from core.switches import parse_switches
    from tools.switch import values

    switches, ignored = parse_switches(values(document), targets=chain.targets, versions=chain.versions)
    lines = []
    for name, region in chain.targets:
        pinned = switches.model_version(name, region)
        lines.append(f"  {name}@{region}: calls {pinned + ' (rolled back by switch)' if pinned else 'its model_id'}")
    if switches.pins:
        lines.append(f"  model_pins: {dict(switches.pins)}")
    if switches.force_open:
        lines.append(f"  forced open: {', '.join(sorted(switches.force_open))}")
    if switches.chain_order:
        lines.append(f"  chain order first: {', '.join(switches.chain_order)}")
    if switches.degraded:
        lines.append("  forced degraded: no model is called")
    lines += [f"  ignored by the Lambdas: {problem}" for problem in ignored]
    return lines


def _flatten(value: Any) -> str:
    """A template string, its references (outputs, attributes) shown as placeholders, so the JSON parses."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return separator.join(_flatten(part) for part in parts)
    return "<reference>"


def template_chains(cdk_out: Path, config: AppConfig) -> dict[str, list[tuple[str, str]]]:
    """Per region: (model as shown, region) of each entry of the API Lambda's MODEL_TARGETS, in order."""
    chains: dict[str, list[tuple[str, str]]] = {}
    for region, stack in (
        (config.primary_region, f"{config.prefix}-Api"),
        (config.dr_region, f"{config.prefix}-Api-DR"),
    ):
        path = cdk_out / f"{stack}.template.json"
        if not path.exists():
            raise SystemExit(f"{path} is missing: synthesize first (make synth, or the sandbox's templates)")
        resources = json.loads(path.read_text())["Resources"]
        for resource in resources.values():
            variables = resource.get("Properties", {}).get("Environment", {}).get("Variables", {})
            if resource["Type"] == "AWS::Lambda::Function" and "MODEL_TARGETS" in variables:
                entries = json.loads(_flatten(variables["MODEL_TARGETS"]))
                chains[region] = [(entry.get("name") or entry["model_id"], entry["region"]) for entry in entries]
                break
    return chains


def differences(config: AppConfig, chains: dict[str, list[tuple[str, str]]]) -> list[str]:
    found = []
    for region in config.regions:
        expected = [(target.display_name, target.region) for target in config.chain_for(region)]
        actual = chains.get(region)
        if actual != expected:
            found.append(f"{region}: config says {expected}, the template's Lambda calls {actual}")
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cdk-json", type=Path, default=ROOT / "cdk.json")
    parser.add_argument("--cdk-out", type=Path, help="check the synthesized API stacks' chains against the config")
    parser.add_argument("--sandbox", action="store_true", help="the sandbox's switches now (make dev running)")
    parser.add_argument("--state", type=Path, default=ROOT / ".sandbox" / "state.json", help="the sandbox's state")
    parser.add_argument("--stack", help="an API stack in AWS: its switches now")
    parser.add_argument("--region", help="with --stack: its region")
    args = parser.parse_args(argv)
    config = load_config(args.cdk_json)
    print(render(config))
    if args.sandbox or args.stack:
        from tools import switch

        if args.sandbox:
            state = json.loads(args.state.read_text()) if args.state.exists() else {"regions": {}}
            stores = [(region, *switch.sandbox_store(args.state, None, region=region)) for region in state["regions"]]
        else:
            store, chain = switch.aws_store(args.stack, args.region, args.cdk_json)
            stores = [(args.stack, store, chain)]
        for where, store, chain in stores:
            print(f"\nRuntime switches now ({where}):")
            print("\n".join(switch_lines(store.read(), chain)))
    if args.cdk_out is None:
        return 0
    problems = differences(config, template_chains(args.cdk_out, config))
    if problems:
        print("\nThe synthesized templates differ from the config:\n  " + "\n  ".join(problems))
        return 1
    print(f"\nThe templates in {args.cdk_out} call exactly these chains.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
