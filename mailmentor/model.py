"""The domain model: loops (one advice exchange with one mentor) and their history of events.

Models are pydantic so that what is stored in Redis and printed by ``loops --json`` is the same
validated shape; they carry no behaviour beyond small derived properties.

A loop's history is kept apart from the loop (the store appends to it, never rewrites it), so a
Loop carries summaries of its history that the pure code needs (``ignored``, ``resume_stage``,
``furthest`` …), kept current by `stages.record`, the one place every event passes through.
Times are whole seconds: what is in memory is exactly what the store gives back.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field


def _whole_seconds(value: datetime) -> datetime:
    return value.replace(microsecond=0) if value.microsecond else value


def _whole_seconds_or_none(value: datetime | None) -> datetime | None:
    return None if value is None else _whole_seconds(value)


#: A point in time as the store keeps it: whole seconds.
Instant = Annotated[datetime, AfterValidator(_whole_seconds)]
OptionalInstant = Annotated[datetime | None, AfterValidator(_whole_seconds_or_none)]


class Stage(StrEnum):
    """Where a loop stands. The happy path runs asked → … → closed."""

    ASKED = "asked"
    ADVISED = "advised"
    ACTED = "acted"
    REPORTED = "reported"
    GAVE_BACK = "gave_back"
    CLOSED = "closed"
    SNOOZED = "snoozed"
    DROPPED = "dropped"

    @property
    def is_open(self) -> bool:
        return self not in (Stage.CLOSED, Stage.DROPPED)


#: The forward order of the working stages; snoozed and dropped sit outside it.
STAGE_ORDER: tuple[Stage, ...] = (
    Stage.ASKED,
    Stage.ADVISED,
    Stage.ACTED,
    Stage.REPORTED,
    Stage.GAVE_BACK,
    Stage.CLOSED,
)


class Kind(StrEnum):
    """The kind of loop; it picks the rule set."""

    ADVICE = "advice"
    INTRO = "intro"
    MENTEE = "mentee"
    GIVE = "give"
    LEARN = "learn"


class Person(BaseModel):
    """A mail address with its display name; the address is stored lower-cased."""

    model_config = ConfigDict(frozen=True)

    address: str
    name: str = ""

    def __str__(self) -> str:
        return f"{self.name} <{self.address}>" if self.name else self.address

    @property
    def short_name(self) -> str:
        """What a reminder calls the mentor: first name if known, else the address."""
        return self.name.split()[0] if self.name.strip() else self.address


class EventType(StrEnum):
    """What happened to a loop."""

    CREATED = "created"
    MESSAGE = "message"  # a later message of the thread joined the loop
    ADVICE = "advice"  # the mentor's answer arrived (forwarded)
    COMMAND = "command"  # the user replied to a reminder with a command
    REMINDER_SENT = "reminder_sent"
    REMINDER_FAILED = "reminder_failed"
    SNOOZED = "snoozed"
    WOKE = "woke"
    GAVE_UP = "gave_up"
    NOTE = "note"


class Event(BaseModel):
    """One entry in a loop's history: when, what, why (source) and the stage after it."""

    at: Instant
    type: EventType
    source: str  # "message <id>", "command acted", "rule advice.advised #1", ...
    stage: Stage  # the loop's stage after this event
    detail: str = ""


class ActionKind(StrEnum):
    """What the scheduler will do for a loop when its time comes."""

    REMIND = "remind"
    GIVE_UP = "give_up"
    WAKE = "wake"
    STILL_RELEVANT = "still_relevant"  # reminders were ignored: ask once, then pause


class PlannedAction(BaseModel):
    """The next thing due for a loop, computed from its history and the rules (pure)."""

    model_config = ConfigDict(frozen=True)

    kind: ActionKind
    due_at: Instant
    stage: Stage  # the stage this action belongs to
    sequence: int = 1  # reminder number within the current stage visit (1-based)
    rule: str = ""  # "<rule set>.<stage>", for history and `plan`

    @property
    def key(self) -> str:
        """Identity of this action for idempotency: same loop + key = same reminder."""
        return f"{self.kind}:{self.stage}:{self.sequence}:{int(self.due_at.timestamp())}"


#: A loop keeps the thread's root and its latest Message-IDs, enough to thread a reminder.
MAX_THREAD_IDS = 20


class Loop(BaseModel):
    """One advice exchange with one mentor: its state, summaries of its history, and the
    events of this change that the store has not appended yet."""

    id: str
    kind: Kind = Kind.ADVICE
    mentor: Person
    subject: str
    stage: Stage = Stage.ASKED
    created_at: Instant
    stage_entered_at: Instant
    #: The thread's Message-IDs (without angle brackets), root first, then the latest ones.
    message_ids: list[str] = Field(default_factory=list)
    #: An explicit first reminder (e.g. from mentor+3d@): replaces `after` until the stage changes.
    first_reminder_at: OptionalInstant = None
    ask_excerpt: str = ""
    advice_excerpt: str = ""
    #: Reminders sent (or attempted) since the loop entered its current stage.
    nudges: int = 0
    last_reminder_at: OptionalInstant = None
    #: While snoozed: when to wake, and the stage to return to.
    snoozed_until: OptionalInstant = None
    snoozed_from: Stage | None = None
    next_action: PlannedAction | None = None

    # Summaries of the history, so that no decision ever needs to read it:
    #: Reminders sent since the user last wrote (a message or a command) in this loop.
    ignored: int = 0
    #: When the loop last woke from a snooze.
    woke_at: OptionalInstant = None
    #: The last working stage the history stood in, before any snooze or drop (reopen, wake).
    resume_stage: Stage = Stage.ASKED
    #: The furthest working stage the loop ever reached (the digest's relationship counts).
    furthest: Stage = Stage.ASKED
    #: The last message (the user's or the mentor's) that changed this loop.
    last_contact_at: OptionalInstant = None

    #: Events of this change, not yet in the stored history (a loop read from the store has
    #: none, or its whole history when asked for it).
    events: list[Event] = Field(default_factory=list)
    #: The store's revision of this loop (0: never stored); a write expects it unchanged.
    rev: int = 0

    @property
    def thread_root(self) -> str:
        return self.message_ids[0] if self.message_ids else ""

    @property
    def next_reminder_at(self) -> datetime | None:
        return self.next_action.due_at if self.next_action else None
