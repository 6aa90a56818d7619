"""Marks set after a message was read (mailbox mode): the watcher hands the message over again,
once, as marked. On real servers with the Redis MarkStore."""

from __future__ import annotations

import threading

import pytest

from mailmentor.imap import ImapAccount, MailboxWatcher, MessageMeta, connect
from mailmentor.mailbox_mode import Tracking
from mailmentor.store import Store
from tests.imap._support import make_mail, running
from tests.waiting import wait_for

KEYWORD = "$mentor"


class MetaRecorder:
    """A meta handler that records (uid, Message-ID line, flags)."""

    def __init__(self) -> None:
        self.seen: list[tuple[int, tuple[str, ...]]] = []
        self._lock = threading.Lock()

    def __call__(self, uid: int, raw: bytes, meta: MessageMeta) -> None:
        with self._lock:
            self.seen.append((uid, meta.flags))

    def marked(self) -> list[int]:
        with self._lock:
            return [uid for uid, flags in self.seen if KEYWORD in flags]


def append(account: ImapAccount, raw: bytes, flags: tuple[str, ...] = ()) -> None:
    client = connect(account)
    try:
        client.append(account.folder, raw, flags=flags)
    finally:
        client.logout()


def set_keyword(account: ImapAccount, uid: int, on: bool = True) -> None:
    """What the user's mail client does when they tag a message."""
    client = connect(account)
    try:
        client.select_folder(account.folder)
        if on:
            client.add_flags([uid], [KEYWORD])
        else:
            client.remove_flags([uid], [KEYWORD])
    finally:
        client.logout()


@pytest.fixture
def dovecot_account(dovecot_server: object) -> ImapAccount:
    """Dovecot only: pymap answers STORE +FLAGS ($mentor) with no flags and keeps none."""
    return dovecot_server.add_user()  # type: ignore[attr-defined,no-any-return]


def watcher_for(account: ImapAccount, store: Store, handler: MetaRecorder) -> MailboxWatcher:
    return MailboxWatcher(
        account,
        store.checkpoints,
        meta_handler=handler,
        leases=store.leases,
        marking=Tracking(keyword=KEYWORD),
        marks=store.checkpoints,
        idle_renew=5.0,
    )


def test_a_keyword_set_later_hands_the_message_over_once(
    dovecot_account: ImapAccount, store: Store
) -> None:
    append(dovecot_account, make_mail(1))
    append(dovecot_account, make_mail(2))
    handler = MetaRecorder()
    watcher = watcher_for(dovecot_account, store, handler)
    with running(watcher):
        wait_for(lambda: len(handler.seen) == 2, what="both messages read")
        assert handler.marked() == []
        set_keyword(dovecot_account, 2)  # IDLE reports the flag change
        wait_for(lambda: handler.marked() == [2], what="the marked message again")
        # Unmarking and marking again, or any later catch-up, does not repeat it.
        set_keyword(dovecot_account, 2, on=False)
        set_keyword(dovecot_account, 2)
        append(dovecot_account, make_mail(3))
        wait_for(lambda: len(handler.seen) == 4, what="the next new message")
    assert [uid for uid, _ in handler.seen] == [1, 2, 2, 3]

    # A restarted watcher remembers (in Redis) what it already handed over as marked.
    again = MetaRecorder()
    restarted = watcher_for(dovecot_account, store, again)
    try:
        assert restarted.catch_up() == 0
    finally:
        restarted.close()
    assert again.seen == []


def test_a_message_that_arrives_marked_is_not_handed_over_twice(
    dovecot_account: ImapAccount, store: Store
) -> None:
    append(dovecot_account, make_mail(1), flags=(KEYWORD,))
    handler = MetaRecorder()
    watcher = watcher_for(dovecot_account, store, handler)
    try:
        assert watcher.catch_up() == 1
        assert watcher.catch_up() == 0
    finally:
        watcher.close()
    assert handler.marked() == [1]


def test_marks_are_forgotten_with_the_uidvalidity(store: Store) -> None:
    store.checkpoints.handled_marks("box", 7, [1, 2])
    assert store.checkpoints.unhandled_marks("box", 7, [1, 2, 3]) == [3]
    assert store.checkpoints.unhandled_marks("box", 8, [1, 2]) == [1, 2]  # a new mailbox generation
    store.checkpoints.handled_marks("box", 8, [2])
    assert store.checkpoints.unhandled_marks("box", 8, [1, 2]) == [1]
    assert store.checkpoints.unhandled_marks("box", 7, [1]) == [1]


def test_a_watcher_without_a_store_for_marks_is_refused(dovecot_account: ImapAccount) -> None:
    with pytest.raises(TypeError, match="marks"):
        MailboxWatcher(
            dovecot_account,
            Store.__new__(Store),
            meta_handler=MetaRecorder(),
            marking=Tracking(keyword=KEYWORD),
        )
