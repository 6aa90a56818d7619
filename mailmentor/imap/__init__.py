"""IMAP mail I/O: connect, append, and the watcher that feeds every new message to a handler.

A package of small modules (account, fetching, failures, folders, importing, watcher, handlers);
this file re-exports the public names so callers keep importing from ``mailmentor.imap``.
All modules log as "mailmentor.imap".
"""

import logging

from mailmentor.imap.account import (
    ImapAccount,
    Security,
    append_message,
    appended_uid,
    connect,
)
from mailmentor.imap.failures import failure_reason, message_id_of
from mailmentor.imap.fetching import (
    FETCH_BATCH,
    FETCH_BYTES_BUDGET,
    GMAIL_CAPABILITY,
    TRUNCATED_TEXT_BYTES,
    FetchedMessage,
    fetch_messages,
    gmail_labels,
    message_flags,
    size_chunks,
    uid_batches,
)
from mailmentor.imap.folders import (
    QuarantineMethod,
    create_folder,
    move_message,
    quarantine_message,
    quarantine_method,
)
from mailmentor.imap.handlers import Marking, MessageHandler, MessageMeta, MetaHandler
from mailmentor.imap.importing import ImportResult, import_folder
from mailmentor.imap.watcher import (
    CheckpointStore,
    LeaseStore,
    MailboxWatcher,
    MarkStore,
)

log = logging.getLogger("mailmentor.imap")

__all__ = [
    "FETCH_BATCH",
    "FETCH_BYTES_BUDGET",
    "GMAIL_CAPABILITY",
    "TRUNCATED_TEXT_BYTES",
    "CheckpointStore",
    "FetchedMessage",
    "ImapAccount",
    "ImportResult",
    "LeaseStore",
    "MailboxWatcher",
    "MarkStore",
    "Marking",
    "MessageHandler",
    "MessageMeta",
    "MetaHandler",
    "QuarantineMethod",
    "Security",
    "append_message",
    "appended_uid",
    "connect",
    "create_folder",
    "failure_reason",
    "fetch_messages",
    "gmail_labels",
    "import_folder",
    "message_flags",
    "message_id_of",
    "move_message",
    "quarantine_message",
    "quarantine_method",
    "size_chunks",
    "uid_batches",
]
