"""What handling a message, a due loop or a send came to, as typed values.

The watcher, ``import`` and the CLI look at these values (``isinstance``), never at prose; the log
line is rendered from them (``str``). Notices are what listeners (the demo, tests) hear about.
"""

from __future__ import annotations

from dataclasses import dataclass

from mailmentor.model import Kind, Loop, Stage

# -- what a message did ------------------------------------------------------------------------


@dataclass(frozen=True)
class Created:
    """A new loop: the user asked (``asked``) or forwarded a mentor's answer (``advised``)."""

    loop_id: str
    kind: Kind
    mentor: str
    stage: Stage

    def __str__(self) -> str:
        if self.stage is Stage.ADVISED:
            return f"new loop {self.loop_id} advised by {self.mentor}"
        return f"new {self.kind} loop {self.loop_id} with {self.mentor}"


@dataclass(frozen=True)
class Joined:
    """A later message of the thread joined its loop (the user wrote to the mentor)."""

    loop_id: str
    stage: Stage
    how: str = ""
    follow_up: bool = False  # mailbox mode: found in Sent

    def __str__(self) -> str:
        if self.follow_up:
            return f"follow-up in loop {self.loop_id} ({self.stage})"
        return f"joined loop {self.loop_id} ({self.stage}) {self.how}".rstrip()


@dataclass(frozen=True)
class Advised:
    """The mentor's answer arrived (forwarded, or read from the mailbox)."""

    loop_id: str
    stage: Stage
    direct: bool = False  # mailbox mode: the mentor's own message

    def __str__(self) -> str:
        if self.direct:
            return f"mentor's reply for loop {self.loop_id} ({self.stage})"
        return f"advice for loop {self.loop_id} ({self.stage})"


@dataclass(frozen=True)
class CommandApplied:
    loop_id: str
    command: str
    stage: Stage

    def __str__(self) -> str:
        return f"command {self.command}: loop {self.loop_id} is {self.stage}"


@dataclass(frozen=True)
class CommandRefused:
    loop_id: str
    command: str
    reason: str

    def __str__(self) -> str:
        return f"command {self.command} not applied: {self.reason}"


@dataclass(frozen=True)
class Answered:
    """A short reply went out (help, or a command that was not understood)."""

    loop_id: str
    unknown: str = ""  # the text not understood; "" for help

    def __str__(self) -> str:
        return f"answered unknown command {self.unknown!r}" if self.unknown else "answered help"


@dataclass(frozen=True)
class Gave:
    """Value given to these people, kept on the relationship (mentor+gave@)."""

    addresses: tuple[str, ...]

    def __str__(self) -> str:
        return "gave to " + ", ".join(self.addresses)


@dataclass(frozen=True)
class Skipped:
    """One part of the message was not usable (a forward with no sender, …); the rest was."""

    reason: str

    def __str__(self) -> str:
        return self.reason


Effect = Created | Joined | Advised | CommandApplied | CommandRefused | Answered | Gave | Skipped


@dataclass(frozen=True)
class Handled:
    effects: tuple[Effect, ...]

    def __str__(self) -> str:
        return "; ".join(str(e) for e in self.effects) or "nothing usable forwarded"

    @property
    def created(self) -> int:
        return sum(1 for e in self.effects if isinstance(e, Created))

    @property
    def joined(self) -> int:
        return sum(1 for e in self.effects if isinstance(e, Joined | Advised))


@dataclass(frozen=True)
class Ignored:
    reason: str

    def __str__(self) -> str:
        return f"ignored: {self.reason}"


@dataclass(frozen=True)
class Duplicate:
    """The message was applied before (it arrived again after a crash, or in two folders)."""

    def __str__(self) -> str:
        return "already handled"


Outcome = Handled | Ignored | Duplicate


# -- what listeners hear -----------------------------------------------------------------------


@dataclass(frozen=True)
class LoopStarted:
    loop: Loop

    def __str__(self) -> str:
        return f"loop {self.loop.id} started: {self.loop.stage} with {self.loop.mentor}"


@dataclass(frozen=True)
class StageChanged:
    loop: Loop
    before: Stage

    def __str__(self) -> str:
        return f"loop {self.loop.id}: {self.before} → {self.loop.stage}"


@dataclass(frozen=True)
class MailSent:
    to: str
    subject: str
    loop: Loop | None = None

    def __str__(self) -> str:
        return f"sent to {self.to}: {self.subject}"


Notice = LoopStarted | StageChanged | MailSent
