"""The stage machine: every transition as (loop, move) → (stage, event), no storage, no clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from mailmentor import stages
from mailmentor.model import (
    STAGE_ORDER,
    ActionKind,
    Event,
    EventType,
    Loop,
    Person,
    PlannedAction,
    Stage,
)
from mailmentor.rules import Rules, RuleSet, StageRule
from mailmentor.schedule import plan_next

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
T1 = T0 + timedelta(days=2)
D = timedelta(days=1)
A, V, C, R, G, X = (
    Stage.ASKED,
    Stage.ADVISED,
    Stage.ACTED,
    Stage.REPORTED,
    Stage.GAVE_BACK,
    Stage.CLOSED,
)
WORKING = (A, V, C, R, G)


def make_loop(**changes: Any) -> Loop:
    base: dict[str, Any] = {
        "id": "loop1",
        "mentor": Person(address="alan@example.org", name="Alan Kay"),
        "subject": "Pricing?",
        "created_at": T0,
        "stage_entered_at": T0,
    }
    return Loop(**(base | changes))


def last(loop: Loop) -> Event:
    return loop.events[-1]


def remind(
    stage: Stage = V, sequence: int = 1, kind: ActionKind = ActionKind.REMIND
) -> PlannedAction:
    return PlannedAction(
        kind=kind, due_at=T1, stage=stage, sequence=sequence, rule=f"advice.{stage}"
    )


# --- advance --------------------------------------------------------------------------------------

FORWARD = [(a, b) for i, a in enumerate(WORKING) for b in STAGE_ORDER[i + 1 :]]
BACKWARD_OR_SAME = [(a, b) for i, a in enumerate(WORKING) for b in STAGE_ORDER[: i + 1]]


@pytest.mark.parametrize(("start", "to"), FORWARD)
def test_advance_forward_enters_the_stage_and_logs_it(start: Stage, to: Stage) -> None:
    loop = make_loop(stage=start, nudges=2, last_reminder_at=T0 + D)
    moved = stages.advance(loop, to, EventType.COMMAND, T1, "message <m1>", "command x")
    assert (moved.stage, moved.stage_entered_at, moved.nudges, moved.last_reminder_at) == (
        to,
        T1,
        0,
        None,
    )
    assert last(moved) == Event(
        at=T1, type=EventType.COMMAND, source="message <m1>", stage=to, detail="command x"
    )
    assert loop.stage is start and loop.events == []  # the input is never mutated


@pytest.mark.parametrize(("start", "to"), BACKWARD_OR_SAME)
def test_advance_backwards_or_in_place_is_refused(start: Stage, to: Stage) -> None:
    with pytest.raises(stages.TransitionError, match=f"already {start}"):
        stages.advance(make_loop(stage=start), to, EventType.COMMAND, T1, "s")


@pytest.mark.parametrize("ended", [X, Stage.DROPPED])
@pytest.mark.parametrize("to", [V, C, R, G, X])
def test_advance_out_of_an_ended_loop_is_refused(ended: Stage, to: Stage) -> None:
    with pytest.raises(stages.TransitionError, match="reopen"):
        stages.advance(make_loop(stage=ended), to, EventType.COMMAND, T1, "s")


@pytest.mark.parametrize("to", [Stage.SNOOZED, Stage.DROPPED])
def test_advance_to_a_stage_outside_the_order_is_a_transition_error(to: Stage) -> None:
    with pytest.raises(stages.TransitionError):
        stages.advance(make_loop(stage=V), to, EventType.COMMAND, T1, "s")


def test_advance_of_a_snoozed_loop_without_its_stage_is_a_transition_error() -> None:
    with pytest.raises(stages.TransitionError, match="cannot advance from snoozed"):
        stages.advance(make_loop(stage=Stage.SNOOZED), C, EventType.COMMAND, T1, "s")


def test_advance_from_snoozed_counts_from_the_snoozed_stage_and_clears_the_snooze() -> None:
    snoozed = stages.snooze(make_loop(stage=V), T0 + 9 * D, T1, "message <s>")
    with pytest.raises(stages.TransitionError, match="already advised"):
        stages.advance(snoozed, V, EventType.COMMAND, T1, "s")
    acted = stages.advance(snoozed, C, EventType.COMMAND, T1, "s")
    assert (acted.stage, acted.snoozed_until, acted.snoozed_from) == (C, None, None)


def test_record_keeps_the_stage_and_appends() -> None:
    loop = stages.record(make_loop(stage=C), EventType.NOTE, T1, "message <n>", "called him")
    assert loop.stage is C and loop.stage_entered_at == T0
    assert loop.events == [
        Event(at=T1, type=EventType.NOTE, source="message <n>", stage=C, detail="called him")
    ]


def test_working_stage() -> None:
    assert stages.working_stage(make_loop(stage=R)) is R
    assert stages.working_stage(make_loop(stage=Stage.SNOOZED, snoozed_from=C)) is C
    assert stages.working_stage(make_loop(stage=Stage.SNOOZED)) is Stage.SNOOZED


# --- snooze and wake -----------------------------------------------------------------------------


@pytest.mark.parametrize("start", WORKING)
def test_snooze_keeps_where_it_was_and_wake_returns_there(start: Stage) -> None:
    until = T1 + 3 * D
    loop = make_loop(stage=start, nudges=1, last_reminder_at=T0 + D)
    snoozed = stages.snooze(loop, until, T1, "message <s>")
    assert (snoozed.stage, snoozed.snoozed_from, snoozed.snoozed_until) == (
        Stage.SNOOZED,
        start,
        until,
    )
    assert last(snoozed) == Event(
        at=T1,
        type=EventType.SNOOZED,
        source="message <s>",
        stage=Stage.SNOOZED,
        detail=f"until {until.isoformat()}",
    )
    woken = stages.wake(snoozed, until)
    assert (woken.stage, woken.snoozed_from, woken.snoozed_until) == (start, None, None)
    assert last(woken) == Event(at=until, type=EventType.WOKE, source="snooze ended", stage=start)


def test_snoozing_again_keeps_the_original_stage() -> None:
    once = stages.snooze(make_loop(stage=C), T1, T0, "a")
    twice = stages.snooze(once, T1 + 5 * D, T0 + D, "b")
    assert (twice.snoozed_from, twice.snoozed_until) == (C, T1 + 5 * D)
    assert stages.wake(twice, T1 + 5 * D).stage is C


@pytest.mark.parametrize("ended", [X, Stage.DROPPED])
def test_snooze_of_an_ended_loop_is_refused(ended: Stage) -> None:
    with pytest.raises(stages.TransitionError, match="nothing to snooze"):
        stages.snooze(make_loop(stage=ended), T1, T0, "s")


@pytest.mark.parametrize(
    "loop", [make_loop(stage=V), make_loop(stage=Stage.DROPPED)], ids=["not snoozed", "dropped"]
)
def test_wake_leaves_other_loops_alone(loop: Loop) -> None:
    assert stages.wake(loop, T1) == loop


def test_a_snoozed_loop_that_forgot_its_stage_wakes_where_its_history_stood() -> None:
    # Hand-edited or older data: waking must still end the snooze, or it would wake forever.
    assert stages.wake(make_loop(stage=Stage.SNOOZED), T1).stage is Stage.ASKED
    acted = stages.advance(make_loop(stage=V), C, EventType.COMMAND, T0, "c")
    lost = acted.model_copy(update={"stage": Stage.SNOOZED, "snoozed_from": None})
    assert stages.wake(lost, T1).stage is C


# --- drop, reopen, give back ---------------------------------------------------------------------


@pytest.mark.parametrize("start", [*WORKING, Stage.SNOOZED])
def test_drop_ends_an_open_loop(start: Stage) -> None:
    loop = make_loop(stage=start, snoozed_from=C if start is Stage.SNOOZED else None)
    dropped = stages.drop(loop, EventType.COMMAND, T1, "message <x>", "stopped by the user")
    assert (dropped.stage, dropped.stage_entered_at, dropped.snoozed_from) == (
        Stage.DROPPED,
        T1,
        None,
    )
    assert last(dropped) == Event(
        at=T1,
        type=EventType.COMMAND,
        source="message <x>",
        stage=Stage.DROPPED,
        detail="stopped by the user",
    )


@pytest.mark.parametrize("ended", [X, Stage.DROPPED])
def test_drop_of_an_ended_loop_changes_nothing(ended: Stage) -> None:
    loop = make_loop(stage=ended)
    assert stages.drop(loop, EventType.COMMAND, T1, "s") == loop


def _history(*moves: tuple[str, Stage]) -> Loop:
    """A loop walked through (move, stage) steps with the real functions."""
    loop = stages.record(make_loop(), EventType.CREATED, T0, "message <ask>")
    for what, to in moves:
        if what == "advance":
            loop = stages.advance(loop, to, EventType.COMMAND, T0, "s")
        elif what == "snooze":
            loop = stages.snooze(loop, T1, T0, "s")
        else:
            loop = stages.drop(loop, EventType.COMMAND, T0, "s")
    return loop


@pytest.mark.parametrize(
    ("moves", "expected"),
    [
        ((("drop", Stage.DROPPED),), A),
        ((("advance", V), ("drop", Stage.DROPPED)), V),
        ((("advance", V), ("advance", C), ("drop", Stage.DROPPED)), C),
        ((("advance", R), ("snooze", Stage.SNOOZED), ("drop", Stage.DROPPED)), R),
    ],
    ids=["asked", "advised", "acted", "snoozed in reported"],
)
def test_reopen_returns_to_the_stage_before_the_drop(
    moves: tuple[tuple[str, Stage], ...], expected: Stage
) -> None:
    dropped = _history(*moves)
    assert dropped.stage is Stage.DROPPED
    reopened = stages.reopen(dropped, T1, "message <r>")
    assert (reopened.stage, reopened.stage_entered_at) == (expected, T1)
    assert last(reopened) == Event(
        at=T1, type=EventType.COMMAND, source="message <r>", stage=expected, detail="reopened"
    )


def test_reopen_without_history_falls_back_to_asked() -> None:
    assert stages.reopen(make_loop(stage=Stage.DROPPED), T1, "s").stage is A


@pytest.mark.parametrize("stage", [*WORKING, X, Stage.SNOOZED])
def test_reopen_of_a_loop_that_is_not_dropped_is_refused(stage: Stage) -> None:
    with pytest.raises(stages.TransitionError, match="not dropped"):
        stages.reopen(make_loop(stage=stage), T1, "s")


@pytest.mark.parametrize("start", [A, V, C, R])
def test_give_back_goes_through_gave_back_to_closed(start: Stage) -> None:
    closed = stages.give_back(make_loop(stage=start), T1, "message <g>", "sent him a book")
    assert closed.stage is X
    assert [(e.type, e.stage, e.detail) for e in closed.events] == [
        (EventType.COMMAND, G, "sent him a book"),
        (EventType.COMMAND, X, "cycle complete"),
    ]
    assert all(e.at == T1 and e.source == "message <g>" for e in closed.events)


@pytest.mark.parametrize(
    "loop",
    [make_loop(stage=G), make_loop(stage=Stage.SNOOZED, snoozed_from=G)],
    ids=["gave_back", "snoozed in gave_back"],
)
def test_give_back_from_gave_back_only_closes(loop: Loop) -> None:
    closed = stages.give_back(loop, T1, "s", "more thanks")
    assert closed.stage is X
    assert [(e.stage, e.detail) for e in closed.events] == [(X, "cycle complete")]


def test_give_back_from_a_snoozed_loop_ends_the_snooze() -> None:
    snoozed = stages.snooze(make_loop(stage=R), T1 + 9 * D, T0, "s")
    closed = stages.give_back(snoozed, T1, "s")
    assert (closed.stage, closed.snoozed_from, closed.snoozed_until) == (X, None, None)


@pytest.mark.parametrize("ended", [X, Stage.DROPPED])
def test_give_back_of_an_ended_loop_is_refused(ended: Stage) -> None:
    with pytest.raises(stages.TransitionError):
        stages.give_back(make_loop(stage=ended), T1, "s")


# --- reminders and due actions -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "event_type"), [("", EventType.REMINDER_SENT), ("550 no", EventType.REMINDER_FAILED)]
)
def test_record_reminder_counts_every_nudge(error: str, event_type: EventType) -> None:
    loop = make_loop(stage=V, nudges=1)
    after = stages.record_reminder(loop, remind(V, 2), T1, error)
    assert (after.stage, after.nudges, after.last_reminder_at) == (V, 2, T1)
    assert last(after) == Event(
        at=T1, type=event_type, source="rule advice.advised #2", stage=V, detail=error
    )


def test_apply_due_remind_is_a_counted_nudge() -> None:
    after = stages.apply_due_action(make_loop(stage=C), remind(C), T1)
    assert (after.stage, after.nudges, after.last_reminder_at) == (C, 1, T1)
    assert last(after).type is EventType.REMINDER_SENT


@pytest.mark.parametrize(
    ("error", "detail"),
    [
        ("", "no progress within give_up_after"),
        ("550 gone", "no progress within give_up_after; notice failed: 550 gone"),
    ],
)
def test_apply_due_give_up_drops_the_loop(error: str, detail: str) -> None:
    action = remind(A, 3, ActionKind.GIVE_UP)
    after = stages.apply_due_action(make_loop(stage=A, nudges=2), action, T1, error)
    assert (after.stage, after.stage_entered_at, after.nudges) == (Stage.DROPPED, T1, 0)
    assert last(after) == Event(
        at=T1,
        type=EventType.GAVE_UP,
        source="rule advice.asked",
        stage=Stage.DROPPED,
        detail=detail,
    )
    assert stages.reopen(after, T1 + D, "s").stage is A


def test_apply_due_wake_returns_to_the_stage_and_counts_the_nudge() -> None:
    snoozed = stages.snooze(make_loop(stage=V), T1, T0, "message <s>")
    wake = PlannedAction(kind=ActionKind.WAKE, due_at=T1, stage=Stage.SNOOZED, rule="snooze")
    after = stages.apply_due_action(snoozed, wake, T1)
    assert (after.stage, after.snoozed_from, after.snoozed_until) == (V, None, None)
    assert (after.nudges, after.last_reminder_at) == (1, T1)
    assert [(e.type, e.stage, e.source) for e in after.events[-2:]] == [
        (EventType.WOKE, V, "snooze ended"),
        (EventType.REMINDER_SENT, V, "rule snooze #1"),
    ]


def test_a_long_snooze_is_not_followed_by_an_immediate_give_up() -> None:
    rules = Rules(
        rule_sets=(
            RuleSet(
                name="advice",
                kinds=(make_loop().kind,),
                stages={A: StageRule(after=7 * D, every=7 * D, max=2, give_up_after=21 * D)},
            ),
        )
    )
    wake_at = T0 + 30 * D
    snoozed = stages.snooze(make_loop(), wake_at, T0 + D, "message <s>")
    wake = PlannedAction(kind=ActionKind.WAKE, due_at=wake_at, stage=Stage.SNOOZED, rule="snooze")
    woken = stages.apply_due_action(snoozed, wake, wake_at)
    following = plan_next(woken, rules)
    assert following is not None
    assert following.due_at > wake_at
