"""The report-back draft: the user's own mail to the mentor, saved to Drafts, never sent by us."""

from __future__ import annotations

import hashlib
import re
from email.message import EmailMessage
from email.utils import format_datetime

from mailmentor.model import ActionKind, Kind, Loop, PlannedAction, Stage
from mailmentor.parsing.commands import GREETINGS, SIGN_OFFS
from mailmentor.parsing.quoting import is_signature_start
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

_GREETING_WORDS = "|".join(re.escape(w) for w in sorted(GREETINGS, key=len, reverse=True))
_NAME_WORD = r"[^\W\d_][\w.'’-]*"
#: "Hi Ada," alone on its line, or opening the first line ("Hi Ada, cut it to three plans").
_GREETING_LINE = re.compile(rf"^(?i:{_GREETING_WORDS})(?:\s+{_NAME_WORD}){{0,3}}\s*[,!:.]?\s*$")
_GREETING_OPENING = re.compile(rf"^(?i:{_GREETING_WORDS})(?:\s+{_NAME_WORD}){{0,3}}\s*[,!:]\s+")
_SIGN_OFF_WORDS = "|".join(re.escape(w) for w in sorted(SIGN_OFFS, key=len, reverse=True))
_CAPITALISED = r"[^\W\d_a-zß-ÿ][\w.'’-]*"
#: "Best, Alan", "Viele Grüße", "Cheers Alan Kay" alone on the last line, or ending it.
_SIGN_OFF_LINE = re.compile(
    rf"^(?i:{_SIGN_OFF_WORDS})(?![\w'])[\s,.!]*(?:{_CAPITALISED}[\s,.!]*){{0,3}}$"
)
_SIGN_OFF_ENDING = re.compile(
    rf"(?<=[.!?])\s+(?i:{_SIGN_OFF_WORDS})(?![\w'])[\s,.!]*(?:{_CAPITALISED}[\s,.!]*){{0,3}}$"
)
#: A last line that is only a name ("Alan", "Alan Kay", "A. Kay"): the signature.
_NAME_LINE = re.compile(r"^(?:[^\W\d_a-zß-ÿ](?:\.|[\w'’-]*)\s*){1,3}$")


def advice_substance(text: str) -> str:
    """The advice without the mentor's greeting ("Hi Ada,"), sign-off ("Best, Alan") and
    signature ("-- " blocks, "Sent from my iPhone"): what is worth quoting back to them.
    The text as it was when nothing else would be left."""
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").split("\n")]
    for index, line in enumerate(lines):
        if index and (is_signature_start(line) or line.startswith("-- ")):
            lines = lines[:index]
            break
    while lines and not lines[0].strip():
        lines.pop(0)
    if lines and _GREETING_LINE.match(lines[0].strip()):
        lines.pop(0)
    elif lines:
        opened = _GREETING_OPENING.sub("", lines[0].strip(), count=1)
        lines[0] = opened[:1].upper() + opened[1:]  # "Hi Ada, cut it…" → "Cut it…"
    while lines:
        last = lines[-1].strip()
        signed = len(lines) > 1 and (_SIGN_OFF_LINE.match(last) or _NAME_LINE.match(last))
        if not last or signed:
            lines.pop()
        else:
            lines[-1] = _SIGN_OFF_ENDING.sub("", lines[-1])
            break
    substance = re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
    return substance or text.strip()


def sentence_end(text: str) -> str:
    """The full stop a sentence ending in ``text`` still needs: none after ? ! . or …
    ("advice on Should I learn COBOL?", not "…COBOL?.")."""
    return "" if text.rstrip(" \"'”’»)]").endswith((".", "?", "!", "…")) else "."


def report_draft_text(loop: Loop, ctx: ReminderContext) -> str:
    """The starter text of the report-back (``report_draft.txt.j2``), with [brackets] to fill."""
    values = loop_values(loop, ctx)
    values |= {
        "advice_excerpt": clean_body(advice_substance(loop.advice_excerpt), limit=MAX_DRAFT_QUOTE),
        "subject_end": sentence_end(values["subject"]),
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
