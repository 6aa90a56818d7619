"""Delivery windows and the weekly budget: (input, expected) pairs, time zones from zoneinfo."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailmentor.delivery import digest_slot, next_allowed, week_start, within_budget

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
NIGHT = (time(21, 0), time(8, 0))


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def berlin(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=BERLIN)


# (case id, due, tz, quiet hours, business days only, expected in UTC)
WINDOW_CASES: list[tuple[str, datetime, ZoneInfo, tuple[time, time] | None, bool, datetime]] = [
    ("no rules: due as is", utc("2026-03-04 12:00"), BERLIN, None, False, utc("2026-03-04 12:00")),
    ("daytime", berlin("2026-03-04 10:00"), BERLIN, NIGHT, False, utc("2026-03-04 09:00")),
    ("evening waits for the morning", berlin("2026-03-04 22:30"), BERLIN, NIGHT, False,
     utc("2026-03-05 07:00")),
    ("after midnight waits the same day", berlin("2026-03-05 03:00"), BERLIN, NIGHT, False,
     utc("2026-03-05 07:00")),
    ("start of quiet hours is quiet", berlin("2026-03-04 21:00"), BERLIN, NIGHT, False,
     utc("2026-03-05 07:00")),
    ("end of quiet hours is allowed", berlin("2026-03-05 08:00"), BERLIN, NIGHT, False,
     utc("2026-03-05 07:00")),
    ("a second before quiet hours", berlin("2026-03-04 20:59:59"), BERLIN, NIGHT, False,
     utc("2026-03-04 19:59:59")),
    ("quiet hours within a day", berlin("2026-03-04 12:30"), BERLIN, (time(12), time(13)), False,
     utc("2026-03-04 12:00")),
    ("saturday waits for monday", berlin("2026-03-07 10:00"), BERLIN, None, True,
     utc("2026-03-08 23:00")),
    ("friday night waits for monday morning", berlin("2026-03-06 22:00"), BERLIN, NIGHT, True,
     utc("2026-03-09 07:00")),
    ("sunday night: monday is quiet until 8", berlin("2026-03-08 23:30"), BERLIN, NIGHT, True,
     utc("2026-03-09 07:00")),
    ("friday evening goes out", berlin("2026-03-06 20:00"), BERLIN, NIGHT, True,
     utc("2026-03-06 19:00")),
    ("weekday with business days only", berlin("2026-03-04 03:00"), BERLIN, None, True,
     utc("2026-03-04 02:00")),
    # Europe/Berlin springs forward on Sunday 2026-03-29, 02:00 CET → 03:00 CEST.
    ("spring forward: 08:00 is CEST", berlin("2026-03-28 23:00"), BERLIN, NIGHT, False,
     utc("2026-03-29 06:00")),
    ("spring forward: end in the gap", berlin("2026-03-28 22:00"), BERLIN,
     (time(21), time(2, 30)), False, utc("2026-03-29 01:00")),
    ("spring forward weekend, business days", berlin("2026-03-28 12:00"), BERLIN, None, True,
     utc("2026-03-29 22:00")),
    # ... and falls back on Sunday 2026-10-25, 03:00 CEST → 02:00 CET.
    ("fall back: 08:00 is CET", utc("2026-10-24 21:00"), BERLIN, NIGHT, False,
     utc("2026-10-25 07:00")),
    ("fall back: end happens twice, first wins", utc("2026-10-24 20:00"), BERLIN,
     (time(21), time(2, 30)), False, utc("2026-10-25 00:30")),
    ("due in another offset", datetime(2026, 3, 4, 19, 0, tzinfo=timezone(timedelta(hours=9))),
     NEW_YORK, NIGHT, False, utc("2026-03-04 13:00")),
    ("midnight start", utc("2026-03-04 00:00"), ZoneInfo("UTC"), (time(0), time(6)), False,
     utc("2026-03-04 06:00")),
]  # fmt: skip


@pytest.mark.parametrize(
    ("due", "tz", "quiet", "business", "expected"),
    [c[1:] for c in WINDOW_CASES],
    ids=[c[0] for c in WINDOW_CASES],
)
def test_next_allowed(
    due: datetime,
    tz: ZoneInfo,
    quiet: tuple[time, time] | None,
    business: bool,
    expected: datetime,
) -> None:
    got = next_allowed(due, tz=tz, quiet_hours=quiet, business_days_only=business)
    assert got == expected
    assert got.tzinfo is UTC


def test_next_allowed_refuses_naive_times() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        next_allowed(
            datetime(2026, 3, 4, 12), tz=BERLIN, quiet_hours=None, business_days_only=False
        )


ZONES = [
    BERLIN,
    NEW_YORK,
    ZoneInfo("UTC"),
    ZoneInfo("Australia/Lord_Howe"),  # a 30-minute daylight-saving shift
    ZoneInfo("Asia/Kolkata"),
]


def _allowed(
    moment: datetime, tz: ZoneInfo, quiet: tuple[time, time] | None, business: bool
) -> bool:
    local = moment.astimezone(tz)
    if business and local.weekday() >= 5:
        return False
    if quiet is None:
        return True
    start, end = quiet
    now = local.time()
    return not (start <= now < end if start <= end else now >= start or now < end)


@settings(max_examples=300, deadline=None)
@given(
    due=st.datetimes(
        min_value=datetime(2025, 1, 1), max_value=datetime(2030, 1, 1), timezones=st.just(UTC)
    ),
    tz=st.sampled_from(ZONES),
    quiet=st.none() | st.tuples(st.times(), st.times()).filter(lambda q: q[0] != q[1]),
    business=st.booleans(),
)
def test_next_allowed_is_the_first_allowed_instant(
    due: datetime, tz: ZoneInfo, quiet: tuple[time, time] | None, business: bool
) -> None:
    got = next_allowed(due, tz=tz, quiet_hours=quiet, business_days_only=business)
    assert got >= due
    assert _allowed(got, tz, quiet, business)
    if got > due:  # the window opened exactly then: a moment earlier it was still closed
        assert not _allowed(got - timedelta(microseconds=1), tz, quiet, business)
    assert got - due < timedelta(days=4)


# (case id, due items, sent this week, budget, expected (send now, wait))
T = utc("2026-03-04 09:00")
ITEMS = [("a", T, 1), ("b", T - timedelta(hours=1), 1), ("c", T, 5), ("d", T, 1)]
Items = list[tuple[str, datetime, int]]
BUDGET_CASES: list[tuple[str, Items, int, int | None, tuple[list[str], list[str]]]] = [
    ("no budget: all, most urgent first", ITEMS, 50, None, (["c", "b", "a", "d"], [])),
    ("room for two", ITEMS, 8, 10, (["c", "b"], ["a", "d"])),
    ("room for all", ITEMS, 0, 10, (["c", "b", "a", "d"], [])),
    ("budget spent", ITEMS, 10, 10, ([], ["c", "b", "a", "d"])),
    ("overspent", ITEMS, 12, 10, ([], ["c", "b", "a", "d"])),
    ("nothing due", [], 0, 10, ([], [])),
    ("negative count is zero", ITEMS, -5, 1, (["c"], ["b", "a", "d"])),
    ("naive due times sort as UTC", [("n", datetime(2026, 3, 4, 8), 1), ("a", T, 1)], 0, 1,
     (["n"], ["a"])),
]  # fmt: skip


@pytest.mark.parametrize(
    ("items", "sent", "budget", "expected"),
    [c[1:] for c in BUDGET_CASES],
    ids=[c[0] for c in BUDGET_CASES],
)
def test_within_budget(
    items: list[tuple[str, datetime, int]],
    sent: int,
    budget: int | None,
    expected: tuple[list[str], list[str]],
) -> None:
    assert within_budget(items, sent, budget) == expected


WEEK_CASES: list[tuple[str, datetime, ZoneInfo, datetime]] = [
    ("wednesday", utc("2026-03-04 12:00"), BERLIN, utc("2026-03-01 23:00")),
    ("monday just after local midnight", utc("2026-03-01 23:30"), BERLIN, utc("2026-03-01 23:00")),
    ("sunday late is the week before", berlin("2026-03-08 23:30"), BERLIN, utc("2026-03-01 23:00")),
    ("utc", utc("2026-03-08 23:30"), ZoneInfo("UTC"), utc("2026-03-02 00:00")),
    ("week of the spring change", berlin("2026-03-29 12:00"), BERLIN, utc("2026-03-22 23:00")),
    ("week after it", berlin("2026-03-30 10:00"), BERLIN, utc("2026-03-29 22:00")),
    ("new york", utc("2026-03-02 03:00"), NEW_YORK, utc("2026-02-23 05:00")),
]  # fmt: skip


@pytest.mark.parametrize(
    ("now", "tz", "expected"), [c[1:] for c in WEEK_CASES], ids=[c[0] for c in WEEK_CASES]
)
def test_week_start(now: datetime, tz: ZoneInfo, expected: datetime) -> None:
    got = week_start(now, tz)
    assert got == expected
    assert got.tzinfo is UTC


# (case id, now, day (0 = Monday), local time, tz, expected slot in UTC)
DIGEST_CASES: list[tuple[str, datetime, int, time, ZoneInfo, datetime]] = [
    ("just after", berlin("2026-03-02 08:00"), 0, time(8), BERLIN, utc("2026-03-02 07:00")),
    ("just before", berlin("2026-03-02 07:59"), 0, time(8), BERLIN, utc("2026-02-23 07:00")),
    ("midweek", berlin("2026-03-04 12:00"), 0, time(8), BERLIN, utc("2026-03-02 07:00")),
    ("sunday evening", berlin("2026-03-08 20:00"), 6, time(18), BERLIN, utc("2026-03-08 17:00")),
    # Europe/Berlin moves to summer time on Sun 29 Mar 2026 at 02:00: 02:30 does not exist.
    ("in the DST gap", berlin("2026-03-29 12:00"), 6, time(2, 30), BERLIN, utc("2026-03-29 01:00")),
    ("other zone", utc("2026-03-02 12:00"), 0, time(8), NEW_YORK, utc("2026-02-23 13:00")),
]


@pytest.mark.parametrize(
    ("now", "day", "at", "tz", "expected"),
    [case[1:] for case in DIGEST_CASES],
    ids=[case[0] for case in DIGEST_CASES],
)
def test_digest_slot(now: datetime, day: int, at: time, tz: ZoneInfo, expected: datetime) -> None:
    assert digest_slot(now, day=day, at=at, tz=tz) == expected


@settings(max_examples=200, deadline=None)
@given(
    now=st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1)),
    day=st.integers(0, 6),
    hour=st.integers(0, 23),
)
def test_digest_slot_is_the_latest_within_a_week(now: datetime, day: int, hour: int) -> None:
    aware = now.replace(tzinfo=UTC)
    slot = digest_slot(aware, day=day, at=time(hour), tz=BERLIN)
    # A week with the autumn clock change has 169 hours (hypothesis found 2000-10-29).
    assert aware - timedelta(days=7, hours=1) < slot <= aware
    assert slot.astimezone(BERLIN).weekday() == day
