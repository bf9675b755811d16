# ruff: noqa: RUF001  (the phrases and replies are written with their own languages' punctuation)
"""Greetings, thanks and goodbyes answered at once, without a model call. Pure: no AWS imports.

A message is one only when the WHOLE of it, once normalized, is made of known phrases of one language (hello,
thanks, bye and their equivalents), optionally with a short tail ("there", "a lot", "for your help") or a
capitalized name ("Hi Anna"). Precision first: a false positive steals a real question from the model, a false
negative costs one model call. So a question mark, a long message, a digit or any word outside the tables sends
the message to the model ("thanks, now explain X", "hi, what is RTO", "hello world program in python").

The tables are small data; their normalized form is built on the first message (not at import) and kept.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from core.models import TargetRef

GREETING_TARGET_ID = "greeting"
GREETING_TARGET = TargetRef(model_id=GREETING_TARGET_ID, region="-")
KINDS = ("greeting", "thanks", "goodbye")
# Besides the kinds, a language's table may list tails (after a phrase: "there", "a lot") and openers
# (before one: "ok", "great"): neither makes a message a greeting on its own.
PARTS = (*KINDS, "tail", "opener")
MAX_WORDS = 8  # longer messages always go to the model
MAX_CHARS = 80  # the raw message, and the normalized one
MAX_PHRASE_WORDS = 5  # a configured phrase
QUESTION_MARKS = frozenset("?？¿؟")
# Languages written without spaces: their phrases are matched character by character.
UNSPACED = frozenset({"ja", "zh"})
_LANGUAGE = re.compile(r"^[a-z]{2,3}(-[a-z0-9]{2,8})?$")
# Capitalized words that are never a name after "hello"/"hi" (a program, a product): "Hello World" is a request.
NOT_NAMES = frozenset(
    {"world", "python", "java", "javascript", "js", "rust", "go", "kotlin", "swift", "react", "flask", "django",
     "docker", "kubernetes", "aws", "lambda", "bedrock", "sql", "code", "function", "program", "app", "api", "i",
     "explain", "summarize", "summarise", "help", "translate", "write", "list", "show", "tell", "please", "continue",
     "next", "more", "what", "why", "how", "when", "where", "who", "can", "could", "now", "but", "and", "so"}
)  # fmt: skip

_EN_TAILS = (
    "there", "all", "everyone", "everybody", "team", "folks", "guys", "friend", "mate", "buddy", "again", "bot",
    "assistant", "so much", "a lot", "lots", "very much", "a ton", "a bunch", "loads", "so very much", "too",
    "as well", "to you", "you", "for your help", "for the help", "for helping", "for helping me", "for that",
    "for this", "for the answer", "for the info", "for the information", "for the explanation", "for now",
    "then", "much appreciated", "really", "again",
)  # fmt: skip

# language -> part -> phrases. Written as people type them; normalized (case, accents, punctuation) on first use.
PHRASES: dict[str, dict[str, tuple[str, ...]]] = {
    "en": {
        "greeting": ("hello", "hi", "hey", "hiya", "heya", "howdy", "greetings", "yo", "good morning",
                     "good afternoon", "good evening", "morning", "hello hello", "hey hey", "hi hi"),
        "thanks": ("thanks", "thank you", "thank u", "thx", "thnx", "thanx", "ty", "tysm", "cheers", "many thanks",
                   "thanks a lot", "thank you very much", "much appreciated", "appreciated", "appreciate it",
                   "i appreciate it", "great help", "that helps", "that helped", "that was helpful",
                   "very helpful", "thanks so much"),
        "goodbye": ("bye", "bye bye", "goodbye", "good bye", "see you", "see ya", "see you later", "later",
                    "take care", "good night", "goodnight", "have a nice day", "have a good day",
                    "have a great day", "cya", "farewell", "that s all", "that is all"),
        "tail": _EN_TAILS,
        "opener": ("ok", "okay", "k", "great", "perfect", "awesome", "cool", "nice", "got it", "alright",
                   "all right", "oh", "ah", "well", "wow", "excellent", "brilliant", "super", "understood",
                   "makes sense", "ok great", "oh ok", "sure", "fantastic", "lovely", "wonderful"),
    },
    "es": {
        "greeting": ("hola", "buenos dias", "buenas tardes", "buenas noches", "buenas", "saludos", "que tal"),
        "thanks": ("gracias", "muchas gracias", "mil gracias", "te lo agradezco", "se lo agradezco", "muy amable"),
        "goodbye": ("adios", "hasta luego", "hasta pronto", "hasta manana", "nos vemos", "chao", "chau"),
        "tail": ("a todos", "amigo", "amiga", "de nuevo", "otra vez", "por tu ayuda", "por su ayuda",
                 "por la ayuda", "por todo", "de verdad", "equipo"),
        "opener": ("vale", "ok", "perfecto", "genial", "bueno", "estupendo", "entendido", "claro", "muy bien"),
    },
    "fr": {
        "greeting": ("bonjour", "salut", "bonsoir", "coucou", "bonjour bonjour", "rebonjour"),
        "thanks": ("merci", "merci beaucoup", "merci bien", "mille mercis", "grand merci", "je vous remercie",
                   "je te remercie", "merci infiniment"),
        "goodbye": ("au revoir", "a bientot", "a plus", "a plus tard", "bonne journee", "bonne soiree",
                    "bonne nuit", "a demain", "salut salut"),
        "tail": ("a tous", "a toutes", "tout le monde", "pour votre aide", "pour ton aide", "pour l aide",
                 "pour tout", "encore", "l equipe", "beaucoup"),
        "opener": ("ok", "d accord", "parfait", "super", "genial", "tres bien", "top", "ah", "oh", "entendu"),
    },
    "de": {
        "greeting": ("hallo", "guten morgen", "guten tag", "guten abend", "moin", "moin moin", "servus",
                     "gruss gott", "gruß gott", "hi", "hey", "hallo zusammen", "gruezi", "grüezi"),
        "thanks": ("danke", "danke schon", "danke schön", "danke sehr", "vielen dank", "vielen lieben dank",
                   "herzlichen dank", "besten dank", "dankeschon", "dankeschön", "merci"),
        "goodbye": ("tschuss", "tschüss", "auf wiedersehen", "bis bald", "bis spater", "bis später",
                    "bis morgen", "schonen tag noch", "schönen tag noch", "gute nacht", "ade"),
        "tail": ("zusammen", "allerseits", "an alle", "fur die hilfe", "für die hilfe", "fur deine hilfe",
                 "für deine hilfe", "fur ihre hilfe", "für ihre hilfe", "nochmal", "nochmals", "vielmals"),
        "opener": ("ok", "okay", "super", "perfekt", "prima", "toll", "alles klar", "gut", "sehr gut", "ah"),
    },
    "pt": {
        "greeting": ("ola", "olá", "oi", "bom dia", "boa tarde", "boa noite", "e ai", "e aí", "saudacoes"),
        "thanks": ("obrigado", "obrigada", "muito obrigado", "muito obrigada", "valeu", "brigado", "brigada",
                   "agradecido", "agradecida", "obrigadao", "obrigadão"),
        "goodbye": ("tchau", "adeus", "ate logo", "até logo", "ate mais", "até mais", "ate amanha", "até amanhã",
                    "falou"),
        "tail": ("a todos", "pessoal", "pela ajuda", "por tudo", "de novo", "mais uma vez", "mesmo", "amigo"),
        "opener": ("ok", "beleza", "perfeito", "otimo", "ótimo", "legal", "certo", "show", "entendi"),
    },
    "it": {
        "greeting": ("ciao", "buongiorno", "buon giorno", "buonasera", "buona sera", "salve", "ciao ciao"),
        "thanks": ("grazie", "grazie mille", "grazie tante", "molte grazie", "ti ringrazio", "la ringrazio",
                   "grazie infinite"),
        "goodbye": ("arrivederci", "a presto", "a dopo", "buonanotte", "buona notte", "buona giornata",
                    "a domani", "addio"),
        "tail": ("a tutti", "per l aiuto", "per il tuo aiuto", "per tutto", "ancora", "davvero", "amico"),
        "opener": ("ok", "perfetto", "ottimo", "va bene", "benissimo", "capito", "fantastico", "bene"),
    },
    "nl": {
        "greeting": ("hallo", "hoi", "hey", "goedemorgen", "goedemiddag", "goedenavond", "dag", "hallo allemaal",
                     "hoi hoi"),
        "thanks": ("dank je", "dank je wel", "dank u", "dank u wel", "bedankt", "hartelijk dank", "dankjewel",
                   "dankuwel", "heel erg bedankt", "merci"),
        "goodbye": ("tot ziens", "doei", "dag dag", "tot later", "tot straks", "fijne dag", "welterusten",
                    "tot morgen"),
        "tail": ("allemaal", "voor de hulp", "voor je hulp", "voor uw hulp", "nogmaals", "hoor", "wel"),
        "opener": ("ok", "oke", "oké", "prima", "top", "super", "perfect", "helder", "duidelijk"),
    },
    "ja": {
        "greeting": ("こんにちは", "こんばんは", "おはよう", "おはようございます", "やあ", "どうも", "もしもし",
                     "はじめまして"),
        "thanks": ("ありがとう", "ありがとうございます", "ありがとうございました", "どうもありがとう",
                   "どうもありがとうございます", "サンキュー", "感謝します", "助かりました", "助かります"),
        "goodbye": ("さようなら", "またね", "じゃあね", "おやすみ", "おやすみなさい", "失礼します", "ではまた",
                    "バイバイ"),
        "tail": ("本当に", "ほんとうに", "ね", "よ", "です", "みなさん", "皆さん"),
        "opener": ("了解", "了解です", "わかりました", "なるほど", "はい", "ok", "オッケー"),
    },
    "zh": {
        "greeting": ("你好", "您好", "嗨", "哈喽", "早上好", "下午好", "晚上好", "早安", "大家好", "你们好",
                     "早", "晚安好"),
        "thanks": ("谢谢", "谢谢你", "谢谢您", "多谢", "非常感谢", "感谢", "太感谢了", "谢啦", "谢了", "謝謝",
                   "感謝", "多謝"),
        "goodbye": ("再见", "拜拜", "回头见", "晚安", "明天见", "再見", "下次见"),
        "tail": ("啊", "呀", "啦", "了", "哦", "喔", "大家", "你的帮助", "您的帮助", "帮忙"),
        "opener": ("好的", "好", "明白了", "知道了", "收到", "懂了", "ok", "嗯"),
    },
}  # fmt: skip

# kind -> language -> reply. The user's language when the phrase identifies it, else English.
REPLIES: dict[str, dict[str, str]] = {
    "greeting": {
        "en": "Hello! How can I help you today?",
        "es": "¡Hola! ¿En qué puedo ayudarte hoy?",
        "fr": "Bonjour ! Comment puis-je vous aider aujourd'hui ?",
        "de": "Hallo! Wie kann ich Ihnen heute helfen?",
        "pt": "Olá! Como posso ajudar hoje?",
        "it": "Ciao! Come posso aiutarti oggi?",
        "nl": "Hallo! Waarmee kan ik je vandaag helpen?",
        "ja": "こんにちは！今日はどのようなご用件でしょうか？",
        "zh": "你好！今天有什么可以帮你的吗？",
    },
    "thanks": {
        "en": "You're welcome! Is there anything else I can help with?",
        "es": "¡De nada! ¿Hay algo más en lo que pueda ayudarte?",
        "fr": "Avec plaisir ! Puis-je vous aider pour autre chose ?",
        "de": "Gern geschehen! Kann ich sonst noch helfen?",
        "pt": "De nada! Posso ajudar em mais alguma coisa?",
        "it": "Prego! Posso aiutarti in qualcos'altro?",
        "nl": "Graag gedaan! Kan ik nog ergens anders mee helpen?",
        "ja": "どういたしまして！他にお手伝いできることはありますか？",
        "zh": "不客气！还有什么可以帮你的吗？",
    },
    "goodbye": {
        "en": "Goodbye! Come back any time.",
        "es": "¡Hasta luego! Vuelve cuando quieras.",
        "fr": "Au revoir ! Revenez quand vous voulez.",
        "de": "Auf Wiedersehen! Kommen Sie jederzeit wieder.",
        "pt": "Até logo! Volte quando quiser.",
        "it": "Arrivederci! Torna quando vuoi.",
        "nl": "Tot ziens! Kom gerust terug.",
        "ja": "さようなら！またいつでもどうぞ。",
        "zh": "再见！欢迎随时回来。",
    },
}


@dataclass(frozen=True, kw_only=True)
class Greeting:
    kind: str  # greeting, thanks or goodbye
    language: str  # the table that matched
    reply: str


def normalize(text: str) -> str:
    """Case, width and accents folded (NFKC, casefold, combining marks dropped); every character that is not
    a letter or a digit (punctuation, emoji, symbols) becomes a space; whitespace collapsed."""
    folded = unicodedata.normalize("NFKD", unicodedata.normalize("NFKC", text).casefold())
    kept = "".join(
        char if unicodedata.category(char)[0] in "LN" else " " for char in folded if unicodedata.category(char) != "Mn"
    )
    return " ".join(unicodedata.normalize("NFC", kept).split())


def _units(language: str, text: str) -> tuple[str, ...]:
    """What a phrase or a message is matched on: its words, or its characters in a language without spaces."""
    return tuple(text.replace(" ", "")) if language in UNSPACED else tuple(text.split())


def validate_phrases(raw: Any) -> dict[str, dict[str, tuple[str, ...]]]:
    """Extra phrases from config: {language: {part: [phrase, ...]}}, part one of PARTS. ValueError names the key."""
    if not isinstance(raw, Mapping):
        raise ValueError("greetings phrases must be an object {language: {part: [phrase, ...]}}")
    found: dict[str, dict[str, tuple[str, ...]]] = {}
    for language, parts in raw.items():
        if not isinstance(language, str) or not _LANGUAGE.match(language):
            raise ValueError(f"greetings phrases: {language!r} is not a language code such as en or pt-br")
        if not isinstance(parts, Mapping):
            raise ValueError(f"greetings phrases.{language} must be an object {{part: [phrase, ...]}}")
        for part, phrases in parts.items():
            key = f"greetings phrases.{language}.{part}"
            if part not in PARTS:
                raise ValueError(f"{key}: the part must be one of {', '.join(PARTS)}")
            if not isinstance(phrases, list | tuple) or not all(isinstance(p, str) for p in phrases):
                raise ValueError(f"{key} must be a list of strings")
            for phrase in phrases:
                if QUESTION_MARKS & set(phrase):
                    raise ValueError(f"{key}: {phrase!r} has a question mark: questions always go to the model")
                words = normalize(phrase)
                if not words or any(char.isdigit() for char in words):
                    raise ValueError(f"{key}: {phrase!r} must have letters and no digits")
                if len(words.split()) > MAX_PHRASE_WORDS or len(words) > MAX_CHARS // 2:
                    raise ValueError(f"{key}: {phrase!r} is too long (at most {MAX_PHRASE_WORDS} short words)")
            found.setdefault(language, {})[part] = tuple(phrases)
    return found


def validate_replies(raw: Any) -> dict[str, dict[str, str]]:
    """Replies from config: {kind: {language: reply}}, each 1-500 characters. ValueError names the key."""
    if not isinstance(raw, Mapping):
        raise ValueError("greetings replies must be an object {kind: {language: reply}}")
    found: dict[str, dict[str, str]] = {}
    for kind, by_language in raw.items():
        if kind not in KINDS:
            raise ValueError(f"greetings replies: {kind!r} must be one of {', '.join(KINDS)}")
        if not isinstance(by_language, Mapping):
            raise ValueError(f"greetings replies.{kind} must be an object {{language: reply}}")
        for language, reply in by_language.items():
            if not isinstance(language, str) or not _LANGUAGE.match(language):
                raise ValueError(f"greetings replies.{kind}: {language!r} is not a language code such as en")
            if not isinstance(reply, str) or not reply.strip() or len(reply) > 500:
                raise ValueError(f"greetings replies.{kind}.{language} must be 1-500 characters")
            found.setdefault(kind, {})[language] = reply
    return found


_Index = dict[str, dict[tuple[str, ...], str]]  # language -> phrase units -> part


class GreetingFilter:
    """Classifies a message as a greeting, thanks or goodbye (with the reply to give), or None."""

    def __init__(
        self, *, extra_phrases: Mapping[str, Any] | None = None, replies: Mapping[str, Any] | None = None
    ) -> None:
        self._extra = validate_phrases(extra_phrases or {})
        self._replies = {kind: dict(REPLIES[kind]) for kind in KINDS}
        for kind, by_language in validate_replies(replies or {}).items():
            self._replies[kind].update(by_language)
        self._index: _Index | None = None  # built on the first message, not at cold start

    def _built(self) -> _Index:
        if self._index is None:
            index: _Index = {}
            for language in [*PHRASES, *(name for name in self._extra if name not in PHRASES)]:
                table = index.setdefault(language, {})
                for source in (PHRASES.get(language, {}), self._extra.get(language, {})):
                    for part, phrases in source.items():
                        for phrase in phrases:
                            units = _units(language, normalize(phrase))
                            # A phrase that is also a kind elsewhere in its table keeps the kind (it may open).
                            if units and (table.get(units) in (None, "tail", "opener") or part in KINDS):
                                table[units] = part
            self._index = index
        return self._index

    def classify(self, message: str) -> Greeting | None:
        if len(message) > MAX_CHARS or len(message.split()) > MAX_WORDS or QUESTION_MARKS & set(message):
            return None
        text = normalize(message)
        if not text or len(text.split()) > MAX_WORDS or any(char.isdigit() for char in text):
            return None
        names = _names(message)
        for language, table in self._built().items():
            kinds = _parse(_units(language, text), table, names if language not in UNSPACED else frozenset())
            if kinds:
                kind = "goodbye" if "goodbye" in kinds else "thanks" if "thanks" in kinds else "greeting"
                reply = self._replies[kind].get(language) or self._replies[kind]["en"]
                return Greeting(kind=kind, language=language, reply=reply)
        return None


def _names(message: str) -> frozenset[str]:
    """Words written with a capital then lowercase letters ("Anna"): what may follow "hi" or "thanks" as a name."""
    words = re.findall(r"[^\W\d_]+", unicodedata.normalize("NFKC", message))
    return frozenset(
        normalize(word)
        for word in words
        if 2 <= len(word) <= 20 and word[0].isupper() and word[1:].islower() and normalize(word) not in NOT_NAMES
    )


def _parse(units: tuple[str, ...], table: Mapping[tuple[str, ...], str], names: frozenset[str]) -> set[str]:
    """The kinds the message is made of, when the whole of it is: openers*, then a kind, then kinds, tails
    and at most one name after a kind. Empty when any part is left over."""
    longest = max((len(key) for key in table), default=0)

    def walk(at: int, seen: frozenset[str], named: bool) -> set[str] | None:
        if at == len(units):
            return set(seen) if seen else None
        if seen and not named and units[at] in names and len(units[at]) > 1:
            found = walk(at + 1, seen, True)
            if found:
                return found
        for size in range(min(longest, len(units) - at), 0, -1):
            part = table.get(units[at : at + size])
            if part is None or (part == "tail" and not seen) or (part == "opener" and seen):
                continue
            found = walk(at + size, seen | {part} if part in KINDS else seen, named)
            if found:
                return found
        return None

    return walk(0, frozenset(), False) or set()
