"""Start-up that explains (issue 11, item 8), against pymap: "running" only after the first
login, with "connecting / retrying" before it; mailbox mode's first catch-up summed up in one
line per folder; a missing tracked folder named once, with what to do, while the other folders
are watched."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from mailmentor.cli import main
from mailmentor.health_report import WatcherState
from mailmentor.imap import ImapAccount, MailboxWatcher, append_message, connect
from mailmentor.sandbox.imap_server import LocalImapServer
from mailmentor.sandbox.smtp_sink import SmtpSink
from mailmentor.settings import Settings, load_settings
from mailmentor.store import Store
from mailmentor.store.health import read_health
from tests import mail_factory as mf
from tests.environment import clean_environment
from tests.imap._support import Recorder, running
from tests.service_factory import stack_settings
from tests.waiting import wait_for
from workers.stack import Stack

RUNNING = "mailmentor is running"


def messages(caplog: pytest.LogCaptureFixture, logger: str, level: int) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == logger and r.levelno == level]


@contextmanager
def stack_on(settings: Settings, imap: ImapAccount, smtp: SmtpSink) -> Iterator[Stack]:
    stack = Stack(settings, imap=imap, smtp=smtp.account, scheduler=False, workers=False)
    stack.start()
    try:
        yield stack
    finally:
        stack.stop()


def test_running_is_said_only_after_the_first_login_and_retrying_before(
    redis_server: Any,
    store: Store,
    pymap_server: LocalImapServer,
    smtp_sink: SmtpSink,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    caplog.set_level(logging.INFO)
    clean_environment(monkeypatch, tmp_path)
    monkeypatch.setenv("MAILMENTOR_REDIS_URL", redis_server.url)
    monkeypatch.setenv("MAILMENTOR_DATA_DIR", str(tmp_path / "data"))
    account = pymap_server.account
    pymap_server.stop()  # the mail server is down when mailmentor starts
    settings = stack_settings(redis_server.url, tmp_path / "data", imap_idle_renew=2.0)
    with stack_on(settings, account, smtp_sink) as stack:
        retry = wait_for(
            lambda: [
                m for m in messages(caplog, "mailmentor.imap", logging.WARNING) if "retry" in m
            ],
            "a retrying line",
        )
        assert retry[0].startswith(f"connecting to {account.label}: retrying (attempt 1, next in ")
        assert "cannot reach IMAP server" in retry[0]
        (record,) = read_health(store, settings).watchers
        assert record.state is WatcherState.CONNECTING and record.logged_in_at is None
        assert record.retrying is not None and record.retrying.attempt >= 1
        assert not stack.running.is_set()
        assert RUNNING not in caplog.text
        capsys.readouterr()
        assert main(["status", "--check"]) == 1
        out, err = capsys.readouterr()
        assert f"watcher {account.label}: connecting / retrying (attempt " in err
        assert main(["status"]) == 0
        out, _ = capsys.readouterr()
        assert f"watcher {account.label}: connecting / retrying (attempt " in out
        assert "not logged in yet" in out

        pymap_server.start()
        wait_for(stack.running.is_set, "running, once the server is back", timeout=30)
        said = [r.getMessage() for r in caplog.records]
        connected = next(i for i, m in enumerate(said) if m.startswith("connected to"))
        assert said.index(next(m for m in said if m.startswith(RUNNING))) > connected
        assert [m for m in said if m.startswith(RUNNING)] == [
            "mailmentor is running; Ctrl-C stops it"
        ]
        wait_for(
            lambda: read_health(store, settings).watchers[0].last_sync is not None,
            "the first sync",
        )
        (record,) = read_health(store, settings).watchers
        assert record.state is WatcherState.RUNNING and record.logged_in_at is not None
        assert record.retrying is None
        assert record.last_error is not None and "cannot reach" in record.last_error.text


def mailbox_settings(redis_server: Any, tmp_path: Path, **overrides: Any) -> Settings:
    return load_settings(
        redis_url=redis_server.url,
        imap_host="",
        smtp_host="",
        data_dir=tmp_path / "data",
        service_address="ada+mentor@example.com",
        user_addresses=[mf.USER],
        secret_key="test-secret",
        imap_idle_renew=2.0,
        mailbox_mode=True,
        track_folder="Mentors",
        sent_folder="Sent",
        **overrides,
    )


def create_folders(imap: ImapAccount, *folders: str) -> None:
    client = connect(imap)
    try:
        for folder in folders:
            if not client.folder_exists(folder):
                client.create_folder(folder)
    finally:
        client.logout()


def unrelated(n: int) -> bytes:
    return (
        f"From: {mf.MENTOR}\r\nTo: Ada <{mf.USER}>\r\nSubject: Lunch {n}?\r\n"
        f"Message-ID: <lunch-{n}@mentor.example>\r\n"
        "Date: Mon, 05 Jan 2026 09:00:00 +0000\r\n\r\nAre you free?\r\n"
    ).encode()


def test_mailbox_mode_first_catch_up_is_one_line_per_folder(
    redis_server: Any,
    store: Store,
    imap_server: ImapAccount,
    smtp_sink: SmtpSink,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    create_folders(imap_server, "Sent", "Mentors")
    for n in range(3):
        subject = f"Advice {n}?"
        append_message(imap_server, mf.ask(f"<ask-{n}@client.example>", subject=subject), "Mentors")
    for n in range(5):
        append_message(imap_server, unrelated(n), "INBOX")
    settings = mailbox_settings(redis_server, tmp_path)
    with stack_on(settings, imap_server, smtp_sink) as stack:
        wait_for(stack.running.is_set, "running")
        summaries = wait_for(
            lambda: (
                (
                    found := [
                        m
                        for m in messages(caplog, "mailmentor.run", logging.INFO)
                        if "caught up" in m
                    ]
                )
                and len(found) == 3
                and found
            ),
            "a summary per folder",
        )
    assert summaries == [
        "Mentors: caught up on 3 messages (3 loops started)",
        "Sent: caught up, nothing new",
        "INBOX: caught up on 5 messages (5 not advice)",
    ]
    per_message = [
        m for m in messages(caplog, "mailmentor.service", logging.INFO) if m.startswith("message <")
    ]
    assert per_message == [], "the catch-up's lines per message are DEBUG"
    assert not [m for m in messages(caplog, "mailmentor.service", logging.INFO) if "started" in m]


def test_per_message_lines_of_the_first_catch_up_are_kept_at_debug(
    redis_server: Any,
    store: Store,
    imap_server: ImapAccount,
    smtp_sink: SmtpSink,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    create_folders(imap_server, "Sent", "Mentors")
    append_message(imap_server, mf.ask("<ask-d@client.example>"), "Mentors")
    with stack_on(mailbox_settings(redis_server, tmp_path), imap_server, smtp_sink) as stack:
        wait_for(stack.running.is_set, "running")
        wait_for(
            lambda: any(
                m.startswith("message <ask-d@client.example>")
                for m in messages(caplog, "mailmentor.service", logging.DEBUG)
            ),
            "the message's own line, at DEBUG",
        )
        # Mail after the first catch-up is said at INFO, one line per message, as before.
        append_message(imap_server, mf.ask("<ask-live@client.example>", subject="Live?"), "Mentors")
        wait_for(
            lambda: any(
                m.startswith("message <ask-live@client.example>")
                for m in messages(caplog, "mailmentor.service", logging.INFO)
            ),
            "a live message's line at INFO",
        )


def test_a_missing_tracked_folder_is_named_once_and_the_others_are_watched(
    redis_server: Any,
    store: Store,
    imap_server: ImapAccount,
    smtp_sink: SmtpSink,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    create_folders(imap_server, "Sent")  # no "Mentors"
    settings = mailbox_settings(redis_server, tmp_path, track_keyword="$mentor")
    with stack_on(settings, imap_server, smtp_sink) as stack:
        wait_for(stack.running.is_set, "running, though a folder is missing")
        append_message(imap_server, mf.ask("<marked@client.example>"), "Sent", flags=("$mentor",))
        wait_for(
            lambda: store.loops.lookup(["marked@client.example"]).get("marked@client.example"),
            "the marked ask in Sent to start a loop: the other folders are watched",
        )
        health = read_health(store, settings)
        states = {w.folder: w.state for w in health.watchers}
        assert states == {
            "Mentors": WatcherState.FOLDER_MISSING,
            "Sent": WatcherState.RUNNING,
            "INBOX": WatcherState.RUNNING,
        }
        missing = next(w for w in health.watchers if w.folder == "Mentors")
        assert "INBOX" in missing.existing_folders and "Sent" in missing.existing_folders
    errors = messages(caplog, "mailmentor.imap", logging.ERROR)
    assert len(errors) == 1, errors
    (said,) = errors
    assert said.startswith(f"folder 'Mentors' does not exist in {imap_server.user} on ")
    assert (
        "create it, or set MAILMENTOR_TRACK_FOLDER to one of the folders that exist: INBOX, "
        in said
    )
    assert "Meanwhile Sent, INBOX are watched; 'Mentors' is looked for again every 60 s" in said
    assert not [m for m in messages(caplog, "mailmentor.imap", logging.WARNING) if "Mentors" in m]
    assert not [m for m in messages(caplog, "mailmentor.run", logging.WARNING) if "Mentors" in m]


def test_a_missing_folder_is_said_once_however_often_it_is_looked_for_then_watched(
    store: Store, imap_server: ImapAccount, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="mailmentor.imap")
    account = ImapAccount(
        imap_server.host,
        imap_server.port,
        imap_server.user,
        imap_server.password,
        security="none",
        folder="Mentors",
    )
    handler = Recorder()
    watcher = MailboxWatcher(
        account,
        store.checkpoints,
        handler,
        leases=store.leases,
        health=store.health,
        folder_setting="MAILMENTOR_TRACK_FOLDER",
        folder_recheck=0.2,
    )
    with running(watcher):
        wait_for(
            lambda: len([r for r in caplog.records if "still missing" in r.getMessage()]) >= 3,
            "the folder to be looked for a few times",
        )
        assert watcher.started.is_set(), "the login worked: the service may say it runs"
        create_folders(imap_server, "Mentors")
        append_message(imap_server, mf.ask(), "Mentors")
        wait_for(lambda: handler.seen, "the message in the folder once it exists")
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and "Meanwhile nothing is read" in errors[0]
    assert "folder 'Mentors' exists now: watching it" in caplog.text
