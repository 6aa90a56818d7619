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
        # Prose that starts with a command word is no command (never STOP): a note.
        ("stop by my office tomorrow", Command(C.NOTE, "stop by my office tomorrow")),
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


# What people actually write (issue 11): greetings and thanks around the command, notes after
# it, other languages, durations in words. (reply, command, note or argument)
PHRASINGS: list[tuple[str, CommandName, str]] = [
    ("Done - signed up for a course", C.ACTED, "signed up for a course"),
    ("Done, I signed up.", C.ACTED, "I signed up."),
    ("Thanks! done", C.ACTED, ""),
    ("thanks, done", C.ACTED, ""),
    ("Thank you so much - done!", C.ACTED, ""),
    ("acted: signed up for the course", C.ACTED, "signed up for the course"),
    ("Hi — acted on it", C.ACTED, ""),
    ("Hi mailmentor, acted on it.", C.ACTED, ""),
    ("acted on the advice", C.ACTED, ""),
    ("acted on your advice: cut the plans to three", C.ACTED, "cut the plans to three"),
    ("done already", C.ACTED, ""),
    ("Done it!", C.ACTED, ""),
    ("done, thanks", C.ACTED, ""),
    ("Done, that worked!", C.ACTED, "that worked!"),
    ("done, it went well", C.ACTED, "it went well"),
    ("DONE. Took the course.", C.ACTED, "Took the course."),
    ("done — booked the flight", C.ACTED, "booked the flight"),
    ("done: booked the flight", C.ACTED, "booked the flight"),
    ("Ok, done", C.ACTED, ""),
    ("OK done!", C.ACTED, ""),
    ("Yes, done.", C.ACTED, ""),
    ("great, did it", C.ACTED, ""),
    ("finished", C.ACTED, ""),
    ("Finished - the draft is out", C.ACTED, "the draft is out"),
    ("Hi,\n\ndone - signed up\n\nThanks,\nAda", C.ACTED, "signed up"),
    ("Hello there!\nDone.", C.ACTED, ""),
    ("**done**", C.ACTED, ""),
    ("erledigt", C.ACTED, ""),
    ("Danke! Erledigt.", C.ACTED, ""),
    ("erledigt - Kurs gebucht", C.ACTED, "Kurs gebucht"),
    ("gemacht", C.ACTED, ""),
    ("fait", C.ACTED, ""),
    ("Merci, fait !", C.ACTED, ""),
    ("terminé : cours réservé", C.ACTED, "cours réservé"),
    ("hecho", C.ACTED, ""),
    ("¡Listo!", C.UNKNOWN, "¡Listo!"),  # an opening ¡ is not read as punctuation (yet)
    ("Gracias, hecho", C.ACTED, ""),
    ("listo - curso reservado", C.ACTED, "curso reservado"),
    ("reported", C.REPORTED, ""),
    ("Reported back - told him it worked", C.REPORTED, "told him it worked"),
    ("thanks, reported back!", C.REPORTED, ""),
    ("reported: he was happy to hear it", C.REPORTED, "he was happy to hear it"),
    ("berichtet", C.REPORTED, ""),
    ("rapporté", C.REPORTED, ""),
    ("informado", C.REPORTED, ""),
    ("advised", C.ADVISED, ""),
    ("got advice - three plans, annual first", C.ADVISED, "three plans, annual first"),
    ("conseillé", C.ADVISED, ""),
    ("gave back: sent him the paper", C.GAVE_BACK, "sent him the paper"),
    ("Thanks! gave back coffee", C.GAVE_BACK, "coffee"),
    ("zurückgegeben: Kaffee", C.GAVE_BACK, "Kaffee"),
    ("snooze a week", C.SNOOZE, "a week"),
    ("snooze 2 weeks please", C.SNOOZE, "2 weeks please"),
    ("Snooze ten days.", C.SNOOZE, "ten days"),
    ("snooze until next monday", C.SNOOZE, "until next monday"),
    ("snooze till the end of the month", C.SNOOZE, "till the end of the month"),
    ("thanks — snooze 3d", C.SNOOZE, "3d"),
    ("remind me in a week", C.SNOOZE, "in a week"),
    ("Remind me on friday please", C.SNOOZE, "on friday please"),
    ("später: 2w", C.SNOOZE, "2w"),
    ("erinnere mich in 3 tagen", C.SNOOZE, "in 3 tagen"),
    ("plus tard 1w", C.SNOOZE, "1w"),
    ("rappelle-moi dans 2w", C.SNOOZE, "dans 2w"),
    ("más tarde 3d", C.SNOOZE, "3d"),
    ("stop", C.STOP, ""),
    ("Stop, please.", C.STOP, ""),
    ("stop - I found another way", C.STOP, "I found another way"),
    ("thanks, stop", C.STOP, ""),
    ("stopp", C.STOP, ""),
    ("arrête", C.STOP, ""),
    ("parar", C.STOP, ""),
    ("help", C.HELP, ""),
    ("Hi, help?", C.HELP, ""),
    ("hilfe", C.HELP, ""),
    ("aide", C.HELP, ""),
    ("ayuda", C.HELP, ""),
    ("note: called him on Monday", C.NOTE, "called him on Monday"),
    ("notiz: angerufen", C.NOTE, "angerufen"),
    ("nota: lo llamé", C.NOTE, "lo llamé"),
    ("reopen", C.REOPEN, ""),
    ("Reopen please", C.REOPEN, ""),
    # Not commands: prose about the loop is a note; short puzzles and questions are UNKNOWN.
    ("I tried the annual plan first and it worked", C.NOTE,
     "I tried the annual plan first and it worked"),
    ("Thanks, I will try it next week for sure", C.NOTE,
     "Thanks, I will try it next week for sure"),
    ("stopped by his office and we talked", C.NOTE, "stopped by his office and we talked"),
    ("doneness", C.UNKNOWN, "doneness"),
    ("dne", C.UNKNOWN, "dne"),
    ("ok", C.UNKNOWN, "ok"),
    ("Should I snooze this one?", C.UNKNOWN, "Should I snooze this one?"),
    ("what should I do now?", C.UNKNOWN, "what should I do now?"),
    ("faithful", C.UNKNOWN, "faithful"),
    ("notes", C.UNKNOWN, "notes"),
    ("listopad", C.UNKNOWN, "listopad"),
]  # fmt: skip


@pytest.mark.parametrize(("reply", "name", "text"), PHRASINGS)
def test_replies_people_write(reply: str, name: CommandName, text: str) -> None:
    assert parse_command(reply) == Command(name, text)


def test_several_commands_one_per_line() -> None:
    from mailmentor.parsing.commands import parse_commands

    reply = "Hi,\n\ndone - signed up\nsnooze 2w\n\nthanks!\n\n> the reminder\n> stop"
    assert parse_commands(reply) == [Command(C.ACTED, "signed up"), Command(C.SNOOZE, "2w")]


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
        ("a week", PARIS, NOW + timedelta(weeks=1)),
        ("2 weeks please", PARIS, NOW + timedelta(weeks=2)),
        ("ten days", PARIS, NOW + timedelta(days=10)),
        ("in a couple of days", PARIS, NOW + timedelta(days=2)),
        ("a few weeks", PARIS, NOW + timedelta(weeks=3)),
        ("one month", PARIS, NOW + timedelta(days=30)),
        ("next monday", PARIS, datetime(2026, 1, 12, 8, 0, tzinfo=UTC)),
        ("on friday please", PARIS, datetime(2026, 1, 9, 8, 0, tzinfo=UTC)),
        ("till the end of the month", PARIS, datetime(2026, 1, 31, 8, 0, tzinfo=UTC)),
        ("end of month", NEW_YORK, datetime(2026, 1, 31, 14, 0, tzinfo=UTC)),
        ("end of week", PARIS, datetime(2026, 1, 9, 8, 0, tzinfo=UTC)),
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
