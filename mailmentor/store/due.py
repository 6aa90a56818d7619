"""The due set: when each open loop's next action is due, and the claims of the ones in flight.

Sharded like the loops (n:due:<bucket>, each a small sorted set) with a top-level sorted set of
each bucket's earliest time, so that a million scheduled loops cost ~25 bytes each instead of a
skiplist node each, and claiming the due ones is still a range query. A claim pushes the entry to
``lease_until`` and names its owner: if the owner dies the scheduler takes the claim back at once
(`recover`), and if it never finishes the entry comes due again when the lease ends.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import redis

from mailmentor.store import lua
from mailmentor.store.batch import Batch
from mailmentor.store.codec import as_text
from mailmentor.store.keys import Namespace
from mailmentor.store.leases import Fence, fence_key_and_value
from mailmentor.store.piped import Reads, script_then
from mailmentor.store.times import from_score, score


def schedule_ops(batch: Batch, ns: Namespace, loop_id: str, when: datetime | None) -> None:
    """Queue on ``batch``: the loop is due at ``when`` (None: not scheduled), claim released."""
    bucket, name = ns.due_bucket(loop_id)
    if when is None:
        batch.undue(bucket, ns.key("due"), loop_id, name)
    else:
        batch.due(bucket, ns.key("due"), loop_id, score(when), name)
    batch.hdel(ns.key("claims"), loop_id)


@dataclass(frozen=True)
class Claim:
    """A due loop (or job) being worked on by ``owner``; it comes back at ``until``."""

    item: str
    owner: str
    until: float

    @property
    def value(self) -> str:
        """The claim as the store keeps it (a take-back must find exactly this)."""
        return f"{self.owner}|{self.until!r}"


def claim_log(ns: Namespace) -> str:
    """A fresh key for one claim call's log (see lua.CLAIM_DUE): a retried call finds it."""
    return ns.key("claimlog", uuid.uuid4().hex)


def parse_claim(item: str, raw: object) -> Claim:
    text = as_text(raw)
    owner, _, until = text.rpartition("|")
    return Claim(item, owner, float(until))


class DueSet:
    """Reads and claims of the due set (writes go through the commit with the loop)."""

    def __init__(self, client: redis.Redis, ns: Namespace) -> None:
        self._r = client
        self._ns = ns
        self._claim = client.register_script(lua.CLAIM_DUE)
        self._recover = client.register_script(lua.RECOVER_DUE)
        self._hold = client.register_script(lua.HOLD_DUE)

    def due_at(self, loop_id: str) -> datetime | None:
        bucket, _ = self._ns.due_bucket(loop_id)
        value = self._r.zscore(bucket, loop_id)
        return None if value is None else from_score(value)

    def due_times(self, loop_ids: list[str]) -> dict[str, datetime]:
        """When each of these loops is due (a deferred one later than its action), in one
        round trip; loops not in the due set are left out."""
        pipe = self._r.pipeline(transaction=False)
        for loop_id in loop_ids:
            pipe.zscore(self._ns.due_bucket(loop_id)[0], loop_id)
        values = pipe.execute() if loop_ids else []
        return {i: from_score(v) for i, v in zip(loop_ids, values, strict=True) if v is not None}

    def next_due(self) -> datetime | None:
        """When the scheduler next has work, so it can sleep until then."""
        first = self._r.zrange(self._ns.key("due"), 0, 0, withscores=True)
        return from_score(first[0][1]) if first else None

    def claim(
        self,
        now: datetime,
        lease: timedelta,
        owner: str,
        limit: int,
        fence: Fence | None = None,
    ) -> list[str]:
        """Take up to ``limit`` due loop ids for ``owner``; they come back at now+lease.
        ``fence`` (lease name, value): claim nothing unless that lease still holds it."""
        if limit <= 0:
            return []
        lease_key, held = fence_key_and_value(self._ns, fence)
        ids = self._claim(
            keys=[
                self._ns.key("due"),
                self._ns.key("claims"),
                claim_log(self._ns),
                lease_key,
            ],
            args=[
                repr(score(now)),
                repr(score(now + lease)),
                int(limit),
                owner,
                self._ns.key("due", ""),
                held,
            ],
        )
        return [as_text(i) for i in ids]

    def claims(self) -> list[Claim]:
        """Every claim in flight (few: only loops being sent right now)."""
        raw = self._r.hgetall(self._ns.key("claims"))
        return [parse_claim(as_text(k), v) for k, v in raw.items()]

    def recover(self, claims: Iterable[Claim], now: datetime) -> int:
        """Make the loops of these (dead owners') claims due now, unless taken or re-planned
        since."""
        args: list[str | float] = [repr(score(now)), self._ns.key("due", "")]
        for claim in claims:
            _, name = self._ns.due_bucket(claim.item)
            args += [claim.item, name, claim.value]
        if len(args) == 2:
            return 0
        return int(self._recover(keys=[self._ns.key("due"), self._ns.key("claims")], args=args))

    def hold(self, loop_id: str, owner: str, now: datetime, lease: timedelta) -> bool:
        """The sender works on this claimed loop: the claim names it and starts its lease
        again. False when there is no claim (the loop was recorded or re-planned meanwhile)."""
        return self.hold_then(loop_id, owner, now, lease, lambda pipe: None)[0]

    def hold_then(
        self, loop_id: str, owner: str, now: datetime, lease: timedelta, reads: Reads
    ) -> tuple[bool, list[Any]]:
        """`hold`, and then ``reads`` (queued on a pipeline), in one round trip."""
        _, name = self._ns.due_bucket(loop_id)
        held, answers = script_then(
            self._r,
            self._hold,
            keys=[self._ns.key("due"), self._ns.key("claims")],
            args=[loop_id, name, self._ns.key("due", ""), owner, repr(score(now + lease))],
            reads=reads,
        )
        return bool(held), answers

    def count(self) -> int:
        """How many loops are scheduled (all buckets; for status and benchmarks)."""
        with self._r.pipeline(transaction=False) as pipe:
            for key in self._ns.family("due"):
                pipe.zcard(key)
            return sum(int(n) for n in pipe.execute())
