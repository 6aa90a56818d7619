"""The domain model: loops (one advice exchange with one mentor) and their history of events.

Models are pydantic so that what is stored in Redis and printed by ``loops --json`` is the same
validated shape; they carry no behaviour beyond small derived properties.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


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

    at: datetime
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
    due_at: datetime
    stage: Stage  # the stage this action belongs to
    sequence: int = 1  # reminder number within the current stage visit (1-based)
    rule: str = ""  # "<rule set>.<stage>", for history and `plan`

    @property
    def key(self) -> str:
        """Identity of this action for idempotency: same loop + key = same reminder."""
        return f"{self.kind}:{self.stage}:{self.sequence}:{int(self.due_at.timestamp())}"


class Loop(BaseModel):
    """One advice exchange with one mentor, with its whole history."""

    id: str
    kind: Kind = Kind.ADVICE
    mentor: Person
    subject: str
    stage: Stage = Stage.ASKED
    created_at: datetime
    stage_entered_at: datetime
    #: Every Message-ID (without angle brackets) known to belong to the thread, root first.
    message_ids: list[str] = Field(default_factory=list)
    #: An explicit first reminder (e.g. from mentor+3d@): replaces `after` until the stage changes.
    first_reminder_at: datetime | None = None
    ask_excerpt: str = ""
    advice_excerpt: str = ""
    #: Reminders sent (or attempted) since the loop entered its current stage.
    nudges: int = 0
    last_reminder_at: datetime | None = None
    #: While snoozed: when to wake, and the stage to return to.
    snoozed_until: datetime | None = None
    snoozed_from: Stage | None = None
    next_action: PlannedAction | None = None
    events: list[Event] = Field(default_factory=list)

    @property
    def thread_root(self) -> str:
        return self.message_ids[0] if self.message_ids else ""

    @property
    def next_reminder_at(self) -> datetime | None:
        return self.next_action.due_at if self.next_action else None
