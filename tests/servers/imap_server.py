"""Pytest fixtures: real IMAP servers on free loopback ports, each test on an empty INBOX.

pymap (in-memory) starts in about half a second, so each test gets its own process; Dovecot
is started once per session and each test gets a fresh user instead.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from mailmentor.imap import ImapAccount
from mailmentor.sandbox.imap_server import LocalImapServer
from tests.servers.dovecot import DovecotServer, dovecot_binary


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
