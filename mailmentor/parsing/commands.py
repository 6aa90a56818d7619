"""Reply commands as people write them ("Thanks! done", "done - signed up for a course",
"snooze a week please", "¡Listo!", "später 1 Woche") and snooze times.

Only the reply's own lines are read (above any quote; the quoted reminder can never be taken
for a command), a command per line, after greetings and thanks; what follows a command word
and a separator is its note. A line that is no command is prose about the loop (a note) when
it reads like a sentence, else UNKNOWN, so the user can be told what was not understood.
The words live in one table per language (`VOCABULARY`): English first, then German, French
and Spanish, each with its commands, greetings, sign-offs and snooze time words.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from mailmentor.durations import HINT, parse_duration
from mailmentor.errors import DurationError
from mailmentor.parsing.quoting import own_lines

#: Commands read no more than this much of a line.
MAX_LINE = 500
#: Snoozes end at this local time of day when a day (not a duration) is given.
WAKE_TIME = time(9, 0)


class CommandName(StrEnum):
    ADVISED = "advised"
    ACTED = "acted"
    REPORTED = "reported"
    GAVE_BACK = "gave_back"
    SNOOZE = "snooze"
    STOP = "stop"
    NOTE = "note"
    HELP = "help"
    REOPEN = "reopen"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class Command:
    """A parsed reply command; ``argument`` is the note, the snooze text or the unread line."""

    name: CommandName
    argument: str = ""


_C = CommandName


@dataclass(frozen=True)
class Vocabulary:
    """One language's words for replies.

    ``commands``: what each command is called (a longer spelling wins over a shorter one it
    starts with: "reported back" over "reported"). ``reminders``: spellings of snooze that
    need a time after them ("remind me" + "next week", never "remind me what he said").
    ``courtesy``: what may open a line before its command ("Thanks! done"), ``greetings`` too
    when a name follows them ("Hi Alan, done"; also what opens a mentor's mail). ``fillers``: words
    after a command that change nothing ("done already"), ``polite`` the same after a comma
    too ("erledigt, danke"). ``sign_offs``: a
    line of only these ends the reply once a command was read ("Best,", "Viele Grüße").
    ``not_yet``: "not yet", before a snooze ("Not yet - remind me next week"). ``time_words``:
    snooze words in English (units, days, "next week"), ``numbers`` numbers before a unit.
    """

    commands: dict[CommandName, tuple[str, ...]]
    reminders: tuple[str, ...] = ()
    courtesy: tuple[str, ...] = ()
    greetings: tuple[str, ...] = ()
    fillers: tuple[str, ...] = ()
    polite: tuple[str, ...] = ()
    sign_offs: tuple[str, ...] = ()
    not_yet: tuple[str, ...] = ()
    time_words: dict[str, str] = field(default_factory=dict)
    numbers: dict[str, int] = field(default_factory=dict)


ENGLISH = Vocabulary(
    commands={
        _C.ACTED: (
            "done", "acted", "did it", "did that", "done it", "finished", "finished it",
            "completed", "tried it", "all done", "done and dusted", "i did it", "i've done it",
            "i have done it", "i acted on it", "implemented it",
        ),
        _C.ADVISED: (
            "advised", "got advice", "got the advice", "got an answer", "got a reply",
            "got a response", "answered", "he answered", "she answered", "they answered",
            "he replied", "she replied", "they replied", "he wrote back", "she wrote back",
        ),
        _C.REPORTED: (
            "reported", "reported back", "i reported back", "told him", "told her",
            "told them", "let him know", "let her know", "let them know", "report sent",
            "wrote back",
        ),
        _C.GAVE_BACK: (
            "gave back", "gave-back", "gave_back", "gaveback", "gave something back",
            "thanked him", "thanked her", "thanked them",
        ),
        _C.SNOOZE: ("snooze", "snoozed", "postpone", "remind me later"),
        _C.STOP: (
            "stop", "stop it", "stop reminding me", "stop reminders",
            "no more reminders", "drop", "drop it",
        ),
        _C.NOTE: ("note", "nb", "fyi"),
        _C.HELP: ("help", "?", "commands"),
        _C.REOPEN: ("reopen", "resume", "keep it", "keep this one", "keep going"),
    },
    reminders=("remind me", "please remind me", "remind me again"),
    greetings=("hi", "hello", "hey", "dear", "good morning", "good afternoon", "good evening"),
    courtesy=(
        "hi", "hello", "hey", "dear", "ok", "okay", "yes", "yep", "yup", "yeah", "great",
        "cool", "sure", "perfect", "awesome", "nice", "all right", "alright", "so", "well",
        "yay", "finally", "at last", "good news", "update", "quick update", "please", "pls",
        "good morning", "morning", "good afternoon", "good evening", "thanks", "thanks a lot",
        "thanks so much", "thanks again", "thank you", "thank you so much",
        "thank you very much", "many thanks", "thx", "ty", "cheers",
        "thanks for the reminder", "thanks for the nudge", "thank you for the reminder",
        "thank you for the nudge", "hi there", "hello there", "hi again", "hey there",
        "hi mailmentor", "hello mailmentor", "hey mailmentor", "hi mentor", "dear mailmentor",
    ),
    fillers=(
        "on it", "on that", "on this", "on the advice", "on your advice", "on his advice",
        "on her advice", "it", "that", "this", "this one", "this loop", "already", "now",
        "as well", "too", "finally", "at last", "today", "yesterday", "this morning",
        "this week", "last week",
        "last night", "earlier", "just now", "to him", "to her", "to them", "to my mentor",
        "about it", "how it went",
    ),
    polite=("thanks", "thank you", "please", "pls", "finally"),
    sign_offs=(
        "best", "best regards", "regards", "kind regards", "warm regards", "cheers", "thanks",
        "thank you", "many thanks", "thanks again", "all the best", "sincerely", "yours",
        "take care", "talk soon", "br", "rgds", "best wishes", "warmly",
    ),
    not_yet=("not yet",),
    time_words={"next month": "1 month"},
    numbers={
        "a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6,
        "seven": 7, "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12,
        "a couple of": 2, "a couple": 2, "couple of": 2, "a few": 3, "few": 3,
    },
)  # fmt: skip

GERMAN = Vocabulary(
    commands={
        _C.ACTED: (
            "erledigt", "ist erledigt", "schon erledigt", "alles erledigt", "gemacht",
            "hab ich gemacht", "habe ich gemacht", "fertig", "umgesetzt", "ausprobiert",
        ),
        _C.ADVISED: ("rat bekommen", "geantwortet", "hat geantwortet", "er hat geantwortet",
                    "sie hat geantwortet"),
        _C.REPORTED: ("berichtet", "zurückgemeldet", "hab berichtet", "habe berichtet"),
        _C.GAVE_BACK: ("zurückgegeben", "etwas zurückgegeben", "revanchiert", "bedankt"),
        _C.SNOOZE: ("später", "verschieben", "verschoben"),
        _C.STOP: ("stopp", "aufhören", "beenden", "abbrechen"),
        _C.NOTE: ("notiz", "anmerkung"),
        _C.HELP: ("hilfe",),
        _C.REOPEN: ("wieder öffnen", "fortsetzen", "weitermachen"),
    },
    reminders=("erinnere mich", "erinnere mich bitte", "bitte erinnere mich", "erinner mich"),
    greetings=(
        "hallo", "liebe", "lieber", "liebes", "sehr geehrte", "sehr geehrter", "guten morgen",
        "guten tag", "moin", "servus",
    ),
    courtesy=(
        "hallo", "hi", "moin", "servus", "guten morgen", "guten tag", "danke", "danke schön",
        "dankeschön", "vielen dank", "danke für die erinnerung", "super", "ja", "okay",
        "alles klar", "prima", "bitte",
    ),
    fillers=("schon", "bereits", "jetzt", "heute", "gestern", "auch"),
    polite=("danke", "bitte"),
    sign_offs=(
        "viele grüße", "viele grüsse", "grüße", "grüsse", "gruß", "gruss", "beste grüße",
        "liebe grüße", "lg", "vg", "mfg", "mit freundlichen grüßen", "danke", "vielen dank",
        "bis bald", "schöne grüße",
    ),
    not_yet=("noch nicht",),
    time_words={
        "woche": "week", "wochen": "weeks", "tag": "day", "tage": "days", "tagen": "days",
        "monat": "month", "monate": "months", "monaten": "months", "stunde": "hour",
        "stunden": "hours", "morgen": "tomorrow", "montag": "monday", "dienstag": "tuesday",
        "mittwoch": "wednesday", "donnerstag": "thursday", "freitag": "friday",
        "samstag": "saturday", "sonntag": "sunday", "nächste woche": "next week",
        "nächsten woche": "next week", "kommende woche": "next week",
        "nächsten monat": "1 month", "ende des monats": "end of month",
        "monatsende": "end of month", "ende der woche": "end of week", "nächsten": "next",
        "nächster": "next", "kommenden": "next", "für": "for", "bis zum": "until",
        "bis zur": "until", "bis": "until", "am": "on", "ab": "on",
    },
    numbers={
        "ein": 1, "eine": 1, "einen": 1, "einer": 1, "einem": 1, "zwei": 2, "drei": 3,
        "vier": 4, "fünf": 5, "sechs": 6, "sieben": 7, "acht": 8, "neun": 9, "zehn": 10,
        "ein paar": 3, "paar": 3,
    },
)  # fmt: skip

FRENCH = Vocabulary(
    commands={
        _C.ACTED: ("fait", "c'est fait", "terminé", "fini", "c'est fini", "réalisé", "essayé"),
        _C.ADVISED: ("conseillé", "répondu", "a répondu", "il a répondu", "elle a répondu"),
        _C.REPORTED: ("rapporté", "informé", "je l'ai informé", "raconté"),
        _C.GAVE_BACK: ("rendu la pareille", "remercié", "je l'ai remercié"),
        _C.SNOOZE: ("plus tard", "reporter", "reporté", "repousser"),
        _C.STOP: ("arrête", "arrêter", "arrêtez", "arrêt"),
        _C.NOTE: ("remarque",),
        _C.HELP: ("aide",),
        _C.REOPEN: ("rouvrir", "reprendre"),
    },
    reminders=("rappelle-moi", "rappelez-moi", "rappelle moi", "rappelez moi"),
    greetings=("bonjour", "bonsoir", "salut", "cher", "chère", "coucou"),
    courtesy=(
        "bonjour", "bonsoir", "salut", "coucou", "merci", "merci beaucoup", "merci bien",
        "merci pour le rappel", "oui", "d'accord", "super", "parfait", "voilà", "bon",
    ),
    fillers=("déjà", "aujourd'hui", "hier"),
    polite=("merci", "svp", "stp", "s'il vous plaît", "s'il te plaît"),
    sign_offs=(
        "cordialement", "bien cordialement", "bien à vous", "bonne journée", "à bientôt",
        "amitiés", "bises", "salutations", "merci", "bonne soirée",
    ),
    not_yet=("pas encore",),
    time_words={
        "semaine": "week", "semaines": "weeks", "jour": "day", "jours": "days",
        "mois": "months", "heure": "hour", "heures": "hours", "demain": "tomorrow",
        "lundi": "monday", "mardi": "tuesday", "mercredi": "wednesday", "jeudi": "thursday",
        "vendredi": "friday", "samedi": "saturday", "dimanche": "sunday",
        "la semaine prochaine": "next week", "semaine prochaine": "next week",
        "le mois prochain": "1 month", "la fin du mois": "end of month",
        "fin du mois": "end of month", "la fin de la semaine": "end of week",
        "fin de la semaine": "end of week", "à la fin du mois": "end of month",
        "à": "at", "dans": "in", "pour": "for", "pendant": "for",
        "jusqu'à": "until", "jusqu'au": "until", "jusqu'a": "until",
    },
    numbers={
        "un": 1, "une": 1, "deux": 2, "trois": 3, "quatre": 4, "cinq": 5, "six": 6,
        "sept": 7, "huit": 8, "neuf": 9, "dix": 10, "quelques": 3,
    },
)  # fmt: skip

SPANISH = Vocabulary(
    commands={
        _C.ACTED: (
            "hecho", "listo", "ya está", "ya esta", "ya está hecho", "ya lo hice", "terminado",
            "probado",
        ),
        _C.ADVISED: ("aconsejado", "respondió", "me respondió", "ya respondió", "contestó"),
        _C.REPORTED: ("informado", "le informé", "le conté", "reportado"),
        _C.GAVE_BACK: ("devuelto", "le agradecí", "agradecido"),
        _C.SNOOZE: ("más tarde", "mas tarde", "posponer", "pospón", "aplazar"),
        _C.STOP: ("parar", "detener", "basta"),
        _C.NOTE: ("nota",),
        _C.HELP: ("ayuda",),
        _C.REOPEN: ("reabrir", "reanudar"),
    },
    reminders=("recuérdame", "recuerdame", "recuérdamelo"),
    greetings=(
        "hola", "querida", "querido", "estimada", "estimado", "buenos días", "buenas",
        "buenas tardes",
    ),
    courtesy=(
        "hola", "buenas", "buenos días", "buenas tardes", "gracias", "muchas gracias",
        "mil gracias", "gracias por el recordatorio", "vale", "sí", "si", "perfecto",
        "genial", "de acuerdo", "claro", "bueno",
    ),
    fillers=("ya", "hoy", "ayer"),
    polite=("gracias", "por favor"),
    sign_offs=(
        "saludos", "un saludo", "un abrazo", "atentamente", "gracias", "hasta pronto",
        "besos", "cordialmente", "muchas gracias",
    ),
    not_yet=("todavía no", "todavia no", "aún no", "aun no"),
    time_words={
        "semana": "week", "semanas": "weeks", "día": "day", "días": "days", "dia": "day",
        "dias": "days", "mes": "month", "meses": "months", "hora": "hour", "horas": "hours",
        "mañana": "tomorrow", "manana": "tomorrow", "lunes": "monday", "martes": "tuesday",
        "miércoles": "wednesday", "miercoles": "wednesday", "jueves": "thursday",
        "viernes": "friday", "sábado": "saturday", "sabado": "saturday", "domingo": "sunday",
        "la próxima semana": "next week", "la proxima semana": "next week",
        "próxima semana": "next week", "la semana que viene": "next week",
        "el mes que viene": "1 month", "el próximo mes": "1 month",
        "fin de mes": "end of month", "final de mes": "end of month",
        "finales de mes": "end of month", "a fin de mes": "end of month",
        "a finales de mes": "end of month", "fin del mes": "end of month",
        "el próximo": "next", "próximo": "next", "proximo": "next", "en": "in",
        "por": "for", "durante": "for", "hasta el": "until", "hasta": "until", "el": "on",
    },
    numbers={
        "un": 1, "uno": 1, "una": 1, "dos": 2, "tres": 3, "cuatro": 4, "cinco": 5,
        "seis": 6, "siete": 7, "ocho": 8, "nueve": 9, "diez": 10, "unos": 3, "unas": 3,
        "unos pocos": 3, "unas pocas": 3,
    },
)  # fmt: skip

#: Every language, English first; one table each, all read at once (a reply may mix them).
VOCABULARY: dict[str, Vocabulary] = {
    "en": ENGLISH,
    "de": GERMAN,
    "fr": FRENCH,
    "es": SPANISH,
}


def _keywords() -> dict[str, CommandName]:
    found: dict[str, CommandName] = {}
    for vocabulary in VOCABULARY.values():
        for name, spellings in vocabulary.commands.items():
            for spelling in spellings:
                found.setdefault(spelling, name)
    return found


def _alternation(words: Iterable[str]) -> str:
    return "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))


def _every(part: str) -> set[str]:
    return {word for v in VOCABULARY.values() for word in getattr(v, part)}


_KEYWORDS = _keywords()
#: Every language's sign-offs ("best regards", "viele grüße") and greetings ("hi", "liebe"),
#: lower case.
SIGN_OFFS = frozenset(_every("sign_offs"))
GREETINGS = frozenset(_every("greetings"))
_REMINDERS = frozenset(_every("reminders"))
_BY_LENGTH = sorted([*_KEYWORDS, *_REMINDERS], key=len, reverse=True)
#: Commands whose text after the keyword is their argument, whatever separates it.
_TAKES_ARGUMENT = {CommandName.GAVE_BACK, CommandName.NOTE, CommandName.SNOOZE}
_BREAK = r"(?=$|[\s,.!?;:\-–—…()])"
_PUNCT = r"[\s,.!;:\-–—…]*"
#: What a reply may open with before its command ("Thanks! done", "Hi — acted on it",
#: "Hi Alan, done"): courtesy words, or a greeting and one name followed by a comma.
_COURTESY = re.compile(
    rf"^(?:(?:{_alternation(GREETINGS)})\s+[^\W\d_][\w.'-]*\s*[,!:]+\s*"
    rf"|(?:{_alternation(_every('courtesy'))}){_BREAK}{_PUNCT})+",
    re.I,
)
#: Words after a stage command that change nothing ("acted on it", "done already").
_FILLER = re.compile(
    rf"^(?:\s+(?:{_alternation(_every('fillers'))})|[\s,]+(?:{_alternation(_every('polite'))}))"
    rf"{_BREAK}",
    re.I,
)
_SIGN_OFF = re.compile(rf"^(?:{_alternation(SIGN_OFFS)})\s*[,.!]*$", re.I)
_NOT_YET = re.compile(rf"^(?:{_alternation(_every('not_yet'))})\s*[,.;:!\-–—]+\s*", re.I)
#: "done and reported", "erledigt und berichtet": two commands joined on one line.
_AND = re.compile(r"^\s*,?\s*(?:and|&|\+|then|and then|und|et|y)\s+", re.I)
#: A smiley or two at the end of a line (":)", ";-)", ":D", "<3").
_EMOTICONS = re.compile(r"(?:\s*(?:[:;=][-'^]?[)(\]\[DPpO/\\|*3]|<3|\^\^))+\s*$")
_SNOOZE_OBJECT = re.compile(r"^(?:this(?: one| loop)?|it|that)\s+(?=\S)", re.I)
#: Where a snooze's time ends and a remark begins ("snooze 2w - travelling", "2w (away)").
_SNOOZE_REMARK = re.compile(r"\s+[-–—]\s|\s*[;(]|[.!]\s+(?=[^\W\d])")
_SEPARATORS = " \t-–—:,.!;"
_WRAPPERS = " \t\"'“”‘’„«»*_`~¡¿"
_TRAILING = " \t.!?,;:…" + _WRAPPERS
_BRACKETS = {"(": ")", "[": "]", "{": "}"}
#: A line this long that is no command is taken as a note about the loop (not a question).
PROSE_WORDS = 5
#: How many of the reply's first lines a command is looked for in.
COMMAND_LINES = 10
#: At most this many commands are read from one line, and from one reply.
LINE_COMMANDS = 4
REPLY_COMMANDS = 10
#: Snooze words that are no time but still mean "later": the snooze is refused with a hint.
_LATER = frozenset({"", "later", "später", "plus tard", "más tarde", "mas tarde"})


def _is_symbol(char: str) -> bool:
    """Emoji and their modifiers, joiners and variation selectors ("✅", "👍🏽")."""
    return unicodedata.category(char) in ("So", "Sk", "Cf", "Mn", "Cs")


def _trim(text: str) -> str:
    """Without wrapping quotes, stars, emoji and trailing smileys."""
    previous = None
    while text != previous:
        previous = text
        text = _EMOTICONS.sub("", text).strip(_WRAPPERS)
        start, end = 0, len(text)
        while start < end and _is_symbol(text[start]):
            start += 1
        while end > start and _is_symbol(text[end - 1]):
            end -= 1
        text = text[start:end]
    return text


def _without_courtesy(line: str) -> str:
    """The line without what opens it before a command ("Thanks!", "Hi Alan,"), composed
    (NFC: "terminé" is one way of writing it), without wrappers and emoji."""
    text = _trim(" ".join(unicodedata.normalize("NFC", line).split()))
    return _trim(_COURTESY.sub("", text, count=1))


def _lower(text: str) -> str:
    """Lower case, one character for one (so offsets into ``text`` still hold), ’ as '."""
    return "".join(c if len(c.lower()) != 1 else c.lower() for c in text).replace("’", "'")


def _keyword_at_start(text: str) -> tuple[str, str] | None:
    """(the keyword, the text after it) when ``text`` starts with a keyword."""
    lowered = _lower(text)
    for keyword in _BY_LENGTH:
        if not lowered.startswith(keyword):
            continue
        rest = text[len(keyword) :]
        if rest[:1].isalnum() or (rest[:1] and rest[0] in "_'’" and keyword[-1:].isalnum()):
            continue  # "notebook", "snoozefest", "stopped", "done's"
        return keyword, rest
    return None


def _wrapped(text: str) -> bool:
    """Whether one pair of brackets holds the whole text: "(a b)", "((a))", not "(a) (b)"."""
    if len(text) < 2 or text[0] not in _BRACKETS or text[-1] != _BRACKETS[text[0]]:
        return False
    depth = 0
    for char in text[:-1]:
        depth += (char == text[0]) - (char == text[-1])
        if depth == 0:
            return False  # closed before the end: "(a) and (b)"
    return True


def _unwrap(text: str) -> str:
    """``(signed up)`` → ``signed up``: a note in brackets is kept once, without them."""
    text = text.strip()
    while _wrapped(text):
        text = text[1:-1].strip()
    return text


def _note(text: str) -> str:
    """The note after a command: separators, wrappers and brackets off; "" when it only
    thanks ("done - thanks for the reminder!")."""
    note = _unwrap(text.lstrip(_SEPARATORS).strip(_WRAPPERS).strip())
    return note if _without_courtesy(note).strip(_TRAILING) else ""


def _snooze_time(text: str) -> str:
    """The time of a snooze, without "this", a remark after it or trailing punctuation."""
    text = _SNOOZE_OBJECT.sub("", text.lstrip(_SEPARATORS).strip(_WRAPPERS))
    remark = _SNOOZE_REMARK.search(text)
    if remark is not None:
        text = text[: remark.start()]
    return _trim(text.rstrip(_TRAILING)).rstrip(_TRAILING).lower()


def _argument_command(keyword: str, name: CommandName, rest: str) -> list[Command]:
    if name is CommandName.SNOOZE:
        when = _snooze_time(rest)
        if keyword in _REMINDERS and when not in _LATER and not _reads_as_time(when):
            return []  # "remind me what he said": a sentence, not a snooze
        return [Command(name, when)]
    return [Command(name, _note(rest))]


def read_commands(line: str, depth: int = 0) -> list[Command]:
    """The commands one line says, in order ("done and reported back" is two), or []
    when it says none ("stop by my office")."""
    text = _without_courtesy(line)
    if not text or depth >= LINE_COMMANDS:
        return []
    not_yet = _NOT_YET.match(text)
    if not_yet is not None:  # "not yet - remind me next week": only a snooze can follow
        later = read_commands(text[not_yet.end() :], depth + 1)
        return later if later and later[0].name is CommandName.SNOOZE else []
    found = _keyword_at_start(text)
    if found is None:
        return []
    keyword, rest = found
    name = _KEYWORDS.get(keyword, CommandName.SNOOZE)
    if name in _TAKES_ARGUMENT:
        return _argument_command(keyword, name, rest)
    while (filler := _FILLER.match(rest)) is not None:
        rest = rest[filler.end() :]
    rest = _trim(rest) if not rest[:1].isspace() else " " + _trim(rest)
    if not rest.strip(_TRAILING):
        return [Command(name)]
    joined = _AND.match(rest)
    if joined is not None:
        more = read_commands(rest[joined.end() :], depth + 1)
        if more:
            return [Command(name), *more]
    opener = rest.lstrip()[:1]
    if rest[:1] in _SEPARATORS.strip() or opener in "-–—:" or opener in _BRACKETS:
        note = _note(rest)
        more = read_commands(note, depth + 1) if note else []
        if more:  # "done, reported back", "done - snooze 2w"
            return [Command(name), *more]
        return [Command(name, note)]
    return []  # a word follows the keyword with nothing between: a sentence, not a command


def read_command(line: str) -> Command | None:
    """The first command one line says, or None when it says none ("stop by my office")."""
    commands = read_commands(line)
    return commands[0] if commands else None


def parse_commands(reply_text: str) -> list[Command]:
    """Every command of a reply, one per line (``done`` then ``snooze 2w``), in order, up to
    a sign-off ("Best,") after them; a reply with no command is one note (prose about the
    loop) or one UNKNOWN."""
    lines = _reply_lines(reply_text)
    if not lines:
        return []
    commands: list[Command] = []
    for line in lines:
        if commands and _SIGN_OFF.match(_trim(line)):
            break  # the signature and whatever follows it (a disclaimer) are not read
        commands.extend(read_commands(line))
        if len(commands) >= REPLY_COMMANDS:
            return commands[:REPLY_COMMANDS]
    if commands:
        return commands
    first = next((line for line in lines if _without_courtesy(line)), lines[0])
    words = _without_courtesy(first).split()
    if len(words) >= PROSE_WORDS and not first.rstrip().endswith("?"):
        return [Command(CommandName.NOTE, first.strip(_WRAPPERS))]
    return [Command(CommandName.UNKNOWN, first)]


def _reply_lines(reply_text: str) -> list[str]:
    return own_lines(reply_text, max_lines=COMMAND_LINES, max_line=MAX_LINE)


def parse_command(reply_text: str) -> Command | None:
    """The reply's first command (see `parse_commands`); None when it has no new text."""
    commands = parse_commands(reply_text)
    return commands[0] if commands else None


# --- snooze times ---------------------------------------------------------------------------------

_WEEKDAYS = {
    "monday": 0, "mon": 0, "tuesday": 1, "tue": 1, "tues": 1, "wednesday": 2, "wed": 2,
    "thursday": 3, "thu": 3, "thur": 3, "thurs": 3, "friday": 4, "fri": 4, "saturday": 5,
    "sat": 5, "sunday": 6, "sun": 6,
}  # fmt: skip
_MONTHS = {
    "jan": 1, "feb": 2, "mar": 3, "apr": 4, "may": 5, "jun": 6, "jul": 7, "aug": 8,
    "sep": 9, "sept": 9, "oct": 10, "nov": 11, "dec": 12,
}  # fmt: skip
_ISO_DATE = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})$")
_MONTH_DAY = re.compile(r"^([a-z]+)\.?\s*(\d{1,2})(?:st|nd|rd|th)?(?:,?\s*(\d{4}))?$")
_DAY_MONTH = re.compile(r"^(\d{1,2})(?:st|nd|rd|th)?\s*([a-z]+)\.?(?:,?\s*(\d{4}))?$")


def _month(word: str) -> int | None:
    return _MONTHS.get(word[:4]) or _MONTHS.get(word[:3]) if len(word) >= 3 else None


def _wake(day: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, WAKE_TIME, tzinfo=tz).astimezone(UTC)


def _calendar_day(text: str, today: date) -> tuple[date, bool] | None:
    """(the day, whether a year was given) for ISO and "dec 1"/"1 december" spellings."""
    iso = _ISO_DATE.match(text)
    if iso:
        return date(int(iso.group(1)), int(iso.group(2)), int(iso.group(3))), True
    match = _MONTH_DAY.match(text)
    if match and _month(match.group(1)):
        month, day, year = _month(match.group(1)), int(match.group(2)), match.group(3)
    else:
        match = _DAY_MONTH.match(text)
        if not (match and _month(match.group(2))):
            return None
        month, day, year = _month(match.group(2)), int(match.group(1)), match.group(3)
    assert month is not None
    if year:
        return date(int(year), month, day), True
    return date(today.year, month, day), False


def _day_target(text: str, now: datetime, tz: ZoneInfo) -> datetime | None:
    local_today = now.astimezone(tz).date()
    if text in ("tomorrow", "tmrw", "tmr"):
        return _wake(local_today + timedelta(days=1), tz)
    if text == "next week":
        return _wake(local_today + timedelta(days=7 - local_today.weekday()), tz)
    weekday = _WEEKDAYS.get(text.removeprefix("next ").strip())
    if weekday is not None:
        ahead = (weekday - local_today.weekday()) % 7 or 7
        return _wake(local_today + timedelta(days=ahead), tz)
    found = _calendar_day(text, local_today)
    if found is None:
        return None
    day, explicit_year = found
    target = _wake(day, tz)
    if target <= now and not explicit_year:
        target = _wake(day.replace(year=day.year + 1), tz)
    if target <= now:
        raise DurationError(f"{text!r} is in the past")
    return target


def _time_words() -> dict[str, str]:
    """Every language's snooze words in English, "lundi prochain" → "next monday" included."""
    words: dict[str, str] = {}
    for vocabulary in VOCABULARY.values():
        words.update(vocabulary.time_words)
    days = {k: v for k, v in words.items() if v in _WEEKDAYS and " " not in k}
    for foreign, english in days.items():
        for spelling in (f"{foreign} prochain", f"{foreign} que viene", f"el {foreign} que viene"):
            words[spelling] = f"next {english}"
    return words


_TIME_WORDS = _time_words()
_TIME_WORD = re.compile(
    r"(?<![\w'])("
    + "|".join(map(re.escape, sorted(_TIME_WORDS, key=len, reverse=True)))
    + r")(?![\w'])"
)
_NUMBER_WORDS = {w: n for v in VOCABULARY.values() for w, n in v.numbers.items()}
_NUMBER_WORD = re.compile(
    r"\b(" + "|".join(sorted(map(re.escape, _NUMBER_WORDS), key=len, reverse=True)) + r")\s+"
    r"(?=(?:sec|min|hour|hr|day|week|wk|month)s?\b)"
)
_POLITE_END = re.compile(
    r"[\s,.!;]*(?:please|pls|thanks|thank you|thx|bitte|danke|merci|svp|stp"
    r"|s'il vous plaît|s'il te plaît|por favor|gracias)?[\s,.!;]*$"
)


def _spoken(text: str) -> str:
    """``a week`` → ``1 week``, ``ten days please`` → ``10 days``, ``in einer Woche`` →
    ``in 1 week``, ``lundi prochain`` → ``next monday``: times as people say them, in
    English, for parse_duration and the day names below."""
    text = _POLITE_END.sub("", text.replace("’", "'"))
    text = _TIME_WORD.sub(lambda m: _TIME_WORDS[m.group(1)], text)
    return _NUMBER_WORD.sub(lambda m: f"{_NUMBER_WORDS[m.group(1)]} ", text)


def _end_of(text: str, now: datetime, tz: ZoneInfo) -> datetime | None:
    """09:00 local on the last day of this month (``end of month``) or on Friday (``end of
    week``), the next one when that has passed."""
    text = text.replace("the ", "")
    local = now.astimezone(tz).date()
    if text in ("end of month", "month end", "eom"):
        following = (local.replace(day=1) + timedelta(days=32)).replace(day=1)
        target = _wake(following - timedelta(days=1), tz)
        if target <= now:
            after = (following + timedelta(days=32)).replace(day=1)
            target = _wake(after - timedelta(days=1), tz)
        return target
    if text in ("end of week", "end of this week", "eow"):
        ahead = (4 - local.weekday()) % 7
        target = _wake(local + timedelta(days=ahead), tz)
        return target if target > now else _wake(local + timedelta(days=ahead + 7), tz)
    return None


def resolve_snooze(argument: str, now: datetime, tz: ZoneInfo) -> datetime:
    """When a snooze ends, in UTC: now + a duration, or 09:00 local on the named day."""
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    text = _spoken(" ".join(str(argument).strip().strip(_WRAPPERS).lower().split()))
    text = re.sub(r"^(?:(?:until|till|til|to|for|in|on|at)\s+)+", "", text)
    if not text:
        raise DurationError(f"snooze needs a time: 3d, friday, dec 1 or 2026-12-01 ({HINT})")
    try:
        try:
            return (now + parse_duration(text)).astimezone(UTC)
        except DurationError:
            pass
        target = _end_of(text, now, tz) or _day_target(text, now, tz)
    except (ValueError, OverflowError) as error:
        if isinstance(error, DurationError):
            raise
        raise DurationError(f"{argument!r} is not a date or duration ({HINT})") from error
    if target is None:
        raise DurationError(
            f"{argument!r} is not a date or duration (use 3d, a week, 2 weeks, friday, "
            f"tomorrow, end of month, dec 1 or 2026-12-01)"
        )
    return target


#: Any moment will do to tell whether a text reads as a time at all.
_SOME_DAY = datetime(2000, 1, 3, 12, 0, tzinfo=UTC)


def _reads_as_time(text: str) -> bool:
    """Whether ``text`` is a snooze time ("next week", "in 3 Tagen"), whenever it is said."""
    try:
        resolve_snooze(text, _SOME_DAY, ZoneInfo("UTC"))
    except DurationError:
        return False
    return True
