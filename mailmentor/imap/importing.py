"""One-off backfill of a folder through the same fetch code the watcher uses.

Separate from the watcher because it has none of its state: no checkpoint, no lease, no IDLE.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

from mailmentor.backoff import backoff_delay
from mailmentor.errors import MailboxError
from mailmentor.imap.account import IMAP_ERRORS, ImapAccount, logout, open_folder
from mailmentor.imap.failures import log_failure
from mailmentor.imap.fetching import FetchedMessage, fetch_messages, uid_batches
from mailmentor.imap.handlers import BatchNotice, MessageHandler, MessageMeta, MetaHandler
from mailmentor.store.client import is_transient

log = logging.getLogger("mailmentor.imap")  # one logger name for the whole package


#: How long `import` waits between tries of a message the store could not take (at most).
STORE_WAIT_MAX = 30.0


def _until_stored(uid: int, label: str, handle: Callable[[], object]) -> None:
    """Handle one message; while the store cannot take it, wait and try it again (Ctrl-C stops
    the import): a message is only ever skipped for being unusable itself."""
    for attempt in itertools.count():
        try:
            handle()
            return
        except Exception as exc:
            if not is_transient(exc):
                raise
            delay = backoff_delay(attempt, 1.0, STORE_WAIT_MAX, random.random())
            reason = " ".join(str(exc).split())[:200] or type(exc).__name__
            log.warning(
                "store unavailable at UID %d of %s (%s); trying it again in %.1f s",
                uid,
                label,
                reason,
                delay,
            )
            time.sleep(delay)


@dataclass(frozen=True)
class ImportResult:
    """What `import_folder` did: messages read, handled, and failed (logged, not fatal)."""

    seen: int
    handled: int
    failed: int


def import_folder(
    account: ImapAccount,
    folder: str,
    handler: MessageHandler | None = None,
    since: date | None = None,
    max_message_bytes: int = 25_000_000,
    timeout: float = 30.0,
    *,
    meta_handler: MetaHandler | None = None,
    prepare: BatchNotice | None = None,
) -> ImportResult:
    """Hand every message of ``folder`` (internal date on or after ``since``) to ``handler`` once,
    in UID order, over one read-only connection: nothing gets \\Seen and the watcher's
    checkpoint is never touched, so it is safe next to a running watcher and safe to repeat
    (the handler dedupes by Message-ID). A ``meta_handler`` instead also gets each message's
    flags and Gmail labels, as the watcher gives them in mailbox mode. ``prepare`` is told
    each fetched batch first, as by the watcher.

    Raises LoginError/MailboxError (naming the folder when it does not exist).
    """
    if (handler is None) == (meta_handler is None):
        raise TypeError("import_folder needs exactly one of handler and meta_handler")
    source = dataclasses.replace(account, folder=folder)

    def deliver(uid: int, message: FetchedMessage) -> None:
        if meta_handler is not None:
            meta_handler(uid, message.raw, MessageMeta(folder, message.flags, message.labels))
        elif handler is not None:
            handler(uid, message.raw)

    client, _ = open_folder(source, timeout)
    seen = handled = failed = 0
    try:
        criteria: list[Any] = ["SINCE", since] if since is not None else ["ALL"]
        uids = sorted(int(uid) for uid in client.search(criteria))
        log.info("importing %d messages from %s", len(uids), source.label)
        for batch in uid_batches(uids):
            fetched = fetch_messages(
                client, batch, max_message_bytes, source.label, meta=meta_handler is not None
            )
            if prepare is not None:
                prepare([fetched[uid].raw for uid in batch if uid in fetched])
            for uid in batch:
                message = fetched.get(uid)
                if message is None:
                    log.info("UID %d of %s vanished before it was read", uid, source.label)
                    continue
                seen += 1
                try:
                    _until_stored(uid, source.label, functools.partial(deliver, uid, message))
                except Exception as exc:
                    failed += 1
                    log_failure(uid, message, exc, source.label, "skipping it")
                else:
                    handled += 1
    except IMAP_ERRORS as exc:
        raise MailboxError(f"lost connection to {source.label} while importing: {exc}") from exc
    finally:
        logout(client)
    return ImportResult(seen=seen, handled=handled, failed=failed)
