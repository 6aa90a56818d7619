"""Recognising automatic mail (RFC 3834), so that mailmentor never answers a robot.

Headers come first (Auto-Submitted, Precedence, list headers, DSN/MDN reports, bounce senders),
then subjects, because out-of-office replies from Outlook-style servers often carry no header at
all (see FIELD-NOTES). Each rule returns a short reason that ends up in the log.
"""

from __future__ import annotations

import re
from email.message import Message

from mailmentor.parsing.message import (
    content_type,
    first_header,
    header_text,
    parse_addresses,
    raw_headers,
    single_line,
)

_BULK_PRECEDENCE = frozenset(("bulk", "list", "junk", "auto_reply", "auto-reply"))
_BOUNCE_LOCAL_PARTS = frozenset(("mailer-daemon", "postmaster", "mail-daemon", "mailerdaemon"))
_REPORT_TYPES = frozenset(
    ("multipart/report", "message/delivery-status", "message/disposition-notification")
)
_AUTO_SUBJECT = re.compile(
    r"^\s*(?:automatic reply|auto reply|auto-reply|autoreply|auto response|auto-response"
    r"|automatische antwort|out of (?:the )?office|autosvar|abwesenheitsnotiz"
    r"|réponse automatique|respuesta automática|risposta automatica|automatisch antwoord"
    r"|undeliverable|undelivered mail|delivery status notification|delivery failure"
    r"|mail delivery failed|returned mail|failure notice|non remis|unzustellbar)\b",
    re.I,
)


def _token(value: str) -> str:
    """The first word of a structured header value, lower-case ("auto-replied; x=y" → …)."""
    without_comments = re.sub(r"\([^()]*\)", " ", single_line(value))
    return without_comments.split(";")[0].strip().lower()


def _header_reason(msg: Message) -> str | None:
    auto_submitted = _token(first_header(msg, "auto-submitted"))
    if auto_submitted and auto_submitted != "no":
        return f"Auto-Submitted: {auto_submitted}"
    precedence = _token(first_header(msg, "precedence"))
    if precedence in _BULK_PRECEDENCE:
        return f"Precedence: {precedence}"
    if raw_headers(msg, "list-id"):
        return "mailing list (List-Id)"
    if raw_headers(msg, "list-unsubscribe"):
        return "mailing list (List-Unsubscribe)"
    for name in ("x-autoreply", "x-autorespond", "x-autoresponse"):
        if raw_headers(msg, name):
            return f"{name} header"
    suppress = {
        part.strip().lower() for part in first_header(msg, "x-auto-response-suppress").split(",")
    }
    if suppress & {"all", "oof"}:
        return "X-Auto-Response-Suppress: " + ", ".join(sorted(suppress & {"all", "oof"}))
    return None


def _bounce_reason(msg: Message) -> str | None:
    ctype = content_type(msg)
    if ctype in _REPORT_TYPES:
        return f"delivery or read report ({ctype})"
    return_paths = raw_headers(msg, "return-path")
    if return_paths and re.fullmatch(r"\s*<\s*>\s*", return_paths[0]):
        return "empty Return-Path (a bounce)"
    for sender in parse_addresses(raw_headers(msg, "from"))[:1]:
        local = sender.address.split("@", 1)[0]
        if local in _BOUNCE_LOCAL_PARTS:
            return f"sent by {local}"
    return None


def automatic_reason(msg: Message) -> str | None:
    """None for mail a person wrote; else a short reason it is automatic. Never raises."""
    try:
        reason = _header_reason(msg) or _bounce_reason(msg)
        if reason:
            return reason
        match = _AUTO_SUBJECT.match(header_text(msg, "subject"))
    except Exception:  # an unreadable header says nothing either way
        return None
    return f"subject starts with {match.group(0).strip()!r}" if match else None
