"""What gets logged about a message the handler could not use: one line, naming it by Message-ID.

The watcher and `import_folder` both report failures this way, so the log reads the same
whichever path the message came in by.
"""

from __future__ import annotations

import logging
import re

from mailmentor.errors import UnprocessableMessage
from mailmentor.imap.fetching import FetchedMessage

log = logging.getLogger("mailmentor.imap")  # one logger name for the whole package

_MESSAGE_ID = re.compile(rb"^message-id[ \t]*:[ \t]*((?:.*)(?:\r?\n[ \t].*)*)", re.I | re.M)


def message_id_of(raw: bytes) -> str | None:
    """The Message-ID header of raw mail for log lines, or None; never raises."""
    try:
        end = raw.find(b"\r\n\r\n")
        if end < 0:
            end = raw.find(b"\n\n")
        head = raw[: end if end >= 0 else 65536][:65536]
        match = _MESSAGE_ID.search(head)
        if match is None:
            return None
        value = b" ".join(match.group(1).split()).decode("ascii", "replace")
        return value[:200] or None
    except Exception:
        return None


def failure_reason(exc: Exception, message: FetchedMessage) -> str:
    """One line saying why a message could not be handled, for the log."""
    said = " ".join(str(exc).split())[:300]
    reason = said if isinstance(exc, UnprocessableMessage) else f"{type(exc).__name__}: {said}"
    if message.truncated:
        reason += f" (truncated from {message.size} bytes)"
    return reason


def log_failure(uid: int, message: FetchedMessage, exc: Exception, label: str, then: str) -> None:
    """ONE record per failed message; a traceback only for the unexpected (handler bugs)."""
    log.log(
        logging.WARNING if isinstance(exc, UnprocessableMessage) else logging.ERROR,
        "handler failed on UID %d (Message-ID %s) of %s: %s; %s",
        uid,
        message_id_of(message.raw) or "unknown",
        label,
        failure_reason(exc, message),
        then,
        exc_info=not isinstance(exc, UnprocessableMessage),
    )
