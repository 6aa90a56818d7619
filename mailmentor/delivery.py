"""When a due reminder may actually go out: quiet hours, business days and a weekly budget.

Pure functions: every instant comes in as an argument (the caller's Clock), so they are tested
with (input, expected) pairs. Wall-clock rules are applied in the user's zone with ``zoneinfo``,
so a quiet-hours end that falls into a daylight-saving gap still gives a real instant.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, tzinfo

#: Each step moves forward to a weekday start or a quiet-hours end; a handful always suffice.
_MAX_STEPS = 16


def next_allowed(
    due: datetime,
    *,
    tz: tzinfo,
    quiet_hours: tuple[time, time] | None,
    business_days_only: bool,
) -> datetime:
    """The earliest instant at or after ``due`` outside quiet hours and, if asked, on Mon–Fri.

    Quiet hours are ``(start, end)`` local wall times, start included, end excluded; start after
    end wraps past midnight. ``due`` must be aware; the answer is aware UTC.
    """
    if due.tzinfo is None or due.utcoffset() is None:
        raise ValueError(f"due must be timezone-aware, got {due.isoformat()}")
    moment = due.astimezone(UTC)
    for _ in range(_MAX_STEPS):
        local = moment.astimezone(tz)
        if business_days_only and local.weekday() >= 5:
            monday = local.date() + timedelta(days=7 - local.weekday())
            moment = _first_instant_at(monday, time(0, 0), tz)
            continue
        if quiet_hours is not None and _is_quiet(local.time(), quiet_hours):
            end = quiet_hours[1]
            day = local.date() if local.time() < end else local.date() + timedelta(days=1)
            moment = _first_instant_at(day, end, tz)
            continue
        return moment
    return moment


def within_budget(
    due_items: list[tuple[str, datetime, int]], sent_this_week: int, budget: int | None
) -> tuple[list[str], list[str]]:
    """Split items due now, ``(loop_id, due_at, urgency)``, into (send now, wait).

    At most ``budget - sent_this_week`` are sent (all when ``budget`` is None), most urgent
    first: higher urgency, then earlier due, then loop id so the split is stable. Both lists
    come back in that order, so the waiting ones go first once the week's budget allows.
    """
    ranked = sorted(due_items, key=lambda item: (-item[2], _utc(item[1]), item[0]))
    ids = [loop_id for loop_id, _, _ in ranked]
    if budget is None:
        return ids, []
    room = max(0, budget - max(0, sent_this_week))
    return ids[:room], ids[room:]


def week_start(now: datetime, tz: tzinfo) -> datetime:
    """Monday 00:00 local of the ISO week holding ``now``, as aware UTC (budget windows)."""
    local = _utc(now).astimezone(tz)
    return _first_instant_at(local.date() - timedelta(days=local.weekday()), time(0, 0), tz)


def _is_quiet(moment: time, quiet_hours: tuple[time, time]) -> bool:
    start, end = quiet_hours
    moment = moment.replace(tzinfo=None)
    if start <= end:
        return start <= moment < end  # start == end: no quiet hours at all
    return moment >= start or moment < end


def _utc(moment: datetime) -> datetime:
    """Naive instants are taken as UTC so that sorting and comparing never fail."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _first_instant_at(day: date, wall: time, tz: tzinfo) -> datetime:
    """The first instant whose local wall time on ``day`` is ``wall`` or later, in UTC.

    A wall time that happens twice (clocks going back) gives its first occurrence; one that
    never happens (clocks going forward) gives the moment the clocks jumped.
    """
    naive = datetime.combine(day, wall)
    first = naive.replace(tzinfo=tz, fold=0).astimezone(UTC)
    second = naive.replace(tzinfo=tz, fold=1).astimezone(UTC)
    if _wall(first, tz) == naive or _wall(second, tz) == naive:
        return min(c for c in (first, second) if _wall(c, tz) == naive)
    # In a gap: search the jump between the two readings, to the second.
    low, high = min(first, second), max(first, second)
    while high - low > timedelta(seconds=1):
        middle = low + (high - low) / 2
        if _wall(middle, tz) >= naive:
            high = middle
        else:
            low = middle
    return high.replace(microsecond=0)  # zones change offset on whole seconds


def _wall(moment: datetime, tz: tzinfo) -> datetime:
    return moment.astimezone(tz).replace(tzinfo=None)


def digest_slot(now: datetime, *, day: int, at: time, tz: tzinfo) -> datetime:
    """The latest weekly digest moment (weekday ``day``, 0 = Monday, local ``at``) at or before
    ``now``, as aware UTC. The slot names the digest, so each week's is sent once."""
    local = _utc(now).astimezone(tz)
    candidate = local.date() - timedelta(days=(local.weekday() - day) % 7)
    slot = _first_instant_at(candidate, at, tz)
    if slot > _utc(now):
        slot = _first_instant_at(candidate - timedelta(days=7), at, tz)
    return slot
