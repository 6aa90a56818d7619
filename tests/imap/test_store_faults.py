"""The watcher when the store cannot take a message: the checkpoint stays before it, the watcher
waits and tries it again, and stop() still works. Found in the issue: a redis TimeoutError,
ReadOnlyError or conflicts exhausted made the watcher log the message and move past it, and the
retry loop ignored stop."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from mailmentor.embedded_redis import EmbeddedRedis
from mailmentor.errors import StoreBusy, StoreUnavailable
from mailmentor.imap import ImapAccount, MailboxWatcher
from mailmentor.service.writer import LoopWriter
from mailmentor.store import Store, open_store
from mailmentor.store.client import connect
from tests import mail_factory as mf
from tests.imap._support import append_all, running
from tests.service_factory import services_on
from tests.store_support import all_loops
from tests.waiting import wait_for


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[EmbeddedRedis]:
    """A Redis of this test's own: it is paused, made read-only and stopped."""
    server = EmbeddedRedis(tmp_path / "redis")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def quick_store(own_redis: EmbeddedRedis) -> Iterator[Store]:
    """The store with a client that gives up fast (0.2 s, one retry), so failures show soon."""
    client = connect(own_redis.url, timeout=0.2, retries=1)
    try:
        yield open_store(client)
    finally:
        client.close()


def watcher_on(account: ImapAccount, store: Store) -> MailboxWatcher:
    intake = services_on(store, mf.USER, mf.SERVICE).intake
    return MailboxWatcher(
        account,
        store.checkpoints,
        intake.handle_raw,
        leases=store.leases,
        backoff_initial=0.1,
        store_backoff_max=0.5,
    )


def asks(n: int) -> list[bytes]:
    return [mf.ask(f"<fault-{i}@client.example>", subject=f"Question {i}") for i in range(n)]


def test_a_paused_redis_keeps_the_checkpoint_before_the_message(
    own_redis: EmbeddedRedis, quick_store: Store, imap_server: ImapAccount
) -> None:
    store = quick_store
    watcher = watcher_on(imap_server, store)
    admin = redis.Redis.from_url(own_redis.url)
    try:
        append_all(imap_server, asks(1))
        assert watcher.catch_up() == 1
        before = store.checkpoints.get_checkpoint(imap_server.key)
        append_all(imap_server, asks(3)[1:])
        admin.client_pause(800)
        with pytest.raises(StoreUnavailable) as failed:
            watcher.catch_up()
        assert isinstance(failed.value.cause, redis.TimeoutError | redis.ConnectionError)
        time.sleep(0.9)
        assert store.checkpoints.get_checkpoint(imap_server.key) == before, "not moved past"
        assert watcher.catch_up() == 2, "the same messages, once the store answers"
        assert len(all_loops(store)) == 3
    finally:
        watcher.close()
        admin.close()


def test_a_read_only_redis_after_a_failover_is_waited_out(
    own_redis: EmbeddedRedis, quick_store: Store, imap_server: ImapAccount
) -> None:
    store = quick_store
    watcher = watcher_on(imap_server, store)
    admin = redis.Redis.from_url(own_redis.url)
    try:
        append_all(imap_server, asks(1))
        assert watcher.catch_up() == 1  # the lease is held from here on
        before = store.checkpoints.get_checkpoint(imap_server.key)
        append_all(imap_server, asks(3)[1:])
        admin.replicaof("127.0.0.1", "1")  # a replica of nothing: every write is READONLY
        with pytest.raises(StoreUnavailable) as failed:
            watcher.catch_up()
        assert "READONLY" in str(failed.value.cause)
        assert store.checkpoints.get_checkpoint(imap_server.key) == before, "not moved past"
        admin.replicaof("NO", "ONE")
        assert watcher.catch_up() == 2
        assert len(all_loops(store)) == 3
    finally:
        admin.replicaof("NO", "ONE")
        watcher.close()
        admin.close()


def test_conflicts_that_never_end_are_waited_out_too(
    store: Store, imap_server: ImapAccount, monkeypatch: pytest.MonkeyPatch
) -> None:
    watcher = watcher_on(imap_server, store)
    append_all(imap_server, asks(1))
    original = LoopWriter.run

    def busy(self: LoopWriter, decide: object, what: str = "") -> object:
        raise StoreBusy(f"{what}: its loops kept changing (25 tries)")

    monkeypatch.setattr(LoopWriter, "run", busy)
    try:
        with pytest.raises(StoreUnavailable):
            watcher.catch_up()
        monkeypatch.setattr(LoopWriter, "run", original)
        assert watcher.catch_up() == 1
        assert len(all_loops(store)) == 1
    finally:
        watcher.close()


def test_a_store_failure_mid_batch_checkpoints_just_before_the_message(
    store: Store, imap_server: ImapAccount
) -> None:
    """The checkpoint moves once per fetch batch; when the store refuses the third message of
    a batch, the two before it are checkpointed first, so only the third is tried again."""
    intake = services_on(store, mf.USER, mf.SERVICE).intake
    handed: list[int] = []
    refuse = {3}

    def handler(uid: int, raw: bytes) -> object:
        handed.append(uid)
        if len(handed) in refuse:
            refuse.clear()
            raise StoreBusy("its loops kept changing (25 tries)")
        return intake.handle_raw(uid, raw)

    watcher = MailboxWatcher(imap_server, store.checkpoints, handler, leases=store.leases)
    try:
        append_all(imap_server, asks(4))
        with pytest.raises(StoreUnavailable) as failed:
            watcher.catch_up()
        assert failed.value.uid == handed[2]
        stored = store.checkpoints.get_checkpoint(imap_server.key)
        assert stored is not None and stored[1] == handed[1], "just before the refused one"
        assert watcher.catch_up() == 2
        assert handed[3:] == [handed[2], handed[2] + 1], "the refused one again, then the next"
        assert len(all_loops(store)) == 4
    finally:
        watcher.close()


def test_the_running_watcher_waits_logs_one_line_per_try_and_carries_on(
    own_redis: EmbeddedRedis,
    quick_store: Store,
    imap_server: ImapAccount,
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = quick_store
    watcher = watcher_on(imap_server, store)
    admin = redis.Redis.from_url(own_redis.url)
    patient = open_store(admin)  # the test's own view waits out the pause
    try:
        with caplog.at_level(logging.WARNING, "mailmentor.imap"), running(watcher):
            wait_for(lambda: watcher._client is not None, what="the watcher to connect")
            admin.client_pause(1500)
            append_all(imap_server, asks(2))
            wait_for(lambda: len(all_loops(patient)) == 2, what="both asks, after the pause")
        warnings = [r for r in caplog.records if "store unavailable" in r.getMessage()]
        assert warnings, caplog.text
        assert all(r.exc_info is None and "trying it again in" in r.getMessage() for r in warnings)
    finally:
        admin.close()


def test_stop_returns_promptly_while_redis_is_down(
    own_redis: EmbeddedRedis, quick_store: Store, imap_server: ImapAccount
) -> None:
    store = quick_store
    watcher = watcher_on(imap_server, store)
    append_all(imap_server, asks(1))
    own_redis.stop()
    thread = threading.Thread(target=watcher.run, daemon=True)
    thread.start()
    time.sleep(1.0)  # it is waiting for the store now (that is what is being stopped)
    started = time.monotonic()
    watcher.stop()
    thread.join(timeout=10)
    assert not thread.is_alive()
    assert time.monotonic() - started < 3.0
