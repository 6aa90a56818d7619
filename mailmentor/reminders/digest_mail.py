"""The weekly digest mail: a Digest (``mailmentor.digest``) in, an EmailMessage out.

Its id derives from the digest's slot (the week's scheduled moment), so a retried send is the
same mail. Its Message-ID and Reply-To carry that id with a token: a reply such as ``2 done``
names lines of this digest, and the store binds the numbers to loops (``Weekly.digest_lines``).
"""

from __future__ import annotations

from datetime import datetime
from email.message import EmailMessage
from typing import Any
from zoneinfo import ZoneInfo

from mailmentor.digest import Digest, DigestLine, Move
from mailmentor.relationships import Move as OwedMove
from mailmentor.relationships import PersonSummary, Standing
from mailmentor.reminders.context import ReminderContext
from mailmentor.reminders.headers import MAX_NAME, clean_subject, domain, header_text
from mailmentor.reminders.messages import compose
from mailmentor.reminders.templates import render_part
from mailmentor.reminders.wording import local_date
from mailmentor.tokens import digest_id, digest_message_id, digest_reply_address, tagged_address

LEARN_QUESTION = "What do you want to learn next?"

#: How a reply acts on a numbered line, shown once under the numbered sections.
REPLY_HINT = (
    'Reply with a line number and a command, one per line: "2 done", "3 reported", '
    '"snooze 4 1w", "stop 5". "learn <topic>" starts something new to learn.'
)


def digest_subject(digest: Digest) -> str:
    if digest.open_loops == 0:
        return f"Your week: no open loops. {LEARN_QUESTION}"
    loops = "1 open loop" if digest.open_loops == 1 else f"{digest.open_loops} open loops"
    if digest.to_do:
        return f"Your week: {digest.to_do} to do, {loops}"
    return f"Your week: {loops}, nothing waits on you"


def digest_key(slot: datetime, ctx: ReminderContext) -> str:
    """The id of the digest of the week of ``slot`` (its line numbers are kept under it)."""
    return digest_id(ctx.secret, slot.isoformat(), ctx.user_address)


def digest_values(digest: Digest, ctx: ReminderContext) -> dict[str, Any]:
    """What the digest templates see (listed in docs/rules.md, "Templates")."""
    sections = [
        {
            "title": section.title,
            "numbered": section is not digest.closed,
            "lines": [_line_values(line, digest, ctx) for line in section.lines],
            "more": section.more,
        }
        for section in digest.sections
    ]
    return {
        "headline": digest_subject(digest),
        "health": list(digest.health),
        "health_line": digest.health_line,
        "open_loops": digest.open_loops,
        "to_do": digest.to_do,
        "closed_this_week": digest.closed_this_week,
        "sections": sections,
        "numbered": bool(digest.numbers),
        "reply_hint": REPLY_HINT if digest.numbers else "",
        "relationships": [_relationship_values(r, digest, ctx) for r in digest.relationships],
        "more_people": digest.more_people,
        "question": LEARN_QUESTION,
        "learn_hint": 'Reply "learn <topic>" to start, then ask someone about it and BCC',
        "learn_address": tagged_address(ctx.service_address, "learn"),
        "local_date": local_date(digest.now, ctx.timezone),
    }


def _person(name: str, address: str) -> str:
    name = header_text(name, limit=MAX_NAME)
    address = header_text(address, limit=MAX_NAME * 2)
    return f"{name} <{address}>" if name else address


def _ago(then: datetime, now: datetime, zone: ZoneInfo) -> str:
    """'today', 'yesterday', '3 days ago': calendar days in the user's zone."""
    days = max(0, (now.astimezone(zone).date() - then.astimezone(zone).date()).days)
    return "today" if days == 0 else "yesterday" if days == 1 else f"{days} days ago"


def _detail(line: DigestLine, digest: Digest, ctx: ReminderContext) -> str:
    """When and what next, in words ("advice came 3 days ago; next reminder Mon 5 Jan")."""
    zone = ctx.timezone
    since = _ago(line.since, digest.now, zone)
    parts = {
        Move.ACT: f"advice came {since}",
        Move.REPORT: f"acted {since}",
        Move.GIVE_BACK: f"reported {since}",
        Move.THEY_ASKED: f"they asked you {since}",
        Move.CHECK_IN: f"you answered {since}",
        Move.FIND: f"noted {since}",
        Move.PAUSED: f"paused {since}; reply with its number and done, snooze or stop",
        Move.ANSWER: f"asked {since}",
        Move.SNOOZED: f"snoozed {since}",
        Move.KEEP_IN_TOUCH: f"given back {since}",
        Move.CLOSED: f"closed {local_date(line.since, zone)}",
        Move.DROPPED: f"let go {local_date(line.since, zone)}",
    }
    text = [parts[line.move]]
    if line.wakes_at is not None:
        text.append(f"wakes {local_date(line.wakes_at, zone)}")
    elif line.give_up_at is not None and line.give_up_at > digest.now:
        text.append(f"let go {local_date(line.give_up_at, zone)} if no answer")
    elif line.next_at is not None and line.move in (Move.ACT, Move.REPORT, Move.GIVE_BACK):
        text.append(f"next reminder {local_date(line.next_at, zone)}")
    return "; ".join(text)


_VERB = {
    Move.ACT: "act on {name}'s advice",
    Move.REPORT: "tell {name} how it went",
    Move.GIVE_BACK: "give something back to {name}",
    Move.THEY_ASKED: "answer {name}",
    Move.CHECK_IN: "check in with {name}",
    Move.FIND: "find someone to ask",
    Move.PAUSED: "still worth it? ({name})",
    Move.ANSWER: "waiting for {name}",
    Move.SNOOZED: "snoozed ({name})",
    Move.KEEP_IN_TOUCH: "keep in touch with {name}",
    Move.CLOSED: "{name}",
    Move.DROPPED: "{name}",
}


def _line_values(line: DigestLine, digest: Digest, ctx: ReminderContext) -> dict[str, Any]:
    name = header_text(line.mentor.short_name, limit=MAX_NAME)
    return {
        "number": line.number,
        "loop_id": header_text(line.loop_id, limit=64),
        "kind": str(line.kind),
        "move": str(line.move),
        "what": _VERB[line.move].format(name=name),
        "mentor": _person(line.mentor.name, line.mentor.address),
        "mentor_name": name,
        "subject": clean_subject(line.subject),
        "detail": _detail(line, digest, ctx),
    }


#: What is owed to a person, as the digest's "Your people" says it.
_OWED_TEXT = {
    OwedMove.ACT: "act on their advice",
    OwedMove.REPORT: "tell them how it went",
    OwedMove.GIVE_BACK: "give something back",
    OwedMove.ANSWER: "they asked you: answer them",
    OwedMove.CHECK_IN: "check in with them",
}
_STANDING_TEXT = {
    Standing.WAITING: "waiting for their answer",
    Standing.NEVER_ANSWERED: "no answer yet",
    Standing.IN_BALANCE: "in balance",
}


def standing_text(rel: PersonSummary, now: datetime) -> str:
    """One relationship in a few words: the most pressing thing owed, or how it stands."""
    if rel.owes:
        first = rel.owes[0]
        if first.move is OwedMove.GIVE_BACK and not first.loop_ids:
            return "give back when you can"  # for advice ended loops received
        if first.move is OwedMove.ANSWER:
            return _OWED_TEXT[first.move]
        return f"your move: {_OWED_TEXT[first.move]}"
    if rel.standing is Standing.QUIET and rel.last_contact is not None:
        months = max(1, (now - rel.last_contact).days // 30)
        return f"quiet for {months} month{'s' if months != 1 else ''}: a short update?"
    return _STANDING_TEXT.get(rel.standing, "in balance")


def _relationship_values(
    rel: PersonSummary, digest: Digest, ctx: ReminderContext
) -> dict[str, Any]:
    return {
        "person": _person(rel.person.name, rel.person.address),
        "name": header_text(rel.person.short_name, limit=MAX_NAME),
        "state": standing_text(rel, digest.now),
        "open_loops": rel.open_loops,
        "asks": rel.asks,
        "advice": rel.advice,
        "reported": rel.reports,
        "given": rel.gives,
        "they_asked_you": rel.they_asked_you,
        "last_contact": local_date(rel.last_contact, ctx.timezone) if rel.last_contact else "",
    }


def build_digest_mail(digest: Digest, slot: datetime, ctx: ReminderContext) -> EmailMessage:
    """The digest for the week of ``slot``; the user may override ``digest.*.j2``."""
    key = digest_key(slot, ctx)
    values = digest_values(digest, ctx)
    message = compose(
        ctx,
        ["digest"],
        values,
        subject=values["headline"],
        message_id=digest_message_id(key, ctx.secret, domain(ctx.service_address)),
        thread=[],
        loop=None,
    )
    message["Reply-To"] = digest_reply_address(ctx.service_address, key, ctx.secret)
    return message


def digest_text(digest: Digest, ctx: ReminderContext) -> str:
    """The digest's plain-text body, as mailed (for `mailmentor digest`)."""
    return render_part(ctx.templates_dir, ["digest"], "txt", digest_values(digest, ctx)).body


def digest_html(digest: Digest, ctx: ReminderContext) -> str:
    """The digest's HTML body, as mailed (for `mailmentor digest --html FILE`)."""
    return render_part(ctx.templates_dir, ["digest"], "html", digest_values(digest, ctx)).body
