"""The scheduler on the real store: what a due loop needs, the weekly budget counted once,
claims of dead processes back at once, the digest kept until sent, re-planning in batches."""

from __future__ import annotations

from datetime import time, timedelta
from zoneinfo import ZoneInfo

import pytest

from mailmentor.clock import ManualClock
from mailmentor.liveness import this_process
from mailmentor.service.scheduler import (
    CLAIM_LEASE,
    Defer,
    Replan,
    Send,
    Unschedule,
    decide_due,
)
from mailmentor.store import Store
from tests.processes import dead_process
from tests.service._support import T0, advised_after, advised_loop, shipped
from tests.service_factory import dispatch_of, services_on

UTC = ZoneInfo("UTC")


def test_decide_due_says_what_a_claimed_loop_needs(store: Store) -> None:
    services = services_on(store, "ada@example.com", rules=shipped())
    loop = advised_loop(services)
    assert loop.next_action is not None
    due = loop.next_action.due_at
    rules = shipped()
    assert decide_due("gone", None, rules, due, UTC) == Unschedule("gone", None)
    assert decide_due(loop.id, loop, rules, due, UTC) == Send(loop, loop.next_action)
    quiet = shipped(quiet_hours=(time(0, 0), time(23, 0)))
    decided = decide_due(loop.id, loop, quiet, due, UTC)
    assert isinstance(decided, Defer) and decided.until > due
    slower = advised_after(rules, timedelta(days=5))
    assert isinstance(decide_due(loop.id, loop, slower, due, UTC), Replan)


def test_a_due_loop_is_queued_once_with_a_claim_naming_the_scheduler(store: Store) -> None:
    clock = ManualClock(T0)
    services = services_on(store, "ada@example.com", clock=clock, rules=shipped())
    loop = advised_loop(services)
    clock.set(T0 + timedelta(days=2, seconds=1))
    report = services.scheduler.tick()
    assert report.queued == 1
    assert services.scheduler.tick().queued == 0, "claimed: not queued again"
    assert dispatch_of(services).deliveries == [(loop.id, loop.next_action.key)]  # type: ignore[union-attr]
    assert [c.owner for c in store.due.claims()] == [services.owner]


def test_a_reminder_counts_once_against_the_budget_however_often_it_is_claimed(
    store: Store,
) -> None:
    """Found in the issue: one reminder re-claimed while its job retried counted four times."""
    clock = ManualClock(T0)
    services = services_on(store, "ada@example.com", clock=clock, rules=shipped(reminder_budget=1))
    advised_loop(services, "l1")
    clock.set(T0 + timedelta(days=2, seconds=1))
    for _ in range(4):  # its send never finishes: the claim's lease ends, it is claimed again
        report = services.scheduler.tick()
        assert (report.queued, report.over_budget) == (1, 0), "counted once: it goes again"
        clock.advance(CLAIM_LEASE + timedelta(seconds=1))
    week = T0 - timedelta(days=T0.weekday(), hours=T0.hour)
    assert store.weekly.reminders_in_week(week) == 1
    advised_loop(services, "l2", at=clock.now() - timedelta(days=2, seconds=1))
    report = services.scheduler.tick()
    assert report.over_budget == 1, "the budget of 1 is spent: the new one waits a week"


def test_claims_of_a_dead_process_come_back_at_once(store: Store) -> None:
    clock = ManualClock(T0)
    services = services_on(store, "ada@example.com", clock=clock, rules=shipped())
    advised_loop(services, "l1")
    advised_loop(services, "l2")
    clock.set(T0 + timedelta(days=2, seconds=1))
    dead, alive = dead_process(), str(this_process())
    assert store.due.claim(clock.now(), CLAIM_LEASE, dead, 1)
    assert store.due.claim(clock.now(), CLAIM_LEASE, alive, 1)
    store.health.process_beat(alive, timedelta(seconds=30))
    assert services.scheduler.recover() == 1
    assert services.scheduler.tick().queued == 1, "the dead one's loop is due again now"
    assert {c.owner for c in store.due.claims()} == {alive, services.owner}


def test_a_process_whose_heartbeat_stopped_is_presumed_dead(store: Store) -> None:
    clock = ManualClock(T0)
    services = services_on(store, "ada@example.com", clock=clock, rules=shipped())
    advised_loop(services)
    clock.set(T0 + timedelta(days=2, seconds=1))
    store.due.claim(clock.now(), CLAIM_LEASE, "elsewhere:7:1:ffff", 1)
    store.health.process_beat("elsewhere:7:1:ffff", timedelta(seconds=30))
    assert services.scheduler.recover() == 0, "alive elsewhere: its claim stands"
    store.health.process_gone("elsewhere:7:1:ffff")
    assert services.scheduler.recover() == 1


def test_the_digest_is_decided_once_and_kept_until_sent(store: Store) -> None:
    """Found in the issue: the week's digest was claimed before it was queued; if queuing
    failed or the job gave up, that week's digest was lost."""
    clock = ManualClock(T0 - timedelta(days=7))  # a Monday before: the epoch
    services = services_on(store, "ada@example.com", clock=clock, rules=shipped())
    assert services.scheduler.digest_tick() is None
    clock.set(T0 + timedelta(hours=1))  # Monday 10:00, after the 08:00 slot
    slot = services.scheduler.digest_tick()
    assert slot is not None
    assert services.scheduler.digest_tick() is None
    key = f"digest:{slot}"
    assert dispatch_of(services).jobs == [key]
    assert store.outbox.pending() == [key], "kept until a send finishes it"
    # Its job is lost (the queue failed, or dramatiq gave up): the outbox brings it back.
    clock.advance(timedelta(minutes=2))
    assert services.scheduler.dispatch_jobs() == 1
    assert dispatch_of(services).jobs == [key, key]
    other = services_on(store, "ada@example.com", clock=clock, rules=shipped())
    assert other.scheduler.digest_tick() is None, "another scheduler does not decide it again"


@pytest.mark.parametrize("batch", [1, 3, 500])
def test_reconcile_replans_in_batches_beside_the_ticks(
    store: Store, batch: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    batches = store.loops.open_loop_batches
    monkeypatch.setattr(store.loops, "open_loop_batches", lambda: batches(buckets=batch))
    clock = ManualClock(T0)
    rules = [shipped()]
    services = services_on(store, "ada@example.com", clock=clock)
    services.writer.rules = lambda: rules[0]
    services.scheduler.rules = lambda: rules[0]
    loops = [advised_loop(services, f"l{n}") for n in range(7)]
    rules[0] = advised_after(rules[0], timedelta(days=5))
    services.scheduler.start_reconcile()
    steps = 0
    while services.scheduler.reconcile_step():
        steps += 1
        services.scheduler.tick()  # ticks go on between batches
    used = len(store.client.smembers(store.ns.used("rec")))
    assert steps == -(-used // batch), "a step per few buckets, not all loops at once"
    for loop in loops:
        assert store.due.due_at(loop.id) == T0 + timedelta(days=5)


def test_a_reminder_that_could_not_be_queued_is_queued_on_the_next_tick(store: Store) -> None:
    clock = ManualClock(T0)
    services = services_on(store, "ada@example.com", clock=clock, rules=shipped())
    loop = advised_loop(services)
    clock.set(T0 + timedelta(days=2, seconds=1))
    dispatch = dispatch_of(services)
    real = dispatch.deliver_later
    failing = [True]

    def deliver_later(loop_id: str, action_key: str) -> None:
        if failing.pop() if failing else False:
            raise ConnectionError("the queue's Redis is away")
        real(loop_id, action_key)

    dispatch.deliver_later = deliver_later  # type: ignore[method-assign]
    with pytest.raises(ConnectionError):
        services.scheduler.tick()
    assert dispatch.deliveries == []
    assert services.scheduler.tick().queued == 1, "not left to its claim's ten-minute lease"
    assert [d[0] for d in dispatch.deliveries] == [loop.id]


def test_loops_claimed_by_a_tick_that_failed_are_handled_by_the_next(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Found in review: a store failure after the claim left the loops claimed by a live
    process, so nobody sent them before the claim's lease ended."""
    clock = ManualClock(T0)
    services = services_on(store, "ada@example.com", clock=clock, rules=shipped())
    loop = advised_loop(services)
    clock.set(T0 + timedelta(days=2, seconds=1))
    get_many = type(store.loops).get_many
    failing = [True]

    def flaky(self: object, ids: object, **kw: object) -> object:
        if failing:
            failing.clear()
            raise TimeoutError("Timeout reading from socket")
        return get_many(self, ids, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(type(store.loops), "get_many", flaky)
    with pytest.raises(TimeoutError):
        services.scheduler.tick()
    assert services.scheduler.tick().queued == 1
    assert [d[0] for d in dispatch_of(services).deliveries] == [loop.id]


def test_two_schedulers_never_spend_the_last_room_of_the_budget_together(store: Store) -> None:
    """Found in review: the budget was read, then counted: two schedulers could both fit."""
    week = T0 - timedelta(days=T0.weekday(), hours=T0.hour)
    first = store.weekly.admit(week, ["a k1", "b k1"], 1)
    second = store.weekly.admit(week, ["c k1"], 1)
    assert (first, second) == ({"a k1"}, set())
    assert store.weekly.admit(week, ["a k1", "d k1"], 1) == {"a k1"}, "counted already: goes"
    assert store.weekly.admit(week, ["e k1"], None) == {"e k1"}, "no budget"
    assert store.weekly.reminders_in_week(week) == 2
