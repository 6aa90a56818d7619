"""Nothing is lost across a restart: the embedded Redis keeps loops, history and checkpoints.

A Stack with no Redis URL starts the embedded server in its DATA_DIR (AOF on). One stack handles
an ask and stops; a bare server on that DATA_DIR reads the loop, checkpoint and applied mark back;
a new stack finds the loop with its history and does not handle the old message again; the CLI
reads the same data once everything has stopped.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TypeVar

import pytest
import redis

from mailmentor.cli import main
from mailmentor.clock import ManualClock
from mailmentor.embedded_redis import EmbeddedRedis, running_url
from mailmentor.imap import ImapAccount, append_message
from mailmentor.model import EventType, Stage
from mailmentor.sandbox.smtp_sink import SmtpSink
from mailmentor.settings import Settings, load_settings
from mailmentor.store import open_store
from tests import mail_factory as mf
from tests.environment import clean_environment
from tests.harness import handled
from tests.store_support import all_loops
from tests.waiting import wait_for
from workers.stack import Stack

T = TypeVar("T")

ASK_ID = "<persist-ask@client.example>"


@pytest.fixture
def settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Settings:
    """Embedded Redis in a DATA_DIR of this test, nothing from the outside environment."""
    clean_environment(monkeypatch, tmp_path)
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
    checkpoint = stack.store.checkpoints.get_checkpoint(imap.key)
    return checkpoint is not None and checkpoint[1] >= uid


def test_loops_survive_a_restart_and_are_not_handled_twice(
    settings: Settings,
    imap_server: ImapAccount,
    smtp_sink: SmtpSink,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    clock = ManualClock()
    # Mail is appended while no stack runs, so each stack finds it in its catch-up at connect:
    # pymap can miss waking an IDLE for an APPEND that races the IDLE's start (see the report).
    ask_uid = append_message(imap_server, mf.ask(ASK_ID)) or 1

    first = start_stack(settings, imap_server, smtp_sink, clock)
    try:
        store = first.store
        wait_for(lambda: caught_up(first, imap_server, ask_uid), "the ask to be handled")
        (loop,) = all_loops(store)
        checkpoint = store.checkpoints.get_checkpoint(imap_server.key)
    finally:
        first.stop()
    assert (loop.stage, loop.mentor.address) == (Stage.ASKED, mf.MENTOR_ADDRESS)
    assert [e.type for e in loop.events] == [EventType.CREATED]
    assert running_url(settings.data_dir) is None, "the embedded Redis stopped with the stack"

    # The data is on disk: a bare server on the same DATA_DIR reads it back from the AOF.
    with EmbeddedRedis(settings.data_dir) as server:
        client = redis.Redis.from_url(server.url)
        try:
            peek = open_store(client)
            assert all_loops(peek) == [loop]
            assert peek.checkpoints.get_checkpoint(imap_server.key) == checkpoint
            assert handled(peek, ASK_ID)
        finally:
            client.close()

    # A mail that changes nothing (automatic, so ignored) shows when the new watcher is past
    # the old message, which must not have been handled again.
    later_uid = append_message(imap_server, mf.auto_reply(mf.SERVICE)) or ask_uid + 1
    second = start_stack(settings, imap_server, smtp_sink, clock)
    try:
        store = second.store
        wait_for(lambda: caught_up(second, imap_server, later_uid), "the new watcher to catch up")
        assert all_loops(store) == [loop], "same loop, same history, no event added"
    finally:
        second.stop()
    assert smtp_sink.messages == [], "nothing was due and nothing is answered: no mail sent"

    # The CLI, with both stacks gone, starts the embedded Redis on its own and sees the loop.
    monkeypatch.setenv("MAILMENTOR_DATA_DIR", str(settings.data_dir))
    assert main(["loops", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(row["id"], row["stage"], row["mentor"]["address"]) for row in rows] == [
        (loop.id, "asked", mf.MENTOR_ADDRESS)
    ]
    assert running_url(settings.data_dir) is None, "the CLI stopped the Redis it started"
