"""What a due loop needs now, and what the scheduler will therefore send over the next days.

`decide_due` is the scheduler's own decision for one claimed loop (quiet hours, business days,
re-planning after a rule edit). `forecast` runs that same decision, the same weekly budget and
the same transition the sender records (`stages.apply_due_action`) over simulated time, so
``mailmentor plan`` says what will really be sent, and when, if the user does nothing. Pure:
the loops, their due times and the week's count come in; nothing is read or written here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo

from mailmentor.delivery import next_allowed, week_start, within_budget
from mailmentor.model import ActionKind, Loop, PlannedAction
from mailmentor.rules import Rules
from mailmentor.schedule import planned
from mailmentor.stages import apply_due_action


@dataclass(frozen=True)
class Send:
    loop: Loop
    action: PlannedAction


@dataclass(frozen=True)
class Defer:
    """Not now: quiet hours, a weekend, or the week's budget; due again at ``until``."""

    loop: Loop
    until: datetime


@dataclass(frozen=True)
class Replan:
    """The rules changed since the loop was planned: its next action moves."""

    loop: Loop
    planned: Loop


@dataclass(frozen=True)
class Unschedule:
    loop_id: str
    loop: Loop | None


DueDecision = Send | Defer | Replan | Unschedule


def decide_due(
    loop_id: str, loop: Loop | None, rules: Rules, now: datetime, tz: ZoneInfo
) -> DueDecision:
    """What a claimed loop needs now."""
    if loop is None or not loop.stage.is_open:
        return Unschedule(loop_id, loop)
    fresh = planned(loop, rules)
    if fresh.next_action != loop.next_action:
        return Replan(loop, fresh)
    action = loop.next_action
    if action is None:
        return Unschedule(loop_id, loop)
    allowed = next_allowed(
        max(action.due_at, now),
        tz=tz,
        quiet_hours=rules.quiet_hours,
        business_days_only=rules.business_days_only,
    )
    if allowed > now:
        return Defer(loop, allowed)
    return Send(loop, action)


def budget_item(send: Send) -> str:
    """How the weekly budget names a reminder: each loop's action counts once."""
    return f"{send.loop.id} {send.action.key}"


def counts_against_budget(action: PlannedAction) -> bool:
    """Only reminders spend the weekly budget; give-ups, wake-ups and "still relevant?" don't."""
    return action.kind is ActionKind.REMIND


def next_week(week: datetime, tz: tzinfo) -> datetime:
    """When the budget of the week after ``week`` opens: the next Monday 00:00 local, which is
    not always 7 × 24 h later (a week with a DST change in it is an hour longer or shorter;
    7 × 24 h after a Monday would then be Sunday 23:00, still in the spent week)."""
    return week_start(week + timedelta(days=7, hours=12), tz)


def rank_for_budget(sends: Iterable[Send]) -> list[Send]:
    """The reminders among ``sends``, most urgent first (the order the budget admits them)."""
    by_id = {s.loop.id: s for s in sends if counts_against_budget(s.action)}
    ranked, _ = within_budget(
        [(s.loop.id, s.action.due_at, s.loop.nudges) for s in by_id.values()], 0, None
    )
    return [by_id[i] for i in ranked]


@dataclass(frozen=True)
class Expected:
    """One mail (or give-up) the scheduler will send: at ``at``, for ``loop`` as it stands."""

    at: datetime
    loop: Loop
    action: PlannedAction
    #: Why it goes later than due: "" (on time), "quiet hours" (or weekend), "weekly budget".
    held_by: str = ""

    @property
    def is_give_up(self) -> bool:
        return self.action.kind is ActionKind.GIVE_UP


#: A forecast never simulates more scheduler passes than this, whatever the loops and rules.
MAX_PASSES = 20_000


def forecast(
    loops: Iterable[Loop],
    rules: Rules,
    tz: ZoneInfo,
    now: datetime,
    until: datetime,
    *,
    due: Mapping[str, datetime] | None = None,
    counted_this_week: int = 0,
) -> list[Expected]:
    """Everything the scheduler will send from ``now`` to ``until`` if the user does nothing,
    in time order. ``due``: when each loop is due in the store (a deferred loop is due later
    than its action); ``counted_this_week``: reminders the budget counted already this week."""
    current: dict[str, Loop] = {}
    when: dict[str, datetime] = {}
    held: dict[str, str] = {}
    for loop in loops:
        fresh = planned(loop, rules)  # re-planned first, as the scheduler's reconcile does
        if fresh.stage.is_open and fresh.next_action is not None:
            current[loop.id] = fresh
            stored = (due or {}).get(loop.id) if fresh is loop else None
            when[loop.id] = stored or fresh.next_action.due_at
    counted: dict[datetime, set[str]] = {}
    spent = {week_start(now, tz): counted_this_week}
    expected: list[Expected] = []
    at = now
    for _ in range(MAX_PASSES):
        if not when:
            break
        # Never back in time: an action due before the last pass (a give-up that fell due
        # while a late reminder waited) goes at the next pass, as the scheduler claims it.
        at = max(min(when.values()), at)
        if at > until:
            break
        claimed = sorted(i for i, t in when.items() if t <= at)
        decisions = [decide_due(i, current.get(i), rules, at, tz) for i in claimed]
        week = week_start(at, tz)
        admitted = _admit(
            rank_for_budget(d for d in decisions if isinstance(d, Send)),
            counted.setdefault(week, set()),
            spent.get(week, 0),
            rules.reminder_budget,
        )
        for decision in decisions:
            if isinstance(decision, Send):
                loop = decision.loop
                if counts_against_budget(decision.action) and loop.id not in admitted:
                    when[loop.id] = next_week(week, tz)
                    held[loop.id] = "weekly budget"
                    continue
                expected.append(Expected(at, loop, decision.action, held.pop(loop.id, "")))
                _moved(current, when, planned(apply_due_action(loop, decision.action, at), rules))
            elif isinstance(decision, Defer):
                when[decision.loop.id] = decision.until
                held.setdefault(decision.loop.id, "quiet hours")
            elif isinstance(decision, Replan):
                _moved(current, when, decision.planned)
            else:
                _forget(current, when, decision.loop_id)
    return expected


def _admit(ranked: list[Send], counted: set[str], spent: int, budget: int | None) -> set[str]:
    """The store's ``weekly.admit``: counted already, or new while the week has room."""
    admitted: set[str] = set()
    for send in ranked:
        item = budget_item(send)
        if item not in counted and (budget is None or spent + len(counted) < budget):
            counted.add(item)
        if item in counted:
            admitted.add(send.loop.id)
    return admitted


def _moved(current: dict[str, Loop], when: dict[str, datetime], loop: Loop) -> None:
    if loop.stage.is_open and loop.next_action is not None:
        current[loop.id] = loop
        when[loop.id] = loop.next_action.due_at
    else:
        _forget(current, when, loop.id)


def _forget(current: dict[str, Loop], when: dict[str, datetime], loop_id: str) -> None:
    current.pop(loop_id, None)
    when.pop(loop_id, None)
