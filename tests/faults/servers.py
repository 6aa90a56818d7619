"""IMAP servers the fault suite restarts under a watching `mailmentor run`.

pymap keeps its mail in memory: restarted on the same port it has an empty INBOX with a new
UIDVALIDITY, which is what an IMAP server that lost its mailbox must announce, so the honest
check there is that mail appended after the restart is handled. Dovecot keeps its maildirs:
restarted, it serves the same mail under the same UIDVALIDITY.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
from pathlib import Path
from typing import Protocol

from mailmentor.imap import ImapAccount
from mailmentor.sandbox.imap_server import LocalImapServer
from tests.faults.processes import running
from tests.servers.dovecot import DovecotServer, dovecot_binary
from tests.waiting import wait_for


class RestartableImap(Protocol):
    name: str
    keeps_mail: bool

    @property
    def account(self) -> ImapAccount: ...

    def restart(self) -> None: ...

    def stop(self) -> None: ...


class RestartablePymap:
    name = "pymap"
    keeps_mail = False

    def __init__(self) -> None:
        self._server = LocalImapServer(user="watcher@mailmentor.test", password="watch-pw")
        self._server.start()

    @property
    def account(self) -> ImapAccount:
        return self._server.account

    def restart(self) -> None:
        self._server.stop()
        self._server.start()  # the same port: a restart keeps it

    def stop(self) -> None:
        self._server.stop()


class RestartableDovecot(DovecotServer):
    """DovecotServer, plus a restart that keeps its directory (config, maildirs) and port."""

    name = "dovecot"
    keeps_mail = True

    def __init__(self) -> None:
        super().__init__()
        self._account = self.start()  # skips the test where Dovecot cannot run

    @property
    def account(self) -> ImapAccount:
        return self._account

    def restart(self) -> None:
        process, binary = self._process, dovecot_binary()
        assert process is not None and self.root is not None and binary is not None
        process.terminate()
        process.wait(timeout=10)
        if process.stderr is not None:
            process.stderr.close()
        self._end_orphans()  # a restarted server drops its connections
        self._process = subprocess.Popen(
            [binary, "-F", "-c", str(self.root / "dovecot.conf")],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        self._wait_ready(self._account)

    def _end_orphans(self) -> None:
        """The master leaves its imap (and log, stats) processes running when it stops, and the
        watcher's connection with them; end those of this instance (by its instance_name)."""
        assert self.root is not None
        config = (self.root / "dovecot.conf").read_text()
        instance = re.search(r"^instance_name = (\S+)$", config, re.M)
        assert instance is not None
        title = f"dovecot-{instance[1]}/".encode()
        ended = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                if (entry / "cmdline").read_bytes().startswith(title):
                    os.kill(int(entry.name), signal.SIGKILL)
                    ended.append(int(entry.name))
            except (OSError, ProcessLookupError):
                continue
        wait_for(
            lambda: not any(running(pid) for pid in ended),
            "the old Dovecot's processes to end",
            timeout=10,
        )
