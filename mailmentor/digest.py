"""The weekly digest as data: what the user's move is, what waits on others, what closed, and
how each relationship stands.

Pure: the open loops, the loops closed this week, the person records, the rules and ``now`` in,
a Digest out. Every line the user can act on carries a number; a reply to the digest such as
``2 done`` acts on that line's loop (the numbers are bound to loops in the store for that
digest, see ``store.digests``). The mail is rendered from the Digest by
``reminders.digest_mail`` and `mailmentor digest` prints the same, so a preview is what is sent.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum

from mailmentor.model import Kind, Loop, Person, Stage
from mailmentor.people import PersonRecord, asks_nobody
from mailmentor.relationships import PersonSummary, relationships
from mailmentor.rules import Rules
from mailmentor.schedule import give_up_time
from mailmentor.stages import working_stage

#: At most this many lines per section and people in the relationship list; the rest are counted.
MAX_PER_SECTION = 25
MAX_PEOPLE = 30


class Move(StrEnum):
    """What a digest line asks of the user, or what it waits on."""

    ACT = "act on their advice"
    REPORT = "tell them how it went"
    GIVE_BACK = "give something back"
    THEY_ASKED = "answer them"  # someone asked the user (a mentee loop) and waits
    CHECK_IN = "check in with them"  # the user advised them: see how it goes
    FIND = "find someone to ask"  # a `learn` loop not yet sent to anyone
    PAUSED = "paused: still worth doing?"
    ANSWER = "waiting for their answer"
    SNOOZED = "snoozed"
    KEEP_IN_TOUCH = "given back: keep in touch"
    CLOSED = "closed"
    DROPPED = "let go"


#: The user's moves, most pressing first (the order of the "Your move" section).
YOUR_MOVES: tuple[Move, ...] = (
    Move.ACT,
    Move.REPORT,
    Move.GIVE_BACK,
    Move.THEY_ASKED,
    Move.CHECK_IN,
    Move.FIND,
    Move.PAUSED,
)
WAITING: tuple[Move, ...] = (Move.ANSWER, Move.SNOOZED, Move.KEEP_IN_TOUCH)


@dataclass(frozen=True)
class DigestLine:
    """One loop as the digest lists it; ``number`` is what a reply names it by (0: none)."""

    number: int
    loop_id: str
    kind: Kind
    mentor: Person
    subject: str
    move: Move
    #: Since when the loop stands where it is (the stage's start; for closed ones, the end).
    since: datetime
    #: The next reminder, when one is planned in the future.
    next_at: datetime | None = None
    #: When mailmentor lets the loop go if nothing happens (asks without an answer).
    give_up_at: datetime | None = None
    #: When a snoozed loop wakes.
    wakes_at: datetime | None = None


@dataclass(frozen=True)
class Section:
    title: str
    lines: tuple[DigestLine, ...]
    more: int = 0  # loops of this section left out of the list


@dataclass(frozen=True)
class Digest:
    now: datetime
    your_move: Section
    waiting_on: Section
    closed: Section
    relationships: tuple[PersonSummary, ...]
    more_people: int
    open_loops: int
    #: What is wrong with mailmentor itself and needs the user (e.g. a sign-in to renew).
    health: tuple[str, ...] = ()
    #: One line on how mailmentor runs (the watcher's last sync, ...), always shown.
    health_line: str = ""

    @property
    def sections(self) -> tuple[Section, ...]:
        """The sections with something in them, in reading order."""
        return tuple(s for s in (self.your_move, self.waiting_on, self.closed) if s.lines)

    @property
    def to_do(self) -> int:
        """Open loops that wait on the user."""
        return len(self.your_move.lines) + self.your_move.more

    @property
    def closed_this_week(self) -> int:
        return len(self.closed.lines) + self.closed.more

    @property
    def numbers(self) -> dict[int, str]:
        """Line number → loop id, for every numbered line (what a reply's numbers mean)."""
        return {
            line.number: line.loop_id
            for section in (self.your_move, self.waiting_on)
            for line in section.lines
            if line.number
        }


def build_digest(
    loops: Sequence[Loop],
    people: Iterable[PersonRecord],
    now: datetime,
    *,
    rules: Rules | None = None,
    closed: Sequence[Loop] = (),
    numbering: Mapping[str, int] | None = None,
) -> Digest:
    """The digest for ``now`` from the open ``loops``, the loops ``closed`` this week and every
    person's record. ``numbering`` (loop id → number) keeps the numbers a digest already sent
    for this week gave its lines (a retried send must mean the same by "2"); the others get the
    next free numbers, in reading order."""
    open_loops = [lp for lp in loops if lp.stage.is_open]
    lines = [_line(lp, now, rules) for lp in open_loops]
    mine = _section("Your move", lines, YOUR_MOVES)
    waiting = _section("Waiting on", lines, WAITING)
    mine, waiting = _numbered(mine, waiting, numbering or {})
    ended = sorted(
        (_closed_line(lp) for lp in closed if not lp.stage.is_open),
        key=lambda ln: (ln.since, ln.loop_id),
        reverse=True,
    )
    closed_section = Section(
        "Closed this week", tuple(ended[:MAX_PER_SECTION]), max(0, len(ended) - MAX_PER_SECTION)
    )
    # The same summaries `mailmentor mentors` prints (ended loops count from the records).
    people_now = relationships(open_loops, people, now)
    return Digest(
        now=now,
        your_move=mine,
        waiting_on=waiting,
        closed=closed_section,
        relationships=tuple(people_now[:MAX_PEOPLE]),
        more_people=max(0, len(people_now) - MAX_PEOPLE),
        open_loops=len(open_loops),
    )


def move_of(loop: Loop) -> Move:
    """What an open loop waits on: one of the user's moves, or someone (or something) else."""
    if loop.stage is Stage.SNOOZED:
        return Move.PAUSED if loop.snoozed_until is None else Move.SNOOZED
    stage = working_stage(loop)
    if loop.kind is Kind.MENTEE:
        if stage is Stage.ASKED:
            return Move.THEY_ASKED
        return Move.KEEP_IN_TOUCH if stage is Stage.GAVE_BACK else Move.CHECK_IN
    if stage is Stage.ASKED:
        return Move.FIND if asks_nobody(loop) else Move.ANSWER
    return {
        Stage.ADVISED: Move.ACT,
        Stage.ACTED: Move.REPORT,
        Stage.REPORTED: Move.GIVE_BACK,
    }.get(stage, Move.KEEP_IN_TOUCH)


def _line(loop: Loop, now: datetime, rules: Rules | None) -> DigestLine:
    move = move_of(loop)
    next_at = loop.next_reminder_at
    return DigestLine(
        number=0,
        loop_id=loop.id,
        kind=loop.kind,
        mentor=loop.mentor,
        subject=loop.subject,
        move=move,
        since=loop.stage_entered_at,
        # A time already past is one waiting for quiet hours or the budget: not worth a date.
        next_at=next_at if next_at is not None and next_at > now else None,
        give_up_at=give_up_at(loop, rules) if move is Move.ANSWER else None,
        wakes_at=loop.snoozed_until if move is Move.SNOOZED else None,
    )


def give_up_at(loop: Loop, rules: Rules | None) -> datetime | None:
    """When the rules let this loop go if nothing happens in its stage (None: never)."""
    if rules is None or not loop.stage.is_open or loop.stage is Stage.SNOOZED:
        return None
    rule_set = rules.for_loop(loop)
    rule = rule_set.stages.get(loop.stage) if rule_set else None
    return give_up_time(loop, rule) if rule is not None else None


def _section(title: str, lines: Iterable[DigestLine], moves: tuple[Move, ...]) -> Section:
    members = sorted(
        (ln for ln in lines if ln.move in moves),
        key=lambda ln: (moves.index(ln.move), ln.since, ln.loop_id),
    )
    return Section(title, tuple(members[:MAX_PER_SECTION]), max(0, len(members) - MAX_PER_SECTION))


def _numbered(
    mine: Section, waiting: Section, numbering: Mapping[str, int]
) -> tuple[Section, Section]:
    """Number every listed line: the numbers given keep theirs, the rest get the next free."""
    shown = [*mine.lines, *waiting.lines]
    kept = {ln.loop_id: numbering[ln.loop_id] for ln in shown if numbering.get(ln.loop_id)}
    taken = set(numbering.values())
    counter = 0

    def number(line: DigestLine) -> DigestLine:
        nonlocal counter
        if line.loop_id in kept:
            return replace(line, number=kept[line.loop_id])
        counter += 1
        while counter in taken:
            counter += 1
        taken.add(counter)
        return replace(line, number=counter)

    return (
        Section(mine.title, tuple(number(ln) for ln in mine.lines), mine.more),
        Section(waiting.title, tuple(number(ln) for ln in waiting.lines), waiting.more),
    )


def _closed_line(loop: Loop) -> DigestLine:
    ended = loop.events[-1].at if loop.events else loop.stage_entered_at
    return DigestLine(
        number=0,
        loop_id=loop.id,
        kind=loop.kind,
        mentor=loop.mentor,
        subject=loop.subject,
        move=Move.CLOSED if loop.stage is Stage.CLOSED else Move.DROPPED,
        since=max(ended, loop.stage_entered_at),
    )
