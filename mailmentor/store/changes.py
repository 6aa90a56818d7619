"""What one atomic change writes: loops, the people they concern, and the jobs it leaves.

Built by the service's writer from pure decisions and handed to `LoopStore.commit`, which turns it
into one Lua call: either all of it happens or none of it does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from mailmentor.model import Loop
from mailmentor.people import PersonRecord


@dataclass(frozen=True)
class LoopChange:
    """``before`` (as read, with its revision; None: a new loop) becomes ``after``.

    The events ``after`` carries beyond ``before``'s are appended to the history. Its texts are
    written when ``texts_loaded`` (the writer read them) and they changed, or for a new loop.
    ``index`` lists Message-IDs of the thread for later messages to find the loop by;
    ``applied`` names the message(s) this change applies, marked so that applying one again is
    recognised.
    """

    before: Loop | None
    after: Loop
    texts_loaded: bool = True
    index: tuple[str, ...] = ()
    applied: tuple[str, ...] = ()

    @property
    def loop_id(self) -> str:
        return self.after.id


@dataclass(frozen=True)
class PersonChange:
    before: PersonRecord | None
    after: PersonRecord


@dataclass(frozen=True)
class Job:
    """Mail to send later (a reply, the digest, a draft), kept until it is done."""

    key: str
    payload: str
    due: datetime
    #: The process that will send it right away (its claim): recovered if that process dies.
    owner: str = ""


@dataclass(frozen=True)
class Changeset:
    loops: tuple[LoopChange, ...] = ()
    people: tuple[PersonChange, ...] = ()
    jobs: tuple[Job, ...] = ()
    #: Jobs finished (sent or given up): removed with their claims and sending marks.
    jobs_done: tuple[str, ...] = ()
    #: Sending marks to clear (a reminder's send recorded).
    sends_done: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.loops or self.people or self.jobs or self.jobs_done or self.sends_done)


@dataclass(frozen=True)
class Conflict:
    """A change could not be applied because something it read has changed since."""

    what: str


@dataclass(frozen=True)
class Committed:
    pass


CommitResult = Committed | Conflict


@dataclass(frozen=True)
class Indexed:
    """What the Message-ID index knows of one message: loops of its thread, and the loops the
    message itself was already applied to."""

    loops: tuple[str, ...] = ()
    applied_to: tuple[str, ...] = field(default=())
