"""ModelGateway on fake targets and a fake clock: the decisions, without a network."""

from __future__ import annotations

from collections.abc import Sequence

from core.errors import TargetCallError
from core.gateway import GatewaySettings, ModelGateway
from core.models import Message, ModelReply, TargetRef, Usage
from core.resilience import BreakerSettings, BreakerState


class Scripted:
    """A target that fails with the scripted codes, then answers; records each call's timeout."""

    def __init__(self, name: str, codes: Sequence[str] = ()) -> None:
        self._target = TargetRef(model_id=name, region="r")
        self.codes = list(codes)
        self.timeouts: list[float] = []

    @property
    def target(self) -> TargetRef:
        return self._target

    def call(self, *, system: str, messages: Sequence[Message], timeout_s: float) -> ModelReply:
        self.timeouts.append(timeout_s)
        if self.codes:
            raise TargetCallError(self.codes.pop(0))
        return ModelReply(text=f"from {self._target.model_id}", usage=Usage(), target=self._target)


ASK = [Message(role="user", text="hi")]


def test_a_half_open_probe_is_really_made_even_when_its_timeout_is_below_the_minimum() -> None:
    now = [0.0]
    only = Scripted("only", codes=["ServiceUnavailableException"] * 5)
    gateway = ModelGateway(
        targets=[only],
        settings=GatewaySettings(
            min_timeout_s=10.0, probe_timeout_s=2.0, hedging=False, breaker=BreakerSettings(open_s=1.0)
        ),
        clock=lambda: now[0],
        sleep=lambda s: None,
    )
    for _ in range(5):
        assert gateway.converse(system="s", messages=ASK, deadline_s=25).degraded
    assert gateway.breaker_state(0) is BreakerState.OPEN
    now[0] += 1.5

    reply = gateway.converse(system="s", messages=ASK, deadline_s=25)

    assert reply.text == "from only" and only.timeouts[-1] == 2.0
    assert gateway.breaker_state(0) is BreakerState.CLOSED


def test_the_last_target_retries_transient_errors_within_the_budget_but_earlier_ones_fail_over() -> None:
    first, last = Scripted("first", codes=["ThrottlingException"]), Scripted("last", codes=["ThrottlingException"])
    gateway = ModelGateway(targets=[first, last], settings=GatewaySettings(hedging=False), sleep=lambda s: None)
    for _ in range(20):  # earn budget: 20 calls x 0.1 = 2 retries
        gateway._budget.on_call()

    reply = gateway.converse(system="s", messages=ASK, deadline_s=25)

    assert reply.text == "from last"
    assert len(first.timeouts) == 1  # failed over at once
    assert len(last.timeouts) == 2  # retried once on the last target
