"""The one place that builds the dramatiq broker; it must run before any actor is declared.

`mailmentor run` calls `setup(url)` with the embedded or configured Redis before importing
`workers.actors`; the dramatiq CLI (`dramatiq workers.actors`) gets it from MAILMENTOR_REDIS_URL.
"""

from __future__ import annotations

import sys

import dramatiq
from dramatiq.brokers.redis import RedisBroker

from mailmentor.errors import ConfigError
from mailmentor.settings import load_settings

_broker: RedisBroker | None = None


def setup(url: str) -> RedisBroker:
    """Point dramatiq at this Redis with a fresh broker (a Worker leaves middleware behind)."""
    global _broker
    if _broker is not None:
        _broker.close()
    broker = RedisBroker(url=url, namespace="mailmentor")  # type: ignore[no-untyped-call]
    dramatiq.set_broker(broker)
    _broker = broker
    # Actors declared earlier (by a previous setup in this process) follow the new broker.
    actors = sys.modules.get("workers.actors")
    for actor in getattr(actors, "ALL", ()):
        actor.broker = broker
        broker.declare_actor(actor)
    return broker


def ensure() -> RedisBroker:
    """The broker for actors imported on their own (dramatiq CLI): needs a real Redis URL."""
    if _broker is not None:
        return _broker
    url = load_settings().redis_url
    if not url:
        raise ConfigError(
            "MAILMENTOR_REDIS_URL: required to run workers on their own "
            "(`mailmentor run` starts an embedded Redis instead)"
        )
    return setup(url)
