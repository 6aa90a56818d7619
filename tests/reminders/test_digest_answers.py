"""The one answer to a reply to the weekly digest, from typed results (pure)."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

from mailmentor.model import Kind, Stage
from mailmentor.parsing.commands import Command, CommandName
from mailmentor.reminders.answers import (
    Applied,
    DigestGone,
    HelpAsked,
    LearnStarted,
    LineAnswered,
    NoLineNamed,
    NoSuchLine,
    NotUnderstood,
    Refused,
    digest_answer_text,
)
from tests.reminders._support import T0, make_action, make_loop

NY = ZoneInfo("America/New_York")


def test_each_line_named_gets_a_paragraph_with_where_its_loop_stands() -> None:
    acted = make_loop(
        stage=Stage.ACTED, next_action=make_action(Stage.ACTED, due_at=T0 + timedelta(days=7))
    )
    advised = make_loop(stage=Stage.ADVISED)
    text = digest_answer_text(
        [
            LineAnswered(2, acted, (Applied(Command(CommandName.ACTED, "signed up"), acted),)),
            LineAnswered(
                3, advised, (Refused(Command(CommandName.REPORTED), advised, "not acted yet"),)
            ),
            NoSuchLine(9, "9 stop"),
        ],
        NY,
    )
    assert text is not None
    first, second, third = text.split("\n\n")
    assert first.splitlines()[0] == f"2. “{acted.subject}” with Alan Kay:"
    assert "Done: you acted on Alan Kay's advice (noted: “signed up”)." in first
    assert "Next reminder: Mon 12 Jan, 04:00 EST." in first
    assert second.startswith("3. ") and "“reported” was not applied" in second
    assert third == "“9 stop” was not applied: that digest has no line 9."


def test_confirmations_off_leave_out_what_applied_but_never_what_did_not() -> None:
    loop = make_loop(stage=Stage.ACTED)
    applied = LineAnswered(1, loop, (Applied(Command(CommandName.ACTED), loop),))
    assert digest_answer_text([applied], NY, confirm=False) is None
    text = digest_answer_text([applied, NoLineNamed("done")], NY, confirm=False)
    assert text is not None and "say which line, e.g. “2 done”" in text


def test_learn_help_gone_and_not_understood() -> None:
    learn = make_loop(stage=Stage.ASKED).model_copy(update={"kind": Kind.LEARN})
    text = digest_answer_text(
        [LearnStarted("Rust", learn), DigestGone(), NotUnderstood("hello"), HelpAsked()], NY
    )
    assert text is not None
    assert "Noted: you want to learn “Rust”." in text
    assert "That digest is too old for its line numbers" in text
    assert "I did not understand “hello”." in text
    assert "“2 done”, “3 reported”, “snooze 4 1w”" in text
