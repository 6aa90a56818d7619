"""Render reminder, give-up, "still relevant?" and short reply mails, and the report-back draft.

Data in, EmailMessage out. Nothing here sends or reads the clock; ``ctx.now`` comes from the
injected clock so the same loop and action always render the same message, Message-ID included,
which is what makes a retried send idempotent on the receiving side.

Templates (``<name>.txt.j2`` / ``<name>.html.j2``) are looked up first in the user's
``RULES_DIR/templates/`` (``ctx.templates_dir``), then in the package. A user template that does
not compile or render is logged with its file and line, and the shipped one is used instead: a
typo never costs a reminder. The variables templates see are listed in docs/rules.md.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import re
import traceback
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import EmailPolicy
from email.utils import format_datetime, parseaddr
from functools import lru_cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import jinja2
import jinja2.sandbox

from mailmentor.model import ActionKind, Kind, Loop, PlannedAction, Stage
from mailmentor.schedule import ignored_reminders
from mailmentor.tokens import reminder_message_id, reply_address

log = logging.getLogger("mailmentor.reminders")

#: User templates live in this folder of RULES_DIR, apart from the rule files.
TEMPLATES_DIRNAME = "templates"

HELP_TEXT = """\
acted (or done) — you acted on the advice
advised — the mentor has answered
reported — you told the mentor how it went
gave back [note] — you gave something back (thanks, an article, an introduction)
snooze 3d — pause this loop for a while (also: snooze 2w, snooze until friday)
note <text> — add a note to the loop's history
reopen — keep a loop that was let go
stop — drop this loop, no more reminders
help — this list"""

#: How many thread ids go into References: enough to thread, bounded against huge threads.
MAX_REFERENCES = 20
MAX_SUBJECT = 120
MAX_NAME = 60
MAX_EXCERPT = 800
#: The advice quoted in a report-back draft: enough to recall it, short enough to edit around.
MAX_DRAFT_QUOTE = 300

_ID_HEADERS = frozenset({"message-id", "in-reply-to", "references"})
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\ufeff]+")
_TEXT_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029\ufeff]")
_REPLY_PREFIX = re.compile(r"^\s*((re|fwd?|aw|wg|tr|sv|vs)\s*(\[\d+\])?\s*:\s*)+", re.IGNORECASE)
_MESSAGE_ID = re.compile(r"[!-;=?-~]+")  # printable ASCII without '<', '>' and space


class _MailPolicy(EmailPolicy):
    """The default policy, except that Message-ID, In-Reply-To and References are folded by hand.

    The stock folder RFC 2047-encodes a message id longer than a line, which threading code in
    mail clients and IMAP servers does not decode; ids must stay verbatim.
    """

    def _fold_ids(self, name: str, value: str) -> str | None:
        ids = str(value).split()
        if not ids or not all(_MESSAGE_ID.fullmatch(i.strip("<>")) for i in ids):
            return None
        linesep = self.linesep
        lines = [f"{name}: {ids[0]}"]
        limit = self.max_line_length or 78
        for item in ids[1:]:
            if len(lines[-1]) + 1 + len(item) > limit:
                lines.append(f" {item}")
            else:
                lines[-1] += f" {item}"
        return linesep.join(lines) + linesep

    def _fold_text(self, name: str, value: str) -> str | None:
        text = str(value)
        if not text or text != " ".join(text.split()):
            return None
        lines = _fold_tokens(f"{name}:", encode_words(text), self.max_line_length or 78)
        return self.linesep.join(lines) + self.linesep

    def _fold_own(self, name: str, value: Any) -> str | None:
        key = name.lower()
        if key in _ID_HEADERS:
            return self._fold_ids(name, value)
        if key == "subject":
            return self._fold_text(name, value)
        return None

    def header_store_parse(self, name: str, value: Any) -> tuple[str, Any]:
        """Keep a subject's literal text literal: '=?…?=' in it is text, not an encoded word."""
        if name.lower() == "subject" and isinstance(value, str) and not hasattr(value, "name"):
            text = " ".join(value.split())
            if text and text == value:
                value = " ".join(encode_words(text))
        return super().header_store_parse(name, value)

    def fold(self, name: str, value: Any) -> str:
        folded = self._fold_own(name, value)
        return folded if folded is not None else super().fold(name, value)

    def fold_binary(self, name: str, value: Any) -> bytes:
        folded = self._fold_own(name, value)
        return folded.encode("ascii") if folded is not None else super().fold_binary(name, value)


def _encoded_words(text: str, max_bytes: int = 42) -> list[str]:
    """RFC 2047 base64 words for ``text``, split on character boundaries (each ≤ 68 chars)."""
    words: list[str] = []
    chunk = b""
    for char in text:
        data = char.encode("utf-8")
        if chunk and len(chunk) + len(data) > max_bytes:
            words.append(f"=?utf-8?b?{base64.b64encode(chunk).decode('ascii')}?=")
            chunk = b""
        chunk += data
    if chunk:
        words.append(f"=?utf-8?b?{base64.b64encode(chunk).decode('ascii')}?=")
    return words


def _needs_encoding(word: str) -> bool:
    return not word.isascii() or "=?" in word or "?=" in word or len(word) > 60


def encode_words(text: str) -> list[str]:
    """Header tokens for single-spaced ``text``: ASCII words as they are, the rest RFC 2047.

    Runs of words that need encoding become one run of encoded words with the spaces inside the
    encoding, since decoders drop the whitespace between adjacent encoded words. (Python 3.11's
    own folder loses or adds spaces in some mixes of ASCII and non-ASCII words.)
    """
    tokens: list[str] = []
    run: list[str] = []
    for word in text.split(" "):
        if _needs_encoding(word):
            run.append(word)
            continue
        if run:
            tokens.extend(_encoded_words(" ".join(run)))
            run = []
        tokens.append(word)
    if run:
        tokens.extend(_encoded_words(" ".join(run)))
    return tokens


def _fold_tokens(start: str, tokens: list[str], limit: int) -> list[str]:
    """Lay tokens out after ``start`` on lines of at most ``limit`` (one token may exceed it)."""
    lines = [start]
    for token in tokens:
        if len(lines[-1]) + 1 + len(token) > limit and lines[-1] != start:
            lines.append(f" {token}")
        else:
            lines[-1] += f" {token}"
    return lines


#: Policy of every message built here: CRLF, and 7-bit bodies (quoted-printable where needed) so any
#: SMTP server accepts them as they are.
MAIL_POLICY: EmailPolicy = _MailPolicy().clone(linesep="\r\n", cte_type="7bit")


@dataclass(frozen=True)
class ReminderContext:
    """What rendering needs besides the loop: who writes to whom, the secret and the time.

    ``templates_dir`` holds the user's template overrides (None: shipped templates only);
    ``template`` is the rule's template name for this reminder (None: the stage's default).
    """

    service_address: str
    user_address: str
    secret: bytes = field(repr=False)
    timezone: ZoneInfo
    now: datetime
    templates_dir: Path | None = None
    template: str | None = None


# --- small pure helpers ---------------------------------------------------------------------


def header_text(value: str, limit: int = MAX_SUBJECT) -> str:
    """One safe header line from hostile text: no CR/LF or control characters, bounded length."""
    cleaned = " ".join(_CONTROL.sub(" ", str(value)).split())
    if len(cleaned) > limit:
        cleaned = cleaned[: limit - 1].rstrip() + "…"
    return cleaned


def clean_body(value: str, limit: int = MAX_EXCERPT) -> str:
    """Text for a mail body: newlines normalised, control characters dropped, bounded length."""
    text = str(value).replace("\r\n", "\n").replace("\r", "\n")
    text = _TEXT_CONTROL.sub("", text).strip()
    text = re.sub(r"\n{3,}", "\n\n", text)
    if len(text) > limit:
        text = text[: limit - 1].rstrip() + "…"
    return text


def clean_subject(subject: str) -> str:
    """The loop subject for our own subjects: no Re:/Fwd: prefixes, one line, bounded."""
    text = header_text(subject, limit=10 * MAX_SUBJECT)
    text = _REPLY_PREFIX.sub("", text).strip()
    return header_text(text, limit=80) or "(no subject)"


def clean_message_id(value: str | None) -> str | None:
    """A Message-ID without angle brackets, or None when it is absent or unsafe in a header."""
    if not value:
        return None
    cleaned = str(value).strip().strip("<>").strip()
    if not cleaned or len(cleaned) > 900 or not _MESSAGE_ID.fullmatch(cleaned):
        return None
    return cleaned


def thread_references(message_ids: Iterable[str], limit: int = MAX_REFERENCES) -> list[str]:
    """The thread's usable ids, de-duplicated, oldest first, capped to the last ``limit``."""
    seen: set[str] = set()
    result: list[str] = []
    for raw in message_ids:
        cleaned = clean_message_id(raw)
        if cleaned and cleaned not in seen:
            seen.add(cleaned)
            result.append(cleaned)
    return result[-limit:] if limit > 0 else []


def _aware(when: datetime) -> datetime:
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def elapsed(since: datetime, now: datetime) -> timedelta:
    """Time from ``since`` to ``now``, never negative (naive datetimes are taken as UTC)."""
    return max(_aware(now) - _aware(since), timedelta(0))


def days_phrase(delta: timedelta) -> str:
    """'Less than a day', '1 day', '5 days'."""
    days = delta.days
    if days < 1:
        return "Less than a day"
    return "1 day" if days == 1 else f"{days} days"


def human_span(delta: timedelta) -> str:
    """A rounded span for people: '5 days', '3 weeks', '2 months'."""
    days = delta.days
    if days < 1:
        return "a day"
    if days < 14:
        return "1 day" if days == 1 else f"{days} days"
    if days < 60:
        return f"{round(days / 7)} weeks"
    return f"{round(days / 30)} months"


def _local_date(when: datetime, zone: ZoneInfo) -> str:
    local = _aware(when).astimezone(zone)
    return f"{local:%a} {local.day} {local:%b}"


def _domain(address: str) -> str:
    return address.rpartition("@")[2].strip().lower() or "localhost"


def _possessive(name: str) -> str:
    return f"{name}'" if name.endswith("s") and "@" not in name else f"{name}'s"


# --- what each stage says -------------------------------------------------------------------


@dataclass(frozen=True)
class _Copy:
    """The words of one message, ready for the templates."""

    headline: str
    subject: str
    paragraphs: list[str]
    since: str = ""
    commands: str = ""
    report_draft: bool = False  # the mail asks to report back: offer a starter draft
    ideas: list[str] = field(default_factory=list)


_COMMANDS: dict[Stage, str] = {
    Stage.ASKED: "advised · snooze 3d · stop · help",
    Stage.ADVISED: "done · snooze 3d · stop · help",
    Stage.ACTED: "reported · snooze 3d · stop · help",
    Stage.REPORTED: "gave back [note] · snooze 2w · stop · help",
    Stage.GAVE_BACK: "gave back [note] · stop · help",
}
_GENERIC_COMMANDS = "done · snooze 3d · stop · help"


def _since_event(stage: Stage, name: str) -> str:
    return {
        Stage.ASKED: f"you asked {name}",
        Stage.ADVISED: f"{_possessive(name)} advice arrived",
        Stage.ACTED: f"you acted on {_possessive(name)} advice",
        Stage.REPORTED: f"you reported back to {name}",
        Stage.GAVE_BACK: f"you last gave something back to {name}",
    }.get(stage, "the last change on this loop")


_IDEAS = [
    "Thank them with one concrete result their advice led to.",
    "Send an article, a tool or a talk that fits what they care about.",
    "Offer an introduction to someone they would like to meet.",
    "Ask what they are working on, and how you could help.",
]


def _stage_copy(loop: Loop, stage: Stage, name: str, subject: str) -> _Copy:
    if loop.kind not in (Kind.ADVICE, Kind.INTRO):
        return _Copy(
            headline=f"Check in with {name}",
            subject=f"Check in with {name}: {subject}",
            paragraphs=[f"A good moment to check in with {name} about {subject}."],
        )
    if stage is Stage.ASKED:
        return _Copy(
            headline=f"No answer yet from {name}",
            subject=f"No answer yet from {name}: {subject}",
            paragraphs=[
                f"If it still matters, a short, kind follow-up often helps: {name} may simply "
                "have missed it. Or give it more time; people are busy.",
                f"If {name} already answered, reply “advised” (or forward the answer to me).",
            ],
        )
    if stage is Stage.ADVISED:
        return _Copy(
            headline=f"Act on {_possessive(name)} advice",
            subject=f"Act on {_possessive(name)} advice: {subject}",
            paragraphs=[
                "Pick one thing from the advice and try it, in your own way. "
                "Reply “done” when you have acted on it.",
            ],
        )
    if stage is Stage.ACTED:
        return _Copy(
            headline=f"Tell {name} how it went",
            subject=f"Tell {name} how it went: {subject}",
            paragraphs=[
                f"{name} will want to know what came of the advice. A few lines are enough; "
                "here is a start you can copy:",
            ],
            report_draft=True,
        )
    if stage is Stage.REPORTED:
        return _Copy(
            headline=f"Give something back to {name}",
            subject=f"Give something back to {name}: {subject}",
            paragraphs=["Advice is a gift; a small one back keeps the relationship alive. Ideas:"],
            ideas=list(_IDEAS),
        )
    if stage is Stage.GAVE_BACK:
        return _Copy(
            headline=f"Keep in touch with {name}",
            subject=f"Keep in touch with {name}: {subject}",
            paragraphs=[f"A while since you last gave something back to {name}. Ideas:"],
            ideas=list(_IDEAS),
        )
    return _Copy(
        headline=f"About {subject}",
        subject=f"Reminder: {subject} ({name})",
        paragraphs=[f"A reminder about your loop with {name}."],
    )


# --- rendering ------------------------------------------------------------------------------

_ENV_OPTIONS: dict[str, Any] = {
    "autoescape": jinja2.select_autoescape(
        enabled_extensions=("html.j2", "html"), default_for_string=False, default=False
    ),
    "undefined": jinja2.StrictUndefined,
    "trim_blocks": True,
    "lstrip_blocks": True,
    "keep_trailing_newline": True,
}


def _quote(text: str) -> str:
    return "\n".join(f"> {line}" if line else ">" for line in text.splitlines())


@lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    """The shipped templates only: the fallback that always renders."""
    env = jinja2.Environment(loader=jinja2.PackageLoader("mailmentor", "templates"), **_ENV_OPTIONS)
    env.filters["quote"] = _quote
    return env


@lru_cache(maxsize=8)
def _user_environment(directory: Path) -> jinja2.Environment:
    """The user's folder first, then the shipped templates.

    Sandboxed, since the rule folder may be writable by more people than the service's code;
    Jinja re-reads a template whose file changed, so edits apply without a restart.
    """
    loader = jinja2.ChoiceLoader(
        [jinja2.FileSystemLoader(str(directory)), jinja2.PackageLoader("mailmentor", "templates")]
    )
    env = jinja2.sandbox.ImmutableSandboxedEnvironment(loader=loader, **_ENV_OPTIONS)
    env.filters["quote"] = _quote
    return env


@dataclass(frozen=True)
class _Rendered:
    """One body, and the subject its template set with ``{% set mail_subject = … %}``, if any."""

    body: str
    subject: str | None


def _render_with(
    env: jinja2.Environment, names: Sequence[str], suffix: str, values: dict[str, Any]
) -> _Rendered:
    files = [f"{name}.{suffix}.j2" for name in names]
    template = env.select_template(files)
    try:
        module = template.make_module(values)
    except Exception:
        env.handle_exception()  # re-raises with template file and line in the traceback
        raise
    subject = getattr(module, "mail_subject", None)
    return _Rendered(str(module), subject if isinstance(subject, str) else None)


def _where(exc: BaseException) -> str:
    """``file:line`` of a template error, as far as Jinja tells."""
    if isinstance(exc, jinja2.TemplateSyntaxError):
        return f"{exc.filename or exc.name or '?'}:{exc.lineno}"
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename.endswith(".j2")]
    if frames:
        return f"{frames[-1].filename}:{frames[-1].lineno}"
    return "?"


def _render_part(
    ctx: ReminderContext, names: Sequence[str], suffix: str, values: dict[str, Any]
) -> _Rendered:
    """Render with the user's overrides; a broken one is logged and the shipped one used."""
    if ctx.templates_dir is not None:
        try:
            return _render_with(_user_environment(ctx.templates_dir), names, suffix, values)
        except Exception as exc:  # a user's typo must never cost the reminder
            log.error(
                "template %s is broken, using the shipped template instead: %s: %s",
                _where(exc),
                type(exc).__name__,
                exc,
            )
    return _render_with(_environment(), names, suffix, values)


def _template_names(ctx: ReminderContext, stage: Stage) -> list[str]:
    """The rule's template, then ``reminder_<stage>``, then ``reminder`` (shipped)."""
    names = [f"reminder_{stage}", "reminder"]
    if ctx.template:
        names.insert(0, ctx.template)
    return names


def _check_chosen(ctx: ReminderContext, names: Sequence[str]) -> None:
    """A rule naming a template that exists nowhere is worth a warning (the mail still goes)."""
    if not ctx.template or names[0] != ctx.template:
        return
    env = _user_environment(ctx.templates_dir) if ctx.templates_dir else _environment()
    try:
        env.get_template(f"{ctx.template}.txt.j2")
    except jinja2.TemplateNotFound:
        where = f"{ctx.templates_dir} or the package" if ctx.templates_dir else "the package"
        log.warning(
            "template %r (from the rules) not found in %s; using %s",
            ctx.template,
            where,
            " / ".join(names[1:]),
        )
    except Exception:  # broken, not missing: _render_part logs it with its line
        return


def _address(value: str, what: str, display_name: str = "") -> Address:
    """A configured address as a header value; a bad one is named in the error."""
    text = header_text(value, limit=320)
    spec = parseaddr(text)[1] if "<" in text else text
    try:
        if "@" not in spec:
            raise ValueError("no '@'")
        return Address(display_name=display_name, addr_spec=spec)
    except (ValueError, IndexError) as exc:
        raise ValueError(f"invalid {what} {value!r}: {exc}") from None


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
    msg["From"] = _address(ctx.service_address, "service address", display_name="mailmentor")
    msg["To"] = _address(ctx.user_address, "user address")
    msg["Subject"] = header_text(subject)
    msg["Date"] = format_datetime(_aware(ctx.now).astimezone(ctx.timezone))
    msg["Message-ID"] = f"<{message_id}>"
    _thread_headers(msg, thread)
    if loop is not None:
        msg["Reply-To"] = reply_address(ctx.service_address, loop.id, ctx.secret)
        msg["X-Mailmentor-Loop"] = header_text(loop.id, limit=64)
    msg["Auto-Submitted"] = "auto-generated"
    msg["X-Auto-Response-Suppress"] = "All"
    return msg


def _thread_headers(msg: EmailMessage, thread: Sequence[str]) -> None:
    if thread:
        msg["In-Reply-To"] = f"<{thread[-1]}>"
        msg["References"] = " ".join(f"<{i}>" for i in thread)


def _compose(
    ctx: ReminderContext,
    names: Sequence[str],
    values: dict[str, Any],
    *,
    subject: str,
    message_id: str,
    thread: Sequence[str],
    loop: Loop | None,
) -> EmailMessage:
    """Render both bodies (text, then HTML), take a subject a template set, build the mail."""
    text = _render_part(ctx, names, "txt", values)
    html = _render_part(ctx, names, "html", values)
    chosen = header_text(text.subject or html.subject or "") or subject
    msg = _new_message(ctx, subject=chosen, message_id=message_id, thread=thread, loop=loop)
    msg.set_content(text.body, charset="utf-8")
    msg.add_alternative(html.body, subtype="html", charset="utf-8")
    return msg


def _loop_values(loop: Loop, ctx: ReminderContext, stage: Stage | None = None) -> dict[str, Any]:
    """What every loop template may use (listed in docs/rules.md, "Templates")."""
    mentor_name = header_text(loop.mentor.name, limit=MAX_NAME)
    mentor_address = header_text(loop.mentor.address, limit=MAX_NAME * 2)
    return {
        "loop_id": header_text(loop.id, limit=64),
        "kind": str(loop.kind),
        "stage": str(stage or loop.stage),
        "mentor": f"{mentor_name} <{mentor_address}>" if mentor_name else mentor_address,
        "mentor_name": _short_name(loop),
        "mentor_full_name": mentor_name,
        "mentor_address": mentor_address,
        "subject": clean_subject(loop.subject),
        "ask_excerpt": clean_body(loop.ask_excerpt),
        "advice_excerpt": clean_body(loop.advice_excerpt),
        "local_date": _local_date(loop.stage_entered_at, ctx.timezone),
        "days": elapsed(loop.stage_entered_at, ctx.now).days,
        "user_address": header_text(ctx.user_address, limit=320),
    }


def _short_name(loop: Loop) -> str:
    """First word of the name, without the comma of "Last, First" ("Hi Müller,," reads badly)."""
    name = header_text(loop.mentor.short_name, limit=MAX_NAME).rstrip(",;:")
    return name or "your mentor"


def _reminder_id(loop: Loop, action: PlannedAction, ctx: ReminderContext) -> str:
    return reminder_message_id(loop.id, action.key, ctx.secret, _domain(ctx.service_address))


def build_reminder(loop: Loop, action: PlannedAction, ctx: ReminderContext) -> EmailMessage:
    """The reminder for ``action``: what to do next about ``loop``, threaded beside its thread.

    A give-up action renders the give-up notice instead, a still-relevant action that question.
    """
    if action.kind is ActionKind.GIVE_UP:
        return build_give_up_notice(loop, action, ctx)
    if action.kind is ActionKind.STILL_RELEVANT:
        return build_still_relevant(loop, action, ctx)
    name = _short_name(loop)
    subject = clean_subject(loop.subject)
    copy = _stage_copy(loop, action.stage, name, subject)
    since = days_phrase(elapsed(loop.stage_entered_at, ctx.now))
    values = _loop_values(loop, ctx, action.stage)
    values |= {
        "headline": copy.headline,
        "paragraphs": copy.paragraphs,
        "since": f"{since} since {_since_event(action.stage, name)}",
        "draft": report_draft_text(loop, ctx) if copy.report_draft else "",
        "ideas": copy.ideas,
        "commands": _COMMANDS.get(action.stage, _GENERIC_COMMANDS),
        "sequence": action.sequence,
        "mail_subject": copy.subject,
    }
    names = _template_names(ctx, action.stage)
    _check_chosen(ctx, names)
    return _compose(
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
    name = _short_name(loop)
    subject = clean_subject(loop.subject)
    span = human_span(elapsed(loop.stage_entered_at, ctx.now))
    if action.stage is Stage.ASKED:
        headline = f"No answer from {name} in {span}"
    else:
        headline = f"Nothing new with {name} in {span}"
    line = f"Letting go: {subject} ({headline[0].lower()}{headline[1:]})"
    values = _loop_values(loop, ctx, action.stage) | {
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
    return _compose(
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
    name = _short_name(loop)
    subject = clean_subject(loop.subject)
    line = f"Still relevant? {name}: {subject}"
    values = _loop_values(loop, ctx, action.stage) | {
        "headline": f"Still relevant? Your loop with {name}",
        "ignored": max(ignored_reminders(loop), 1),
        "commands": "done · snooze 2w · stop · reopen",
        "sequence": action.sequence,
        "mail_subject": line,
    }
    return _compose(
        ctx,
        ["still_relevant"],
        values,
        subject=line,
        message_id=_reminder_id(loop, action, ctx),
        thread=thread_references(loop.message_ids),
        loop=loop,
    )


# --- the report-back draft ------------------------------------------------------------------


def report_draft_text(loop: Loop, ctx: ReminderContext) -> str:
    """The starter text of the report-back (``report_draft.txt.j2``), with [brackets] to fill."""
    values = _loop_values(loop, ctx) | {
        "advice_excerpt": clean_body(loop.advice_excerpt, limit=MAX_DRAFT_QUOTE),
    }
    return _render_part(ctx, ["report_draft"], "txt", values).body.strip()


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
    msg["From"] = _address(ctx.user_address, "user address")
    msg["To"] = _address(
        loop.mentor.address,
        f"mentor address of loop {loop.id}",
        display_name=header_text(loop.mentor.name, limit=MAX_NAME),
    )
    msg["Subject"] = f"Re: {clean_subject(loop.subject)}"
    msg["Date"] = format_datetime(_aware(ctx.now).astimezone(ctx.timezone))
    seed = f"{loop.id}\n{_aware(loop.stage_entered_at).isoformat()}\ndraft"
    digest = hashlib.sha256(seed.encode("utf-8")).hexdigest()[:16]
    msg["Message-ID"] = f"<mm.draft.{digest}@{_domain(ctx.user_address)}>"
    _thread_headers(msg, thread_references(loop.message_ids))
    msg.set_content(report_draft_text(loop, ctx) + "\n", charset="utf-8")
    return msg


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
    domain = _domain(ctx.service_address)
    if loop is not None:
        message_id = reminder_message_id(loop.id, seed, ctx.secret, domain)
        thread = thread_references(loop.message_ids, MAX_REFERENCES - 1)
    else:
        message_id = f"mm.reply.{hashlib.sha256(seed.encode('utf-8')).hexdigest()[:12]}@{domain}"
        thread = []
    if incoming:
        thread = [i for i in thread if i != incoming] + [incoming]
    line = header_text(subject) or "mailmentor"
    if not _REPLY_PREFIX.match(line):
        line = f"Re: {line}"
    text = clean_body(body_text, limit=20_000)
    values = {"paragraphs": [p for p in text.split("\n\n") if p.strip()]}
    # Replies keep their subject: it threads them to the user's mail.
    return _compose(
        replace(ctx, templates_dir=None),
        ["reply"],
        values,
        subject=line,
        message_id=message_id,
        thread=thread,
        loop=loop,
    )
