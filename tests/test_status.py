"""`mailmentor status [--json] [--check]` on real servers (embedded Redis, pymap, aiosmtpd): each
watcher's record, the parts' heartbeats, failed sends, and `--check` failing within one
heartbeat of a watcher being stopped (issue 11, "Done when")."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from mailmentor.cli import main
from mailmentor.embedded_redis import EmbeddedRedis
from mailmentor.health_report import WatcherState, WatchMode
from mailmentor.imap import ImapAccount, MailboxWatcher, append_message
from mailmentor.sandbox.smtp_sink import SmtpSink
from mailmentor.service.outcomes import LoopStarted, Notice
from mailmentor.settings import load_settings
from mailmentor.store import Store
from mailmentor.store.health import read_health
from tests import mail_factory as mf
from tests.environment import clean_environment
from tests.faults.processes import Mailmentor, base_environment
from tests.imap._support import Recorder, append_all, make_mail, running
from tests.service_factory import services_on, stack_settings
from tests.waiting import wait_for
from workers.stack import Stack

#: A short heartbeat (HEARTBEAT_SECONDS) so that "within one heartbeat" is seconds.
TTL_S = 3.0


@dataclass
class Result:
    code: int
    out: str
    err: str


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, redis_server: EmbeddedRedis) -> Path:
    """`mailmentor status` as an operator runs it, on the suite's Redis, with the short TTL."""
    clean_environment(monkeypatch, tmp_path)
    monkeypatch.setenv("MAILMENTOR_REDIS_URL", redis_server.url)
    monkeypatch.setenv("MAILMENTOR_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("MAILMENTOR_HEARTBEAT_SECONDS", str(TTL_S))
    monkeypatch.setenv("MAILMENTOR_SECRET_KEY", "test-secret")
    return tmp_path


def status(capsys: pytest.CaptureFixture[str], *args: str) -> Result:
    code = main(["status", *args])
    out, err = capsys.readouterr()
    return Result(code, out, err)


def fails_within_one_heartbeat(check: Callable[[], Result], since: float) -> tuple[Result, float]:
    """Run ``check`` until it fails; every run that still passed must have started less than
    one heartbeat TTL after ``since`` (time.monotonic()). The failing result and its start."""
    deadline = since + TTL_S
    while True:
        started = time.monotonic()
        result = check()
        if result.code == 1:
            return result, started
        assert result.code == 0, result
        assert started < deadline, (
            f"`status --check` still passed {started - since:.1f} s after the stop "
            f"(heartbeat TTL {TTL_S} s): {result.out}"
        )
        time.sleep(0.05)


class Stuck:
    """A listener that holds the watcher's thread on the first new loop until released: a
    watcher that hangs while its process (and its heartbeat thread) runs on."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()
        self.entered_at = 0.0

    def __call__(self, notice: Notice) -> None:
        if isinstance(notice, LoopStarted) and not self.entered.is_set():
            self.entered_at = time.monotonic()
            self.entered.set()
            self.release.wait(60)


@contextmanager
def running_stack(
    redis_server: EmbeddedRedis, imap: ImapAccount, smtp: SmtpSink, tmp_path: Path, stuck: Stuck
) -> Iterator[Stack]:
    settings = stack_settings(
        redis_server.url,
        tmp_path / "data",
        heartbeat_seconds=TTL_S,
        imap_idle_renew=2.0,  # pymap can miss an append racing IDLE's start
        scheduler_interval=0.2,
    )
    stack = Stack(settings, imap=imap, smtp=smtp.account, listeners=[stuck])
    stack.start()
    try:
        yield stack
    finally:
        stuck.release.set()
        stack.stop()


def test_status_shows_the_watcher_and_check_fails_within_one_heartbeat_of_a_stuck_watcher(
    cli_env: Path,
    redis_server: EmbeddedRedis,
    redis_client: object,
    imap_server: ImapAccount,
    smtp_sink: SmtpSink,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    stuck = Stuck()
    with running_stack(redis_server, imap_server, smtp_sink, tmp_path, stuck) as stack:
        wait_for(stack.running.is_set, "the service to say it is running")
        healthy = wait_for(
            lambda: (r := status(capsys, "--check")).code == 0 and r,
            "`status --check` to pass while everything runs",
        )
        assert healthy.out.startswith("ok: all well (watching INBOX by IDLE, last sync")

        shown = status(capsys)
        assert shown.code == 0
        label = imap_server.label
        assert f"watcher {label}: running by IDLE; last sync" in shown.out
        assert "UIDVALIDITY resets: 0, quarantined: 0, messages that failed: 0" in shown.out
        assert "sends failed for good: 0; retried: 0" in shown.out
        assert f"heartbeat TTL: {TTL_S:g} s (HEARTBEAT_SECONDS)" in shown.out
        for part in ("watch", "schedule", "work"):
            assert f"{part:<9} running on: {socket.gethostname()} (heartbeat" in shown.out
        as_json = json.loads(status(capsys, "--json").out)
        assert as_json["ok"] is True and as_json["heartbeat_ttl_s"] == TTL_S
        (watcher,) = as_json["watchers"]
        assert watcher["label"] == label and watcher["mode"] == "IDLE"
        assert watcher["state"] == "running" and watcher["logged_in"] is True
        assert watcher["last_sync"] is not None and watcher["uidvalidity_resets"] == 0
        assert as_json["components"]["watch"][0]["host"] == socket.gethostname()
        assert as_json["loops_scheduled"] == 0 and as_json["sends"]["failed"] == 0

        # The watcher hangs on a message; its process, and the process's heartbeat, run on.
        append_message(imap_server, mf.ask())
        assert stuck.entered.wait(20), "the watcher took the ask"
        fails_within_one_heartbeat(lambda: status(capsys, "--check"), stuck.entered_at)
        time.sleep(max(0.0, stuck.entered_at + TTL_S - time.monotonic()))
        failed = status(capsys, "--check")
        assert failed.code == 1
        assert f"FAIL  watcher {label}: no heartbeat (heartbeat TTL {TTL_S:g} s)" in failed.err
        assert "watch: not running" not in failed.err, "the process still beats"
        store = stack.services.store
        assert store.health.component_alive("watch", socket.gethostname())

        stuck.release.set()
        wait_for(
            lambda: status(capsys, "--check").code == 0 or None,
            "`status --check` to pass again once the watcher carries on",
        )

        # Stopped (not stuck) while its process runs on: failing at once, and saying so.
        stack.watchers[0].stop()
        stopped = wait_for(
            lambda: (r := status(capsys, "--check")).code == 1 and r,
            "`status --check` to fail once the watcher stopped",
            timeout=TTL_S,
        )
        assert f"watcher {label}: stopped, though its process runs" in stopped.err


def test_check_fails_within_one_heartbeat_of_the_watch_process_being_killed(
    cli_env: Path,
    redis_server: EmbeddedRedis,
    redis_client: object,
    imap_server: ImapAccount,
    smtp_sink: SmtpSink,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A real `mailmentor run` (watcher, scheduler, workers) killed with SIGKILL: nothing gets
    to say it stopped; the heartbeats run out."""
    env = {
        **base_environment(tmp_path),
        "MAILMENTOR_REDIS_URL": redis_server.url,
        "MAILMENTOR_DATA_DIR": str(tmp_path / "data"),
        "MAILMENTOR_HEARTBEAT_SECONDS": str(TTL_S),
        "MAILMENTOR_SECRET_KEY": "test-secret",
        "MAILMENTOR_IMAP_HOST": imap_server.host,
        "MAILMENTOR_IMAP_PORT": str(imap_server.port),
        "MAILMENTOR_IMAP_USER": imap_server.user,
        "MAILMENTOR_IMAP_PASSWORD": imap_server.password,
        "MAILMENTOR_IMAP_SECURITY": "none",
        "MAILMENTOR_IMAP_IDLE_RENEW": "2",
        "MAILMENTOR_SMTP_HOST": smtp_sink.account.host,
        "MAILMENTOR_SMTP_PORT": str(smtp_sink.account.port),
        "MAILMENTOR_SMTP_SECURITY": "none",
        "MAILMENTOR_SERVICE_ADDRESS": mf.SERVICE,
        "MAILMENTOR_USER_ADDRESSES": mf.USER,
        "MAILMENTOR_PARSE_WORKERS": "0",
    }
    service = Mailmentor(tmp_path, env, "run").start()
    try:
        service.wait_running()
        wait_for(
            lambda: status(capsys, "--check").code == 0 or None,
            f"`status --check` to pass while `mailmentor run` runs:\n{service.log()[-2000:]}",
        )
        service.kill()
        killed = time.monotonic()
        failed, _ = fails_within_one_heartbeat(lambda: status(capsys, "--check"), killed)
        # The watcher's own heartbeat (renewed apart from the process's) is gone by then too.
        time.sleep(max(0.0, killed + TTL_S - time.monotonic()))
        later = status(capsys, "--check")
    finally:
        service.kill()
    assert failed.code == 1 and f"heartbeat TTL {TTL_S:g} s" in failed.err
    assert later.code == 1
    assert f"FAIL  watch: not running (no heartbeat; heartbeat TTL {TTL_S:g} s)" in later.err
    assert f"FAIL  watcher {imap_server.label}: no heartbeat" in later.err


def test_the_watcher_records_uidvalidity_resets_quarantined_and_failed_messages(
    redis_server: EmbeddedRedis, store: Store, imap_server: ImapAccount, tmp_path: Path
) -> None:
    append_all(imap_server, [make_mail(1), make_mail(2), make_mail(3)])
    handler = Recorder(fail_on=frozenset({"<m2@example.com>"}))
    watcher = MailboxWatcher(
        imap_server,
        store.checkpoints,
        handler,
        leases=store.leases,
        quarantine_folder="Quarantine",
        health=store.health,
        heartbeat_ttl=TTL_S,
    )
    # A checkpoint of another UIDVALIDITY: the folder was re-created since.
    store.checkpoints.set_checkpoint(imap_server.key, 1, 99)
    try:
        assert watcher.catch_up() == 3
    finally:
        watcher.close()
    settings = load_settings(redis_url=redis_server.url, data_dir=tmp_path, heartbeat_seconds=TTL_S)
    (record,) = read_health(store, settings).watchers
    assert record.state is WatcherState.STOPPED, "close() says it stopped"
    assert record.mode is WatchMode.IDLE and record.logged_in_at is not None
    assert record.last_sync is not None and record.sync_age is not None
    assert record.progress_age is not None, "a batch was fetched"
    assert (record.uidvalidity_resets, record.quarantined, record.failed_messages) == (1, 1, 1)
    assert record.beat_age is None and record.process_alive is False


def test_a_standby_watcher_writes_no_record(
    redis_server: EmbeddedRedis, store: Store, imap_server: ImapAccount, tmp_path: Path
) -> None:
    first = MailboxWatcher(
        imap_server,
        store.checkpoints,
        Recorder(),
        leases=store.leases,
        owner="a",
        health=store.health,
    )
    second = MailboxWatcher(
        imap_server,
        store.checkpoints,
        Recorder(),
        leases=store.leases,
        owner="b",
        health=store.health,
    )
    with running(first):
        wait_for(first.started.is_set, "the first watcher to log in")
        with running(second):
            wait_for(second.started.is_set, "the second watcher to stand by")
            settings = load_settings(redis_url=redis_server.url, data_dir=tmp_path)
            (record,) = read_health(store, settings).watchers
            assert record.owner == "a" and record.state is WatcherState.RUNNING


def test_failed_sends_are_counted_for_status(
    cli_env: Path, store: Store, smtp_sink: SmtpSink, capsys: pytest.CaptureFixture[str]
) -> None:
    from mailmentor.clock import ManualClock
    from mailmentor.errors import TemporarySendError
    from tests.service._support import T0, advised_loop, shipped

    clock = ManualClock(T0)
    services = services_on(store, mf.USER, clock=clock, rules=shipped(), smtp=smtp_sink.account)
    loop = advised_loop(services)
    assert loop.next_action is not None
    clock.set(loop.next_action.due_at)
    smtp_sink.fail_next(451)
    with pytest.raises(TemporarySendError):
        services.sender.deliver(loop.id, loop.next_action.key)
    smtp_sink.fail_next(550)
    services.sender.deliver(loop.id, loop.next_action.key)

    sends = store.health.send_failures()
    assert (sends.failed, sends.retried) == (1, 1)
    assert sends.last_failed_at == sends.last_retry_at == loop.next_action.due_at
    assert "550" in sends.last_failed and "451" in sends.last_retry
    shown = status(capsys)
    assert "sends failed for good: 1 (last " in shown.out and "; retried: 1 (last " in shown.out
    assert "sends: 1 failed for good" in shown.out, "listed with the problems"
    assert json.loads(status(capsys, "--json").out)["sends"]["failed"] == 1
