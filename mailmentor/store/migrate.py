"""Reading a store written by an earlier mailmentor: layout 1 (main up to edef4c4) into layout 2.

Layout 1 kept each loop as one JSON blob under ``mm:loop:<id>`` with its whole history and every
Message-ID, a ``mm:msg:<mid>`` set per Message-ID, ``mm:seen:<mid>`` marks kept forever and
``mm:person:<addr>:events`` lists. Each loop moves in one atomic step (its new record, texts,
history, index entries with the applied marks of the messages its history names, due entry and
person record written, the old keys deleted), so a migration interrupted by a crash simply
continues where it stopped. What layout 2 no longer needs (``seen`` and ``sent`` marks, leases,
heartbeats) is dropped.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta

import redis
from pydantic import ValidationError

from mailmentor import people
from mailmentor.errors import StoreLayoutError
from mailmentor.intake import normalize_subject
from mailmentor.liveness import this_process
from mailmentor.model import MAX_THREAD_IDS, Event, Loop
from mailmentor.stages import MESSAGE_SOURCE, apply_due_action, replay
from mailmentor.store.batch import Batch
from mailmentor.store.changes import Changeset, Conflict, Job, LoopChange, PersonChange
from mailmentor.store.codec import as_text
from mailmentor.store.keys import LAYOUT, Namespace
from mailmentor.store.leases import Held, Leases
from mailmentor.store.loops import LoopStore

log = logging.getLogger("mailmentor.store")

V1_PREFIX = "mm"


def _v1_keys(client: redis.Redis) -> list[str]:
    return [
        as_text(k)
        for k in client.scan_iter(match=f"{V1_PREFIX}:*", count=1000)
        if not as_text(k).startswith(f"{V1_PREFIX}:u:")
    ]


def v1_present(client: redis.Redis) -> bool:
    """Whether layout-1 keys are in this database (``mm:…`` but not ``mm:u:…``)."""
    return bool(_v1_keys(client))


def migrate_v1(client: redis.Redis, ns: Namespace, loops: LoopStore, leases: Leases) -> int:
    """Move layout-1 data into ``ns``; returns the number of loops moved."""
    owner = str(this_process())
    lease = leases.acquire("migrate", owner, timedelta(minutes=5))
    if not isinstance(lease, Held):
        raise StoreLayoutError(
            f"another process ({lease.holder}) is migrating this store; start again in a minute"
        )
    try:
        moved = 0
        for raw_id in client.zrange(f"{V1_PREFIX}:loops", 0, -1):
            moved += _move_loop(client, loops, as_text(raw_id))
            leases.acquire("migrate", owner, timedelta(minutes=5))
        _move_gifts(client, loops)
        _move_mailbox_state(client, ns)
        _move_weekly_state(client, ns, loops)
        doomed = _v1_keys(client)
        for start in range(0, len(doomed), 500):
            client.delete(*doomed[start : start + 500])
        client.hset(ns.key("meta"), mapping={"layout": LAYOUT, "buckets": ns.buckets})
        log.info("store: moved %d loops from layout 1 to layout %d", moved, LAYOUT)
        return moved
    finally:
        leases.release("migrate", owner)


def upgraded(old: Loop) -> Loop:
    """A layout-1 loop (whole history, every Message-ID) as layout 2 keeps it: the thread's
    root and latest ids, the history's summaries recomputed, the history itself apart."""
    thread = old.message_ids[:1] + old.message_ids[1:][-(MAX_THREAD_IDS - 1) :]
    fresh = old.model_copy(update={"events": [], "message_ids": thread})
    return replay(fresh, old.events)


def _move_loop(client: redis.Redis, loops: LoopStore, loop_id: str) -> int:
    key = f"{V1_PREFIX}:loop:{loop_id}"
    mids_key = f"{V1_PREFIX}:loopmsgs:{loop_id}"
    raw = client.get(key)
    batch: Batch | None = None
    moved = 0
    if raw is not None and loops.get(loop_id, texts=False) is None:
        try:
            old = Loop.model_validate_json(raw)
        except ValidationError as exc:
            raise StoreLayoutError(f"{key}: cannot read this layout-1 loop: {exc}") from exc
        loop = upgraded(old)
        action = old.next_action
        if action is not None and client.exists(f"{V1_PREFIX}:sent:{loop_id}:{action.key}"):
            # Sent by layout 1 just before it stopped, not recorded yet: recorded now (as
            # layout 1's own retry would have), not mailed again.
            loop = apply_due_action(loop, action, action.due_at)
        mids = [as_text(m) for m in client.smembers(mids_key)]
        applied = tuple(
            e.source[len(MESSAGE_SOURCE) : -1]
            for e in old.events
            if e.source.startswith(MESSAGE_SOURCE) and e.source.endswith(">")
        )
        person = loops.person(loop.mentor.address)
        skey = people.subject_key(normalize_subject(loop.subject))
        change = Changeset(
            loops=(
                LoopChange(
                    None,
                    loop,
                    index=tuple(dict.fromkeys([*old.message_ids, *mids])),
                    applied=applied,
                ),
            ),
            people=(PersonChange(person, people.with_loop(person, None, loop, skey)),),
        )
        batch = loops.batch_for(change)
        moved = 1
    batch = batch or Batch("all")
    batch.delete(key).delete(mids_key)
    batch.zrem(f"{V1_PREFIX}:loops", loop_id).zrem(f"{V1_PREFIX}:due", loop_id)
    if isinstance(loops.run(batch), Conflict):
        raise StoreLayoutError(f"loop {loop_id} changed while it was being migrated")
    return moved


def _move_gifts(client: redis.Redis, loops: LoopStore) -> None:
    prefix, suffix = f"{V1_PREFIX}:person:", ":events"
    for raw_key in list(client.scan_iter(match=f"{prefix}*{suffix}", count=500)):
        key = as_text(raw_key)
        address = key[len(prefix) : -len(suffix)]
        for item in client.lrange(key, 0, -1):
            person = loops.person(address)
            after = people.with_gift(person, address, Event.model_validate_json(item))
            if after is not None:
                loops.commit(Changeset(people=(PersonChange(person, after),)))
        client.delete(key)


def _move_mailbox_state(client: redis.Redis, ns: Namespace) -> None:
    for family in ("ckpt", "marks", "marksv"):
        head = f"{V1_PREFIX}:{family}:"
        for raw_key in list(client.scan_iter(match=f"{head}*", count=500)):
            old = as_text(raw_key)
            new = ns.key(family, old[len(head) :])
            if not client.exists(new):
                client.copy(old, new)
            client.delete(old)


def _move_weekly_state(client: redis.Redis, ns: Namespace, loops: LoopStore) -> None:
    epoch = client.get(f"{V1_PREFIX}:digest:epoch")
    if epoch is not None:
        client.set(ns.key("digest", "epoch"), epoch, nx=True)
    slots = [
        int(float(as_text(k).rsplit(":", 1)[1]))
        for k in client.scan_iter(match=f"{V1_PREFIX}:digest:queued:*", count=500)
    ]
    if slots:
        latest = max(slots)
        client.set(ns.key("digest", "decided"), str(latest))
        iso = datetime.fromtimestamp(latest, UTC).isoformat()
        if not client.exists(f"{V1_PREFIX}:sent:digest:{iso}"):
            # Layout 1 marked the week before queueing its digest: one not sent yet is queued
            # here, so it is not lost with the old marks.
            job = Job(
                key=f"digest:{iso}",
                payload=json.dumps({"kind": "digest", "slot": iso}),
                due=datetime.fromtimestamp(latest, UTC),
            )
            loops.commit(Changeset(jobs=(job,)))
    for raw_key in list(client.scan_iter(match=f"{V1_PREFIX}:budget:*", count=500)):
        week = as_text(raw_key).rsplit(":", 1)[1]
        count = int(client.get(raw_key) or 0)
        if count:
            key = ns.key("budget", week)
            client.sadd(key, *(f"layout-1 reminder {i}" for i in range(count)))
            client.expire(key, 31 * 86400)
