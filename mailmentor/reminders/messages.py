"""Build the mails we send the user: reminders, give-up notices, "still relevant?", short replies.

Data in, EmailMessage out. Nothing here sends or reads the clock; ``ctx.now`` comes from the
injected clock so the same loop and action always render the same message, Message-ID included,
which is what makes a retried send idempotent on the receiving side.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import replace
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any

from mailmentor.model import ActionKind, Loop, PlannedAction, Stage
from mailmentor.reminders.context import ReminderContext, loop_values, short_name
from mailmentor.reminders.drafts import report_draft_text
from mailmentor.reminders.headers import (
    MAIL_POLICY,
    MAX_REFERENCES,
    REPLY_PREFIX,
    address,
    clean_body,
    clean_message_id,
    clean_subject,
    domain,
    header_text,
    set_thread_headers,
    thread_references,
)
from mailmentor.reminders.templates import check_chosen, render_part
from mailmentor.reminders.wording import (
    aware,
    days_phrase,
    elapsed,
    human_span,
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


def _new_message(
    ctx: ReminderContext,
    *,
    subject: str,
    message_id: str,
    thread: Sequence[str],
    loop: Loop | None,
) -> EmailMessage:
    """A message with the headers every mail we send carries."""
    msg = EmailMessage(policy=MAIL_POLICY)
    msg["From"] = address(ctx.service_address, "service address", display_name="mailmentor")
    msg["To"] = address(ctx.user_address, "user address")
    msg["Subject"] = header_text(subject)
    msg["Date"] = format_datetime(aware(ctx.now).astimezone(ctx.timezone))
    msg["Message-ID"] = f"<{message_id}>"
    set_thread_headers(msg, thread)
    if loop is not None:
        msg["Reply-To"] = reply_address(ctx.service_address, loop.id, ctx.secret)
        msg["X-Mailmentor-Loop"] = header_text(loop.id, limit=64)
    msg["Auto-Submitted"] = "auto-generated"
    msg["X-Auto-Response-Suppress"] = "All"
    return msg


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

    ``loop`` None: no Reply-To token (the mail is about no one loop, like the digest)."""
    text = render_part(ctx.templates_dir, names, "txt", values)
    html = render_part(ctx.templates_dir, names, "html", values)
    chosen = header_text(text.subject or html.subject or "") or subject
    msg = _new_message(ctx, subject=chosen, message_id=message_id, thread=thread, loop=loop)
    msg.set_content(text.body, charset="utf-8")
    msg.add_alternative(html.body, subtype="html", charset="utf-8")
    return msg


def _reminder_id(loop: Loop, action: PlannedAction, ctx: ReminderContext) -> str:
    return reminder_message_id(loop.id, action.key, ctx.secret, domain(ctx.service_address))


def build_reminder(loop: Loop, action: PlannedAction, ctx: ReminderContext) -> EmailMessage:
    """The reminder for ``action``: what to do next about ``loop``, threaded beside its thread.

    A give-up action renders the give-up notice instead, a still-relevant action that question.
    """
    if action.kind is ActionKind.GIVE_UP:
        return build_give_up_notice(loop, action, ctx)
    if action.kind is ActionKind.STILL_RELEVANT:
        return build_still_relevant(loop, action, ctx)
    name = short_name(loop)
    subject = clean_subject(loop.subject)
    copy = stage_copy(loop, action.stage, name, subject)
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
        "mail_subject": copy.subject,
    }
    names = _template_names(ctx, action.stage)
    check_chosen(ctx.templates_dir, ctx.template, names)
    return compose(
        ctx,
        names,
        values,
        subject=copy.subject,
        message_id=_reminder_id(loop, action, ctx),
        thread=thread_references(loop.message_ids),
        loop=loop,
    )


def build_give_up_notice(loop: Loop, action: PlannedAction, ctx: ReminderContext) -> EmailMessage:
    """Tell the user a loop is being let go (no more reminders), and how to keep it."""
    name = short_name(loop)
    subject = clean_subject(loop.subject)
    span = human_span(elapsed(loop.stage_entered_at, ctx.now))
    if action.stage is Stage.ASKED:
        headline = f"No answer from {name} in {span}"
    else:
        headline = f"Nothing new with {name} in {span}"
    line = f"Letting go: {subject} ({headline[0].lower()}{headline[1:]})"
    values = loop_values(loop, ctx, action.stage) | {
        "headline": headline,
        "paragraphs": [
            f"{headline} — letting this one go; reply “reopen” to keep it.",
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
    subject = clean_subject(loop.subject)
    line = f"Still relevant? {name}: {subject}"
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
) -> EmailMessage:
    """One short reply (``help``, unknown command), threaded to the user's mail via In-Reply-To.

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
    line = header_text(subject) or "mailmentor"
    if not REPLY_PREFIX.match(line):
        line = f"Re: {line}"
    text = clean_body(body_text, limit=20_000)
    values = {"paragraphs": [p for p in text.split("\n\n") if p.strip()]}
    # Replies keep their subject: it threads them to the user's mail.
    return compose(
        replace(ctx, templates_dir=None),
        ["reply"],
        values,
        subject=line,
        message_id=message_id,
        thread=thread,
        loop=loop,
    )
