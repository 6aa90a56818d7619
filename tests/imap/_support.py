"""What the IMAP tests share: numbered test mail, appending, a recording handler, a running
watcher."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from mailmentor.imap import ImapAccount, MailboxWatcher, connect, message_id_of


def make_mail(n: int, body: str = "Hello.") -> bytes:
    return (
        f"From: Ada <ada@example.com>\r\nTo: mentor@example.com\r\n"
        f"Subject: message {n}\r\nMessage-ID: <m{n}@example.com>\r\n"
        f"Date: Mon, 05 Jan 2026 09:00:00 +0000\r\n\r\n{body}\r\n"
    ).encode()


def append_all(account: ImapAccount, mails: list[bytes]) -> None:
    """Append over one connection (logins cost ~0.1 s on pymap)."""
    client = connect(account)
    try:
        for raw in mails:
            client.append(account.folder, raw)
    finally:
        client.logout()


class Recorder:
    """A handler that records what it was given and can be told to fail on some Message-IDs."""

    def __init__(self, fail_on: frozenset[str] = frozenset()) -> None:
        self.seen: list[tuple[int, bytes]] = []
        self.fail_on = fail_on
        self._lock = threading.Lock()

    def __call__(self, uid: int, raw: bytes) -> None:
        with self._lock:
            self.seen.append((uid, raw))
        if (message_id_of(raw) or "") in self.fail_on:
            raise ValueError("handler exploded")

    @property
    def ids(self) -> list[str | None]:
        with self._lock:
            return [message_id_of(raw) for _, raw in self.seen]

    @property
    def uids(self) -> list[int]:
        with self._lock:
            return [uid for uid, _ in self.seen]


@contextmanager
def running(watcher: MailboxWatcher) -> Iterator[threading.Thread]:
    thread = threading.Thread(target=watcher.run, name="watcher", daemon=True)
    thread.start()
    try:
        yield thread
    finally:
        watcher.stop()
        thread.join(timeout=10)
        assert not thread.is_alive(), "run() did not return after stop()"
