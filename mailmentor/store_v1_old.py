"""Everything mailmentor keeps, in Redis: loops, the thread index, dedupe marks, IMAP checkpoints,
leases, the due-reminder schedule, send marks and heartbeats.

Thin on purpose: each method is one or two round trips, multi-key writes go through one
MULTI/EXEC or one Lua script so a crash never leaves half a change, and all keys carry a prefix so
several deployments (or tests) can share one server. Datetimes are aware UTC; sorted-set scores are
float epoch seconds. Redis's own errors (``redis.ConnectionError`` ...) pass through unchanged, so
callers can retry on them; StoreError means the store itself refused.

Keys (``p`` is the prefix):
  p:loop:<id>        loop JSON               p:loops            zset id -> created_at
  p:msg:<mid>        set of loop ids         p:loopmsgs:<id>    set of mids indexed for a loop
  p:seen:<mid>       processed mark          p:ckpt:<mailbox>   hash uidvalidity, last_uid
  p:lease:<name>     owner, with TTL         p:due              zset id -> due time
  p:sending:<key>    in-flight send, TTL     p:sent:<key>       send done
  p:alive:<comp>     heartbeat, TTL
  p:person:<addr>:events  list of relationship events (mentor+gave@)
  p:digest:epoch     first digest scheduling    p:digest:queued:<slot>  a week's digest queued
  p:marks:<mailbox>  set of UIDs handed over as marked (mailbox mode), of the UIDVALIDITY in
                     p:marksv:<mailbox>
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import redis
from pydantic import ValidationError

from mailmentor.errors import LoopNotFound, StoreError
from mailmentor.model import Event, Loop

log = logging.getLogger(__name__)

#: How long a finished send is remembered: longer than any reminder could be retried.
SENT_TTL = timedelta(days=400)
#: Optimistic updates retry this often under contention before giving up loudly.
MAX_UPDATE_ATTEMPTS = 200

# Take the lease if free, renew it if we hold it; never steal it.
_ACQUIRE_LEASE = """
local current = redis.call('GET', KEYS[1])
if not current then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
if current == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
"""

_RELEASE_LEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""

# Due members up to ARGV[3], pushed to ARGV[2] (now + lease) in the same atomic step, so two
# schedulers never claim one id and a crashed claimer's items come back when the lease ends.
_CLAIM_DUE = """
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[3])
for _, id in ipairs(ids) do
  redis.call('ZADD', KEYS[1], ARGV[2], id)
end
return ids
"""

# Same mailbox generation: only move forward. New UIDVALIDITY: the old UIDs mean nothing, reset.
_SET_CHECKPOINT = """
local validity = redis.call('HGET', KEYS[1], 'uidvalidity')
local last = redis.call('HGET', KEYS[1], 'last_uid')
if validity == ARGV[1] and last and tonumber(last) >= tonumber(ARGV[2]) then
  return 0
end
redis.call('HSET', KEYS[1], 'uidvalidity', ARGV[1], 'last_uid', ARGV[2])
return 1
"""

# Remember UIDs (ARGV[2..]) handed over as marked; a new UIDVALIDITY (ARGV[1]) starts afresh.
_HANDLED_MARKS = """
if redis.call('GET', KEYS[2]) ~= ARGV[1] then
  redis.call('DEL', KEYS[1])
  redis.call('SET', KEYS[2], ARGV[1])
end
for i = 2, #ARGV do
  redis.call('SADD', KEYS[1], ARGV[i])
end
return 1
"""

# May this caller send? Not if it was sent, nor while another attempt holds a live mark.
_BEGIN_SEND = """
if redis.call('EXISTS', KEYS[2]) == 1 then
  return 0
end
if redis.call('SET', KEYS[1], '1', 'NX', 'PX', ARGV[1]) then
  return 1
end
return 0
"""


class Store:
    """mailmentor's state in one Redis database, every key under ``prefix``."""

    def __init__(self, redis: redis.Redis, prefix: str = "mm") -> None:
        self._r = redis
        self.prefix = prefix
        self._acquire_lease = redis.register_script(_ACQUIRE_LEASE)
        self._release_lease = redis.register_script(_RELEASE_LEASE)
        self._handled_marks = redis.register_script(_HANDLED_MARKS)
        self._claim_due = redis.register_script(_CLAIM_DUE)
        self._set_checkpoint = redis.register_script(_SET_CHECKPOINT)
        self._begin_send = redis.register_script(_BEGIN_SEND)

    def _key(self, *parts: str) -> str:
        return ":".join((self.prefix, *parts))

    # -- loops --------------------------------------------------------------------------------

    def add_loop(self, loop: Loop) -> bool:
        """Create a loop; False (and nothing written) if its id exists, so replays are harmless."""
        key = self._key("loop", loop.id)
        with self._r.pipeline() as pipe:
            while True:
                try:
                    pipe.watch(key)  # type: ignore[no-untyped-call]  # redis-py leaves it untyped
                    if pipe.exists(key):
                        return False
                    pipe.multi()
                    self._write_loop(pipe, loop)
                    pipe.execute()
                    return True
                except redis.WatchError:
                    continue

    def get_loop(self, loop_id: str) -> Loop:
        loop = self.find_loop(loop_id)
        if loop is None:
            raise LoopNotFound(loop_id)
        return loop

    def find_loop(self, loop_id: str) -> Loop | None:
        key = self._key("loop", loop_id)
        raw = self._r.get(key)
        return None if raw is None else _parse_loop(key, raw)

    def update_loop(self, loop_id: str, change: Callable[[Loop], Loop]) -> Loop:
        """Read-modify-write under WATCH; ``change`` must be pure, it may run more than once."""
        key = self._key("loop", loop_id)
        with self._r.pipeline() as pipe:
            for _ in range(MAX_UPDATE_ATTEMPTS):
                try:
                    pipe.watch(key)  # type: ignore[no-untyped-call]  # redis-py leaves it untyped
                    raw = pipe.get(key)
                    if raw is None:
                        raise LoopNotFound(loop_id)
                    new = change(_parse_loop(key, raw))
                    if new.id != loop_id:
                        raise StoreError(f"update of loop {loop_id} tried to change its id")
                    pipe.multi()
                    self._write_loop(pipe, new)
                    pipe.execute()
                    return new
                except redis.WatchError:
                    continue
        raise StoreError(f"loop {loop_id}: gave up after {MAX_UPDATE_ATTEMPTS} conflicting updates")

    def save_loop(self, loop: Loop) -> None:
        """Write unconditionally (tests, import); normal code uses add_loop/update_loop."""
        with self._r.pipeline() as pipe:
            self._write_loop(pipe, loop)
            pipe.execute()

    def list_loops(self) -> list[Loop]:
        """All loops, oldest first. An unreadable record is logged and skipped, not fatal."""
        ids = [_text(i) for i in self._r.zrange(self._key("loops"), 0, -1)]
        loops: list[Loop] = []
        for start in range(0, len(ids), 500):
            keys = [self._key("loop", i) for i in ids[start : start + 500]]
            for key, raw in zip(keys, self._r.mget(keys), strict=True):
                if raw is None:
                    continue  # deleted since we read the index
                try:
                    loops.append(_parse_loop(key, raw))
                except StoreError as exc:
                    log.warning("skipping %s", exc)
        return loops

    def delete_loop(self, loop_id: str) -> None:
        """Remove the loop with its thread-index entries and schedule (``forget``)."""
        mids_key = self._key("loopmsgs", loop_id)
        mids = [_text(m) for m in self._r.smembers(mids_key)]
        with self._r.pipeline() as pipe:
            for mid in mids:
                pipe.srem(self._key("msg", mid), loop_id)
            pipe.delete(mids_key, self._key("loop", loop_id))
            pipe.zrem(self._key("loops"), loop_id)
            pipe.zrem(self._key("due"), loop_id)
            pipe.execute()

    def _write_loop(self, pipe: redis.client.Pipeline, loop: Loop) -> None:
        """Queue the loop record, its place in the index and its message ids on ``pipe``."""
        pipe.set(self._key("loop", loop.id), loop.model_dump_json())
        pipe.zadd(self._key("loops"), {loop.id: _score(loop.created_at)})
        self._queue_index(pipe, loop.id, loop.message_ids)

    # -- thread index -------------------------------------------------------------------------

    def index_message_ids(self, loop_id: str, message_ids: Iterable[str]) -> None:
        """Let later messages of the thread find the loop (loops index their own ids too)."""
        with self._r.pipeline() as pipe:
            self._queue_index(pipe, loop_id, message_ids)
            pipe.execute()

    def _queue_index(
        self, pipe: redis.client.Pipeline, loop_id: str, message_ids: Iterable[str]
    ) -> None:
        mids = [m for m in (_clean_mid(m) for m in message_ids) if m]
        for mid in mids:
            pipe.sadd(self._key("msg", mid), loop_id)
        if mids:
            pipe.sadd(self._key("loopmsgs", loop_id), *mids)

    def loops_for_message_ids(self, message_ids: Iterable[str]) -> list[str]:
        """Ids of the loops any of these messages belongs to, de-duplicated, oldest loop first."""
        mids = list(dict.fromkeys(m for m in (_clean_mid(m) for m in message_ids) if m))
        if not mids:
            return []
        with self._r.pipeline(transaction=False) as pipe:
            for mid in mids:
                pipe.smembers(self._key("msg", mid))
            found = pipe.execute()
        ids = sorted({_text(i) for members in found for i in members})
        if not ids:
            return []
        scores = self._r.zmscore(self._key("loops"), ids)
        created = {
            i: (s if s is not None else float("inf")) for i, s in zip(ids, scores, strict=True)
        }
        return sorted(ids, key=lambda i: (created[i], i))

    # -- message dedupe -----------------------------------------------------------------------

    def mark_processed(self, message_id: str) -> bool:
        """True only the first time: survives restarts and UIDVALIDITY changes (kept forever).

        A message without a Message-ID cannot be recognised again, so it is always "new": handling
        it twice beats silently dropping every id-less message after the first.
        """
        mid = _clean_mid(message_id)
        return not mid or bool(self._r.set(self._key("seen", mid), "1", nx=True))

    def is_processed(self, message_id: str) -> bool:
        mid = _clean_mid(message_id)
        return bool(mid) and bool(self._r.exists(self._key("seen", mid)))

    # -- IMAP checkpoints ---------------------------------------------------------------------

    def get_checkpoint(self, mailbox: str) -> tuple[int, int] | None:
        """(uidvalidity, last_uid) seen for the mailbox, or None before the first run."""
        values = self._r.hmget(self._key("ckpt", mailbox), ["uidvalidity", "last_uid"])
        if values[0] is None or values[1] is None:
            return None
        return int(values[0]), int(values[1])

    def set_checkpoint(self, mailbox: str, uidvalidity: int, last_uid: int) -> None:
        """Record progress; a late writer with an older UID for the same UIDVALIDITY is ignored."""
        self._set_checkpoint(
            keys=[self._key("ckpt", mailbox)], args=[str(int(uidvalidity)), str(int(last_uid))]
        )

    # -- marks set after a message was read (mailbox mode) ---------------------------------------

    def unhandled_marks(self, mailbox: str, uidvalidity: int, uids: Sequence[int]) -> list[int]:
        """The UIDs among ``uids`` not yet handed over as marked, in the order given."""
        if not uids:
            return []
        pipe = self._r.pipeline(transaction=True)
        pipe.get(self._key("marksv", mailbox))
        pipe.smismember(self._key("marks", mailbox), [str(int(uid)) for uid in uids])
        validity, known = pipe.execute()
        if validity is None or _text(validity) != str(int(uidvalidity)):
            return list(uids)
        return [uid for uid, seen in zip(uids, known, strict=True) if not seen]

    def handled_marks(self, mailbox: str, uidvalidity: int, uids: Sequence[int]) -> None:
        if uids:
            self._handled_marks(
                keys=[self._key("marks", mailbox), self._key("marksv", mailbox)],
                args=[str(int(uidvalidity)), *(str(int(uid)) for uid in uids)],
            )

    # -- leases -------------------------------------------------------------------------------

    def acquire_lease(self, name: str, owner: str, ttl: timedelta) -> bool:
        """Take or renew ``name`` for ``owner``; False while someone else holds it."""
        return bool(self._acquire_lease(keys=[self._key("lease", name)], args=[owner, _ms(ttl)]))

    def release_lease(self, name: str, owner: str) -> None:
        """Give the lease up early, only if we still hold it (never drop a successor's)."""
        self._release_lease(keys=[self._key("lease", name)], args=[owner])

    # -- due reminders ------------------------------------------------------------------------

    def schedule(self, loop_id: str, due_at: datetime) -> None:
        """One due time per loop: scheduling again replaces it (re-planning is idempotent)."""
        self._r.zadd(self._key("due"), {loop_id: _score(due_at)})

    def unschedule(self, loop_id: str) -> None:
        self._r.zrem(self._key("due"), loop_id)

    def due_at(self, loop_id: str) -> datetime | None:
        score = self._r.zscore(self._key("due"), loop_id)
        return None if score is None else _from_score(score)

    def claim_due(self, now: datetime, lease: timedelta, limit: int = 100) -> list[str]:
        """Take up to ``limit`` due loop ids; they come back at now+lease unless rescheduled."""
        if limit <= 0:
            return []
        ids = self._claim_due(
            keys=[self._key("due")],
            args=[repr(_score(now)), repr(_score(now + lease)), str(int(limit))],
        )
        return [_text(i) for i in ids]

    def next_due(self) -> datetime | None:
        """When the scheduler next has work, so it can sleep until then."""
        first = self._r.zrange(self._key("due"), 0, 0, withscores=True)
        return _from_score(first[0][1]) if first else None

    # -- idempotent sends ---------------------------------------------------------------------

    def begin_send(self, key: str, ttl: timedelta) -> bool:
        """True if this caller may send now; the mark expires so a crashed sender is retried."""
        allowed = self._begin_send(
            keys=[self._key("sending", key), self._key("sent", key)], args=[_ms(ttl)]
        )
        return bool(allowed)

    def finish_send(self, key: str) -> None:
        """Remember the send (for SENT_TTL) and clear the in-flight mark, atomically."""
        with self._r.pipeline() as pipe:
            pipe.set(self._key("sent", key), "1", ex=SENT_TTL)
            pipe.delete(self._key("sending", key))
            pipe.execute()

    def abort_send(self, key: str) -> None:
        """The send failed before reaching the server: let a retry try again now."""
        self._r.delete(self._key("sending", key))

    def was_sent(self, key: str) -> bool:
        return bool(self._r.exists(self._key("sent", key)))

    # -- weekly reminder budget ---------------------------------------------------------------

    def count_reminder(self, week: datetime) -> int:
        """One more reminder queued in the week starting at `week` (kept a month)."""
        key = self._key("budget", str(int(_score(week))))
        with self._r.pipeline() as pipe:
            pipe.incr(key)
            pipe.expire(key, 31 * 86400)
            count, _ = pipe.execute()
        return int(count)

    def reminders_in_week(self, week: datetime) -> int:
        value = self._r.get(self._key("budget", str(int(_score(week)))))
        return int(value) if value else 0

    # -- relationships ------------------------------------------------------------------------

    def add_relationship_event(self, address: str, event: Event) -> None:
        """Value given to (or received from) a person, outside any loop (mentor+gave@)."""
        self._r.rpush(self._key("person", address.lower(), "events"), event.model_dump_json())

    def relationship_events(self, address: str) -> list[Event]:
        raw = self._r.lrange(self._key("person", address.lower(), "events"), 0, -1)
        return [Event.model_validate_json(_text(item)) for item in raw]

    def gifts(self) -> dict[str, list[Event]]:
        """Every person's relationship events (mentor+gave@), by address, for the digest."""
        prefix, suffix = self._key("person", ""), ":events"
        people: dict[str, list[Event]] = {}
        for key in self._r.scan_iter(match=f"{prefix}*{suffix}", count=500):
            address = _text(key)[len(prefix) : -len(suffix)]
            people[address] = self.relationship_events(address)
        return people

    def forget_person(self, address: str) -> list[str]:
        """Delete every loop with ``address`` as its mentor and their relationship events;
        returns the ids of the loops deleted (``mailmentor forget``)."""
        wanted = address.strip().lower()
        gone = [lp.id for lp in self.list_loops() if lp.mentor.address.lower() == wanted]
        for loop_id in gone:
            self.delete_loop(loop_id)
        self._r.delete(self._key("person", wanted, "events"))
        return gone

    # -- the weekly digest ----------------------------------------------------------------------

    def digest_epoch(self, now: datetime) -> datetime:
        """When digests started being scheduled here (set once): earlier weeks get none, so a
        fresh install does not mail last week's digest at once."""
        key = self._key("digest", "epoch")
        self._r.set(key, str(_score(now)), nx=True)
        return _from_score(_text(self._r.get(key)))

    def claim_digest(self, slot: datetime) -> bool:
        """True once per slot: the scheduler that may queue that week's digest."""
        key = self._key("digest", "queued", str(int(_score(slot))))
        return bool(self._r.set(key, "1", nx=True, ex=int(SENT_TTL.total_seconds())))

    # -- health -------------------------------------------------------------------------------

    def heartbeat(self, component: str, ttl: timedelta) -> None:
        """Say ``component`` is alive for ``ttl``; ``mailmentor check`` reads it back."""
        self._r.set(self._key("alive", component), "1", px=_ms(ttl))

    def alive(self, component: str) -> bool:
        return bool(self._r.exists(self._key("alive", component)))


def _text(value: Any) -> str:
    """Redis answers bytes or str depending on decode_responses; we take either."""
    return value.decode() if isinstance(value, bytes) else str(value)


def _parse_loop(key: str, raw: Any) -> Loop:
    try:
        return Loop.model_validate_json(raw)
    except ValidationError as exc:
        raise StoreError(f"{key} holds an unreadable loop: {exc}") from exc


def _clean_mid(message_id: str) -> str:
    """Message-IDs are stored bare: no angle brackets, no surrounding space."""
    return message_id.strip().strip("<>").strip()


def _score(when: datetime) -> float:
    """Epoch seconds of an aware datetime; naive ones would silently mean local time."""
    if when.tzinfo is None or when.utcoffset() is None:
        raise ValueError(f"naive datetime {when.isoformat()}: mailmentor stores aware UTC times")
    return when.timestamp()


def _from_score(score: float | str) -> datetime:
    return datetime.fromtimestamp(float(score), UTC)


def _ms(ttl: timedelta) -> int:
    """A TTL in whole milliseconds, at least 1 (Redis rejects 0)."""
    return max(1, round(ttl.total_seconds() * 1000))
