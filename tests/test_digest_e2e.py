"""The weekly digest end to end on the test servers: pymap, aiosmtpd, embedded Redis, the real
dramatiq send workers, and a ManualClock walked past the digest's moment."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from mailmentor.imap import ImapAccount
from mailmentor.model import Event, EventType, Stage
from mailmentor.sandbox.smtp_sink import SmtpSink
from mailmentor.service.sender import AlreadyDone
from tests import mail_factory as mf
from tests.harness import Harness, running_harness
from tests.store_support import put_gift
from tests.waiting import wait_for

# Monday 07:00 in Berlin falls in the quiet hours: the digest waits for 08:00.
RULES = """
settings:
  timezone: Europe/Berlin
  quiet_hours: "21:00-08:00"
  digest: {day: monday, time: "07:00"}
rule_sets:
  advice:
    match: {kinds: [advice]}
    stages:
      asked: {after: 7d}
      advised: {after: 2d}
"""
START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)  # Monday 10:00 in Berlin
NEXT_MONDAY_0730 = datetime(2026, 1, 12, 6, 30, tzinfo=UTC)
NEXT_MONDAY_0805 = datetime(2026, 1, 12, 7, 5, tzinfo=UTC)
SLOT = "2026-01-12T06:00:00+00:00"


Starter = Callable[..., AbstractContextManager[Harness]]


@pytest.fixture
def start(
    redis_server: Any,
    redis_client: Any,
    imap_server: ImapAccount,
    smtp_sink: SmtpSink,
    tmp_path: Path,
) -> Starter:
    """The service under ``rules`` on the test servers, its clock at START."""

    def starter(rules: str, scheduler: bool = False) -> AbstractContextManager[Harness]:
        return running_harness(
            redis_server, imap_server, smtp_sink, tmp_path, rules, START, scheduler
        )

    return starter


def plain(message: EmailMessage) -> str:
    body = message.get_body(("plain",))
    assert isinstance(body, EmailMessage)
    return str(body.get_content()).replace("\r\n", "\n")


def test_the_weekly_digest_is_sent_once_at_its_time(start: Starter) -> None:
    with start(RULES) as h:
        h.deliver(mf.ask())
        h.only_loop()
        h.deliver(mf.gmail_forward())
        loop = h.wait_stage(Stage.ADVISED)
        put_gift(
            h.store,
            "grace@navy.example",
            Event(at=START, type=EventType.NOTE, source="message <g@x>", stage=Stage.CLOSED),
        )

        # The first run only starts counting: this Monday's 07:00 has passed, no digest for it.
        assert h.scheduler.digest_tick() is None
        h.clock.set(NEXT_MONDAY_0730)
        assert h.scheduler.digest_tick() is None, "quiet hours until 08:00"
        h.clock.set(NEXT_MONDAY_0805)
        assert h.scheduler.digest_tick() == SLOT
        assert h.scheduler.digest_tick() is None, "queued once"

        (received,) = h.sink.wait_for(1, timeout=15)
        digest = received.message
        assert digest["Subject"] == "Your week: 1 to do, 1 open loop"
        assert digest["To"] == mf.USER
        assert digest["Auto-Submitted"] == "auto-generated"
        text = plain(digest)
        assert (
            # Mon 5 to Mon 12 Jan: seven calendar days in Berlin
            "Your move\n 1. act on Alan's advice: Advice on pricing page? (advice came 7 days ago)"
        ) in text
        assert "Alan Kay <alan@example.org>: your move: act on their advice" in text
        assert "grace@navy.example: in balance" in text
        assert digest["Reply-To"].startswith("mentor+d-")
        assert "What do you want to learn next?" in text
        wait_for(lambda: not h.store.outbox.pending(), what="the digest's job done")
        again = h.services.sender.send_job(f"digest:{SLOT}")
        assert isinstance(again, AlreadyDone), again
        assert len(h.sink.messages) == 1
        assert h.loop(loop.id).stage is Stage.ADVISED, "the digest moves nothing"


def test_no_digest_when_the_rules_turn_it_off(start: Starter) -> None:
    rules = RULES.replace('digest: {day: monday, time: "07:00"}', "digest: false")
    with start(rules) as h:
        assert h.scheduler.digest_tick() is None
        h.clock.set(NEXT_MONDAY_0805)
        assert h.scheduler.digest_tick() is None


def test_the_running_scheduler_sends_the_digest_on_its_own(start: Starter) -> None:
    with start(RULES, scheduler=True) as h:
        h.store.weekly.digest_epoch(START)  # as the scheduler's first pass records it
        h.clock.set(NEXT_MONDAY_0805)
        (received,) = h.sink.wait_for(1, timeout=15)
        assert (
            received.message["Subject"]
            == "Your week: no open loops. What do you want to learn next?"
        )
        health = plain(received.message).split("-- \n")[0].rstrip().splitlines()[-1]
        assert health.startswith("mailmentor: all well"), health
