"""The advice loop end to end on real servers: pymap (or Dovecot), aiosmtpd, embedded Redis.

Time is a ManualClock shared by the service and the test; the scheduler is ticked by the test so
that days pass in milliseconds. The watcher and the dramatiq send workers run for real.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from mailmentor.imap import ImapAccount
from mailmentor.model import EventType, Loop, Stage
from mailmentor.sandbox.smtp_sink import SmtpSink
from mailmentor.tokens import parse_reply_address, verify_token
from tests import mail_factory as mf
from tests.fixtures.forwards import CLIENTS
from tests.harness import Harness, running_harness
from tests.waiting import wait_for
from workers.stack import Stack


@pytest.fixture
def compat_harness(
    redis_server: Any,
    redis_client: Any,
    any_imap_server: ImapAccount,
    smtp_sink: SmtpSink,
    tmp_path: Path,
) -> Iterator[Harness]:
    """The same, once on pymap and once on Dovecot (the compatibility reference)."""
    with running_harness(redis_server, any_imap_server, smtp_sink, tmp_path) as h:
        yield h


def test_bcc_forward_remind_and_reply_close_the_loop(compat_harness: Harness) -> None:
    h = compat_harness
    h.deliver(mf.ask())
    loop = h.only_loop()
    assert (loop.stage, loop.mentor.address, loop.mentor.name) == (
        Stage.ASKED,
        mf.MENTOR_ADDRESS,
        "Alan Kay",
    )
    assert loop.subject == "Advice on pricing page?"
    assert "converts at 1%" in loop.ask_excerpt
    assert loop.message_ids == ["ask-1@client.example"]

    h.deliver(mf.gmail_forward())
    loop = h.wait_stage(Stage.ADVISED)
    assert "three plans" in loop.advice_excerpt

    h.pass_days(1)
    time.sleep(0.5)
    assert h.sink.messages == [], "no reminder before `after` (2d) has passed"
    h.pass_days(1.1)
    reminder = h.next_reminder(1)
    assert "Alan" in reminder["Subject"]
    assert reminder["Auto-Submitted"] == "auto-generated"
    assert reminder["To"].addresses[0].addr_spec == mf.USER
    assert "ask-1@client.example" in reminder["In-Reply-To"]
    assert "ask-1@client.example" in reminder["References"]
    assert reminder["Message-ID"]
    found = parse_reply_address(reminder["Reply-To"].addresses[0].addr_spec, mf.SERVICE)
    assert found is not None and found[0] == loop.id
    assert verify_token(b"test-secret", *found)

    h.deliver(mf.reply_to_reminder(reminder, "Done!"))
    h.wait_stage(Stage.ACTED)
    h.pass_days(7.1)
    reminder = h.next_reminder(2)
    h.deliver(mf.reply_to_reminder(reminder, "reported"))
    h.wait_stage(Stage.REPORTED)
    h.pass_days(30.1)
    reminder = h.next_reminder(3)
    h.deliver(mf.reply_to_reminder(reminder, "gave back sent him the numbers"))
    loop = h.wait_stage(Stage.CLOSED)
    assert [e.stage for e in loop.events if e.type is EventType.COMMAND] == [
        Stage.ACTED,
        Stage.REPORTED,
        Stage.GAVE_BACK,
        Stage.CLOSED,
    ]
    assert any("sent him the numbers" in e.detail for e in loop.events)
    h.pass_days(90)
    time.sleep(0.5)
    assert len(h.sink.messages) == 3, "a closed loop gets no more reminders"


def _advised_with_reminder(h: Harness) -> tuple[Loop, EmailMessage]:
    loop, reminder = h.advised_with_reminder(mf.rfc822_forward("<ask-1@client.example>"))
    assert "Raise prices" in loop.advice_excerpt
    return loop, reminder


def test_snooze_then_wake_with_a_reminder(harness: Harness) -> None:
    h = harness
    _, reminder = _advised_with_reminder(h)
    h.deliver(mf.reply_to_reminder(reminder, "snooze 3d"))
    snoozed = h.wait_stage(Stage.SNOOZED)
    assert snoozed.snoozed_from is Stage.ADVISED
    h.pass_days(2.9)
    time.sleep(0.5)
    assert len(h.sink.messages) == 1
    h.pass_days(0.2)
    h.next_reminder(2)
    h.wait_stage(Stage.ADVISED)


def test_a_reply_as_people_write_it_moves_the_loop_and_keeps_the_note(harness: Harness) -> None:
    h = harness
    _, reminder = _advised_with_reminder(h)
    reply = "Hi,\n\nThanks! done - signed up for a pricing course\n\nAda"
    h.deliver(mf.reply_to_reminder(reminder, reply))
    loop = h.wait_stage(Stage.ACTED)
    assert any("signed up for a pricing course" in e.detail for e in loop.events)


def test_several_commands_in_one_reply_apply_in_order(harness: Harness) -> None:
    h = harness
    _, reminder = _advised_with_reminder(h)
    h.deliver(mf.reply_to_reminder(reminder, "done - booked it\nsnooze 2 weeks please"))
    loop = h.wait_stage(Stage.SNOOZED)
    assert loop.snoozed_from is Stage.ACTED
    assert [e.stage for e in loop.events if e.type is EventType.COMMAND][-1] is Stage.ACTED


def test_stop_drops_the_loop_and_silences_it(harness: Harness) -> None:
    h = harness
    _, reminder = _advised_with_reminder(h)
    h.deliver(mf.reply_to_reminder(reminder, "STOP"))
    h.wait_stage(Stage.DROPPED)
    h.pass_days(60)
    time.sleep(0.5)
    assert len(h.sink.messages) == 1


def test_strangers_bad_tokens_and_auto_replies_change_nothing(harness: Harness) -> None:
    h = harness
    loop, reminder = _advised_with_reminder(h)
    stranger = mf.reply_to_reminder(reminder, "done", sender="Mallory <mallory@evil.example>")
    h.deliver(stranger)
    h.deliver(mf.auto_reply(str(reminder["Reply-To"])))
    forged = reminder
    forged.replace_header("Reply-To", f"mentor+r-{loop.id}-aaaaaaaaaa@example.com")
    forged.replace_header("Message-ID", "<not-a-reminder@example.com>")
    h.deliver(mf.reply_to_reminder(forged, "done"))
    wait_for(lambda: len([m for m in h.loops()]) == 1 and _all_handled(h, 5))
    assert h.loop(loop.id).stage is Stage.ADVISED
    assert len(h.sink.messages) == 1, "ignored mail is never answered"


def _all_handled(h: Harness, expected: int) -> bool:
    checkpoint = h.store.checkpoints.get_checkpoint(h.imap.key)
    return checkpoint is not None and checkpoint[1] >= 0 and _count(h) >= expected


def _count(h: Harness) -> int:
    from imapclient import IMAPClient

    from mailmentor.imap import connect

    client: IMAPClient = connect(h.imap)
    try:
        uids = client.select_folder(h.imap.folder)
        checkpoint = h.store.checkpoints.get_checkpoint(h.imap.key)
        last = checkpoint[1] if checkpoint else 0
        all_uids = client.search(["ALL"])
        return len([u for u in all_uids if u <= last]) if uids else 0
    finally:
        client.logout()


def test_help_and_unknown_commands_get_one_short_reply(harness: Harness) -> None:
    h = harness
    loop, reminder = _advised_with_reminder(h)
    h.deliver(mf.reply_to_reminder(reminder, "help"))
    help_reply = h.next_reminder(2)
    assert "snooze" in help_reply.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
    h.deliver(mf.reply_to_reminder(reminder, "what is this"))
    unknown = h.next_reminder(3)
    assert "what is this" in unknown.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
    assert h.loop(loop.id).stage is Stage.ADVISED


def test_follow_up_after_acting_counts_as_report(harness: Harness) -> None:
    h = harness
    _, reminder = _advised_with_reminder(h)
    h.deliver(mf.reply_to_reminder(reminder, "acted"))
    h.wait_stage(Stage.ACTED)
    h.deliver(mf.follow_up("<ask-1@client.example>"))
    reported = h.wait_stage(Stage.REPORTED)
    assert len(reported.message_ids) >= 2


def test_restarted_watcher_does_not_process_twice(harness: Harness) -> None:
    h = harness
    h.deliver(mf.ask())
    loop = h.only_loop()
    h.deliver(mf.gmail_forward())
    loop = h.wait_stage(Stage.ADVISED)
    events = len(loop.events)
    h.stack.stop()
    # A new process: same Redis, same mailbox, fresh watcher from the stored checkpoint.
    again = Stack(h.stack.settings, clock=h.clock, imap=h.imap, smtp=h.stack.smtp, scheduler=False)
    again.start()
    try:
        h.stack = again
        h.deliver(mf.follow_up("<ask-1@client.example>", "one more thing"))
        wait_for(lambda: len(h.loop(loop.id).events) > events, what="new message")
        after = h.loop(loop.id)
        assert len(after.events) == events + 1, [e.source for e in after.events]
        assert len(h.loops()) == 1
    finally:
        again.stop()


def test_retried_delivery_sends_once(harness: Harness) -> None:
    h = harness
    loop, _ = _advised_with_reminder(h)
    wait_for(lambda: h.loop(loop.id).nudges == 1, what="first send recorded")
    h.clock.advance(timedelta(days=3.1))
    current = h.loop(loop.id)
    assert current.next_action is not None
    key = current.next_action.key
    h.services.sender.deliver(loop.id, key)
    h.services.sender.deliver(loop.id, key)
    time.sleep(0.3)
    assert len(h.sink.messages) == 2


def test_smtp_5xx_is_recorded_and_not_retried(harness: Harness) -> None:
    h = harness
    h.deliver(mf.ask())
    h.deliver(mf.gmail_forward())
    loop = h.wait_stage(Stage.ADVISED)
    h.sink.fail_next(550)
    h.pass_days(2.1)

    def failed() -> Loop | None:
        current = h.loop(loop.id)
        return current if any(e.type is EventType.REMINDER_FAILED for e in current.events) else None

    current = wait_for(failed, what="the failure on the loop")
    failure = next(e for e in current.events if e.type is EventType.REMINDER_FAILED)
    assert "550" in failure.detail
    assert h.sink.messages == []


def test_smtp_4xx_is_retried_with_backoff(harness: Harness) -> None:
    h = harness
    h.deliver(mf.ask())
    h.deliver(mf.gmail_forward())
    h.wait_stage(Stage.ADVISED)
    h.sink.fail_next(451)
    h.pass_days(2.1)
    reminder = h.next_reminder(1)
    assert "Alan" in reminder["Subject"]


def test_schedule_in_the_address_sets_the_first_reminder(harness: Harness) -> None:
    h = harness
    h.deliver(mf.tagged_ask("mentor+3d@example.com"))
    loop = h.only_loop()
    assert loop.first_reminder_at is not None
    assert loop.next_reminder_at == loop.first_reminder_at
    h.pass_days(3.1)  # the rules alone would wait 7 days in `asked`
    reminder = h.next_reminder(1)
    assert "Alan" in reminder["Subject"]


def test_plus_tag_and_subject_tag_pick_the_kind(harness: Harness) -> None:
    h = harness
    h.deliver(mf.tagged_ask("mentor+intro@example.com"))
    intro = h.only_loop()
    assert intro.kind == "intro"
    h.deliver(
        mf.tagged_ask(
            "mentor@example.com", subject="[learn] What should I read?", message_id="<l@c.example>"
        )
    )
    learn = wait_for(lambda: next((lp for lp in h.loops() if lp.kind == "learn"), None))
    assert learn.subject == "What should I read?"


def test_gave_tag_records_value_given_without_a_loop(harness: Harness) -> None:
    h = harness
    h.deliver(mf.tagged_ask("mentor+gave@example.com", subject="An article you'll like"))
    wait_for(lambda: h.handled("<ask-tag@client.example>"), what="the +gave mail")
    assert h.loops() == []
    events = h.gifts(mf.MENTOR_ADDRESS)
    assert [e.detail for e in events] == ["gave: An article you'll like"]


def test_one_loop_per_recipient_each_advancing_alone(harness: Harness) -> None:
    h = harness
    h.deliver(mf.tagged_ask("mentor@example.com", cc="Grace <grace@example.net>"))
    loops = wait_for(lambda: h.loops() if len(h.loops()) == 2 else None, what="two loops")
    assert {lp.mentor.address for lp in loops} == {mf.MENTOR_ADDRESS, "grace@example.net"}
    assert all(lp.stage is Stage.ASKED for lp in loops)


def test_forwards_from_every_common_client_advance_their_loop(harness: Harness) -> None:
    """BCC an ask to a different mentor per client, then forward the answer in its format."""
    h = harness
    for name in CLIENTS:
        mentor = f"Grace Hopper <grace.{name}@navy.example>"
        h.deliver(mf.ask(f"<ask-{name}@client.example>", to=mentor, subject=f"Question {name}"))
    wait_for(lambda: len(h.loops()) == len(CLIENTS), what="one loop per client")
    for name, build in CLIENTS.items():
        h.deliver(bytes(build("Grace Hopper", f"grace.{name}@navy.example", f"Question {name}")))

    def all_advised() -> list[Loop] | None:
        loops = h.loops()
        return loops if all(lp.stage is Stage.ADVISED for lp in loops) else None

    loops = wait_for(all_advised, what="every loop advised")
    assert len(loops) == len(CLIENTS), "no forward may start a second loop"
    for lp in loops:
        assert lp.advice_excerpt.startswith("Start with the customers"), (
            lp.mentor,
            lp.advice_excerpt,
        )
        assert lp.mentor.name == "Grace Hopper"


HarnessFactory = Callable[..., Harness]


@pytest.fixture
def make_harness(
    redis_server: Any,
    redis_client: Any,
    imap_server: ImapAccount,
    smtp_sink: SmtpSink,
    tmp_path: Path,
) -> Iterator[HarnessFactory]:
    """A harness with rules of the test's own and a chosen start time."""
    with contextlib.ExitStack() as stack:

        def make(rules: str, start: datetime | None = None, scheduler: bool = False) -> Harness:
            return stack.enter_context(
                running_harness(
                    redis_server, imap_server, smtp_sink, tmp_path, rules, start, scheduler
                )
            )

        yield make


ADVISED_2D = """
settings:
  timezone: Europe/Berlin
  {extra}
rule_sets:
  advice:
    match: {{kinds: [advice]}}
    stages:
      advised: {{after: 2d}}
"""


def test_quiet_hours_hold_a_reminder_until_morning(make_harness: HarnessFactory) -> None:
    # 21:00 UTC on a Monday is 22:00 in Berlin: two days later the reminder falls in quiet hours.
    h = make_harness(
        ADVISED_2D.format(extra='quiet_hours: "21:00-08:00"'),
        start=datetime(2026, 1, 5, 21, 0, tzinfo=UTC),
    )
    h.deliver(mf.ask())
    h.only_loop()
    h.deliver(mf.gmail_forward())
    h.wait_stage(Stage.ADVISED)
    h.pass_days(2.01)  # Wednesday 22:15 Berlin
    h.clock.advance(timedelta(hours=9))  # Thursday 07:15 Berlin: still quiet
    h.scheduler.tick()
    time.sleep(0.5)
    assert h.sink.messages == []
    due = h.store.due.due_at(h.only_loop().id)
    assert due == datetime(2026, 1, 8, 7, 0, tzinfo=UTC), "08:00 Berlin"
    h.clock.advance(timedelta(minutes=50))  # 08:05 Berlin
    h.scheduler.tick()
    assert "Alan" in h.next_reminder(1)["Subject"]


def test_weekly_budget_lets_the_rest_wait(make_harness: HarnessFactory) -> None:
    h = make_harness(ADVISED_2D.format(extra="reminder_budget: 1"))
    for index in range(2):
        ask_id = f"<ask-b{index}@client.example>"
        h.deliver(mf.ask(ask_id, subject=f"Question {index}"))
        wait_for(lambda n=index: len(h.loops()) == n + 1, what="loop")  # type: ignore[misc]
        h.deliver(mf.gmail_forward(subject=f"Question {index}"))
    wait_for(lambda: all(lp.stage is Stage.ADVISED for lp in h.loops()) and len(h.loops()) == 2)
    h.pass_days(2.1)  # both due; budget allows one this week
    h.next_reminder(1)
    time.sleep(0.5)
    assert len(h.sink.messages) == 1
    h.pass_days(7)  # a new week
    h.next_reminder(2)


def test_unanswered_ask_is_nudged_twice_then_let_go_kindly(harness: Harness) -> None:
    """Shipped rules: asked → nudge at 7d and 14d, then dropped at 21d with one kind note."""
    h = harness
    h.deliver(mf.ask())
    loop = h.only_loop()
    h.pass_days(7.01)
    first = h.next_reminder(1).get_body(preferencelist=("plain",))
    assert "No answer yet" in first.get_content().splitlines()[0]  # type: ignore[union-attr]
    h.wait_recorded(loop.id, 1)
    h.pass_days(7.01)
    h.next_reminder(2)
    h.wait_recorded(loop.id, 2)
    h.pass_days(7.01)
    notice = h.next_reminder(3)
    body = notice.get_body(preferencelist=("plain",))
    assert isinstance(body, EmailMessage) and "reopen" in body.get_content()
    dropped = h.wait_stage(Stage.DROPPED, loop.id)
    assert dropped.events[-1].type is EventType.GAVE_UP
    h.pass_days(60)
    time.sleep(0.5)
    assert len(h.sink.messages) == 3, "no more nudges after letting go"
    h.deliver(mf.reply_to_reminder(notice, "reopen"))
    assert h.wait_stage(Stage.ASKED, loop.id).stage is Stage.ASKED


def test_rule_edits_apply_to_open_loops_without_a_restart(
    make_harness: HarnessFactory, tmp_path: Path
) -> None:
    h = make_harness(ADVISED_2D.format(extra=""), scheduler=True)
    rules_file = tmp_path / "rules" / "rules.yaml"
    h.deliver(mf.ask())
    h.only_loop()
    h.deliver(mf.gmail_forward())
    loop = h.wait_stage(Stage.ADVISED)
    assert loop.next_reminder_at == loop.stage_entered_at + timedelta(days=2)

    rules_file.write_text(ADVISED_2D.format(extra="").replace("2d", "5d"))
    wait_for(
        lambda: h.only_loop().next_reminder_at == loop.stage_entered_at + timedelta(days=5),
        what="the running scheduler to re-plan under the edited rule",
    )

    rules_file.write_text(ADVISED_2D.format(extra="").replace("2d", "3x"))
    time.sleep(1.5)  # several scheduler passes
    assert h.only_loop().next_reminder_at == loop.stage_entered_at + timedelta(days=5), (
        "a broken edit keeps the last good rules"
    )

    h.clock.advance(timedelta(days=5.1))
    h.next_reminder(1)  # sent by the running scheduler on its own
    h.wait_recorded(loop.id, 1)
    rules_file.write_text(ADVISED_2D.format(extra="").replace("2d", "1d"))
    time.sleep(1.5)
    assert len(h.sink.messages) == 1, "a reminder already sent is not sent again"


DAILY_NUDGES = """
rule_sets:
  advice:
    match: {kinds: [advice]}
    stages:
      advised: {after: 1d, every: 1d, max: 6}
"""


def test_ignored_reminders_lead_to_one_still_relevant_mail_and_a_pause(
    make_harness: HarnessFactory,
) -> None:
    h = make_harness(DAILY_NUDGES)
    h.deliver(mf.ask())
    h.only_loop()
    h.deliver(mf.gmail_forward())
    loop = h.wait_stage(Stage.ADVISED)
    for count in (1, 2, 3):
        h.pass_days(1.01)
        h.next_reminder(count)
        h.wait_recorded(loop.id, count)
    h.pass_days(1.01)
    question = h.next_reminder(4)
    asked = question.get_body(preferencelist=("plain",))
    assert asked.get_content().startswith("Still relevant?")  # type: ignore[union-attr]
    paused = h.wait_stage(Stage.SNOOZED, loop.id)
    assert paused.snoozed_until is None
    h.pass_days(10)
    time.sleep(0.5)
    assert len(h.sink.messages) == 4, "paused until answered"
    h.deliver(mf.reply_to_reminder(question, "reopen"))
    h.wait_stage(Stage.ADVISED, loop.id)
    h.pass_days(1.01)
    assert "Alan" in h.next_reminder(5)["Subject"]
