"""Per-user token budgets (issue 12) in the synthesized stacks: the configured budget reaches the chat and worker
Lambdas in both regions, which may read every region's items of the day and add to their own, and the usage table
they count in is a global table replicated to the DR region."""

from __future__ import annotations

from typing import Any

import pytest
from aws_cdk.assertions import Match

from stacks.config.sections import RequestLimits
from tests.infra.conftest import Synth

API_STACKS = ("Bulwark-dev-Api", "Bulwark-dev-Api-DR")


def _function(synth: Synth, stack: str, handler: str) -> dict[str, Any]:
    found = synth.template(stack).find_resources("AWS::Lambda::Function", {"Properties": {"Handler": handler}})
    (function,) = found.values()
    return function  # type: ignore[no-any-return]


@pytest.mark.parametrize("stack", API_STACKS)
@pytest.mark.parametrize("handler", ["handlers.chat.handler", "handlers.worker.handler"])
def test_the_daily_budget_reaches_the_chat_and_worker_lambdas(synth: Synth, stack: str, handler: str) -> None:
    variables = _function(synth, stack, handler)["Properties"]["Environment"]["Variables"]

    assert variables["DAILY_TOKENS_PER_USER"] == str(RequestLimits().daily_tokens_per_user) == "200000"
    assert "USAGE_TABLE_NAME" in variables


@pytest.mark.parametrize("stack", API_STACKS)
def test_chat_and_worker_may_query_and_add_to_the_usage_table_and_nothing_more(synth: Synth, stack: str) -> None:
    policies = synth.template(stack).find_resources("AWS::IAM::Policy")
    by_role = {
        name: {s.get("Sid"): s for s in policy["Properties"]["PolicyDocument"]["Statement"]}
        for name, policy in policies.items()
    }
    for prefix in ("ChatRole", "JobsWorker"):
        (sids,) = [sids for name, sids in by_role.items() if name.startswith(prefix)]
        assert sorted(sids["UsageCounters"]["Action"]) == ["dynamodb:Query", "dynamodb:UpdateItem"]


def test_the_usage_table_is_global_with_a_replica_in_the_dr_region(synth: Synth) -> None:
    synth.template("Bulwark-dev-Data").has_resource_properties(
        "AWS::DynamoDB::GlobalTable",
        {
            "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            "TimeToLiveSpecification": {"AttributeName": "expires_at", "Enabled": True},
            "Replicas": Match.array_with([Match.object_like({"Region": "us-west-2"})]),
        },
    )
