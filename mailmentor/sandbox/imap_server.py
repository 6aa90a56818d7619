"""A real IMAP server (pymap's in-memory backend) on loopback, for `mailmentor demo` and tests.

pymap runs as a subprocess (``python -m mailmentor.sandbox.imap_server <pymap args>``): its
entry point installs signal handlers (main thread only), and a subprocess can be stopped and
restarted on the same port to test reconnects. It also runs in a thread with its own event
loop, but only through pymap internals, so the subprocess it is. The dict backend knows only
the one demo user, and that user's INBOX starts empty.
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from imapclient import IMAPClient

from mailmentor.errors import MailboxError
from mailmentor.imap import ImapAccount, Security

_START_TIMEOUT = 20.0


def free_port(host: str = "127.0.0.1") -> int:
    """A port the OS considers free right now (another process may still take it first)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


class LocalImapServer:
    """Starts and stops a pymap server for one user; ``start()`` again reuses the same port."""

    def __init__(
        self,
        user: str = "demo@mailmentor.localhost",
        password: str = "demo",
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        cert_file: str | None = None,
        key_file: str | None = None,
    ) -> None:
        self.user = user
        self.password = password
        self.host = host
        self.port = port
        self._fixed_port = port != 0
        self.cert_file = cert_file
        self.key_file = key_file
        self._process: subprocess.Popen[bytes] | None = None
        self._stderr: IO[bytes] | None = None

    @property
    def account(self) -> ImapAccount:
        """The account for the running (or last started) server.

        With a certificate the server offers STARTTLS (and refuses LOGIN before it); the caller
        adds an ``ssl_context`` that trusts the certificate.
        """
        security: Security = "starttls" if self.cert_file else "none"
        return ImapAccount(self.host, self.port, self.user, self.password, security=security)

    def start(self) -> ImapAccount:
        """Run pymap and wait until it accepts a login; raises MailboxError with its stderr tail."""
        if self._process is not None and self._process.poll() is None:
            return self.account
        for _attempt in range(5):
            if not self._fixed_port:
                self.port = free_port(self.host)
            try:
                self._launch()
                self._fixed_port = True  # a restart comes back on the same port
                return self.account
            except _PortTaken:
                if self._fixed_port:
                    break
        raise MailboxError(f"could not start pymap on {self.host}:{self.port}: port in use")

    def stop(self) -> None:
        """Terminate the server and wait for it; idempotent."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None

    def __enter__(self) -> ImapAccount:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _launch(self) -> None:
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the server
        command = [
            sys.executable,
            "-m",
            "mailmentor.sandbox.imap_server",
            "--host",
            self.host,
            "--port",
            str(self.port),
            *(["--cert", self.cert_file] if self.cert_file else ["--no-tls"]),
            *(["--key", self.key_file] if self.key_file else []),
            "dict",
            "--demo-user",
            self.user,
            "--demo-password",
            self.password,
        ]
        # the package may be run from a source tree rather than installed
        source_root = str(Path(__file__).resolve().parents[2])
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (source_root, env.get("PYTHONPATH")) if p)
        self._process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=self._stderr,
            start_new_session=True,  # Ctrl-C is for us; stop() ends the server in order
            env=env,
        )
        deadline = time.monotonic() + _START_TIMEOUT
        while time.monotonic() < deadline:
            code = self._process.poll()
            if code is not None:
                tail = self._stderr_tail()
                self.stop()
                if "address already in use" in tail.lower() or f"errno {errno.EADDRINUSE}]" in tail:
                    raise _PortTaken(tail)
                raise MailboxError(
                    f"pymap exited with code {code} while starting on "
                    f"{self.host}:{self.port}:\n{tail}"
                )
            if self._accepts_login():
                return
            time.sleep(0.05)
        tail = self._stderr_tail()
        self.stop()
        raise MailboxError(
            f"pymap did not accept a login on {self.host}:{self.port} "
            f"within {_START_TIMEOUT:.0f} s:\n{tail}"
        )

    def _accepts_login(self) -> bool:
        try:
            client = IMAPClient(self.host, port=self.port, ssl=False, timeout=2)
        except OSError:
            return False
        try:
            if self.cert_file:
                readiness_only = ssl.create_default_context()
                readiness_only.check_hostname = False
                readiness_only.verify_mode = ssl.CERT_NONE
                client.starttls(readiness_only)
            client.login(self.user, self.password)
            return True
        except Exception:
            return False
        finally:
            with contextlib.suppress(Exception):
                client.logout()

    def _stderr_tail(self, limit: int = 2000) -> str:
        if self._stderr is None:
            return ""
        try:
            self._stderr.seek(0)
            data = self._stderr.read()
        except (OSError, ValueError):
            return ""
        return data[-limit:].decode("utf-8", "replace").strip()


class _PortTaken(Exception):
    """pymap could not bind its port; a fresh free port is tried."""


def _patch_pymap() -> None:
    """Two fixes to pymap 0.36 for a throwaway loopback server, applied in the subprocess only.

    - pymap hashes passwords with 500,000 PBKDF2 rounds (~0.15 s per login, the bulk of a
      test's run time); a throwaway password on loopback needs no such cost.
    - pymap's IDLE waits for the *next* change before reporting anything, so mail appended
      between a client's last command and the start of its IDLE stays unannounced until some
      later change. Report pending changes at once instead, as Dovecot does.
    """
    import pysasl.hashing
    from pymap.backend.dict.mailbox import MailboxData

    defaults = pysasl.hashing.BuiltinHash.__init__.__kwdefaults__
    if defaults is not None and "rounds" in defaults:
        defaults["rounds"] = 1

    original = MailboxData.update_selected

    async def update_selected(self: Any, selected: Any, *, wait_on: Any = None) -> Any:
        pending = selected.mod_sequence is not None and (
            self._mod_sequences.highest != selected.mod_sequence
        )
        return await original(self, selected, wait_on=None if pending else wait_on)

    MailboxData.update_selected = update_selected  # type: ignore[method-assign]


def main() -> None:
    """Run pymap (same arguments as the ``pymap`` command) with the patches above."""
    from pymap.main import main as pymap_main

    _patch_pymap()
    sys.argv[0] = "pymap"
    pymap_main()


if __name__ == "__main__":
    main()
