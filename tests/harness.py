"""The whole service on the test servers (pymap or Dovecot, aiosmtpd, embedded Redis) with a
ManualClock, driven like a user: deliver mail, let days pass, read the reminders."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from mailmentor.app import Services
from mailmentor.clock import ManualClock
from mailmentor.imap import ImapAccount, append_message
from mailmentor.model import Event, Loop, Stage
from mailmentor.sandbox.smtp_sink import SmtpSink
from mailmentor.service.scheduler import Scheduler
from mailmentor.settings import load_settings
from mailmentor.store import Store
from tests import mail_factory as mf
from tests.store_support import all_loops
from tests.waiting import wait_for
from workers.stack import Stack


class Harness:
    """The whole service on the test servers, with helpers to drive it like a user."""

    def __init__(self, stack: Stack, imap: ImapAccount, sink: SmtpSink, clock: ManualClock):
        self.stack = stack
        self.imap = imap
        self.sink = sink
        self.clock = clock

    @property
    def services(self) -> Services:
        return self.stack.services

    @property
    def store(self) -> Store:
        return self.stack.store

    @property
    def scheduler(self) -> Scheduler:
        return self.services.scheduler

    def deliver(self, raw: bytes) -> None:
        append_message(self.imap, raw)

    def loops(self) -> list[Loop]:
        """Every loop, open or ended, with its history, oldest first."""
        return all_loops(self.store)

    def loop(self, loop_id: str) -> Loop:
        loop = self.store.loops.get(loop_id, history=True)
        assert loop is not None, f"no loop {loop_id}"
        return loop

    def only_loop(self) -> Loop:
        return wait_for(lambda: next(iter(self.loops()), None), what="a loop")

    def wait_stage(self, stage: Stage, loop_id: str | None = None) -> Loop:
        def check() -> Loop | None:
            loops = self.loops()
            for loop in loops:
                if (loop_id is None or loop.id == loop_id) and loop.stage is stage:
                    return loop
            return None

        return wait_for(check, what=f"stage {stage}")

    def pass_days(self, days: float) -> None:
        self.clock.advance(timedelta(days=days))
        self.scheduler.tick()

    def next_reminder(self, count: int) -> EmailMessage:
        return self.sink.wait_for(count, timeout=15)[count - 1].message

    def advised_with_reminder(self, forward: bytes) -> tuple[Loop, EmailMessage]:
        """The shipped cadence's first stretch: the ask, the mentor's advice (``forward``), two
        days, and the reminder to act on it (the first mail in the sink)."""
        self.deliver(mf.ask())
        self.only_loop()
        self.deliver(forward)
        loop = self.wait_stage(Stage.ADVISED)
        self.pass_days(2.1)
        return loop, self.next_reminder(1)

    def wait_recorded(self, loop_id: str, nudges: int) -> None:
        """The send actor records a reminder after SMTP accepted it; wait before moving time."""
        wait_for(
            lambda: self.loop(loop_id).nudges >= nudges,
            what=f"{nudges} reminder(s) recorded on {loop_id}",
        )

    def gifts(self, address: str) -> list[Event]:
        """What the user recorded giving this person (mentor+gave@)."""
        person = self.store.loops.person(address)
        return list(person.gifts) if person else []

    def handled(self, message_id: str) -> bool:
        """The message was applied to a loop (or a gift recorded)."""
        return handled(self.store, message_id)


def handled(store: Store, message_id: str) -> bool:
    """``message_id`` was applied to a loop, or recorded as a gift to someone."""
    mid = message_id.strip().strip("<>")
    entry = store.loops.lookup([mid]).get(mid)
    if entry is not None and entry.applied_to:
        return True
    source = f"message <{mid}>"
    return any(g.source == source for p in store.loops.all_people() for g in p.gifts)


@contextmanager
def running_harness(
    redis_server: Any,
    imap: ImapAccount,
    smtp_sink: SmtpSink,
    tmp_path: Path,
    rules: str | None = None,
    start: datetime | None = None,
    scheduler: bool = False,
    confirm_commands: bool = False,
) -> Iterator[Harness]:
    """``confirm_commands`` is off by default: these tests count reminders in the sink, and the
    answers to commands have tests of their own (tests/test_command_answers.py)."""
    rules_dir = None
    if rules is not None:
        rules_dir = tmp_path / "rules"
        rules_dir.mkdir()
        (rules_dir / "rules.yaml").write_text(rules)
    settings = load_settings(
        redis_url=redis_server.url,
        imap_host="",
        smtp_host="",
        data_dir=tmp_path / "data",
        rules_dir=rules_dir,
        service_address=mf.SERVICE,
        user_addresses=[mf.USER],
        secret_key="test-secret",
        timezone="Europe/Berlin",
        imap_idle_renew=2.0,  # pymap can miss an append racing IDLE's start
        scheduler_interval=0.2,
        confirm_commands=confirm_commands,
    )
    clock = ManualClock(start)
    stack = Stack(settings, clock=clock, imap=imap, smtp=smtp_sink.start(), scheduler=scheduler)
    stack.start()
    try:
        yield Harness(stack, imap, smtp_sink, clock)
    finally:
        stack.stop()
