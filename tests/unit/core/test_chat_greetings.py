"""ChatService with the greetings filter: answered at once, stored as a turn, counted, never a model call."""

from __future__ import annotations

from typing import Any

from core.errors import DependencyUnavailable
from core.greetings import GREETING_TARGET, REPLIES, GreetingFilter
from core.models import ChatRequest, Message, Turn, Usage
from tests.unit.core.test_chat import EchoModel, MemoryStore, service


class NoRetrieval:
    def retrieve(self, *args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a greeting needs no retrieval")


class BrokenStore(MemoryStore):
    def append_turn(self, user_id: str, conversation_id: str, *, expected_turns: int, turn: Turn, title: str) -> None:
        raise DependencyUnavailable("the conversation store is unavailable")


def test_a_greeting_is_answered_without_the_model_and_stored_as_a_turn() -> None:
    model, store, counted = EchoModel(), MemoryStore(), []
    chat = service(store, model, greetings=GreetingFilter(), on_greeting=counted.append, retriever=NoRetrieval())

    answer = chat.answer(user_id="u", request=ChatRequest(message="Hi there!"))

    assert model.calls == []
    assert counted == ["greeting"]
    assert (answer.answer, answer.target, answer.usage) == (REPLIES["greeting"]["en"], GREETING_TARGET, Usage())
    assert not answer.degraded and answer.saved and answer.turn == 0
    api = answer.to_api()
    assert api["target"] == {"model_id": "greeting", "region": "-"} and api["usage"]["total_tokens"] == 0
    stored = store.items[("u", "c1")]
    assert stored.title == "Hi there!"
    assert (stored.turns[0].user, stored.turns[0].assistant, stored.turns[0].target) == (
        "Hi there!",
        REPLIES["greeting"]["en"],
        GREETING_TARGET,
    )


def test_the_history_stays_whole_a_later_question_sees_the_greeting_turn() -> None:
    model, store, counted = EchoModel(), MemoryStore(), []
    chat = service(store, model, greetings=GreetingFilter(), on_greeting=counted.append)

    first = chat.answer(user_id="u", request=ChatRequest(message="hola"))
    second = chat.answer(
        user_id="u", request=ChatRequest(message="what is RTO?", conversation_id=first.conversation_id)
    )
    third = chat.answer(user_id="u", request=ChatRequest(message="merci !", conversation_id=first.conversation_id))

    assert second.answer == "echo: what is RTO?" and third.turn == 2
    assert counted == ["greeting", "thanks"]
    ((messages, _),) = model.calls
    assert messages == [
        Message(role="user", text="hola"),
        Message(role="assistant", text=REPLIES["greeting"]["es"]),
        Message(role="user", text="what is RTO?"),
    ]
    assert third.answer == REPLIES["thanks"]["fr"]


def test_a_near_miss_goes_to_the_model() -> None:
    model, counted = EchoModel(), []
    chat = service(MemoryStore(), model, greetings=GreetingFilter(), on_greeting=counted.append)

    answer = chat.answer(user_id="u", request=ChatRequest(message="thanks, now explain X"))

    assert len(model.calls) == 1 and answer.answer == "echo: thanks, now explain X" and counted == []


def test_without_the_filter_every_message_goes_to_the_model() -> None:
    model = EchoModel()

    service(MemoryStore(), model).answer(user_id="u", request=ChatRequest(message="hi"))

    assert len(model.calls) == 1


def test_a_greeting_whose_turn_cannot_be_stored_is_answered_all_the_same() -> None:
    model = EchoModel()
    chat = service(BrokenStore(), model, greetings=GreetingFilter())

    answer = chat.answer(user_id="u", request=ChatRequest(message="thanks"))

    assert model.calls == [] and answer.answer == REPLIES["thanks"]["en"]
    assert not answer.saved and answer.save_error and answer.target == GREETING_TARGET
