"""The weekly digest as data: loops and gifts in, sections and relationships out. No clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from mailmentor import digest as digest_module
from mailmentor.digest import MAX_PER_SECTION, Digest, Move
from mailmentor.intake import normalize_subject
from mailmentor.model import ActionKind, Event, EventType, Kind, Loop, Person, PlannedAction, Stage
from mailmentor.people import PersonRecord, asks_nobody, subject_key, with_gift, with_loop
from mailmentor.relationships import PersonSummary, relationships
from mailmentor.reminders.digest_mail import standing_text
from mailmentor.rules import Rules, RuleSet, StageRule
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
        if asks_nobody(lp):
            continue  # as the writer: a topic nobody was asked about has no person record
        skey = subject_key(normalize_subject(lp.subject))
        records[lp.mentor.address] = with_loop(records.get(lp.mentor.address), None, lp, skey)
    for address, given in gifts.items():
        for g in given:
            records[address] = with_gift(records.get(address), address, g) or records[address]
    return list(records.values())


def build_digest(
    loops: list[Loop], gifts: dict[str, list[Event]], now: datetime, rules: Rules | None = None
) -> Digest:
    """The digest from every loop and gift, as the service builds it from what the store keeps:
    the open loops, the person records and the loops closed this week."""
    week_ago = now - 7 * D
    closed = [
        lp for lp in loops if lp.stage is Stage.CLOSED and lp.events and lp.events[-1].at > week_ago
    ]
    open_loops = [lp for lp in loops if lp.stage.is_open]
    return digest_module.build_digest(
        open_loops, people_of(loops, gifts), now, rules=rules, closed=closed
    )


def relationships_of(
    loops: list[Loop], gifts: dict[str, list[Event]], now: datetime
) -> list[PersonSummary]:
    open_loops = [lp for lp in loops if lp.stage.is_open]
    return relationships(open_loops, people_of(loops, gifts), now)


def gift(days_ago: float) -> Event:
    return Event(
        at=NOW - days_ago * D,
        type=EventType.NOTE,
        source=f"message <gift-{days_ago}@x>",
        stage=Stage.CLOSED,
        detail="gave: an intro",
    )


def test_your_move_waiting_on_and_closed_this_week() -> None:
    digest = build_digest(
        [
            loop("asked1", Stage.ASKED, mentor=GRACE),
            loop("adv_new", Stage.ADVISED, 1),
            loop("adv_old", Stage.ADVISED, 9),
            loop("acted1", Stage.ACTED),
            loop("mentee1", Stage.ASKED, 2, kind=Kind.MENTEE),
            loop("closed1", Stage.CLOSED, 2),
            loop("closed_old", Stage.CLOSED, 20),
            loop("dropped1", Stage.DROPPED),
            loop("paused1", Stage.SNOOZED, snoozed_from=Stage.ACTED),
            loop("snoozed1", Stage.SNOOZED, snoozed_from=Stage.ADVISED, snoozed_until=NOW + D),
        ],
        {},
        NOW,
    )
    mine = [(ln.number, ln.loop_id, ln.move) for ln in digest.your_move.lines]
    assert mine == [
        (1, "adv_old", Move.ACT),  # oldest first: it has waited longest
        (2, "adv_new", Move.ACT),
        (3, "acted1", Move.REPORT),
        (4, "mentee1", Move.THEY_ASKED),  # someone asked the user: the user's move
        (5, "paused1", Move.PAUSED),
    ]
    waiting = [(ln.number, ln.loop_id, ln.move) for ln in digest.waiting_on.lines]
    assert waiting == [(6, "asked1", Move.ANSWER), (7, "snoozed1", Move.SNOOZED)]
    assert [ln.loop_id for ln in digest.closed.lines] == ["closed1"]
    assert digest.closed.lines[0].number == 0, "closed lines are not numbered"
    assert (digest.open_loops, digest.to_do, digest.closed_this_week) == (7, 5, 1)
    assert digest.numbers[3] == "acted1"
    assert [s.title for s in digest.sections] == ["Your move", "Waiting on", "Closed this week"]


def test_empty_sections_are_left_out() -> None:
    digest = build_digest([loop("asked1", Stage.ASKED)], {}, NOW)
    assert [s.title for s in digest.sections] == ["Waiting on"]


def test_an_ask_shows_when_it_will_be_let_go() -> None:
    asked = StageRule(after=7 * D, give_up_after=30 * D)
    rules = Rules(
        rule_sets=(RuleSet(name="advice", kinds=(Kind.ADVICE,), stages={Stage.ASKED: asked}),)
    )
    (line,) = build_digest([loop("a", Stage.ASKED, 3)], {}, NOW, rules).waiting_on.lines
    assert line.give_up_at == NOW - 3 * D + 30 * D


def test_numbers_given_are_kept_and_new_lines_get_free_ones() -> None:
    loops = [loop("a", Stage.ADVISED, 9), loop("b", Stage.ADVISED, 5), loop("c", Stage.ADVISED, 1)]
    numbering = {"c": 1, "gone": 2}  # "gone" closed since: its number stays taken
    digest = digest_module.build_digest(loops, [], NOW, numbering=numbering)
    assert digest.numbers == {1: "c", 3: "a", 4: "b"}


def test_only_future_reminders_are_dated() -> None:
    def due(at: datetime) -> PlannedAction:
        return PlannedAction(kind=ActionKind.REMIND, due_at=at, stage=Stage.ADVISED)

    later = loop("later", Stage.ADVISED, next_action=due(NOW + D))
    waiting = loop("waiting", Stage.ADVISED, 5, next_action=due(NOW - D))
    items = {i.loop_id: i.next_at for i in build_digest([later, waiting], {}, NOW).your_move.lines}
    assert items == {"waiting": None, "later": NOW + D}


def test_a_long_section_is_cut_and_counted() -> None:
    loops = [loop(f"l{i:03}", Stage.ADVISED, i) for i in range(MAX_PER_SECTION + 4)]
    section = build_digest(loops, {}, NOW).your_move
    assert (len(section.lines), section.more) == (MAX_PER_SECTION, 4)
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
    (
        "never answered is not in balance",
        [loop("a", Stage.DROPPED, 10, events=[event(Stage.DROPPED, 10)])],
        [],
        "no answer yet",
    ),
    (
        "they asked you",
        [loop("a", Stage.ASKED, kind=Kind.MENTEE)],
        [],
        "they asked you: answer them",
    ),
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
    assert standing_text(rel, NOW) == state


def test_relationship_counts_and_last_contact() -> None:
    loops = [
        loop("a", Stage.CLOSED, 40),  # asked → … → closed: advice, report and a gift back
        loop("b", Stage.ACTED, 2),
        loop("c", Stage.ASKED, 1, events=[event(Stage.ASKED, 1, source="command stop")]),
    ]
    (rel,) = relationships_of(loops, {"alan@example.org": [gift(20)]}, NOW)
    assert (rel.open_loops, rel.advice, rel.reports, rel.gives) == (2, 2, 1, 2)
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
    # What the user owes first, then the latest contact first (as `mailmentor mentors` sorts).
    assert order == ["alan@example.org", "grace@navy.example", "carol@x.example", "bob@example.com"]


def test_a_learn_topic_nobody_was_asked_about_is_a_move_not_a_person() -> None:
    me = Person(address="ada@example.com")
    topic = loop("l", Stage.ASKED, 1, mentor=me, kind=Kind.LEARN, message_ids=[])
    digest = build_digest([topic], {}, NOW)
    assert [(ln.loop_id, ln.move) for ln in digest.your_move.lines] == [("l", Move.FIND)]
    assert digest.relationships == ()


def test_people_who_asked_the_user_are_not_counted_as_asks_when_their_loop_ended() -> None:
    """The digest reads only open loops: ended ones count from the person record, which keeps
    mentee loops apart (`mailmentor mentors`, reading every loop, says the same)."""
    mentee = loop("m", Stage.CLOSED, 30, kind=Kind.MENTEE)
    records = people_of([mentee], {})
    (from_records,) = relationships([], records, NOW)
    (from_loops,) = relationships([mentee], records, NOW)
    for rel in (from_records, from_loops):
        assert (rel.asks, rel.advice, rel.they_asked_you, rel.owes) == (0, 0, 1, ()), rel


def test_nothing_open() -> None:
    digest = build_digest([], {}, NOW)
    assert (digest.open_loops, digest.to_do, digest.relationships) == (0, 0, ())
    assert digest.sections == ()
