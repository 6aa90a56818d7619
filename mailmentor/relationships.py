"""The relationship record: per person, what every loop with them and every gift add up to.

Pure: every loop (open and ended, with their histories), the person records and ``now`` in, one
`PersonSummary` per person out. `mailmentor mentors` prints it and the digest's "Your people"
lists it; both render prose from these values, nobody parses it.

Loops someone started by asking *the user* (``Kind.MENTEE``) are not the user's asks of them: they
are counted apart (`PersonSummary.they_asked_you`) and owe their own moves (answer, check in).
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from mailmentor.model import Event, Kind, Loop, Person, Stage
from mailmentor.people import Counts, PersonRecord, achieved, asks_nobody
from mailmentor.stages import working_stage

#: A relationship with no contact for this long is quiet.
QUIET_AFTER = timedelta(days=90)


class Move(StrEnum):
    """Something the user owes a person now, most pressing first (the order sorts by it)."""

    ACT = "act"  # their advice arrived: act on it
    REPORT = "report"  # acted on it: tell them how it went
    GIVE_BACK = "give_back"  # reported back, or received more than given: give something back
    ANSWER = "answer"  # they asked the user (mentee) and wait for an answer
    CHECK_IN = "check_in"  # the user advised them (mentee): see how it goes


_MOVE_RANK = {move: rank for rank, move in enumerate(Move)}


@dataclass(frozen=True)
class Owed:
    """One move owed to a person, on these open loops (none: on the relationship as a whole,
    as a give-back for advice that ended loops received and nothing yet repaid)."""

    move: Move
    loop_ids: tuple[str, ...] = ()

    @property
    def count(self) -> int:
        return len(self.loop_ids)


class Standing(StrEnum):
    """Where the relationship stands, for the line that sums it up."""

    YOUR_MOVE = "your_move"  # something is owed (see `PersonSummary.owes`)
    WAITING = "waiting"  # an ask is open and not answered yet
    NEVER_ANSWERED = "never_answered"  # asked, and no advice ever came: not "in balance"
    QUIET = "quiet"  # nothing owed, but no contact for QUIET_AFTER
    IN_BALANCE = "in_balance"  # answered, given back as much as received


@dataclass(frozen=True)
class PersonSummary:
    """One person's record with the user."""

    person: Person
    asks: int  # loops the user started with them (advice, intro, learn)
    advice: int  # of those, loops in which their advice arrived
    reports: int  # loops the user reported back on
    gives: int  # loops given back on, give loops given, and gifts (mentor+gave@)
    they_asked_you: int  # mentee loops: they asked the user
    open_loops: int
    first_contact: datetime | None
    last_contact: datetime | None
    age_days: int | None  # days since the first contact
    days_to_act: float | None  # median days from their advice to acting on it
    days_to_report: float | None  # median days from acting to reporting back
    owes: tuple[Owed, ...]
    standing: Standing
    loop_ids: tuple[str, ...] = ()  # every loop with them, oldest first

    @property
    def owes_anything(self) -> bool:
        return bool(self.owes)


def relationships(
    loops: Iterable[Loop], people: Iterable[PersonRecord], now: datetime
) -> list[PersonSummary]:
    """One summary per person with a loop or a gift: those the user owes something first (the
    most pressing move first), then by last contact, newest first.

    ``loops`` should be every loop, open and ended, with its history (the medians read it). An
    ended loop a person record lists but ``loops`` lacks still counts, from the record's counts.
    """
    by_person: dict[str, list[Loop]] = defaultdict(list)
    for loop in loops:
        if not asks_nobody(loop):  # a topic to learn names no one yet: no relationship
            by_person[loop.mentor.address.lower()].append(loop)
    records = {p.address.lower(): p for p in people}
    result = [
        summarize(by_person.get(address, []), records.get(address), now)
        for address in sorted(set(by_person) | set(records))
        if by_person.get(address) or _has_history(records[address])
    ]
    return sorted(result, key=_order)


def _order(summary: PersonSummary) -> tuple[int, float, str]:
    urgency = min((_MOVE_RANK[o.move] for o in summary.owes), default=len(_MOVE_RANK))
    last = summary.last_contact.timestamp() if summary.last_contact else float("-inf")
    return (urgency, -last, summary.person.address)


def _has_history(record: PersonRecord) -> bool:
    return bool(record.ended or record.gifts or record.open)


def summarize(loops: Sequence[Loop], record: PersonRecord | None, now: datetime) -> PersonSummary:
    """The summary of one person from every loop with them and their record (at least one of
    the two must be there: the address comes from it)."""
    loops = sorted(loops, key=lambda lp: (lp.created_at, lp.id))
    person = _person(loops, record)
    asked = [lp for lp in loops if lp.kind in _ASK_KINDS]
    mentee = [lp for lp in loops if lp.kind is Kind.MENTEE]
    counts = sum((achieved(lp) for lp in asked), Counts())
    asks, they_asked = len(asked), len(mentee)
    missing = _missing_ended(loops, record)
    if missing and record is not None:  # ended loops not given: their share of the record
        ended = [lp for lp in loops if not lp.stage.is_open]
        present = sum((achieved(lp) for lp in ended if lp.kind is not Kind.MENTEE), Counts())
        counts = counts + _at_least_zero(record.counts - present)
        mentee_missing = max(0, record.mentee_ended - sum(lp.kind is Kind.MENTEE for lp in ended))
        asks += max(0, missing - mentee_missing)
        they_asked += mentee_missing
    gifts = len(record.gifts) if record else 0
    gives = counts.given + sum(achieved(lp).given for lp in loops if lp.kind is Kind.GIVE) + gifts
    first, last = _contacts(loops, record)
    owes = _owes(loops, counts, gives)
    return PersonSummary(
        person=person,
        asks=asks,
        advice=counts.advice,
        reports=counts.reported,
        gives=gives,
        they_asked_you=they_asked,
        open_loops=sum(lp.stage.is_open for lp in loops),
        first_contact=first,
        last_contact=last,
        age_days=max(0, (now - first).days) if first is not None else None,
        days_to_act=median_days(asked, Stage.ADVISED, Stage.ACTED),
        days_to_report=median_days(asked, Stage.ACTED, Stage.REPORTED),
        owes=owes,
        standing=_standing(owes, asked, asks, counts, last, now),
        loop_ids=tuple(lp.id for lp in loops),
    )


#: The kinds of loop the user starts by asking someone.
_ASK_KINDS = (Kind.ADVICE, Kind.INTRO, Kind.LEARN)

#: The move an open loop owes, by kind and working stage (absent: nothing owed, e.g. waiting).
_OWED_BY_STAGE: dict[tuple[Kind, Stage], Move] = {
    **{(kind, Stage.ADVISED): Move.ACT for kind in _ASK_KINDS},
    **{(kind, Stage.ACTED): Move.REPORT for kind in _ASK_KINDS},
    **{(kind, Stage.REPORTED): Move.GIVE_BACK for kind in _ASK_KINDS},
    (Kind.GIVE, Stage.ASKED): Move.GIVE_BACK,
    (Kind.MENTEE, Stage.ASKED): Move.ANSWER,
    (Kind.MENTEE, Stage.ADVISED): Move.CHECK_IN,
    (Kind.MENTEE, Stage.ACTED): Move.CHECK_IN,
    (Kind.MENTEE, Stage.REPORTED): Move.CHECK_IN,
}


def _owes(loops: Sequence[Loop], counts: Counts, gives: int) -> tuple[Owed, ...]:
    on: dict[Move, list[str]] = defaultdict(list)
    for loop in loops:
        if loop.stage.is_open:
            move = _OWED_BY_STAGE.get((loop.kind, working_stage(loop)))
            if move is not None:
                on[move].append(loop.id)
    # Advice that loops still open received is repaid when they get that far; the rest is owed.
    pending = sum(
        1
        for lp in loops
        if lp.kind in _ASK_KINDS
        and lp.stage.is_open
        and achieved(lp).advice
        and not achieved(lp).given
    )
    if counts.advice - pending > gives and Move.GIVE_BACK not in on:
        on[Move.GIVE_BACK] = []
    return tuple(Owed(move, tuple(on[move])) for move in Move if move in on)


def _standing(
    owes: tuple[Owed, ...],
    asked: Sequence[Loop],
    asks: int,
    counts: Counts,
    last: datetime | None,
    now: datetime,
) -> Standing:
    if owes:
        return Standing.YOUR_MOVE
    if any(lp.stage.is_open and working_stage(lp) is Stage.ASKED for lp in asked):
        return Standing.WAITING
    if asks and counts.advice == 0:  # ended asks count too, from the person record
        return Standing.NEVER_ANSWERED
    if last is not None and now - last > QUIET_AFTER:
        return Standing.QUIET
    return Standing.IN_BALANCE


def _at_least_zero(counts: Counts) -> Counts:
    return Counts(max(0, counts.advice), max(0, counts.reported), max(0, counts.given))


def _missing_ended(loops: Sequence[Loop], record: PersonRecord | None) -> int:
    if record is None:
        return 0
    given = {lp.id for lp in loops}
    return sum(loop_id not in given for loop_id in record.ended)


def _person(loops: Sequence[Loop], record: PersonRecord | None) -> Person:
    address = record.address.lower() if record else loops[0].mentor.address.lower()
    if record is not None and record.name:
        return Person(address=address, name=record.name)
    named = next((lp.mentor.name for lp in loops if lp.mentor.name), "")
    return Person(address=address, name=named)


def _contacts(
    loops: Sequence[Loop], record: PersonRecord | None
) -> tuple[datetime | None, datetime | None]:
    """The first and last contact: loops started and heard from, gifts given."""
    gifts: tuple[Event, ...] = record.gifts if record else ()
    firsts = [lp.created_at for lp in loops] + [g.at for g in gifts]
    lasts = [lp.last_contact_at or lp.created_at for lp in loops] + [g.at for g in gifts]
    if record is not None and record.last_contact is not None:
        lasts.append(record.last_contact)
    return min(firsts, default=None), max(lasts, default=None)


def entered(loop: Loop, stage: Stage) -> datetime | None:
    """When ``loop`` first reached ``stage``, from its history (None: never, or no history)."""
    return min((e.at for e in loop.events if e.stage is stage), default=None)


def median_days(loops: Iterable[Loop], start: Stage, end: Stage) -> float | None:
    """The median days from first reaching ``start`` to first reaching ``end`` over the loops
    that did both (to one decimal), or None when none did."""
    spans = []
    for loop in loops:
        began, done = entered(loop, start), entered(loop, end)
        if began is not None and done is not None and done >= began:
            spans.append((done - began).total_seconds() / 86400)
    return round(statistics.median(spans), 1) if spans else None
