"""Synthesize the templates without bundling Lambda code (the sandbox runs the code in place).

python tools/synth_templates.py [OUTDIR]     (default cdk.out.local)
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")


def main() -> None:
    from aws_cdk import App

    from app import build_app

    outdir = Path(sys.argv[1] if len(sys.argv) > 1 else ROOT / "cdk.out.local")
    context = json.loads((ROOT / "cdk.json").read_text())["context"]
    context["aws:cdk:bundling-stacks"] = []
    app = App(context=context, outdir=str(outdir))
    build_app(app, nag=False)
    app.synth()
    print(f"    templates in {outdir}")


if __name__ == "__main__":
    main()
