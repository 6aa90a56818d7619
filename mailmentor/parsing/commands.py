"""One-line reply commands ("done", "snooze 3d", "gave back thanks!") and snooze times.

Only the first non-empty line of the new text is read, so the quoted reminder below a reply can
never be mistaken for a command. Anything that is not a command comes back as UNKNOWN with the
line, so the user can be told what was not understood.
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


_BARE_COMMANDS: dict[str, CommandName] = {
    "advised": CommandName.ADVISED,
    "acted": CommandName.ACTED,
    "done": CommandName.ACTED,
    "reported": CommandName.REPORTED,
    "reported back": CommandName.REPORTED,
    "stop": CommandName.STOP,
    "help": CommandName.HELP,
    "?": CommandName.HELP,
    "reopen": CommandName.REOPEN,
}
_WITH_ARGUMENT = (
    (
        re.compile(r"^(?:gave[\s_-]*back|gaveback)(?=$|[\s:,.!-])[\s:,-]*(.*)$", re.I),
        CommandName.GAVE_BACK,
    ),
    (re.compile(r"^note(?=$|[\s:,-])[\s:,-]*(.*)$", re.I), CommandName.NOTE),
    (re.compile(r"^snooze(?=$|[\s:,-])[\s:,-]*(.*)$", re.I), CommandName.SNOOZE),
)
_WRAPPERS = " \t\"'“”‘’„«»*_`~"
_TRAILING = " \t.!?,;:…" + _WRAPPERS


def _first_line(reply_text: str) -> str | None:
    for line in (reply_text or "")[: MAX_LINE * 20].replace("\r", "\n").split("\n"):
        if not line.strip():
            continue
        if quote_depth(line):
            return None  # the reply starts with quoted text: nothing new to read
        return line.strip()[:MAX_LINE]
    return None


def parse_command(reply_text: str) -> Command | None:
    """The command on the first line of a reply; None when the reply has no new text."""
    try:
        line = _first_line(strip_quoted(reply_text or "") or "")
    except Exception:  # hostile text must not stop command handling
        line = _first_line(reply_text or "")
    if line is None:
        return None
    core = " ".join(line.strip(_WRAPPERS).split())
    if not core:
        return None
    for pattern, name in _WITH_ARGUMENT:
        match = pattern.match(core)
        if match:
            argument = match.group(1).strip(_WRAPPERS)
            if name is CommandName.SNOOZE:
                argument = argument.rstrip(_TRAILING).lower()
            return Command(name, argument)
    bare = core.rstrip(_TRAILING).lower() or core.lower()
    if bare in _BARE_COMMANDS:
        return Command(_BARE_COMMANDS[bare])
    return Command(CommandName.UNKNOWN, line)


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


def resolve_snooze(argument: str, now: datetime, tz: ZoneInfo) -> datetime:
    """When a snooze ends, in UTC: now + a duration, or 09:00 local on the named day."""
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    text = " ".join(str(argument).strip().strip(_WRAPPERS).lower().split()).rstrip(".!,;")
    text = re.sub(r"^(?:until|till|til|to|for|in)\s+", "", text)
    if not text:
        raise DurationError(f"snooze needs a time: 3d, friday, dec 1 or 2026-12-01 ({HINT})")
    try:
        try:
            return (now + parse_duration(text)).astimezone(UTC)
        except DurationError:
            pass
        target = _day_target(text, now, tz)
    except (ValueError, OverflowError) as error:
        if isinstance(error, DurationError):
            raise
        raise DurationError(f"{argument!r} is not a date or duration ({HINT})") from error
    if target is None:
        raise DurationError(
            f"{argument!r} is not a date or duration (use 3d, 2w, friday, tomorrow, dec 1 "
            f"or 2026-12-01)"
        )
    return target
