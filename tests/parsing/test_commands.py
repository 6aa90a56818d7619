"""Reply commands and snooze times: (input, expected) pairs, with time as an argument."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from mailmentor.errors import DurationError
from mailmentor.parsing.commands import Command, CommandName, parse_command, resolve_snooze

C = CommandName


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ("acted", Command(C.ACTED)),
        ("Done!", Command(C.ACTED)),
        ("done.", Command(C.ACTED)),
        ("*acted*", Command(C.ACTED)),
        ('"Done"', Command(C.ACTED)),
        ("  DONE  \n\nthanks", Command(C.ACTED)),
        ("\n\n\nreported", Command(C.REPORTED)),
        ("Reported back", Command(C.REPORTED)),
        ("advised", Command(C.ADVISED)),
        ("gave back thanks for the intro", Command(C.GAVE_BACK, "thanks for the intro")),
        ("Gave back: Thanks for the intro!", Command(C.GAVE_BACK, "Thanks for the intro!")),
        ("gaveback", Command(C.GAVE_BACK)),
        ("gave-back sent him the paper", Command(C.GAVE_BACK, "sent him the paper")),
        ("gave_back coffee", Command(C.GAVE_BACK, "coffee")),
        ("snooze 3d", Command(C.SNOOZE, "3d")),
        ("Snooze 3D.", Command(C.SNOOZE, "3d")),
        ("snooze until friday", Command(C.SNOOZE, "until friday")),
        ("snooze: 2w", Command(C.SNOOZE, "2w")),
        ("snooze", Command(C.SNOOZE)),
        ("stop", Command(C.STOP)),
        ("STOP!!!", Command(C.STOP)),
        ("note called him, he was glad", Command(C.NOTE, "called him, he was glad")),
        ("Note: met at the conference", Command(C.NOTE, "met at the conference")),
        ("help", Command(C.HELP)),
        ("help?", Command(C.HELP)),
        ("?", Command(C.HELP)),
        ("reopen", Command(C.REOPEN)),
        ("stop by my office tomorrow", Command(C.UNKNOWN, "stop by my office tomorrow")),
        ("notebook arrived", Command(C.UNKNOWN, "notebook arrived")),
        ("snoozefest", Command(C.UNKNOWN, "snoozefest")),
        ("What does this mean?", Command(C.UNKNOWN, "What does this mean?")),
        ("done\n\nOn Mon, Jan 5, 2026 at 9:14 AM m <m@x.org> wrote:\n> stop", Command(C.ACTED)),
        ("", None),
        ("   \n \n", None),
        ("> acted\n> reminder", None),  # quoted text is never read
        ("\n> acted\n\nstop", Command(C.STOP)),  # bottom-posted: the new line counts
        ("-- \nsig only", None),
        ("Sent from my iPhone", None),
        ("On Mon, Jan 5, 2026 at 9:14 AM mailmentor <m@x.org> wrote:\n> acted", None),
    ],
)  # fmt: skip
def test_parse_command(reply: str, expected: Command | None) -> None:
    assert parse_command(reply) == expected


def test_unknown_line_is_bounded() -> None:
    command = parse_command("x" * 10_000)
    assert command is not None and command.name is C.UNKNOWN
    assert len(command.argument) <= 500


PARIS = ZoneInfo("Europe/Paris")
NEW_YORK = ZoneInfo("America/New_York")
# Wednesday 7 January 2026, 15:00 UTC (16:00 in Paris, 10:00 in New York).
NOW = datetime(2026, 1, 7, 15, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("argument", "tz", "expected"),
    [
        ("3d", PARIS, NOW + timedelta(days=3)),
        ("36h", PARIS, NOW + timedelta(hours=36)),
        ("2w", PARIS, NOW + timedelta(weeks=2)),
        ("for 3 days", PARIS, NOW + timedelta(days=3)),
        ("tomorrow", PARIS, datetime(2026, 1, 8, 8, 0, tzinfo=UTC)),
        ("tomorrow", NEW_YORK, datetime(2026, 1, 8, 14, 0, tzinfo=UTC)),
        ("friday", PARIS, datetime(2026, 1, 9, 8, 0, tzinfo=UTC)),
        ("until friday", PARIS, datetime(2026, 1, 9, 8, 0, tzinfo=UTC)),
        ("Until Monday", PARIS, datetime(2026, 1, 12, 8, 0, tzinfo=UTC)),
        ("wednesday", PARIS, datetime(2026, 1, 14, 8, 0, tzinfo=UTC)),  # strictly after today
        ("next week", PARIS, datetime(2026, 1, 12, 8, 0, tzinfo=UTC)),
        ("until dec 1", PARIS, datetime(2026, 12, 1, 8, 0, tzinfo=UTC)),
        ("December 1st", NEW_YORK, datetime(2026, 12, 1, 14, 0, tzinfo=UTC)),
        ("1 dec", PARIS, datetime(2026, 12, 1, 8, 0, tzinfo=UTC)),
        ("jan 2", PARIS, datetime(2027, 1, 2, 8, 0, tzinfo=UTC)),  # passed: next year
        ("until 2026-12-01", PARIS, datetime(2026, 12, 1, 8, 0, tzinfo=UTC)),
        ("until 2026-07-01", PARIS, datetime(2026, 7, 1, 7, 0, tzinfo=UTC)),  # summer time
    ],
)
def test_resolve_snooze(argument: str, tz: ZoneInfo, expected: datetime) -> None:
    result = resolve_snooze(argument, NOW, tz)
    assert result == expected
    assert result.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    "argument",
    [
        "",
        "until",
        "someday",
        "3x",
        "friday-ish",
        "2025-01-01",
        "feb 30",
        "99999999999999d",
        "13/13",
    ],
)
def test_resolve_snooze_errors(argument: str) -> None:
    with pytest.raises(DurationError):
        resolve_snooze(argument, NOW, PARIS)


def test_resolve_snooze_accepts_naive_now_as_utc() -> None:
    assert resolve_snooze("1d", NOW.replace(tzinfo=None), PARIS) == NOW + timedelta(days=1)
