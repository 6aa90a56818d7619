"""What the scheduler remembers per week: reminders counted against the budget, and the digest.

A reminder counts once per loop and action, however often it is claimed again while its job
retries (a set, not a counter). The digest's week is decided once, in the same step that leaves
its job in the outbox, so a digest is either queued and kept until sent or not decided at all.
"""

from __future__ import annotations

from datetime import datetime

import redis

from mailmentor.store import lua
from mailmentor.store.batch import Batch
from mailmentor.store.changes import Committed, Job
from mailmentor.store.codec import as_text
from mailmentor.store.commit import Committer
from mailmentor.store.keys import Namespace
from mailmentor.store.leases import Fence, expect_fence
from mailmentor.store.outbox import job_ops
from mailmentor.store.times import from_score, score

#: How long a week's budget is remembered.
BUDGET_TTL_S = 31 * 86400
#: How long a digest's line numbers stay good for replies (``2 done`` to an old digest): a
#: year, a few dozen short fields a week.
DIGEST_LINES_TTL_S = 365 * 86400


class Weekly:
    def __init__(self, client: redis.Redis, ns: Namespace, committer: Committer) -> None:
        self._r = client
        self._ns = ns
        self._committer = committer
        self._admit = client.register_script(lua.ADMIT)

    def _budget_key(self, week: datetime) -> str:
        return self._ns.key("budget", int(score(week)))

    def reminders_in_week(self, week: datetime) -> int:
        return int(self._r.scard(self._budget_key(week)))

    def admit(self, week: datetime, items: list[str], budget: int | None) -> set[str]:
        """Which of these reminders ("loopid action-key", most urgent first) may go this week:
        those counted already, and new ones while the budget has room (None: no budget), each
        counted once. One atomic step, so schedulers never overspend it together."""
        if not items:
            return set()
        admitted = self._admit(
            keys=[self._budget_key(week)],
            args=[-1 if budget is None else int(budget), BUDGET_TTL_S, *items],
        )
        return {as_text(item) for item in admitted}

    def digest_epoch(self, now: datetime) -> datetime:
        """When digests started being scheduled here (set once): earlier weeks get none, so a
        fresh install does not mail last week's digest at once."""
        key = self._ns.key("digest", "epoch")
        self._r.set(key, repr(score(now)), nx=True)
        raw = self._r.get(key)
        return from_score(raw) if raw is not None else now

    def decide_digest(self, slot: datetime, job: Job, fence: Fence | None = None) -> bool:
        """Queue ``job`` as the digest of ``slot``'s week, once: False if decided already (or
        ``fence``, a (lease name, value) the caller holds, no longer holds)."""
        batch = expect_fence(Batch("all"), self._ns, fence)
        decided = self._ns.key("digest", "decided")
        batch.expect_below(decided, int(score(slot)))
        batch.set(decided, str(int(score(slot))))
        job_ops(batch, self._ns, job)
        return isinstance(self._committer.run(batch), Committed)

    def digest_lines(self, digest_id: str) -> dict[int, str]:
        """Line number → loop id of the digest ``digest_id`` (empty: unknown or expired)."""
        found = self._r.hgetall(self._ns.key("digest", "lines", digest_id))
        return {int(n): as_text(loop_id) for n, loop_id in found.items() if as_text(n).isdigit()}

    def bind_digest_lines(self, digest_id: str, lines: dict[int, str]) -> dict[int, str]:
        """Keep these numbers for ``digest_id``; a number bound already keeps its loop (a
        retried send of the same digest must not change what "2" means). Returns the binding."""
        key = self._ns.key("digest", "lines", digest_id)
        with self._r.pipeline(transaction=True) as pipe:
            for number, loop_id in lines.items():
                pipe.hsetnx(key, str(number), loop_id)
            pipe.expire(key, DIGEST_LINES_TTL_S)
            pipe.execute()
        return self.digest_lines(digest_id)
