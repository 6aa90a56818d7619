"""Address tags, subject tags and schedules: (input, expected) tables with an injected now."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailmentor.errors import DurationError
from mailmentor.model import Kind
from mailmentor.tags import (
    AddressTag,
    is_schedule,
    kind_for_tag,
    resolve_schedule,
    service_tag,
    subject_tags,
)
from mailmentor.tokens import reply_address

BERLIN = ZoneInfo("Europe/Berlin")
#: Wednesday 2026-01-07 10:30 in Berlin (CET, UTC+1).
NOW = datetime(2026, 1, 7, 10, 30, tzinfo=BERLIN)
SECRET = b"test-secret"


def utc(year: int, month: int, day: int, hour: int, minute: int) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        # durations: elapsed time from now (09:30 UTC)
        ("3d", utc(2026, 1, 10, 9, 30)),
        ("2w", utc(2026, 1, 21, 9, 30)),
        ("36h", utc(2026, 1, 8, 21, 30)),
        ("90m", utc(2026, 1, 7, 11, 0)),
        ("1w 2d", utc(2026, 1, 16, 9, 30)),
        ("3D", utc(2026, 1, 10, 9, 30)),
        ("24h", utc(2026, 1, 8, 9, 30)),
        ("6h", utc(2026, 1, 7, 15, 30)),
        # days: 09:00 Berlin = 08:00 UTC
        ("tomorrow", utc(2026, 1, 8, 8, 0)),
        ("monday", utc(2026, 1, 12, 8, 0)),
        ("mon", utc(2026, 1, 12, 8, 0)),
        ("tuesday", utc(2026, 1, 13, 8, 0)),
        ("wednesday", utc(2026, 1, 14, 8, 0)),  # strictly after today
        ("wed", utc(2026, 1, 14, 8, 0)),
        ("thursday", utc(2026, 1, 8, 8, 0)),
        ("thurs", utc(2026, 1, 8, 8, 0)),
        ("sun", utc(2026, 1, 11, 8, 0)),
        # dates: this year, or next if already past
        ("dec1", utc(2026, 12, 1, 8, 0)),
        ("1dec", utc(2026, 12, 1, 8, 0)),
        ("december1", utc(2026, 12, 1, 8, 0)),
        ("dec-1st", utc(2026, 12, 1, 8, 0)),
        ("jun15", utc(2026, 6, 15, 7, 0)),  # summer time: 09:00 CEST = 07:00 UTC
        ("jan1", utc(2027, 1, 1, 8, 0)),
        ("jan7", utc(2027, 1, 7, 8, 0)),  # today, but 09:00 has passed
        ("jan8", utc(2026, 1, 8, 8, 0)),
        ("feb29", utc(2028, 2, 29, 8, 0)),  # the next leap day
        # times: today if still ahead, else tomorrow
        ("9am", utc(2026, 1, 8, 8, 0)),
        ("5pm", utc(2026, 1, 7, 16, 0)),
        ("17h", utc(2026, 1, 7, 16, 0)),
        ("17h30", utc(2026, 1, 7, 16, 30)),
        ("1730", utc(2026, 1, 7, 16, 30)),
        ("17:30", utc(2026, 1, 7, 16, 30)),
        ("10:30", utc(2026, 1, 8, 9, 30)),  # exactly now is not ahead
        ("10:31", utc(2026, 1, 7, 9, 31)),
        ("9:30pm", utc(2026, 1, 7, 20, 30)),
        ("930pm", utc(2026, 1, 7, 20, 30)),
        ("12pm", utc(2026, 1, 7, 11, 0)),
        ("noon", utc(2026, 1, 7, 11, 0)),
        ("12am", utc(2026, 1, 7, 23, 0)),  # midnight tonight
        # day + time
        ("monday9am", utc(2026, 1, 12, 8, 0)),
        ("fri5pm", utc(2026, 1, 9, 16, 0)),
        ("wed5pm", utc(2026, 1, 14, 16, 0)),
        ("tomorrow-1730", utc(2026, 1, 8, 16, 30)),
        ("dec1-9am", utc(2026, 12, 1, 8, 0)),
        ("1dec9am", utc(2026, 12, 1, 8, 0)),
        ("dec1.17h", utc(2026, 12, 1, 16, 0)),
        ("jan7-5pm", utc(2026, 1, 7, 16, 0)),  # today, later on
        ("jan7-9am", utc(2027, 1, 7, 8, 0)),  # today, already past
        ("9am-monday", utc(2026, 1, 12, 8, 0)),
        ("Monday 9AM", utc(2026, 1, 12, 8, 0)),
    ],
)
def test_resolve_schedule(spec: str, expected: datetime) -> None:
    assert is_schedule(spec)
    got = resolve_schedule(spec, NOW, BERLIN)
    assert got == expected
    assert got.tzinfo is UTC


#: Saturday 2026-03-28 10:00 CET; clocks go forward at 02:00 on Sunday the 29th.
BEFORE_SPRING = datetime(2026, 3, 28, 10, 0, tzinfo=BERLIN)
#: Saturday 2026-10-24 10:00 CEST; clocks go back at 03:00 on Sunday the 25th.
BEFORE_AUTUMN = datetime(2026, 10, 24, 10, 0, tzinfo=BERLIN)


@pytest.mark.parametrize(
    ("now", "spec", "expected"),
    [
        (BEFORE_SPRING, "tomorrow", utc(2026, 3, 29, 7, 0)),  # 09:00 CEST
        (BEFORE_SPRING, "sunday", utc(2026, 3, 29, 7, 0)),
        (BEFORE_SPRING, "monday9am", utc(2026, 3, 30, 7, 0)),
        (BEFORE_SPRING, "1am", utc(2026, 3, 29, 0, 0)),  # still CET
        (BEFORE_SPRING, "2:30am", utc(2026, 3, 29, 1, 30)),  # skipped: lands at 03:30 CEST
        (BEFORE_SPRING, "3am", utc(2026, 3, 29, 1, 0)),  # 03:00 CEST
        (BEFORE_SPRING, "24h", utc(2026, 3, 29, 9, 0)),  # elapsed: 11:00 CEST
        (BEFORE_AUTUMN, "tomorrow", utc(2026, 10, 25, 8, 0)),  # 09:00 CET
        (BEFORE_AUTUMN, "2:30am", utc(2026, 10, 25, 0, 30)),  # repeated: first one (CEST)
        (BEFORE_AUTUMN, "mar29", utc(2027, 3, 29, 7, 0)),
    ],
)
def test_resolve_schedule_across_dst(now: datetime, spec: str, expected: datetime) -> None:
    assert resolve_schedule(spec, now, BERLIN) == expected


def test_resolve_schedule_takes_naive_now_as_utc_and_other_zones() -> None:
    naive = datetime(2026, 1, 7, 9, 30)
    assert resolve_schedule("tomorrow", naive, BERLIN) == utc(2026, 1, 8, 8, 0)
    new_york = ZoneInfo("America/New_York")
    # 04:30 in New York: 9am is still ahead today.
    assert resolve_schedule("9am", NOW, new_york) == utc(2026, 1, 7, 14, 0)
    # Late evening in Berlin is already tomorrow in Auckland.
    late = datetime(2026, 1, 7, 23, 30, tzinfo=BERLIN)
    assert resolve_schedule("tomorrow", late, ZoneInfo("Pacific/Auckland")) == utc(
        2026, 1, 8, 20, 0
    )


@pytest.mark.parametrize(
    "spec",
    [
        "",
        "   ",
        "3x",
        "soon",
        "someday",
        "dec32",
        "feb30",
        "13pm",
        "0am",
        "25:00",
        "17:60",
        "24h30",
        "2460",
        "dec19am",  # dec1 9am or dec19? refused, not guessed
        "monday25",
        "0d",
        "99999999999w",
        "20y",
        "1h30",
        "intro",
        "r-abc",
        "x" * 200,
    ],
)
def test_bad_schedules_raise_duration_error(spec: str) -> None:
    assert not is_schedule(spec)
    with pytest.raises(DurationError, match="not a schedule") as caught:
        resolve_schedule(spec, NOW, BERLIN)
    assert "use 3d" in str(caught.value)


def test_resolve_schedule_near_the_end_of_time_raises_duration_error() -> None:
    end = datetime(9999, 12, 31, 12, 0, tzinfo=UTC)
    with pytest.raises(DurationError, match="outside the calendar"):
        resolve_schedule("2w", end, BERLIN)
    with pytest.raises(DurationError, match="outside the calendar"):
        resolve_schedule("tomorrow", end, BERLIN)


@pytest.mark.parametrize(
    ("tag", "expected"),
    [
        ("advice", Kind.ADVICE),
        ("intro", Kind.INTRO),
        ("Intro", Kind.INTRO),
        ("mentee", Kind.MENTEE),
        ("gave", Kind.GIVE),
        ("give", Kind.GIVE),
        ("gave-back", Kind.GIVE),
        ("learn", Kind.LEARN),
        (" advice ", Kind.ADVICE),
        ("3d", None),
        ("patch", None),
        ("", None),
    ],
)
def test_kind_for_tag(tag: str, expected: Kind | None) -> None:
    assert kind_for_tag(tag) is expected


SERVICE = "mentor@example.com"
PLUS_SERVICE = "me+mentor@example.com"


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("mentor@example.com", AddressTag()),
        ("Mentor@Example.COM", AddressTag()),
        ('"Mentor Bot" <mentor@example.com>', AddressTag()),
        ("mentor+@example.com", AddressTag()),
        ("mentor+advice@example.com", AddressTag(kind=Kind.ADVICE)),
        ("mentor+intro@example.com", AddressTag(kind=Kind.INTRO)),
        ("Mentor+INTRO@example.com", AddressTag(kind=Kind.INTRO)),
        ('"Ana" <mentor+mentee@example.com>', AddressTag(kind=Kind.MENTEE)),
        ("mentor+gave@example.com", AddressTag(kind=Kind.GIVE)),
        ("mentor+give@example.com", AddressTag(kind=Kind.GIVE)),
        ("mentor+learn@example.com", AddressTag(kind=Kind.LEARN)),
        ("mentor+3d@example.com", AddressTag(schedule="3d")),
        ("mentor+monday@example.com", AddressTag(schedule="monday")),
        ("mentor+dec1@example.com", AddressTag(schedule="dec1")),
        ("mentor+Monday9AM@example.com", AddressTag(schedule="monday9am")),
        ("mentor+dec1-9am@example.com", AddressTag(schedule="dec1-9am")),
        ("mentor+intro-3d@example.com", AddressTag(kind=Kind.INTRO, schedule="3d")),
        ("mentor+intro.3d@example.com", AddressTag(kind=Kind.INTRO, schedule="3d")),
        ("mentor+intro+3d@example.com", AddressTag(kind=Kind.INTRO, schedule="3d")),
        ("mentor+3d-intro@example.com", AddressTag(kind=Kind.INTRO, schedule="3d")),
        ("mentor+intro-dec1-9am@example.com", AddressTag(kind=Kind.INTRO, schedule="dec1-9am")),
        ("mentor+gave-back-fri@example.com", AddressTag(kind=Kind.GIVE, schedule="fri")),
        ("mentor+foo@example.com", AddressTag(unknown="foo")),
        ("mentor+intro-someday@example.com", AddressTag(kind=Kind.INTRO, unknown="someday")),
        ("mentor+dec19am@example.com", AddressTag(unknown="dec19am")),
        ("mentor+" + "x" * 300 + "@example.com", AddressTag(unknown="x" * 100)),
        # not the service
        ("mentor@other.example", None),
        ("other@example.com", None),
        ("mentorx@example.com", None),
        ("mentor-intro@example.com", None),  # plain service: only '+' tags
        ("ment@example.com", None),
        ("", None),
        ("@", None),
        ("not an address", None),
        ("mentor+3d@example.com\r\nBcc: x@y", None),
        # reminder replies are commands, not tags
        (reply_address(SERVICE, "k3v9x2abqe", SECRET), None),
        ("mentor+r-k3v9x2abqe-abcdefghij@example.com", None),
        ("mentor+r-garbled@example.com", None),
    ],
)
def test_service_tag(address: str, expected: AddressTag | None) -> None:
    assert service_tag(address, SERVICE) == expected


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("me+mentor@example.com", AddressTag()),
        ("ME+Mentor@example.com", AddressTag()),
        ("me+mentor-intro@example.com", AddressTag(kind=Kind.INTRO)),
        ("me+mentor-3d@example.com", AddressTag(schedule="3d")),
        ("me+mentor-intro-3d@example.com", AddressTag(kind=Kind.INTRO, schedule="3d")),
        (
            "me+mentor-intro.monday9am@example.com",
            AddressTag(kind=Kind.INTRO, schedule="monday9am"),
        ),
        ("me+mentor+gave@example.com", AddressTag(kind=Kind.GIVE)),
        ("me+mentor-what@example.com", AddressTag(unknown="what")),
        ("me@example.com", None),
        ("me+other@example.com", None),
        ("me+mentorx@example.com", None),
        ("me+mentor@other.example", None),
        (reply_address(PLUS_SERVICE, "k3v9x2abqe", SECRET), None),
        ("me+mentor+r-k3v9x2abqe-abcdefghij@example.com", None),
    ],
)
def test_service_tag_for_a_plus_address_service(address: str, expected: AddressTag | None) -> None:
    assert service_tag(address, PLUS_SERVICE) == expected


def test_service_tag_rejects_non_strings() -> None:
    assert service_tag(None, SERVICE) is None  # type: ignore[arg-type]
    assert service_tag(SERVICE, 42) is None  # type: ignore[arg-type]
    assert service_tag(SERVICE, "") is None


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        ("[advice] Pricing page?", ("Pricing page?", ("advice",))),
        ("Re: [intro] Foo", ("Re: Foo", ("intro",))),
        ("Fwd: [Gave] Thanks", ("Fwd: Thanks", ("gave",))),
        ("Pricing page? [3d]", ("Pricing page?", ("3d",))),
        ("[intro][monday] Meet Ana", ("Meet Ana", ("intro", "monday"))),
        ("[intro 3d] Meet Ana", ("Meet Ana", ("intro", "3d"))),
        ("[3d-intro] Meet Ana", ("Meet Ana", ("intro", "3d"))),
        ("[ext] [advice] Foo", ("[ext] Foo", ("advice",))),
        ("[advice] Re: [advice] Foo", ("Re: Foo", ("advice",))),
        ("Hiring [dec1-9am] plan", ("Hiring plan", ("dec1-9am",))),
        ("[advice]", ("", ("advice",))),
        # left alone
        ("[PATCH] Fix the parser", ("[PATCH] Fix the parser", ())),
        ("[PATCH 1/3] Fix", ("[PATCH 1/3] Fix", ())),
        ("Plans for [2026]", ("Plans for [2026]", ())),
        ("[intro 1730] x", ("[intro 1730] x", ())),
        ("  No tags here  ", ("  No tags here  ", ())),
        ("advice without brackets", ("advice without brackets", ())),
        ("[] [[x]] [", ("[] [[x]] [", ())),
        ("", ("", ())),
    ],
)
def test_subject_tags(subject: str, expected: tuple[str, tuple[str, ...]]) -> None:
    assert subject_tags(subject) == expected


def test_subject_tags_rejects_non_strings() -> None:
    assert subject_tags(None) == ("", ())  # type: ignore[arg-type]


_SPEC_PIECES = st.sampled_from(
    ["3", "1", "12", "30", "d", "h", "m", "w", "am", "pm", "dec", "feb", "29", "mon", "day",
     "tomorrow", "-", ".", " ", ":", "h30", "noon", "intro", "+", "r-", "st", "x"]
)  # fmt: skip
specs = st.one_of(st.lists(_SPEC_PIECES, max_size=5).map("".join), st.text(max_size=20))
zones = st.sampled_from(["Europe/Berlin", "America/New_York", "Pacific/Chatham", "UTC"])
nows = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2090, 1, 1), timezones=st.just(UTC)
)


@settings(max_examples=300, deadline=None)
@given(spec=specs, now=nows, zone=zones)
def test_a_schedule_either_resolves_into_the_future_or_raises(
    spec: str, now: datetime, zone: str
) -> None:
    if is_schedule(spec):
        got = resolve_schedule(spec, now, ZoneInfo(zone))
        assert got.tzinfo is UTC
        assert now < got <= now + timedelta(days=3660 + 8 * 366)
    else:
        with pytest.raises(DurationError):
            resolve_schedule(spec, now, ZoneInfo(zone))


@settings(max_examples=200, deadline=None)
@given(text=st.text(max_size=80), service=st.sampled_from([SERVICE, PLUS_SERVICE, "", "@"]))
def test_readers_never_raise(text: str, service: str) -> None:
    service_tag(text, service)
    service_tag(f"mentor+{text}@example.com", service)
    cleaned, _ = subject_tags(text)
    assert len(cleaned) <= len(text)
    subject_tags(f"[{text}] rest")
    is_schedule(text)
    kind_for_tag(text)
