"""The watcher's MessageMeta (folder, FLAGS, Gmail labels) on pymap and Dovecot, and the pure
parsing of FLAGS and X-GM-LABELS values (Gmail itself cannot run on loopback)."""

from __future__ import annotations

import dataclasses
import threading

import pytest
from imapclient.response_parser import parse_fetch_response

from mailmentor.imap import (
    ImapAccount,
    MailboxWatcher,
    MessageMeta,
    connect,
    gmail_labels,
    message_flags,
    message_id_of,
)
from mailmentor.store import Store
from tests.imap._support import make_mail, running
from tests.waiting import wait_for


class MetaRecorder:
    """A meta_handler that records (uid, Message-ID, meta)."""

    def __init__(self) -> None:
        self.seen: list[tuple[int, str | None, MessageMeta]] = []
        self._lock = threading.Lock()

    def __call__(self, uid: int, raw: bytes, meta: MessageMeta) -> str:
        with self._lock:
            self.seen.append((uid, message_id_of(raw), meta))
        return "recorded"

    def metas(self) -> dict[str | None, MessageMeta]:
        with self._lock:
            return {mid: meta for _, mid, meta in self.seen}


def append_flagged(account: ImapAccount, folder: str, mails: list[tuple[bytes, list[str]]]) -> None:
    """APPEND with flags over one connection, creating ``folder`` when missing."""
    client = connect(account)
    try:
        if not client.folder_exists(folder):
            client.create_folder(folder)
        for raw, flags in mails:
            client.append(folder, raw, flags=tuple(flags))
    finally:
        client.logout()


def _fetched(line: bytes) -> dict[bytes, object]:
    """One untagged FETCH response as imapclient parses it (what fetch_messages sees)."""
    parsed = parse_fetch_response([line])
    return dict(parsed[next(iter(parsed))])


# --- pure parsing ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (rb"1 (UID 7 X-GM-LABELS (\Inbox mentor))", ("\\Inbox", "mentor")),
        (rb'1 (UID 7 X-GM-LABELS ("My Mentors" \Important))', ("My Mentors", "\\Important")),
        (rb"1 (UID 7 X-GM-LABELS (&AOQ-rger Caf&AOk-))", ("ärger", "Café")),
        (rb'1 (UID 7 X-GM-LABELS ("R&-D" 2026))', ("R&D", "2026")),
        (rb"1 (UID 7 X-GM-LABELS ())", ()),
        (rb"1 (UID 7 X-GM-LABELS NIL)", ()),
        (rb'1 (UID 7 X-GM-LABELS ("" "  " mentor))', ("mentor",)),
    ],
)
def test_gmail_labels_from_a_fetch_response(line: bytes, expected: tuple[str, ...]) -> None:
    assert gmail_labels(_fetched(line).get(b"X-GM-LABELS")) == expected


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (rb"1 (UID 7 FLAGS (\Seen $mentor))", ("\\Seen", "$mentor")),
        (rb"1 (UID 7 FLAGS ())", ()),
        (rb"1 (UID 7 FLAGS (\Recent))", ("\\Recent",)),
    ],
)
def test_message_flags_from_a_fetch_response(line: bytes, expected: tuple[str, ...]) -> None:
    assert message_flags(_fetched(line).get(b"FLAGS")) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, ()),
        (b"mentor", ("mentor",)),
        ("mentor", ("mentor",)),
        (42, ("42",)),
        ((b"&broken", b"ok"), ("&broken", "ok")),
        ((b"\xff\xfe",), ("\ufffd\ufffd",)),
        (object(), None),  # anything goes, as long as it does not raise
    ],
)
def test_label_and_flag_parsing_never_raises(
    value: object, expected: tuple[str, ...] | None
) -> None:
    for parse in (gmail_labels, message_flags):
        result = parse(value)
        assert isinstance(result, tuple)
        if expected is not None and parse is gmail_labels:
            assert result == expected


def test_exactly_one_handler_is_required(store: Store, imap_server: ImapAccount) -> None:
    with pytest.raises(TypeError, match="exactly one"):
        MailboxWatcher(imap_server, store.checkpoints)
    with pytest.raises(TypeError, match="exactly one"):
        MailboxWatcher(
            imap_server, store.checkpoints, lambda u, r: None, meta_handler=MetaRecorder()
        )


# --- on real servers -------------------------------------------------------------------------


def test_meta_handler_gets_folder_and_flags(store: Store, any_imap_server: ImapAccount) -> None:
    append_flagged(
        any_imap_server,
        "INBOX",
        [(make_mail(1), ["$mentor", "\\Flagged"]), (make_mail(2), []), (make_mail(3), ["\\Seen"])],
    )
    handler = MetaRecorder()
    watcher = MailboxWatcher(any_imap_server, store.checkpoints, meta_handler=handler)
    try:
        assert watcher.catch_up() == 3
    finally:
        watcher.close()
    metas = handler.metas()
    marked, plain, seen = (metas[f"<m{n}@example.com>"] for n in (1, 2, 3))
    assert marked.folder == plain.folder == "INBOX"
    assert {"$mentor", "\\Flagged"} <= set(marked.flags)
    assert "$mentor" not in plain.flags and "\\Flagged" not in plain.flags
    assert "\\Seen" in seen.flags
    assert marked.labels == plain.labels == ()  # no X-GM-EXT-1 here


def test_each_folder_has_its_own_checkpoint(store: Store, any_imap_server: ImapAccount) -> None:
    append_flagged(any_imap_server, "INBOX", [(make_mail(1), [])])
    append_flagged(any_imap_server, "Sent", [(make_mail(2), ["$mentor"]), (make_mail(3), [])])
    sent_account = dataclasses.replace(any_imap_server, folder="Sent")
    checkpoints = store.checkpoints
    inbox, sent = MetaRecorder(), MetaRecorder()
    watchers = [
        MailboxWatcher(any_imap_server, checkpoints, meta_handler=inbox),
        MailboxWatcher(sent_account, checkpoints, meta_handler=sent),
    ]
    try:
        assert [w.catch_up() for w in watchers] == [1, 2]
        assert [w.catch_up() for w in watchers] == [0, 0]
    finally:
        for w in watchers:
            w.close()
    assert list(inbox.metas()) == ["<m1@example.com>"]
    assert list(sent.metas()) == ["<m2@example.com>", "<m3@example.com>"]
    assert {m.folder for m in sent.metas().values()} == {"Sent"}
    assert "$mentor" in sent.metas()["<m2@example.com>"].flags
    assert checkpoints.get_checkpoint(any_imap_server.key) is not None
    assert checkpoints.get_checkpoint(sent_account.key) is not None
    assert watchers[0].lease_name != watchers[1].lease_name


def test_oversized_message_keeps_its_flags(store: Store, any_imap_server: ImapAccount) -> None:
    append_flagged(any_imap_server, "INBOX", [(make_mail(1, body="x" * 300_000), ["$mentor"])])
    handler = MetaRecorder()
    watcher = MailboxWatcher(
        any_imap_server, store.checkpoints, meta_handler=handler, max_message_bytes=100_000
    )
    try:
        assert watcher.catch_up() == 1
    finally:
        watcher.close()
    assert "$mentor" in handler.metas()["<m1@example.com>"].flags


def test_running_watcher_passes_flags_of_new_mail(
    store: Store, any_imap_server: ImapAccount
) -> None:
    handler = MetaRecorder()
    watcher = MailboxWatcher(
        any_imap_server, store.checkpoints, meta_handler=handler, idle_renew=2.0
    )
    with running(watcher):
        wait_for(lambda: watcher._client is not None, what="the watcher to connect")
        append_flagged(any_imap_server, "INBOX", [(make_mail(5), ["$mentor"])])
        wait_for(lambda: len(handler.seen) == 1, what="the new message")
    assert "$mentor" in handler.metas()["<m5@example.com>"].flags
