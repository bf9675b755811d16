"""The environment contract: one declaration, rendered by the stacks and read back by the Lambdas."""

from __future__ import annotations

import json

import pytest

from handlers.settings import IngestSettings, Settings, TargetSetting, variable_names
from stacks.config import AppConfig
from stacks.lambda_settings import (
    KnowledgeNames,
    TableNames,
    chain_settings,
    chat_settings,
    ingest_settings,
    ingest_sizing,
    worker_settings,
    workflow_settings,
)
from tests.conftest import ROOT, TEST_SETTINGS

CONFIG = AppConfig.from_context(json.loads((ROOT / "cdk.json").read_text())["context"]["bulwark"])
TABLES = TableNames(conversations="c", response_cache="r", jobs="j", idempotency="i", usage="u", documents="d")
TARGETS = chain_settings(CONFIG, "us-east-1", lambda target: (target.model_id, ("gr", "7")))


def test_settings_round_trip_through_the_environment() -> None:
    settings = TEST_SETTINGS.but(worker_rate_per_s=0.1234, shed_to_jobs=True, degraded_status=503)

    assert Settings.from_env(settings.to_env()) == settings


def test_a_missing_required_variable_or_a_malformed_one_names_itself() -> None:
    env = TEST_SETTINGS.to_env()

    with pytest.raises(KeyError, match="TABLE_NAME is required"):
        Settings.from_env({k: v for k, v in env.items() if k != "TABLE_NAME"})
    with pytest.raises(ValueError, match="SHED_TO_JOBS is invalid"):
        Settings.from_env({**env, "SHED_TO_JOBS": "maybe"})
    with pytest.raises(ValueError, match="MODEL_TARGETS is invalid"):
        Settings.from_env({**env, "MODEL_TARGETS": "[]"})


def test_defaults_live_in_the_contract_only() -> None:
    minimal = Settings.from_env({"TABLE_NAME": "t", "MODEL_TARGETS": TEST_SETTINGS.to_env()["MODEL_TARGETS"]})

    assert (minimal.deadline_s, minimal.breaker_open_s, minimal.job_backoff_s, minimal.degraded_status) == (
        25.0,
        30.0,
        5,
        200,
    )
    assert minimal.jobs_queue_url is None and minimal.limits.max_body_bytes == 65536


def test_the_chat_and_worker_environments_come_from_config() -> None:
    chat = chat_settings(CONFIG, tables=TABLES, targets=TARGETS, queue_url="q")
    worker = worker_settings(CONFIG, tables=TABLES, targets=TARGETS, queue_url="q")

    assert chat.degraded_status == CONFIG.gateway.degraded_status and chat.deadline_s == 25.0
    assert chat.breaker_open_s == worker.breaker_open_s == CONFIG.gateway.breaker_open_s
    assert worker.job_backoff_s == CONFIG.jobs.backoff_s and worker.job_deadline_s == CONFIG.jobs.deadline_s
    assert worker.worker_rate_per_s and chat.worker_rate_per_s is None
    assert set(chat.to_env()) <= set(variable_names()) and set(worker.to_env()) <= set(variable_names())
    # Every variable the Lambdas read that has a config behind it is set explicitly by the stack.
    for name in ("BREAKER_OPEN_SECONDS", "JOB_BACKOFF_SECONDS", "DEGRADED_STATUS", "JOBS_QUEUE_URL"):
        assert name in chat.to_env() and name in worker.to_env()


def test_the_workflow_environment_is_the_workers_with_the_workflows_own_settings() -> None:
    worker = worker_settings(CONFIG, tables=TABLES, targets=TARGETS, queue_url="q")
    flow = workflow_settings(CONFIG, tables=TABLES, targets=TARGETS, queue_url="q")

    assert flow.but(workflow_max_wait_s=300, workflow_chapter_chars=12_000, workflow_max_chapters=200) == worker
    env = flow.to_env()
    assert env["WORKFLOW_MAX_WAIT_SECONDS"] == str(CONFIG.workflows.max_wait_s)
    assert env["WORKFLOW_CHAPTER_CHARS"] == str(CONFIG.workflows.chapter_chars)
    assert env["WORKFLOW_MAX_CHAPTERS"] == str(CONFIG.workflows.max_chapters)
    assert "SUMMARIZE_FUNCTION_ARN" not in env  # the workflow starts nothing; the stack sets it on the worker
    assert set(env) <= set(variable_names()) and Settings.from_env(env) == flow


def test_each_targets_concurrency_limit_comes_from_the_gateway_config() -> None:
    config = AppConfig.from_context(
        {
            "models": [{"model_id": "us.amazon.nova-lite-v1:0", "region": "us-east-1"}],
            "gateway": {"concurrency_ceiling": 8, "concurrency_increase": 2, "concurrency_decrease": 0.7},
        }
    )

    for settings in (
        chat_settings(config, tables=TABLES, targets=TARGETS, queue_url="q"),
        worker_settings(config, tables=TABLES, targets=TARGETS, queue_url="q"),
    ):
        env = settings.to_env()
        assert (env["GATEWAY_CONCURRENCY_CEILING"], env["GATEWAY_CONCURRENCY_INCREASE"]) == ("8", "2")
        assert env["GATEWAY_CONCURRENCY_DECREASE"] == "0.7"
        assert Settings.from_env(env).concurrency_decrease == 0.7


def test_the_chain_puts_the_local_region_first_with_its_guardrail() -> None:
    dr = chain_settings(CONFIG, "us-west-2", lambda target: (f"id-{target.region}", ("gr", "1")))

    assert [t.region for t in dr] == ["us-west-2", "us-east-1"]
    # Called by an id (here a stand-in for a created ARN), shown by the configured model.
    assert dr[0] == TargetSetting(
        model_id="id-us-west-2",
        region="us-west-2",
        max_tokens=1024,
        guardrail=("gr", "1"),
        name="us.amazon.nova-lite-v1:0",
    )


@pytest.mark.parametrize("stack", ["Bulwark-dev-Api", "Bulwark-dev-Api-DR"])
def test_every_variable_the_stacks_set_is_in_the_contract(synth, stack: str) -> None:
    functions = synth.template(stack).find_resources("AWS::Lambda::Function")
    ours = [f for f in functions.values() if str(f["Properties"]["Handler"]).startswith("handlers.")]
    # chat, stream, its authorizer, worker, summarize workflow, ingest, jobs recovery, drift; curate in the primary
    # region only
    assert len(ours) == (9 if stack == "Bulwark-dev-Api" else 8)
    for function in ours:
        variables = set(function["Properties"]["Environment"]["Variables"])
        lambda_own = {name for name in variables if name.startswith("POWERTOOLS_")}
        assert variables - lambda_own <= set(variable_names())


def test_a_langchain_target_carries_its_guardrail_secret_and_name_but_no_secret_in_kwargs() -> None:
    config = AppConfig.from_context(
        {
            "models": [
                {"model_id": "us.amazon.nova-lite-v1:0", "region": "us-east-1"},
                {
                    "model_id": "gpt-x",
                    "region": "openai",
                    "label": "GPT X",
                    "langchain": {"class": "pkg.mod:Chat", "kwargs": {"model": "x"}, "secret": "bulwark/openai"},
                },
            ]
        }
    )

    chain = chain_settings(
        config, "us-west-2", lambda target: (target.model_id, ("gr-west", "3")), secret_arn=lambda t: "arn:secret"
    )
    other = chain[1]

    assert other.langchain == {"class": "pkg.mod:Chat", "kwargs": {"model": "x"}}  # the secret's name stays out
    assert other.guardrail == ("gr-west", "3") and other.guardrail_region == "us-west-2"  # the Lambda's region
    assert other.secret_arn == "arn:secret" and other.display_name == "GPT X"
    assert Settings.from_env(TEST_SETTINGS.but(targets=chain).to_env()).targets == chain
    # Without a resolver for ARNs (the sandbox), the configured name is what the Lambda reads.
    assert chain_settings(config, "us-east-1", lambda t: (t.model_id, None))[1].secret_arn == "bulwark/openai"


KNOWLEDGE = KnowledgeNames(documents_bucket="docs", vector_bucket="vectors", vector_index="index")


def test_the_ingest_environment_comes_from_config_and_paces_to_its_share_of_the_embedding_quota() -> None:
    ingest = ingest_settings(CONFIG, tables=TABLES, knowledge=KNOWLEDGE)
    sizing = ingest_sizing(CONFIG)

    assert IngestSettings.from_env(ingest.to_env()) == ingest
    assert ingest.knowledge_enabled and ingest.documents_table_name == "d" and ingest.vector_index_name == "index"
    assert sizing.max_concurrency >= 2
    assert ingest.embed_rate_per_s is not None
    assert ingest.embed_rate_per_s * sizing.max_concurrency == pytest.approx(CONFIG.knowledge.embeds_per_second, 1e-3)
    assert ingest.ingest_deadline_s < CONFIG.knowledge.ingest_timeout_s
    assert (ingest.chunk_chars, ingest.max_receive_count) == (
        CONFIG.knowledge.chunk_chars,
        CONFIG.knowledge.max_receive_count,
    )
    assert set(ingest.to_env()) <= set(variable_names())


def test_chat_and_worker_get_the_knowledge_names_only_when_knowledge_is_deployed() -> None:
    with_knowledge = chat_settings(CONFIG, tables=TABLES, targets=TARGETS, queue_url="q", knowledge=KNOWLEDGE)
    worker = worker_settings(CONFIG, tables=TABLES, targets=TARGETS, queue_url="q", knowledge=KNOWLEDGE)
    without = chat_settings(CONFIG, tables=TABLES, targets=TARGETS, queue_url="q")

    assert with_knowledge.knowledge_enabled and worker.knowledge_enabled and not without.knowledge_enabled
    assert with_knowledge.documents_bucket == "docs" and with_knowledge.retrieval_top_k == CONFIG.knowledge.top_k
    assert Settings.from_env(with_knowledge.to_env()) == with_knowledge
