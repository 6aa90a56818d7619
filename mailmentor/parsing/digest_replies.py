"""Replies to the weekly digest: commands that name its numbered lines (``2 done``, ``acted 2``,
``snooze 3 1w``, ``stop 4``, ``2, 5 done``), and ``learn <topic>``, several per reply, one per
line. Pure; the command words are those of a reply to a reminder (``parsing.commands``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from mailmentor.parsing.commands import Command, CommandName, read_command
from mailmentor.parsing.quoting import own_lines

#: How many of the reply's own lines are read, and how long one may be.
MAX_LINES = 30
MAX_LINE = 300
#: Line numbers a digest can have (it lists at most a few dozen).
MAX_NUMBER = 999


@dataclass(frozen=True)
class LineCommand:
    """A command for the digest lines ``numbers`` (in the order written)."""

    numbers: tuple[int, ...]
    command: Command
    text: str  # the line as written, for the answer


@dataclass(frozen=True)
class Unnumbered:
    """A command that names no line ("done"): fine when the digest had only one."""

    command: Command
    text: str


@dataclass(frozen=True)
class LearnTopic:
    topic: str


@dataclass(frozen=True)
class HelpWanted:
    pass


@dataclass(frozen=True)
class Unreadable:
    text: str


DigestReplyLine = LineCommand | Unnumbered | LearnTopic | HelpWanted | Unreadable

_NUMBERS = r"#?\d{1,3}(?:\s*(?:,|&|\+|and|und|et|y)\s*#?\d{1,3})*"
#: "2 done", "#2: done", "2. done - signed up", "2, 5 done", "no. 3 stop"
_NUMBER_FIRST = re.compile(rf"^(?:no\.?\s*|nr\.?\s*|n°\s*)?({_NUMBERS})\s*[.):\-–—]?\s*(.*)$", re.I)
#: "acted 2", "snooze 3 1w", "done 2 - signed up", "stop #4 (not for me)"
_NUMBER_AFTER = re.compile(rf"^(.*?\D)\s+({_NUMBERS})(?:\s*[.):\-–—,]?\s+(.*)|\s*[.!]*)$", re.I)
#: A duration unit right after the number means the number was the duration ("snooze 2 weeks").
_UNIT_AFTER = re.compile(
    r"^(?:d|days?|w|wks?|weeks?|h|hrs?|hours?|mo|months?|tage?n?|wochen?|jours?|semaines?|"
    r"mois|d[ií]as?|semanas?|meses?)\b",
    re.I,
)
#: "learn Rust", "learn: negotiation", "learn about pottery", "I want to learn Go"; only at the
#: start of a line and only the verb itself ("learning a lot" and "next week" are prose).
_LEARN = re.compile(
    r"^(?:i(?:'d| would)? (?:want|like|love) to learn(?: about)?|learn(?: about)?|"
    r"ich (?:will|möchte) (?:\S+ )?lernen:?|lernen|apprendre|aprender)"
    r"(?:\s*[:\-–—]\s*|\s+)(.+)$",
    re.I,
)
_TRAILING = " \t.!,;"


def parse_digest_reply(reply_text: str) -> list[DigestReplyLine]:
    """Every command of a reply to the digest, in order. Lines that are no command (a greeting,
    a signature) are skipped once one is found; a reply with none is one Unreadable."""
    lines = own_lines(reply_text, max_lines=MAX_LINES, max_line=MAX_LINE)
    found: list[DigestReplyLine] = []
    for line in lines:
        item = read_line(line)
        if item is not None:
            found.append(item)
    if found or not lines:
        return found
    return [Unreadable(lines[0])]


def read_line(line: str) -> DigestReplyLine | None:
    """What one line of a digest reply says, or None when it is no command."""
    text = " ".join(line.split())
    first = _NUMBER_FIRST.match(text)
    if first and first.group(2):
        command = read_command(first.group(2))
        if command is not None and command.name is not CommandName.UNKNOWN:
            return _numbered(_numbers(first.group(1)), command, text)
    after = _NUMBER_AFTER.match(text)
    if after and not _UNIT_AFTER.match(after.group(3) or ""):
        verb, rest = after.group(1), after.group(3) or ""
        command = read_command(f"{verb} {rest}".strip())
        if command is None and rest:  # "done 2 - signed up": the note after the number
            command = read_command(f"{verb} - {rest}")
        if command is not None and command.name is not CommandName.UNKNOWN:
            return _numbered(_numbers(after.group(2)), command, text)
    learn = _LEARN.match(text)
    if learn:
        topic = learn.group(1).strip(_TRAILING + "“”\"'")
        return LearnTopic(topic) if topic else None
    command = read_command(text)
    if command is None or command.name is CommandName.UNKNOWN:
        return None
    if command.name is CommandName.HELP:
        return HelpWanted()
    return Unnumbered(command, text)


def _numbered(numbers: tuple[int, ...], command: Command, text: str) -> DigestReplyLine:
    if command.name is CommandName.HELP:
        return HelpWanted()
    return LineCommand(numbers, command, text)


def _numbers(text: str) -> tuple[int, ...]:
    found = [int(n) for n in re.findall(r"\d{1,3}", text)]
    return tuple(dict.fromkeys(n for n in found if 0 < n <= MAX_NUMBER))
