"""Reply commands as people write them ("Thanks! done", "done - signed up for a course",
"snooze a week please", "erledigt") and snooze times.

Only the reply's own lines are read (above any quote; the quoted reminder can never be taken
for a command), a command per line, after greetings and thanks; what follows a command word
and a separator is its note. A line that is no command is prose about the loop (a note) when
it reads like a sentence, else UNKNOWN, so the user can be told what was not understood.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from mailmentor.durations import HINT, parse_duration
from mailmentor.errors import DurationError
from mailmentor.parsing.quoting import quote_depth, strip_quoted

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


#: What a command is called, in English first, then German, French and Spanish; a longer
#: spelling wins over a shorter one it starts with ("reported back" over "reported").
_KEYWORDS: dict[str, CommandName] = {
    # English
    "done": CommandName.ACTED,
    "acted": CommandName.ACTED,
    "did it": CommandName.ACTED,
    "finished": CommandName.ACTED,
    "advised": CommandName.ADVISED,
    "got advice": CommandName.ADVISED,
    "reported": CommandName.REPORTED,
    "reported back": CommandName.REPORTED,
    "gave back": CommandName.GAVE_BACK,
    "gave-back": CommandName.GAVE_BACK,
    "gave_back": CommandName.GAVE_BACK,
    "gaveback": CommandName.GAVE_BACK,
    "snooze": CommandName.SNOOZE,
    "remind me": CommandName.SNOOZE,
    "stop": CommandName.STOP,
    "note": CommandName.NOTE,
    "help": CommandName.HELP,
    "?": CommandName.HELP,
    "reopen": CommandName.REOPEN,
    # Deutsch
    "erledigt": CommandName.ACTED,
    "gemacht": CommandName.ACTED,
    "berichtet": CommandName.REPORTED,
    "zurückgegeben": CommandName.GAVE_BACK,
    "später": CommandName.SNOOZE,
    "erinnere mich": CommandName.SNOOZE,
    "stopp": CommandName.STOP,
    "notiz": CommandName.NOTE,
    "hilfe": CommandName.HELP,
    # Français
    "fait": CommandName.ACTED,
    "terminé": CommandName.ACTED,
    "conseillé": CommandName.ADVISED,
    "rapporté": CommandName.REPORTED,
    "plus tard": CommandName.SNOOZE,
    "rappelle-moi": CommandName.SNOOZE,
    "arrête": CommandName.STOP,
    "aide": CommandName.HELP,
    # Español
    "hecho": CommandName.ACTED,
    "listo": CommandName.ACTED,
    "informado": CommandName.REPORTED,
    "más tarde": CommandName.SNOOZE,
    "recuérdame": CommandName.SNOOZE,
    "parar": CommandName.STOP,
    "nota": CommandName.NOTE,
    "ayuda": CommandName.HELP,
}
_BY_LENGTH = sorted(_KEYWORDS, key=len, reverse=True)
#: Commands whose text after the keyword is their argument, whatever separates it.
_TAKES_ARGUMENT = {CommandName.GAVE_BACK, CommandName.NOTE, CommandName.SNOOZE}
#: What a reply may open with before its command ("Thanks! done", "Hi — acted on it").
_COURTESY = re.compile(
    r"^(?:(?:hi|hello|hey|dear|ok|okay|yes|yep|great|cool|sure|perfect|all right|alright"
    r"|thanks(?: a lot| so much)?|thank you(?: so much)?|many thanks|thx|ty|cheers"
    r"|hallo|danke(?: schön)?|vielen dank|merci(?: beaucoup)?|bonjour|salut|hola|gracias)"
    r"(?:\s+(?:mailmentor|mentor|there|again|all))?(?=$|[\s,.!;:\-–—])[\s,.!;:\-–—]*)+",
    re.I,
)
#: Words that may follow a stage command without changing it ("acted on it", "done already").
_FILLER = re.compile(
    r"^(?:\s+(?:on (?:it|that|this|the advice|your advice)|it|that|already|now|as well)"
    r"|[\s,]+(?:thanks|thank you|please|pls|merci|danke|gracias))(?=$|[\s,.!;:\-–—])",
    re.I,
)
_SEPARATORS = " \t-–—:,.!;"
_WRAPPERS = " \t\"'“”‘’„«»*_`~"
_TRAILING = " \t.!?,;:…" + _WRAPPERS
#: A line this long that is no command is taken as a note about the loop (not a question).
PROSE_WORDS = 5
#: How many of the reply's first lines a command is looked for in.
COMMAND_LINES = 10


def _new_lines(reply_text: str) -> list[str]:
    """The reply's own lines, top to bottom, up to the first quoted one."""
    lines: list[str] = []
    for line in (reply_text or "")[: MAX_LINE * 20].replace("\r", "\n").split("\n"):
        if not line.strip():
            continue
        if quote_depth(line):
            break  # quoted text: nothing new to read below (nor, top-posted, above)
        lines.append(line.strip()[:MAX_LINE])
        if len(lines) >= COMMAND_LINES:
            break
    return lines


def _without_courtesy(line: str) -> str:
    return _COURTESY.sub("", " ".join(line.strip(_WRAPPERS).split()), count=1).strip(_WRAPPERS)


def _keyword_at_start(text: str) -> tuple[CommandName, str] | None:
    """(the command, the text after its keyword) when ``text`` starts with a keyword."""
    lowered = text.lower()
    for keyword in _BY_LENGTH:
        if not lowered.startswith(keyword):
            continue
        rest = text[len(keyword) :]
        if rest[:1].isalnum() or (rest[:1] == "_" and keyword[-1:].isalnum()):
            continue  # "notebook", "snoozefest", "stopped"
        return _KEYWORDS[keyword], rest
    return None


def read_command(line: str) -> Command | None:
    """The command one line says, or None when it says none ("stop by my office")."""
    text = _without_courtesy(line)
    found = _keyword_at_start(text) if text else None
    if found is None:
        return None
    name, rest = found
    if name in _TAKES_ARGUMENT:
        argument = rest.lstrip(_SEPARATORS).strip(_WRAPPERS)
        if name is CommandName.SNOOZE:
            argument = argument.rstrip(_TRAILING).lower()
        return Command(name, argument)
    while True:
        filler = _FILLER.match(rest)
        if filler is None:
            break
        rest = rest[filler.end() :]
    if not rest.strip(_TRAILING):
        return Command(name)
    if rest[:1] in _SEPARATORS.replace(" ", "").replace("\t", "") or rest.lstrip()[:1] in "-–—:":
        note = rest.lstrip(_SEPARATORS).strip(_WRAPPERS).strip()
        return Command(name, note)
    return None  # a word follows the keyword with nothing between: a sentence, not a command


def parse_commands(reply_text: str) -> list[Command]:
    """Every command of a reply, one per line (``done`` then ``snooze 2w``), in order; a
    reply with no command is one note (prose about the loop) or one UNKNOWN."""
    lines = _reply_lines(reply_text)
    if not lines:
        return []
    commands = [command for line in lines if (command := read_command(line)) is not None]
    if commands:
        return commands
    first = next((line for line in lines if _without_courtesy(line)), lines[0])
    words = _without_courtesy(first).split()
    if len(words) >= PROSE_WORDS and not first.rstrip().endswith("?"):
        return [Command(CommandName.NOTE, first.strip(_WRAPPERS))]
    return [Command(CommandName.UNKNOWN, first)]


def _reply_lines(reply_text: str) -> list[str]:
    try:
        return _new_lines(strip_quoted(reply_text or "") or "")
    except Exception:  # hostile text must not stop command handling
        return _new_lines(reply_text or "")


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


_NUMBER_WORDS = {
    "a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6,
    "seven": 7, "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12,
    "a couple of": 2, "a couple": 2, "couple of": 2, "a few": 3, "few": 3,
}  # fmt: skip
_NUMBER_WORD = re.compile(
    r"\b(" + "|".join(sorted(map(re.escape, _NUMBER_WORDS), key=len, reverse=True)) + r")\s+"
    r"(?=(?:sec|min|hour|hr|day|week|wk|month)s?\b)"
)
_POLITE_END = re.compile(r"[\s,.!;]*(?:please|pls|thanks|thank you|thx)?[\s,.!;]*$")


def _spoken(text: str) -> str:
    """``a week`` → ``1 week``, ``ten days please`` → ``10 days``: durations as people say
    them, for parse_duration."""
    text = _POLITE_END.sub("", text)
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
    text = re.sub(r"^(?:until|till|til|to|for|in|on)\s+", "", text)
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
