"""The stage machine: pure functions that turn a loop and what happened into the next loop.

Every change appends an Event (time, source, resulting stage), so a loop's history tells its
whole story. Every event passes through `with_event`, which also keeps the loop's summaries of
its history current (the store appends events; no decision reads them back).
Functions return new Loop objects and never touch storage or the clock.
"""

from __future__ import annotations

from datetime import datetime

from mailmentor.model import STAGE_ORDER, ActionKind, Event, EventType, Loop, PlannedAction, Stage


class TransitionError(ValueError):
    """A command asked for a move the loop cannot make (e.g. back to an earlier stage)."""


#: Events whose source is a message: the user (or the mentor) did something in the loop.
MESSAGE_SOURCE = "message <"


def is_from_message(event: Event) -> bool:
    return event.source.startswith(MESSAGE_SOURCE)


def summarize(loop: Loop, event: Event) -> dict[str, object]:
    """How one more event changes the loop's summaries of its history (see model.Loop)."""
    update: dict[str, object] = {}
    if is_from_message(event):
        update["ignored"] = 0
        if loop.last_contact_at is None or event.at > loop.last_contact_at:
            update["last_contact_at"] = event.at
    elif event.type is EventType.REMINDER_SENT:
        update["ignored"] = loop.ignored + 1
    if event.type is EventType.WOKE:
        update["woke_at"] = event.at
    if event.stage not in (Stage.DROPPED, Stage.SNOOZED):
        update["resume_stage"] = event.stage
    if event.stage in STAGE_ORDER and STAGE_ORDER.index(event.stage) > STAGE_ORDER.index(
        loop.furthest
    ):
        update["furthest"] = event.stage
    return update


def with_event(loop: Loop, event: Event, **changes: object) -> Loop:
    """``loop`` with ``changes`` applied and ``event`` appended: the one way events are added."""
    changed = loop.model_copy(update=changes) if changes else loop
    update = summarize(changed, event)
    update["events"] = [*loop.events, event]
    return changed.model_copy(update=update)


def replay(loop: Loop, events: list[Event]) -> Loop:
    """``loop`` with ``events`` appended one by one (summaries recomputed): an old history."""
    for event in events:
        loop = with_event(loop, event)
    return loop


def record(loop: Loop, type_: EventType, at: datetime, source: str, detail: str = "") -> Loop:
    """Append an event without changing the stage."""
    event = Event(at=at, type=type_, source=source, stage=loop.stage, detail=detail)
    return with_event(loop, event)


def move(
    loop: Loop, to: Stage, type_: EventType, at: datetime, source: str, detail: str = ""
) -> Loop:
    """Enter a new stage: nudge counters start again, snooze state is cleared."""
    event = Event(at=at, type=type_, source=source, stage=to, detail=detail)
    return with_event(
        loop,
        event,
        stage=to,
        stage_entered_at=at,
        nudges=0,
        last_reminder_at=None,
        first_reminder_at=None,
        snoozed_until=None,
        snoozed_from=None if to is not Stage.SNOOZED else loop.snoozed_from,
    )


def working_stage(loop: Loop) -> Stage:
    """The stage that counts for progress: a snoozed loop still stands where it was snoozed."""
    if loop.stage is Stage.SNOOZED and loop.snoozed_from is not None:
        return loop.snoozed_from
    return loop.stage


def advance(
    loop: Loop, to: Stage, type_: EventType, at: datetime, source: str, detail: str = ""
) -> Loop:
    """Move forward to `to`; moving backwards or out of an ended loop is refused."""
    current = working_stage(loop)
    if not loop.stage.is_open:
        raise TransitionError(f"loop {loop.id} is {loop.stage}; reply 'reopen' first")
    if to not in STAGE_ORDER or current not in STAGE_ORDER:
        # snoozed/dropped are entered by snooze()/drop(), never by moving "forward"
        raise TransitionError(f"loop {loop.id} cannot advance from {current} to {to}")
    if STAGE_ORDER.index(to) <= STAGE_ORDER.index(current):
        raise TransitionError(f"loop {loop.id} is already {current}")
    return move(loop, to, type_, at, source, detail)


def snooze(loop: Loop, until: datetime, at: datetime, source: str) -> Loop:
    if not loop.stage.is_open:
        raise TransitionError(f"loop {loop.id} is {loop.stage}; nothing to snooze")
    return _put_to_sleep(loop, until, at, source, f"until {until.isoformat()}")


def _put_to_sleep(
    loop: Loop, until: datetime | None, at: datetime, source: str, detail: str
) -> Loop:
    """Snoozed until `until` (None: until the user answers), remembering the stage to return to."""
    event = Event(at=at, type=EventType.SNOOZED, source=source, stage=Stage.SNOOZED, detail=detail)
    return with_event(
        loop, event, stage=Stage.SNOOZED, snoozed_until=until, snoozed_from=working_stage(loop)
    )


def wake(loop: Loop, at: datetime, source: str = "snooze ended") -> Loop:
    """Return a snoozed loop to its stage; the wake-up is delivered as that stage's reminder."""
    if loop.stage is not Stage.SNOOZED:
        return loop
    back = loop.snoozed_from or loop.resume_stage
    event = Event(at=at, type=EventType.WOKE, source=source, stage=back)
    return with_event(loop, event, stage=back, snoozed_until=None, snoozed_from=None)


def drop(loop: Loop, type_: EventType, at: datetime, source: str, detail: str = "") -> Loop:
    if not loop.stage.is_open:
        return loop
    return move(loop, Stage.DROPPED, type_, at, source, detail)


def reopen(loop: Loop, at: datetime, source: str) -> Loop:
    """Bring a dropped (or paused) loop back to the stage it was in."""
    if loop.stage is Stage.SNOOZED and loop.snoozed_until is None and loop.snoozed_from:
        resumed = wake(loop, at, source)
        return resumed.model_copy(
            update={"nudges": 0, "last_reminder_at": None, "stage_entered_at": at}
        )
    if loop.stage is not Stage.DROPPED:
        raise TransitionError(f"loop {loop.id} is {loop.stage}, not dropped")
    return move(loop, loop.resume_stage, EventType.COMMAND, at, source, "reopened")


def give_back(loop: Loop, at: datetime, source: str, note: str = "") -> Loop:
    """Giving back completes the loop's cycle: gave_back, then closed."""
    current = working_stage(loop)
    if not loop.stage.is_open:
        raise TransitionError(f"loop {loop.id} is {loop.stage}")
    if current is not Stage.GAVE_BACK:
        loop = move(loop, Stage.GAVE_BACK, EventType.COMMAND, at, source, note)
    return move(loop, Stage.CLOSED, EventType.COMMAND, at, source, "cycle complete")


def record_reminder(loop: Loop, action: PlannedAction, at: datetime, error: str = "") -> Loop:
    """Count a nudge (sent, or failed for good) so the cadence moves on either way."""
    type_ = EventType.REMINDER_FAILED if error else EventType.REMINDER_SENT
    source = f"rule {action.rule} #{action.sequence}"
    loop = record(loop, type_, at, source, error)
    return loop.model_copy(update={"nudges": loop.nudges + 1, "last_reminder_at": at})


def apply_due_action(loop: Loop, action: PlannedAction, at: datetime, error: str = "") -> Loop:
    """What a delivered (or permanently failed) scheduled action does to the loop."""
    if action.kind is ActionKind.GIVE_UP:
        detail = "no progress within give_up_after" + (f"; notice failed: {error}" if error else "")
        return drop(loop, EventType.GAVE_UP, at, f"rule {action.rule}", detail)
    if action.kind is ActionKind.WAKE:
        loop = wake(loop, at)
    loop = record_reminder(loop, action, at, error)
    if action.kind is ActionKind.STILL_RELEVANT:
        return pause(loop, at, f"rule {action.rule}")
    return loop


def pause(loop: Loop, at: datetime, source: str) -> Loop:
    """Snoozed with no wake-up time: nothing more is sent until the user answers."""
    return _put_to_sleep(loop, None, at, source, "paused: still relevant? (reply reopen to resume)")
