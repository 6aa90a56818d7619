"""What rendering needs besides the loop, and the values every loop template sees."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from mailmentor.model import Loop, Stage
from mailmentor.reminders.headers import MAX_NAME, clean_body, clean_subject, header_text
from mailmentor.reminders.wording import elapsed, local_date


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


def short_name(loop: Loop) -> str:
    """First word of the name, without the comma of "Last, First" ("Hi Müller,," reads badly)."""
    name = header_text(loop.mentor.short_name, limit=MAX_NAME).rstrip(",;:")
    return name or "your mentor"


def loop_values(loop: Loop, ctx: ReminderContext, stage: Stage | None = None) -> dict[str, Any]:
    """What every loop template may use (listed in docs/rules.md, "Templates")."""
    mentor_name = header_text(loop.mentor.name, limit=MAX_NAME)
    mentor_address = header_text(loop.mentor.address, limit=MAX_NAME * 2)
    return {
        "loop_id": header_text(loop.id, limit=64),
        "kind": str(loop.kind),
        "stage": str(stage or loop.stage),
        "mentor": f"{mentor_name} <{mentor_address}>" if mentor_name else mentor_address,
        "mentor_name": short_name(loop),
        "mentor_full_name": mentor_name,
        "mentor_address": mentor_address,
        "subject": clean_subject(loop.subject),
        "ask_excerpt": clean_body(loop.ask_excerpt),
        "advice_excerpt": clean_body(loop.advice_excerpt),
        "local_date": local_date(loop.stage_entered_at, ctx.timezone),
        "days": elapsed(loop.stage_entered_at, ctx.now).days,
        "user_address": header_text(ctx.user_address, limit=320),
    }
