"""The one answer to a reply of commands, from typed results (pure)."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest

from mailmentor.model import ActionKind, Stage
from mailmentor.parsing.commands import Command, CommandName, parse_command
from mailmentor.reminders.answers import (
    Applied,
    HelpAsked,
    NotUnderstood,
    Refused,
    answer_text,
    when,
)
from mailmentor.reminders.wording import HELP_TEXT
from tests.reminders._support import T0, make_action, make_loop

NY = ZoneInfo("America/New_York")


def test_an_applied_command_says_what_changed_where_the_loop_stands_and_what_comes_next() -> None:
    loop = make_loop(
        stage=Stage.ACTED,
        next_action=make_action(Stage.ACTED, due_at=T0 + timedelta(days=7)),
    )
    text = answer_text([Applied(Command(CommandName.ACTED, "signed up"), loop)], loop, NY)
    assert text == (
        "Done: you acted on Alan Kay's advice (noted: “signed up”).\n\n"
        "The loop is acted on: tell Alan Kay how it went next. "
        "Next reminder: Mon 12 Jan, 04:00 EST."
    )


@pytest.mark.parametrize(
    ("name", "argument", "stage", "expected"),
    [
        (CommandName.ADVISED, "", Stage.ADVISED, "Done: Alan Kay has answered."),
        (CommandName.REPORTED, "", Stage.REPORTED, "Done: you reported back to Alan Kay."),
        (CommandName.GAVE_BACK, "a book", Stage.CLOSED, "(noted: “a book”)"),
        (CommandName.STOP, "", Stage.DROPPED, "“reopen” keeps it after all"),
        (CommandName.REOPEN, "", Stage.ACTED, "Reopened: back at acted."),
        (CommandName.NOTE, "met for coffee", Stage.ACTED, "Noted on the loop: “met for coffee”."),
    ],
)
def test_each_command_has_its_line(
    name: CommandName, argument: str, stage: Stage, expected: str
) -> None:
    loop = make_loop(stage=stage)
    text = answer_text([Applied(Command(name, argument), loop)], loop, NY)
    assert text is not None and expected in text
    if not stage.is_open:
        assert "Nothing more will be sent about it." in text


@pytest.mark.parametrize(
    ("reply", "said"),
    [
        ("Done (signed up for the course)", "(noted: “signed up for the course”)"),
        ("done - [booked it]", "(noted: “booked it”)"),
        ("gave back ((a book))", "(noted: “a book”)"),
        ("done - (a) the course and (b) the book", "(noted: “(a) the course and (b) the book”)"),
    ],
)
def test_a_note_in_brackets_is_bracketed_once(reply: str, said: str) -> None:
    command = parse_command(reply)
    assert command is not None
    loop = make_loop(stage=Stage.ACTED)
    text = answer_text([Applied(command, loop)], loop, NY)
    assert text is not None and said in text
    assert "“(" not in text.replace(said, "") and "“[" not in text


def test_a_snooze_says_until_when_and_the_wake_up() -> None:
    until = T0 + timedelta(days=14)
    loop = make_loop(
        stage=Stage.SNOOZED,
        snoozed_until=until,
        snoozed_from=Stage.ADVISED,
        next_action=make_action(Stage.SNOOZED, kind=ActionKind.WAKE, due_at=until),
    )
    text = answer_text([Applied(Command(CommandName.SNOOZE, "2w"), loop)], loop, NY)
    assert text is not None
    assert text.startswith("Snoozed until Mon 19 Jan, 04:00 EST.")
    assert "snoozed until Mon 19 Jan, 04:00 EST, then back to advised" in text
    assert text.endswith("It wakes on Mon 19 Jan, 04:00 EST, with a reminder.")


def test_a_refused_snooze_names_what_was_not_read_and_what_would_work() -> None:
    loop = make_loop(stage=Stage.ADVISED)
    refused = Refused(Command(CommandName.SNOOZE, "a fortnight"), loop, "x", bad_duration=True)
    text = answer_text([refused], loop, NY, confirm=False)
    assert text is not None
    assert text.startswith("“snooze a fortnight” was not applied: “a fortnight” is not a time")
    assert "“snooze 2w”" in text
    assert "The loop is advice received: act on it next." in text


def test_a_refused_move_suggests_the_command_for_where_the_loop_is() -> None:
    loop = make_loop(stage=Stage.ACTED)
    text = answer_text([Refused(Command(CommandName.ADVISED), loop, "x")], loop, NY)
    assert text is not None
    assert "“advised” was not applied: this loop is already acted." in text
    assert "Reply “reported” when that is true." in text


@pytest.mark.parametrize(
    ("stage", "fix"),
    [(Stage.DROPPED, "reply “reopen” first"), (Stage.CLOSED, "nothing more to do")],
)
def test_a_command_on_an_ended_loop_says_so(stage: Stage, fix: str) -> None:
    loop = make_loop(stage=stage)
    text = answer_text([Refused(Command(CommandName.ACTED), loop, "x")], loop, NY)
    assert text is not None and f"this loop is {stage} ({fix})" in text


def test_confirmations_off_leaves_applied_commands_unanswered_but_not_refusals() -> None:
    loop = make_loop(stage=Stage.ACTED)
    applied = Applied(Command(CommandName.ACTED), loop)
    assert answer_text([applied], loop, NY, confirm=False) is None
    refused = Refused(Command(CommandName.ADVISED), loop, "x")
    text = answer_text([applied, refused], loop, NY, confirm=False)
    assert text is not None and "Done: you acted" in text and "not applied" in text


def test_help_and_a_line_not_understood_are_answered_with_the_commands() -> None:
    loop = make_loop()
    assert answer_text([HelpAsked()], loop, NY, confirm=False) == HELP_TEXT
    text = answer_text([NotUnderstood("what is this")], loop, NY, confirm=False)
    assert text is not None
    assert text.startswith("I did not understand “what is this”.")
    assert text.endswith(HELP_TEXT)


def test_times_are_the_users_wall_clock_across_a_dst_change() -> None:
    assert when(T0.replace(month=3, day=7, hour=14), NY) == "Sat 7 Mar, 09:00 EST"
    assert when(T0.replace(month=3, day=9, hour=13), NY) == "Mon 9 Mar, 09:00 EDT"
