# ruff: noqa: RUF001  (full-width letters and CJK punctuation are the point of these cases)
"""The greetings filter: positives in every language, near misses that must reach the model, config checks."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.greetings import (
    KINDS,
    MAX_WORDS,
    PHRASES,
    REPLIES,
    GreetingFilter,
    normalize,
    validate_phrases,
    validate_replies,
)

FILTER = GreetingFilter()

# (message, kind, language the reply is in)
POSITIVES = [
    ("hi", "greeting", "en"),
    ("Hello!", "greeting", "en"),
    ("hey there 👋", "greeting", "en"),
    ("Good morning, team", "greeting", "en"),
    ("Hi Anna", "greeting", "en"),
    ("HELLO", "greeting", "en"),
    ("hiya", "greeting", "en"),
    ("thanks", "thanks", "en"),
    ("Thanks a lot!", "thanks", "en"),
    ("thank you so much for your help", "thanks", "en"),
    ("thx", "thanks", "en"),
    ("ok thanks 👍", "thanks", "en"),
    ("Great, thank you!!", "thanks", "en"),
    ("cheers", "thanks", "en"),
    ("much appreciated", "thanks", "en"),
    ("Thanks Bob", "thanks", "en"),
    ("bye", "goodbye", "en"),
    ("thanks, bye!", "goodbye", "en"),
    ("see you later", "goodbye", "en"),
    ("have a nice day", "goodbye", "en"),
    ("¡Hola!", "greeting", "es"),
    ("buenos días", "greeting", "es"),
    ("muchas gracias por tu ayuda", "thanks", "es"),
    ("gracias", "thanks", "es"),
    ("adiós", "goodbye", "es"),
    ("Bonjour", "greeting", "fr"),
    ("salut à tous", "greeting", "fr"),
    ("merci beaucoup", "thanks", "fr"),
    ("Merci !", "thanks", "fr"),
    ("au revoir", "goodbye", "fr"),
    ("bonne journée", "goodbye", "fr"),
    ("Hallo zusammen", "greeting", "de"),
    ("Guten Morgen", "greeting", "de"),
    ("danke schön", "thanks", "de"),
    ("Vielen Dank für die Hilfe", "thanks", "de"),
    ("tschüss", "goodbye", "de"),
    ("olá", "greeting", "pt"),
    ("bom dia", "greeting", "pt"),
    ("muito obrigado", "thanks", "pt"),
    ("valeu", "thanks", "pt"),
    ("tchau", "goodbye", "pt"),
    ("ciao", "greeting", "it"),
    ("buongiorno", "greeting", "it"),
    ("grazie mille", "thanks", "it"),
    ("arrivederci", "goodbye", "it"),
    ("hoi", "greeting", "nl"),
    ("goedemorgen", "greeting", "nl"),
    ("dank je wel", "thanks", "nl"),
    ("bedankt!", "thanks", "nl"),
    ("tot ziens", "goodbye", "nl"),
    ("こんにちは", "greeting", "ja"),
    ("おはようございます！", "greeting", "ja"),
    ("ありがとうございます", "thanks", "ja"),
    ("ありがとう！", "thanks", "ja"),
    ("さようなら", "goodbye", "ja"),
    ("你好", "greeting", "zh"),
    ("您好！", "greeting", "zh"),
    ("谢谢你的帮助", "thanks", "zh"),
    ("好的，谢谢", "thanks", "zh"),
    ("再见", "goodbye", "zh"),
    ("Ｈｅｌｌｏ", "greeting", "en"),  # full-width letters fold (NFKC)
]

NEAR_MISSES = [
    "thanks, now explain X",
    "hi, what is RTO?",
    "hello world program in python",
    "thank you for nothing, why is it broken?",
    "hey can you summarize this",
    "bye bye function in js",
    "Hello World",
    "hi, I need help with my deployment",
    "thanks but that is wrong",
    "thanks! next: how do I rotate keys",
    "good morning, please summarize the report",
    "hello?",
    "hi??",
    "thanks?",
    "ok",
    "okay",
    "yes",
    "no",
    "sure",
    "great",
    "continue",
    "go on",
    "more",
    "hi 123",
    "thanks for the RTO numbers",
    "bye in spanish",
    "how do I say hello in french",
    "translate thank you into german",
    "what does cheers mean",
    "hola, ¿cómo configuro la región?",
    "gracias, ahora explica el RPO",
    "merci, mais pourquoi ça échoue",
    "bonjour, j'ai une question sur Lambda",
    "danke, aber das stimmt nicht",
    "hallo, wie funktioniert das",
    "obrigado, agora explique o cache",
    "ciao, come funziona il failover",
    "bedankt, maar wat is RTO",
    "こんにちは、RTOとは何ですか",
    "ありがとう、次は要約して",
    "你好，请解释一下故障转移",
    "谢谢，但是不对",
    "Thanks Explain",
    "hi summarize",
    "hello docker",
    "say hi",
    "write a goodbye email",
    "thanks in advance for explaining the breaker",
    "hello from the other side of the world",
    "👍",
    "",
    "   ",
    "hi hi hi hi hi hi hi hi hi",
    "thank you thank you thank you thank you thank you",
]


@pytest.mark.parametrize(("message", "kind", "language"), POSITIVES)
def test_a_greeting_thanks_or_goodbye_is_recognized_and_answered_in_its_language(
    message: str, kind: str, language: str
) -> None:
    found = FILTER.classify(message)

    assert found is not None, message
    assert (found.kind, found.language) == (kind, language)
    assert found.reply == REPLIES[kind][language]


@pytest.mark.parametrize("message", NEAR_MISSES)
def test_a_near_miss_goes_to_the_model(message: str) -> None:
    assert FILTER.classify(message) is None


def test_there_are_enough_near_misses_and_every_language_has_positives() -> None:
    assert len(NEAR_MISSES) >= 40
    assert {language for _, _, language in POSITIVES} >= set(PHRASES)
    for language in PHRASES:
        assert {kind for _, kind, lang in POSITIVES if lang == language} == set(KINDS), language


@given(st.text(max_size=60), st.text(max_size=60))
@settings(max_examples=300, deadline=None)
def test_a_message_with_a_question_mark_is_never_a_greeting(before: str, after: str) -> None:
    for mark in "?？¿":
        assert FILTER.classify(f"{before}{mark}{after}") is None
        assert FILTER.classify(f"hi{mark}") is None


@given(st.lists(st.sampled_from(["hi", "thanks", "bye", "hello", "there", "a", "lot", "ok", "merci"]), min_size=1))
@settings(max_examples=300, deadline=None)
def test_a_message_longer_than_the_word_limit_is_never_a_greeting(words: list[str]) -> None:
    message = " ".join(words)
    found = FILTER.classify(message)
    if len(message.split()) > MAX_WORDS:
        assert found is None


@given(st.text(max_size=200))
@settings(max_examples=300, deadline=None)
def test_any_text_is_classified_without_error_and_long_text_never_matches(message: str) -> None:
    found = FILTER.classify(message)
    if len(message.split()) > MAX_WORDS or "?" in message:
        assert found is None
    if found is not None:
        assert found.kind in KINDS and found.reply


def test_normalize_folds_case_width_accents_punctuation_and_emoji() -> None:
    assert normalize("  ¡Buenos   DÍAS!! 🌞 ") == "buenos dias"
    assert normalize("Ｔｈａｎｋｓ…") == "thanks"
    assert normalize("what's up") == "what s up"


def test_extra_phrases_and_replies_from_config_are_used() -> None:
    custom = GreetingFilter(
        extra_phrases={"en": {"greeting": ["ahoy"], "tail": ["matey"]}, "sv": {"thanks": ["tack", "tack så mycket"]}},
        replies={"greeting": {"en": "Ahoy! Ask me anything."}},
    )

    assert custom.classify("Ahoy matey!").reply == "Ahoy! Ask me anything."  # type: ignore[union-attr]
    tack = custom.classify("Tack så mycket!")
    assert tack is not None and (tack.kind, tack.language) == ("thanks", "sv")
    assert tack.reply == REPLIES["thanks"]["en"]  # no Swedish reply configured: English
    assert FILTER.classify("ahoy") is None  # the built-in tables are not changed


def test_a_configured_opener_alone_is_not_a_greeting() -> None:
    custom = GreetingFilter(extra_phrases={"en": {"opener": ["roger"]}})

    assert custom.classify("roger") is None
    assert custom.classify("roger, thanks") is not None


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ([], "must be an object"),
        ({"english": {"greeting": ["hi"]}}, "not a language code"),
        ({"en": {"question": ["hi"]}}, "the part must be one of"),
        ({"en": {"greeting": "hi"}}, "must be a list of strings"),
        ({"en": {"greeting": ["hi?"]}}, "question mark"),
        ({"en": {"greeting": ["!!!"]}}, "must have letters"),
        ({"en": {"greeting": ["one two three four five six"]}}, "too long"),
    ],
)
def test_bad_extra_phrases_are_refused_with_the_key(raw: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        validate_phrases(raw)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"hello": {"en": "Hi"}}, "must be one of"),
        ({"greeting": {"en": ""}}, "1-500 characters"),
        ({"greeting": {"EN": "Hi"}}, "not a language code"),
        ({"greeting": "Hi"}, "must be an object"),
    ],
)
def test_bad_replies_are_refused_with_the_key(raw: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        validate_replies(raw)


def test_the_benchmark_sample_has_no_false_positive_and_every_labelled_kind_is_found() -> None:
    from bench.greetings import load

    sample = load()
    found = [(label, message, FILTER.classify(message)) for label, message in sample]

    assert [message for label, message, match in found if match is not None and label == "other"] == []
    assert [message for label, message, match in found if match is None and label != "other"] == []
    assert all(match.kind == label for label, _, match in found if match is not None)
