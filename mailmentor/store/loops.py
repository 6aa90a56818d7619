"""Loops in Redis: read what intake and the scheduler look up, and commit changes atomically.

What each operation touches (``b`` is the bucket of the loop, Message-ID or person):

- `get`: n:rec:b or n:arc:b (the record), n:txt:b (texts, unless not asked), n:hist:b (history,
  only when asked).
- `lookup`: n:mid:b of each Message-ID given. `person`: n:ppl:b.
- `open_loops` / `ended_loops`: every n:rec / n:arc bucket (listing, the digest, re-planning).
- `commit`, one Lua call for the whole change: per loop, a revision check of its record, the
  record (moved between n:rec and n:arc when it opens or ends), its texts, its history (appended),
  its due entry (n:due:b and n:due), its claim (n:claims), its Message-IDs (n:mid:b, with the
  applied mark), n:closed when it closes; per person, a revision check and the record; the
  jobs it leaves (n:out, n:outjob, n:outclaims) or finishes (and their n:sending marks).

Nothing here scans all loops except `open_loops`/`ended_loops`, which say so.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime, timedelta
from typing import Any

import redis

from mailmentor.errors import StoreError
from mailmentor.model import Event, Loop, Stage
from mailmentor.people import PersonRecord
from mailmentor.store import codec
from mailmentor.store.batch import Batch
from mailmentor.store.changes import (
    Changeset,
    CommitResult,
    Committed,
    Indexed,
    LoopChange,
)
from mailmentor.store.codec import as_text
from mailmentor.store.commit import Committer
from mailmentor.store.due import schedule_ops
from mailmentor.store.keys import Namespace, message_key
from mailmentor.store.outbox import job_done_ops, job_ops
from mailmentor.store.times import score

log = logging.getLogger("mailmentor.store")

#: Buckets read per round trip when reading a whole family.
_SCAN_BATCH = 256
#: Recently closed loops are listed (n:closed) for this long.
CLOSED_KEPT = timedelta(days=30)


def clean_message_id(message_id: str) -> str:
    """Message-IDs are kept bare: no angle brackets, no surrounding space."""
    return message_id.strip().strip("<>").strip()


class LoopStore:
    def __init__(self, client: redis.Redis, ns: Namespace, committer: Committer) -> None:
        self._r = client
        self.ns = ns
        self._committer = committer

    # -- reading --------------------------------------------------------------------------------

    def get(self, loop_id: str, *, texts: bool = True, history: bool = False) -> Loop | None:
        return self.get_many([loop_id], texts=texts, history=history).get(loop_id)

    def get_many(
        self, loop_ids: Iterable[str], *, texts: bool = True, history: bool = False
    ) -> dict[str, Loop]:
        """The loops that exist among ``loop_ids``, in one round trip."""
        ids = list(dict.fromkeys(loop_ids))
        if not ids:
            return {}
        with self._r.pipeline(transaction=False) as pipe:
            self.queue_reads(pipe, ids, texts=texts, history=history)
            answers = pipe.execute()
        return self.read_answers(ids, answers, texts=texts, history=history)

    def queue_reads(
        self, pipe: Any, ids: Sequence[str], *, texts: bool = True, history: bool = False
    ) -> None:
        """Queue on ``pipe`` what `get_many` reads of ``ids`` (distinct); `read_answers` reads
        the answers."""
        ns = self.ns
        for loop_id in ids:
            pipe.hget(ns.rec(loop_id), loop_id)
            pipe.hget(ns.arc(loop_id), loop_id)
            if texts:
                pipe.hget(ns.txt(loop_id), loop_id)
            if history:
                pipe.hget(ns.hist(loop_id), loop_id)

    def read_answers(
        self,
        ids: Sequence[str],
        answers: Sequence[Any],
        *,
        texts: bool = True,
        history: bool = False,
    ) -> dict[str, Loop]:
        """The loops among ``ids`` from the answers to `queue_reads`."""
        replies = iter(answers)
        found: dict[str, Loop] = {}
        for loop_id in ids:
            hot, ended = next(replies), next(replies)
            raw_texts = next(replies) if texts else None
            raw_history = next(replies) if history else None
            record = hot if hot is not None else ended
            if record is None:
                continue
            try:
                loop = codec.decode_loop(loop_id, record, raw_texts if texts else None)
                if history:
                    base = int(loop.created_at.timestamp())
                    events = codec.decode_history(raw_history, base)
                    loop = loop.model_copy(update={"events": events})
            except StoreError as exc:
                _unreadable(exc)
                continue
            found[loop_id] = loop
        return found

    def history(self, loop_id: str) -> list[Event]:
        loop = self.get(loop_id, texts=False, history=True)
        return loop.events if loop is not None else []

    def open_loops(self) -> Iterator[Loop]:
        """Every open loop's record (no texts), bucket by bucket: a full read, for listing,
        the digest and re-planning."""
        return self._family("rec")

    def ended_loops(self) -> Iterator[Loop]:
        """Every closed or dropped loop's record (no texts)."""
        return self._family("arc")

    def loop_ids(self) -> list[str]:
        """Every loop's id, open and ended, without reading a record (HKEYS per bucket): for a
        full read with texts or history through `get_many`."""
        keys = self._buckets("rec") + self._buckets("arc")
        ids: list[str] = []
        for start in range(0, len(keys), _SCAN_BATCH):
            with self._r.pipeline(transaction=False) as pipe:
                for key in keys[start : start + _SCAN_BATCH]:
                    pipe.hkeys(key)
                ids += [as_text(i) for bucket in pipe.execute() for i in bucket]
        return ids

    def open_loop_batches(self, buckets: int = 32) -> Iterator[list[Loop]]:
        """The open loops a few buckets at a time (re-planning between scheduler ticks)."""
        keys = self._buckets("rec")
        for start in range(0, len(keys), buckets):
            batch: list[Loop] = []
            for loop_id, raw in self._entries("rec", keys[start : start + buckets]):
                try:
                    batch.append(codec.decode_loop(loop_id, raw))
                except StoreError as exc:
                    _unreadable(exc)
            yield batch

    def _buckets(self, name: str) -> list[str]:
        used = sorted(int(as_text(b)) for b in self._r.smembers(self.ns.used(name)))
        return [self.ns.key(name, b) for b in used]

    def _entries(self, name: str, keys: list[str] | None = None) -> Iterator[tuple[str, bytes]]:
        """Every (field, value) of family ``name`` (or of these of its buckets), a batch of
        buckets per round trip."""
        keys = self._buckets(name) if keys is None else keys
        for start in range(0, len(keys), _SCAN_BATCH):
            with self._r.pipeline(transaction=False) as pipe:
                for key in keys[start : start + _SCAN_BATCH]:
                    pipe.hgetall(key)
                buckets = pipe.execute()
            for bucket in buckets:
                for field_, raw in bucket.items():
                    yield as_text(field_), raw

    def _family(self, name: str) -> Iterator[Loop]:
        for loop_id, raw in self._entries(name):
            try:
                yield codec.decode_loop(loop_id, raw)
            except StoreError as exc:
                _unreadable(exc)

    def lookup(self, message_ids: Iterable[str]) -> dict[str, Indexed]:
        """What the index knows of each Message-ID (those it knows nothing of are left out)."""
        mids = [m for m in dict.fromkeys(clean_message_id(m) for m in message_ids) if m]
        if not mids:
            return {}
        with self._r.pipeline(transaction=False) as pipe:
            for mid in mids:
                key = message_key(mid)
                pipe.hget(self.ns.mid(key), key)
            answers = pipe.execute()
        found = {}
        for mid, raw in zip(mids, answers, strict=True):
            if raw is None:
                continue
            pairs = list(codec.decode_index(raw))
            found[mid] = Indexed(
                loops=tuple(i for i, _ in pairs), applied_to=tuple(i for i, a in pairs if a)
            )
        return found

    def person(self, address: str) -> PersonRecord | None:
        return self.people([address]).get(address.lower())

    def people(self, addresses: Iterable[str]) -> dict[str, PersonRecord]:
        wanted = list(dict.fromkeys(a.lower() for a in addresses if a))
        if not wanted:
            return {}
        with self._r.pipeline(transaction=False) as pipe:
            for address in wanted:
                pipe.hget(self.ns.person(address), address)
            answers = pipe.execute()
        return {
            address: codec.decode_person(address, raw)
            for address, raw in zip(wanted, answers, strict=True)
            if raw is not None
        }

    def all_people(self) -> Iterator[PersonRecord]:
        """Every person record (the digest's relationships): one read per bucket."""
        for address, raw in self._entries("ppl"):
            try:
                yield codec.decode_person(address, raw)
            except StoreError as exc:
                _unreadable(exc)

    # -- writing --------------------------------------------------------------------------------

    def commit(self, change: Changeset) -> CommitResult:
        """Apply the whole change atomically, or nothing if a loop or person it read changed."""
        if not change:
            return Committed()
        return self.run(self.batch_for(change), describe=lambda g: _describe(change, g))

    def batch_for(self, change: Changeset) -> Batch:
        """The batch that applies ``change`` (callers may add writes to its last group)."""
        batch = Batch("all")
        for item in change.loops:
            self.change_ops(batch.group(), item)
        for person in change.people:
            batch.group()
            key = self.ns.person(person.after.address)
            batch.expect_rev(key, person.after.address, person.before.rev if person.before else 0)
            rev = (person.before.rev if person.before else 0) + 1
            batch.hset(key, person.after.address, codec.encode_person(person.after, rev))
            if person.before is None:
                batch.sadd(self.ns.used("ppl"), self.ns.bucket_of(key))
        batch.group()
        for job in change.jobs:
            job_ops(batch, self.ns, job)
        for key in change.jobs_done:
            job_done_ops(batch, self.ns, key)
        for key in change.sends_done:
            batch.delete(self.ns.key("sending", key))
        return batch

    def run(self, batch: Batch, describe: Callable[[int], str] | None = None) -> CommitResult:
        """Run a batch built with `change_ops` and friends ("all" mode)."""
        return self._committer.run(batch, describe)

    def run_each(self, batch: Batch) -> list[int]:
        """Run an "each" batch; returns the (1-based) groups skipped because a check failed."""
        return self._committer.run_each(batch)

    def home(self, loop: Loop) -> str:
        """The bucket a stored loop's record is in: open loops' or ended loops'."""
        return self.ns.rec(loop.id) if loop.stage.is_open else self.ns.arc(loop.id)

    def reschedule_ops(
        self, batch: Batch, loop_id: str, loop: Loop | None, when: datetime | None
    ) -> None:
        """Queue on ``batch``: the loop is due at ``when`` (None: not at all) and its claim
        released, only if it is still as read (a loop that is gone: unconditionally)."""
        if loop is not None:
            batch.expect_rev(self.home(loop), loop_id, loop.rev)
        schedule_ops(batch, self.ns, loop_id, when)

    def change_ops(self, batch: Batch, item: LoopChange) -> None:
        """Queue one loop's change on ``batch``, in its current group."""
        before, after = item.before, item.after
        ns, loop_id = self.ns, after.id
        if before is not None and before.id != loop_id:
            raise StoreError(f"a change of loop {before.id} tried to change its id")
        hot, ended = ns.rec(loop_id), ns.arc(loop_id)
        if before is None:
            batch.expect_rev(hot, loop_id, 0).expect_rev(ended, loop_id, 0)
        else:
            batch.expect_rev(self.home(before), loop_id, before.rev)
        rev = (before.rev if before else 0) + 1
        target, other = (hot, ended) if after.stage.is_open else (ended, hot)
        batch.hset(target, loop_id, codec.encode_loop(after, rev))
        family = "rec" if after.stage.is_open else "arc"
        if before is None or before.stage.is_open != after.stage.is_open:
            batch.sadd(ns.used(family), ns.bucket_of(target))
        if before is not None and before.stage.is_open != after.stage.is_open:
            batch.hdel(other, loop_id)
        if before is None or (
            item.texts_loaded and codec.texts_of(before) != codec.texts_of(after)
        ):
            batch.hset(ns.txt(loop_id), loop_id, codec.encode_texts(after))
        new_events = after.events[len(before.events) if before else 0 :]
        if new_events:
            base = int(after.created_at.timestamp())
            batch.append(ns.hist(loop_id), loop_id, codec.encode_events(new_events, base))
        action = after.next_action if after.stage.is_open else None
        schedule_ops(batch, ns, loop_id, action.due_at if action else None)
        if after.stage is Stage.CLOSED:
            closed = new_events[-1].at if new_events else after.stage_entered_at
            batch.zadd(ns.key("closed"), score(closed), loop_id)
            batch.zremrangebyscore(ns.key("closed"), score(closed - CLOSED_KEPT))
        elif before is not None and before.stage is Stage.CLOSED:
            batch.zrem(ns.key("closed"), loop_id)
        for mid in _clean(item.index):
            key = message_key(mid)
            batch.index(ns.mid(key), key, loop_id, applied=False)
        for mid in _clean(item.applied):
            key = message_key(mid)
            batch.index(ns.mid(key), key, loop_id, applied=True)

    def closed_since(self, since: datetime) -> int:
        """How many loops closed since ``since`` (the digest's "closed this week"); the list
        keeps only the last ``CLOSED_KEPT`` (older entries go as new ones come)."""
        return int(self._r.zcount(self.ns.key("closed"), repr(score(since)), "+inf"))

    def closed_loops_since(self, since: datetime) -> list[Loop]:
        """The loops closed since ``since``, latest first (the digest's "Closed this week")."""
        found = self._r.zrevrangebyscore(self.ns.key("closed"), "+inf", repr(score(since)))
        ids = [codec.as_text(loop_id) for loop_id in found]
        loops = self.get_many(ids, texts=False)
        return [loops[i] for i in ids if i in loops]

    # -- deleting -------------------------------------------------------------------------------

    def delete(self, loops: Sequence[Loop], people: Sequence[PersonRecord]) -> CommitResult:
        """Remove these loops and people entirely (``forget``), with the jobs that quote them,
        unless one of them changed since it was read (Conflict: read again). Their Message-IDs
        stay in the index as opaque hashes, so that mail already handled is not tracked again."""
        batch = Batch("all")
        for loop in loops:
            home = self.home(loop)
            batch.group().expect_rev(home, loop.id, loop.rev)
            batch.hdel(home, loop.id)
            batch.hdel(self.ns.txt(loop.id), loop.id)
            batch.hdel(self.ns.hist(loop.id), loop.id)
            schedule_ops(batch, self.ns, loop.id, None)
            batch.zrem(self.ns.key("closed"), loop.id)
        for person in people:
            key = self.ns.person(person.address)
            batch.group().expect_rev(key, person.address, person.rev)
            batch.hdel(key, person.address)
        ids = {loop.id for loop in loops}
        for job, payload in self._r.hgetall(self.ns.key("outjob")).items():
            if any(loop_id in as_text(payload) for loop_id in ids):  # a reply, a draft
                job_done_ops(batch, self.ns, as_text(job))
        return self.run(batch)


def _unreadable(exc: StoreError) -> None:
    """A record this version cannot read (a newer version's, or damaged): said loudly and left
    alone, so that one bad record stops nothing else."""
    log.error("skipping %s", exc)


def _clean(message_ids: Iterable[str]) -> list[str]:
    return [m for m in dict.fromkeys(clean_message_id(m) for m in message_ids) if m]


def _describe(change: Changeset, group: int) -> str:
    """Which part of ``change`` the failed (1-based) group was."""
    loops = len(change.loops)
    if 1 <= group <= loops:
        return f"loop {change.loops[group - 1].loop_id}"
    if loops < group <= loops + len(change.people):
        return f"person {change.people[group - loops - 1].after.address}"
    return "what it changed"
