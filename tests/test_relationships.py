"""The relationship record: loops (with history) and person records in, one summary per person
out. Pure, with ``now`` given; each row of the tables is one story and what it must add up to."""

from __future__ import annotations

from datetime import datetime

import pytest

from mailmentor.model import Event, Kind, Loop, Person, Stage
from mailmentor.relationships import (
    Move,
    Owed,
    PersonSummary,
    Standing,
    median_days,
    relationships,
    summarize,
)
from tests.loop_stories import ALAN, DAY, GRACE, LINUS, T0, gift, records_of, story

A, AD, AC, R, C, D, S = (
    Stage.ASKED,
    Stage.ADVISED,
    Stage.ACTED,
    Stage.REPORTED,
    Stage.CLOSED,
    Stage.DROPPED,
    Stage.SNOOZED,
)
NOW = T0 + 30 * DAY


def one(
    loops: list[Loop], now: datetime = NOW, gifts: dict[str, list[Event]] | None = None
) -> PersonSummary:
    """The single person's summary for these loops (and gifts, by address)."""
    found = relationships(loops, records_of(loops, gifts), now)
    assert len(found) == 1, found
    return found[0]


# -- counts, owes and standing: one story per row -----------------------------------------------

STORIES: list[tuple[str, list[Loop], dict[str, object]]] = [
    (
        "an ask without an answer waits",
        [story("l1")],
        dict(asks=1, advice=0, reports=0, gives=0, owes=(), standing=Standing.WAITING),
    ),
    (
        "an ask they never answered is not in balance",
        [story("l1", (D, 21))],
        dict(asks=1, advice=0, owes=(), standing=Standing.NEVER_ANSWERED, open_loops=0),
    ),
    (
        "advice arrived: act on it",
        [story("l1", (AD, 2))],
        dict(asks=1, advice=1, owes=(Owed(Move.ACT, ("l1",)),), standing=Standing.YOUR_MOVE),
    ),
    (
        "acted: report back",
        [story("l1", (AD, 2), (AC, 4))],
        dict(advice=1, reports=0, owes=(Owed(Move.REPORT, ("l1",)),)),
    ),
    (
        "reported: give back on that loop",
        [story("l1", (AD, 2), (AC, 4), (R, 9))],
        dict(advice=1, reports=1, gives=0, owes=(Owed(Move.GIVE_BACK, ("l1",)),)),
    ),
    (
        "a whole cycle is in balance",
        [story("l1", (AD, 2), (AC, 4), (R, 9), (C, 12))],
        dict(asks=1, advice=1, reports=1, gives=1, owes=(), standing=Standing.IN_BALANCE),
    ),
    (
        "advice received and the loop let go: give back is owed on the relationship",
        [story("l1", (AD, 2), (AC, 4), (D, 20))],
        dict(advice=1, gives=0, owes=(Owed(Move.GIVE_BACK),), standing=Standing.YOUR_MOVE),
    ),
    (
        "a snoozed loop still owes what its stage owes",
        [story("l1", (AD, 2), (S, 3))],
        dict(owes=(Owed(Move.ACT, ("l1",)),), open_loops=1),
    ),
    (
        "moves on several loops, most pressing first",
        [
            story("l1", (AD, 2), (AC, 3)),
            story("l2", (AD, 2)),
            story("l3", (AD, 1), (AC, 2)),
            story("l4"),
        ],
        dict(
            asks=4,
            advice=3,
            owes=(Owed(Move.ACT, ("l2",)), Owed(Move.REPORT, ("l1", "l3"))),
            open_loops=4,
        ),
    ),
    (
        "someone who asked the user is not the user's ask",
        [story("m1", kind=Kind.MENTEE)],
        dict(asks=0, they_asked_you=1, advice=0, owes=(Owed(Move.ANSWER, ("m1",)),)),
    ),
    (
        "the user advised a mentee: check in",
        [story("m1", (AD, 1), kind=Kind.MENTEE), story("l1", (AD, 2), (AC, 3), (R, 4), (C, 5))],
        dict(
            asks=1,
            advice=1,
            reports=1,
            gives=1,
            they_asked_you=1,
            owes=(Owed(Move.CHECK_IN, ("m1",)),),
        ),
    ),
    (
        "an ended mentee loop owes nothing and counts no advice received",
        [story("m1", (AD, 1), (D, 20), kind=Kind.MENTEE)],
        dict(asks=0, advice=0, they_asked_you=1, owes=(), standing=Standing.IN_BALANCE),
    ),
    (
        "a give loop given counts as a give, not an ask",
        [story("l1", (AD, 2), (D, 20)), story("g1", (C, 25), kind=Kind.GIVE)],
        dict(asks=1, advice=1, gives=1, owes=(), standing=Standing.IN_BALANCE),
    ),
    (
        "a give loop not yet given is owed",
        [story("g1", kind=Kind.GIVE)],
        dict(asks=0, gives=0, owes=(Owed(Move.GIVE_BACK, ("g1",)),)),
    ),
]


@pytest.mark.parametrize(
    ("loops", "expected"), [(lp, ex) for _, lp, ex in STORIES], ids=[n for n, _, _ in STORIES]
)
def test_each_story_adds_up(loops: list[Loop], expected: dict[str, object]) -> None:
    summary = one(loops)
    assert {name: getattr(summary, name) for name in expected} == expected


def test_a_gift_repays_advice_received() -> None:
    loops = [story("l1", (AD, 2), (AC, 4), (D, 20))]
    summary = one(loops, gifts={ALAN.address: [gift(T0 + 22 * DAY)]})
    assert (summary.advice, summary.gives, summary.owes) == (1, 1, ())
    assert summary.standing is Standing.IN_BALANCE
    assert summary.last_contact == T0 + 22 * DAY


def test_no_contact_for_three_months_is_quiet() -> None:
    loops = [story("l1", (AD, 2), (AC, 4), (R, 9), (C, 12))]
    assert one(loops, now=T0 + 120 * DAY).standing is Standing.QUIET
    assert one(loops, now=T0 + 90 * DAY).standing is Standing.IN_BALANCE


# -- contact and time ----------------------------------------------------------------------------


def test_first_and_last_contact_and_age() -> None:
    loops = [
        story("l1", (AD, 3), start=T0 + 2 * DAY),
        story("l2", (AD, 1), (AC, 2), (R, 6), start=T0 + 10 * DAY),
        story("m1", kind=Kind.MENTEE, start=T0),
    ]
    summary = one(loops)
    assert summary.first_contact == T0  # the mentee's ask is contact too
    assert summary.last_contact == T0 + 16 * DAY  # l2's report, a message
    assert summary.age_days == 30
    assert summary.loop_ids == ("m1", "l1", "l2")


MEDIANS = [
    ("no loop acted", [story("l1", (AD, 2))], None, None),
    ("one loop", [story("l1", (AD, 2), (AC, 5), (R, 12))], 3.0, 7.0),
    (
        "the middle of three",
        [
            story("l1", (AD, 1), (AC, 2)),
            story("l2", (AD, 1), (AC, 4), (R, 5)),
            story("l3", (AD, 1), (AC, 11), (R, 14)),
        ],
        3.0,
        2.0,
    ),
    ("half days", [story("l1", (AD, 1), (AC, 1.5)), story("l2", (AD, 1), (AC, 3))], 1.2, None),
    ("a snooze between counts its days", [story("l1", (AD, 1), (S, 2), (AC, 9))], 8.0, None),
    ("mentee loops do not count", [story("m1", (AD, 1), (AC, 2), kind=Kind.MENTEE)], None, None),
]


@pytest.mark.parametrize(
    ("loops", "to_act", "to_report"),
    [row[1:] for row in MEDIANS],
    ids=[row[0] for row in MEDIANS],
)
def test_median_days(loops: list[Loop], to_act: float | None, to_report: float | None) -> None:
    summary = one(loops)
    assert (summary.days_to_act, summary.days_to_report) == (to_act, to_report)


def test_median_days_needs_the_history() -> None:
    acted = story("l1", (AD, 1), (AC, 4))
    assert median_days([acted], AD, AC) == 3.0
    assert median_days([acted.model_copy(update={"events": []})], AD, AC) is None


# -- many people ---------------------------------------------------------------------------------


def test_those_owed_come_first_by_move_then_by_last_contact() -> None:
    ada = Person(address="ada@example.com", name="Ada Lovelace")
    loops = [
        story("waiting", mentor=ada, start=T0 + 20 * DAY),  # contact day 20, owes nothing
        story("balanced", (AD, 1), (AC, 2), (R, 3), (C, 4), mentor=GRACE),  # contact day 3
        story("report", (AD, 1), (AC, 2), mentor=LINUS),  # contact day 1: report back
        story("act", (AD, 5), mentor=ALAN),  # contact day 5: act
    ]
    found = relationships(loops, records_of(loops), NOW)
    assert [s.person.address for s in found] == [
        ALAN.address,
        LINUS.address,
        ada.address,
        GRACE.address,
    ]


def test_a_person_with_only_gifts_is_listed() -> None:
    given = gift(T0 + 3 * DAY)
    found = relationships([], records_of([], {"bob@example.com": [given]}), NOW)
    assert [(s.person.address, s.asks, s.gives, s.owes) for s in found] == [
        ("bob@example.com", 0, 1, ())
    ]
    assert (found[0].first_contact, found[0].last_contact) == (given.at, given.at)


def test_names_come_from_the_record_or_the_loops() -> None:
    unnamed = Person(address="ALAN@example.org")
    loops = [story("l1", mentor=unnamed), story("l2", mentor=ALAN, start=T0 + DAY)]
    summary = summarize(loops, None, NOW)
    assert summary.person == Person(address="alan@example.org", name="Alan Kay")


def test_ended_loops_missing_from_the_input_count_from_the_record() -> None:
    """The digest may pass only open loops: the record's counts stand in for ended ones."""
    ended = story("l1", (AD, 2), (AC, 4), (R, 9), (C, 12))
    still = story("l2", (AD, 2), start=T0 + 20 * DAY)
    records = records_of([ended, still])
    whole = relationships([ended, still], records, NOW)[0]
    partial = relationships([still], records, NOW)[0]
    fields = ("asks", "advice", "reports", "gives", "owes")
    assert [getattr(partial, f) for f in fields] == [getattr(whole, f) for f in fields]
    assert (whole.asks, whole.advice, whole.reports, whole.gives) == (2, 2, 1, 1)
