"""Tags and schedules that users put in the service address and in subjects.

People hand a thread to the service by writing to ``mentor+intro@…`` or ``mentor+3d@…``, or by
putting ``[advice]`` in a subject; the tag picks the loop kind and the schedule sets the first
reminder. Everything here is pure (time comes in as an argument) and the address and subject
readers never raise on hostile input; only :func:`resolve_schedule` raises, with a hint.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from email.utils import parseaddr

from mailmentor.durations import parse_duration
from mailmentor.errors import DurationError
from mailmentor.model import Kind
from mailmentor.tokens import parse_reply_address

SCHEDULE_HINT = "use 3d, 2w, 36h, tomorrow, monday, dec1, 5pm, 1730, monday9am or dec1-9am"
#: Time of day for a schedule that names only a day.
DEFAULT_HOUR = 9
#: Anything further ahead than this is a typo, not a plan.
MAX_AHEAD = timedelta(days=3660)
#: Longer specs or tags are never ours; the cap also bounds the work done on hostile input.
MAX_TAG_LENGTH = 64
UNKNOWN_MAX_LENGTH = 100

_KINDS: dict[str, Kind] = {
    "advice": Kind.ADVICE,
    "intro": Kind.INTRO,
    "introduction": Kind.INTRO,
    "mentee": Kind.MENTEE,
    "give": Kind.GIVE,
    "gave": Kind.GIVE,
    "giveback": Kind.GIVE,
    "gaveback": Kind.GIVE,
    "give-back": Kind.GIVE,
    "gave-back": Kind.GIVE,
    "learn": Kind.LEARN,
}
_WEEKDAYS: dict[str, int] = {
    "monday": 0, "mon": 0,
    "tuesday": 1, "tue": 1, "tues": 1,
    "wednesday": 2, "wed": 2,
    "thursday": 3, "thu": 3, "thur": 3, "thurs": 3,
    "friday": 4, "fri": 4,
    "saturday": 5, "sat": 5,
    "sunday": 6, "sun": 6,
}  # fmt: skip
_MONTHS: dict[str, int] = {
    "january": 1, "jan": 1, "february": 2, "feb": 2, "march": 3, "mar": 3,
    "april": 4, "apr": 4, "may": 5, "june": 6, "jun": 6, "july": 7, "jul": 7,
    "august": 8, "aug": 8, "september": 9, "sept": 9, "sep": 9,
    "october": 10, "oct": 10, "november": 11, "nov": 11, "december": 12, "dec": 12,
}  # fmt: skip
_MONTH = "|".join(sorted(_MONTHS, key=len, reverse=True))
_ORDINAL = r"(?:st|nd|rd|th)?"
_DATE_MD = re.compile(rf"({_MONTH})[-._]?(\d{{1,2}}){_ORDINAL}")
_DATE_DM = re.compile(rf"(\d{{1,2}}){_ORDINAL}[-._]?({_MONTH})")
_CLOCK_12 = re.compile(r"(\d{1,2})(?:[:.]?(\d{2}))?(am|pm)")
# 24-hour clock: 17:30, 9:30, 17h, 17h30 (two-digit hour, French style), 1730.
_CLOCK_24 = re.compile(r"(\d{1,2}):(\d{2})|(\d{2})h(\d{2})?|(\d{2})(\d{2})")
_NAMED_TIMES = {"noon": (12, 0), "midnight": (0, 0)}
#: What may sit between a day and a time ("dec1-9am") or between a kind and a schedule.
_SCHEDULE_SEPARATORS = "-._ "
_TAG_SEPARATORS = "+-._ "
_SUBJECT_TAG = re.compile(r"\[([^\[\]\r\n]{1,64})\]\s*")


@dataclass(frozen=True)
class AddressTag:
    """What a tagged service address asks for; all None for the bare service address."""

    kind: Kind | None = None
    #: The schedule spec as written (lower case), e.g. "3d"; resolve it with resolve_schedule.
    schedule: str | None = None
    #: A tag we do not understand; the caller logs it and the loop kind stays advice.
    unknown: str | None = None


@dataclass(frozen=True)
class _Tomorrow:
    pass


@dataclass(frozen=True)
class _Weekday:
    index: int  # Monday is 0, as date.weekday()


@dataclass(frozen=True)
class _Date:
    month: int
    day: int


_Day = _Tomorrow | _Weekday | _Date


@dataclass(frozen=True)
class _Calendar:
    day: _Day | None
    time: tuple[int, int] | None


def kind_for_tag(tag: str) -> Kind | None:
    """The loop kind a tag names (``gave`` → give), or None; case-insensitive, never raises."""
    if not isinstance(tag, str):
        return None
    return _KINDS.get(tag.strip().lower())


def is_schedule(spec: str) -> bool:
    """Whether ``spec`` reads as a schedule, whatever the current time; never raises."""
    return _parse_schedule(spec) is not None


def resolve_schedule(spec: str, now: datetime, tz: tzinfo) -> datetime:
    """When ``spec`` falls after ``now`` in the user's zone ``tz``, as an aware UTC datetime.

    Durations ("3d", "36h") are elapsed time from now, as rule delays are. Days without a time
    mean 09:00 local. Wall-clock times are built in ``tz`` and then converted, so a reminder
    stays at 09:00 across a DST change; a time that does not exist (skipped by DST) lands as
    far after the gap as it was into it. A naive ``now`` is taken as UTC.
    Raises DurationError, naming the spec, when it cannot be read.
    """
    parsed = _parse_schedule(spec)
    if parsed is None:
        raise DurationError(f"{spec!r} is not a schedule ({SCHEDULE_HINT})")
    moment = now if now.tzinfo is not None else now.replace(tzinfo=UTC)
    try:
        now_utc = moment.astimezone(UTC)
        if isinstance(parsed, timedelta):
            return now_utc + parsed
        return _resolve_calendar(parsed, now_utc, tz, spec)
    except DurationError:
        raise
    except (OverflowError, ValueError) as exc:
        raise DurationError(f"{spec!r} falls outside the calendar ({SCHEDULE_HINT})") from exc


def service_tag(address: str, service_address: str) -> AddressTag | None:
    """The tag in ``address`` if it is the service address or a tagged variant, else None.

    ``mentor+intro@x`` names a kind, ``mentor+3d@x`` a schedule, ``mentor+intro-3d@x`` both.
    When the service itself is a plus address (``me+mentor@x``) the tag follows a '-' as in
    :func:`mailmentor.tokens.reply_address` (``me+mentor-intro@x``); a '+' is accepted too.
    Reminder reply addresses (``…+r-<loop>-<token>``) are commands, not tags: they give None,
    as does anything under the reserved ``r-`` prefix. Case-insensitive; never raises.
    """
    if not isinstance(address, str) or not isinstance(service_address, str):
        return None
    local, domain = _address_parts(address)
    service_local, service_domain = _address_parts(service_address)
    if not local or not service_local or not domain or domain != service_domain:
        return None
    if local == service_local:
        return AddressTag()
    separators = "-+" if "+" in service_local else "+"
    if not local.startswith(service_local) or local[len(service_local)] not in separators:
        return None
    rest = local[len(service_local) + 1 :]
    if rest.startswith("r-") or parse_reply_address(address, service_address) is not None:
        return None
    if not rest:
        return AddressTag()
    return _address_tag(rest)


def subject_tags(subject: str) -> tuple[str, tuple[str, ...]]:
    """The subject without its known bracketed tags, and those tags (lower case, in order).

    Only tags that name a kind or a schedule are taken ("[advice]", "[intro 3d]"); others such
    as "[PATCH]" stay. A bare number ("[2026]") is left alone although "1730" is a clock time
    in an address: in subjects it is far more often a year or a ticket. Never raises.
    """
    if not isinstance(subject, str):
        return "", ()
    found: list[str] = []

    def take(match: re.Match[str]) -> str:
        parts = _tag_parts(match.group(1).strip().lower())
        if parts is None or any(part.isdigit() for part in parts):
            return match.group(0)
        found.extend(part for part in parts if part not in found)
        return ""

    cleaned = _SUBJECT_TAG.sub(take, subject)
    if not found:
        return subject, ()
    return cleaned.strip(), tuple(found)


def _address_parts(address: str) -> tuple[str, str]:
    """(local, domain) in lower case from a bare address or a header value; ("", "") if odd."""
    bare = parseaddr(address)[1] if ("<" in address or '"' in address) else address.strip()
    if not bare or any(ch.isspace() or ord(ch) < 32 for ch in bare):
        return "", ""
    local, _, domain = bare.lower().rpartition("@")
    return local, domain


def _address_tag(rest: str) -> AddressTag:
    """Read the part after the separator: a kind, a schedule, both, or something unknown."""
    parsed = _kind_and_schedule(rest)
    if parsed is not None:
        return AddressTag(kind=parsed[0], schedule=parsed[1])
    for index, char in enumerate(rest):
        if char in _TAG_SEPARATORS:
            kind = kind_for_tag(rest[:index])
            if kind is not None:
                return AddressTag(kind=kind, unknown=rest[index + 1 :][:UNKNOWN_MAX_LENGTH])
    return AddressTag(unknown=rest[:UNKNOWN_MAX_LENGTH])


def _kind_and_schedule(text: str) -> tuple[Kind | None, str | None] | None:
    """A kind, a schedule, or both joined by a separator in either order; None otherwise."""
    split = _split_tag(text)
    if split is None:
        return None
    return (kind_for_tag(split[0]) if split[0] else None), split[1]


def _split_tag(text: str) -> tuple[str | None, str | None] | None:
    """(kind text, schedule text) as written, either possibly None; None if not all ours."""
    if not text or len(text) > MAX_TAG_LENGTH:
        return None
    if kind_for_tag(text) is not None:
        return text, None
    if is_schedule(text):
        return None, text
    for index, char in enumerate(text):
        if char not in _TAG_SEPARATORS:
            continue
        left, right = text[:index].strip(), text[index + 1 :].strip()
        if kind_for_tag(left) is not None and is_schedule(right):
            return left, right
        if kind_for_tag(right) is not None and is_schedule(left):
            return right, left
    return None


def _tag_parts(text: str) -> tuple[str, ...] | None:
    """The tags in one bracket ("intro 3d" → intro, 3d), or None if it is not all ours."""
    split = _split_tag(text)
    if split is None:
        return None
    return tuple(part for part in split if part)


def _parse_schedule(spec: str) -> timedelta | _Calendar | None:
    if not isinstance(spec, str):
        return None
    text = spec.strip().lower()
    if not text or len(text) > MAX_TAG_LENGTH:
        return None
    calendar = _parse_calendar(text)
    if calendar is not None:
        return calendar
    try:
        delta = parse_duration(text)
    except (ValueError, OverflowError):
        return None
    if delta <= timedelta(0) or delta > MAX_AHEAD:
        return None
    return delta


def _parse_calendar(text: str) -> _Calendar | None:
    """A day, a time, or a day and a time in either order ("monday9am", "dec1-9am", "9am-fri").

    A date ending in a digit needs a separator before a time starting with one: "dec19am" is
    refused rather than guessed (dec1 9am or dec19?).
    """
    day = _parse_day(text)
    if day is not None:
        return _Calendar(day, None)
    time = _parse_time(text)
    if time is not None:
        return _Calendar(None, time)
    for index in range(1, len(text)):
        head, tail = text[:index], text[index:]
        separated = tail[0] in _SCHEDULE_SEPARATORS
        if separated:
            tail = tail[1:]
        if not tail or (not separated and head[-1].isdigit() and tail[0].isdigit()):
            continue
        day, time = _parse_day(head), _parse_time(tail)
        if day is None or time is None:
            day, time = _parse_day(tail), _parse_time(head)
        if day is not None and time is not None:
            return _Calendar(day, time)
    return None


def _parse_day(text: str) -> _Day | None:
    if text in ("tomorrow", "tmrw"):
        return _Tomorrow()
    if text in _WEEKDAYS:
        return _Weekday(_WEEKDAYS[text])
    if match := _DATE_MD.fullmatch(text):
        month, day = _MONTHS[match.group(1)], int(match.group(2))
    elif match := _DATE_DM.fullmatch(text):
        month, day = _MONTHS[match.group(2)], int(match.group(1))
    else:
        return None
    try:
        date(2000, month, day)  # a leap year, so feb29 is a date (in some years)
    except ValueError:
        return None
    return _Date(month, day)


def _parse_time(text: str) -> tuple[int, int] | None:
    if text in _NAMED_TIMES:
        return _NAMED_TIMES[text]
    if match := _CLOCK_12.fullmatch(text):
        hour, minute = int(match.group(1)), int(match.group(2) or 0)
        if not 1 <= hour <= 12 or minute > 59:
            return None
        return (hour % 12 + (12 if match.group(3) == "pm" else 0), minute)
    if match := _CLOCK_24.fullmatch(text):
        groups = [g for g in match.groups() if g is not None]
        hour, minute = int(groups[0]), int(groups[1]) if len(groups) > 1 else 0
        if hour > 23 or minute > 59:
            return None
        return (hour, minute)
    return None


def _wall(day: date, time: tuple[int, int], tz: tzinfo) -> datetime:
    """A local wall-clock time on ``day`` in ``tz``, as UTC (fold 0: first of a repeated hour)."""
    return datetime(day.year, day.month, day.day, time[0], time[1], tzinfo=tz).astimezone(UTC)


def _resolve_calendar(parsed: _Calendar, now_utc: datetime, tz: tzinfo, spec: str) -> datetime:
    today = now_utc.astimezone(tz).date()
    time = parsed.time or (DEFAULT_HOUR, 0)
    day = parsed.day
    if day is None:
        at = _wall(today, time, tz)
        return at if at > now_utc else _wall(today + timedelta(days=1), time, tz)
    if isinstance(day, _Tomorrow):
        return _wall(today + timedelta(days=1), time, tz)
    if isinstance(day, _Weekday):
        ahead = (day.index - today.weekday() - 1) % 7 + 1
        return _wall(today + timedelta(days=ahead), time, tz)
    for year in range(today.year, today.year + 9):  # feb29 may be up to 8 years away
        try:
            target = date(year, day.month, day.day)
        except ValueError:
            continue
        at = _wall(target, time, tz)
        if at > now_utc:
            return at
    raise DurationError(f"{spec!r} never comes ({SCHEDULE_HINT})")
