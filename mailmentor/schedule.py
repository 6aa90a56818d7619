"""What is due next for a loop: a pure function of the loop's timestamps and the rules.

There is no clock here. Due times derive from when the loop entered its stage and when it was
last reminded, so the same loop and rules always give the same answer (and the same
``PlannedAction.key``), which is what makes scheduling idempotent. The caller compares
``due_at`` with its own clock.
"""

from __future__ import annotations

from datetime import datetime

from mailmentor.model import ActionKind, Loop, PlannedAction, Stage
from mailmentor.rules.model import Rules, StageRule


def plan_next(loop: Loop, rules: Rules) -> PlannedAction | None:
    """The next reminder, give-up or wake-up due for ``loop``, or None if nothing is."""
    if not loop.stage.is_open:
        return None
    if loop.stage is Stage.SNOOZED:
        if loop.snoozed_until is None:
            return None
        return PlannedAction(
            kind=ActionKind.WAKE,
            due_at=loop.snoozed_until,
            stage=Stage.SNOOZED,
            sequence=1,
            rule="snooze",
        )
    rule_set = rules.for_loop(loop)
    rule = rule_set.stages.get(loop.stage) if rule_set else None
    if loop.first_reminder_at is not None and loop.nudges == 0:
        # The user set the first reminder in the address (mentor+3d@): it wins over the rules.
        name = rule_set.rule_name(loop.stage) if rule_set else f"{loop.kind}.{loop.stage}"
        return PlannedAction(
            kind=ActionKind.REMIND,
            due_at=loop.first_reminder_at,
            stage=loop.stage,
            sequence=1,
            rule=f"{name} (scheduled by address)",
        )
    if rule_set is None or rule is None:
        return None
    entered = loop.stage_entered_at
    sent = max(loop.nudges, 0)
    next_at: datetime | None = None
    if sent == 0:
        next_at = entered + rule.after
    elif rule.every is not None and sent < rule.max:
        # A loop that counts nudges but lost the time of the last one: assume they went on time.
        last = loop.last_reminder_at or entered + rule.after + (sent - 1) * rule.every
        next_at = last + rule.every
    name = rule_set.rule_name(loop.stage)
    give_up_at = give_up_time(loop, rule)
    if give_up_at is not None and (next_at is None or next_at >= give_up_at):
        return PlannedAction(
            kind=ActionKind.GIVE_UP,
            due_at=give_up_at,
            stage=loop.stage,
            sequence=sent + 1,
            rule=name,
        )
    if next_at is None:
        return None
    # Reminders the user let pass three times: ask once whether this still matters, then pause.
    kind = (
        ActionKind.STILL_RELEVANT if ignored_reminders(loop) >= IGNORED_LIMIT else ActionKind.REMIND
    )
    return PlannedAction(kind=kind, due_at=next_at, stage=loop.stage, sequence=sent + 1, rule=name)


def give_up_time(loop: Loop, rule: StageRule) -> datetime | None:
    """When ``rule`` lets the loop go if nothing happens in its stage (None: never)."""
    if rule.give_up_after is None:
        return None
    entered = loop.stage_entered_at
    give_up_at = entered + rule.give_up_after
    if loop.last_reminder_at is not None and _woke_since(loop, entered):
        # The user snoozed: the time asleep does not count against them.
        give_up_at = max(give_up_at, loop.last_reminder_at + (rule.every or rule.after))
    return give_up_at


#: After this many reminders in a row with no sign of the user, the loop asks "still relevant?".
IGNORED_LIMIT = 3


def ignored_reminders(loop: Loop) -> int:
    """Reminders sent since the user last did anything with this loop (a message or a command)."""
    return loop.ignored


def _woke_since(loop: Loop, entered: datetime) -> bool:
    return loop.woke_at is not None and loop.woke_at >= entered


def planned(loop: Loop, rules: Rules) -> Loop:
    """``loop`` with its next action as the rules have it now."""
    action = plan_next(loop, rules)
    return loop if action == loop.next_action else loop.model_copy(update={"next_action": action})
