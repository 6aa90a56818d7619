"""Nothing is lost across a restart: the embedded Redis keeps loops, history and checkpoints.

A Stack with no Redis URL starts the embedded server in its DATA_DIR (AOF on). One stack handles
an ask and stops; a new one on the same DATA_DIR finds the loop with its history, does not handle
the old message again, and keeps working; the CLI reads the same data once both have stopped.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest

from mailmentor.cli import main
from mailmentor.clock import ManualClock
from mailmentor.embedded_redis import running_url
from mailmentor.imap import ImapAccount, append_message
from mailmentor.model import EventType, Loop, Stage
from mailmentor.sandbox.smtp_sink import SmtpSink
from mailmentor.settings import Settings, load_settings
from tests import mail_factory as mf
from workers.stack import Stack

T = TypeVar("T")

ASK_ID = "<persist-ask@client.example>"


def wait_for(condition: Callable[[], T | None], what: str, timeout: float = 10.0) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


@pytest.fixture
def settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Settings:
    """Embedded Redis in a DATA_DIR of this test, nothing from the outside environment."""
    for name in list(os.environ):
        if name.upper().startswith("MAILMENTOR_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("MAILMENTOR_SECRETS_DIR", str(tmp_path / "no-secrets"))
    monkeypatch.chdir(tmp_path)
    return load_settings(
        redis_url="",
        imap_host="",
        smtp_host="",
        data_dir=tmp_path / "data",
        rules_dir=None,
        service_address=mf.SERVICE,
        user_addresses=[mf.USER],
        secret_key="test-secret",
    )


def start_stack(settings: Settings, imap: ImapAccount, sink: SmtpSink, clock: ManualClock) -> Stack:
    stack = Stack(settings, clock=clock, imap=imap, smtp=sink.start(), scheduler=False)
    stack.start()
    return stack


def caught_up(stack: Stack, imap: ImapAccount, uid: int) -> bool:
    checkpoint = stack.service.store.get_checkpoint(imap.key)
    return checkpoint is not None and checkpoint[1] >= uid


def test_loops_survive_a_restart_and_are_not_handled_twice(
    settings: Settings,
    imap_server: ImapAccount,
    smtp_sink: SmtpSink,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    clock = ManualClock()

    first = start_stack(settings, imap_server, smtp_sink, clock)
    try:
        ask_uid = append_message(imap_server, mf.ask(ASK_ID))
        store = first.service.store
        loop: Loop = wait_for(lambda: (store.list_loops() or [None])[0], "the ask's loop")
        wait_for(lambda: caught_up(first, imap_server, ask_uid or 1), "the checkpoint")
        checkpoint = store.get_checkpoint(imap_server.key)
        assert store.is_processed(ASK_ID.strip("<>"))
    finally:
        first.stop()
    assert loop.stage is Stage.ASKED
    assert [e.type for e in loop.events] == [EventType.CREATED]
    assert running_url(settings.data_dir) is None, "the embedded Redis stopped with the stack"

    # A new process on the same DATA_DIR: a fresh Redis server reading the append-only file.
    second = start_stack(settings, imap_server, smtp_sink, clock)
    try:
        store = second.service.store
        assert store.list_loops() == [loop], "the loop and its whole history survived"
        assert store.get_checkpoint(imap_server.key) == checkpoint
        assert store.is_processed(ASK_ID.strip("<>"))

        # A later message of the thread proves the new watcher caught up past the old one,
        # which must not have been handled again: exactly one new event.
        follow_uid = append_message(imap_server, mf.follow_up(ASK_ID, "Thanks, one more detail."))
        wait_for(lambda: caught_up(second, imap_server, follow_uid or 2), "the follow-up")
        after = store.get_loop(loop.id)
        assert len(after.events) == len(loop.events) + 1, [e.source for e in after.events]
        assert after.events[: len(loop.events)] == loop.events
        assert after.events[-1].type is EventType.MESSAGE
        assert [lp.id for lp in store.list_loops()] == [loop.id]
    finally:
        second.stop()
    assert smtp_sink.messages == [], "nothing was due: no mail sent"

    # The CLI, with both stacks gone, starts the embedded Redis on its own and sees the loop.
    monkeypatch.setenv("MAILMENTOR_DATA_DIR", str(settings.data_dir))
    assert main(["loops", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(row["id"], row["stage"], row["mentor"]) for row in rows] == [
        (loop.id, "asked", mf.MENTOR_ADDRESS)
    ]
    assert running_url(settings.data_dir) is None, "the CLI stopped the Redis it started"
