"""Pytest fixtures: real IMAP servers on free loopback ports, each test on an empty INBOX.

pymap (in-memory) starts in about half a second, so each test gets its own process; Dovecot
is started once per session and each test gets a fresh user instead.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import timedelta

import pytest

from mailmentor.imap import ImapAccount
from mailmentor.sandbox.imap_server import LocalImapServer
from tests.servers.dovecot import DovecotServer, dovecot_binary


class MemoryCheckpoints:
    """An in-memory CheckpointStore for tests that need no Redis."""

    def __init__(self) -> None:
        self.data: dict[str, tuple[int, int]] = {}
        self.writes = 0
        self._lock = threading.Lock()

    def get_checkpoint(self, mailbox: str) -> tuple[int, int] | None:
        with self._lock:
            return self.data.get(mailbox)

    def set_checkpoint(self, mailbox: str, uidvalidity: int, last_uid: int) -> None:
        with self._lock:
            self.data[mailbox] = (uidvalidity, last_uid)
            self.writes += 1


class MemoryLeases:
    """An in-memory LeaseStore: re-acquiring a lease one holds renews it."""

    def __init__(self) -> None:
        self.leases: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()

    def acquire_lease(self, name: str, owner: str, ttl: timedelta) -> bool:
        now = time.monotonic()
        with self._lock:
            holder = self.leases.get(name)
            if holder is not None and holder[0] != owner and holder[1] > now:
                return False
            self.leases[name] = (owner, now + ttl.total_seconds())
            return True

    def release_lease(self, name: str, owner: str) -> None:
        with self._lock:
            holder = self.leases.get(name)
            if holder is not None and holder[0] == owner:
                del self.leases[name]

    def holder(self, name: str) -> str | None:
        with self._lock:
            holder = self.leases.get(name)
            return holder[0] if holder and holder[1] > time.monotonic() else None


@pytest.fixture
def pymap_server() -> Iterator[LocalImapServer]:
    """A started pymap of our own (tests may stop and restart it on the same port)."""
    server = LocalImapServer(user="watcher@mailmentor.test", password="watch-pw")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def imap_server(pymap_server: LocalImapServer) -> ImapAccount:
    """An account on a fresh pymap whose INBOX is empty."""
    return pymap_server.account


@pytest.fixture(scope="session")
def dovecot_server() -> Iterator[DovecotServer]:
    """One Dovecot for the session (skips when it is not installed)."""
    if dovecot_binary() is None:
        pytest.skip("dovecot is not installed (apt-get install dovecot-imapd)")
    server = DovecotServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(params=["pymap", "dovecot"])
def any_imap_server(request: pytest.FixtureRequest) -> ImapAccount:
    """An account with an empty INBOX on each reference server in turn."""
    if request.param == "pymap":
        server: LocalImapServer = request.getfixturevalue("pymap_server")
        return server.account
    dovecot: DovecotServer = request.getfixturevalue("dovecot_server")
    return dovecot.add_user()
