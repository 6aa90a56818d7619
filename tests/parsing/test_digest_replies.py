"""Replies to the weekly digest, read as a person meant them: numbers bound to commands."""

from __future__ import annotations

import pytest

from mailmentor.parsing.commands import Command, CommandName
from mailmentor.parsing.digest_replies import (
    DigestReplyLine,
    HelpWanted,
    LearnTopic,
    LineCommand,
    Unnumbered,
    Unreadable,
    parse_digest_reply,
)

ACTED, STOP, SNOOZE = CommandName.ACTED, CommandName.STOP, CommandName.SNOOZE


def line(numbers: tuple[int, ...], name: CommandName, argument: str = "") -> tuple:
    return (numbers, name, argument)


def shape(found: list[DigestReplyLine]) -> list[object]:
    out: list[object] = []
    for item in found:
        if isinstance(item, LineCommand):
            out.append(line(item.numbers, item.command.name, item.command.argument))
        elif isinstance(item, Unnumbered):
            out.append(("no number", item.command.name, item.command.argument))
        else:
            out.append(item)
    return out


CASES: list[tuple[str, list[object]]] = [
    ("2 done", [line((2,), ACTED)]),
    ("acted 2", [line((2,), ACTED)]),
    ("Done 1!", [line((1,), ACTED)]),
    ("#3: reported", [line((3,), CommandName.REPORTED)]),
    ("2. Done, I signed up.", [line((2,), ACTED, "I signed up.")]),
    ("done 2 - signed up for a course", [line((2,), ACTED, "signed up for a course")]),
    ("acted 2: signed up", [line((2,), ACTED, "signed up")]),
    ("snooze 3 1w", [line((3,), SNOOZE, "1w")]),
    ("3 snooze 1w", [line((3,), SNOOZE, "1w")]),
    ("snooze 3 until friday", [line((3,), SNOOZE, "until friday")]),
    ("stop 4", [line((4,), STOP)]),
    ("stop 4 not for me", [line((4,), STOP, "not for me")]),
    ("2, 5 done", [line((2, 5), ACTED)]),
    ("2 and 5 done", [line((2, 5), ACTED)]),
    ("gave back 4 sent a book", [line((4,), CommandName.GAVE_BACK, "sent a book")]),
    ("4 gave back: sent a book", [line((4,), CommandName.GAVE_BACK, "sent a book")]),
    ("2 erledigt", [line((2,), ACTED)]),
    ("learn Rust", [LearnTopic("Rust")]),
    ("Learn about negotiation.", [LearnTopic("negotiation")]),
    ("I want to learn pottery!", [LearnTopic("pottery")]),
    ("learn: public speaking", [LearnTopic("public speaking")]),
    ("help", [HelpWanted()]),
    # Prose that starts like "learn" or "next" is no topic, and a command after it still counts.
    ("Next week I will do it", [Unreadable("Next week I will do it")]),
    ("Learning a lot, thanks!", [Unreadable("Learning a lot, thanks!")]),
    ("Next up: 3 done", [Unreadable("Next up: 3 done")]),
    ("2 done\nNext time I will reply sooner", [line((2,), ACTED)]),
    ("learned a lot\n3 stop", [line((3,), STOP)]),
    ("done", [("no number", ACTED, "")]),
    # "2 weeks" is a time, not line 2: the command names no line.
    ("snooze 2 weeks", [("no number", SNOOZE, "2 weeks")]),
    ("hello there how are you", [Unreadable("hello there how are you")]),
    (
        "Thanks!\n\n2 done\n3 stop\nlearn Go\n\nAda\n\nOn Mon, 12 Jan, mailmentor wrote:\n> 1 done",
        [line((2,), ACTED), line((3,), STOP), LearnTopic("Go")],
    ),
    ("", []),
]


@pytest.mark.parametrize(("text", "expected"), CASES, ids=[c[0][:30] for c in CASES])
def test_digest_reply_lines(text: str, expected: list[object]) -> None:
    assert shape(parse_digest_reply(text)) == expected


def test_hostile_input_never_raises() -> None:
    for text in ("9" * 5000, "\x00" * 100, "1 " * 3000 + "done", "snooze " + "9 " * 999):
        parse_digest_reply(text)


def test_numbers_are_bounded_and_kept_once() -> None:
    (found,) = parse_digest_reply("2, 2, 0 done")
    assert isinstance(found, LineCommand) and found.numbers == (2,)
    assert found.command == Command(CommandName.ACTED)
