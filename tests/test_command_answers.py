"""Every reply of commands is answered once, briefly, on real servers (pymap, aiosmtpd, Redis):
applied → what changed and what comes next; not applied → why, and what would work."""

from __future__ import annotations

from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from mailmentor.imap import ImapAccount
from mailmentor.model import Stage
from mailmentor.sandbox.smtp_sink import SmtpSink
from tests import mail_factory as mf
from tests.harness import Harness, running_harness
from tests.reminders._support import text_of
from tests.waiting import wait_for


@pytest.fixture
def h(
    redis_server: Any,
    redis_client: Any,  # a clean Redis for each test
    imap_server: ImapAccount,
    smtp_sink: SmtpSink,
    tmp_path: Path,
) -> Iterator[Harness]:
    with running_harness(
        redis_server, imap_server, smtp_sink, tmp_path, confirm_commands=True
    ) as h:
        yield h


def _advised_reminder(h: Harness) -> EmailMessage:
    return h.advised_with_reminder(mf.gmail_forward())[1]


def _answers_to(h: Harness, raw: bytes, mails_before: int) -> list[EmailMessage]:
    """Deliver ``raw``, wait until it is applied and every job it queued is sent: the mails
    that came of it (the outbox drained, so none can come later)."""
    h.deliver(raw)
    message_id = mf.message_id_of(raw)
    wait_for(lambda: h.handled(message_id), what=f"{message_id} applied")
    wait_for(lambda: not h.store.outbox.pending(), what="the outbox drained")
    return [m.message for m in h.sink.messages[mails_before:]]


def test_a_command_that_worked_is_confirmed_once_with_the_next_reminder(h: Harness) -> None:
    reminder = _advised_reminder(h)
    reply = mf.reply_to_reminder(reminder, "Done - signed up for a course")
    [answer] = _answers_to(h, reply, 1)
    text = text_of(answer)
    assert "Done: you acted on Alan Kay's advice (noted: “signed up for a course”)." in text
    assert "tell Alan Kay how it went next" in text
    assert "Next reminder: " in text and "CET" in text  # Europe/Berlin, the harness's zone
    assert answer["In-Reply-To"] == f"<{mf.message_id_of(reply)}>"
    assert answer["Subject"].startswith("Re: ")
    assert answer["Auto-Submitted"] == "auto-generated", "so the user's auto-reply never answers it"
    assert h.only_loop().stage is Stage.ACTED


def test_a_snooze_not_understood_says_why_and_what_would_work(h: Harness) -> None:
    reminder = _advised_reminder(h)
    [answer] = _answers_to(h, mf.reply_to_reminder(reminder, "snooze a fortnight"), 1)
    text = text_of(answer)
    assert "“snooze a fortnight” was not applied" in text
    assert "snooze 2w" in text
    assert "advice received: act on it next" in text, "what stands"
    assert h.only_loop().stage is Stage.ADVISED


def test_a_move_backwards_is_refused_with_the_command_that_would_work(h: Harness) -> None:
    reminder = _advised_reminder(h)
    _answers_to(h, mf.reply_to_reminder(reminder, "done"), 1)
    [answer] = _answers_to(h, mf.reply_to_reminder(reminder, "advised", mf.USER), 2)
    text = text_of(answer)
    assert "“advised” was not applied: this loop is already acted." in text
    assert "Reply “reported” when that is true." in text


def test_several_commands_in_one_reply_get_one_answer(h: Harness) -> None:
    reminder = _advised_reminder(h)
    reply = mf.reply_to_reminder(reminder, "Thanks! done - booked it\nsnooze 2 weeks please\nhelp")
    [answer] = _answers_to(h, reply, 1)
    text = text_of(answer)
    assert text.index("Done: you acted") < text.index("Snoozed until ") < text.index("snooze 3d")
    assert "It wakes on " in text
    assert h.only_loop().stage is Stage.SNOOZED


def test_automatic_mail_to_the_reply_address_is_never_answered(h: Harness) -> None:
    reminder = _advised_reminder(h)
    auto = mf.auto_reply(str(reminder["Reply-To"]))
    h.deliver(auto)
    # The real reply after it is answered; the auto-reply before it was read and left alone.
    [answer] = _answers_to(h, mf.reply_to_reminder(reminder, "done"), 1)
    assert "Done: you acted" in text_of(answer)
