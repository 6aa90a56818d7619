"""plan_next/plan_horizon: (loop state, rules) → expected action, no clock, no patching."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from mailmentor.forecast import forecast
from mailmentor.model import ActionKind, Kind, Loop, Person, PlannedAction, Stage
from mailmentor.rules import Rules, RuleSet, StageRule, default_rules_dir, load_rules
from mailmentor.schedule import plan_next, planned
from mailmentor.stages import apply_due_action

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
D = timedelta(days=1)

RULES = Rules(
    rule_sets=(
        RuleSet(
            name="advice",
            kinds=(Kind.ADVICE,),
            stages={
                Stage.ASKED: StageRule(after=7 * D, every=7 * D, max=2, give_up_after=21 * D),
                Stage.ADVISED: StageRule(after=2 * D, every=3 * D, max=2),
                Stage.ACTED: StageRule(after=7 * D, give_up_after=10 * D),
                Stage.REPORTED: StageRule(after=30 * D, every=30 * D, max=3, give_up_after=90 * D),
                Stage.GAVE_BACK: StageRule(after=5 * D, give_up_after=5 * D),
            },
        ),
        RuleSet(name="intro", kinds=(Kind.INTRO,), stages={Stage.ASKED: StageRule(after=D)}),
        RuleSet(name="later", kinds=(Kind.INTRO,), stages={Stage.ASKED: StageRule(after=4 * D)}),
    ),
)


def loop(**changes: Any) -> Loop:
    base: dict[str, Any] = {
        "id": "L1",
        "mentor": Person(address="ada@example.org", name="Ada"),
        "subject": "Pricing?",
        "created_at": T0,
        "stage_entered_at": T0,
    }
    return Loop(**(base | changes))


def remind(stage: Stage, due: datetime, seq: int, rule: str) -> PlannedAction:
    return PlannedAction(kind=ActionKind.REMIND, due_at=due, stage=stage, sequence=seq, rule=rule)


def give_up(stage: Stage, due: datetime, seq: int, rule: str) -> PlannedAction:
    return PlannedAction(kind=ActionKind.GIVE_UP, due_at=due, stage=stage, sequence=seq, rule=rule)


A, V, C, R, G = Stage.ASKED, Stage.ADVISED, Stage.ACTED, Stage.REPORTED, Stage.GAVE_BACK

CASES: list[tuple[str, Loop, PlannedAction | None]] = [
    ("asked, fresh: first nudge after 7d", loop(), remind(A, T0 + 7 * D, 1, "advice.asked")),
    (
        "asked, one nudge sent late: next counts from when it went",
        loop(nudges=1, last_reminder_at=T0 + 8 * D),
        remind(A, T0 + 15 * D, 2, "advice.asked"),
    ),
    (
        "asked, max reached: give up at entered + 21d",
        loop(nudges=2, last_reminder_at=T0 + 14 * D),
        give_up(A, T0 + 21 * D, 3, "advice.asked"),
    ),
    (
        "asked, next nudge would land after give-up: give up instead",
        loop(nudges=1, last_reminder_at=T0 + 15 * D),
        give_up(A, T0 + 21 * D, 2, "advice.asked"),
    ),
    (
        "asked, next nudge exactly at give-up: give up",
        loop(nudges=1, last_reminder_at=T0 + 14 * D),
        give_up(A, T0 + 21 * D, 2, "advice.asked"),
    ),
    (
        "advised, fresh: nudge to act after 2d",
        loop(stage=V, stage_entered_at=T0 + D),
        remind(V, T0 + 3 * D, 1, "advice.advised"),
    ),
    (
        "advised, once nudged: again 3d later",
        loop(stage=V, nudges=1, last_reminder_at=T0 + 2 * D),
        remind(V, T0 + 5 * D, 2, "advice.advised"),
    ),
    ("advised, max reached, no give-up: nothing", loop(stage=V, nudges=2), None),
    (
        "acted, no every: after the one nudge, give up",
        loop(stage=C, nudges=1, last_reminder_at=T0 + 7 * D),
        give_up(C, T0 + 10 * D, 2, "advice.acted"),
    ),
    (
        "reported, nudges counted but last time lost: assume on time",
        loop(stage=R, nudges=1),
        remind(R, T0 + 60 * D, 2, "advice.reported"),
    ),
    (
        "gave_back, give-up equals after: give up wins",
        loop(stage=G),
        give_up(G, T0 + 5 * D, 1, "advice.gave_back"),
    ),
    ("closed: nothing", loop(stage=Stage.CLOSED), None),
    ("dropped: nothing", loop(stage=Stage.DROPPED), None),
    (
        "snoozed: wake at snoozed_until",
        loop(stage=Stage.SNOOZED, snoozed_until=T0 + 3 * D, snoozed_from=V),
        PlannedAction(
            kind=ActionKind.WAKE, due_at=T0 + 3 * D, stage=Stage.SNOOZED, sequence=1, rule="snooze"
        ),
    ),
    ("snoozed without a wake time: nothing", loop(stage=Stage.SNOOZED), None),
    ("no rule set for the kind: nothing", loop(kind=Kind.MENTEE), None),
    ("no rule for the stage: nothing", loop(kind=Kind.INTRO, stage=V), None),
    (
        "two sets for a kind: the later wins",
        loop(kind=Kind.INTRO),
        remind(A, T0 + 4 * D, 1, "later.asked"),
    ),
]


@pytest.mark.parametrize(("state", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_plan_next(state: Loop, expected: PlannedAction | None) -> None:
    assert plan_next(state, RULES) == expected


def test_same_loop_same_key() -> None:
    first, second = plan_next(loop(), RULES), plan_next(loop(), RULES)
    assert first is not None and second is not None
    assert first.key == second.key


def plan_horizon(start: Loop, rules: Rules, until: datetime) -> list[PlannedAction]:
    """One loop's forecast with no quiet hours or budget in the way: its actions in order."""
    return [e.action for e in forecast([planned(start, rules)], rules, ZoneInfo("UTC"), T0, until)]


def test_horizon_simulates_nudges_then_give_up() -> None:
    assert plan_horizon(loop(), RULES, until=T0 + 365 * D) == [
        remind(A, T0 + 7 * D, 1, "advice.asked"),
        remind(A, T0 + 14 * D, 2, "advice.asked"),
        give_up(A, T0 + 21 * D, 3, "advice.asked"),
    ]


def test_horizon_stops_at_until() -> None:
    assert plan_horizon(loop(), RULES, until=T0 + 14 * D - timedelta(seconds=1)) == [
        remind(A, T0 + 7 * D, 1, "advice.asked")
    ]


def test_horizon_wakes_a_snoozed_loop_and_counts_the_wake_as_a_nudge() -> None:
    # As delivery does: the wake-up mail is that stage's reminder, so `every` counts from it.
    snoozed = loop(stage=Stage.SNOOZED, snoozed_until=T0 + 3 * D, snoozed_from=V)
    assert [(a.kind, a.due_at, a.stage) for a in plan_horizon(snoozed, RULES, T0 + 30 * D)] == [
        (ActionKind.WAKE, T0 + 3 * D, Stage.SNOOZED),
        (ActionKind.REMIND, T0 + 6 * D, V),
    ]


def test_horizon_after_a_wake_respects_max() -> None:
    snoozed = loop(stage=Stage.SNOOZED, snoozed_until=T0 + 3 * D, snoozed_from=V, nudges=1)
    assert [a.kind for a in plan_horizon(snoozed, RULES, T0 + 30 * D)] == [ActionKind.WAKE]


def test_horizon_foresees_still_relevant_then_the_pause() -> None:
    patient = Rules(
        rule_sets=(
            RuleSet(
                name="advice",
                kinds=(Kind.ADVICE,),
                stages={Stage.ASKED: StageRule(after=D, every=D, max=10)},
            ),
        )
    )
    assert [a.kind for a in plan_horizon(loop(), patient, T0 + 365 * D)] == [
        ActionKind.REMIND,
        ActionKind.REMIND,
        ActionKind.REMIND,
        ActionKind.STILL_RELEVANT,
    ]


def test_horizon_is_what_delivery_would_do() -> None:
    """Step the loop through the delivery transition by hand: the same actions, in order."""
    rules = load_rules(default_rules_dir())
    for start in (loop(), loop(stage=V), loop(stage=Stage.SNOOZED, snoozed_until=T0 + D)):
        delivered: list[PlannedAction] = []
        current = start
        while (action := plan_next(current, rules)) is not None and len(delivered) < 50:
            delivered.append(action)
            current = apply_due_action(current, action, action.due_at)
        assert plan_horizon(start, rules, T0 + 3650 * D) == delivered


def test_horizon_of_a_closed_loop_is_empty() -> None:
    assert plan_horizon(loop(stage=Stage.CLOSED), RULES, T0 + 365 * D) == []


def test_shipped_rules_follow_the_design() -> None:
    rules = load_rules(default_rules_dir())
    advised = loop(stage=V)
    acted = loop(stage=C)
    reported = loop(stage=R)
    assert plan_next(advised, rules) == remind(V, T0 + 2 * D, 1, "advice.advised")
    assert plan_next(acted, rules) == remind(C, T0 + 7 * D, 1, "advice.acted")
    assert plan_next(reported, rules) == remind(R, T0 + 30 * D, 1, "advice.reported")
    asked = [a.kind for a in plan_horizon(loop(), rules, T0 + 365 * D)]
    assert asked == [ActionKind.REMIND, ActionKind.REMIND, ActionKind.GIVE_UP]
