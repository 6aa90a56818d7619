"""Heartbeats of processes and of the parts they run (`mailmentor status`), on a real Redis."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from mailmentor.store import Store
from mailmentor.store.health import SENDS_KEPT_S


def test_each_part_is_seen_per_host_until_it_says_it_is_gone(store: Store) -> None:
    ttl = timedelta(seconds=30)
    store.health.component_beat("work", "a", "a:1", ttl)
    store.health.component_beat("work", "a", "a:2", ttl)
    store.health.component_beat("schedule", "b", "b:1", ttl)
    assert store.health.components() == {"work": ["a", "a"], "schedule": ["b"]}
    assert store.health.component_alive("work", "a")
    assert not store.health.component_alive("work", "b")

    store.health.component_gone("work", "a", "a:1")
    assert store.health.component_alive("work", "a"), "the other work process on a still runs"
    store.health.component_gone("work", "a", "a:2")
    assert not store.health.component_alive("work", "a")
    assert store.health.components() == {"schedule": ["b"]}


def test_a_part_that_stopped_beating_is_not_running(store: Store) -> None:
    store.health.component_beat("watch", "a", "a:1", timedelta(milliseconds=50))
    assert store.health.component_alive("watch", "a")
    time.sleep(0.1)
    assert not store.health.component_alive("watch", "a")
    store.health.component_beat("watch", "a", "a:2", timedelta(seconds=30))
    assert len(store.client.hgetall(store.ns.key("parts", "watch"))) == 1, "a stale entry is pruned"


def test_failed_sends_are_counted_until_a_week_passes_with_none(store: Store) -> None:
    at = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    store.health.send_failed("reply:a", "550 no such user", at, final=True)
    store.health.send_failed("reply:b", "451 try later", at, final=False)
    failures = store.health.send_failures()
    assert (failures.failed, failures.retried) == (1, 1)
    assert failures.last_failed == "reply:a: 550 no such user"
    ttl = store.client.ttl(store.ns.key("sends"))
    assert SENDS_KEPT_S - 60 < ttl <= SENDS_KEPT_S, "one old failure does not stay forever"
