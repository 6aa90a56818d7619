"""How times go into Redis: sorted-set scores are epoch seconds, TTLs whole milliseconds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


def score(when: datetime) -> float:
    """Epoch seconds of an aware datetime; naive ones would silently mean local time."""
    if when.tzinfo is None or when.utcoffset() is None:
        raise ValueError(f"naive datetime {when.isoformat()}: mailmentor stores aware UTC times")
    return when.timestamp()


def from_score(value: float | str | bytes) -> datetime:
    return datetime.fromtimestamp(float(value), UTC)


def ttl_ms(ttl: timedelta) -> int:
    """A TTL in whole milliseconds, at least 1 (Redis refuses 0)."""
    return max(1, round(ttl.total_seconds() * 1000))
