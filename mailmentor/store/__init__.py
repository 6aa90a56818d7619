"""Everything mailmentor keeps, in Redis, for one user: see `keys` for the layout and `loops`
for what each operation touches.

`open_store` builds a Store on a client: it checks the layout (migrating an older one first)
and hands out the parts, each thin over Redis: loops (records, history, index, people, atomic
commits), the due set, the outbox of other mail, leases, checkpoints, heartbeats and the weekly
state. Redis's own errors pass through unchanged; `client.is_transient` says which are worth
waiting out.
"""

from __future__ import annotations

from dataclasses import dataclass

import redis

from mailmentor.errors import StoreLayoutError
from mailmentor.store.checkpoints import Checkpoints
from mailmentor.store.codec import as_text
from mailmentor.store.commit import Committer
from mailmentor.store.due import DueSet
from mailmentor.store.health import Health
from mailmentor.store.keys import BUCKETS, DEFAULT_USER, LAYOUT, Namespace
from mailmentor.store.leases import Leases
from mailmentor.store.loops import LoopStore
from mailmentor.store.migrate import migrate_v1, v1_present
from mailmentor.store.outbox import OutboxStore
from mailmentor.store.weekly import Weekly


@dataclass
class Store:
    """One user's data in one Redis database."""

    client: redis.Redis
    ns: Namespace
    loops: LoopStore
    due: DueSet
    outbox: OutboxStore
    leases: Leases
    checkpoints: Checkpoints
    health: Health
    weekly: Weekly

    @classmethod
    def on(cls, client: redis.Redis, ns: Namespace) -> Store:
        """The parts over ``client``, without checking the layout (see `open_store`)."""
        committer = Committer(client)
        return cls(
            client=client,
            ns=ns,
            loops=LoopStore(client, ns, committer),
            due=DueSet(client, ns),
            outbox=OutboxStore(client, ns),
            leases=Leases(client, ns),
            checkpoints=Checkpoints(client, ns, committer),
            health=Health(client, ns),
            weekly=Weekly(client, ns, committer),
        )


def open_store(client: redis.Redis, user: str = DEFAULT_USER, buckets: int = BUCKETS) -> Store:
    """The store of ``user``: a new one is stamped with the layout, an older layout migrated."""
    ns = Namespace(user, buckets)
    store = Store.on(client, ns)
    meta = {as_text(k): as_text(v) for k, v in client.hgetall(ns.key("meta")).items()}
    if meta:
        if int(meta.get("layout", 0)) != LAYOUT:
            raise StoreLayoutError(
                f"{ns.key('meta')}: layout {meta.get('layout')} is not one this version reads "
                f"(it writes layout {LAYOUT}); upgrade mailmentor"
            )
        if int(meta.get("buckets", 0)) != ns.buckets:
            raise StoreLayoutError(
                f"{ns.key('meta')}: this store was written with {meta.get('buckets')} buckets, "
                f"not {ns.buckets}"
            )
        return store
    if v1_present(client):
        migrate_v1(client, ns, store.loops, store.leases)
    # One command: a crash can never leave half a stamp (which no later start could read).
    client.hset(ns.key("meta"), mapping={"layout": LAYOUT, "buckets": ns.buckets})
    return store


__all__ = ["Namespace", "Store", "open_store"]
