"""Reply commands against real replies: the zapier and crisp reply-parser corpora (replies with
quoted history, signatures and mobile footers from many clients and languages), in
../shared/corpora. Skipped, saying why, where that folder is absent (a fresh clone)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailmentor.parsing.commands import Command, CommandName, parse_commands
from tests.parsing._support import CORPORA, corpus

FOLDERS = ("zapier-email-reply-parser", "crisp-email-reply-parser")
#: Kinds of answer a reply that holds no command may get: kept as a note, or not understood.
NO_COMMAND = {CommandName.NOTE, CommandName.UNKNOWN}


def _names() -> list[str]:
    """``folder/file`` of every reply in the corpora (none when they are absent: the tests
    then run once and skip with the reason)."""
    found = [
        f"{folder}/{path.name}"
        for folder in FOLDERS
        if (CORPORA / folder).is_dir()
        for path in sorted((CORPORA / folder).glob("*.txt"))
    ]
    return found or ["(corpora absent)/-"]


def _reply(name: str) -> str:
    folder, _, file = name.partition("/")
    path: Path = corpus(folder) / file
    return path.read_text(encoding="utf-8", errors="replace")


@pytest.mark.parametrize("name", _names())
def test_a_real_reply_without_a_command_changes_nothing(name: str) -> None:
    """People's replies (questions, thanks, long answers) are notes or not understood, never a
    command: the quoted history and signatures below them are not read."""
    commands = parse_commands(_reply(name))
    assert {command.name for command in commands} <= NO_COMMAND, commands


#: A first line in each language, on top of each real reply's text, quote and signature.
ON_TOP = [
    ("done - signed up for a course", Command(CommandName.ACTED, "signed up for a course")),
    ("erledigt – habe mich angemeldet", Command(CommandName.ACTED, "habe mich angemeldet")),
    ("Fait !", Command(CommandName.ACTED)),
    ("¡Listo!", Command(CommandName.ACTED)),
    ("snooze 2 weeks", Command(CommandName.SNOOZE, "2 weeks")),
]


@pytest.mark.parametrize(("line", "expected"), ON_TOP)
@pytest.mark.parametrize("name", _names())
def test_a_command_above_a_real_reply_is_read_alone(
    name: str, line: str, expected: Command
) -> None:
    assert parse_commands(f"{line}\n\n{_reply(name)}") == [expected]
