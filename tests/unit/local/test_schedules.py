"""Scheduled functions in the sandbox: the template's rate() rules, and a schedule that runs on demand, pauses
for an outage and reports its runs. Runs are awaited as events, never timed."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from local.schedules import ScheduledHandler
from local.templates import _schedules


def test_rate_rules_and_schedules_name_their_function_and_period() -> None:
    function = {"Type": "AWS::Lambda::Function", "Properties": {"Handler": "handlers.recovery.handler"}}
    resources = {
        "Sweep": function,
        "Rule": {"Type": "AWS::Events::Rule", "Properties": {
            "ScheduleExpression": "rate(1 minute)", "Targets": [{"Arn": {"Fn::GetAtt": ["Sweep", "Arn"]}}]}},
        "Hourly": {"Type": "AWS::Lambda::Function", "Properties": {"Handler": "handlers.other.handler"}},
        "Schedule": {"Type": "AWS::Scheduler::Schedule", "Properties": {
            "ScheduleExpression": "rate(2 hours)", "Target": {"Arn": {"Fn::GetAtt": ["Hourly", "Arn"]}}}},
        "Off": {"Type": "AWS::Events::Rule", "Properties": {
            "State": "DISABLED", "ScheduleExpression": "rate(5 minutes)",
            "Targets": [{"Arn": {"Fn::GetAtt": ["Hourly", "Arn"]}}]}},
        "Events": {"Type": "AWS::Events::Rule", "Properties": {"EventPattern": {"source": ["aws.s3"]}}},
    }  # fmt: skip
    assert _schedules(resources) == {"Sweep": 60.0, "Hourly": 7200.0}

    resources["Rule"]["Properties"]["ScheduleExpression"] = "cron(0 12 * * ? *)"
    with pytest.raises(ValueError, match="rate"):
        _schedules(resources)


def test_a_schedule_runs_on_trigger_with_a_scheduled_event_and_not_while_paused() -> None:
    events: list[dict[str, Any]] = []
    ran = threading.Event()

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        events.append(event)
        ran.set()
        if len(events) == 2:
            raise RuntimeError("a failed pass")
        return {"adopted": 0}

    schedule = ScheduledHandler(handler, name="recovery", region="us-west-2", every_s=3600).start()
    try:
        assert schedule.trigger(timeout_s=30)
        assert events[0]["detail-type"] == "Scheduled Event" and events[0]["source"] == "aws.events"
        assert events[0]["region"] == "us-west-2" and schedule.last_result == {"adopted": 0}

        assert schedule.trigger(timeout_s=30)  # a failing run is recorded, the schedule goes on
        assert schedule.runs == 2 and len(schedule.errors) == 1

        schedule.pause()
        with pytest.raises(RuntimeError, match="paused"):
            schedule.trigger()
        schedule.resume()
        assert schedule.trigger(timeout_s=30) and schedule.runs == 3
    finally:
        schedule.stop()
