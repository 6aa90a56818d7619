"""Heartbeats: is the owner of a claim or a sending mark still alive (a process), and when did
a component last finish a pass (the scheduler: for `status` and the fault suite)?"""

from __future__ import annotations

from datetime import timedelta

import redis

from mailmentor.store.keys import Namespace
from mailmentor.store.times import ttl_ms


class Health:
    def __init__(self, client: redis.Redis, ns: Namespace) -> None:
        self._r = client
        self._ns = ns

    def heartbeat(self, component: str, ttl: timedelta) -> None:
        """``component`` finished a pass; it counts as alive for ``ttl``."""
        self._r.set(self._ns.key("alive", component), "1", px=ttl_ms(ttl))

    def alive(self, component: str) -> bool:
        return bool(self._r.exists(self._ns.key("alive", component)))

    def process_beat(self, owner: str, ttl: timedelta) -> None:
        """This process is alive for ``ttl``: its claims are not taken back meanwhile."""
        self._r.set(self._ns.key("proc", owner), "1", px=ttl_ms(ttl))

    def process_alive(self, owners: list[str]) -> dict[str, bool]:
        if not owners:
            return {}
        with self._r.pipeline(transaction=False) as pipe:
            for owner in owners:
                pipe.exists(self._ns.key("proc", owner))
            return {o: bool(n) for o, n in zip(owners, pipe.execute(), strict=True)}

    def process_gone(self, owner: str) -> None:
        self._r.delete(self._ns.key("proc", owner))
