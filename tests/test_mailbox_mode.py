"""Mailbox mode: meaning by where a message sits (tracked / INBOX / Sent), on the real store."""

from __future__ import annotations

from email.message import EmailMessage
from zoneinfo import ZoneInfo

import pytest

from mailmentor import intake
from mailmentor.app import Services
from mailmentor.mailbox_mode import Origin, Tracking
from mailmentor.model import Stage
from mailmentor.parsing.commands import Command, CommandName
from mailmentor.parsing.message import parse_message
from mailmentor.service.outcomes import Created, Handled, Ignored, Outcome
from mailmentor.store import Store
from tests.service_factory import services_on
from tests.store_support import all_loops, change_loop, get_loop

USER = "ada@example.com"
ALAN = "alan@example.org"


def mail(sender: str, to: str, subject: str, mid: str, reply_to: str | None = None) -> bytes:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject
    msg["Message-ID"] = f"<{mid}>"
    if reply_to:
        msg["In-Reply-To"] = f"<{reply_to}>"
        msg["References"] = f"<{reply_to}>"
    msg.set_content("Some text.\n")
    return bytes(msg)


@pytest.fixture
def service(store: Store) -> Services:
    return services_on(store, USER, "ada+mentor@example.com")


def handle(service: Services, raw: bytes, origin: Origin) -> Outcome:
    return service.intake.handle(parse_message(raw), origin)


def test_a_tracked_thread_is_followed_through_inbox_and_sent(service: Services) -> None:
    ask = mail(f"Ada <{USER}>", f"Alan <{ALAN}>", "Pricing?", "ask@c")
    outcome = handle(service, ask, Origin.TRACKED)
    assert isinstance(outcome, Handled) and isinstance(outcome.effects[0], Created)
    [loop] = all_loops(service.store)
    assert loop.stage is Stage.ASKED

    answer = mail(f"Alan <{ALAN}>", USER, "Re: Pricing?", "ans@m", reply_to="ask@c")
    handle(service, answer, Origin.INBOX)
    loop = get_loop(service.store, loop.id)
    assert loop.stage is Stage.ADVISED
    assert "Some text" in loop.advice_excerpt

    change_loop(
        service.store,
        loop.id,
        lambda lp: intake.apply_command(
            lp, Command(CommandName.ACTED), lp.created_at, ZoneInfo("UTC"), "cmd@c"
        ),
    )
    report = mail(f"Ada <{USER}>", ALAN, "Re: Pricing?", "rep@c", reply_to="ans@m")
    handle(service, report, Origin.SENT)
    assert get_loop(service.store, loop.id).stage is Stage.REPORTED


def test_unmarked_inbox_mail_outside_tracked_threads_is_ignored(service: Services) -> None:
    other = mail(f"Alan <{ALAN}>", USER, "Lunch?", "lunch@m")
    assert isinstance(handle(service, other, Origin.INBOX), Ignored)
    assert all_loops(service.store) == []


def test_a_marked_mentor_message_starts_an_advised_loop(service: Services) -> None:
    answer = mail(f"Alan <{ALAN}>", USER, "Re: Pricing?", "ans2@m", reply_to="ask-unknown@c")
    handle(service, answer, Origin.TRACKED)
    [loop] = all_loops(service.store)
    assert (loop.stage, loop.mentor.address) == (Stage.ADVISED, ALAN)


def test_sent_mail_outside_tracked_threads_is_ignored(service: Services) -> None:
    sent = mail(f"Ada <{USER}>", ALAN, "Hello", "hello@c")
    assert isinstance(handle(service, sent, Origin.SENT), Ignored)


def test_automatic_mail_is_ignored_wherever_it_is(service: Services) -> None:
    raw = mail(f"Alan <{ALAN}>", USER, "Automatic reply: Pricing?", "auto@m", reply_to="ask@c")
    for origin in Origin:
        assert isinstance(handle(service, raw, origin), Ignored), origin


@pytest.mark.parametrize(
    ("tracking", "flags", "labels", "expected"),
    [
        (Tracking(keyword="$mentor"), ["\\Seen", "$Mentor"], [], True),
        (Tracking(keyword="$mentor"), ["\\Seen"], [], False),
        (Tracking(gmail_label="mentor"), [], ["\\Inbox", "Mentor"], True),
        (Tracking(gmail_label="mentor"), [], ["\\Inbox"], False),
        (Tracking(), ["$mentor"], ["mentor"], False),
    ],
)
def test_tracking_marks(
    tracking: Tracking, flags: list[str], labels: list[str], expected: bool
) -> None:
    assert tracking.marks(flags, labels) is expected
