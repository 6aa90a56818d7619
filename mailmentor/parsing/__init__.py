"""Message parsing: bytes in, typed records out; pure functions, no I/O, never fatal."""

from __future__ import annotations

from mailmentor.parsing.automatic import automatic_reason
from mailmentor.parsing.commands import Command, CommandName, parse_command, resolve_snooze
from mailmentor.parsing.forwards import extract_forwards
from mailmentor.parsing.message import (
    MAX_TEXT,
    Address,
    ForwardedMessage,
    ParsedMessage,
    parse_message,
)
from mailmentor.parsing.quoting import excerpt, strip_quoted

__all__ = [
    "MAX_TEXT",
    "Address",
    "Command",
    "CommandName",
    "ForwardedMessage",
    "ParsedMessage",
    "automatic_reason",
    "excerpt",
    "extract_forwards",
    "parse_command",
    "parse_message",
    "resolve_snooze",
    "strip_quoted",
]
