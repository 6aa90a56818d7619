"""Everything `mailmentor run` runs in one process, started and stopped in order.

With no MAILMENTOR_REDIS_URL it starts an embedded Redis; with no IMAP account a local demo mailbox;
with no SMTP server a local sink that logs what would be sent. Tests build the same stack against
their own servers with an injected clock.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import dramatiq
import redis

from mailmentor.clock import Clock, SystemClock
from mailmentor.embedded_redis import EmbeddedRedis
from mailmentor.imap import ImapAccount, MailboxWatcher
from mailmentor.intake import Identity
from mailmentor.live_rules import LiveRules
from mailmentor.rules import default_rules_dir
from mailmentor.sandbox.imap_server import LocalImapServer
from mailmentor.sandbox.smtp_sink import ReceivedMessage, SmtpSink
from mailmentor.service import Listener, Outbox, Service
from mailmentor.settings import (
    Settings,
    load_settings,
    require_mail_accounts,
    require_trust,
    secret_key,
)
from mailmentor.smtp import SmtpAccount
from mailmentor.store import Store

log = logging.getLogger("mailmentor.run")

DEMO_SERVICE = "mentor@mailmentor.localhost"
DEMO_USER = "you@mailmentor.localhost"
#: The local demo mailbox (pymap) can miss an append that races IDLE's start: renew often.
SANDBOX_IDLE_RENEW = 2.0


def imap_account(settings: Settings) -> ImapAccount:
    return ImapAccount(
        host=settings.imap_host,
        port=settings.imap_port_or_default(),
        user=settings.imap_user,
        password=settings.imap_password.get_secret_value(),
        security=settings.imap_security,
        folder=settings.imap_folder,
    )


def smtp_account(settings: Settings) -> SmtpAccount:
    return SmtpAccount(
        host=settings.smtp_host,
        port=settings.smtp_port_or_default(),
        user=settings.smtp_user or None,
        password=settings.smtp_password.get_secret_value() or None,
        security=settings.smtp_security,
    )


def identity(settings: Settings) -> Identity:
    require_trust(settings)  # fail closed, also for the demo mailbox
    return Identity(
        user_addresses=tuple(settings.user_addresses) or (DEMO_USER,),
        service_address=settings.service_address or DEMO_SERVICE,
        authserv_id=settings.authserv_id if settings.require_authentication else "",
    )


@dataclass
class Stack:
    """The watcher, scheduler and send workers over one store, for one mailbox."""

    settings: Settings
    clock: Clock = field(default_factory=SystemClock)
    imap: ImapAccount | None = None  # overrides settings (tests, demo)
    smtp: SmtpAccount | None = None
    watcher: bool = True
    scheduler: bool = True
    listeners: Sequence[Listener] = ()
    on_sink_message: Callable[[ReceivedMessage], None] | None = None

    service: Service = field(init=False)
    stop_event: threading.Event = field(default_factory=threading.Event, init=False)
    _closers: list[Callable[[], None]] = field(default_factory=list, init=False)
    _threads: list[threading.Thread] = field(default_factory=list, init=False)

    def start(self) -> Service:
        try:
            return self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> Service:
        settings = self.settings
        rules = LiveRules(settings.rules_dir or default_rules_dir())
        url = settings.redis_url or self._embedded_redis()
        client = redis.Redis.from_url(url)
        store = Store(client)

        imap = self.imap
        idle_renew = settings.imap_idle_renew
        if imap is None and self.watcher:
            if settings.imap_configured:
                require_mail_accounts(settings)
                imap = imap_account(settings)
            else:
                imap = self._demo_mailbox()
                # pymap can miss mail that lands just as IDLE starts; re-check often.
                idle_renew = min(idle_renew, SANDBOX_IDLE_RENEW)
        smtp = self.smtp or (smtp_account(settings) if settings.smtp_configured else self._sink())

        from workers import broker

        dramatiq_broker = broker.setup(url)
        from workers import actors, runtime

        self.service = Service(
            store=store,
            rules=rules,
            clock=self.clock,
            identity=identity(settings),
            secret=secret_key(settings),
            timezone=settings.tz,
            outbox=actors.DramatiqOutbox(),
            smtp=smtp,
            listeners=list(self.listeners),
        )
        runtime.install(self.service)
        self._closers.append(lambda: runtime.install(None))

        worker = dramatiq.Worker(
            dramatiq_broker,
            queues={"mailmentor"},
            worker_threads=settings.worker_threads,
            worker_timeout=200,
        )
        worker.start()
        self._closers.append(lambda: worker.stop(timeout=10_000))
        if self.scheduler:
            self._thread(
                "scheduler",
                lambda: run_scheduler(
                    self.service, rules, self.stop_event, settings.scheduler_interval
                ),
            )
            self._closers.append(self._join_threads)
        if imap is not None:
            watcher = MailboxWatcher(
                imap,
                store,
                self.service.handle_raw,
                leases=store,
                owner=f"{socket.gethostname()}:{os.getpid()}",
                idle_renew=idle_renew,
                quarantine_folder=settings.quarantine_folder or None,
            )
            self._thread("watcher", watcher.run)
            self._closers.append(self._join_threads)
            self._closers.append(watcher.stop)
            log.info("watching %s for mail to %s", imap.key, self.service.identity.service_address)
        return self.service

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

    def _demo_mailbox(self) -> ImapAccount:
        server = LocalImapServer()
        account = server.start()
        self._closers.append(server.stop)
        log.info(
            "no IMAP account configured: demo mailbox at imap://%s:%s (user %s, password %s)",
            account.host,
            account.port,
            account.user,
            account.password,
        )
        return account

    def _sink(self) -> SmtpAccount:
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


def run_scheduler(
    service: Service, rules: LiveRules, stop: threading.Event, interval: float = 1.0
) -> None:
    """Tick until stopped; rule edits re-plan open loops; Redis drops are waited out."""
    try:
        service.reconcile()
    except redis.ConnectionError as exc:
        log.warning("redis unavailable at scheduler start: %s", exc)
    while not stop.is_set():
        try:
            if rules.reload_if_changed():
                log.info("re-planned %d open loops under the new rules", service.reconcile())
            service.tick()
            service.store.heartbeat("scheduler", timedelta(seconds=max(30, interval * 5)))
        except redis.ConnectionError as exc:
            log.warning("redis unavailable, scheduler waiting: %s", exc)
        except Exception:
            log.exception("scheduler tick failed; continuing")
        stop.wait(interval)


def build_service(
    settings: Settings, store: Store, outbox: Outbox, clock: Clock | None = None
) -> Service:
    """A Service from settings over a given store and outbox (workers, `mailmentor import`)."""
    return Service(
        store=store,
        rules=LiveRules(settings.rules_dir or default_rules_dir()),
        clock=clock or SystemClock(),
        identity=identity(settings),
        secret=secret_key(settings),
        timezone=settings.tz,
        outbox=outbox,
        smtp=smtp_account(settings),
    )


def standalone_service() -> Service:
    """A Service for a dramatiq worker started on its own (`dramatiq workers.actors`)."""
    settings = load_settings()
    require_mail_accounts(settings)
    from workers import actors

    store = Store(redis.Redis.from_url(settings.redis_url))
    return build_service(settings, store, actors.DramatiqOutbox())


__all__ = ["Path", "Stack", "run_scheduler"]
