"""Build the mails we send the user: reminders, give-up notices, "still relevant?", short replies.

Data in, EmailMessage out. Nothing here sends or reads the clock; ``ctx.now`` comes from the
injected clock so the same loop and action always render the same message, Message-ID included,
which is what makes a retried send idempotent on the receiving side.
"""

from __future__ import annotations

import binascii
import hashlib
import random
import sys
from collections.abc import Sequence
from dataclasses import replace
from email import quoprimime
from email.message import EmailMessage
from email.utils import format_datetime
from functools import lru_cache
from typing import Any

from mailmentor.model import ActionKind, Loop, PlannedAction, Stage
from mailmentor.reminders.context import ReminderContext, loop_values, short_name
from mailmentor.reminders.drafts import report_draft_text
from mailmentor.reminders.headers import (
    MAIL_POLICY,
    MAX_REFERENCES,
    REPLY_PREFIX,
    Folded,
    address,
    clean_body,
    clean_message_id,
    clean_subject,
    domain,
    folded_header,
    header_text,
    parsed,
    shared,
    shared_header,
    thread_references,
)
from mailmentor.reminders.templates import check_chosen, render_part
from mailmentor.reminders.wording import (
    aware,
    days_phrase,
    elapsed,
    human_span,
    loop_subject,
    since_event,
    stage_commands,
    stage_copy,
)
from mailmentor.schedule import ignored_reminders
from mailmentor.tokens import reminder_message_id, reply_address


def _template_names(ctx: ReminderContext, stage: Stage) -> list[str]:
    """The rule's template, then ``reminder_<stage>``, then ``reminder`` (shipped)."""
    names = [f"reminder_{stage}", "reminder"]
    if ctx.template:
        names.insert(0, ctx.template)
    return names


@lru_cache(maxsize=16)
def _parties(service_address: str, user_address: str) -> tuple[Any, Any]:
    """The From and To header objects, the same for every mail: made once."""
    sender = address(service_address, "service address", display_name="mailmentor")
    return shared("From", sender), shared("To", address(user_address, "user address"))


def _put(msg: EmailMessage, name: str, value: str) -> None:
    """Set a header we compose: folded here when that is what the policy would write anyway
    (no parsing on the way in), else the stock way."""
    folded = folded_header(name, value)
    if folded is None:
        msg[name] = value
    else:
        msg.set_raw(name, folded)


def _new_message(
    ctx: ReminderContext,
    *,
    subject: str,
    message_id: str,
    thread: Sequence[str],
    loop: Loop | None,
) -> EmailMessage:
    """A message with the headers every mail we send carries.

    Headers go in as MAIL_POLICY would store and fold them, without its parsing: the From and
    To objects are shared, the rest folded here (`folded_header`) or, in the cases that is not
    made for, set the stock way. tests/reminders/test_composition.py holds the result to the stock
    composition, byte for byte.
    """
    msg = EmailMessage(policy=MAIL_POLICY)
    sender, to = _parties(ctx.service_address, ctx.user_address)
    msg.set_raw("From", sender)
    msg.set_raw("To", to)
    _put(msg, "Subject", header_text(subject))
    _put(msg, "Date", format_datetime(aware(ctx.now).astimezone(ctx.timezone)))
    _put(msg, "Message-ID", f"<{message_id}>")
    if thread:  # In-Reply-To the thread's last id, References all of them (ids already cleaned)
        _put(msg, "In-Reply-To", f"<{thread[-1]}>")
        _put(msg, "References", " ".join(f"<{i}>" for i in thread))
    if loop is not None:
        _put(msg, "Reply-To", reply_address(ctx.service_address, loop.id, ctx.secret))
        _put(msg, "X-Mailmentor-Loop", header_text(loop.id, limit=64))
    msg.set_raw("Auto-Submitted", _AUTO_SUBMITTED)
    msg.set_raw("X-Auto-Response-Suppress", _SUPPRESS)
    return msg


_AUTO_SUBMITTED = Folded("auto-generated")
_SUPPRESS = Folded("All")
_MIME_VERSION = Folded("1.0")
#: Boundaries as the stdlib's generator makes them: 15 '=', 19 random digits, '=='.
_BOUNDARY_DIGITS = len(repr(sys.maxsize - 1))


def _text_part(body: str, subtype: str, *, top: bool) -> EmailMessage:
    """What ``set_content(body, subtype=subtype, charset="utf-8")`` makes under MAIL_POLICY:
    the same transfer encoding (7bit when it can, else the shorter of quoted-printable and
    base64, chosen on the first ten lines as the stdlib does) and the same headers; ``top``:
    a part made by ``add_alternative`` also carries MIME-Version, as the stdlib's does."""
    part = EmailMessage(policy=MAIL_POLICY)
    cte, payload = _encode_text(body)
    part.set_raw("Content-Type", shared_header("Content-Type", f'text/{subtype}; charset="utf-8"'))
    part.set_raw("Content-Transfer-Encoding", shared_header("Content-Transfer-Encoding", cte))
    if top:
        part.set_raw("MIME-Version", _MIME_VERSION)
    part.set_payload(payload)
    return part


def _encode_text(text: str) -> tuple[str, str]:
    """email.contentmanager's choice of transfer encoding for utf-8 text under MAIL_POLICY
    (7bit transport, CRLF, lines of 78), and the encoded body."""
    limit = MAIL_POLICY.max_line_length or 78
    lines = text.encode("utf-8").splitlines()
    normal = b"\n".join(lines) + b"\n"
    if max((len(x) for x in lines), default=0) <= limit and normal.isascii():
        return "7bit", normal.decode("ascii")
    sniff = b"\r\n".join(lines[:10]) + b"\r\n"
    sniff_qp = quoprimime.body_encode(sniff.decode("latin-1"), limit)
    if len(sniff_qp) > len(binascii.b2a_base64(sniff)):
        data = b"\r\n".join(lines) + b"\r\n"
        step = limit // 4 * 3
        encoded = (binascii.b2a_base64(data[i : i + step]) for i in range(0, len(data), step))
        return "base64", b"".join(encoded).decode("ascii")
    if len(lines) <= 10:
        return "quoted-printable", sniff_qp
    return "quoted-printable", quoprimime.body_encode(normal.decode("latin-1"), limit)


def _boundary(parts: Sequence[str]) -> str:
    """A multipart boundary as the stdlib's generator makes one, found in none of the parts."""
    while True:
        token = random.randrange(sys.maxsize)
        boundary = "=" * 15 + f"{token:0{_BOUNDARY_DIGITS}d}" + "=="
        if not any(boundary in part for part in parts):
            return boundary


def compose(
    ctx: ReminderContext,
    names: Sequence[str],
    values: dict[str, Any],
    *,
    subject: str,
    message_id: str,
    thread: Sequence[str],
    loop: Loop | None,
) -> EmailMessage:
    """Render both bodies (text, then HTML), take a subject a template set, build the mail.

    The mail is what ``set_content(text)`` and ``add_alternative(html, subtype="html")`` make
    (multipart/alternative, each part utf-8), assembled directly.

    ``loop`` None: no Reply-To token (the mail is about no one loop, like the digest)."""
    text = render_part(ctx.templates_dir, names, "txt", values)
    html = render_part(ctx.templates_dir, names, "html", values)
    chosen = header_text(text.subject or html.subject or "") or subject
    msg = _new_message(ctx, subject=chosen, message_id=message_id, thread=thread, loop=loop)
    parts = [_text_part(text.body, "plain", top=False), _text_part(html.body, "html", top=True)]
    boundary = _boundary([str(part.get_payload()) for part in parts])
    msg.set_raw("MIME-Version", _MIME_VERSION)
    content_type = Folded(f'multipart/alternative;\r\n boundary="{boundary}"')
    msg.set_raw("Content-Type", parsed("Content-Type", content_type))
    for part in parts:
        msg.attach(part)
    return msg


def subject_of(loop: Loop) -> str:
    """The loop's one subject (`loop_subject`), the same in every mail about it."""
    return loop_subject(short_name(loop), clean_subject(loop.subject))


def _reminder_id(loop: Loop, action: PlannedAction, ctx: ReminderContext) -> str:
    return reminder_message_id(loop.id, action.key, ctx.secret, domain(ctx.service_address))


def build_reminder(loop: Loop, action: PlannedAction, ctx: ReminderContext) -> EmailMessage:
    """The reminder for ``action``: what to do next about ``loop`` (the body's first line),
    under the loop's one subject, threaded beside its thread.

    A give-up action renders the give-up notice instead, a still-relevant action that question.
    """
    if action.kind is ActionKind.GIVE_UP:
        return build_give_up_notice(loop, action, ctx)
    if action.kind is ActionKind.STILL_RELEVANT:
        return build_still_relevant(loop, action, ctx)
    name = short_name(loop)
    subject = clean_subject(loop.subject)
    copy = stage_copy(loop, action.stage, name, subject)
    line = subject_of(loop)
    since = days_phrase(elapsed(loop.stage_entered_at, ctx.now))
    values = loop_values(loop, ctx, action.stage)
    values |= {
        "headline": copy.headline,
        "paragraphs": copy.paragraphs,
        "since": f"{since} since {since_event(action.stage, name)}",
        "draft": report_draft_text(loop, ctx) if copy.report_draft else "",
        "ideas": copy.ideas,
        "commands": stage_commands(action.stage),
        "sequence": action.sequence,
        "mail_subject": line,
    }
    names = _template_names(ctx, action.stage)
    check_chosen(ctx.templates_dir, ctx.template, names)
    return compose(
        ctx,
        names,
        values,
        subject=line,
        message_id=_reminder_id(loop, action, ctx),
        thread=thread_references(loop.message_ids),
        loop=loop,
    )


def build_give_up_notice(loop: Loop, action: PlannedAction, ctx: ReminderContext) -> EmailMessage:
    """Tell the user a loop is being let go (no more reminders), and how to keep it."""
    name = short_name(loop)
    span = human_span(elapsed(loop.stage_entered_at, ctx.now))
    if action.stage is Stage.ASKED:
        why = f"no answer from {name} in {span}"
    else:
        why = f"nothing new with {name} in {span}"
    line = subject_of(loop)
    values = loop_values(loop, ctx, action.stage) | {
        "headline": f"Letting go: {why}",
        "paragraphs": [
            f"{why[0].upper()}{why[1:]} — letting this one go; reply “reopen” to keep it.",
            "No hard feelings: people get busy. The loop stays in your history.",
        ],
        "since": "",
        "draft": "",
        "ideas": [],
        "commands": "reopen · help",
        "sequence": 0,
        "mail_subject": line,
    }
    return compose(
        ctx,
        ["give_up"],
        values,
        subject=line,
        message_id=_reminder_id(loop, action, ctx),
        thread=thread_references(loop.message_ids),
        loop=loop,
    )


def build_still_relevant(loop: Loop, action: PlannedAction, ctx: ReminderContext) -> EmailMessage:
    """Ask once whether a loop whose reminders went unanswered still matters; it is paused.

    Same headers as a reminder (Reply-To token, threading, Auto-Submitted), so one-line answers
    (done, snooze 2w, stop, reopen) reach the loop.
    """
    name = short_name(loop)
    line = subject_of(loop)
    values = loop_values(loop, ctx, action.stage) | {
        "headline": f"Still relevant? Your loop with {name}",
        "ignored": max(ignored_reminders(loop), 1),
        "commands": "done · snooze 2w · stop · reopen",
        "sequence": action.sequence,
        "mail_subject": line,
    }
    return compose(
        ctx,
        ["still_relevant"],
        values,
        subject=line,
        message_id=_reminder_id(loop, action, ctx),
        thread=thread_references(loop.message_ids),
        loop=loop,
    )


def build_reply(
    to_message_id: str | None,
    subject: str,
    body_text: str,
    ctx: ReminderContext,
    loop: Loop | None = None,
    *,
    reply: bool = True,
) -> EmailMessage:
    """One short reply (``help``, unknown command), threaded to the user's mail via In-Reply-To.
    ``reply`` False: a notice of its own (no "Re:"), e.g. that the sign-in needs renewing.
    With a ``loop``, the subject is the loop's one subject (`subject_of`), so the answer stays
    in the loop's conversation with its reminders, whatever ``subject`` says.

    Its Message-ID is derived from the incoming one, so answering the same mail twice yields the
    same id; with a loop it is a reminder-style id, so a reply to it still names the loop.
    """
    incoming = clean_message_id(to_message_id)
    seed = f"{incoming}help" if incoming else f"{subject}\n{body_text}\n{ctx.now.isoformat()}help"
    service_domain = domain(ctx.service_address)
    if loop is not None:
        message_id = reminder_message_id(loop.id, seed, ctx.secret, service_domain)
        thread = thread_references(loop.message_ids, MAX_REFERENCES - 1)
    else:
        digest = hashlib.sha256(seed.encode("utf-8")).hexdigest()[:12]
        message_id = f"mm.reply.{digest}@{service_domain}"
        thread = []
    if incoming:
        thread = [i for i in thread if i != incoming] + [incoming]
    line = header_text(subject_of(loop) if loop is not None else subject) or "mailmentor"
    if reply and not REPLY_PREFIX.match(line):
        line = f"Re: {line}"
    text = clean_body(body_text, limit=20_000)
    values = {"paragraphs": [p for p in text.split("\n\n") if p.strip()]}
    # Replies keep their subject (a loop's is the loop's): it threads them to the user's mail.
    return compose(
        replace(ctx, templates_dir=None),
        ["reply"],
        values,
        subject=line,
        message_id=message_id,
        thread=thread,
        loop=loop,
    )
