"""The contract between the mailbox and the code that uses its mail: what a handler is given.

Kept apart so the watcher, the importer and the service all name the same types without any of
them depending on the others.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

MessageHandler = Callable[[int, bytes], object]
"""Called with (uid, raw RFC 5322 bytes) for every new message, in UID order; any return value
(an outcome, say) is ignored, an exception means the message failed."""


@dataclass(frozen=True)
class MessageMeta:
    """Where a message sits and how it is marked: its folder, IMAP flags (keywords included)
    and, on Gmail (X-GM-EXT-1), its labels. Mailbox mode reads meaning from these."""

    folder: str
    flags: tuple[str, ...] = ()
    labels: tuple[str, ...] = ()


MetaHandler = Callable[[int, bytes, MessageMeta], object]
"""Like MessageHandler, also given the message's MessageMeta (fetched with its body)."""

BatchNotice = Callable[[list[bytes]], object]
"""Told each fetched batch's messages before they are handed over one by one, so that pure
work on them (parsing, in other processes) can start early; it must not raise."""


class Marking(Protocol):
    """How the user marks a message to track it: an IMAP keyword and/or a Gmail label.

    A mark can be set long after a message arrived, so the watcher also searches for it among
    messages already read (``mailbox_mode.Tracking`` is the implementation).
    """

    @property
    def keyword(self) -> str: ...

    @property
    def gmail_label(self) -> str: ...

    def marks(self, flags: Iterable[str], labels: Iterable[str]) -> bool: ...
