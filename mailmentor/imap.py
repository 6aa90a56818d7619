"""IMAP mail I/O: connect, append, and the watcher that feeds every new message to a handler.

The watcher is the only way live mail enters mailmentor, so it is built to never lose a message
and never stop: UID checkpoints after every message, UIDVALIDITY respected, IDLE with a polling
fallback, reconnects with backoff, a lease so two watchers of one mailbox never both work, and an
optional quarantine folder for the messages it could not use. `import_folder` backfills a
folder once through the same fetch code.
"""

from __future__ import annotations

import contextlib
import dataclasses
import imaplib
import logging
import os
import random
import re
import select
import socket
import ssl
import threading
import time
import uuid
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any, Literal, Protocol

from imapclient import IMAPClient
from imapclient.exceptions import CapabilityError, IMAPClientError
from imapclient.exceptions import LoginError as ClientLoginError
from imapclient.imap_utf7 import decode as utf7_decode

from mailmentor.errors import LoginError, MailboxError, UnprocessableMessage

log = logging.getLogger("mailmentor.imap")

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

GMAIL_CAPABILITY = "X-GM-EXT-1"

Security = Literal["ssl", "starttls", "none"]

FETCH_BATCH = 50
"""UIDs per FETCH round trip: big enough to be fast, small enough to keep memory bounded."""
FETCH_BYTES_BUDGET = 32_000_000
"""At most this many message bytes are held in memory per FETCH of full bodies."""
TRUNCATED_TEXT_BYTES = 1_000_000
"""How much body text of an over-sized message is passed on (its header is always whole)."""

# Errors that mean "the connection is gone or unusable": reconnect, don't crash.
_CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    EOFError,
    imaplib.IMAP4.error,
    IMAPClientError,
    MailboxError,
)


@dataclass(frozen=True)
class ImapAccount:
    """Where a watched mailbox lives and how to log in; the password never shows in repr()."""

    host: str
    port: int
    user: str
    password: str = field(repr=False)
    security: Security = "ssl"
    folder: str = "INBOX"
    ssl_context: ssl.SSLContext | None = field(default=None, repr=False, compare=False)

    @property
    def key(self) -> str:
        """Names this mailbox for checkpoints and leases."""
        return f"{self.user}@{self.host}:{self.port}/{self.folder}"

    @property
    def label(self) -> str:
        """Short human-readable name for log lines."""
        return f"{self.user}@{self.host}/{self.folder}"


class CheckpointStore(Protocol):
    """Remembers, per mailbox, the last UID fully handled and the UIDVALIDITY it belongs to."""

    def get_checkpoint(self, mailbox: str) -> tuple[int, int] | None: ...

    def set_checkpoint(self, mailbox: str, uidvalidity: int, last_uid: int) -> None: ...


class LeaseStore(Protocol):
    """A named lease with a TTL; acquiring one already held by ``owner`` renews it (True)."""

    def acquire_lease(self, name: str, owner: str, ttl: timedelta) -> bool: ...

    def release_lease(self, name: str, owner: str) -> None: ...


# --- pure helpers --------------------------------------------------------------------------

_MESSAGE_ID = re.compile(rb"^message-id[ \t]*:[ \t]*((?:.*)(?:\r?\n[ \t].*)*)", re.I | re.M)
_APPENDUID = re.compile(rb"\[APPENDUID\s+\d+\s+(\d+)\]", re.I)


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


def appended_uid(response: bytes | str | None) -> int | None:
    """The UID from an APPEND response carrying ``[APPENDUID v uid]`` (RFC 4315), else None."""
    if response is None:
        return None
    data = response.encode("ascii", "replace") if isinstance(response, str) else response
    match = _APPENDUID.search(data)
    return int(match.group(1)) if match else None


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


def backoff_delay(attempt: int, initial: float, maximum: float, rand: float) -> float:
    """Exponential backoff with jitter: ``rand`` in [0, 1) scales the delay into [50 %, 100 %]."""
    base = min(maximum, initial * float(1 << min(attempt, 32)))
    return base * (0.5 + rand / 2)


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


def _scrub(text: str, secret: str) -> str:
    """Remove a secret from text that is about to reach a log or an exception."""
    return text.replace(secret, "***") if secret else text


# --- connecting ----------------------------------------------------------------------------


def _nodelay(client: IMAPClient) -> None:
    """APPEND is written in two sends; without TCP_NODELAY Nagle stalls each one (FIELD-NOTES)."""
    with contextlib.suppress(OSError, AttributeError):
        client.socket().setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def _shutdown(client: IMAPClient) -> None:
    with contextlib.suppress(Exception):
        client.shutdown()


def _open(
    account: ImapAccount, timeout: float, *, readonly: bool = True
) -> tuple[IMAPClient, dict[bytes, Any]]:
    """Connect, secure, log in and EXAMINE (or SELECT) the folder; returns client and reply."""
    where = f"{account.host}:{account.port}"
    context = account.ssl_context
    if context is None and account.security != "none":
        context = ssl.create_default_context()
    try:
        client = IMAPClient(
            account.host,
            port=account.port,
            ssl=account.security == "ssl",
            ssl_context=context if account.security == "ssl" else None,
            timeout=timeout,
        )
    except (ssl.SSLError, ssl.CertificateError) as exc:
        raise MailboxError(f"TLS failure talking to IMAP server {where}: {exc}") from exc
    except (OSError, EOFError, imaplib.IMAP4.error, IMAPClientError) as exc:
        raise MailboxError(f"cannot reach IMAP server {where}: {exc}") from exc
    try:
        _nodelay(client)
        if account.security == "starttls" and context is not None:
            _starttls(client, context, where)
        _login(client, account)
        reply = _select(client, account, readonly=readonly)
    except BaseException:
        _shutdown(client)
        raise
    return client, reply


def _starttls(client: IMAPClient, context: ssl.SSLContext, where: str) -> None:
    try:
        client.starttls(context)
    except CapabilityError as exc:
        raise MailboxError(f"IMAP server {where} does not offer STARTTLS") from exc
    except (ssl.SSLError, ssl.CertificateError) as exc:
        raise MailboxError(f"TLS failure talking to IMAP server {where}: {exc}") from exc
    except (OSError, EOFError, imaplib.IMAP4.error, IMAPClientError) as exc:
        raise MailboxError(f"STARTTLS failed with IMAP server {where}: {exc}") from exc
    _nodelay(client)


def _login(client: IMAPClient, account: ImapAccount) -> None:
    who = f"{account.user}@{account.host}"
    try:
        client.login(account.user, account.password)
    except ClientLoginError as exc:
        said = _scrub(str(exc), account.password)
        raise LoginError(f"IMAP login failed for {who}: {said}") from None
    except (OSError, EOFError, imaplib.IMAP4.error, IMAPClientError) as exc:
        said = _scrub(str(exc), account.password)
        raise MailboxError(f"IMAP login for {who} broke off: {said}") from None


def _select(client: IMAPClient, account: ImapAccount, *, readonly: bool = True) -> dict[bytes, Any]:
    try:
        reply: dict[bytes, Any] = client.select_folder(account.folder, readonly=readonly)
    except (imaplib.IMAP4.abort, OSError, EOFError) as exc:
        raise MailboxError(f"lost IMAP server {account.host}:{account.port}: {exc}") from exc
    except (imaplib.IMAP4.error, IMAPClientError) as exc:
        raise MailboxError(
            f"cannot open folder {account.folder!r} of {account.user}@{account.host}: {exc}"
        ) from exc
    return reply


def connect(account: ImapAccount, timeout: float = 30) -> IMAPClient:
    """Log in with the account's TLS mode and EXAMINE its folder (read-only: nothing gets \\Seen).

    Raises LoginError for refused credentials and MailboxError for everything else (host
    unreachable, TLS failure, missing folder); neither ever contains the password.
    """
    client, _ = _open(account, timeout)
    return client


def append_message(
    account: ImapAccount, raw: bytes, folder: str | None = None, flags: Sequence[str] = ()
) -> int | None:
    """APPEND raw mail to ``folder`` (default: the account's); the new UID if the server says it."""
    target = folder or account.folder
    client = connect(account)
    try:
        try:
            response = client.append(target, raw, flags=tuple(flags))
        except (OSError, EOFError, imaplib.IMAP4.error, IMAPClientError) as exc:
            raise MailboxError(
                f"cannot append to folder {target!r} of {account.user}@{account.host}: {exc}"
            ) from exc
    finally:
        _logout(client)
    return appended_uid(response)


def _logout(client: IMAPClient) -> None:
    try:
        client.logout()
    except Exception:
        _shutdown(client)


# --- fetching and failures (shared by the watcher and import_folder) ---------------------------


@dataclass(frozen=True)
class FetchedMessage:
    """One message as read from the server; ``truncated`` when only its start was passed on."""

    raw: bytes
    size: int
    truncated: bool = False
    flags: tuple[str, ...] = ()
    labels: tuple[str, ...] = ()


def fetch_messages(
    client: IMAPClient, batch: list[int], max_bytes: int, label: str, *, meta: bool = False
) -> dict[int, FetchedMessage]:
    """Raw bytes per UID with BODY.PEEK (nothing gets \\Seen); over-sized messages as their
    header plus the first ~1 MB of text, so one huge mail cannot exhaust memory.

    With ``meta`` the same FETCH also reads FLAGS and, on Gmail, X-GM-LABELS.
    """
    extra: list[bytes] = []
    if meta:
        extra.append(b"FLAGS")
        if client.has_capability(GMAIL_CAPABILITY):
            extra.append(b"X-GM-LABELS")
    sizes: dict[int, int] = {}
    for uid, data in client.fetch(batch, [b"RFC822.SIZE"]).items():
        sizes[int(uid)] = int(data.get(b"RFC822.SIZE", 0) or 0)
    small = [uid for uid in batch if uid in sizes and sizes[uid] <= max_bytes]
    large = [uid for uid in batch if uid in sizes and sizes[uid] > max_bytes]
    found: dict[int, FetchedMessage] = {}
    for chunk in size_chunks(small, sizes, max(FETCH_BYTES_BUDGET, max_bytes)):
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


def failure_reason(exc: Exception, message: FetchedMessage) -> str:
    """One line saying why a message could not be handled, for the log."""
    said = " ".join(str(exc).split())[:300]
    reason = said if isinstance(exc, UnprocessableMessage) else f"{type(exc).__name__}: {said}"
    if message.truncated:
        reason += f" (truncated from {message.size} bytes)"
    return reason


def _log_failure(uid: int, message: FetchedMessage, exc: Exception, label: str, then: str) -> None:
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


# --- quarantine ------------------------------------------------------------------------------


def _ensure_folder(client: IMAPClient, folder: str) -> bool:
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
        return _ensure_folder(client, folder)
    except (OSError, EOFError, imaplib.IMAP4.error, IMAPClientError) as exc:
        raise MailboxError(f"cannot create folder {folder!r} of {account.label}: {exc}") from exc
    finally:
        _logout(client)


def move_message(
    client: IMAPClient,
    uid: int,
    folder: str,
    capabilities: Collection[bytes | str] | None = None,
) -> str:
    """Move one UID of the selected (read-write) folder to ``folder``; says what was done."""
    created = _ensure_folder(client, folder)
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
    client, reply = _open(account, timeout, readonly=False)
    try:
        current = int(reply.get(b"UIDVALIDITY", 0))
        if uidvalidity is not None and current != uidvalidity:
            return f"not moved: UIDVALIDITY changed from {uidvalidity} to {current}"
        return move_message(client, uid, folder)
    except (OSError, EOFError, imaplib.IMAP4.error, IMAPClientError) as exc:
        raise MailboxError(
            f"cannot move UID {uid} of {account.label} to {folder!r}: {exc}"
        ) from exc
    finally:
        _logout(client)


# --- backfill --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImportResult:
    """What `import_folder` did: messages read, handled, and failed (logged, not fatal)."""

    seen: int
    handled: int
    failed: int


def import_folder(
    account: ImapAccount,
    folder: str,
    handler: MessageHandler,
    since: date | None = None,
    max_message_bytes: int = 25_000_000,
    timeout: float = 30.0,
) -> ImportResult:
    """Hand every message of ``folder`` (internal date on or after ``since``) to ``handler`` once,
    in UID order, over one read-only connection: nothing gets \\Seen and the watcher's
    checkpoint is never touched, so it is safe next to a running watcher and safe to repeat
    (the handler dedupes by Message-ID).

    Raises LoginError/MailboxError (naming the folder when it does not exist).
    """
    source = dataclasses.replace(account, folder=folder)
    client, _ = _open(source, timeout)
    seen = handled = failed = 0
    try:
        criteria: list[Any] = ["SINCE", since] if since is not None else ["ALL"]
        uids = sorted(int(uid) for uid in client.search(criteria))
        log.info("importing %d messages from %s", len(uids), source.label)
        for batch in uid_batches(uids):
            fetched = fetch_messages(client, batch, max_message_bytes, source.label)
            for uid in batch:
                message = fetched.get(uid)
                if message is None:
                    log.info("UID %d of %s vanished before it was read", uid, source.label)
                    continue
                seen += 1
                try:
                    handler(uid, message.raw)
                except Exception as exc:
                    failed += 1
                    _log_failure(uid, message, exc, source.label, "skipping it")
                else:
                    handled += 1
    except (OSError, EOFError, imaplib.IMAP4.error, IMAPClientError) as exc:
        raise MailboxError(f"lost connection to {source.label} while importing: {exc}") from exc
    finally:
        _logout(client)
    return ImportResult(seen=seen, handled=handled, failed=failed)


def _data_waiting(client: IMAPClient, timeout: float, wake: socket.socket | None = None) -> bool:
    """True when the server sent something (or hung up) while we IDLE, or ``wake`` became
    readable; waits up to ``timeout``.

    imapclient's ``idle_check`` reads lines from a non-blocking socket and fails on a line that
    arrives in pieces (it does with pymap, FIELD-NOTES), so we only *wait* here and let the
    blocking ``idle_done`` read the responses. Bytes already buffered count as waiting.
    """
    sock = client.socket()
    if isinstance(sock, ssl.SSLSocket) and sock.pending():
        return True
    reader = getattr(client._imap, "file", None)
    if reader is not None and hasattr(reader, "peek"):
        previous = sock.gettimeout()
        sock.settimeout(0.0)
        try:
            if reader.peek(1):
                return True
        except (BlockingIOError, ssl.SSLWantReadError, InterruptedError):
            pass
        finally:
            sock.settimeout(previous)
    watched = [sock] if wake is None else [sock, wake]
    if hasattr(select, "poll"):
        poller = select.poll()
        for item in watched:
            poller.register(item, select.POLLIN | select.POLLPRI | select.POLLHUP | select.POLLERR)
        return bool(poller.poll(timeout * 1000))
    ready, _, _ = select.select(watched, [], [], timeout)
    return bool(ready)


def _take_exists(client: IMAPClient) -> bool:
    """Whether the server announced a mailbox size (untagged EXISTS) since the last call.

    imaplib keeps the untagged responses a command did not ask for; this consumes EXISTS.
    """
    responses = getattr(client._imap, "untagged_responses", None)
    return isinstance(responses, dict) and responses.pop("EXISTS", None) is not None


# --- the watcher ---------------------------------------------------------------------------


class MailboxWatcher:
    """Feeds every new message of one mailbox to ``handler``, exactly once in the normal case.

    Give either ``handler`` (uid, raw) or ``meta_handler`` (uid, raw, MessageMeta): the latter
    also gets each message's flags and Gmail labels, read in the same FETCH as its body.

    The checkpoint advances after each message (handled or failed), so a crash re-delivers at
    most the message in flight; the handler dedupes by Message-ID. A message the handler fails
    on is logged and, with ``quarantine_folder``, moved there so it can be looked at (and
    moved back to be tried again). ``stop()`` is final.
    """

    def __init__(
        self,
        account: ImapAccount,
        checkpoints: CheckpointStore,
        handler: MessageHandler | None = None,
        *,
        meta_handler: MetaHandler | None = None,
        leases: LeaseStore | None = None,
        owner: str | None = None,
        idle_renew: float = 540.0,
        poll_interval: float = 30.0,
        max_message_bytes: int = 25_000_000,
        backoff_initial: float = 1.0,
        backoff_max: float = 300.0,
        use_idle: bool = True,
        lease_ttl: float = 60.0,
        timeout: float = 30.0,
        quarantine_folder: str | None = None,
    ) -> None:
        if (handler is None) == (meta_handler is None):
            raise TypeError("MailboxWatcher needs exactly one of handler and meta_handler")
        self.account = account
        self._checkpoints = checkpoints
        self._handler = handler
        self._meta_handler = meta_handler
        self._leases = leases
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._idle_renew = idle_renew
        self._poll_interval = poll_interval
        self._max_bytes = max_message_bytes
        self._backoff_initial = backoff_initial
        self._backoff_max = backoff_max
        self._use_idle = use_idle
        self._lease_ttl = lease_ttl
        self._lease_renew = min(20.0, lease_ttl / 3)
        self._timeout = timeout
        self.quarantine_folder = quarantine_folder or None
        self.lease_name = f"watch:{account.key}"

        self._stop = threading.Event()
        self._lock = threading.RLock()
        self._running = False
        self._wake_lock = threading.Lock()
        self._wake: tuple[socket.socket, socket.socket] | None = None
        self._client: IMAPClient | None = None
        self._uidvalidity = 0
        self._lease_held = False
        self._lease_checked = 0.0
        self._standby_logged = False

    # public API

    def catch_up(self) -> int:
        """Connect if needed and hand over every message above the checkpoint; returns the count.

        Returns 0 without connecting when another watcher holds the lease.
        """
        with self._lock:
            if not self._hold_lease():
                return 0
            try:
                count = self._process_new(self._connected())
            except MailboxError:
                self._disconnect()
                raise
            except _CONNECTION_ERRORS as exc:
                self._disconnect()
                raise MailboxError(f"lost connection to {self.account.label}: {exc}") from exc
            if count:
                noun = "message" if count == 1 else "messages"
                log.info("caught up on %s: %d new %s", self.account.label, count, noun)
            else:
                log.debug("caught up on %s: nothing new", self.account.label)
            return count

    def run(self) -> None:
        """Watch until ``stop()``: catch up, IDLE (or poll), and reconnect after any failure."""
        with self._wake_lock:
            self._running = True
            self._wake = socket.socketpair()  # stop() writes here to end an IDLE at once
        log.info("watching %s as %s", self.account.label, self.owner)
        failures = 0
        try:
            while not self._stop.is_set():
                try:
                    if not self._hold_lease():
                        self._disconnect()
                        self._sleep(self._lease_renew)
                        continue
                    self.catch_up()
                    if failures:
                        log.info("reconnected to %s", self.account.label)
                    failures = 0
                    self._wait_for_news()
                except LoginError as exc:
                    log.error("%s; check the password. Retrying in %.0f s", exc, self._backoff_max)
                    self._disconnect()
                    self._sleep(self._backoff_max)
                except Exception as exc:
                    delay = backoff_delay(
                        failures, self._backoff_initial, self._backoff_max, random.random()
                    )
                    failures += 1
                    if isinstance(exc, _CONNECTION_ERRORS):
                        log.warning(
                            "connection to %s failed: %s; reconnecting in %.1f s",
                            self.account.label,
                            _scrub(str(exc), self.account.password) or type(exc).__name__,
                            delay,
                        )
                    else:
                        log.exception(
                            "unexpected error watching %s; retrying in %.1f s",
                            self.account.label,
                            delay,
                        )
                    self._disconnect()
                    self._sleep(delay)
        finally:
            with self._wake_lock:
                self._running = False
                for end in self._wake or ():
                    end.close()
                self._wake = None
            self.close()
            log.info("stopped watching %s", self.account.label)

    def stop(self) -> None:
        """Ask ``run()`` to return (at once, unless mid-fetch); safe from any thread, final."""
        self._stop.set()
        with self._wake_lock:
            running = self._running
            if self._wake is not None:
                with contextlib.suppress(OSError):
                    self._wake[1].send(b"!")
        if not running:
            self.close()

    def close(self) -> None:
        """Log out and release the lease; safe to call many times."""
        with self._lock:
            self._disconnect()
            if self._leases is not None and self._lease_held:
                self._lease_held = False
                try:
                    self._leases.release_lease(self.lease_name, self.owner)
                except Exception as exc:
                    log.warning("could not release lease %s: %s", self.lease_name, exc)

    # connection

    def _connected(self) -> IMAPClient:
        if self._client is None:
            client, reply = _open(self.account, self._timeout)
            self._client = client
            self._uidvalidity = int(reply.get(b"UIDVALIDITY", 0))
            log.info("connected to %s (UIDVALIDITY %d)", self.account.label, self._uidvalidity)
        return self._client

    def _disconnect(self) -> None:
        client, self._client = self._client, None
        if client is None:
            return
        try:
            client.socket().settimeout(2.0)
            client.logout()
        except Exception:
            _shutdown(client)

    # leases

    def _hold_lease(self) -> bool:
        """True while this watcher holds the mailbox lease, renewing it when due."""
        if self._leases is None:
            return True
        now = time.monotonic()
        if self._lease_held and now - self._lease_checked < self._lease_renew:
            return True
        ttl = timedelta(seconds=self._lease_ttl)
        try:
            held = self._leases.acquire_lease(self.lease_name, self.owner, ttl)
        except Exception as exc:
            # Without the store we cannot know who holds the lease: stand by until it answers.
            log.warning("cannot take lease %s (%s); standing by", self.lease_name, exc)
            self._lease_held = False
            self._lease_checked = now
            self._standby_logged = False
            return False
        self._lease_checked = now
        if held and not self._lease_held:
            log.info("holding lease %s", self.lease_name)
            self._standby_logged = False
        elif not held and self._lease_held:
            log.warning("lost lease %s to another watcher; standing by", self.lease_name)
            self._standby_logged = True
        elif not held and not self._standby_logged:
            log.info("another watcher holds %s; standing by", self.lease_name)
            self._standby_logged = True
        self._lease_held = held
        return held

    # processing

    def _start_uid(self) -> int:
        """The last handled UID, honouring UIDVALIDITY: a changed one means re-scan from UID 1."""
        checkpoint = self._checkpoints.get_checkpoint(self.account.key)
        if checkpoint is None:
            return 0
        uidvalidity, last_uid = checkpoint
        if uidvalidity != self._uidvalidity:
            log.warning(
                "UIDVALIDITY of %s changed from %d to %d: re-scanning from UID 1",
                self.account.label,
                uidvalidity,
                self._uidvalidity,
            )
            self._checkpoints.set_checkpoint(self.account.key, self._uidvalidity, 0)
            return 0
        return last_uid

    def _process_new(self, client: IMAPClient) -> int:
        """Search and hand over until a search ran with no new mail announced during it.

        A server may announce a message (untagged EXISTS) in the same reply as a SEARCH that
        was evaluated just before it arrived, and will not announce it again in IDLE: so any
        EXISTS seen during a round means one more round (pymap does this under load).
        """
        count = 0
        client.noop()  # some servers only reveal new mail after a command
        while not self._stop.is_set():
            _take_exists(client)  # everything announced so far is visible to this search
            last_uid = self._start_uid()
            found = client.search(["UID", f"{last_uid + 1}:*"])
            uids = sorted(int(uid) for uid in found if int(uid) > last_uid)
            handled, finished = self._process_uids(client, uids)
            count += handled
            if not finished or not _take_exists(client):
                break
        return count

    def _process_uids(self, client: IMAPClient, uids: list[int]) -> tuple[int, bool]:
        """Hand over ``uids`` in order; returns (how many, whether all were done)."""
        count = 0
        for batch in uid_batches(uids):
            if self._stop.is_set():
                return count, False
            fetched = fetch_messages(
                client,
                batch,
                self._max_bytes,
                self.account.label,
                meta=self._meta_handler is not None,
            )
            for uid in batch:
                if self._stop.is_set() or not self._hold_lease():
                    return count, False
                message = fetched.get(uid)
                if message is None:
                    log.info("UID %d of %s vanished before it was read", uid, self.account.label)
                else:
                    self._deliver(uid, message)
                    count += 1
                self._checkpoints.set_checkpoint(self.account.key, self._uidvalidity, uid)
        return count, True

    def _deliver(self, uid: int, message: FetchedMessage) -> None:
        """Run the handler; a failure is logged (and quarantined) so one poison message blocks
        nothing. The caller advances the checkpoint past it either way."""
        try:
            if self._meta_handler is not None:
                meta = MessageMeta(self.account.folder, message.flags, message.labels)
                self._meta_handler(uid, message.raw, meta)
            elif self._handler is not None:
                self._handler(uid, message.raw)
        except Exception as exc:
            folder = self.quarantine_folder
            then = f"moving it to {folder!r}" if folder else "skipping it"
            _log_failure(uid, message, exc, self.account.label, then)
            if folder:
                self._quarantine(uid, message, folder)

    def _quarantine(self, uid: int, message: FetchedMessage, folder: str) -> None:
        """Best effort: a failed move is logged and the message stays where it is."""
        message_id = message_id_of(message.raw) or "unknown"
        if folder == self.account.folder:
            log.warning("quarantine folder %r is the watched folder: UID %d stays", folder, uid)
            return
        try:
            done = quarantine_message(
                self.account, uid, folder, uidvalidity=self._uidvalidity, timeout=self._timeout
            )
        except Exception as exc:
            log.warning(
                "could not quarantine UID %d (Message-ID %s) of %s: %s; it stays in %r",
                uid,
                message_id,
                self.account.label,
                _scrub(str(exc), self.account.password) or type(exc).__name__,
                self.account.folder,
            )
            return
        log.info(
            "quarantined UID %d (Message-ID %s) of %s: %s",
            uid,
            message_id,
            self.account.label,
            done,
        )

    # waiting

    def _wait_for_news(self) -> None:
        client = self._client
        if client is None or self._stop.is_set():
            return
        if self._use_idle and client.has_capability("IDLE"):
            self._idle(client)
        else:
            self._sleep(self._poll_interval)

    def _idle(self, client: IMAPClient) -> None:
        """IDLE until the server says something, the renew time passes, or stop() is called."""
        client.idle()
        try:
            deadline = time.monotonic() + self._idle_renew
            # an EXISTS read together with the IDLE continuation is not on the socket any more
            while not self._stop.is_set() and not _take_exists(client):
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not self._hold_lease():
                    break
                wake = self._wake[0] if self._wake else None
                if _data_waiting(client, min(1.0, remaining), wake):
                    break
        finally:
            client.idle_done()

    def _sleep(self, seconds: float) -> None:
        """Wait, waking at least every second for stop() and to keep a held lease fresh."""
        deadline = time.monotonic() + seconds
        while not self._stop.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            if self._lease_held and not self._hold_lease():
                return
            self._stop.wait(min(1.0, remaining))
