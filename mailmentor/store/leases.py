"""Leases with fencing tokens: one holder at a time for a mailbox watcher or the scheduler.

A lease is ``token|owner`` with a TTL. Every new acquisition takes a new token from a counter, so
a write that names the token it holds (the watcher's checkpoint, `Checkpoints.set_checkpoint`'s
``fence``) is refused once someone else took over, even if the old holder wakes from a long
pause believing it still holds the lease. A lease
held by a process that is provably dead (`liveness.provably_dead`) is taken over at once instead
of after its TTL.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import redis

from mailmentor.liveness import provably_dead
from mailmentor.store import lua
from mailmentor.store.batch import Batch
from mailmentor.store.codec import as_text
from mailmentor.store.keys import Namespace
from mailmentor.store.times import ttl_ms

#: A lease a write is fenced by: (lease name, the value its holder was given, `Held.value`).
Fence = tuple[str, str]


def expect_fence(batch: Batch, ns: Namespace, fence: Fence | None) -> Batch:
    """The batch's current group applies only while ``fence``'s lease still holds its value."""
    if fence is not None:
        batch.expect_value(ns.key("lease", fence[0]), fence[1])
    return batch


def fence_key_and_value(ns: Namespace, fence: Fence | None) -> tuple[str, str]:
    """``fence`` as a script's lease key and expected value; an empty value checks nothing."""
    name, value = fence or ("", "")
    return ns.key("lease", name), value


@dataclass(frozen=True)
class Held:
    """We hold the lease; ``value`` is what a fenced write must find there."""

    token: int
    owner: str

    @property
    def value(self) -> str:
        return f"{self.token}|{self.owner}"


@dataclass(frozen=True)
class HeldByOther:
    holder: str


LeaseResult = Held | HeldByOther


class Leases:
    def __init__(self, client: redis.Redis, ns: Namespace) -> None:
        self._r = client
        self._ns = ns
        self._acquire = client.register_script(lua.ACQUIRE_LEASE)
        self._release = client.register_script(lua.RELEASE_LEASE)

    def acquire(self, name: str, owner: str, ttl: timedelta) -> LeaseResult:
        """Take or renew ``name`` for ``owner``; a provably dead holder's lease is taken over."""
        result = self._call(name, owner, ttl, "")
        if isinstance(result, HeldByOther):
            _, _, holder = result.holder.partition("|")
            if provably_dead(holder):
                result = self._call(name, owner, ttl, result.holder)
        return result

    def _call(self, name: str, owner: str, ttl: timedelta, take_from: str) -> LeaseResult:
        held, value = self._acquire(
            keys=[self._ns.key("lease", name), self._ns.key("fence", name)],
            args=[owner, ttl_ms(ttl), take_from],
        )
        if int(held) == 1:
            return Held(int(value), owner)
        return HeldByOther(as_text(value))

    def release(self, name: str, owner: str) -> None:
        """Give the lease up early, only if we still hold it (never drop a successor's)."""
        self._release(keys=[self._ns.key("lease", name)], args=[owner])

    def holders(self, prefix: str) -> list[tuple[str, str]]:
        """(lease key, holder) of every lease whose name starts with ``prefix`` (``status``)."""
        found = []
        for key in self._r.scan_iter(match=self._ns.key("lease", prefix) + "*", count=200):
            raw = self._r.get(key)
            if raw is not None:
                found.append((as_text(key), as_text(raw).partition("|")[2]))
        return found

    def holder(self, name: str) -> str | None:
        raw = self._r.get(self._ns.key("lease", name))
        if raw is None:
            return None
        return as_text(raw).partition("|")[2]
