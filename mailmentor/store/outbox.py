"""Mail waiting to be sent that is not a loop's reminder: replies, the weekly digest, drafts.

A job is written in the same step as what caused it (the command it answers, the week's digest
decision), kept in n:out until it is done, and claimed like a due loop. So nothing is lost when
the process that meant to send it dies: its claim is taken back and the job sent by another.
Sending marks (n:sending:<key>) say which process is sending something right now.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

import redis

from mailmentor.store import lua
from mailmentor.store.batch import Batch
from mailmentor.store.changes import Job
from mailmentor.store.codec import as_text
from mailmentor.store.due import Claim, claim_log, parse_claim
from mailmentor.store.keys import Namespace
from mailmentor.store.leases import Fence, fence_key_and_value
from mailmentor.store.piped import Reads, script_then
from mailmentor.store.times import score, ttl_ms


def job_ops(batch: Batch, ns: Namespace, job: Job) -> None:
    batch.zadd(ns.key("out"), score(job.due), job.key)
    batch.hset(ns.key("outjob"), job.key, job.payload)
    if job.owner:
        claim = Claim(job.key, job.owner, score(job.due))
        batch.hset(ns.key("outclaims"), job.key, claim.value)


def job_done_ops(batch: Batch, ns: Namespace, key: str) -> None:
    batch.zrem(ns.key("out"), key)
    batch.hdel(ns.key("outjob"), key)
    batch.hdel(ns.key("outclaims"), key)
    batch.delete(ns.key("sending", key))


class OutboxStore:
    def __init__(self, client: redis.Redis, ns: Namespace) -> None:
        self._r = client
        self._ns = ns
        self._claim = client.register_script(lua.CLAIM_OUT)
        self._recover = client.register_script(lua.RECOVER_OUT)
        self._hold = client.register_script(lua.HOLD_OUT)
        self._begin = client.register_script(lua.BEGIN_SEND)
        self._delete_if = client.register_script(lua.DELETE_IF)

    def job(self, key: str) -> str | None:
        """The job's payload, or None when it is done (or never was)."""
        raw = self._r.hget(self._ns.key("outjob"), key)
        return None if raw is None else as_text(raw)

    def pending(self) -> list[str]:
        return [as_text(k) for k in self._r.zrange(self._ns.key("out"), 0, -1)]

    def claim(
        self,
        now: datetime,
        lease: timedelta,
        owner: str,
        limit: int,
        fence: Fence | None = None,
    ) -> list[str]:
        lease_key, held = fence_key_and_value(self._ns, fence)
        keys = self._claim(
            keys=[
                self._ns.key("out"),
                self._ns.key("outclaims"),
                claim_log(self._ns),
                lease_key,
            ],
            args=[repr(score(now)), repr(score(now + lease)), int(limit), owner, held],
        )
        return [as_text(k) for k in keys]

    def claims(self) -> list[Claim]:
        raw = self._r.hgetall(self._ns.key("outclaims"))
        return [parse_claim(as_text(k), v) for k, v in raw.items()]

    def recover(self, claims: Iterable[Claim], now: datetime) -> int:
        """Make these (dead owners') jobs due now, unless taken since."""
        args: list[str] = [repr(score(now))]
        for claim in claims:
            args += [claim.item, claim.value]
        if len(args) == 1:
            return 0
        return int(self._recover(keys=[self._ns.key("out"), self._ns.key("outclaims")], args=args))

    def hold(self, key: str, owner: str, now: datetime, lease: timedelta) -> bool:
        """The sender works on this job: its claim names it and starts its lease again."""
        held = self._hold(
            keys=[self._ns.key("out"), self._ns.key("outclaims"), self._ns.key("outjob")],
            args=[key, owner, repr(score(now + lease))],
        )
        return bool(held)

    # -- sending marks --------------------------------------------------------------------------

    def begin_send(self, key: str, owner: str, ttl: timedelta, take_from: str = "") -> str:
        """Mark ``key`` as being sent by ``owner``; "" when done, else the current holder.

        ``take_from`` names a holder known to be dead, whose mark may be taken over.
        """
        return self.begin_send_then(key, owner, ttl, lambda pipe: None, take_from)[0]

    def begin_send_then(
        self, key: str, owner: str, ttl: timedelta, reads: Reads, take_from: str = ""
    ) -> tuple[str, list[Any]]:
        """`begin_send`, and then ``reads`` (queued on a pipeline, so they run after the mark
        is taken), in one round trip."""
        holder, answers = script_then(
            self._r,
            self._begin,
            keys=[self._ns.key("sending", key)],
            args=[owner, ttl_ms(ttl), take_from],
            reads=reads,
        )
        return as_text(holder or ""), answers

    def queue_job_read(self, pipe: Any, key: str) -> None:
        """Queue on ``pipe`` the read of `job`."""
        pipe.hget(self._ns.key("outjob"), key)

    def abort_send(self, key: str, owner: str) -> None:
        """The send did not reach the server: free the mark (only if it is still ours)."""
        self._delete_if(keys=[self._ns.key("sending", key)], args=[owner])

    def sender_of(self, key: str) -> str | None:
        raw = self._r.get(self._ns.key("sending", key))
        return None if raw is None else as_text(raw)
