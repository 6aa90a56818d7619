"""Bad mail never stops the watcher, and what it could not use ends up in the quarantine folder.

Real servers throughout: pymap (and Dovecot where it is installed), the session's embedded Redis,
aiosmtpd. The stream test runs the whole Stack, as `mailmentor run` would.
"""

from __future__ import annotations

import base64
import logging
import random
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from imapclient import IMAPClient

from mailmentor.app import build_services
from mailmentor.clock import ManualClock
from mailmentor.errors import UnprocessableMessage
from mailmentor.imap import (
    FetchedMessage,
    ImapAccount,
    MailboxWatcher,
    append_message,
    appended_uid,
    connect,
    failure_reason,
    move_message,
    quarantine_message,
    quarantine_method,
)
from mailmentor.intake import Identity
from mailmentor.mailbox_mode import Origin
from mailmentor.parsing.message import ParsedMessage, parse_message
from mailmentor.sandbox.imap_server import LocalImapServer
from mailmentor.sandbox.smtp_sink import SmtpSink
from mailmentor.service.intake import Intake, unusable_reason
from mailmentor.service.outcomes import Created, Duplicate, Handled, Ignored, Outcome
from mailmentor.settings import load_settings
from mailmentor.store import Store
from tests import mail_factory as mf
from tests.corpora import CORPORA
from tests.service_factory import stack_settings
from tests.waiting import wait_for
from workers.stack import Stack

QUARANTINE = "Quarantine"
IDENTITY = Identity(user_addresses=(mf.USER,), service_address=mf.SERVICE)

# --- hostile mail, each tagged with X-Test-Case so it can be found on the server ---------------


def _head(case: str, sender: str = f"Ada <{mf.USER}>", message_id: bool = True) -> bytes:
    head = (
        f"From: {sender}\r\nTo: Alan Kay <alan@example.org>\r\nSubject: hostile {case}\r\n"
        f"X-Test-Case: {case}\r\nDate: Mon, 05 Jan 2026 09:00:00 +0000\r\n"
    )
    if message_id:
        head += f"Message-ID: <{case}@hostile.example>\r\n"
    return head.encode()


def broken_mime() -> bytes:
    """Unterminated boundary parameter, empty charset, invalid base64, cut-off delimiter."""
    return _head("broken-mime", sender="Mallory <mallory@evil.example>") + (
        b'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="zz\r\n\r\n--zz\r\n'
        b"Content-Type: text/plain; charset=\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        b"!!!notbase64===\r\n--z"
    )


def header_injection() -> bytes:
    """Bare CR and LF inside headers, a NUL, an encoded CRLF+Bcc in a display name."""
    return (
        b"From: Ada <ada@example.com>\r\nTo: alan@example.org\r\n\tBcc: victim@example.net\r\n"
        b"Subject: hi\rBcc: x@y.example\nX-Test-Case: header-injection\r\n"
        b"Message-ID: <header-injection@hostile.example>\x00\r\n"
        b"Reply-To: =?utf-8?q?a=0D=0ABcc:_evil@x.example?= <a@b.example>\r\n\r\nhello\r\n"
    )


def unknown_charset() -> bytes:
    return _head("unknown-charset") + (
        b"Content-Type: text/plain; charset=x-klingon-42\r\nContent-Transfer-Encoding: 8bit\r\n"
        b"\r\n\xff\xfe What would you do?\r\n"
    )


def deeply_nested(depth: int = 60) -> bytes:
    body = b"Content-Type: text/plain\r\n\r\nDeep down: what would you do?\r\n"
    for level in range(depth):
        b = f"b{level}".encode()
        body = (
            b"Content-Type: multipart/mixed; boundary=" + b + b"\r\n\r\n--" + b + b"\r\n"
            + body + b"\r\n--" + b + b"--\r\n"
        )  # fmt: skip
    return _head("nested") + b"MIME-Version: 1.0\r\n" + body


def huge(size: int = 30_000_000) -> bytes:
    """30 MB of attachment, from the user, with no Message-ID and no text: truly unusable."""
    chunk = base64.encodebytes(bytes(range(256)) * 1024).replace(b"\n", b"\r\n")
    return (
        _head("huge", message_id=False)
        + b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=BB\r\n\r\n--BB\r\n"
        + b"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        + chunk * (size // len(chunk) + 1)
        + b"\r\n--BB--\r\n"
    )


def garbage() -> bytes:
    return random.Random(7).randbytes(20_000)


def user_empty() -> bytes:
    """From the user, no Message-ID, no body at all."""
    return _head("user-empty", message_id=False) + b"\r\n"


def boom() -> bytes:
    """A fine message whose handling raises (the service is made to fail on it)."""
    return _head("boom") + b"\r\nPlease advise.\r\n"


def valid_ask(n: int) -> bytes:
    return mf.ask(
        f"<valid-{n}@client.example>",
        to=f"Mentor {n} <mentor{n}@mentors.example>",
        subject=f"Question number {n}",
    )


def corpus_malformed() -> list[bytes]:
    """Messages built to break parsers (stalwart's malformed set), when the corpora exist."""
    folder = CORPORA / "stalwart-mail-parser" / "malformed"
    return [path.read_bytes() for path in sorted(folder.glob("*.eml"))] if folder.is_dir() else []


# --- pure helpers ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("capabilities", "expected"),
    [
        ((b"IMAP4REV1", b"MOVE", b"UIDPLUS"), "move"),
        ((b"IMAP4REV1", b"MOVE"), "move"),
        (("IMAP4rev1", "move"), "move"),
        ((b"IMAP4REV1", b"UIDPLUS"), "copy-expunge"),
        ((b"IMAP4REV1", b"IDLE"), "copy-flag"),
        ((), "copy-flag"),
    ],
)
def test_quarantine_method(capabilities: tuple[bytes | str, ...], expected: str) -> None:
    assert quarantine_method(capabilities) == expected


@pytest.mark.parametrize(
    ("exc", "message", "expected"),
    [
        (UnprocessableMessage("no text"), FetchedMessage(b"", 10), "no text"),
        (ValueError("bad\n  thing"), FetchedMessage(b"", 10), "ValueError: bad thing"),
        (
            UnprocessableMessage("no text"),
            FetchedMessage(b"", 30_000_000, truncated=True),
            "no text (truncated from 30000000 bytes)",
        ),
    ],
)
def test_failure_reason(exc: Exception, message: FetchedMessage, expected: str) -> None:
    assert failure_reason(exc, message) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (user_empty(), "mail from ada@example.com with no Message-ID and no text"),
        (huge(200_000)[:150_000], "mail from ada@example.com with no Message-ID and no text"),
        (_head("no-id-but-text", message_id=False) + b"\r\nhello\r\n", ""),
        (_head("id-but-no-text") + b"\r\n", ""),
        (_head("stranger", sender="x@evil.example", message_id=False) + b"\r\n", ""),
        (garbage(), ""),
        (b"", ""),
    ],
)
def test_unusable_reason(raw: bytes, expected: str) -> None:
    assert unusable_reason(parse_message(raw), raw, IDENTITY) == expected


# --- helpers on the server -------------------------------------------------------------------


def append_all(account: ImapAccount, mails: list[bytes], folder: str | None = None) -> list[int]:
    """Append over one connection; the UIDs in order."""
    client = connect(account)
    try:
        uids = [appended_uid(client.append(folder or account.folder, raw)) for raw in mails]
        assert all(uids), "the test servers report APPENDUID"
        return [uid for uid in uids if uid]
    finally:
        client.logout()


@contextmanager
def examined(account: ImapAccount, folder: str) -> Iterator[IMAPClient]:
    client = connect(account)
    try:
        client.select_folder(folder, readonly=True)
        yield client
    finally:
        client.logout()


def cases_in(account: ImapAccount, folder: str) -> list[str]:
    """X-Test-Case of every message in ``folder`` (found with an IMAP SEARCH), in UID order."""
    client = connect(account)
    try:
        if not client.folder_exists(folder):
            return []
        client.select_folder(folder, readonly=True)
        uids = client.search(["HEADER", "X-Test-Case", ""])
        if not uids:
            return []
        found = client.fetch(uids, [b"BODY.PEEK[HEADER.FIELDS (X-TEST-CASE)]"])
        return [
            found[uid][b"BODY[HEADER.FIELDS (X-TEST-CASE)]"].decode().split(":", 1)[1].strip()
            for uid in sorted(found)
        ]
    finally:
        client.logout()


class Failing:
    """A handler that raises for chosen X-Test-Case values and records what it saw."""

    def __init__(self, failures: dict[str, Exception]) -> None:
        self.failures = failures
        self.seen: list[bytes] = []

    def __call__(self, uid: int, raw: bytes) -> None:
        self.seen.append(raw)
        for case, exc in self.failures.items():
            if f"X-Test-Case: {case}\r\n".encode() in raw:
                raise exc


# --- the watcher's quarantine ----------------------------------------------------------------


def test_failed_messages_are_moved_to_the_quarantine_folder(
    store: Store, any_imap_server: ImapAccount, caplog: pytest.LogCaptureFixture
) -> None:
    mails = [_head(f"m{n}") + b"\r\nhello\r\n" for n in range(4)]
    uids = append_all(any_imap_server, mails)
    handler = Failing({"m1": UnprocessableMessage("no text at all"), "m2": KeyError("bug")})
    checkpoints = store.checkpoints
    watcher = MailboxWatcher(any_imap_server, checkpoints, handler, quarantine_folder=QUARANTINE)
    with caplog.at_level(logging.INFO, "mailmentor.imap"):
        try:
            assert watcher.catch_up() == 4
        finally:
            watcher.close()
    assert cases_in(any_imap_server, QUARANTINE) == ["m1", "m2"]
    assert cases_in(any_imap_server, "INBOX") == ["m0", "m3"]
    stored = checkpoints.get_checkpoint(any_imap_server.key)
    assert stored is not None and stored[1] == uids[-1]

    failures = [r for r in caplog.records if "handler failed" in r.getMessage()]
    assert len(failures) == 2
    unusable, bug = failures
    assert f"UID {uids[1]}" in unusable.getMessage()
    assert "<m1@hostile.example>" in unusable.getMessage()
    assert "no text at all" in unusable.getMessage()
    assert unusable.levelno == logging.WARNING and not unusable.exc_info
    assert "KeyError: 'bug'" in bug.getMessage() and bug.exc_info is not None
    moved = [r.getMessage() for r in caplog.records if r.getMessage().startswith("quarantined")]
    assert len(moved) == 2
    assert "moved to 'Quarantine', a new folder" in moved[0]
    assert "moved to 'Quarantine'" in moved[1] and "new folder" not in moved[1]


def test_without_a_quarantine_folder_failed_messages_stay(
    store: Store, imap_server: ImapAccount, caplog: pytest.LogCaptureFixture
) -> None:
    append_all(imap_server, [_head("m0") + b"\r\nhello\r\n"])
    watcher = MailboxWatcher(imap_server, store.checkpoints, Failing({"m0": ValueError("x")}))
    with caplog.at_level(logging.INFO, "mailmentor.imap"):
        try:
            watcher.catch_up()
        finally:
            watcher.close()
    assert cases_in(imap_server, "INBOX") == ["m0"]
    assert "skipping it" in caplog.text and "quarantined" not in caplog.text


def test_a_truncated_message_is_quarantined_only_when_its_handler_fails(
    store: Store, imap_server: ImapAccount, caplog: pytest.LogCaptureFixture
) -> None:
    big_ok = _head("big-ok") + b"\r\n" + b"x" * 1_200_000 + b"\r\n"
    big_bad = _head("big-bad") + b"\r\n" + b"y" * 1_200_000 + b"\r\n"
    append_all(imap_server, [big_ok, big_bad])
    handler = Failing({"big-bad": UnprocessableMessage("nothing usable")})
    watcher = MailboxWatcher(
        imap_server,
        store.checkpoints,
        handler,
        max_message_bytes=100_000,
        quarantine_folder=QUARANTINE,
    )
    with caplog.at_level(logging.INFO, "mailmentor.imap"):
        try:
            assert watcher.catch_up() == 2
        finally:
            watcher.close()
    assert len(handler.seen) == 2, "a truncated message is still handed over"
    assert all(len(raw) < 1_100_000 for raw in handler.seen)
    assert cases_in(imap_server, "INBOX") == ["big-ok"]
    assert cases_in(imap_server, QUARANTINE) == ["big-bad"]
    failure = next(r for r in caplog.records if "handler failed" in r.getMessage())
    assert "nothing usable (truncated from" in failure.getMessage()


def test_a_quarantine_folder_equal_to_the_watched_one_moves_nothing(
    store: Store, imap_server: ImapAccount, caplog: pytest.LogCaptureFixture
) -> None:
    append_all(imap_server, [_head("m0") + b"\r\nhello\r\n"])
    handler = Failing({"m0": ValueError("x")})
    watcher = MailboxWatcher(imap_server, store.checkpoints, handler, quarantine_folder="INBOX")
    try:
        watcher.catch_up()
    finally:
        watcher.close()
    assert cases_in(imap_server, "INBOX") == ["m0"]
    assert "is the watched folder" in caplog.text


def test_a_failing_move_is_logged_and_the_watcher_goes_on(
    store: Store, pymap_server: LocalImapServer, caplog: pytest.LogCaptureFixture
) -> None:
    """The server goes away just as a message fails: the move is logged as failed, never
    raised, and the rest of the batch (already fetched) is still handed over."""
    account = pymap_server.account
    uids = append_all(account, [_head(f"m{n}") + b"\r\nhello\r\n" for n in range(2)])
    checkpoints = store.checkpoints

    def handler(uid: int, raw: bytes) -> None:
        if b"X-Test-Case: m0" in raw:
            pymap_server.stop()
            raise ValueError("x")

    watcher = MailboxWatcher(account, checkpoints, handler, quarantine_folder=QUARANTINE)
    try:
        assert watcher.catch_up() == 2
    finally:
        watcher.close()
    failed = next(r for r in caplog.records if "could not quarantine" in r.getMessage())
    assert f"UID {uids[0]} (Message-ID <m0@hostile.example>)" in failed.getMessage()
    assert "it stays in 'INBOX'" in failed.getMessage()
    stored = checkpoints.get_checkpoint(account.key)
    assert stored is not None and stored[1] == uids[-1]


@pytest.mark.parametrize(
    ("capabilities", "left_in_source", "done"),
    [
        ((b"MOVE",), False, "moved to 'Quarantine', a new folder"),
        ((b"UIDPLUS",), False, "copied to 'Quarantine' and expunged (no MOVE), a new folder"),
        (
            (),
            True,
            "copied to 'Quarantine' and flagged \\Deleted (neither MOVE nor UIDPLUS), a new folder",
        ),
    ],
)
def test_move_message_with_and_without_move_and_uidplus(
    imap_server: ImapAccount, capabilities: tuple[bytes, ...], left_in_source: bool, done: str
) -> None:
    uids = append_all(imap_server, [_head(f"m{n}") + b"\r\nhello\r\n" for n in range(2)])
    client = connect(imap_server)
    try:
        client.select_folder("INBOX")
        said = move_message(client, uids[0], QUARANTINE, capabilities)
        flags = client.get_flags(uids).get(uids[0], ())
    finally:
        client.logout()
    assert said == done
    assert cases_in(imap_server, QUARANTINE) == ["m0"]
    assert cases_in(imap_server, "INBOX") == (["m0", "m1"] if left_in_source else ["m1"])
    if left_in_source:
        assert b"\\Deleted" in flags, "left for the user's client to expunge"


def test_quarantine_message_refuses_a_stale_uidvalidity(any_imap_server: ImapAccount) -> None:
    uids = append_all(any_imap_server, [_head("m0") + b"\r\nhello\r\n"])
    said = quarantine_message(any_imap_server, uids[0], QUARANTINE, uidvalidity=1)
    assert said.startswith("not moved: UIDVALIDITY changed")
    assert cases_in(any_imap_server, "INBOX") == ["m0"]
    assert cases_in(any_imap_server, QUARANTINE) == []


# --- Service.handle_raw ----------------------------------------------------------------------


class NoDispatch:
    def deliver_later(self, loop_id: str, action_key: str) -> None:
        raise AssertionError("nothing is due in these tests")

    def send_later(self, job_key: str) -> None:
        raise AssertionError("nothing is answered in these tests")


def test_handle_raw_refuses_the_users_truly_broken_mail(store: Store, tmp_path: Path) -> None:
    settings = load_settings(
        data_dir=tmp_path,
        secret_key="s",
        service_address=mf.SERVICE,
        user_addresses=[mf.USER],
        redis_url="",
        imap_host="",
        smtp_host="",
    )
    intake = build_services(settings, store, NoDispatch()).intake
    with pytest.raises(UnprocessableMessage, match=r"ada@example\.com with no Message-ID"):
        intake.handle_raw(1, user_empty())
    assert list(store.loops.open_loops()) == []
    assert intake.handle_raw(2, garbage()) == Ignored("no usable From address")
    outcome = intake.handle_raw(3, broken_mime())
    assert isinstance(outcome, Ignored) and outcome.reason.startswith("not from a user address")
    outcome = intake.handle_raw(4, valid_ask(1))
    assert isinstance(outcome, Handled) and isinstance(outcome.effects[0], Created)
    assert intake.handle_raw(5, valid_ask(1)) == Duplicate()


# --- a stream of hostile mail through the whole running service -------------------------------


@pytest.fixture
def quarantine_stack(
    redis_server: Any,
    redis_client: Any,
    any_imap_server: ImapAccount,
    smtp_sink: SmtpSink,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Stack]:
    """`mailmentor run` on the test servers with QUARANTINE_FOLDER set; the service raises on
    the message tagged "boom"."""
    original: Callable[..., Outcome] = Intake.handle

    def handle(self: Intake, msg: ParsedMessage, origin: Origin, **options: bool) -> Outcome:
        if msg.message_id == "boom@hostile.example":
            raise RuntimeError("the service fell over")
        return original(self, msg, origin, **options)

    monkeypatch.setattr(Intake, "handle", handle)
    settings = stack_settings(
        redis_server.url,
        tmp_path / "data",
        imap_idle_renew=2.0,
        quarantine_folder=QUARANTINE,
    )
    stack = Stack(
        settings, clock=ManualClock(), imap=any_imap_server, smtp=smtp_sink.start(), scheduler=False
    )
    stack.start()
    try:
        yield stack
    finally:
        stack.stop()


def test_a_stream_of_hostile_mail_never_stops_the_watcher(
    quarantine_stack: Stack, any_imap_server: ImapAccount
) -> None:
    account = any_imap_server
    hostile = [
        broken_mime(),
        header_injection(),
        unknown_charset(),
        deeply_nested(),
        huge(),
        garbage(),
        user_empty(),
        boom(),
        *corpus_malformed(),
    ]
    stream: list[bytes] = []
    for n, bad in enumerate(hostile):
        stream += [valid_ask(n), bad]
    stream.append(valid_ask(len(hostile)))
    uids = append_all(account, stream)
    store = quarantine_stack.store

    def checkpoint() -> int:
        found = store.checkpoints.get_checkpoint(account.key)
        return found[1] if found else 0

    wait_for(lambda: checkpoint() >= uids[-1], what="the checkpoint to pass every message")
    for n in range(len(hostile) + 1):
        assert store.loops.lookup([f"valid-{n}@client.example"]), f"ask {n} has no loop"
    # exactly the messages whose handling failed were moved, with an IMAP SEARCH to prove it
    assert sorted(cases_in(account, QUARANTINE)) == ["boom", "huge", "user-empty"]
    left = cases_in(account, "INBOX")
    assert {"boom", "huge", "user-empty"}.isdisjoint(left)
    assert {"broken-mime", "header-injection", "unknown-charset", "nested"} <= set(left)

    # still watching: the next ask arrives live and becomes a loop
    watcher = next(t for t in quarantine_stack._threads if t.name == "mailmentor-watcher")
    assert watcher.is_alive()
    last = append_message(account, valid_ask(999))
    wait_for(
        lambda: bool(store.loops.lookup(["valid-999@client.example"])),
        what="a loop for the ask sent after the stream",
        timeout=30,
    )
    # the checkpoint is written just after the loop's commit, so wait for it too
    assert last is not None
    wait_for(lambda: checkpoint() >= last, what="the checkpoint to pass the last ask", timeout=30)
