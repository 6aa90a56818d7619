"""automatic_reason: every RFC 3834-ish signal, and people's mail left alone."""

from __future__ import annotations

from email import policy
from email.parser import BytesParser

import pytest

from mailmentor.parsing.automatic import automatic_reason
from mailmentor.parsing.message import parse_message
from tests.parsing._support import fixture

PERSON = b"From: Alan Kay <alan@example.com>\r\nTo: g@example.org\r\nSubject: Re: pricing\r\n"


def reason(extra_headers: bytes, base: bytes = PERSON) -> str | None:
    raw = base + extra_headers + b"\r\nbody\r\n"
    return automatic_reason(BytesParser(policy=policy.default).parsebytes(raw))


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        (b"", None),
        (b"Auto-Submitted: no\r\n", None),
        (b"Auto-Submitted: auto-replied\r\n", "Auto-Submitted: auto-replied"),
        (b"Auto-Submitted: Auto-Generated; by=x\r\n", "Auto-Submitted: auto-generated"),
        (b"Auto-Submitted: auto-generated (failure)\r\n", "Auto-Submitted: auto-generated"),
        (b"Auto-Submitted: no (a person)\r\n", None),
        (b"Precedence: bulk\r\n", "Precedence: bulk"),
        (b"Precedence: list\r\n", "Precedence: list"),
        (b"Precedence: junk\r\n", "Precedence: junk"),
        (b"Precedence: auto_reply\r\n", "Precedence: auto_reply"),
        (b"Precedence: first-class\r\n", None),
        (b"List-Id: <team.lists.example.org>\r\n", "mailing list (List-Id)"),
        (b"List-Unsubscribe: <mailto:u@x>\r\n", "mailing list (List-Unsubscribe)"),
        (b"X-Autoreply: yes\r\n", "x-autoreply header"),
        (b"X-Autorespond: yes\r\n", "x-autorespond header"),
        (b"X-Auto-Response-Suppress: All\r\n", "X-Auto-Response-Suppress: all"),
        (b"X-Auto-Response-Suppress: DR, OOF\r\n", "X-Auto-Response-Suppress: oof"),
        (b"X-Auto-Response-Suppress: DR, RN\r\n", None),
        (b"Return-Path: <>\r\n", "empty Return-Path (a bounce)"),
        (b"Return-Path: <alan@example.com>\r\n", None),
        (b"Content-Type: multipart/report; report-type=disposition-notification; boundary=x\r\n",
         "delivery or read report (multipart/report)"),
    ],
)  # fmt: skip
def test_headers(headers: bytes, expected: str | None) -> None:
    assert reason(headers) == expected


@pytest.mark.parametrize(
    ("sender", "expected"),
    [
        (b"MAILER-DAEMON@mx.example.org", "sent by mailer-daemon"),
        (b"Mail System <postmaster@example.org>", "sent by postmaster"),
        (b"Postmaster General <pm@example.org>", None),
    ],
)
def test_bounce_senders(sender: bytes, expected: str | None) -> None:
    assert reason(b"", base=b"From: " + sender + b"\r\nSubject: hello\r\n") == expected


@pytest.mark.parametrize(
    ("subject", "automatic"),
    [
        ("Automatic reply: pricing", True),
        ("Auto reply: pricing", True),
        ("Auto-Reply: pricing", True),
        ("AUTO-REPLY: pricing", True),
        ("Out of Office: pricing", True),
        ("Out of office until Monday", True),
        ("Autosvar: pricing", True),
        ("Abwesenheitsnotiz: pricing", True),
        ("Réponse automatique : pricing", True),
        ("=?utf-8?q?R=C3=A9ponse_automatique_=3A_pricing?=", True),
        ("Undeliverable: pricing", True),
        ("Delivery Status Notification (Failure)", True),
        ("Re: Automatic reply: pricing", False),
        ("Re: pricing", False),
        ("Thoughts on out of office etiquette", False),
    ],
)
def test_subjects(subject: str, automatic: bool) -> None:
    raw = b"From: a@x.org\r\nSubject: " + subject.encode() + b"\r\n"
    assert (reason(b"", base=raw) is not None) is automatic


def test_fixtures() -> None:
    assert parse_message(fixture("auto_reply.eml")).automatic == (
        "subject starts with 'Automatic reply'"
    )
    assert parse_message(fixture("dsn.eml")).automatic == (
        "delivery or read report (multipart/report)"
    )
    for name in ("bcc_ask.eml", "gmail_forward.eml", "outlook_reply.eml", "attached_rfc822.eml"):
        assert parse_message(fixture(name)).automatic is None, name
