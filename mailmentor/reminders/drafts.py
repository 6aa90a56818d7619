"""The report-back draft: the user's own mail to the mentor, saved to Drafts, never sent by us."""

from __future__ import annotations

import hashlib
from email.message import EmailMessage
from email.utils import format_datetime

from mailmentor.model import ActionKind, Kind, Loop, PlannedAction, Stage
from mailmentor.reminders.context import ReminderContext, loop_values
from mailmentor.reminders.headers import (
    MAIL_POLICY,
    MAX_NAME,
    address,
    clean_body,
    clean_subject,
    domain,
    header_text,
    set_thread_headers,
    thread_references,
)
from mailmentor.reminders.templates import render_part
from mailmentor.reminders.wording import aware

#: The advice quoted in a report-back draft: enough to recall it, short enough to edit around.
MAX_DRAFT_QUOTE = 300


def report_draft_text(loop: Loop, ctx: ReminderContext) -> str:
    """The starter text of the report-back (``report_draft.txt.j2``), with [brackets] to fill."""
    values = loop_values(loop, ctx) | {
        "advice_excerpt": clean_body(loop.advice_excerpt, limit=MAX_DRAFT_QUOTE),
    }
    return render_part(ctx.templates_dir, ["report_draft"], "txt", values).body.strip()


def asks_for_report(loop: Loop, action: PlannedAction) -> bool:
    """Whether the mail for ``action`` is the reminder to report back (so it carries a draft)."""
    if action.kind is ActionKind.WAKE:
        stage = loop.snoozed_from or action.stage
    elif action.kind is ActionKind.REMIND:
        stage = action.stage
    else:
        return False
    return stage is Stage.ACTED and loop.kind in (Kind.ADVICE, Kind.INTRO)


def build_report_draft(loop: Loop, ctx: ReminderContext) -> EmailMessage:
    """The user's report-back to the mentor, as a draft for the user's Drafts folder.

    From the user to the mentor, "Re: <subject>", threaded to the loop's conversation. It is the
    user's own mail, so none of the automatic-mail headers or loop tokens: mailmentor never sends
    it, the user edits and sends it (or not).
    """
    msg = EmailMessage(policy=MAIL_POLICY)
    msg["From"] = address(ctx.user_address, "user address")
    msg["To"] = address(
        loop.mentor.address,
        f"mentor address of loop {loop.id}",
        display_name=header_text(loop.mentor.name, limit=MAX_NAME),
    )
    msg["Subject"] = f"Re: {clean_subject(loop.subject)}"
    msg["Date"] = format_datetime(aware(ctx.now).astimezone(ctx.timezone))
    seed = f"{loop.id}\n{aware(loop.stage_entered_at).isoformat()}\ndraft"
    digest = hashlib.sha256(seed.encode("utf-8")).hexdigest()[:16]
    msg["Message-ID"] = f"<mm.draft.{digest}@{domain(ctx.user_address)}>"
    set_thread_headers(msg, thread_references(loop.message_ids))
    msg.set_content(report_draft_text(loop, ctx) + "\n", charset="utf-8")
    return msg
