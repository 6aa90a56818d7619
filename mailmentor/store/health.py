"""Heartbeats: is the owner of a claim or a sending mark still alive (a process), and when did
a component last finish a pass (the scheduler: for `status` and the fault suite)?"""

from __future__ import annotations

from datetime import timedelta

import redis

from mailmentor.store.codec import as_text
from mailmentor.store.keys import Namespace
from mailmentor.store.times import ttl_ms

#: The parts of mailmentor that run as processes of their own.
COMPONENTS = ("watch", "schedule", "work")


def _server_ms(r: redis.Redis) -> int:
    seconds, micros = r.time()
    return int(seconds) * 1000 + int(micros) // 1000


class Health:
    def __init__(self, client: redis.Redis, ns: Namespace) -> None:
        self._r = client
        self._ns = ns

    def heartbeat(self, component: str, ttl: timedelta) -> None:
        """``component`` finished a pass; it counts as alive for ``ttl``."""
        self._r.set(self._ns.key("alive", component), "1", px=ttl_ms(ttl))

    def alive(self, component: str) -> bool:
        return bool(self._r.exists(self._ns.key("alive", component)))

    def component_beat(self, component: str, host: str, owner: str, ttl: timedelta) -> None:
        """Process ``owner`` of ``component`` (watch, schedule, work) runs on ``host`` for
        ``ttl``, by the Redis server's clock (the machines' clocks may disagree)."""
        key = self._ns.key("parts", component)
        now = _server_ms(self._r)
        with self._r.pipeline(transaction=False) as pipe:
            pipe.hset(key, f"{host} {owner}", now + ttl_ms(ttl))
            pipe.pexpire(key, ttl_ms(ttl))
            pipe.execute()
        stale = [f for f, until in self._r.hgetall(key).items() if int(until) <= now]
        if stale:
            self._r.hdel(key, *stale)

    def component_gone(self, component: str, host: str, owner: str) -> None:
        self._r.hdel(self._ns.key("parts", component), f"{host} {owner}")

    def component_alive(self, component: str, host: str) -> bool:
        return host in self.components().get(component, [])

    def components(self) -> dict[str, list[str]]:
        """Which hosts run each component now (``mailmentor status``); a host once per process."""
        now = _server_ms(self._r)
        found: dict[str, list[str]] = {}
        for component in COMPONENTS:
            for field, until in self._r.hgetall(self._ns.key("parts", component)).items():
                if int(until) > now:
                    found.setdefault(component, []).append(as_text(field).split(" ", 1)[0])
        return {c: sorted(hosts) for c, hosts in found.items()}

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
