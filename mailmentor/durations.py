"""Durations as people write them in rule files and commands: 30s, 15m, 36h, 3d, 2w, 1mo."""

from __future__ import annotations

import re
from datetime import timedelta

from mailmentor.errors import DurationError

_UNITS: dict[str, timedelta] = {
    "s": timedelta(seconds=1),
    "m": timedelta(minutes=1),
    "h": timedelta(hours=1),
    "d": timedelta(days=1),
    "w": timedelta(weeks=1),
    "mo": timedelta(days=30),
}
_ALIASES = {
    "sec": "s", "secs": "s", "second": "s", "seconds": "s",
    "min": "m", "mins": "m", "minute": "m", "minutes": "m",
    "hr": "h", "hrs": "h", "hour": "h", "hours": "h",
    "day": "d", "days": "d",
    "wk": "w", "wks": "w", "week": "w", "weeks": "w",
    "month": "mo", "months": "mo",
}  # fmt: skip
_PART = re.compile(r"(\d+)\s*([a-z]+)")
HINT = "use 30s, 15m, 36h, 3d, 2w or 1mo"


def parse_duration(text: str) -> timedelta:
    """Read ``3d``, ``1w 2d`` or ``36 hours``; raise DurationError with a hint otherwise."""
    cleaned = str(text).strip().lower()
    if not cleaned:
        raise DurationError(f"empty duration ({HINT})")
    total = timedelta()
    pos = 0
    for match in _PART.finditer(cleaned):
        if cleaned[pos : match.start()].strip(" ,"):
            break
        unit = _ALIASES.get(match.group(2), match.group(2))
        if unit not in _UNITS:
            raise DurationError(f"{text!r} is not a duration ({HINT})")
        total += int(match.group(1)) * _UNITS[unit]
        pos = match.end()
    if pos == 0 or cleaned[pos:].strip():
        raise DurationError(f"{text!r} is not a duration ({HINT})")
    return total


def format_duration(delta: timedelta) -> str:
    """The shortest exact spelling of a duration, inverse of parse_duration for whole units."""
    seconds = int(delta.total_seconds())
    if seconds == 0:
        return "0s"
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
