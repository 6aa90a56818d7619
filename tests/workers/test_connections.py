"""Send worker threads keep one SMTP session each, for many messages, and close it when the
worker stops; the worker takes enough messages ahead that its threads do not wait for acks."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import dramatiq
import pytest

from mailmentor.embedded_redis import EmbeddedRedis
from mailmentor.sandbox.smtp_sink import SmtpSink
from tests import mail_factory as mf
from tests.service_factory import stack_settings
from tests.waiting import wait_for
from workers.actors import QUEUE
from workers.broker import PREFETCH_PER_THREAD
from workers.stack import Stack

THREADS = 3
MESSAGES = 40


@pytest.fixture
def stack(
    redis_server: EmbeddedRedis, redis_client: Any, smtp_sink: SmtpSink, tmp_path: Path
) -> Iterator[Stack]:
    """The service with no watcher, scheduler or workers of its own: the test runs a worker."""
    settings = stack_settings(redis_server.url, tmp_path / "data")
    running = Stack(settings, smtp=smtp_sink.account, watcher=False, scheduler=False, workers=False)
    running.start()
    try:
        yield running
    finally:
        running.stop()


def reply(n: int) -> EmailMessage:
    message = EmailMessage()
    message["From"] = mf.SERVICE
    message["To"] = mf.USER
    message["Subject"] = f"Re: help {n}"
    message["Message-ID"] = f"<mm.reply.{n}@example.com>"
    message.set_content("The commands are: done, reported, ...")
    return message


def test_each_worker_thread_keeps_one_session_and_closes_it_on_stop(
    stack: Stack, smtp_sink: SmtpSink
) -> None:
    actor = stack.actors.send_reply
    broker = actor.broker
    for n in range(MESSAGES):
        actor.send(reply(n).as_string(), f"reply:{n}@client.example")
    worker = dramatiq.Worker(broker, queues={QUEUE}, worker_threads=THREADS, worker_timeout=100)
    worker.start()
    try:
        assert worker.queue_prefetch == PREFETCH_PER_THREAD * THREADS
        broker.join(QUEUE, timeout=60_000)
        worker.join()
        received = smtp_sink.wait_for(MESSAGES)
        ids = sorted(str(m.message["Message-ID"]) for m in received)
        assert ids == sorted(f"<mm.reply.{n}@example.com>" for n in range(MESSAGES))
        assert stack.store.outbox.pending() == []
        assert 1 <= smtp_sink.sessions <= THREADS, "one session per thread, not per message"
        assert smtp_sink.open_sessions == smtp_sink.sessions, "kept open between messages"
    finally:
        worker.stop()
    wait_for(lambda: smtp_sink.open_sessions == 0, what="the threads' sessions closed")
    assert len(smtp_sink.messages) == MESSAGES


def test_sessions_the_server_closed_are_replaced_without_a_retry(
    stack: Stack, smtp_sink: SmtpSink, caplog: pytest.LogCaptureFixture
) -> None:
    """Closed while idle (the server's idle timeout), or found closed at MAIL: the thread sends
    on a new session at once; no job is retried, every message arrives once."""
    actor = stack.actors.send_reply
    broker = actor.broker
    worker = dramatiq.Worker(broker, queues={QUEUE}, worker_threads=1, worker_timeout=100)

    def send(n: int) -> None:
        actor.send(reply(n).as_string(), f"reply:{n}@client.example")
        broker.join(QUEUE, timeout=30_000)
        worker.join()

    worker.start()
    try:
        send(1)
        smtp_sink.drop_sessions()
        send(2)
        smtp_sink.hang_up_next("MAIL")
        send(3)
        ids = [str(m.message["Message-ID"]) for m in smtp_sink.wait_for(3)]
        assert ids == [f"<mm.reply.{n}@example.com>" for n in (1, 2, 3)]
        assert smtp_sink.sessions == 3
        assert stack.store.outbox.pending() == []
        assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    finally:
        worker.stop()
    wait_for(lambda: smtp_sink.open_sessions == 0, what="the thread's session closed")
