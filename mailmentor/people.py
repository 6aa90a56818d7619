"""How each relationship stands, kept per person so that no question about a person (the
digest's relationships, ``forget``, "an open loop with this mentor and subject?") reads every loop.

Pure: a PersonRecord and a loop's change in, the next PersonRecord out. The store writes it in the
same atomic change as the loop.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from datetime import datetime

from mailmentor.model import STAGE_ORDER, Event, Kind, Loop, Stage
from mailmentor.stages import working_stage


def subject_key(normalized_subject: str) -> str:
    """A short, stable key of a normalized subject (lower-cased), for the same-subject lookup."""
    return hashlib.sha1(normalized_subject.lower().encode()).hexdigest()[:8]


@dataclass(frozen=True)
class Counts:
    """What ended loops with a person achieved: advice received, reports, gifts given."""

    advice: int = 0
    reported: int = 0
    given: int = 0

    def __add__(self, other: Counts) -> Counts:
        return Counts(
            self.advice + other.advice, self.reported + other.reported, self.given + other.given
        )

    def __sub__(self, other: Counts) -> Counts:
        return Counts(
            self.advice - other.advice, self.reported - other.reported, self.given - other.given
        )


@dataclass(frozen=True)
class PersonRecord:
    """One person the user deals with, and a summary of every loop with them."""

    address: str
    name: str = ""
    #: Open loops with them: loop id -> subject key (for the same-subject fallback).
    open: dict[str, str] = field(default_factory=dict)
    #: Closed and dropped loops with them (for ``forget``).
    ended: tuple[str, ...] = ()
    #: What the ended loops the user asked with achieved (open loops are counted from
    #: themselves); ended mentee loops (they asked the user) count apart, in ``mentee_ended``.
    counts: Counts = Counts()
    mentee_ended: int = 0
    #: The latest contact in an ended loop, or a gift.
    last_contact: datetime | None = None
    #: Value given outside any loop (mentor+gave@).
    gifts: tuple[Event, ...] = ()
    rev: int = 0

    @property
    def loop_ids(self) -> tuple[str, ...]:
        return (*self.open, *self.ended)


def asks_nobody(loop: Loop) -> bool:
    """A `learn` loop started by ``learn <topic>`` in a reply to the digest: it names no one
    yet (its "mentor" is the user, and no message of a thread belongs to it), so it concerns no
    person record and no relationship."""
    return loop.kind is Kind.LEARN and not loop.message_ids


def _counted(loop: Loop) -> Counts:
    """What an ended loop adds to its person's counts: nothing for a mentee loop."""
    return Counts() if loop.kind is Kind.MENTEE else achieved(loop)


def _mentee(loop: Loop) -> int:
    return int(loop.kind is Kind.MENTEE)


def achieved(loop: Loop) -> Counts:
    """What a loop counts for in its relationship, by the furthest stage it reached."""
    rank = _rank(furthest_stage(loop))
    return Counts(
        advice=int(rank >= _rank(Stage.ADVISED)),
        reported=int(rank >= _rank(Stage.REPORTED)),
        given=int(rank >= _rank(Stage.GAVE_BACK)),
    )


def furthest_stage(loop: Loop) -> Stage:
    """The furthest working stage the loop ever reached (dropped loops keep what they did)."""
    return max(loop.furthest, working_stage(loop), key=_rank)


def _rank(stage: Stage) -> int:
    return STAGE_ORDER.index(stage) if stage in STAGE_ORDER else 0


def with_loop(
    person: PersonRecord | None, before: Loop | None, after: Loop, skey: str
) -> PersonRecord:
    """``person`` after ``before`` became ``after`` (``before`` None: a new loop)."""
    record = person or PersonRecord(address=after.mentor.address.lower())
    name = record.name or after.mentor.name
    open_loops = dict(record.open)
    ended = [i for i in record.ended if i != after.id]
    counts = record.counts
    mentee_ended = record.mentee_ended
    last = record.last_contact
    if before is not None and not before.stage.is_open:
        counts = counts - _counted(before)
        mentee_ended -= _mentee(before)
    open_loops.pop(after.id, None)
    if after.stage.is_open:
        open_loops[after.id] = skey
    else:
        ended.append(after.id)
        counts = counts + _counted(after)
        mentee_ended += _mentee(after)
        if after.last_contact_at is not None and (last is None or after.last_contact_at > last):
            last = after.last_contact_at  # also when an ended loop hears from them again
    return replace(
        record,
        name=name,
        open=open_loops,
        ended=tuple(ended),
        counts=counts,
        mentee_ended=max(0, mentee_ended),
        last_contact=last,
    )


def with_gift(person: PersonRecord | None, address: str, event: Event) -> PersonRecord | None:
    """``person`` with one more gift, or None if that gift (same source) is known already."""
    record = person or PersonRecord(address=address)
    if any(g.source == event.source for g in record.gifts):
        return None
    last = record.last_contact
    if last is None or event.at > last:
        last = event.at
    return replace(record, gifts=(*record.gifts, event), last_contact=last)
