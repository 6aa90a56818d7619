"""Reading messages off the server: UID batches, memory-bounded FETCHes, FLAGS and Gmail labels.

Shared by the watcher and `import_folder`, so both read mail the same way (BODY.PEEK, nothing
gets \\Seen; over-sized messages truncated) and the response decoding is tested once.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from imapclient import IMAPClient
from imapclient.imap_utf7 import decode as utf7_decode

log = logging.getLogger("mailmentor.imap")  # one logger name for the whole package

GMAIL_CAPABILITY = "X-GM-EXT-1"

FETCH_BATCH = 50
"""UIDs per FETCH round trip: big enough to be fast, small enough to keep memory bounded."""
FETCH_BYTES_BUDGET = 32_000_000
"""At most this many message bytes are held in memory per FETCH of full bodies."""
TRUNCATED_TEXT_BYTES = 1_000_000
"""How much body text of an over-sized message is passed on (its header is always whole)."""


def uid_batches(uids: Sequence[int], size: int = FETCH_BATCH) -> Iterator[list[int]]:
    """Split UIDs into consecutive batches of at most ``size``."""
    for start in range(0, len(uids), size):
        yield list(uids[start : start + size])


def size_chunks(
    uids: Sequence[int], sizes: dict[int, int], budget: int = FETCH_BYTES_BUDGET
) -> Iterator[list[int]]:
    """Group UIDs (order kept) so each group's total size stays under ``budget`` (or is one UID)."""
    chunk: list[int] = []
    total = 0
    for uid in uids:
        size = sizes.get(uid, 0)
        if chunk and total + size > budget:
            yield chunk
            chunk, total = [], 0
        chunk.append(uid)
        total += size
    if chunk:
        yield chunk


def _imap_text(item: object) -> str:
    """One atom or string of a parsed IMAP response as text; bytes are ASCII (UTF-8 tolerated)."""
    if isinstance(item, bytes | bytearray):
        return bytes(item).decode("utf-8", "replace")
    return str(item)


def message_flags(value: object) -> tuple[str, ...]:
    """The FLAGS of a parsed FETCH response as text (``\\Seen``, ``$mentor``); never raises."""
    try:
        items = value if isinstance(value, tuple | list) else () if value is None else (value,)
        return tuple(text for text in (_imap_text(item).strip() for item in items) if text)
    except Exception:
        return ()


def gmail_labels(value: object) -> tuple[str, ...]:
    """The X-GM-LABELS of a parsed FETCH response as text; never raises.

    Labels are modified UTF-7 (``&AOQ-`` is "ä"), atoms or quoted strings, and a label that
    looks like a number arrives as an int; system labels keep their backslash (``\\Inbox``).
    """
    try:
        items = value if isinstance(value, tuple | list) else () if value is None else (value,)
        labels = []
        for item in items:
            if item is None:
                continue
            raw = bytes(item) if isinstance(item, bytes | bytearray) else str(item).encode()
            try:
                text = str(utf7_decode(raw)) if b"&" in raw else raw.decode("utf-8", "replace")
            except Exception:
                text = raw.decode("utf-8", "replace")
            if text.strip():
                labels.append(text.strip())
        return tuple(labels)
    except Exception:
        return ()


@dataclass(frozen=True)
class FetchedMessage:
    """One message as read from the server; ``truncated`` when only its start was passed on."""

    raw: bytes
    size: int
    truncated: bool = False
    flags: tuple[str, ...] = ()
    labels: tuple[str, ...] = ()


def fetch_messages(
    client: IMAPClient,
    batch: list[int],
    max_bytes: int,
    label: str,
    *,
    meta: bool = False,
    budget: int = FETCH_BYTES_BUDGET,
) -> dict[int, FetchedMessage]:
    """Raw bytes per UID with BODY.PEEK (nothing gets \\Seen); over-sized messages as their
    header plus the first ~1 MB of text, so one huge mail cannot exhaust memory.

    One FETCH reads each message's size with at most ``budget`` / len(batch) bytes of it
    (``BODY.PEEK[]<0.n>``), which is all of the usual message: one round trip per batch, whose
    answer is at most the budget (FETCH_BYTES_BUDGET). Only the messages that filled their n
    bytes are read again, whole (in FETCHes within the budget) or, over ``max_bytes``,
    truncated; the batch's messages are all kept until they are handed over.
    With ``meta`` the same FETCH also reads FLAGS and, on Gmail, X-GM-LABELS.
    """
    extra: list[bytes] = []
    if meta:
        extra.append(b"FLAGS")
        if client.has_capability(GMAIL_CAPABILITY):
            extra.append(b"X-GM-LABELS")
    first = max(1, min(max_bytes, budget // max(1, len(batch))))
    part = f"BODY.PEEK[]<0.{first}>".encode()
    sizes: dict[int, int] = {}
    found: dict[int, FetchedMessage] = {}
    for uid, data in client.fetch(batch, [b"RFC822.SIZE", part, *extra]).items():
        size = int(data.get(b"RFC822.SIZE", 0) or 0)
        sizes[int(uid)] = size
        body = data.get(b"BODY[]<0>")
        # Shorter than asked for: the whole message. Not RFC822.SIZE: servers may under-report
        # it (Exchange estimates it), and a cut message taken as whole would lose its end.
        if body is not None and len(body) < first:
            found[int(uid)] = FetchedMessage(
                bytes(body),
                size,
                flags=message_flags(data.get(b"FLAGS")),
                labels=gmail_labels(data.get(b"X-GM-LABELS")),
            )
    rest = [uid for uid in batch if uid in sizes and uid not in found]
    small = [uid for uid in rest if sizes[uid] <= max_bytes]
    large = [uid for uid in rest if sizes[uid] > max_bytes]
    for chunk in size_chunks(small, sizes, max(budget, max_bytes)):
        for uid, data in client.fetch(chunk, [b"BODY.PEEK[]", *extra]).items():
            body = data.get(b"BODY[]")
            if body is not None and int(uid) in sizes:
                found[int(uid)] = FetchedMessage(
                    bytes(body),
                    sizes[int(uid)],
                    flags=message_flags(data.get(b"FLAGS")),
                    labels=gmail_labels(data.get(b"X-GM-LABELS")),
                )
    for uid in large:
        parts = [b"BODY.PEEK[HEADER]", f"BODY.PEEK[TEXT]<0.{TRUNCATED_TEXT_BYTES}>".encode()]
        data = client.fetch([uid], [*parts, *extra]).get(uid)
        if data is None:
            continue
        header = bytes(data.get(b"BODY[HEADER]") or b"")
        text = bytes(data.get(b"BODY[TEXT]<0>") or b"")
        log.warning(
            "UID %d of %s is %d bytes, over the %d limit: passing its header and the "
            "first %d bytes of its body (truncated)",
            uid,
            label,
            sizes[uid],
            max_bytes,
            len(text),
        )
        found[uid] = FetchedMessage(
            header + text,
            sizes[uid],
            truncated=True,
            flags=message_flags(data.get(b"FLAGS")),
            labels=gmail_labels(data.get(b"X-GM-LABELS")),
        )
    return found
