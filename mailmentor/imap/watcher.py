"""The MailboxWatcher: the only way live mail enters mailmentor, built to never lose a message
and never stop.

UID checkpoints after every fetch batch (a message read again changes nothing), UIDVALIDITY
respected, IDLE with a polling fallback, reconnects with backoff, a fenced lease so two watchers
of one mailbox never both work (a dead holder's taken over at once), and an optional quarantine
folder for the messages it could not use. When the store cannot take a message (Redis down,
slow, failing over), the checkpoint stays before it and the watcher waits and tries that message
again: only a message that is itself unusable is ever skipped.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import random
import select
import socket
import ssl
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta
from typing import Protocol, TypeVar

from imapclient import IMAPClient
from imapclient.imap_utf7 import encode as utf7_encode

from mailmentor.backoff import backoff_delay
from mailmentor.clock import Clock, SystemClock
from mailmentor.errors import FolderNotFound, LoginError, MailboxError, StoreUnavailable
from mailmentor.health_report import WatcherState, WatchMode
from mailmentor.imap.account import (
    CONNECTION_ERRORS,
    ImapAccount,
    open_folder,
    scrub_secret,
    shutdown,
)
from mailmentor.imap.failures import log_failure, message_id_of
from mailmentor.imap.fetching import GMAIL_CAPABILITY, FetchedMessage, fetch_messages, uid_batches
from mailmentor.imap.folders import folder_names, quarantine_message
from mailmentor.imap.handlers import (
    BatchNotice,
    Marking,
    MessageHandler,
    MessageMeta,
    MetaHandler,
)
from mailmentor.liveness import describe_owner, this_process
from mailmentor.oauth.endpoints import AuthorizationNeeded
from mailmentor.store.client import is_transient
from mailmentor.store.health import BEATS_PER_TTL, stamp
from mailmentor.store.leases import Fence, Held, HeldByOther

log = logging.getLogger("mailmentor.imap")  # one logger name for the whole package

#: A standing-by watcher asks for the lease this often (seconds).
STANDBY_CHECK = 2.0
#: While an OAuth2 authorisation waits to be renewed, the watcher tries again this often.
REAUTHORIZATION_CHECK = 5.0
#: A missing folder is looked for again this often (seconds), quietly.
FOLDER_RECHECK = 60.0
#: The folders named in the hint when the watched one does not exist.
FOLDERS_SHOWN = 8


class CheckpointStore(Protocol):
    """Remembers, per mailbox, the last UID fully handled and the UIDVALIDITY it belongs to.

    ``fence`` (lease name, value) makes the write conditional on still holding the lease; the
    answer is False when it was refused for that reason."""

    def get_checkpoint(self, mailbox: str) -> tuple[int, int] | None: ...

    def set_checkpoint(
        self, mailbox: str, uidvalidity: int, last_uid: int, fence: Fence | None = None
    ) -> bool: ...


class MarkStore(Protocol):
    """Remembers which messages were handed over as marked, so a mark set later counts once."""

    def unhandled_marks(self, mailbox: str, uidvalidity: int, uids: Sequence[int]) -> list[int]:
        """The UIDs among ``uids`` not yet handed over as marked."""
        ...

    def handled_marks(self, mailbox: str, uidvalidity: int, uids: Sequence[int]) -> None: ...


class LeaseStore(Protocol):
    """A named lease with a TTL and a fencing token; acquiring one already held by ``owner``
    renews it. A holder that is provably dead loses it at once."""

    def acquire(self, name: str, owner: str, ttl: timedelta) -> Held | HeldByOther: ...

    def release(self, name: str, owner: str) -> None: ...


class HealthSink(Protocol):
    """Where the acting watcher keeps its record (`mailmentor.store.health.Health`): written at
    its edges (login, each sync, each error), never per message."""

    def watcher_update(
        self,
        mailbox: str,
        owner: str,
        fields: Mapping[str, str],
        beat: timedelta | None,
        count: str = "",
    ) -> None: ...

    def watcher_beat(self, mailbox: str, owner: str, ttl: timedelta) -> None: ...


T = TypeVar("T")


def store_call(uid: int, call: Callable[[], T]) -> T:
    """``call()``; a store failure worth waiting out becomes StoreUnavailable (at ``uid``)."""
    try:
        return call()
    except Exception as exc:
        if is_transient(exc):
            raise StoreUnavailable(uid, exc) from exc
        raise


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


class MailboxWatcher:
    """Feeds every new message of one mailbox to ``handler``, exactly once in the normal case.

    Give either ``handler`` (uid, raw) or ``meta_handler`` (uid, raw, MessageMeta): the latter
    also gets each message's flags and Gmail labels, read in the same FETCH as its body.
    With a ``marking`` (mailbox mode), a message marked after it was read is handed over once
    more, as marked, on the next catch-up (IDLE reports flag changes, so that is soon).
    ``prepare`` is told each fetched batch first (`ParsePool.ahead`).

    The checkpoint advances after each fetch batch (one store write per batch, not per message),
    so a crash re-delivers at most that batch, and the handler recognises each message it
    applied. When the store cannot take a message
    (StoreUnavailable) the checkpoint stays before it and the watcher waits and tries it again;
    a message the handler fails on for any other reason is logged and, with
    ``quarantine_folder``, moved there so it can be looked at (and moved back to be tried
    again), and the checkpoint moves past it. ``stop()`` is final.
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
        marking: Marking | None = None,
        marks: MarkStore | None = None,
        store_backoff_max: float = 30.0,
        prepare: BatchNotice | None = None,
        health: HealthSink | None = None,
        heartbeat_ttl: float = 30.0,
        clock: Clock | None = None,
        folder_setting: str = "",
        watched_too: Sequence[str] = (),
        folder_recheck: float = FOLDER_RECHECK,
    ) -> None:
        if (handler is None) == (meta_handler is None):
            raise TypeError("MailboxWatcher needs exactly one of handler and meta_handler")
        if marking is not None and (meta_handler is None or marks is None):
            raise TypeError("MailboxWatcher needs meta_handler and marks to follow a marking")
        self.account = account
        self._checkpoints = checkpoints
        self._handler = handler
        self._meta_handler = meta_handler
        self._leases = leases
        self.owner = owner or f"{this_process()}/{uuid.uuid4().hex[:8]}"
        self._idle_renew = idle_renew
        self._poll_interval = poll_interval
        self._max_bytes = max_message_bytes
        self._backoff_initial = backoff_initial
        self._backoff_max = backoff_max
        self._store_backoff_max = store_backoff_max
        self._use_idle = use_idle
        self._lease_ttl = lease_ttl
        self._lease_renew = min(20.0, lease_ttl / 3)
        self._timeout = timeout
        self.quarantine_folder = quarantine_folder or None
        self._marking = marking if marking and (marking.keyword or marking.gmail_label) else None
        self._marks = marks
        self._prepare = prepare
        self.lease_name = f"watch:{account.key}"
        self._health = health
        self._heartbeat_ttl = timedelta(seconds=heartbeat_ttl)
        self._beat_every = heartbeat_ttl / BEATS_PER_TTL
        self._beat_at = float("-inf")
        self._clock: Clock = clock or SystemClock()
        #: The setting that names this folder (for the hint when it does not exist), and the
        #: folders other watchers watch meanwhile.
        self._folder_setting = folder_setting
        self._watched_too = tuple(watched_too)
        self._folder_recheck = folder_recheck
        #: Set once this watcher is under way: logged in, standing by, or told the folder is
        #: missing (the login worked). The service says "running" only then.
        self.started = threading.Event()
        self._logged_in = False
        self._recorded = False
        self._folder_missing_logged = False
        self._attempt = 0

        self._stop = threading.Event()
        self._lock = threading.RLock()
        self._running = False
        self._wake_lock = threading.Lock()
        self._wake: tuple[socket.socket, socket.socket] | None = None
        self._client: IMAPClient | None = None
        self._uidvalidity = 0
        self._lease_held = False
        self._lease: Held | None = None
        self._lease_checked = 0.0
        self._standby_logged = False
        self._reauthorization_logged = False

    # public API

    @property
    def acting(self) -> bool:
        """Whether this watcher holds the mailbox's lease (or needs none)."""
        return self._leases is None or self._lease_held

    def catch_up(self, *, log_level: int = logging.INFO) -> int:
        """Connect if needed and hand over every message above the checkpoint; returns the count
        (said at ``log_level``: a caller that sums the catch-up up itself lowers it).

        Returns 0 without connecting when another watcher holds the lease.
        """
        with self._lock:
            if not self._hold_lease():
                return 0
            try:
                client = self._connected()
                count = self._process_new(client)
                count += self._process_marked(client)
            except StoreUnavailable:
                raise  # the connection is fine; the caller waits for the store
            except MailboxError:
                self._disconnect()
                raise
            except CONNECTION_ERRORS as exc:
                self._disconnect()
                raise MailboxError(f"lost connection to {self.account.label}: {exc}") from exc
            self._record({"last_sync": stamp(self._clock.now())})
            if count:
                noun = "message" if count == 1 else "messages"
                log.log(log_level, "caught up on %s: %d new %s", self.account.label, count, noun)
            else:
                log.debug("caught up on %s: nothing new", self.account.label)
            return count

    def run(self) -> None:
        """Watch until ``stop()``: catch up, IDLE (or poll), and reconnect after any failure."""
        with self._wake_lock:
            self._running = True
            self._wake = socket.socketpair()  # stop() writes here to end an IDLE at once
        log.info("watching %s as %s", self.account.label, describe_owner(self.owner))
        failures = 0
        try:
            while not self._stop.is_set():
                try:
                    if not self._hold_lease():
                        self._disconnect()
                        # Ask again soon: a holder that died on this machine is taken over at
                        # once; a live one keeps renewing and we keep standing by.
                        self._sleep(min(self._lease_renew, STANDBY_CHECK))
                        continue
                    self.catch_up()
                    if failures:
                        log.info("reconnected to %s", self.account.label)
                    if self._reauthorization_logged:
                        log.info("signed in to %s again", self.account.label)
                        self._reauthorization_logged = False
                    failures = 0
                    self._attempt = 0
                    self._wait_for_news()
                except AuthorizationNeeded as exc:
                    # Said once; then a look in the store every few seconds (neither the mail
                    # server nor the provider is asked) until `connect` is run again.
                    if not self._reauthorization_logged:
                        log.error("%s; new mail waits for it, nothing is lost", exc)
                        self._reauthorization_logged = True
                        self._record(
                            {
                                "state": WatcherState.REAUTHORISATION,
                                **self._error_fields(str(exc)),
                            }
                        )
                    self._disconnect()
                    self._wait_until_usable()
                except LoginError as exc:
                    what = "the OAuth2 grant" if self.account.token else "the password"
                    attempt = self._retrying(str(exc), self._backoff_max)
                    log.error(
                        "%s; check %s. Retrying in %.0f s (attempt %d)",
                        exc,
                        what,
                        self._backoff_max,
                        attempt,
                    )
                    self._disconnect()
                    self._sleep(self._backoff_max)
                except FolderNotFound as exc:
                    self._folder_missing(exc)
                    self._disconnect()
                    self._sleep(self._folder_recheck)
                except StoreUnavailable as exc:
                    delay = backoff_delay(
                        failures, self._backoff_initial, self._store_backoff_max, random.random()
                    )
                    failures += 1
                    log.warning(
                        "store unavailable while handling %s of %s (%s); trying it again in %.1f s",
                        f"UID {exc.uid}",
                        self.account.label,
                        " ".join(str(exc.cause).split())[:200] or type(exc.cause).__name__,
                        delay,
                    )
                    self._sleep(delay)
                except Exception as exc:
                    delay = backoff_delay(
                        failures, self._backoff_initial, self._backoff_max, random.random()
                    )
                    failures += 1
                    self._failed(exc, delay)
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

    def _failed(self, exc: Exception, delay: float) -> None:
        """Say (and record) a failed try: connecting before the first login, reconnecting
        after it, a traceback only for the unexpected."""
        reason = scrub_secret(str(exc), self.account.password) or type(exc).__name__
        attempt = self._retrying(reason, delay)
        if isinstance(exc, CONNECTION_ERRORS) and not self._logged_in:
            log.warning(
                "connecting to %s: retrying (attempt %d, next in %.0f s): %s",
                self.account.label,
                attempt,
                delay,
                reason,
            )
        elif isinstance(exc, CONNECTION_ERRORS):
            log.warning(
                "connection to %s failed: %s; reconnecting in %.1f s (attempt %d)",
                self.account.label,
                reason,
                delay,
                attempt,
            )
        else:
            log.exception(
                "unexpected error watching %s; retrying in %.1f s", self.account.label, delay
            )

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
            if self._recorded:
                self._record({"state": WatcherState.STOPPED}, beat=False)
                self._recorded = False
            if self._leases is not None and self._lease_held:
                self._lease_held = False
                self._lease = None
                try:
                    self._leases.release(self.lease_name, self.owner)
                except Exception as exc:
                    log.warning("could not release lease %s: %s", self.lease_name, exc)

    # connection

    def _connected(self) -> IMAPClient:
        if self._client is None:
            client, reply = open_folder(self.account, self._timeout)
            self._client = client
            self._uidvalidity = int(reply.get(b"UIDVALIDITY", 0))
            log.info("connected to %s (UIDVALIDITY %d)", self.account.label, self._uidvalidity)
            if self._folder_missing_logged:
                log.info("folder %r exists now: watching it", self.account.folder)
                self._folder_missing_logged = False
            idle = self._use_idle and client.has_capability("IDLE")
            fields = {
                "state": WatcherState.RUNNING,
                "mode": WatchMode.IDLE if idle else WatchMode.POLLING,
                "sync_every": str(self._idle_renew if idle else self._poll_interval),
                **self._retry_fields(0, "", ""),
                "existing": "",
            }
            if not self._logged_in:
                fields["logged_in_at"] = stamp(self._clock.now())
                self._logged_in = True
            self._record(fields)
            self.started.set()
        return self._client

    def _disconnect(self) -> None:
        client, self._client = self._client, None
        if client is None:
            return
        try:
            client.socket().settimeout(2.0)
            client.logout()
        except Exception:
            shutdown(client)

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
            result = self._leases.acquire(self.lease_name, self.owner, ttl)
        except Exception as exc:
            # Without the store we cannot know who holds the lease: stand by until it answers.
            log.warning("cannot take lease %s (%s); standing by", self.lease_name, exc)
            self._lease_held = False
            self._lease = None
            self._lease_checked = now
            self._standby_logged = False
            return False
        self._lease_checked = now
        held = isinstance(result, Held)
        self._lease = result if isinstance(result, Held) else None
        if held and not self._lease_held:
            log.info("holding the lease on %s", self.account.label)
            self._standby_logged = False
        elif not held and self._lease_held:
            log.warning("lost the lease on %s to another watcher; standing by", self.account.label)
            self._standby_logged = True
        elif not held and not self._standby_logged:
            log.info("another watcher holds the lease on %s; standing by", self.account.label)
            self._standby_logged = True
        self._lease_held = held
        if not held:
            self.started.set()  # under way: standing by
        return held

    # processing

    def _start_uid(self) -> int:
        """The last handled UID, honouring UIDVALIDITY: a changed one means re-scan from UID 1."""
        checkpoint = store_call(0, lambda: self._checkpoints.get_checkpoint(self.account.key))
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
            store_call(
                0, lambda: self._checkpoints.set_checkpoint(self.account.key, self._uidvalidity, 0)
            )
            self._record({}, count="uidvalidity_resets")
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
        """Hand over ``uids`` in order, a fetch batch at a time; returns (how many, whether all
        were done)."""
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
            self._beat()  # a long catch-up is not a stuck watcher
            self._announce(batch, fetched)
            handled, finished = self._process_batch(batch, fetched)
            self._record({"progress_at": stamp(self._clock.now())})  # one write per batch
            count += handled
            if not finished:
                return count, False
        return count, True

    def _process_batch(
        self, batch: list[int], fetched: dict[int, FetchedMessage]
    ) -> tuple[int, bool]:
        """Hand over one fetched batch; returns (how many, whether all were done).

        The checkpoint moves once per batch, past the messages of it handed over (and at once
        past one moved to quarantine, which is not in the folder to be read again). A message
        read again after a crash changes nothing: its effect and its applied mark were written
        in one step. Before a StoreUnavailable is passed on, the checkpoint is moved to just
        before the message the store could not take (if the store takes that).
        """
        count = 0
        done = 0  # the last UID handed over, not yet checkpointed
        try:
            for uid in batch:
                if self._stop.is_set() or not self._hold_lease():
                    if done and (self._leases is None or self._lease_held):
                        self._advance(done)  # stopping: keep what was done (a lost lease: not)
                    return count, False
                message = fetched.get(uid)
                if message is None:
                    log.info("UID %d of %s vanished before it was read", uid, self.account.label)
                    done = uid
                    continue
                moved = self._deliver(uid, message)
                count += 1
                if self._is_marked(message):
                    self._remember_mark(uid)
                done = uid
                if moved:
                    done = 0
                    if not self._advance(uid):
                        return count, False
        except StoreUnavailable:
            if done:
                with contextlib.suppress(StoreUnavailable):
                    self._advance(done)
            raise
        if done and not self._advance(done):
            return count, False
        return count, True

    def _announce(self, batch: Sequence[int], fetched: dict[int, FetchedMessage]) -> None:
        if self._prepare is not None:
            self._prepare([fetched[uid].raw for uid in batch if uid in fetched])

    def _advance(self, uid: int) -> bool:
        """Move the checkpoint to ``uid``, fenced by our lease; False if the lease is gone."""
        fence = (self.lease_name, self._lease.value) if self._lease is not None else None
        moved = store_call(
            uid,
            lambda: self._checkpoints.set_checkpoint(
                self.account.key, self._uidvalidity, uid, fence=fence
            ),
        )
        if moved is False:
            log.warning("lost the lease on %s to another watcher; standing by", self.account.label)
            self._lease_held = False
            self._lease = None
            self._standby_logged = True
            return False
        return True

    def _process_marked(self, client: IMAPClient) -> int:
        """Hand over, once, each message read before and marked since (e.g. a keyword set by
        the user's mail client days after the mail arrived)."""
        if self._marking is None or self._marks is None or self._stop.is_set():
            return 0
        checkpoint = store_call(0, lambda: self._checkpoints.get_checkpoint(self.account.key))
        if checkpoint is None or checkpoint[0] != self._uidvalidity:
            return 0
        found: set[int] = set()
        for criteria in self._mark_searches(client):
            found.update(int(uid) for uid in client.search(criteria))
        read = sorted(uid for uid in found if uid <= checkpoint[1])
        marks = self._marks
        fresh = (
            store_call(0, lambda: marks.unhandled_marks(self.account.key, self._uidvalidity, read))
            if read
            else []
        )
        count = 0
        for batch in uid_batches(fresh):
            fetched = fetch_messages(client, batch, self._max_bytes, self.account.label, meta=True)
            marked = [uid for uid in batch if uid in fetched and self._is_marked(fetched[uid])]
            self._announce(marked, fetched)
            for uid in batch:
                if self._stop.is_set() or not self._hold_lease():
                    return count
                message = fetched.get(uid)
                if message is None or not self._is_marked(message):
                    continue  # gone, or unmarked again since the search
                log.info("UID %d of %s was marked since it was read", uid, self.account.label)
                self._deliver(uid, message)
                self._remember_mark(uid)
                count += 1
        return count

    def _mark_searches(self, client: IMAPClient) -> list[list[str | bytes]]:
        marking = self._marking
        if marking is None:
            return []
        searches: list[list[str | bytes]] = []
        if marking.keyword:
            searches.append(["KEYWORD", marking.keyword])
        if marking.gmail_label and client.has_capability(GMAIL_CAPABILITY):
            searches.append(["X-GM-LABELS", utf7_encode(marking.gmail_label)])
        return searches

    def _is_marked(self, message: FetchedMessage) -> bool:
        return self._marking is not None and self._marking.marks(message.flags, message.labels)

    def _remember_mark(self, uid: int) -> None:
        marks = self._marks
        if marks is not None:
            store_call(uid, lambda: marks.handled_marks(self.account.key, self._uidvalidity, [uid]))

    def _deliver(self, uid: int, message: FetchedMessage) -> bool:
        """Run the handler. If the store could not take the message, StoreUnavailable: the
        checkpoint stays before it and it is tried again. Any other failure is logged (and
        quarantined) so one poison message blocks nothing; the caller then moves past it.
        True when the message was moved to quarantine."""
        try:
            if self._meta_handler is not None:
                meta = MessageMeta(self.account.folder, message.flags, message.labels)
                self._meta_handler(uid, message.raw, meta)
            elif self._handler is not None:
                self._handler(uid, message.raw)
            return False
        except Exception as exc:
            if is_transient(exc):
                raise StoreUnavailable(uid, exc) from exc
            folder = self.quarantine_folder
            then = f"moving it to {folder!r}" if folder else "skipping it"
            log_failure(uid, message, exc, self.account.label, then)
            self._record({}, count="failed_messages")
            if not folder:
                return False
            return self._quarantine(uid, message, folder)

    def _quarantine(self, uid: int, message: FetchedMessage, folder: str) -> bool:
        """Best effort: a failed move is logged and the message stays where it is (False)."""
        message_id = message_id_of(message.raw) or "unknown"
        if folder == self.account.folder:
            log.warning("quarantine folder %r is the watched folder: UID %d stays", folder, uid)
            return False
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
                scrub_secret(str(exc), self.account.password) or type(exc).__name__,
                self.account.folder,
            )
            return False
        log.info(
            "quarantined UID %d (Message-ID %s) of %s: %s",
            uid,
            message_id,
            self.account.label,
            done,
        )
        self._record({}, count="quarantined")
        return True

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
                self._beat()
                wake = self._wake[0] if self._wake else None
                if _data_waiting(client, min(1.0, remaining), wake):
                    break
        finally:
            client.idle_done()

    def _wait_until_usable(self) -> None:
        """Until the account's OAuth2 tokens can be used again (or stop())."""
        tokens = self.account.token
        while not self._stop.is_set():
            self._sleep(REAUTHORIZATION_CHECK)
            try:
                if tokens is None or tokens.usable():
                    return
            except Exception:  # the store is away: try the login, which says why
                return

    def _sleep(self, seconds: float) -> None:
        """Wait, waking at least every second for stop() and to keep a held lease fresh."""
        deadline = time.monotonic() + seconds
        while not self._stop.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            if self._lease_held and not self._hold_lease():
                return
            self._beat()
            self._stop.wait(min(1.0, remaining, self._beat_every))

    # health

    def _record(self, fields: Mapping[str, str], count: str = "", *, beat: bool = True) -> None:
        """Keep ``fields`` (and ``count`` + 1) in this mailbox's health record, and renew the
        heartbeat (``beat``) or end it: only the watcher acting for the mailbox writes, and a
        failed write never stops the watcher."""
        if self._health is None or not (self._leases is None or self._lease_held):
            return
        base = {
            "label": self.account.label,
            "folder": self.account.folder,
            "beat_ttl": str(self._heartbeat_ttl.total_seconds()),
        }
        try:
            self._health.watcher_update(
                self.account.key,
                self.owner,
                {**base, **fields},
                self._heartbeat_ttl if beat else None,
                count,
            )
        except Exception as exc:
            log.debug("could not write the health record of %s: %s", self.account.label, exc)
            return
        self._recorded = True
        if beat:
            self._beat_at = time.monotonic()

    def _beat(self) -> None:
        """Renew the heartbeat when due (six times per heartbeat TTL)."""
        if self._health is None or not self._recorded:
            return
        if time.monotonic() - self._beat_at < self._beat_every:
            return
        if not (self._leases is None or self._lease_held):
            return
        self._beat_at = time.monotonic()
        try:
            self._health.watcher_beat(self.account.key, self.owner, self._heartbeat_ttl)
        except Exception as exc:
            log.debug("could not renew the heartbeat of %s: %s", self.account.label, exc)

    def _error_fields(self, text: str) -> dict[str, str]:
        return {"error": " ".join(text.split())[:300], "error_at": stamp(self._clock.now())}

    def _retry_fields(self, attempt: int, next_at: str, reason: str) -> dict[str, str]:
        return {"attempt": str(attempt), "next_at": next_at, "reason": reason}

    def _retrying(self, reason: str, delay: float) -> int:
        """Count one more failed try and record when the next one comes; returns its number."""
        self._attempt += 1
        now = self._clock.now()
        state = WatcherState.RETRYING if self._logged_in else WatcherState.CONNECTING
        self._record(
            {
                "state": state,
                **self._retry_fields(
                    self._attempt, stamp(now + timedelta(seconds=delay)), reason[:300]
                ),
                **self._error_fields(reason),
            }
        )
        return self._attempt

    def _folder_missing(self, exc: FolderNotFound) -> None:
        """The folder does not exist (the login worked): said once, with what to do; then it is
        looked for again every ``folder_recheck`` seconds, quietly."""
        self.started.set()
        if self._folder_missing_logged:
            log.debug("folder %r of %s still missing", self.account.folder, self.account.label)
            return
        self._folder_missing_logged = True
        existing = self._existing_folders()
        self._record(
            {
                "state": WatcherState.FOLDER_MISSING,
                "existing": "\n".join(existing),
                **self._retry_fields(0, "", ""),
                **self._error_fields(str(exc)),
            }
        )
        log.error("%s", self._missing_hint(existing))

    def _missing_hint(self, existing: Sequence[str]) -> str:
        folder = self.account.folder
        where = f"{self.account.user} on {self.account.host}:{self.account.port}"
        setting = f"set {self._folder_setting} to" if self._folder_setting else "watch"
        shown = ", ".join(existing[:FOLDERS_SHOWN])
        if len(existing) > FOLDERS_SHOWN:
            shown += f" (and {len(existing) - FOLDERS_SHOWN} more)"
        fix = f"create it, or {setting} one of the folders that exist: {shown}"
        if not existing:
            fix = f"create it, or {setting} a folder that exists"
        if self._watched_too:
            others = ", ".join(self._watched_too)
            meanwhile = f"{others} {'is' if len(self._watched_too) == 1 else 'are'} watched"
        else:
            meanwhile = "nothing is read"
        return (
            f"folder {folder!r} does not exist in {where}: {fix}. Meanwhile {meanwhile}; "
            f"{folder!r} is looked for again every {self._folder_recheck:.0f} s"
        )

    def _existing_folders(self) -> list[str]:
        """A few folders that exist, INBOX first (best effort: [] when they cannot be listed)."""
        try:
            names = folder_names(dataclasses.replace(self.account, folder="INBOX"), self._timeout)
        except Exception as exc:
            log.debug("could not list the folders of %s: %s", self.account.label, exc)
            return []
        return sorted(
            (n for n in names if n != self.account.folder), key=lambda n: (n.upper() != "INBOX", n)
        )
