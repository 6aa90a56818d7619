"""The scheduler: due loops go to the send queue within quiet hours, business days and the
weekly budget; the week's digest is decided once; claims of dead processes come back at once;
re-planning after a rule edit runs in batches beside the ticks.

Each tick claims due loops (they carry this process's name until their send is recorded), reads
their records, decides what each one needs (pure: `decide_due`), and writes the deferrals and
re-plans in one batch, each conditional on the loop not having changed meanwhile.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

from mailmentor.clock import Clock
from mailmentor.delivery import digest_slot, next_allowed, week_start
from mailmentor.forecast import (
    Defer,
    DueDecision,
    Replan,
    Send,
    Unschedule,
    budget_item,
    decide_due,
    next_week,
    rank_for_budget,
)
from mailmentor.liveness import provably_dead
from mailmentor.model import Loop
from mailmentor.rules import Rules
from mailmentor.schedule import planned
from mailmentor.service.writer import JOB_GRACE
from mailmentor.store import Store
from mailmentor.store.batch import Batch
from mailmentor.store.changes import Job, LoopChange
from mailmentor.store.leases import Fence, expect_fence

log = logging.getLogger("mailmentor.scheduler")

#: A claimed loop comes back after this long if its send never completes (a live sender that
#: lost its job); a dead sender's claims come back at once (`recover`). The sender holds the
#: claim again at every try, and tries are at most 10 minutes apart (workers.actors).
CLAIM_LEASE = timedelta(minutes=15)
#: Due loops claimed per round trip, and the rounds one tick may take.
CLAIM_BATCH = 500
MAX_ROUNDS = 20


class Dispatch(Protocol):
    """Where work for the send workers goes (dramatiq's queue in production)."""

    def deliver_later(self, loop_id: str, action_key: str) -> None: ...

    def send_later(self, job_key: str) -> None: ...


@dataclass(frozen=True)
class TickReport:
    queued: int = 0
    deferred: int = 0
    replanned: int = 0
    over_budget: int = 0


class Scheduler:
    def __init__(
        self,
        store: Store,
        rules: Callable[[], Rules],
        clock: Clock,
        timezone: ZoneInfo,
        dispatch: Dispatch,
        owner: str,
    ) -> None:
        self.store = store
        self.rules = rules
        self.clock = clock
        self.timezone = timezone
        self.dispatch = dispatch
        self.owner = owner
        self._digest_slot_done: datetime | None = None
        self._reconcile: Iterator[int] | None = None
        #: Claimed and counted, but queueing them failed: queued first on the next tick (their
        #: claims name this process, so nobody else would before the lease ends).
        self._unqueued: list[tuple[str, str]] = []
        #: Claimed by a tick that then failed (the store went away): handled first next time.
        self._claimed: list[str] = []
        self._claimed_jobs: list[str] = []
        #: The scheduler lease this one acts under, (name, value): its writes are refused once
        #: another scheduler took over. None: no lease (one scheduler; tests).
        self.fence: Fence | None = None

    def zone(self, rules: Rules) -> ZoneInfo:
        return rules.zone_or(self.timezone)

    # -- due loops ------------------------------------------------------------------------------

    def tick(self) -> TickReport:
        """Claim what is due and queue it (or defer it); a few rounds at most per call."""
        report = TickReport(queued=self._queue(self._unqueued))
        if self._claimed:  # claimed by a tick that failed half way: still ours, handle them now
            report = _sum(report, self._handle(self._claimed, self.clock.now()))
            self._claimed = []
        for _ in range(MAX_ROUNDS):
            now = self.clock.now()
            claimed = self.store.due.claim(now, CLAIM_LEASE, self.owner, CLAIM_BATCH, self.fence)
            if not claimed:
                break
            self._claimed = claimed
            report = _sum(report, self._handle(claimed, now))
            self._claimed = []
            if len(claimed) < CLAIM_BATCH:
                break
        report = _sum(report, TickReport(queued=self.dispatch_jobs()))
        return report

    def _handle(self, claimed: list[str], now: datetime) -> TickReport:
        rules = self.rules()
        tz = self.zone(rules)
        loops = self.store.loops.get_many(claimed, texts=False)
        decisions = [decide_due(i, loops.get(i), rules, now, tz) for i in claimed]
        sends = [d for d in decisions if isinstance(d, Send)]
        week = week_start(now, tz)
        # Most urgent first; admitted in that order against the week's budget in one atomic step
        # (two schedulers never both spend its last room). A reminder claimed again (its send
        # was retried, or its sender died) was counted when first admitted: it goes again.
        ranked = rank_for_budget(sends)
        admitted = self.store.weekly.admit(
            week, [budget_item(s) for s in ranked], rules.reminder_budget
        )
        wait = {s.loop.id for s in ranked if budget_item(s) not in admitted}
        if wait:
            log.info(
                "weekly reminder budget (%s) reached: %d reminders wait",
                rules.reminder_budget,
                len(wait),
            )
        batch = Batch("each")
        for decision in decisions:
            if isinstance(decision, Send) and decision.loop.id in wait:
                decision = Defer(decision.loop, next_week(week, tz))
            self._write(batch, decision)
        if len(batch):
            self.store.loops.run_each(batch)
        going = [d for d in sends if d.loop.id not in wait]
        self._queue([(d.loop.id, d.action.key) for d in going])
        return TickReport(
            queued=len(going),
            deferred=sum(isinstance(d, Defer) for d in decisions),
            replanned=sum(isinstance(d, Replan) for d in decisions),
            over_budget=len(wait),
        )

    def _queue(self, sends: list[tuple[str, str]]) -> int:
        """Hand these to the send workers; what could not be queued is kept for the next try."""
        pending = [*sends]
        self._unqueued = []
        for n, (loop_id, key) in enumerate(pending):
            try:
                self.dispatch.deliver_later(loop_id, key)
            except BaseException:
                self._unqueued = pending[n:]
                self._claimed = []  # decided and counted: what is left to do is queueing
                raise
        return len(pending)

    def _write(self, batch: Batch, decision: DueDecision) -> None:
        """Queue the write a decision needs, each conditional on the loop being unchanged."""
        loops = self.store.loops
        if isinstance(decision, Unschedule):
            loops.reschedule_ops(self._group(batch), decision.loop_id, decision.loop, None)
        elif isinstance(decision, Defer):
            until = decision.until
            loops.reschedule_ops(self._group(batch), decision.loop.id, decision.loop, until)
        elif isinstance(decision, Replan):
            change = LoopChange(decision.loop, decision.planned, texts_loaded=False)
            loops.change_ops(self._group(batch), change)

    def _group(self, batch: Batch) -> Batch:
        """A new group of ``batch``, fenced by this scheduler's lease when it has one."""
        return expect_fence(batch.group(), self.store.ns, self.fence)

    # -- claims of processes that died ------------------------------------------------------------

    def recover(self) -> int:
        """Take back the claims of dead processes (due loops and jobs): due again now."""
        now = self.clock.now()
        loop_claims = self.store.due.claims()
        job_claims = self.store.outbox.claims()
        dead = self._dead({c.owner for c in (*loop_claims, *job_claims)})
        if not dead:
            return 0
        count = self.store.due.recover([c for c in loop_claims if c.owner in dead], now)
        count += self.store.outbox.recover([c for c in job_claims if c.owner in dead], now)
        if count:
            log.info("took back %d claims of stopped processes: %s", count, ", ".join(dead))
        return count

    def _dead(self, owners: set[str]) -> set[str]:
        others = sorted(o for o in owners if o != self.owner)
        alive = self.store.health.process_alive(others)
        return {o for o in others if provably_dead(o) or not alive.get(o, False)}

    # -- other mail -----------------------------------------------------------------------------

    def dispatch_jobs(self) -> int:
        """Queue the replies, digests and drafts whose time came (or whose sender died)."""
        keys = [*self._claimed_jobs]
        keys += self.store.outbox.claim(
            self.clock.now(), CLAIM_LEASE, self.owner, CLAIM_BATCH, self.fence
        )
        for n, key in enumerate(keys):
            try:
                self.dispatch.send_later(key)
            except BaseException:
                self._claimed_jobs = keys[n:]  # claimed: queued first next time
                raise
        self._claimed_jobs = []
        return len(keys)

    def digest_tick(self) -> str | None:
        """Decide this week's digest once its moment (rules ``digest``) has come; returns the
        slot queued. Quiet hours are respected; weeks before the first run get none."""
        rules = self.rules()
        if rules.digest_day is None or rules.digest_time is None:
            return None
        now = self.clock.now()
        tz = self.zone(rules)
        slot = digest_slot(now, day=rules.digest_day, at=rules.digest_time, tz=tz)
        if slot == self._digest_slot_done:
            return None  # decided already: no Redis round trips on every scheduler pass
        if slot <= self.store.weekly.digest_epoch(now):
            self._digest_slot_done = slot
            return None
        allowed = next_allowed(slot, tz=tz, quiet_hours=rules.quiet_hours, business_days_only=False)
        if allowed > now:
            return None
        key = f"digest:{slot.isoformat()}"
        payload = json.dumps({"kind": "digest", "slot": slot.isoformat()})
        job = Job(key=key, payload=payload, due=now + JOB_GRACE, owner=self.owner)
        decided = self.store.weekly.decide_digest(slot, job, self.fence)
        self._digest_slot_done = slot
        if not decided:
            return None
        self.dispatch.send_later(key)
        log.info("weekly digest of %s queued", slot.isoformat())
        return slot.isoformat()

    # -- re-planning ----------------------------------------------------------------------------

    def reconcile(self) -> int:
        """Re-plan every open loop under the current rules, all at once (start-up, tests)."""
        return sum(self._replan_batches())

    def start_reconcile(self) -> None:
        """Re-plan in batches from the next `reconcile_step` on (after a rule edit); a newer
        edit restarts it."""
        self._reconcile = self._replan_batches()

    def reconcile_step(self) -> bool:
        """One batch of a re-plan in progress; False when there is none (any more)."""
        if self._reconcile is None:
            return False
        try:
            next(self._reconcile)
            return True
        except StopIteration:
            self._reconcile = None
            return False

    def _replan_batches(self) -> Iterator[int]:
        """Re-plan a few buckets of open loops per step; only the changed ones are written."""
        rules = self.rules()
        for loops in self.store.loops.open_loop_batches():
            pending = [(loop, fresh) for loop in loops if (fresh := planned(loop, rules)) != loop]
            yield self._replan(pending)

    def _replan(self, pending: Sequence[tuple[Loop, Loop]]) -> int:
        if not pending:
            return 0
        batch = Batch("each")
        for before, after in pending:
            change = LoopChange(before, after, texts_loaded=False)
            self.store.loops.change_ops(self._group(batch), change)
        skipped = self.store.loops.run_each(batch)
        return len(pending) - len(skipped)


def _sum(a: TickReport, b: TickReport) -> TickReport:
    return TickReport(
        a.queued + b.queued,
        a.deferred + b.deferred,
        a.replanned + b.replanned,
        a.over_budget + b.over_budget,
    )
