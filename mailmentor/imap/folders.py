"""Making folders and moving messages into them, chiefly to quarantine mail that failed.

Moving needs a read-write connection and a choice of IMAP method by server capability; the
watcher's own connection stays read-only, so this module opens its own.
"""

from __future__ import annotations

import imaplib
from collections.abc import Collection
from typing import Literal

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError

from mailmentor.errors import MailboxError
from mailmentor.imap.account import IMAP_ERRORS, ImapAccount, connect, logout, open_folder

QuarantineMethod = Literal["move", "copy-expunge", "copy-flag"]


def quarantine_method(capabilities: Collection[bytes | str]) -> QuarantineMethod:
    """How a message leaves its folder: UID MOVE (RFC 6851), else COPY + \\Deleted + UID EXPUNGE
    (RFC 4315), else COPY + \\Deleted only (a plain EXPUNGE could remove other people's mail)."""
    names = {
        c.upper() if isinstance(c, str) else c.decode("ascii", "replace").upper()
        for c in capabilities
    }
    if "MOVE" in names:
        return "move"
    if "UIDPLUS" in names:
        return "copy-expunge"
    return "copy-flag"


def ensure_folder(client: IMAPClient, folder: str) -> bool:
    """Create ``folder`` when missing; True when it was created here."""
    if client.folder_exists(folder):
        return False
    try:
        client.create_folder(folder)
    except (imaplib.IMAP4.error, IMAPClientError):
        if not client.folder_exists(folder):  # not a lost race with another creator
            raise
        return False
    return True


def create_folder(account: ImapAccount, folder: str, timeout: float = 30.0) -> bool:
    """Create ``folder`` in the account's mailbox when missing (the demo mailbox has only
    INBOX); True when it was created. Raises MailboxError naming the folder."""
    client = connect(account, timeout)
    try:
        return ensure_folder(client, folder)
    except IMAP_ERRORS as exc:
        raise MailboxError(f"cannot create folder {folder!r} of {account.label}: {exc}") from exc
    finally:
        logout(client)


def folder_names(account: ImapAccount, timeout: float = 30.0) -> list[str]:
    """The selectable folders of the account's mailbox (to say which exist when one does not);
    logs in through the account's own folder, so give it one that exists (INBOX).
    Raises MailboxError."""
    client, _ = open_folder(account, timeout)
    try:
        listed = client.list_folders()
    except IMAP_ERRORS as exc:
        raise MailboxError(f"cannot list the folders of {account.label}: {exc}") from exc
    finally:
        logout(client)
    names = []
    for flags, _, name in listed:
        marks = {f.decode("ascii", "replace") if isinstance(f, bytes) else str(f) for f in flags}
        if "\\noselect" not in {m.lower() for m in marks}:
            names.append(name.decode("utf-8", "replace") if isinstance(name, bytes) else str(name))
    return names


def move_message(
    client: IMAPClient,
    uid: int,
    folder: str,
    capabilities: Collection[bytes | str] | None = None,
) -> str:
    """Move one UID of the selected (read-write) folder to ``folder``; says what was done."""
    created = ensure_folder(client, folder)
    method = quarantine_method(client.capabilities() if capabilities is None else capabilities)
    if method == "move":
        client.move([uid], folder)
        done = f"moved to {folder!r}"
    else:
        client.copy([uid], folder)
        client.add_flags([uid], [b"\\Deleted"], silent=True)
        if method == "copy-expunge":
            client.uid_expunge([uid])
            done = f"copied to {folder!r} and expunged (no MOVE)"
        else:
            done = f"copied to {folder!r} and flagged \\Deleted (neither MOVE nor UIDPLUS)"
    return f"{done}, a new folder" if created else done


def quarantine_message(
    account: ImapAccount,
    uid: int,
    folder: str,
    *,
    uidvalidity: int | None = None,
    timeout: float = 30.0,
) -> str:
    """Move one message of the account's folder to ``folder`` over a short-lived read-write
    connection (the watcher's own stays read-only); returns what was done.

    With ``uidvalidity`` given, nothing moves when the folder's differs (the UID may name
    another message now). Raises MailboxError when the server refuses or goes away.
    """
    client, reply = open_folder(account, timeout, readonly=False)
    try:
        current = int(reply.get(b"UIDVALIDITY", 0))
        if uidvalidity is not None and current != uidvalidity:
            return f"not moved: UIDVALIDITY changed from {uidvalidity} to {current}"
        return move_message(client, uid, folder)
    except IMAP_ERRORS as exc:
        raise MailboxError(
            f"cannot move UID {uid} of {account.label} to {folder!r}: {exc}"
        ) from exc
    finally:
        logout(client)
