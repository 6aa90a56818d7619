"""Everything `mailmentor run` runs in one process, started and stopped in order.

With no MAILMENTOR_REDIS_URL it starts an embedded Redis; with no IMAP account a local demo mailbox;
with no SMTP server a local sink that logs what would be sent. Tests build the same stack against
their own servers with an injected clock.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import random
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import dramatiq

from mailmentor.app import (
    Services,
    build_services,
    connect_store,
    imap_account,
    mailbox_folders,
    parse_pool,
    reauthorization_notice,
    smtp_account,
)
from mailmentor.backoff import backoff_delay
from mailmentor.clock import Clock, SystemClock
from mailmentor.embedded_redis import EmbeddedRedis
from mailmentor.errors import FolderNotFound
from mailmentor.imap import ImapAccount, MailboxWatcher, MessageMeta, create_folder
from mailmentor.live_rules import LiveRules
from mailmentor.liveness import this_process
from mailmentor.mailbox_mode import CatchUp, Origin
from mailmentor.oauth import AuthorizationNeeded
from mailmentor.parsing.pool import ParsePool
from mailmentor.reminders import TEMPLATES_DIRNAME
from mailmentor.rules import default_rules_dir
from mailmentor.sandbox import require_demo_servers
from mailmentor.service.outcomes import Outcome
from mailmentor.service.scheduler import Scheduler
from mailmentor.service.writer import Listener
from mailmentor.settings import ENV_PREFIX, Settings, require_mail_accounts
from mailmentor.smtp import SmtpAccount
from mailmentor.store import Store
from mailmentor.store.client import is_transient
from mailmentor.store.health import BEATS_PER_TTL, scheduler_pass_ttl
from mailmentor.store.leases import Held
from workers.actors import Actors
from workers.broker import QUEUE, build_broker, quiet_outages

if TYPE_CHECKING:  # the sandbox servers are the optional demo extra: imported when used
    from mailmentor.sandbox.smtp_sink import ReceivedMessage

log = logging.getLogger("mailmentor.run")

#: The local demo mailbox (pymap) can miss an append that races IDLE's start: renew often.
SANDBOX_IDLE_RENEW = 2.0


#: Every process says it is alive BEATS_PER_TTL times per PROCESS_TTL (HEARTBEAT_SECONDS, 30 s
#: by default: every 5 s); a claim whose owner's heartbeat is older than that is taken back by
#: the scheduler (on the same machine, a dead pid at once), and `status --check` fails.
PROCESS_TTL = timedelta(seconds=30)
#: Which setting names each folder mailbox mode watches (said when one does not exist).
FOLDER_SETTINGS = {
    Origin.TRACKED: f"{ENV_PREFIX}TRACK_FOLDER",
    Origin.SENT: f"{ENV_PREFIX}SENT_FOLDER",
    Origin.INBOX: f"{ENV_PREFIX}IMAP_FOLDER",
}
#: How often the scheduler looks for claims of processes that stopped.
RECOVER_EVERY = 5.0
#: Seconds of each scheduler pass that re-planning after a rule edit may take.
RECONCILE_SHARE = 0.25
#: One scheduler acts at a time: it holds this lease, renewed at every pass.
SCHEDULER_LEASE = "scheduler"
SCHEDULER_LEASE_TTL = timedelta(seconds=15)
#: The scheduler waits out a store outage with backoff up to this many seconds.
STORE_WAIT_MAX = 30.0


@dataclass
class Stack:
    """The watcher(s), scheduler and send workers over one store, for one mailbox.

    In mailbox mode one watcher per folder of the user's own mailbox (see `mailbox_folders`).
    """

    settings: Settings
    clock: Clock = field(default_factory=SystemClock)
    imap: ImapAccount | None = None  # overrides settings (tests, demo)
    smtp: SmtpAccount | None = None
    watcher: bool = True
    scheduler: bool = True
    workers: bool = True
    listeners: Sequence[Listener] = ()
    on_sink_message: Callable[[ReceivedMessage], None] | None = None

    services: Services = field(init=False)
    actors: Actors = field(init=False)
    stop_event: threading.Event = field(default_factory=threading.Event, init=False)
    owner: str = field(default_factory=lambda: str(this_process()), init=False)
    _closers: list[Callable[[], None]] = field(default_factory=list, init=False)
    _threads: list[threading.Thread] = field(default_factory=list, init=False)
    watchers: list[MailboxWatcher] = field(default_factory=list, init=False)
    parser: ParsePool = field(default_factory=lambda: ParsePool(0), init=False)
    #: Set when the service said "running": every watcher logged in (or stands by, or was
    #: told its folder is missing); at once without a watcher.
    running: threading.Event = field(default_factory=threading.Event, init=False)

    @property
    def store(self) -> Store:
        return self.services.store

    def start(self) -> Services:
        try:
            return self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> Services:
        settings = self.settings
        self._require_local_servers()
        rules = LiveRules(settings.rules_dir or default_rules_dir())
        url = settings.redis_url or self._embedded_redis()
        store = connect_store(settings, url)
        self._closers.append(store.client.close)

        imap = self.imap
        idle_renew = settings.imap_idle_renew
        if imap is None and self.watcher:
            if settings.imap_configured:
                require_mail_accounts(settings)
                # The services come later; told then, they mail the user once (unless SMTP
                # signs in with the same, refused, authorisation: then status, the log and
                # the digest say it).
                notice = self._reauthorization_needed if settings.smtp_auth != "oauth2" else None
                imap = imap_account(settings, store, notice)
            else:
                imap = self._demo_mailbox()
                # pymap can miss mail that lands just as IDLE starts; re-check often.
                idle_renew = min(idle_renew, SANDBOX_IDLE_RENEW)
                if settings.mailbox_mode:  # the demo mailbox has only INBOX
                    for watched in mailbox_folders(settings, imap.folder):
                        create_folder(imap, watched.folder)
        smtp = self.smtp or (
            smtp_account(settings, store) if settings.smtp_configured else self._sink()
        )

        broker = build_broker(url, settings.user_id)
        self._closers.append(broker.close)  # and its Redis client (see workers.broker.Broker)
        actors = self.actors = Actors(broker)
        parser = self.parser = parse_pool(settings)
        self._closers.append(parser.close)  # after the watchers' threads ended
        self.services = build_services(
            settings,
            store,
            actors,
            self.clock,
            rules=rules,
            templates_dir=rules.directory / TEMPLATES_DIRNAME,
            smtp=smtp,
            imap=imap,
            listeners=self.listeners,
            owner=self.owner,
            parser=parser,
        )
        actors.bind(self.services.sender)
        # The heartbeat stops last (closers run in reverse): while a send finishes during the
        # stop, other processes must not take this one for dead and send it again.
        beating = threading.Event()
        components = [
            name
            for name, on in (
                ("watch", self.watcher),
                ("schedule", self.scheduler),
                ("work", self.workers),
            )
            if on
        ]
        heartbeat = self.heartbeat_ttl
        beater = threading.Thread(
            target=beat,
            args=(store, self.owner, components, beating, heartbeat),
            name="mailmentor-heartbeat",
            daemon=True,
        )
        beater.start()
        self._closers.append(functools.partial(_stop_beating, beating, beater))
        self._closers.append(self._join_threads)

        if self.workers:
            quiet_outages()
            worker = dramatiq.Worker(
                broker, queues={QUEUE}, worker_threads=settings.worker_threads, worker_timeout=200
            )
            worker.start()
            self._closers.append(lambda: worker.stop(timeout=10_000))
        if not self.scheduler:
            # Templates and rule names are read by the senders too: follow edits as `run` does.
            self._thread("rules", functools.partial(follow_rules, rules, self.stop_event))
        if self.scheduler:
            self._thread(
                "scheduler",
                lambda: run_scheduler(
                    self.services.scheduler,
                    store,
                    rules,
                    self.stop_event,
                    settings.scheduler_interval,
                    heartbeat,
                ),
            )
        # With watcher=False an account given anyway only serves the drafts.
        if self.watcher and imap is not None and settings.mailbox_mode:
            self._watch_mailbox(imap, store, idle_renew, parser)
        elif self.watcher and imap is not None:
            watcher = MailboxWatcher(
                imap,
                store.checkpoints,
                self.services.intake.handle_raw,
                leases=store.leases,
                owner=f"{self.owner}/watch",
                idle_renew=idle_renew,
                quarantine_folder=settings.quarantine_folder or None,
                prepare=parser.ahead,
                **self._watcher_health(f"{ENV_PREFIX}IMAP_FOLDER"),
            )
            self.watchers.append(watcher)
            self._thread("watcher", watcher.run)
            self._closers.append(watcher.stop)
            address = self.services.intake.identity.service_address
            log.info("watching %s for mail to %s", imap.label, address)
        self._announce_when_running()
        return self.services

    @property
    def heartbeat_ttl(self) -> timedelta:
        return timedelta(seconds=self.settings.heartbeat_seconds)

    def _watcher_health(self, setting: str, watched_too: Sequence[str] = ()) -> dict[str, Any]:
        """What every watcher is given to keep its health record."""
        return {
            "health": self.store.health,
            "heartbeat_ttl": self.settings.heartbeat_seconds,
            "clock": self.clock,
            "folder_setting": setting,
            "watched_too": tuple(watched_too),
        }

    def _announce_when_running(self) -> None:
        """Say "running" once every watcher is under way (logged in, standing by, or its folder
        found missing): before that each says what it is trying (connecting / retrying)."""
        if not self.watchers:
            self._say_running()
            return
        labels = ", ".join(w.account.label for w in self.watchers)
        log.info("mailmentor is starting: connecting to %s", labels)
        self._thread("startup", self._wait_then_say_running)

    def _wait_then_say_running(self) -> None:
        for watcher in self.watchers:
            while not watcher.started.wait(0.1):
                if self.stop_event.is_set():
                    return
        self._say_running()

    def _say_running(self) -> None:
        self.running.set()
        log.info("mailmentor is running; Ctrl-C stops it")

    def _reauthorization_needed(self, needed: AuthorizationNeeded) -> None:
        reauthorization_notice(self.services.sender)(needed)

    def _watch_mailbox(
        self, imap: ImapAccount, store: Store, idle_renew: float, parser: ParsePool
    ) -> None:
        """Mailbox mode: a watcher (and thread) per folder. Each first catches up after the ones
        before it (`mailbox_folders` order), then watches on its own. Nothing is quarantined:
        mailmentor never moves the user's own mail."""
        before: list[threading.Event] = []
        folders = mailbox_folders(self.settings, imap.folder)
        for watched in folders:
            first = FirstCatchUp(
                functools.partial(
                    self.services.intake.handle_in_folder,
                    origin_of=watched.origin_of,
                    in_sent=watched.is_sent,
                ),
                CatchUp(watched.folder),
            )
            others = [f.folder for f in folders if f.folder != watched.folder]
            watcher = MailboxWatcher(
                dataclasses.replace(imap, folder=watched.folder),
                store.checkpoints,
                meta_handler=first,
                leases=store.leases,
                owner=f"{self.owner}/watch-{watched.origin}",
                idle_renew=idle_renew,
                # A keyword or label set later counts too (not in the tracked folder: all of
                # it is tracked already).
                marking=None if watched.origin is Origin.TRACKED else watched.tracking,
                marks=store.checkpoints,
                prepare=parser.ahead,
                **self._watcher_health(FOLDER_SETTINGS[watched.origin], others),
            )
            caught_up = threading.Event()
            self.watchers.append(watcher)
            self._thread(
                f"watcher-{watched.origin}",
                functools.partial(self._watch_in_turn, watcher, list(before), caught_up, first),
            )
            self._closers.append(watcher.stop)
            before.append(caught_up)
            log.info("watching %s as %s mail (mailbox mode)", watcher.account.label, watched.origin)

    def _watch_in_turn(
        self,
        watcher: MailboxWatcher,
        before: list[threading.Event],
        caught_up: threading.Event,
        first: FirstCatchUp,
    ) -> None:
        """Wait for the earlier folders' first catch-up, catch up (one summary line, the
        messages' own lines at DEBUG), then watch until stopped."""
        try:
            for event in before:
                while not event.wait(0.2):
                    if self.stop_event.is_set():
                        return
            if not self.stop_event.is_set():
                quiet = PerMessageToDebug(threading.get_ident())
                SERVICE_LOG.addFilter(quiet)
                try:
                    watcher.catch_up(log_level=logging.DEBUG)
                    if watcher.acting:
                        log.info("%s", first.summary)
                except FolderNotFound as exc:  # run() below says it once, with what to do
                    log.debug("first catch-up of %s: %s", watcher.account.label, exc)
                except Exception as exc:  # run() below reconnects with backoff
                    done = f" ({first.summary})" if first.summary.messages else ""
                    log.warning(
                        "first catch-up of %s failed: %s%s", watcher.account.label, exc, done
                    )
                finally:
                    SERVICE_LOG.removeFilter(quiet)
                    first.done()
        finally:
            caught_up.set()
        watcher.run()

    def _thread(self, name: str, target: Callable[[], None]) -> None:
        thread = threading.Thread(target=target, name=f"mailmentor-{name}", daemon=True)
        thread.start()
        self._threads.append(thread)

    def _embedded_redis(self) -> str:
        server = EmbeddedRedis(self.settings.data_dir)
        url = server.start()
        self._closers.append(server.stop)
        log.info("embedded Redis running, data in %s", self.settings.data_dir / "redis")
        return url

    def _require_local_servers(self) -> None:
        """Before anything starts: the local servers standing in for unconfigured mail accounts
        need the demo extra; without it, one line saying what to set or install."""
        if self.watcher and self.imap is None and not self.settings.imap_configured:
            require_demo_servers(
                "the demo mailbox",
                instead=f"no IMAP account configured: set {ENV_PREFIX}IMAP_HOST, "
                f"{ENV_PREFIX}IMAP_USER and {ENV_PREFIX}IMAP_PASSWORD",
            )
        if self.smtp is None and not self.settings.smtp_configured:
            require_demo_servers(
                "the local SMTP sink",
                instead=f"no SMTP server configured: set {ENV_PREFIX}SMTP_HOST, "
                f"{ENV_PREFIX}SMTP_USER and {ENV_PREFIX}SMTP_PASSWORD",
            )

    def _demo_mailbox(self) -> ImapAccount:
        from mailmentor.sandbox.imap_server import LocalImapServer

        server = LocalImapServer()
        account = server.start()
        self._closers.append(server.stop)
        if self.settings.drafts_folder:  # the demo mailbox has only INBOX
            create_folder(account, self.settings.drafts_folder)
        log.info(
            "no IMAP account configured: demo mailbox at imap://%s:%s (user %s, password %s)",
            account.host,
            account.port,
            account.user,
            account.password,
        )
        return account

    def _sink(self) -> SmtpAccount:
        from mailmentor.sandbox.smtp_sink import SmtpSink

        sink = SmtpSink(on_message=self.on_sink_message or _log_sink_message)
        account = sink.start()
        self._closers.append(sink.stop)
        log.info("no SMTP server configured: reminders go to a local sink and are logged")
        return account

    def stop(self) -> None:
        """Stop threads first, then workers, sandbox servers and Redis; safe to call twice."""
        self.stop_event.set()
        closers, self._closers = self._closers, []
        for closer in reversed(closers):
            try:
                closer()
            except Exception:  # a failing stop must not keep the others from running
                log.exception("error while stopping")

    def _join_threads(self) -> None:
        for thread in self._threads:
            thread.join(timeout=15)
        self._threads = []


def _log_sink_message(received: ReceivedMessage) -> None:
    log.info("reminder for %s: %s", ", ".join(received.rcpt_tos), received.message["Subject"])


def _stop_beating(beating: threading.Event, beater: threading.Thread) -> None:
    beating.set()
    beater.join(timeout=5)


def beat(
    store: Store,
    owner: str,
    components: Sequence[str],
    stop: threading.Event,
    ttl: timedelta = PROCESS_TTL,
) -> None:
    """Say this process (and which components it runs, on this host) is alive until stopped,
    BEATS_PER_TTL times per ``ttl``; then say it is gone (its claims come back)."""
    host = socket.gethostname()
    while not stop.is_set():
        try:
            store.health.process_beat(owner, ttl)
            for component in components:
                store.health.component_beat(component, host, owner, ttl)
        except Exception as exc:
            log.warning("could not write this process's heartbeat: %s", exc)
        stop.wait(ttl.total_seconds() / BEATS_PER_TTL)
    try:
        for component in components:
            store.health.component_gone(component, host, owner)
        store.health.process_gone(owner)
    except Exception:
        log.debug("could not clear this process's heartbeat", exc_info=True)


#: The service's logger, whose line per message a first catch-up lowers to DEBUG.
SERVICE_LOG = logging.getLogger("mailmentor.service")


class PerMessageToDebug(logging.Filter):
    """While one thread catches a folder up for the first time, the service's INFO lines (one
    per message, and per loop it starts) become DEBUG: the catch-up says one summary line."""

    def __init__(self, thread: int) -> None:
        super().__init__()
        self._thread = thread

    def filter(self, record: logging.LogRecord) -> bool:
        if record.thread != self._thread or record.levelno != logging.INFO:
            return True
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return SERVICE_LOG.isEnabledFor(logging.DEBUG)


class FirstCatchUp:
    """A folder's handler that counts what each message did until its first catch-up is done
    (`CatchUp`, for the summary line); then it only hands over."""

    def __init__(
        self, handle: Callable[[int, bytes, MessageMeta], Outcome], start: CatchUp
    ) -> None:
        self._handle = handle
        self.summary = start
        self._counting = True

    def __call__(self, uid: int, raw: bytes, meta: MessageMeta) -> Outcome:
        if not self._counting:
            return self._handle(uid, raw, meta)
        try:
            outcome = self._handle(uid, raw, meta)
        except Exception as exc:
            if not is_transient(exc):  # the store's outages are waited out and tried again
                self.summary = self.summary.add_failed()
            raise
        self.summary = self.summary.add(outcome)
        return outcome

    def done(self) -> None:
        self._counting = False


def follow_rules(rules: LiveRules, stop: threading.Event, every: float = 2.0) -> None:
    """Reload edited rule files (a process without a scheduler, which otherwise does it)."""
    while not stop.wait(every):
        try:
            rules.reload_if_changed()
        except Exception:
            log.exception("could not reload the rules; the last good ones stay")


def run_scheduler(
    scheduler: Scheduler,
    store: Store,
    rules: LiveRules,
    stop: threading.Event,
    interval: float = 1.0,
    heartbeat: timedelta = PROCESS_TTL,
) -> None:
    """Tick until stopped, while holding the scheduler lease (any number of schedulers may run;
    one acts, the others stand by and take over when its lease ends, at once when it died on
    this machine). Claims of stopped processes come back first, rule edits re-plan open loops in
    batches between ticks, and a store outage is one warning per try, tried again with backoff
    (1 s doubling up to 30 s)."""
    recovered_at = float("-inf")
    failures = 0
    standing_by = False
    owner = f"{scheduler.owner}/schedule"
    scheduler.start_reconcile()  # in batches between ticks: claims of the dead come back first
    try:
        while not stop.is_set():
            wait = interval
            try:
                lease = store.leases.acquire(SCHEDULER_LEASE, owner, SCHEDULER_LEASE_TTL)
                if not isinstance(lease, Held):
                    if not standing_by:
                        log.info("another scheduler acts (%s); standing by", lease.holder)
                    standing_by, scheduler.fence = True, None
                    stop.wait(interval)
                    continue
                if standing_by:
                    log.info("this scheduler acts now (lease %d)", lease.token)
                    standing_by = False
                    scheduler.start_reconcile()
                scheduler.fence = (SCHEDULER_LEASE, lease.value)
                if rules.reload_if_changed():
                    log.info("rules changed: re-planning open loops")
                    scheduler.start_reconcile()
                started = time.monotonic()
                while time.monotonic() - started < RECONCILE_SHARE and scheduler.reconcile_step():
                    pass
                if time.monotonic() - recovered_at >= RECOVER_EVERY:
                    scheduler.recover()
                    recovered_at = time.monotonic()
                scheduler.tick()
                scheduler.digest_tick()
                store.health.heartbeat("scheduler", scheduler_pass_ttl(heartbeat, interval))
                if failures:
                    log.info("store available again: scheduler carries on")
                failures = 0
            except Exception as exc:
                if is_transient(exc):
                    delay = backoff_delay(failures, 1.0, STORE_WAIT_MAX, random.random())
                    wait = max(interval, delay)
                    failures += 1
                    reason = " ".join(str(exc).split())[:200] or type(exc).__name__
                    log.warning(
                        "store unavailable (%s); scheduler tries again in %.0f s", reason, wait
                    )
                else:
                    log.exception("scheduler tick failed; continuing")
            stop.wait(wait)
    finally:
        try:
            store.leases.release(SCHEDULER_LEASE, owner)
        except Exception:
            log.debug("could not release the scheduler lease", exc_info=True)
