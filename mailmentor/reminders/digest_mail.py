"""The weekly digest mail: a Digest (``mailmentor.digest``) in, an EmailMessage out.

Its Message-ID derives from the digest's slot (the week's scheduled moment), so a retried send
is the same mail. It carries no loop token: replies to it are not commands for any one loop.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from email.message import EmailMessage
from typing import Any

from mailmentor.digest import Digest, DigestLoop, Relationship
from mailmentor.reminders.context import ReminderContext
from mailmentor.reminders.headers import MAX_NAME, clean_subject, domain, header_text
from mailmentor.reminders.messages import compose
from mailmentor.reminders.templates import render_part
from mailmentor.reminders.wording import local_date
from mailmentor.tokens import tagged_address

LEARN_QUESTION = "What do you want to learn next?"


def digest_subject(digest: Digest) -> str:
    if digest.open_loops == 0:
        return f"Your week: no open loops. {LEARN_QUESTION}"
    loops = "1 open loop" if digest.open_loops == 1 else f"{digest.open_loops} open loops"
    if digest.to_do:
        return f"Your week: {digest.to_do} to do, {loops}"
    return f"Your week: {loops}, nothing waits on you"


def digest_message_id(slot: datetime, ctx: ReminderContext) -> str:
    seed = f"digest\n{slot.isoformat()}\n{ctx.user_address}".encode()
    digest = hashlib.sha256(ctx.secret + seed).hexdigest()[:16]
    return f"mm.digest.{digest}@{domain(ctx.service_address)}"


def digest_values(digest: Digest, ctx: ReminderContext) -> dict[str, Any]:
    """What the digest templates see (listed in docs/rules.md, "Templates")."""
    return {
        "headline": digest_subject(digest),
        "health": list(digest.health),
        "open_loops": digest.open_loops,
        "to_do": digest.to_do,
        "closed_this_week": digest.closed_this_week,
        "sections": [
            {
                "stage": str(section.stage),
                "heading": section.heading,
                "loops": [_loop_values(item, ctx) for item in section.loops],
                "more": section.more,
            }
            for section in digest.sections
            if section.loops
        ],
        "relationships": [_relationship_values(r, ctx) for r in digest.relationships],
        "more_people": digest.more_people,
        "question": LEARN_QUESTION,
        "learn_address": tagged_address(ctx.service_address, "learn"),
        "local_date": local_date(digest.now, ctx.timezone),
    }


def _person(name: str, address: str) -> str:
    name = header_text(name, limit=MAX_NAME)
    address = header_text(address, limit=MAX_NAME * 2)
    return f"{name} <{address}>" if name else address


def _loop_values(item: DigestLoop, ctx: ReminderContext) -> dict[str, Any]:
    return {
        "loop_id": header_text(item.loop_id, limit=64),
        "kind": str(item.kind),
        "mentor": _person(item.mentor.name, item.mentor.address),
        "mentor_name": header_text(item.mentor.short_name, limit=MAX_NAME),
        "subject": clean_subject(item.subject),
        "days": item.days_in_stage,
        "next": local_date(item.next_at, ctx.timezone) if item.next_at else "",
        "paused": item.paused,
    }


def _relationship_values(rel: Relationship, ctx: ReminderContext) -> dict[str, Any]:
    return {
        "person": _person(rel.person.name, rel.person.address),
        "name": header_text(rel.person.short_name, limit=MAX_NAME),
        "state": rel.state,
        "open_loops": rel.open_loops,
        "advice": rel.advice,
        "reported": rel.reported,
        "given": rel.given,
        "last_contact": local_date(rel.last_contact, ctx.timezone) if rel.last_contact else "",
    }


def build_digest_mail(digest: Digest, slot: datetime, ctx: ReminderContext) -> EmailMessage:
    """The digest for the week of ``slot``; the user may override ``digest.*.j2``."""
    values = digest_values(digest, ctx)
    return compose(
        ctx,
        ["digest"],
        values,
        subject=values["headline"],
        message_id=digest_message_id(slot, ctx),
        thread=[],
        loop=None,
    )


def digest_text(digest: Digest, ctx: ReminderContext) -> str:
    """The digest's plain-text body, as mailed (for `mailmentor digest`)."""
    return render_part(ctx.templates_dir, ["digest"], "txt", digest_values(digest, ctx)).body
