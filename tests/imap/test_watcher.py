"""mailmentor.imap against real IMAP servers (pymap, and Dovecot when installed) on loopback."""

from __future__ import annotations

import dataclasses
import logging
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from functools import partial
from pathlib import Path

import pytest
import trustme

from mailmentor.backoff import backoff_delay
from mailmentor.errors import LoginError, MailboxError
from mailmentor.imap import (
    FETCH_BATCH,
    ImapAccount,
    MailboxWatcher,
    appended_uid,
    connect,
    fetch_messages,
    message_id_of,
    size_chunks,
    uid_batches,
)
from mailmentor.imap.watcher import _data_waiting
from mailmentor.sandbox.imap_server import LocalImapServer, free_port
from mailmentor.store import Store
from mailmentor.store.leases import Held, HeldByOther
from tests.imap._support import Recorder, append_all, make_mail, running
from tests.waiting import wait_for

# --- helpers -------------------------------------------------------------------------------


def _has_seen(handler: Recorder, count: int) -> bool:
    return len(handler.seen) == count


def idle_started(watcher: MailboxWatcher) -> bool:
    client = watcher._client
    return client is not None and client._idle_tag is not None


# --- pure helpers --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"Message-ID: <a@b>\r\n\r\nbody", "<a@b>"),
        (b"Subject: x\nmessage-id:   <c@d>  \n\nbody", "<c@d>"),
        (b"Message-ID:\r\n <folded@x>\r\nSubject: y\r\n\r\n", "<folded@x>"),
        (b"Subject: none\r\n\r\nMessage-ID: <in-body@x>\r\n", None),
        (b"", None),
        (b"\xff\xfe\x00garbage", None),
        (b"Message-ID: <\xff@x>\r\n\r\n", "<\ufffd@x>"),
    ],
)
def test_message_id_of(raw: bytes, expected: str | None) -> None:
    assert message_id_of(raw) == expected


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        (b"[APPENDUID 3626417437 101] APPEND completed.", 101),
        ("[appenduid 1 7] done", 7),
        (b"APPEND completed.", None),
        (None, None),
    ],
)
def test_appended_uid(response: bytes | str | None, expected: int | None) -> None:
    assert appended_uid(response) == expected


@pytest.mark.parametrize(
    ("uids", "size", "expected"),
    [([], 2, []), ([1, 2, 3], 2, [[1, 2], [3]]), ([5, 9], 50, [[5, 9]])],
)
def test_uid_batches(uids: list[int], size: int, expected: list[list[int]]) -> None:
    assert list(uid_batches(uids, size)) == expected


@pytest.mark.parametrize(
    ("sizes", "budget", "expected"),
    [
        ({1: 10, 2: 10, 3: 10}, 25, [[1, 2], [3]]),
        ({1: 100, 2: 1}, 25, [[1], [2]]),
        ({1: 1, 2: 1, 3: 1}, 25, [[1, 2, 3]]),
    ],
)
def test_size_chunks(sizes: dict[int, int], budget: int, expected: list[list[int]]) -> None:
    assert list(size_chunks(sorted(sizes), sizes, budget)) == expected


@pytest.mark.parametrize(
    ("attempt", "rand", "expected"),
    [(0, 0.0, 0.5), (0, 0.999, 0.9995), (3, 0.0, 4.0), (20, 0.0, 150.0), (10_000, 0.0, 150.0)],
)
def test_backoff_delay(attempt: int, rand: float, expected: float) -> None:
    assert backoff_delay(attempt, 1.0, 300.0, rand) == pytest.approx(expected)


def test_account_repr_and_key_hide_the_password() -> None:
    account = ImapAccount("imap.example.com", 993, "me@example.com", "hunter2-secret")
    assert "hunter2-secret" not in repr(account)
    assert account.key == "me@example.com@imap.example.com:993/INBOX"


# --- connect / append ----------------------------------------------------------------------


def test_login_error_names_user_and_hides_password(any_imap_server: ImapAccount) -> None:
    bad = ImapAccount(
        any_imap_server.host, any_imap_server.port, any_imap_server.user, "Wr0ng-S3cret!", "none"
    )
    with pytest.raises(LoginError) as caught:
        connect(bad, timeout=5)
    text = str(caught.value)
    assert "Wr0ng-S3cret!" not in text
    assert f"{bad.user} on {bad.host}:{bad.port}" in text


def test_unreachable_server_is_a_mailbox_error_naming_host_and_port() -> None:
    port = free_port()
    account = ImapAccount("127.0.0.1", port, "me", "pw-not-shown", security="none")
    with pytest.raises(MailboxError) as caught:
        connect(account, timeout=2)
    assert not isinstance(caught.value, LoginError)
    assert f"127.0.0.1:{port}" in str(caught.value)
    assert "pw-not-shown" not in str(caught.value)


def test_missing_folder_is_named(any_imap_server: ImapAccount) -> None:
    account = ImapAccount(
        any_imap_server.host,
        any_imap_server.port,
        any_imap_server.user,
        any_imap_server.password,
        security="none",
        folder="No-Such-Folder",
    )
    with pytest.raises(MailboxError, match="No-Such-Folder"):
        connect(account, timeout=5)


def test_tls_to_a_plaintext_server_is_a_mailbox_error(imap_server: ImapAccount) -> None:
    account = ImapAccount(imap_server.host, imap_server.port, "u", "p", security="ssl")
    with pytest.raises(MailboxError, match=r"TLS|reach"):
        connect(account, timeout=5)


def test_append_message_returns_the_uid(any_imap_server: ImapAccount) -> None:
    from mailmentor.imap import append_message

    first = append_message(any_imap_server, make_mail(1))
    second = append_message(any_imap_server, make_mail(2), flags=["\\Flagged"])
    assert first is not None and second is not None and second > first


# --- the watcher ---------------------------------------------------------------------------


def test_catch_up_processes_existing_mail_in_uid_order_exactly_once(
    store: Store,
    any_imap_server: ImapAccount,
) -> None:
    append_all(any_imap_server, [make_mail(n) for n in range(3)])
    checkpoints, recorder = store.checkpoints, Recorder()
    checkpoints_seen: list[int] = []

    def handler(uid: int, raw: bytes) -> None:
        found = checkpoints.get_checkpoint(any_imap_server.key)
        checkpoints_seen.append(found[1] if found else 0)
        recorder(uid, raw)

    watcher = MailboxWatcher(any_imap_server, checkpoints, handler)
    try:
        assert watcher.catch_up() == 3
        assert watcher.catch_up() == 0
    finally:
        watcher.close()
    assert recorder.ids == ["<m0@example.com>", "<m1@example.com>", "<m2@example.com>"]
    assert recorder.uids == sorted(recorder.uids)
    assert recorder.seen[0][1].startswith(b"From: Ada")
    stored = checkpoints.get_checkpoint(any_imap_server.key)
    assert stored is not None and stored[1] == recorder.uids[-1]
    assert checkpoints_seen == [0, 0, 0]  # one batch: the checkpoint moves after it
    client = connect(any_imap_server)
    try:
        flags = client.fetch(recorder.uids, ["FLAGS"])
    finally:
        client.logout()
    assert all(b"\\Seen" not in data[b"FLAGS"] for data in flags.values())


def test_catch_up_fetches_in_batches_and_checkpoints_after_each(
    store: Store, imap_server: ImapAccount
) -> None:
    append_all(imap_server, [make_mail(n) for n in range(120)])
    recorder = Recorder()
    checkpoints_seen: list[int] = []

    def handler(uid: int, raw: bytes) -> None:
        found = store.checkpoints.get_checkpoint(imap_server.key)
        checkpoints_seen.append(found[1] if found else 0)
        recorder(uid, raw)

    watcher = MailboxWatcher(imap_server, store.checkpoints, handler)
    try:
        assert watcher.catch_up() == 120
    finally:
        watcher.close()
    assert recorder.ids == [f"<m{n}@example.com>" for n in range(120)]
    uids = recorder.uids
    expected = [0] * FETCH_BATCH + [uids[FETCH_BATCH - 1]] * FETCH_BATCH
    expected += [uids[2 * FETCH_BATCH - 1]] * (120 - 2 * FETCH_BATCH)
    assert checkpoints_seen == expected
    stored = store.checkpoints.get_checkpoint(imap_server.key)
    assert stored is not None and stored[1] == uids[-1]


def test_stop_in_the_middle_of_a_batch_keeps_what_was_handed_over(
    store: Store, any_imap_server: ImapAccount
) -> None:
    append_all(any_imap_server, [make_mail(n) for n in range(4)])
    recorder = Recorder()
    watchers: list[MailboxWatcher] = []

    def stopping(uid: int, raw: bytes) -> None:
        recorder(uid, raw)
        if len(recorder.seen) == 2:
            watchers[0].stop()

    watcher = MailboxWatcher(any_imap_server, store.checkpoints, stopping)
    watchers.append(watcher)
    try:
        assert watcher.catch_up() == 2
    finally:
        watcher.close()
    stored = store.checkpoints.get_checkpoint(any_imap_server.key)
    assert stored is not None and stored[1] == recorder.uids[1]
    rest = Recorder()
    second = MailboxWatcher(any_imap_server, store.checkpoints, rest)
    try:
        assert second.catch_up() == 2
    finally:
        second.close()
    assert rest.ids == ["<m2@example.com>", "<m3@example.com>"]


def test_a_restarted_watcher_does_not_reprocess(store: Store, any_imap_server: ImapAccount) -> None:
    append_all(any_imap_server, [make_mail(1), make_mail(2)])
    checkpoints = store.checkpoints
    first = MailboxWatcher(any_imap_server, checkpoints, Recorder())
    assert first.catch_up() == 2
    first.close()
    append_all(any_imap_server, [make_mail(3)])
    handler = Recorder()
    second = MailboxWatcher(any_imap_server, checkpoints, handler)
    try:
        assert second.catch_up() == 1
    finally:
        second.close()
    assert handler.ids == ["<m3@example.com>"]


def test_uidvalidity_change_rescans_from_uid_1(
    store: Store, any_imap_server: ImapAccount, caplog: pytest.LogCaptureFixture
) -> None:
    append_all(any_imap_server, [make_mail(1), make_mail(2)])
    checkpoints, handler = store.checkpoints, Recorder()
    checkpoints.set_checkpoint(any_imap_server.key, 12345, 1_000_000)
    watcher = MailboxWatcher(any_imap_server, checkpoints, handler)
    with caplog.at_level(logging.WARNING, "mailmentor.imap"):
        try:
            assert watcher.catch_up() == 2
        finally:
            watcher.close()
    assert "UIDVALIDITY" in caplog.text and "re-scanning" in caplog.text
    stored = checkpoints.get_checkpoint(any_imap_server.key)
    assert stored is not None and stored[0] != 12345 and stored[1] == handler.uids[-1]


def test_a_failing_handler_is_logged_and_skipped(
    store: Store, imap_server: ImapAccount, caplog: pytest.LogCaptureFixture
) -> None:
    append_all(imap_server, [make_mail(n) for n in range(3)])
    checkpoints = store.checkpoints
    handler = Recorder(fail_on=frozenset({"<m0@example.com>"}))
    watcher = MailboxWatcher(imap_server, checkpoints, handler)
    with caplog.at_level(logging.ERROR, "mailmentor.imap"):
        try:
            assert watcher.catch_up() == 3
        finally:
            watcher.close()
    assert len(handler.seen) == 3
    failure = next(r for r in caplog.records if "handler failed" in r.getMessage())
    assert f"UID {handler.uids[0]}" in failure.getMessage()
    assert "<m0@example.com>" in failure.getMessage()
    assert failure.exc_info is not None
    stored = checkpoints.get_checkpoint(imap_server.key)
    assert stored is not None and stored[1] == handler.uids[-1]


def test_a_lease_lost_in_the_middle_of_a_batch_writes_no_checkpoint(
    store: Store, imap_server: ImapAccount
) -> None:
    """The loser of the lease does not move the checkpoint for what it handled of the batch:
    the new holder reads those messages again (their effects are applied once, by marks)."""
    append_all(imap_server, [make_mail(n) for n in range(4)])
    recorder = Recorder()
    watchers: list[MailboxWatcher] = []

    def losing(uid: int, raw: bytes) -> None:
        recorder(uid, raw)
        if len(recorder.seen) == 2:  # the lease expires (as if this process hung) and is taken
            store.client.delete(store.ns.key("lease", watchers[0].lease_name))
            taken = store.leases.acquire(watchers[0].lease_name, "b", timedelta(seconds=60))
            assert isinstance(taken, Held)
            time.sleep(0.15)  # past this watcher's next lease check

    first = MailboxWatcher(
        imap_server, store.checkpoints, losing, leases=store.leases, owner="a", lease_ttl=0.3
    )
    watchers.append(first)
    try:
        assert first.catch_up() == 2
    finally:
        first.close()
    assert store.checkpoints.get_checkpoint(imap_server.key) is None
    rest = Recorder()
    second = MailboxWatcher(imap_server, store.checkpoints, rest, leases=store.leases, owner="b")
    try:
        assert second.catch_up() == 4
    finally:
        second.close()
    assert rest.ids == [f"<m{n}@example.com>" for n in range(4)]


def test_fetch_reads_the_usual_message_in_one_fetch_and_a_longer_one_again_whole(
    any_imap_server: ImapAccount,
) -> None:
    """With a 100 KB budget for two messages, each gets 50 KB in the first FETCH: the short one
    is complete there, the 150 KB one is read again whole (it is under max_bytes)."""
    short, long = make_mail(0), make_mail(1, body="y" * 150_000)
    append_all(any_imap_server, [short, long])
    client = connect(any_imap_server)
    try:
        client.select_folder(any_imap_server.folder, readonly=True)
        uids = sorted(int(uid) for uid in client.search(["ALL"]))
        found = fetch_messages(client, uids, 1_000_000, "test", meta=True, budget=100_000)
    finally:
        client.logout()
    assert [found[uid].raw for uid in uids] == [short, long]
    assert [found[uid].size for uid in uids] == [len(short), len(long)]
    assert not any(found[uid].truncated for uid in uids)
    assert all("\\Seen" not in found[uid].flags for uid in uids)


def test_a_message_exactly_the_first_fetchs_size_is_read_whole(
    any_imap_server: ImapAccount,
) -> None:
    """Filling the bytes asked for in the first FETCH is no proof of the end (RFC822.SIZE is not
    trusted: servers may under-report it): such a message is read again, whole."""
    exact = make_mail(0, body="z" * 3000)
    budget = 2 * len(exact)  # two messages: each gets exactly len(exact) bytes at first
    append_all(any_imap_server, [exact, make_mail(1)])
    client = connect(any_imap_server)
    try:
        client.select_folder(any_imap_server.folder, readonly=True)
        uids = sorted(int(uid) for uid in client.search(["ALL"]))
        found = fetch_messages(client, uids, 1_000_000, "test", budget=budget)
    finally:
        client.logout()
    assert found[uids[0]].raw == exact
    assert not found[uids[0]].truncated


def test_oversized_message_passes_header_and_the_start_of_its_text(
    store: Store, any_imap_server: ImapAccount, caplog: pytest.LogCaptureFixture
) -> None:
    big = make_mail(1, body="x" * 1_200_000)
    append_all(any_imap_server, [make_mail(0), big])
    handler = Recorder()
    watcher = MailboxWatcher(any_imap_server, store.checkpoints, handler, max_message_bytes=100_000)
    with caplog.at_level(logging.WARNING, "mailmentor.imap"):
        try:
            assert watcher.catch_up() == 2
        finally:
            watcher.close()
    small_raw, big_raw = handler.seen[0][1], handler.seen[1][1]
    assert small_raw == make_mail(0)
    header, _, text = big_raw.partition(b"\r\n\r\n")
    assert header == big.partition(b"\r\n\r\n")[0]
    assert message_id_of(big_raw) == "<m1@example.com>"
    assert len(text) == 1_000_000 and set(text) == {ord("x")}
    assert "truncated" in caplog.text


def test_idle_sees_mail_appended_by_another_connection(
    store: Store, any_imap_server: ImapAccount
) -> None:
    handler = Recorder()
    watcher = MailboxWatcher(any_imap_server, store.checkpoints, handler)
    with running(watcher):
        wait_for(lambda: idle_started(watcher), what="IDLE")
        started = time.monotonic()
        append_all(any_imap_server, [make_mail(7)])
        wait_for(lambda: handler.ids == ["<m7@example.com>"], timeout=5, what="the new mail")
        assert time.monotonic() - started < 3
        wait_for(lambda: idle_started(watcher), what="IDLE again")
        append_all(any_imap_server, [make_mail(8)])
        wait_for(lambda: len(handler.seen) == 2, timeout=5, what="the second mail")
    assert handler.ids == ["<m7@example.com>", "<m8@example.com>"]


def test_polling_fallback_sees_new_mail(store: Store, imap_server: ImapAccount) -> None:
    handler = Recorder()
    watcher = MailboxWatcher(
        imap_server, store.checkpoints, handler, use_idle=False, poll_interval=0.2
    )
    with running(watcher):
        wait_for(lambda: watcher._client is not None, what="the first connection")
        append_all(imap_server, [make_mail(1)])
        wait_for(lambda: handler.ids == ["<m1@example.com>"], timeout=5, what="the polled mail")
        assert not idle_started(watcher)


def test_handler_failure_does_not_stop_the_running_watcher(
    store: Store, imap_server: ImapAccount
) -> None:
    handler = Recorder(fail_on=frozenset({"<m1@example.com>"}))
    watcher = MailboxWatcher(imap_server, store.checkpoints, handler)
    with running(watcher):
        wait_for(lambda: idle_started(watcher), what="IDLE")
        append_all(imap_server, [make_mail(1)])
        wait_for(lambda: len(handler.seen) == 1, what="the poison mail")
        append_all(imap_server, [make_mail(2)])
        wait_for(lambda: len(handler.seen) == 2, what="the next mail")


def test_reconnects_after_the_server_restarts(
    store: Store, pymap_server: LocalImapServer, caplog: pytest.LogCaptureFixture
) -> None:
    account = pymap_server.account
    handler = Recorder()
    watcher = MailboxWatcher(
        account, store.checkpoints, handler, backoff_initial=0.05, backoff_max=0.5
    )
    with caplog.at_level(logging.INFO, "mailmentor.imap"), running(watcher):
        wait_for(lambda: idle_started(watcher), what="IDLE")
        append_all(account, [make_mail(1)])
        wait_for(lambda: len(handler.seen) == 1, what="the first mail")
        pymap_server.stop()
        pymap_server.start()  # same port, new (empty) mailbox with a new UIDVALIDITY
        assert pymap_server.account == account
        append_all(account, [make_mail(2)])
        wait_for(lambda: len(handler.seen) == 2, what="mail after the restart")
    assert handler.ids == ["<m1@example.com>", "<m2@example.com>"]
    assert "reconnecting in" in caplog.text
    assert "reconnected" in caplog.text


def test_reconnects_after_the_socket_dies(store: Store, any_imap_server: ImapAccount) -> None:
    handler = Recorder()
    watcher = MailboxWatcher(any_imap_server, store.checkpoints, handler, backoff_initial=0.05)
    with running(watcher):
        wait_for(lambda: idle_started(watcher), what="IDLE")
        client = watcher._client
        assert client is not None
        first_connection = client
        client.socket().shutdown(socket.SHUT_RDWR)
        append_all(any_imap_server, [make_mail(1)])
        wait_for(lambda: len(handler.seen) == 1, what="mail after the drop")
        assert watcher._client is not first_connection


def test_stop_returns_promptly_and_logs_out(store: Store, any_imap_server: ImapAccount) -> None:
    watcher = MailboxWatcher(any_imap_server, store.checkpoints, Recorder(), idle_renew=600)
    thread = threading.Thread(target=watcher.run, daemon=True)
    thread.start()
    wait_for(lambda: idle_started(watcher), what="IDLE")
    started = time.monotonic()
    watcher.stop()
    thread.join(timeout=5)
    assert not thread.is_alive()
    assert time.monotonic() - started < 2.0
    assert watcher._client is None


def test_stop_before_run_returns_at_once(store: Store, imap_server: ImapAccount) -> None:
    watcher = MailboxWatcher(imap_server, store.checkpoints, Recorder())
    watcher.stop()
    started = time.monotonic()
    watcher.run()
    assert time.monotonic() - started < 1.0


def test_only_the_lease_holder_processes(
    store: Store, imap_server: ImapAccount, caplog: pytest.LogCaptureFixture
) -> None:
    leases, checkpoints = store.leases, store.checkpoints
    first_handler, second_handler = Recorder(), Recorder()
    first = MailboxWatcher(
        imap_server, checkpoints, first_handler, leases=leases, owner="first", lease_ttl=1.5
    )
    second = MailboxWatcher(
        imap_server, checkpoints, second_handler, leases=leases, owner="second", lease_ttl=1.5
    )
    with caplog.at_level(logging.INFO, "mailmentor.imap"):
        with running(first):
            wait_for(lambda: idle_started(first), what="the first watcher to IDLE")
            with running(second):
                append_all(imap_server, [make_mail(1), make_mail(2)])
                wait_for(lambda: len(first_handler.seen) == 2, what="the lease holder")
                time.sleep(1.2)  # long enough for the lease to be renewed and re-checked
                assert second_handler.seen == []
                assert second._client is None  # a standby watcher keeps no connection
                assert leases.holder(first.lease_name) == "first"
                first.stop()
                append_all(imap_server, [make_mail(3)])
                wait_for(lambda: len(second_handler.seen) == 1, what="the takeover")
        assert second_handler.ids == ["<m3@example.com>"]
    assert caplog.text.count("another watcher holds") == 1
    assert leases.holder(first.lease_name) is None  # both released on stop


def test_run_keeps_retrying_a_login_error_without_showing_the_password(
    store: Store, imap_server: ImapAccount, caplog: pytest.LogCaptureFixture
) -> None:
    bad = ImapAccount(imap_server.host, imap_server.port, imap_server.user, "Not-It-42", "none")
    watcher = MailboxWatcher(bad, store.checkpoints, Recorder(), backoff_max=0.2)
    with caplog.at_level(logging.INFO, "mailmentor.imap"), running(watcher):
        wait_for(lambda: caplog.text.count("login failed") >= 2, what="two login attempts")
    assert "Not-It-42" not in caplog.text


def test_data_waiting_counts_bytes_already_buffered(imap_server: ImapAccount) -> None:
    """After a peek pulled the server's reply into the reader, the socket is drained but the
    data is still waiting: a select-only check would sleep through it."""
    client = connect(imap_server)
    try:
        client.idle()
        assert not _data_waiting(client, 0.05)
        append_all(imap_server, [make_mail(1)])
        assert _data_waiting(client, 5)
        assert _data_waiting(client, 0)  # now from the reader's buffer
        _, responses = client.idle_done()
        assert (1, b"EXISTS") in responses
    finally:
        client.logout()


# --- TLS (pymap offers STARTTLS with a certificate made by trustme) ------------------------


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[LocalImapServer, trustme.CA]]:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(b"".join(blob.bytes() for blob in cert.cert_chain_pems))
    cert.private_key_pem.write_to_path(str(key_file))
    server = LocalImapServer(cert_file=str(cert_file), key_file=str(key_file))
    server.start()
    try:
        yield server, ca
    finally:
        server.stop()


def test_starttls_with_an_untrusted_certificate_is_a_tls_failure(
    tls_server: tuple[LocalImapServer, trustme.CA],
) -> None:
    account = tls_server[0].account
    assert account.security == "starttls"
    with pytest.raises(MailboxError, match=f"TLS failure .*{account.host}:{account.port}"):
        connect(account, timeout=5)


def test_watcher_over_starttls_catches_up_and_idles(
    store: Store,
    tls_server: tuple[LocalImapServer, trustme.CA],
) -> None:
    server, ca = tls_server
    context = ssl.create_default_context()
    ca.configure_trust(context)
    account = dataclasses.replace(server.account, ssl_context=context)
    append_all(account, [make_mail(1)])
    handler = Recorder()
    watcher = MailboxWatcher(account, store.checkpoints, handler)
    with running(watcher):
        wait_for(lambda: idle_started(watcher), what="IDLE over TLS")
        client = watcher._client
        assert client is not None and isinstance(client.socket(), ssl.SSLSocket)
        append_all(account, [make_mail(2)])
        wait_for(lambda: len(handler.seen) == 2, timeout=5, what="mail over TLS")
    assert handler.ids == ["<m1@example.com>", "<m2@example.com>"]


def test_watcher_on_the_redis_store_hands_over_the_lease(
    imap_server: ImapAccount, store: Store
) -> None:
    """The real CheckpointStore/LeaseStore: a second watcher resumes where the first stopped."""
    append_all(imap_server, [make_mail(1), make_mail(2)])
    first_handler, second_handler = Recorder(), Recorder()
    first = MailboxWatcher(
        imap_server, store.checkpoints, first_handler, leases=store.leases, owner="a"
    )
    second = MailboxWatcher(
        imap_server, store.checkpoints, second_handler, leases=store.leases, owner="b"
    )
    try:
        assert first.catch_up() == 2
        assert second.catch_up() == 0  # standing by: "a" holds the lease
        append_all(imap_server, [make_mail(3)])
        first.close()  # releases the lease
        assert second.catch_up() == 1
    finally:
        first.close()
        second.close()
    assert first_handler.ids == ["<m1@example.com>", "<m2@example.com>"]
    assert second_handler.ids == ["<m3@example.com>"]


def test_mail_arriving_while_the_watcher_connects_and_searches_is_not_missed(
    store: Store,
    any_imap_server: ImapAccount,
) -> None:
    """pymap can announce a message in the reply to a SEARCH that did not include it, and
    never again: mail racing the watcher's first commands must still be handed over."""
    from mailmentor.imap import append_message

    checkpoints = store.checkpoints
    for n in range(6):
        handler = Recorder()
        watcher = MailboxWatcher(any_imap_server, checkpoints, handler)
        with running(watcher):
            append_message(any_imap_server, make_mail(n))  # lands as the watcher connects
            wait_for(partial(_has_seen, handler, 1), timeout=5, what=f"message {n}")
        assert handler.ids == [f"<m{n}@example.com>"]


class FlakyLeases:
    """The real leases, unreachable for their first few calls."""

    def __init__(self, store: Store, failures: int) -> None:
        self.leases = store.leases
        self.failures = failures

    def acquire(self, name: str, owner: str, ttl: timedelta) -> Held | HeldByOther:
        if self.failures > 0:
            self.failures -= 1
            raise ConnectionRefusedError("lease store down")
        return self.leases.acquire(name, owner, ttl)

    def release(self, name: str, owner: str) -> None:
        self.leases.release(name, owner)


def test_an_unreachable_lease_store_means_standing_by_not_dying(
    store: Store, imap_server: ImapAccount, caplog: pytest.LogCaptureFixture
) -> None:
    append_all(imap_server, [make_mail(1)])
    handler = Recorder()
    watcher = MailboxWatcher(
        imap_server, store.checkpoints, handler, leases=FlakyLeases(store, 2), lease_ttl=0.6
    )
    with caplog.at_level(logging.WARNING, "mailmentor.imap"), running(watcher):
        wait_for(lambda: len(handler.seen) == 1, what="processing once the store is back")
    assert "cannot take lease" in caplog.text
