"""Loops told as short stories (asked on day 0, advised on day 2, acted on day 5 …), through the
real stage machine, and the person records the store would keep for them."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from mailmentor.intake import normalize_subject
from mailmentor.model import Event, EventType, Kind, Loop, Person, Stage
from mailmentor.people import PersonRecord, subject_key, with_gift, with_loop
from mailmentor.stages import advance, drop, give_back, snooze, with_event

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
DAY = timedelta(days=1)
ALAN = Person(address="alan@example.org", name="Alan Kay")
GRACE = Person(address="grace@navy.example", name="Grace Hopper")
LINUS = Person(address="linus@kernel.example", name="Linus Torvalds")

#: Stages the user reaches by writing to the mentor (a message), the rest by a command.
_BY_MESSAGE = (Stage.ADVISED, Stage.REPORTED)


def story(
    loop_id: str,
    *steps: tuple[Stage, float],
    mentor: Person = ALAN,
    kind: Kind = Kind.ADVICE,
    start: datetime = T0,
    subject: str = "",
) -> Loop:
    """A loop asked at ``start``, then taken to each (stage, days after start) in turn."""
    loop = Loop(
        id=loop_id,
        kind=kind,
        mentor=mentor,
        subject=subject or f"About {loop_id}",
        created_at=start,
        stage_entered_at=start,
        message_ids=[f"{loop_id}-ask@client.example"],
        ask_excerpt="What would you change first?",
    )
    loop = with_event(
        loop,
        Event(
            at=start,
            type=EventType.CREATED,
            source=f"message <{loop_id}-ask@client.example>",
            stage=Stage.ASKED,
        ),
    )
    for stage, day in steps:
        loop = step(loop, stage, start + day * DAY)
    return loop


def step(loop: Loop, stage: Stage, at: datetime) -> Loop:
    if stage is Stage.DROPPED:
        return drop(loop, EventType.GAVE_UP, at, f"rule {loop.kind}.{loop.stage}")
    if stage in (Stage.GAVE_BACK, Stage.CLOSED):
        return give_back(loop, at, "command gave back", "sent a thank-you note")
    if stage is Stage.SNOOZED:
        return snooze(loop, at + 7 * DAY, at, "command snooze 1w")
    if stage in _BY_MESSAGE:
        mid = f"message <{loop.id}-{stage}@client.example>"
        kind = EventType.ADVICE if stage is Stage.ADVISED else EventType.MESSAGE
        return advance(loop, stage, kind, at, mid)
    return advance(loop, stage, EventType.COMMAND, at, f"command {stage}")


def gift(at: datetime, what: str = "an intro to a customer") -> Event:
    """Value given outside any loop, as mentor+gave@ records it."""
    return Event(
        at=at,
        type=EventType.NOTE,
        source=f"message <gift-{int(at.timestamp())}@client.example>",
        stage=Stage.CLOSED,
        detail=f"gave: {what}",
    )


def records_of(
    loops: Iterable[Loop], gifts: dict[str, list[Event]] | None = None
) -> list[PersonRecord]:
    """The person records the store keeps after these loops (stored whole) and gifts."""
    records: dict[str, PersonRecord] = {}
    for lp in loops:
        address = lp.mentor.address
        skey = subject_key(normalize_subject(lp.subject))
        records[address] = with_loop(records.get(address), None, lp, skey)
    for address, given in (gifts or {}).items():
        for g in given:
            records[address] = with_gift(records.get(address), address, g) or records[address]
    return list(records.values())
