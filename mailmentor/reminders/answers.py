"""The one short answer to a reply of commands: what each command did, or why it did not and
what would work, then where the loop stands and what comes next.

Pure words from typed results; the intake decides what happened, this says it. One answer per
incoming message, whatever it held (several commands, help, a line not understood).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from mailmentor.model import ActionKind, Loop, Stage
from mailmentor.parsing.commands import Command, CommandName
from mailmentor.reminders.wording import HELP_TEXT, aware
from mailmentor.stages import working_stage


@dataclass(frozen=True)
class Applied:
    command: Command
    loop: Loop  # after the command


@dataclass(frozen=True)
class Refused:
    command: Command
    loop: Loop  # as it stood; unchanged by the command
    reason: str  # for the log
    bad_duration: bool = False  # snooze with a time that could not be read (or not ahead)


@dataclass(frozen=True)
class NotUnderstood:
    text: str


@dataclass(frozen=True)
class HelpAsked:
    pass


CommandResult = Applied | Refused | NotUnderstood | HelpAsked

#: The command that moves a loop on from each working stage.
_NEXT_COMMAND = {
    Stage.ASKED: "advised",
    Stage.ADVISED: "done",
    Stage.ACTED: "reported",
    Stage.REPORTED: "gave back",
    Stage.GAVE_BACK: "gave back",
}
_SNOOZE_EXAMPLES = "“snooze 2w”, “snooze 10 days” or “snooze until friday”"


def when(moment: datetime, zone: ZoneInfo) -> str:
    """'Tue 15 Dec, 09:00 EST' in the user's time zone."""
    local = aware(moment).astimezone(zone)
    return f"{local:%a} {local.day} {local:%b}, {local:%H:%M %Z}".rstrip()


def _name(loop: Loop) -> str:
    return loop.mentor.name or loop.mentor.address


def stands(loop: Loop, zone: ZoneInfo) -> str:
    """Where the loop stands, in words: 'acted on (report back to Ada next)'."""
    name = _name(loop)
    stage = loop.stage
    if stage is Stage.SNOOZED:
        back = working_stage(loop)
        if loop.snoozed_until is None:
            return f"paused at {back}, until you reply (“reopen” resumes it)"
        return f"snoozed until {when(loop.snoozed_until, zone)}, then back to {back}"
    return {
        Stage.ASKED: f"waiting for {name}'s answer",
        Stage.ADVISED: "advice received: act on it next",
        Stage.ACTED: f"acted on: tell {name} how it went next",
        Stage.REPORTED: f"reported back: give something back to {name} when you can",
        Stage.GAVE_BACK: f"at gave back: keep in touch with {name}",
        Stage.CLOSED: "closed: every step is done",
        Stage.DROPPED: "stopped: no more reminders (“reopen” keeps it after all)",
    }[stage]


def next_step(loop: Loop, zone: ZoneInfo) -> str:
    """What the scheduler will do next for ``loop`` (its planned action), in one sentence."""
    action = loop.next_action
    if not loop.stage.is_open:
        return "Nothing more will be sent about it."
    if action is None:
        return "No reminder is planned for it."
    at = when(action.due_at, zone)
    if action.kind is ActionKind.WAKE:
        return f"It wakes on {at}, with a reminder."
    if action.kind is ActionKind.GIVE_UP:
        return f"If nothing happens, it will be let go on {at}."
    if action.kind is ActionKind.STILL_RELEVANT:
        return f"On {at} I will ask whether it still matters."
    return f"Next reminder: {at}."


def _applied_line(result: Applied, zone: ZoneInfo) -> str:
    command, loop, name = result.command, result.loop, _name(result.loop)
    said = f" (noted: “{command.argument}”)" if command.argument else ""
    match command.name:
        case CommandName.ACTED:
            return f"Done: you acted on {name}'s advice{said}."
        case CommandName.ADVISED:
            return f"Done: {name} has answered{said}."
        case CommandName.REPORTED:
            return f"Done: you reported back to {name}{said}."
        case CommandName.GAVE_BACK:
            return f"Done: you gave something back to {name}{said}."
        case CommandName.SNOOZE:
            until = loop.snoozed_until
            return f"Snoozed until {when(until, zone)}." if until else "Snoozed."
        case CommandName.STOP:
            return f"Stopped{said}."
        case CommandName.REOPEN:
            return f"Reopened: back at {loop.stage}."
        case _:
            return f"Noted on the loop: “{command.argument}”."


def _refused_line(result: Refused) -> str:
    command, loop = result.command, result.loop
    typed = str(command.name).replace("_", " ")
    if result.bad_duration:
        what = f"“{command.argument}”" if command.argument else "no time"
        said = f"snooze {command.argument}".strip()
        return (
            f"“{said}” was not applied: {what} is not a time ahead I can read. "
            f"Try {_SNOOZE_EXAMPLES}."
        )
    if not loop.stage.is_open:
        fix = "reply “reopen” first" if loop.stage is Stage.DROPPED else "nothing more to do"
        return f"“{typed}” was not applied: this loop is {loop.stage} ({fix})."
    hint = _NEXT_COMMAND.get(working_stage(loop))
    try_ = f" Reply “{hint}” when that is true." if hint else ""
    return f"“{typed}” was not applied: this loop is already {working_stage(loop)}.{try_}"


def answer_text(
    results: Sequence[CommandResult], loop: Loop, zone: ZoneInfo, confirm: bool = True
) -> str | None:
    """The answer to one reply, or None when nothing needs saying (everything applied and
    ``confirm`` is off). ``loop`` is the loop after every command, its next action planned."""
    lines: list[str] = []
    helped = any(isinstance(r, HelpAsked) for r in results)
    needed = helped or confirm
    for result in results:
        if isinstance(result, Applied):
            lines.append(_applied_line(result, zone))
        elif isinstance(result, Refused):
            lines.append(_refused_line(result))
            needed = True
        elif isinstance(result, NotUnderstood):
            lines.append(f"I did not understand “{result.text}”.")
            helped = needed = True
    if not needed:
        return None
    if any(isinstance(r, Applied | Refused) for r in results):
        lines.append(f"The loop is {stands(loop, zone)}. {next_step(loop, zone)}")
    if helped:
        lines.append(("Commands, one per line:\n" if lines else "") + HELP_TEXT)
    return "\n\n".join(lines)


# -- replies to the weekly digest --------------------------------------------------------------


@dataclass(frozen=True)
class LineAnswered:
    """What the commands naming one digest line did to its loop."""

    number: int
    loop: Loop  # after the commands, its next action planned
    results: tuple[CommandResult, ...]


@dataclass(frozen=True)
class NoSuchLine:
    number: int
    text: str  # the line of the reply that named it


@dataclass(frozen=True)
class NoLineNamed:
    text: str  # a command without a number, in a digest with several lines


@dataclass(frozen=True)
class LearnStarted:
    topic: str
    loop: Loop


@dataclass(frozen=True)
class DigestGone:
    """The digest is too old (its numbers expired) or unknown."""


DigestResult = LineAnswered | NoSuchLine | NoLineNamed | LearnStarted | DigestGone | CommandResult


def digest_answer_text(
    results: Sequence[DigestResult], zone: ZoneInfo, confirm: bool = True
) -> str | None:
    """The one answer to a reply to the digest: a paragraph per line it named, then what was
    not understood; None when everything applied and ``confirm`` is off."""
    paragraphs: list[str] = []
    helped = any(isinstance(r, HelpAsked) for r in results)
    needed = helped or confirm
    for result in results:
        if isinstance(result, LineAnswered):
            lines = [
                _applied_line(r, zone) if isinstance(r, Applied) else _refused_line(r)
                for r in result.results
                if isinstance(r, Applied | Refused)
            ]
            needed = needed or any(isinstance(r, Refused) for r in result.results)
            subject = result.loop.subject or "(no subject)"
            head = f"{result.number}. “{subject}” with {_name(result.loop)}:"
            status = f"The loop is {stands(result.loop, zone)}. {next_step(result.loop, zone)}"
            paragraphs.append("\n".join([head, *lines, status]))
        elif isinstance(result, NoSuchLine):
            needed = True
            paragraphs.append(
                f"“{result.text}” was not applied: that digest has no line {result.number}."
            )
        elif isinstance(result, NoLineNamed):
            needed = True
            paragraphs.append(
                f"“{result.text}” was not applied: say which line, e.g. “2 {result.text}”."
            )
        elif isinstance(result, LearnStarted):
            paragraphs.append(
                f"Noted: you want to learn “{result.topic}”. Ask someone about it and BCC me, "
                f"or forward their answer. {next_step(result.loop, zone)}"
            )
        elif isinstance(result, DigestGone):
            needed = True
            paragraphs.append(
                "That digest is too old for its line numbers: reply to the latest digest, "
                "or to a reminder of the loop."
            )
        elif isinstance(result, NotUnderstood):
            helped = needed = True
            paragraphs.append(f"I did not understand “{result.text}”.")
    if not needed:
        return None
    if helped:
        paragraphs.append(
            "Reply to the digest with a line number and a command, one per line: "
            "“2 done”, “3 reported”, “snooze 4 1w”, “stop 5”, “learn <topic>”.\n\n" + HELP_TEXT
        )
    return "\n\n".join(paragraphs)
