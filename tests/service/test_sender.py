"""The one send path on the real store and a real SMTP server: once per item, the crash window
between SMTP's 250 and the record the only way to mail twice, and only when the sender died."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
import redis

from mailmentor.app import Services
from mailmentor.clock import ManualClock
from mailmentor.errors import SendBusy, TemporarySendError
from mailmentor.liveness import this_process
from mailmentor.model import EventType, Loop
from mailmentor.sandbox.smtp_sink import SmtpSink
from mailmentor.service.sender import AlreadyDone, FailedForGood, Sent
from mailmentor.store import Store
from mailmentor.store.loops import LoopStore
from tests.processes import dead_process
from tests.service._support import T0, advised_loop, shipped
from tests.service_factory import services_on


@pytest.fixture
def services(store: Store, smtp_sink: SmtpSink) -> Services:
    clock = ManualClock(T0)
    built = services_on(
        store, "ada@example.com", clock=clock, rules=shipped(), smtp=smtp_sink.account
    )
    return built


def due_loop(services: Services) -> tuple[Loop, str]:
    loop = advised_loop(services)
    assert loop.next_action is not None
    clock = services.scheduler.clock
    assert isinstance(clock, ManualClock)
    clock.set(loop.next_action.due_at + timedelta(seconds=1))
    return loop, loop.next_action.key


def test_a_reminder_is_sent_once_and_recorded(services: Services, smtp_sink: SmtpSink) -> None:
    loop, key = due_loop(services)
    outcome = services.sender.deliver(loop.id, key)
    assert isinstance(outcome, Sent)
    assert len(smtp_sink.messages) == 1
    stored = services.store.loops.get(loop.id, history=True)
    assert stored is not None and stored.nudges == 1
    assert stored.events[-1].type is EventType.REMINDER_SENT
    assert services.store.outbox.sender_of(f"{loop.id}:{key}") is None, "the mark is cleared"
    again = services.sender.deliver(loop.id, key)
    assert isinstance(again, AlreadyDone) and len(smtp_sink.messages) == 1


def test_a_mark_of_a_live_sender_means_wait_not_done(
    services: Services, smtp_sink: SmtpSink
) -> None:
    """Found in the issue: a retried job that found a `sending` mark counted as done, and ten
    minutes later the reminder was sent again."""
    loop, key = due_loop(services)
    other = "elsewhere:9:1:aaaa"
    services.store.health.process_beat(other, timedelta(seconds=30))
    services.store.outbox.begin_send(f"{loop.id}:{key}", other, timedelta(minutes=3))
    with pytest.raises(SendBusy):
        services.sender.deliver(loop.id, key)
    assert smtp_sink.messages == []
    assert services.store.loops.get(loop.id).nudges == 0  # type: ignore[union-attr]


def test_a_mark_of_a_dead_sender_is_taken_over_and_sent_once_more(
    services: Services, smtp_sink: SmtpSink, caplog: pytest.LogCaptureFixture
) -> None:
    """The documented window: the dead sender may have handed the mail to SMTP; it goes again,
    with the same Message-ID, and is recorded once."""
    loop, key = due_loop(services)
    first = services.sender._render(loop, loop.next_action)  # type: ignore[arg-type]
    services.store.outbox.begin_send(f"{loop.id}:{key}", dead_process(), timedelta(minutes=3))
    with caplog.at_level(logging.WARNING, "mailmentor.sender"):
        assert isinstance(services.sender.deliver(loop.id, key), Sent)
    assert "which stopped while sending it" in caplog.text
    (received,) = smtp_sink.messages
    assert received.message["Message-ID"] == first["Message-ID"], "re-sent mail keeps its id"
    assert services.store.loops.get(loop.id).nudges == 1  # type: ignore[union-attr]


def test_when_the_record_fails_after_smtp_the_retry_does_not_mail_again(
    services: Services, smtp_sink: SmtpSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    loop, key = due_loop(services)
    commit = LoopStore.commit
    failures = iter([redis.ConnectionError("redis went away")])

    def flaky(self: LoopStore, change: object) -> object:
        for error in failures:
            raise error
        return commit(self, change)  # type: ignore[arg-type]

    monkeypatch.setattr(LoopStore, "commit", flaky)
    with pytest.raises(redis.ConnectionError):
        services.sender.deliver(loop.id, key)
    assert len(smtp_sink.messages) == 1
    assert isinstance(services.sender.deliver(loop.id, key), Sent)  # the job's retry
    assert len(smtp_sink.messages) == 1, "recorded without mailing again"
    assert services.store.loops.get(loop.id).nudges == 1  # type: ignore[union-attr]


def test_a_temporary_failure_frees_the_mark_for_the_retry(
    services: Services, smtp_sink: SmtpSink
) -> None:
    loop, key = due_loop(services)
    smtp_sink.fail_next(451)
    with pytest.raises(TemporarySendError):
        services.sender.deliver(loop.id, key)
    assert services.store.outbox.sender_of(f"{loop.id}:{key}") is None
    assert isinstance(services.sender.deliver(loop.id, key), Sent)
    assert len(smtp_sink.messages) == 1


def test_a_permanent_failure_is_recorded_and_not_retried(
    services: Services, smtp_sink: SmtpSink
) -> None:
    loop, key = due_loop(services)
    smtp_sink.fail_next(550)
    outcome = services.sender.deliver(loop.id, key)
    assert isinstance(outcome, FailedForGood) and "550" in outcome.error
    stored = services.store.loops.get(loop.id, history=True)
    assert stored is not None and stored.events[-1].type is EventType.REMINDER_FAILED
    assert stored.nudges == 1, "a failed nudge counts: the cadence moves on"
    assert isinstance(services.sender.deliver(loop.id, key), AlreadyDone)
    assert smtp_sink.messages == []


def test_a_job_is_sent_once_and_then_done(services: Services, smtp_sink: SmtpSink) -> None:
    clock = services.scheduler.clock
    assert isinstance(clock, ManualClock)
    clock.set(T0 - timedelta(days=7))
    services.scheduler.digest_tick()
    clock.set(T0 + timedelta(hours=1))
    slot = services.scheduler.digest_tick()
    key = f"digest:{slot}"
    assert isinstance(services.sender.send_job(key), Sent)
    assert isinstance(services.sender.send_job(key), AlreadyDone)
    (digest,) = smtp_sink.messages
    assert digest.message["Subject"].startswith("Your week")
    assert services.store.outbox.pending() == []


def test_the_owner_of_a_fresh_process_is_not_the_dead_ones() -> None:
    assert str(this_process()) != dead_process()


def test_another_thread_of_this_process_sending_it_means_wait(
    services: Services, smtp_sink: SmtpSink
) -> None:
    """Found by the fault suite: two worker threads of one process mailed a duplicated job
    twice, as the sending mark named only the process."""
    loop, key = due_loop(services)
    other_thread = f"{services.owner}/12345"
    services.store.outbox.begin_send(f"{loop.id}:{key}", other_thread, timedelta(minutes=3))
    with pytest.raises(SendBusy):
        services.sender.deliver(loop.id, key)
    assert smtp_sink.messages == []


def test_a_duplicated_job_that_read_before_another_finished_does_not_send(
    services: Services, smtp_sink: SmtpSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Found in review: the check "still to send?" came before the mark, and a finished send
    clears its mark with its record, so a job that had read the loop just before could send
    again. It is asked again once the mark is taken."""
    loop, key = due_loop(services)
    sender = services.sender
    render = type(sender)._render
    raced: list[object] = []
    racing = [True]

    def render_then_race(self: object, lp: Loop, action: object) -> object:
        message = render(sender, lp, action)  # type: ignore[arg-type]
        if racing:
            racing.clear()
            raced.append(sender.deliver(loop.id, key))  # another job finishes meanwhile
        return message

    monkeypatch.setattr(type(sender), "_render", render_then_race)
    assert isinstance(sender.deliver(loop.id, key), AlreadyDone)
    assert isinstance(raced[0], Sent)
    assert len(smtp_sink.messages) == 1
    assert services.store.outbox.sender_of(f"{loop.id}:{key}") is None


def test_a_failure_while_building_holds_no_mark(
    services: Services, smtp_sink: SmtpSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    loop, key = due_loop(services)

    def broken(self: object, lp: Loop, action: object) -> object:
        raise redis.TimeoutError("Timeout reading from socket")

    monkeypatch.setattr(type(services.sender), "_render", broken)
    with pytest.raises(redis.TimeoutError):
        services.sender.deliver(loop.id, key)
    assert services.store.outbox.sender_of(f"{loop.id}:{key}") is None
    monkeypatch.undo()
    assert isinstance(services.sender.deliver(loop.id, key), Sent)


def test_the_sender_holds_the_claim_while_it_works(services: Services) -> None:
    """The claim names the sending process and its lease starts again at every try, so a long
    retry is not claimed twice and a dead sender is recognised (found in review)."""
    loop, _ = due_loop(services)
    now = services.scheduler.clock.now()
    assert services.scheduler.tick().queued == 1
    services.store.health.process_beat(services.owner, timedelta(seconds=30))
    (claim,) = services.store.due.claims()
    clock = services.scheduler.clock
    assert isinstance(clock, ManualClock)
    clock.advance(timedelta(minutes=14))
    assert services.store.due.hold(loop.id, "worker:7:1:b", clock.now(), timedelta(minutes=15))
    (held,) = services.store.due.claims()
    assert held.owner == "worker:7:1:b" and held.until > claim.until > now.timestamp()
    clock.advance(timedelta(minutes=2))  # the first lease has ended; the held one has not
    assert services.scheduler.tick().queued == 0
    assert not services.store.due.hold("no-such-loop", "w", clock.now(), timedelta(minutes=1))


def test_a_change_to_the_loop_while_its_reminder_is_on_the_wire_is_kept(
    services: Services, smtp_sink: SmtpSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The record decides first on the loop as read with the sending mark (one round trip
    less); a change committed meanwhile fails its revision check, and it decides again on what
    is there now, so the change and the record both stand."""
    from mailmentor import stages
    from mailmentor.store.changes import Changeset, LoopChange

    loop, key = due_loop(services)
    sender = services.sender
    smtp = sender._smtp

    def send_then_change(message: object) -> None:
        smtp(message)  # type: ignore[arg-type]

        def note() -> tuple[Changeset, None]:
            current = services.store.loops.get(loop.id)
            assert current is not None
            noted = stages.record(current, EventType.NOTE, T0, "note while sending")
            return Changeset(loops=(LoopChange(current, noted),)), None

        services.writer.run(note, "a note")

    monkeypatch.setattr(sender, "_smtp", send_then_change)
    assert isinstance(sender.deliver(loop.id, key), Sent)
    stored = services.store.loops.get(loop.id, history=True)
    assert stored is not None and stored.nudges == 1
    types = [event.type for event in stored.events]
    assert EventType.NOTE in types and types[-1] is EventType.REMINDER_SENT
    assert len(smtp_sink.messages) == 1
    assert services.store.outbox.sender_of(f"{loop.id}:{key}") is None
