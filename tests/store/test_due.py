"""The sharded due set and its claims, against the real Redis."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
import redis

from mailmentor.embedded_redis import EmbeddedRedis
from mailmentor.store import Store, open_store
from mailmentor.store.batch import Batch
from mailmentor.store.due import schedule_ops

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
LEASE = timedelta(minutes=10)


def schedule(store: Store, loop_id: str, when: datetime | None) -> None:
    batch = Batch("all")
    schedule_ops(batch, store.ns, loop_id, when)
    store.loops.run(batch)


def test_claims_take_what_is_due_and_push_it_to_the_lease(store: Store) -> None:
    for n in range(5):
        schedule(store, f"l{n}", T0 + timedelta(minutes=n))
    assert store.due.next_due() == T0
    claimed = store.due.claim(T0 + timedelta(minutes=2), LEASE, "me", 10)
    assert sorted(claimed) == ["l0", "l1", "l2"]
    assert store.due.due_at("l0") == T0 + timedelta(minutes=2) + LEASE
    assert {c.item: c.owner for c in store.due.claims()} == {"l0": "me", "l1": "me", "l2": "me"}
    assert store.due.claim(T0 + timedelta(minutes=2), LEASE, "other", 10) == []
    assert store.due.next_due() == T0 + timedelta(minutes=3)


def test_a_claim_comes_back_when_its_lease_ends(store: Store) -> None:
    schedule(store, "l1", T0)
    assert store.due.claim(T0, timedelta(seconds=30), "me", 10) == ["l1"]
    assert store.due.claim(T0 + timedelta(seconds=29), timedelta(seconds=30), "you", 10) == []
    assert store.due.claim(T0 + timedelta(seconds=30), timedelta(seconds=30), "you", 10) == ["l1"]
    assert [c.owner for c in store.due.claims()] == ["you"]


def test_recovering_a_dead_owners_claim_makes_it_due_now(store: Store) -> None:
    schedule(store, "l1", T0)
    schedule(store, "l2", T0)
    store.due.claim(T0, LEASE, "dead", 10)
    # l2 was re-planned since (its send was recorded): its new due time stands.
    schedule(store, "l2", T0 + timedelta(days=3))
    now = T0 + timedelta(seconds=5)
    assert store.due.recover(store.due.claims(), now) == 1
    assert store.due.due_at("l1") == now
    assert store.due.due_at("l2") == T0 + timedelta(days=3)
    assert store.due.claims() == []


def test_unscheduling_removes_the_loop_and_its_claim(store: Store) -> None:
    schedule(store, "l1", T0)
    store.due.claim(T0, LEASE, "me", 10)
    schedule(store, "l1", None)
    assert store.due.due_at("l1") is None and store.due.claims() == []
    assert store.due.next_due() is None


def test_claims_are_limited(store: Store) -> None:
    for n in range(30):
        schedule(store, f"l{n:02}", T0)
    first = store.due.claim(T0, LEASE, "me", 12)
    second = store.due.claim(T0, LEASE, "me", 100)
    assert len(first) == 12 and len(second) == 18 and not set(first) & set(second)
    assert store.due.count() == 30


def test_concurrent_schedulers_never_claim_one_loop_twice(
    store: Store, redis_server: EmbeddedRedis
) -> None:
    for n in range(400):
        schedule(store, f"l{n:03}", T0)
    claimed: list[list[str]] = [[] for _ in range(4)]

    def scheduler(i: int) -> None:
        with redis.Redis.from_url(redis_server.url) as client:
            own = open_store(client)
            while got := own.due.claim(T0, LEASE, f"s{i}", 7):
                claimed[i] += got

    threads = [threading.Thread(target=scheduler, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    everything = [loop_id for part in claimed for loop_id in part]
    assert sorted(everything) == [f"l{n:03}" for n in range(400)]


def test_a_retried_claim_returns_what_the_first_try_claimed(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Found in review: the client retries a command whose answer it lost; a claim script that
    ran would run again, find nothing due, and the first claims were never handled."""
    for n in range(3):
        schedule(store, f"l{n}", T0)
    log_key = store.ns.key("claimlog", "fixed")
    monkeypatch.setattr("mailmentor.store.due.claim_log", lambda ns: log_key)
    first = store.due.claim(T0, LEASE, "me", 10)
    schedule(store, "l9", T0)
    again = store.due.claim(T0, LEASE, "me", 10)
    assert sorted(first) == sorted(again) == ["l0", "l1", "l2"]
    assert store.due.due_at("l9") == T0, "the retry claimed nothing more"


def test_taking_back_a_dead_claim_leaves_a_newer_live_one_alone(store: Store) -> None:
    schedule(store, "l1", T0)
    store.due.claim(T0, timedelta(seconds=30), "dead", 10)
    (stale,) = store.due.claims()
    store.due.claim(T0 + timedelta(seconds=31), LEASE, "live", 10)  # its lease ended: re-claimed
    assert store.due.recover([stale], T0 + timedelta(seconds=40)) == 0
    assert [c.owner for c in store.due.claims()] == ["live"]
