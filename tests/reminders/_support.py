"""What the reminder tests share: a loop, an action and a context to render, and how a
receiving client would read the result."""

from __future__ import annotations

import email
import email.policy
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import cast
from zoneinfo import ZoneInfo

from mailmentor.model import ActionKind, Loop, Person, PlannedAction, Stage
from mailmentor.reminders import ReminderContext
from mailmentor.stages import replay

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
SECRET = b"reminder-secret"
SERVICE = "mentor@example.com"


def make_loop(**changes: object) -> Loop:
    values: dict[str, object] = {
        "id": "k3v9x2abqe",
        "mentor": Person(address="alan@example.com", name="Alan Kay"),
        "subject": "Pricing page",
        "created_at": T0,
        "stage_entered_at": T0,
        "message_ids": ["ask1@example.com"],
        "advice_excerpt": "Charge more.",
    }
    values.update(changes)
    events = values.pop("events", [])
    assert isinstance(events, list)
    return replay(Loop.model_validate(values), events)  # the history's summaries too


def make_action(
    stage: Stage = Stage.ADVISED, sequence: int = 1, **changes: object
) -> PlannedAction:
    values: dict[str, object] = {
        "kind": ActionKind.REMIND,
        "due_at": T0 + timedelta(days=3),
        "stage": stage,
        "sequence": sequence,
        "rule": f"advice.{stage}",
    }
    values.update(changes)
    return PlannedAction.model_validate(values)


def make_ctx(now: datetime = T0 + timedelta(days=3)) -> ReminderContext:
    return ReminderContext(
        service_address=SERVICE,
        user_address="me@example.com",
        secret=SECRET,
        timezone=ZoneInfo("Europe/Berlin"),
        now=now,
    )


def reparse(message: EmailMessage) -> EmailMessage:
    """What a receiving client sees: the bytes on the wire, parsed again."""
    raw = message.as_bytes()
    return email.message_from_bytes(raw, policy=email.policy.default)


def text_of(message: EmailMessage, subtype: str = "plain") -> str:
    part = message.get_body((subtype,))
    assert part is not None
    return cast(str, part.get_content())
