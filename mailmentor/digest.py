"""The weekly digest as data: every open loop by stage, and how each relationship stands.

Pure: the open loops, the person records (what ended loops achieved, gifts) and ``now`` in, a
Digest out; no closed loop is read. The mail is rendered from it by ``reminders.digest_mail`` and
`mailmentor digest` prints the same data, so what a user previews is what they get.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from mailmentor.model import Kind, Loop, Person, Stage
from mailmentor.people import Counts, PersonRecord, achieved
from mailmentor.stages import working_stage

#: The digest's sections, in the order a user works through them.
SECTIONS: tuple[tuple[Stage, str], ...] = (
    (Stage.ADVISED, "Advice to act on"),
    (Stage.ACTED, "Tell them how it went"),
    (Stage.REPORTED, "Give something back"),
    (Stage.ASKED, "Waiting for an answer"),
    (Stage.GAVE_BACK, "Given back, keep in touch"),
    (Stage.SNOOZED, "Snoozed or paused"),
)
#: At most this many loops per section and people in the relationship list; the rest are counted.
MAX_PER_SECTION = 25
MAX_PEOPLE = 30
#: A relationship with no contact for this long is called quiet.
QUIET_AFTER = timedelta(days=90)

#: What the user's move is, per working stage of an open loop (most pressing first).
_MOVES: tuple[tuple[Stage, str], ...] = (
    (Stage.ADVISED, "your move: act on their advice"),
    (Stage.ACTED, "your move: tell them how it went"),
    (Stage.REPORTED, "your move: give something back"),
)


@dataclass(frozen=True)
class DigestLoop:
    """One open loop as the digest lists it."""

    loop_id: str
    kind: Kind
    mentor: Person
    subject: str
    days_in_stage: int
    next_at: datetime | None
    paused: bool = False  # snoozed with no wake-up: waiting for the user's answer


@dataclass(frozen=True)
class Section:
    stage: Stage
    heading: str
    loops: tuple[DigestLoop, ...]
    more: int = 0  # open loops in this stage left out of the list


@dataclass(frozen=True)
class Relationship:
    """How one person stands with the user, from every loop with them and what was given."""

    person: Person
    open_loops: int
    advice: int  # loops in which their advice arrived
    reported: int  # loops the user reported back on
    given: int  # times the user gave back (loops and mentor+gave@)
    last_contact: datetime | None
    state: str


@dataclass(frozen=True)
class Digest:
    now: datetime
    sections: tuple[Section, ...]
    relationships: tuple[Relationship, ...]
    more_people: int
    open_loops: int
    closed_this_week: int
    #: What is wrong with mailmentor itself and needs the user (e.g. a sign-in to renew).
    health: tuple[str, ...] = ()

    @property
    def to_do(self) -> int:
        """Open loops that wait on the user (act, report back, give back)."""
        moves = {stage for stage, _ in _MOVES}
        return sum(len(s.loops) + s.more for s in self.sections if s.stage in moves)


def build_digest(
    loops: Sequence[Loop],
    people: Iterable[PersonRecord],
    now: datetime,
    closed_this_week: int = 0,
) -> Digest:
    """The digest for ``now`` from the open ``loops`` and every person's record."""
    open_loops = [lp for lp in loops if lp.stage.is_open]
    sections = []
    for stage, heading in SECTIONS:
        members = sorted(
            (lp for lp in open_loops if _section_of(lp) is stage),
            key=lambda lp: (lp.stage_entered_at, lp.id),
        )
        shown = tuple(_digest_loop(lp, now) for lp in members[:MAX_PER_SECTION])
        sections.append(Section(stage, heading, shown, max(0, len(members) - MAX_PER_SECTION)))
    relationships = relationships_of(open_loops, people, now)
    return Digest(
        now=now,
        sections=tuple(sections),
        relationships=tuple(relationships[:MAX_PEOPLE]),
        more_people=max(0, len(relationships) - MAX_PEOPLE),
        open_loops=len(open_loops),
        closed_this_week=closed_this_week,
    )


def relationships_of(
    open_loops: Iterable[Loop], people: Iterable[PersonRecord], now: datetime
) -> list[Relationship]:
    """One entry per person, those waiting on the user first, then by last contact."""
    by_person: dict[str, list[Loop]] = defaultdict(list)
    for loop in open_loops:
        by_person[loop.mentor.address.lower()].append(loop)
    records = {p.address.lower(): p for p in people}
    result = [
        _relationship(address, by_person.get(address, []), records.get(address), now)
        for address in set(by_person) | set(records)
        if by_person.get(address) or _has_history(records[address])
    ]
    never = datetime.min.replace(tzinfo=now.tzinfo)
    return sorted(
        result,
        key=lambda r: (_urgency(r.state), -(r.last_contact or never).timestamp(), r.person.address),
    )


def _has_history(record: PersonRecord) -> bool:
    return bool(record.ended or record.gifts or record.open)


def _relationship(
    address: str, loops: Sequence[Loop], record: PersonRecord | None, now: datetime
) -> Relationship:
    named = next(
        (lp.mentor for lp in sorted(loops, key=lambda lp: lp.created_at) if lp.mentor.name), None
    )
    if record is not None and record.name:
        person = Person(address=address, name=record.name)
    else:
        person = named or (loops[0].mentor if loops else Person(address=address))
    counts = sum((achieved(lp) for lp in loops), record.counts if record else Counts())
    gifts = len(record.gifts) if record else 0
    contacts = [lp.last_contact_at for lp in loops if lp.last_contact_at is not None]
    if record is not None and record.last_contact is not None:
        contacts.append(record.last_contact)
    last_contact = max(contacts, default=None)
    open_stages = {working_stage(lp) for lp in loops}
    state = _state(open_stages, counts.advice, counts.given + gifts, last_contact, now)
    return Relationship(
        person=person,
        open_loops=len(loops),
        advice=counts.advice,
        reported=counts.reported,
        given=counts.given + gifts,
        last_contact=last_contact,
        state=state,
    )


def _state(
    open_stages: set[Stage], advice: int, given: int, last: datetime | None, now: datetime
) -> str:
    for stage, move in _MOVES:
        if stage in open_stages:
            return move
    if Stage.ASKED in open_stages:
        return "waiting for their answer"
    if last is not None and now - last > QUIET_AFTER:
        return f"quiet for {(now - last).days // 30} months: a short update?"
    if advice > given:
        return "give back when you can"
    return "in balance"


def _urgency(state: str) -> int:
    if state.startswith("your move"):
        return 0
    if state.startswith("quiet"):
        return 1
    if state.startswith("give back"):
        return 2
    if state.startswith("waiting"):
        return 3
    return 4


def _section_of(loop: Loop) -> Stage:
    return Stage.SNOOZED if loop.stage is Stage.SNOOZED else working_stage(loop)


def _digest_loop(loop: Loop, now: datetime) -> DigestLoop:
    return DigestLoop(
        loop_id=loop.id,
        kind=loop.kind,
        mentor=loop.mentor,
        subject=loop.subject,
        days_in_stage=max(0, (now - loop.stage_entered_at).days),
        # A time already past is one waiting for quiet hours or the budget: not worth a date.
        next_at=loop.next_reminder_at if (loop.next_reminder_at or now) > now else None,
        paused=loop.stage is Stage.SNOOZED and loop.snoozed_until is None,
    )
