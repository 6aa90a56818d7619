"""Messages as a user's mail client would write them, for the end-to-end tests."""

from __future__ import annotations

import email
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from mailmentor.clock import SystemClock

USER = "ada@example.com"
SERVICE = "mentor@example.com"
MENTOR = "Alan Kay <alan@example.org>"
MENTOR_ADDRESS = "alan@example.org"
ANSWER_ID = "<answer-1@mentor.example>"


def _base(sender: str, to: str, subject: str, message_id: str | None = None) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = format_datetime(SystemClock().now())
    msg["Message-ID"] = message_id or make_msgid(domain="client.example")
    return msg


def ask(
    message_id: str = "<ask-1@client.example>",
    to: str = MENTOR,
    subject: str = "Advice on pricing page?",
) -> bytes:
    """The user's advice request; the service was BCC'd so it does not appear in the headers."""
    msg = _base(f"Ada <{USER}>", to, subject, message_id)
    msg.set_content("Alan, our pricing page converts at 1%. What would you change first?\n")
    return bytes(msg)


def follow_up(in_reply_to: str, text: str = "Here is what came of it.") -> bytes:
    msg = _base(f"Ada <{USER}>", MENTOR, "Re: Advice on pricing page?")
    msg["In-Reply-To"] = in_reply_to
    msg["References"] = in_reply_to
    msg.set_content(text + "\n")
    return bytes(msg)


def mentor_reply(in_reply_to: str, message_id: str = ANSWER_ID, subject: str = "") -> bytes:
    """The mentor answers the user directly (mailbox mode: it lands in the user's INBOX)."""
    msg = _base(MENTOR, f"Ada <{USER}>", subject or "Re: Advice on pricing page?", message_id)
    msg["In-Reply-To"] = in_reply_to
    msg["References"] = in_reply_to
    msg.set_content("Cut it to three plans and show the annual price first.\n\nAlan\n")
    return bytes(msg)


def gmail_forward(subject: str = "Re: Advice on pricing page?") -> bytes:
    msg = _base(f"Ada <{USER}>", SERVICE, f"Fwd: {subject}")
    msg.set_content(
        "see below\n\n"
        "---------- Forwarded message ---------\n"
        f"From: {MENTOR}\n"
        "Date: Mon, Jan 5, 2026 at 9:14 AM\n"
        f"Subject: {subject}\n"
        f"To: Ada <{USER}>\n\n"
        "Cut it to three plans and show the annual price first.\n\nAlan\n"
    )
    return bytes(msg)


def rfc822_forward(in_reply_to: str) -> bytes:
    """The mentor's answer attached as message/rfc822, carrying its own threading headers."""
    answer = _base(
        MENTOR, f"Ada <{USER}>", "Re: Advice on pricing page?", "<answer-1@mentor.example>"
    )
    answer["In-Reply-To"] = in_reply_to
    answer["References"] = in_reply_to
    answer.set_content("Raise prices by 20% and watch churn for a month.\n\nAlan\n")
    msg = _base(f"Ada <{USER}>", SERVICE, "Fwd: Re: Advice on pricing page?")
    msg.set_content("His answer, attached.\n")
    msg.add_attachment(answer)
    return bytes(msg)


def reply_to_reminder(reminder: EmailMessage, text: str, sender: str = f"Ada <{USER}>") -> bytes:
    msg = _base(sender, str(reminder["Reply-To"]), f"Re: {reminder['Subject']}")
    msg["In-Reply-To"] = str(reminder["Message-ID"])
    msg["References"] = str(reminder["Message-ID"])
    body = reminder.get_body(preferencelist=("plain",))
    quoted = body.get_content() if isinstance(body, EmailMessage) else ""
    lines = "\n".join(f"> {line}" for line in quoted.splitlines())
    msg.set_content(f"{text}\n\nOn Mon, 5 Jan 2026, mailmentor wrote:\n{lines}\n")
    return bytes(msg)


def auto_reply(to: str) -> bytes:
    msg = _base(f"Ada <{USER}>", to, "Automatic reply: Act on Alan's advice")
    msg["Auto-Submitted"] = "auto-replied"
    msg.set_content("done\n\nI am out of the office until Monday.\n")
    return bytes(msg)


def tagged_ask(
    delivered_to: str,
    subject: str = "Advice on pricing page?",
    message_id: str = "<ask-tag@client.example>",
    to: str = MENTOR,
    cc: str | None = None,
) -> bytes:
    """A BCC as the receiving server stores it: the service address only in Delivered-To."""
    msg = _base(f"Ada <{USER}>", to, subject, message_id)
    if cc:
        msg["Cc"] = cc
    msg["Delivered-To"] = delivered_to
    msg.set_content("Could you introduce me to someone who prices B2B software?\n")
    return bytes(msg)


def message_id_of(raw: bytes) -> str:
    """The Message-ID of a mail made here, without angle brackets."""
    found = email.message_from_bytes(raw)["Message-ID"]
    return str(found).strip().strip("<>")
