"""The send actors' failure handling: an expected temporary failure is one WARNING line naming
the next try, and a dramatiq Retry (never logged with a traceback); the unexpected is raised."""

from __future__ import annotations

import logging
from email.message import EmailMessage
from typing import Any

import dramatiq
import pytest
import redis

from mailmentor.errors import PermanentSendError, SendBusy, TemporarySendError
from mailmentor.service.sender import Sent
from tests import mail_factory as mf
from tests.harness import running_harness
from tests.waiting import wait_for
from workers.actors import MAX_BACKOFF_S, backoff_ms, run_send
from workers.broker import quiet_outages


def raising(exc: Exception) -> Sent:
    raise exc


@pytest.mark.parametrize(
    "failure",
    [
        TemporarySendError("SMTP 451 try later", code=451),
        TemporarySendError("cannot reach smtp.example.com:587: Connection refused"),
        redis.ConnectionError("Error 111 connecting to redis"),
        redis.TimeoutError("Timeout reading from socket"),
    ],
)
def test_a_temporary_failure_is_one_warning_and_a_retry(
    failure: Exception, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO), pytest.raises(dramatiq.Retry) as retry:
        run_send("reminder l1:k", lambda: raising(failure))
    (record,) = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert record.levelno == logging.WARNING and record.exc_info is None
    assert "reminder l1:k" in record.getMessage() and "try 2 again in" in record.getMessage()
    assert retry.value.delay is not None and 1000 <= retry.value.delay <= 2000


def test_another_live_sender_means_check_again_quietly(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO), pytest.raises(dramatiq.Retry):
        run_send("reminder l1:k", lambda: raising(SendBusy("l1:k", "host:1:2:3")))
    assert all(r.levelno < logging.WARNING for r in caplog.records)


def test_the_unexpected_is_raised_for_dramatiq_to_log(caplog: pytest.LogCaptureFixture) -> None:
    with pytest.raises(KeyError):
        run_send("reminder l1:k", lambda: raising(KeyError("a bug")))
    with pytest.raises(PermanentSendError):
        run_send("reminder l1:k", lambda: raising(PermanentSendError("550", code=550)))


def test_backoff_doubles_with_jitter_up_to_ten_minutes() -> None:
    for tries, low, high in [(0, 1000, 2000), (1, 2000, 4000), (5, 32000, 64000)]:
        assert all(low <= backoff_ms(tries) <= high for _ in range(50))
    assert all(backoff_ms(30) <= MAX_BACKOFF_S * 1000 for _ in range(50))


def test_dramatiqs_consumer_reports_a_redis_outage_as_one_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    quiet_outages()
    logger = logging.getLogger("dramatiq.worker.ConsumerThread(mailmentor)")
    with caplog.at_level(logging.INFO):
        try:
            raise redis.TimeoutError("Timeout reading from socket")
        except redis.TimeoutError:
            logger.critical("Consumer encountered an unexpected error.", exc_info=True)
        logger.critical("Consumer encountered a connection error: %s", "Error 111")
        logger.critical("Consumer encountered an unexpected error.", exc_info=False)
    outage, refused, other = caplog.records
    assert (outage.levelno, outage.exc_info) == (logging.WARNING, None)
    assert "Redis unavailable (Timeout reading from socket)" in outage.getMessage()
    assert refused.levelno == logging.WARNING
    assert other.levelno == logging.CRITICAL, "anything else stays as dramatiq says it"


def test_a_reply_queued_by_layout_1_is_still_sent_once(
    redis_server: Any, redis_client: Any, imap_server: Any, smtp_sink: Any, tmp_path: Any
) -> None:
    """An upgrade with layout 1's jobs still in the queue (it queued replies and digests
    straight onto dramatiq, under their own actor names): they are sent, not dropped."""
    reply = EmailMessage()
    reply["From"] = mf.SERVICE
    reply["To"] = mf.USER
    reply["Subject"] = "Re: help"
    reply["Message-ID"] = "<mm.reply.legacy@example.com>"
    reply.set_content("The commands are: done, reported, ...")
    with running_harness(redis_server, imap_server, smtp_sink, tmp_path) as h:
        h.stack.actors.send_reply.send(reply.as_string(), "reply:legacy@client.example")
        (received,) = smtp_sink.wait_for(1)
        wait_for(lambda: not h.store.outbox.pending(), what="the adopted job done")
        assert received.message["Subject"] == "Re: help"
        assert len(smtp_sink.messages) == 1
