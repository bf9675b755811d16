"""The operator commands' one stack-output helper (tools/stack_outputs.py): outputs by key prefix."""

from __future__ import annotations

import boto3
import pytest
from botocore.stub import Stubber

from tools.stack_outputs import outputs_by_prefix


def cloudformation(outputs: dict[str, str]) -> tuple[object, Stubber]:
    client = boto3.client("cloudformation", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    stub = Stubber(client)
    stack = {
        "StackName": "S",
        "CreationTime": "2026-01-01",
        "StackStatus": "CREATE_COMPLETE",
        "Outputs": [{"OutputKey": key, "OutputValue": value} for key, value in outputs.items()],
    }
    stub.add_response("describe_stacks", {"Stacks": [stack]}, {"StackName": "S"})
    return client, stub


def test_each_output_is_found_by_its_prefix_in_order() -> None:
    client, stub = cloudformation({"JobsJobsDlqUrlB2": "dlq", "JobsJobsQueueUrlA1": "queue", "Other": "x"})
    with stub:
        found = outputs_by_prefix(
            "S", "us-east-1", ("JobsJobsQueueUrl", "JobsJobsDlqUrl"), kind="an API stack", client=client
        )
    assert found == ("queue", "dlq")


def test_a_missing_output_names_itself_and_the_stack_expected() -> None:
    client, stub = cloudformation({"JobsJobsQueueUrlA1": "queue"})
    with stub, pytest.raises(SystemExit, match="stack S has no JobsJobsDlqUrl outputs; is it an API stack"):
        outputs_by_prefix("S", "us-east-1", ("JobsJobsQueueUrl", "JobsJobsDlqUrl"), kind="an API stack", client=client)
