"""Process heartbeats: is the owner of a claim or a sending mark still alive?"""

from __future__ import annotations

from datetime import timedelta

import redis

from mailmentor.store.keys import Namespace
from mailmentor.store.times import ttl_ms


class Health:
    def __init__(self, client: redis.Redis, ns: Namespace) -> None:
        self._r = client
        self._ns = ns

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
