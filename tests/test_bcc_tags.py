"""A plus-address tag or schedule written only in a kept ``Bcc:`` header (no Delivered-To or
X-Original-To, as some servers deliver a BCC copy, and as the user's own Sent copy is) is read,
and one it cannot read is said in the log: pure first, then once through the running service."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from zoneinfo import ZoneInfo

import pytest

from mailmentor.intake import Identity, handover
from mailmentor.model import Kind
from mailmentor.parsing.message import parse_message
from tests import mail_factory as mf
from tests.harness import Harness
from tests.waiting import wait_for

IDENTITY = Identity(user_addresses=(mf.USER,), service_address=mf.SERVICE)
NOW = datetime(2026, 1, 7, 15, 0, tzinfo=UTC)  # a Wednesday
ZONE = ZoneInfo("Europe/Berlin")


def bcc_ask(bcc: str, message_id: str = "<ask-bcc@client.example>") -> bytes:
    """An ask whose copy kept its Bcc header, with no Delivered-To or X-Original-To."""
    msg = EmailMessage()
    msg["From"] = f"Ada <{mf.USER}>"
    msg["To"] = mf.MENTOR
    msg["Bcc"] = bcc
    msg["Subject"] = "Could you introduce me?"
    msg["Message-ID"] = message_id
    msg.set_content("Could you introduce me to someone who prices B2B software?\n")
    return bytes(msg)


@pytest.mark.parametrize(
    ("bcc", "kind", "first", "notes"),
    [
        ("mentor+intro-3d@example.com", Kind.INTRO, NOW + timedelta(days=3), ()),
        ("Mailmentor <MENTOR+intro@example.com>", Kind.INTRO, None, ()),
        ("grace@example.net, mentor+2w@example.com", Kind.ADVICE, NOW + timedelta(weeks=2), ()),
        ("mentor@example.com", Kind.ADVICE, None, ()),
        ("grace@example.net", Kind.ADVICE, None, ()),  # another person BCC'd: no tag
        (
            "mentor+intro-3x@example.com",
            Kind.INTRO,
            None,
            ("unknown tag '3x' in mentor+intro-3x@example.com: treated as advice",),
        ),
        (
            "mentor+soon@example.com",
            Kind.ADVICE,
            None,
            ("unknown tag 'soon' in mentor+soon@example.com: treated as advice",),
        ),
    ],
)
def test_a_tag_only_in_bcc_is_read(
    bcc: str, kind: Kind, first: datetime | None, notes: tuple[str, ...]
) -> None:
    msg = parse_message(bcc_ask(bcc))
    assert msg.delivered_to == ()
    how = handover(msg, IDENTITY, NOW, ZONE)
    assert (how.kind, how.first_reminder_at, how.notes) == (kind, first, notes)
    assert [a.address for a in msg.to] == [mf.MENTOR_ADDRESS], "Bcc'd people are no mentors"


def test_a_tag_in_bcc_and_delivered_to_is_read_once() -> None:
    raw = bcc_ask("mentor+soon@example.com").replace(
        b"Subject:", b"Delivered-To: mentor+soon@example.com\r\nSubject:", 1
    )
    how = handover(parse_message(raw), IDENTITY, NOW, ZONE)
    assert len(how.notes) == 1, how.notes


def test_the_service_reads_a_bcc_tag_and_logs_one_it_cannot_read(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    h = harness
    with caplog.at_level(logging.INFO):
        h.deliver(bcc_ask("Mailmentor <mentor+intro-3d@example.com>"))
        loop = h.only_loop()
        h.deliver(bcc_ask("mentor+someday@example.com", message_id="<ask-2@client.example>"))
        wait_for(lambda: h.handled("<ask-2@client.example>"), what="the second ask")
    assert loop.kind is Kind.INTRO
    assert loop.first_reminder_at is not None
    assert loop.first_reminder_at - loop.created_at == timedelta(days=3)
    said = [r for r in caplog.records if "unknown tag 'someday'" in r.getMessage()]
    assert said and all(r.levelno >= logging.INFO for r in said), caplog.text
