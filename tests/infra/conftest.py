"""Synthesize the whole app once per session, with all three cdk-nag packs applied."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, Stack
from aws_cdk.assertions import Template

from app import build_app

ROOT = Path(__file__).resolve().parents[2]


def cdk_context(**overrides: Any) -> dict[str, Any]:
    context = json.loads((ROOT / "cdk.json").read_text())["context"]
    context["aws:cdk:bundling-stacks"] = []  # no pip bundling in tests
    for key, value in overrides.items():
        context["bulwark"] = {**context["bulwark"], key: value}
    return context


class Synth:
    def __init__(self, app: App) -> None:
        self.app = app
        self.stacks = {child.stack_name: child for child in app.node.children if isinstance(child, Stack)}
        self._templates: dict[str, Template] = {}

    def template(self, name: str) -> Template:
        if name not in self._templates:
            self._templates[name] = Template.from_stack(self.stacks[name])
        return self._templates[name]


@pytest.fixture(scope="session")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    app = App(context=cdk_context(), outdir=str(tmp_path_factory.mktemp("cdk.out")))
    build_app(app)
    app.synth()
    return Synth(app)
