# Bulwark: every target installs what it needs (pinned) into .venv and node_modules first.
SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c
# This machine's pip config names extra local indexes that may not exist; drop that noise only.
QUIET_PIP := 2>&1 | { grep -v "is ignored: it is neither a file nor a directory" || true; }
.DEFAULT_GOAL := dev

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
WHEELS := .cache/wheels
# checkov pins an older boto3 than the app's: it gets a venv of its own.
CHECKOV_VENV := .venv-checkov
# Offline, quiet CDK: no notices, no version check, no telemetry, no AWS credentials (no STS calls).
CDK_ENV := env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY -u AWS_SESSION_TOKEN -u AWS_PROFILE \
	CDK_DISABLE_VERSION_CHECK=1 JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION=20 AWS_EC2_METADATA_DISABLED=true
CDK := $(CDK_ENV) npx --no-install cdk --no-notices
CDK_ENV_LOCAL := env -u AWS_PROFILE JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION=20

.PHONY: install synth nag lint test bench redrive deploy diff clean dev invoke browser lock-lambda drill

$(VENV)/.installed: requirements.txt requirements-dev.txt lambda_src/requirements.txt constraints.txt
	@echo "==> python venv + pinned dependencies"
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt -c constraints.txt $(QUIET_PIP)
	@# The project's import roots (the CDK app, local/, bench/ and the Lambda code) for every tool in the venv,
	@# so no script edits sys.path.
	@printf '%s\n%s\n' "$(CURDIR)" "$(CURDIR)/lambda_src" > "$$($(PY) -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/bulwark.pth"
	@touch $@

# Lambda runtime wheels (manylinux, CPython 3.13), fetched once so synth itself needs no network: exactly the
# hash-locked set (lambda_src/requirements.lock, the same the bundling installs), so no version floats.
$(WHEELS)/.fetched: lambda_src/requirements.lock $(VENV)/.installed
	@echo "==> Lambda runtime wheels (cp313 manylinux, hash-locked)"
	@mkdir -p $(WHEELS)
	@$(PY) -m pip download --quiet --disable-pip-version-check --require-hashes -r lambda_src/requirements.lock \
		-d $(WHEELS) --platform manylinux2014_x86_64 --implementation cp --python-version 3.13 --only-binary=:all: \
		$(QUIET_PIP)
	@touch $@

# After changing lambda_src/requirements.txt or constraints.txt: re-resolve, download and hash the Lambda wheels.
lock-lambda: $(VENV)/.installed  ## regenerate lambda_src/requirements.lock (every transitive pin + wheel sha256)
	@$(PY) tools/lock_lambda.py $(QUIET_PIP)

node_modules/.installed: package.json package-lock.json
	@echo "==> pinned CDK CLI (npm ci)"
	@npm ci --no-audit --no-fund --loglevel=error
	@touch $@

install: $(VENV)/.installed $(WHEELS)/.fetched node_modules/.installed

$(CHECKOV_VENV)/.installed: requirements-checkov.txt
	@echo "==> checkov (own venv, pinned)"
	@test -x $(CHECKOV_VENV)/bin/python || $(PYTHON) -m venv $(CHECKOV_VENV)
	@$(CHECKOV_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-checkov.txt $(QUIET_PIP)
	@touch $@

LOCAL_OUT := cdk.out.local
SOURCES := app.py cdk.json $(shell find stacks -name '*.py' 2>/dev/null)

$(LOCAL_OUT)/.stamp: $(VENV)/.installed $(SOURCES)
	@echo "==> synthesizing the templates the sandbox is built from"
	@$(CDK_ENV) $(PY) tools/synth_templates.py $(LOCAL_OUT)
	@touch $@

dev: install $(LOCAL_OUT)/.stamp  ## the main job: the whole app on this machine (Ctrl-C stops it)
	@$(CDK_ENV_LOCAL) $(PY) -m local.sandbox --cdk-out $(LOCAL_OUT) $(if $(PORT),--port $(PORT))

drill: install $(LOCAL_OUT)/.stamp  ## disaster-recovery drill on the two-region sandbox: fail over, restore, fail back, RTO/RPO vs targets (about 13 min; DRILL_QUICK=1: 1-3 min)
	@$(CDK_ENV_LOCAL) $(PY) tools/drill.py --cdk-out $(LOCAL_OUT) $(if $(DRILL_QUICK),--quick) $(ARGS)

invoke: $(VENV)/.installed  ## make invoke FN=chat EVENT=events/chat-post.json [STACK=Bulwark-dev-Api REGION=...]
	@test -n "$(FN)" -a -n "$(EVENT)" || { echo "usage: make invoke FN=chat|worker EVENT=events/<file>.json [STACK=...]"; exit 2; }
	@$(PY) -m local.invoke $(FN) $(EVENT) $(if $(STACK),--stack $(STACK)) $(if $(REGION),--region $(REGION))

browser:  ## Debian's Chromium for the browser test (Playwright drives it; no browser download)
	@command -v chromium >/dev/null || { echo "==> installing chromium (Debian package)"; \
		apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

synth: install $(CHECKOV_VENV)/.installed  ## both regions' templates (with Lambda bundles), cdk-nag reports, cfn-lint, checkov
	@echo "==> cdk synth (both regions, all nag packs)"
	@rm -rf cdk.out
	@start=$$(date +%s%N); $(CDK) synth --quiet; \
		echo "    synth took $$(( ($$(date +%s%N) - start) / 1000000 )) ms"
	@$(MAKE) --no-print-directory nag-report lint-templates

nag: synth  ## alias: the security reviewer's entry point

nag-report:
	@$(PY) tools/nag_report.py cdk.out

lint-templates:
	@echo "==> cfn-lint"
	@$(VENV)/bin/cfn-lint cdk.out/*.template.json --ignore-checks W3005 && echo "    cfn-lint: clean (W3005, the redundant DependsOn CDK emits for its own providers, is ignored)"
	@echo "==> checkov (offline; each skip carries its reason in the template's Metadata.checkov)"
	@BC_SKIP_MAPPING=TRUE $(CHECKOV_VENV)/bin/checkov --framework cloudformation --skip-download --quiet --compact \
		-f cdk.out/*.template.json

lint: $(VENV)/.installed
	@$(VENV)/bin/ruff check .
	@$(VENV)/bin/ruff format --check .
	@$(VENV)/bin/mypy

test: install browser $(CHECKOV_VENV)/.installed  ## the whole suite
	@echo "==> lint + type check"
	@$(MAKE) --no-print-directory lint
	@echo "==> pytest"
	@$(PY) -m pytest

bench: install  ## cold start, failover, burst, sandbox load, ingest, greetings and time-to-first-token benchmarks (BENCH_QUICK=1 for a short run)
	@$(PY) bench/cold_start.py
	@$(PY) bench/failover.py
	@$(PY) bench/burst.py
	@$(PY) bench/load.py
	@$(PY) bench/ingest.py
	@$(PY) bench/greetings.py
	@$(PY) bench/ttft.py

.PHONY: bench-ingest rebuild-index
bench-ingest: install  ## ingest benchmark: corpus vs the embedding quota, rebuild time, recall@k, chat latency with/without retrieval (BENCH_QUICK=1)
	@$(PY) bench/ingest.py

rebuild-index: $(VENV)/.installed  ## re-embed a region's index from its bucket: make rebuild-index STACK=<knowledge stack> REGION=... (or ARGS="--bucket ... --queue-url ... --endpoint-url ...")
	@$(PY) tools/rebuild_index.py $(if $(STACK),--stack $(STACK)) $(if $(REGION),--region $(REGION)) $(ARGS)

redrive: $(VENV)/.installed  ## move jobs DLQ messages back: make redrive STACK=Bulwark-dev-Api (or ARGS="--queue-url ... --dlq-url ... --endpoint-url ...")
	@$(PY) tools/redrive.py $(if $(STACK),--stack $(STACK)) $(if $(REGION),--region $(REGION)) $(ARGS)

deploy: synth
	$(CDK_ENV) npx --no-install cdk deploy --all --app cdk.out --require-approval broadening

diff: install
	$(CDK_ENV) npx --no-install cdk diff --all

clean:
	rm -rf cdk.out $(LOCAL_OUT) .sandbox .pytest_cache .mypy_cache .ruff_cache test-results

.PHONY: fuzz
fuzz: install  ## the hostile-input corpus (tests/property) with Hypothesis's long profile (about 2000 examples a test)
	@HYPOTHESIS_PROFILE=long $(PY) -m pytest tests/property

.PHONY: prompts models
prompts: $(VENV)/.installed  ## the prompt catalog: make prompts ARGS="list | show N | add --file F [--activate] | activate N | rollback | seed" [REGION=...] (sandbox: ARGS="--endpoint-url URL ...")
	@$(PY) tools/prompts.py $(if $(REGION),--region $(REGION)) $(ARGS)

models: $(VENV)/.installed  ## what each region's Lambdas call, in order, with exact model versions and rollback versions (ARGS="--cdk-out cdk.out" checks the templates; "--sandbox" or "--stack Bulwark-dev-Api --region R": what the switches select now)
	@$(PY) tools/models_report.py $(ARGS)

.PHONY: switch
switch: $(VENV)/.installed  ## flip a runtime switch without a deploy: make switch ARGS="--sandbox | --stack Bulwark-dev-Api [--region R]  show | set KEY VALUE | unset KEY | reset | force-degraded on|off | model-version TARGET VERSION|current | prompt-version N|active"
	@$(PY) tools/switch.py $(ARGS)

.PHONY: curate
curate: $(VENV)/.installed  ## curated answers: the model answers curated/questions.json through the gateway; ARGS="--sandbox" (make dev running) or REGION=... (AWS); ARGS="calibrate [--sandbox]": the threshold from curated/calibration.json
	@$(PY) tools/curate.py $(if $(REGION),--region $(REGION)) $(ARGS)

.PHONY: cost
cost: $(VENV)/.installed  ## idle monthly cost per region, per 1,000 chats and per 1,000 ingested pages (stacks/config/prices.json; ARGS="--cdk-out cdk.out" prices existing templates)
	@$(CDK_ENV) $(PY) tools/cost.py $(ARGS)
