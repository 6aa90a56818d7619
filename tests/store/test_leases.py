"""Leases with fencing tokens, and the take-over of a provably dead holder's lease."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from datetime import timedelta

import redis

from mailmentor.embedded_redis import EmbeddedRedis
from mailmentor.liveness import provably_dead, this_process
from mailmentor.store import Store, open_store
from mailmentor.store.leases import Held, HeldByOther
from tests.processes import dead_process, owner_of

TTL = timedelta(seconds=30)


def test_one_holder_renewing_and_releasing(store: Store) -> None:
    first = store.leases.acquire("watch:x", "w1", TTL)
    assert isinstance(first, Held) and first.token == 1
    assert store.leases.acquire("watch:x", "w2", TTL) == HeldByOther("1|w1")
    assert store.leases.acquire("watch:x", "w1", TTL) == first, "renewing keeps the token"
    store.leases.release("watch:x", "w2")
    assert store.leases.holder("watch:x") == "w1", "only the holder releases"
    store.leases.release("watch:x", "w1")
    again = store.leases.acquire("watch:x", "w2", TTL)
    assert isinstance(again, Held) and again.token == 2, "a new acquisition, a new token"


def test_a_lease_expires(store: Store) -> None:
    store.leases.acquire("watch:x", "w1", timedelta(milliseconds=150))
    time.sleep(0.3)
    assert isinstance(store.leases.acquire("watch:x", "w2", TTL), Held)


def test_a_fenced_write_is_refused_once_the_lease_moved_on(store: Store) -> None:
    old = store.leases.acquire("watch:x", "w1", timedelta(milliseconds=150))
    assert isinstance(old, Held)
    fence = ("watch:x", old.value)
    assert store.checkpoints.set_checkpoint("box", 7, 10, fence=fence) is True
    time.sleep(0.3)  # w1 pauses too long: its lease ends and w2 takes over
    assert isinstance(store.leases.acquire("watch:x", "w2", TTL), Held)
    assert store.checkpoints.set_checkpoint("box", 7, 11, fence=fence) is False
    assert store.checkpoints.get_checkpoint("box") == (7, 10)


def test_a_provably_dead_holders_lease_is_taken_over_at_once(store: Store) -> None:
    dead = f"{dead_process()}/watch"
    assert provably_dead(dead)
    store.leases.acquire("watch:x", dead, timedelta(minutes=5))
    taken = store.leases.acquire("watch:x", f"{this_process()}/watch", TTL)
    assert isinstance(taken, Held) and taken.token == 2


def test_a_live_holder_on_this_machine_keeps_its_lease(store: Store) -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        alive = owner_of(child.pid)
        assert not provably_dead(alive)
        store.leases.acquire("watch:x", alive, TTL)
        assert isinstance(store.leases.acquire("watch:x", "me", TTL), HeldByOther)
    finally:
        child.kill()
        child.wait()


def test_a_holder_on_another_machine_is_never_presumed_dead(store: Store) -> None:
    store.leases.acquire("watch:x", "elsewhere:1:1:abc", TTL)
    assert not provably_dead("elsewhere:1:1:abc")
    assert isinstance(store.leases.acquire("watch:x", "me", TTL), HeldByOther)


def test_one_winner_among_racers(store: Store, redis_server: EmbeddedRedis) -> None:
    winners: list[str] = []
    barrier = threading.Barrier(8)

    def race(n: int) -> None:
        with redis.Redis.from_url(redis_server.url) as client:
            own = open_store(client)
            barrier.wait()
            if isinstance(own.leases.acquire("watch:x", f"w{n}", TTL), Held):
                winners.append(f"w{n}")

    threads = [threading.Thread(target=race, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(winners) == 1
