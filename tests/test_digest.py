"""The weekly digest as data: loops and gifts in, sections and relationships out. No clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from mailmentor import digest as digest_module
from mailmentor.digest import MAX_PER_SECTION, Digest, Relationship
from mailmentor.intake import normalize_subject
from mailmentor.model import ActionKind, Event, EventType, Kind, Loop, Person, PlannedAction, Stage
from mailmentor.people import PersonRecord, subject_key, with_gift, with_loop
from mailmentor.stages import replay

NOW = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
D = timedelta(days=1)
ALAN = Person(address="alan@example.org", name="Alan Kay")
GRACE = Person(address="grace@navy.example", name="Grace Hopper")


def event(stage: Stage, days_ago: float, source: str = "message <m@x>") -> Event:
    return Event(at=NOW - days_ago * D, type=EventType.MESSAGE, source=source, stage=stage)


def loop(loop_id: str, stage: Stage, days_ago: float = 3, mentor: Person = ALAN, **kw: Any) -> Loop:
    events = kw.pop("events", [event(Stage.ASKED, days_ago + 5), event(stage, days_ago)])
    fresh = Loop(
        id=loop_id,
        mentor=mentor,
        subject=f"About {loop_id}",
        stage=stage,
        created_at=NOW - (days_ago + 5) * D,
        stage_entered_at=NOW - days_ago * D,
        **kw,
    )
    return replay(fresh, events)  # the history's summaries, as the store keeps them


def people_of(loops: list[Loop], gifts: dict[str, list[Event]]) -> list[PersonRecord]:
    """The person records the store would hold after these loops and gifts."""
    records: dict[str, PersonRecord] = {}
    for lp in loops:
        skey = subject_key(normalize_subject(lp.subject))
        records[lp.mentor.address] = with_loop(records.get(lp.mentor.address), None, lp, skey)
    for address, given in gifts.items():
        for g in given:
            records[address] = with_gift(records.get(address), address, g) or records[address]
    return list(records.values())


def build_digest(loops: list[Loop], gifts: dict[str, list[Event]], now: datetime) -> Digest:
    """The digest from every loop and gift, as the service builds it from what the store keeps:
    the open loops, the person records and the loops closed this week."""
    week_ago = now - 7 * D
    closed = sum(
        1 for lp in loops if lp.stage is Stage.CLOSED and lp.events and lp.events[-1].at > week_ago
    )
    open_loops = [lp for lp in loops if lp.stage.is_open]
    return digest_module.build_digest(
        open_loops, people_of(loops, gifts), now, closed_this_week=closed
    )


def relationships_of(
    loops: list[Loop], gifts: dict[str, list[Event]], now: datetime
) -> list[Relationship]:
    open_loops = [lp for lp in loops if lp.stage.is_open]
    return digest_module.relationships_of(open_loops, people_of(loops, gifts), now)


def gift(days_ago: float) -> Event:
    return Event(
        at=NOW - days_ago * D,
        type=EventType.NOTE,
        source=f"message <gift-{days_ago}@x>",
        stage=Stage.CLOSED,
        detail="gave: an intro",
    )


def test_sections_list_open_loops_by_what_the_user_does_next() -> None:
    digest = build_digest(
        [
            loop("asked1", Stage.ASKED, mentor=GRACE),
            loop("adv_new", Stage.ADVISED, 1),
            loop("adv_old", Stage.ADVISED, 9),
            loop("acted1", Stage.ACTED),
            loop("closed1", Stage.CLOSED, 2),
            loop("dropped1", Stage.DROPPED),
            loop("paused1", Stage.SNOOZED, snoozed_from=Stage.ACTED),
        ],
        {},
        NOW,
    )
    shown = {s.stage: [item.loop_id for item in s.loops] for s in digest.sections if s.loops}
    assert shown == {
        Stage.ADVISED: ["adv_old", "adv_new"],  # oldest first: it has waited longest
        Stage.ACTED: ["acted1"],
        Stage.ASKED: ["asked1"],
        Stage.SNOOZED: ["paused1"],
    }
    assert [s.stage for s in digest.sections][:4] == [
        Stage.ADVISED,
        Stage.ACTED,
        Stage.REPORTED,
        Stage.ASKED,
    ]
    assert (digest.open_loops, digest.to_do, digest.closed_this_week) == (5, 3, 1)
    paused = next(s for s in digest.sections if s.stage is Stage.SNOOZED).loops[0]
    assert paused.paused and paused.days_in_stage == 3


def test_only_future_reminders_are_dated() -> None:
    def due(at: datetime) -> PlannedAction:
        return PlannedAction(kind=ActionKind.REMIND, due_at=at, stage=Stage.ADVISED)

    later = loop("later", Stage.ADVISED, next_action=due(NOW + D))
    waiting = loop("waiting", Stage.ADVISED, 5, next_action=due(NOW - D))
    items = {
        i.loop_id: i.next_at for i in build_digest([later, waiting], {}, NOW).sections[0].loops
    }
    assert items == {"waiting": None, "later": NOW + D}


def test_a_long_section_is_cut_and_counted() -> None:
    loops = [loop(f"l{i:03}", Stage.ADVISED, i) for i in range(MAX_PER_SECTION + 4)]
    section = build_digest(loops, {}, NOW).sections[0]
    assert (len(section.loops), section.more) == (MAX_PER_SECTION, 4)
    assert build_digest(loops, {}, NOW).to_do == MAX_PER_SECTION + 4


# (case id, loops with Alan, gifts to Alan, expected state)
STATES: list[tuple[str, list[Loop], list[Event], str]] = [
    ("advice to act on", [loop("a", Stage.ADVISED)], [], "your move: act on their advice"),
    ("report due", [loop("a", Stage.ACTED)], [], "your move: tell them how it went"),
    ("give back due", [loop("a", Stage.REPORTED)], [], "your move: give something back"),
    (
        "a move beats waiting",
        [loop("a", Stage.ASKED), loop("b", Stage.ACTED)],
        [],
        "your move: tell them how it went",
    ),
    (
        "snoozed still counts where it stood",
        [loop("a", Stage.SNOOZED, snoozed_from=Stage.ADVISED)],
        [],
        "your move: act on their advice",
    ),
    ("waiting", [loop("a", Stage.ASKED)], [], "waiting for their answer"),
    ("quiet", [loop("a", Stage.CLOSED, 200)], [], "quiet for 6 months: a short update?"),
    ("a recent gift ends the quiet", [loop("a", Stage.CLOSED, 200)], [gift(3)], "in balance"),
    (
        "advice not yet repaid",
        [loop("a", Stage.DROPPED, 10, events=[event(Stage.ADVISED, 12), event(Stage.DROPPED, 10)])],
        [],
        "give back when you can",
    ),
    ("only gifts", [], [gift(1)], "in balance"),
]


@pytest.mark.parametrize(
    ("loops", "gifts", "state"),
    [case[1:] for case in STATES],
    ids=[case[0] for case in STATES],
)
def test_relationship_state(loops: list[Loop], gifts: list[Event], state: str) -> None:
    (rel,) = relationships_of(loops, {ALAN.address: gifts} if gifts else {}, NOW)
    assert rel.state == state


def test_relationship_counts_and_last_contact() -> None:
    loops = [
        loop("a", Stage.CLOSED, 40),  # asked → … → closed: advice, report and a gift back
        loop("b", Stage.ACTED, 2),
        loop("c", Stage.ASKED, 1, events=[event(Stage.ASKED, 1, source="command stop")]),
    ]
    (rel,) = relationships_of(loops, {"alan@example.org": [gift(20)]}, NOW)
    assert (rel.open_loops, rel.advice, rel.reported, rel.given) == (2, 2, 1, 2)
    assert rel.last_contact == NOW - 2 * D  # commands are not contact; messages and gifts are
    assert rel.person == ALAN


def test_people_waiting_on_the_user_come_first() -> None:
    bob = Person(address="bob@example.com")
    loops = [
        loop("g", Stage.ASKED, 1, mentor=GRACE),
        loop("a", Stage.ADVISED, 5, mentor=ALAN),
        loop("b", Stage.CLOSED, 300, mentor=bob),
    ]
    order = [r.person.address for r in relationships_of(loops, {"carol@x.example": [gift(2)]}, NOW)]
    assert order == ["alan@example.org", "bob@example.com", "grace@navy.example", "carol@x.example"]


def test_other_loop_kinds_are_listed_too() -> None:
    mentee = loop("m", Stage.ASKED, kind=Kind.MENTEE)
    (item,) = build_digest([mentee], {}, NOW).sections[3].loops
    assert (item.loop_id, item.kind) == ("m", Kind.MENTEE)


def test_nothing_open() -> None:
    digest = build_digest([], {}, NOW)
    assert (digest.open_loops, digest.to_do, digest.relationships) == (0, 0, ())
    assert all(not s.loops for s in digest.sections)
