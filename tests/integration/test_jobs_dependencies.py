"""The jobs path when DynamoDB fails after the client's retries: a job whose answer could not be stored is
retried without calling the model again (the idempotency record holds the answer), and a job that could
not read what it needs goes back to the queue instead of towards the DLQ."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError

from tests.integration.test_jobs import call, statuses
from tests.jobs_fixtures import MODEL, jobs_world


def throttle_once(client: Any, operation: str, when: Callable[[dict[str, Any]], bool]) -> list[dict[str, Any]]:
    """The first `operation` call whose parameters match `when` is throttled (as after botocore's retries)."""
    throttled: list[dict[str, Any]] = []

    def handler(params: dict[str, Any], **_: Any) -> None:
        if not throttled and when(params):
            throttled.append(params)
            raise ClientError(
                {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "injected"},
                 "ResponseMetadata": {"HTTPStatusCode": 400}},
                operation,
            )  # fmt: skip

    client.meta.events.register_first(f"before-parameter-build.dynamodb.{operation}", handler)
    return throttled


def test_a_job_whose_answer_could_not_be_stored_is_retried_without_calling_the_model_again() -> None:
    with jobs_world() as world:
        _, body, _ = call(world, "POST", "/jobs", body={"message": "Rome is in Italy. Where is Rome?"})
        finishing = throttle_once(  # the job-table write of the answer (status -> done)
            world.dynamodb,
            "UpdateItem",
            lambda params: params.get("ExpressionAttributeValues", {}).get(":s") == {"S": "done"},
        )

        done = world.pump().run_until(lambda: statuses(world, [body["job_id"]]) == ["done"], timeout_s=20)

        assert done and len(finishing) == 1  # it failed once, then the redelivery stored it
        assert world.emulator.calls(*MODEL) == 1  # the retry replayed the answer from the idempotency record
        result = call(world, "GET", f"/jobs/{body['job_id']}")[1]["result"]
        assert result["answer"] == "Rome is in Italy." and result["saved"] is True


def test_a_job_that_cannot_read_its_conversation_goes_back_to_the_queue_and_is_answered_later() -> None:
    with jobs_world(job_backoff_s=1) as world:
        _, chat, _ = call(world, "POST", "/chat", body={"message": "Paris is in France."})
        conversation = chat["conversation_id"]
        _, body, _ = call(world, "POST", "/jobs", body={"message": "Where is Paris?", "conversation_id": conversation})
        history = throttle_once(
            world.dynamodb, "GetItem", lambda params: params.get("TableName") == world.settings.table_name
        )

        done = world.pump().run_until(lambda: statuses(world, [body["job_id"]]) == ["done"], timeout_s=30)

        assert done and len(history) == 1
        assert world.emulator.calls(*MODEL) == 2  # the chat turn, then the job once: the failed read cost no call
        assert world.depth(world.dlq_url) == 0
