"""How long to wait before trying again: the one backoff of mailmentor's own waits (the
watcher's reconnects and store waits, import, the scheduler, the send actors)."""

from __future__ import annotations


def backoff_delay(attempt: int, initial: float, maximum: float, rand: float) -> float:
    """Exponential backoff with jitter: ``initial`` doubling per ``attempt`` (0-based) up to
    ``maximum``, scaled by ``rand`` in [0, 1) into [50 %, 100 %] of that."""
    base = min(maximum, initial * float(1 << min(attempt, 32)))
    return base * (0.5 + rand / 2)
