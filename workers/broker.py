"""The dramatiq broker, built by a function and handed in: nothing happens at import time.

The broker talks to the same Redis as the store, through a client built the same way (socket
timeouts, redis-py's retries). CurrentMessage lets an actor see how often its message was tried.
"""

from __future__ import annotations

from dramatiq.brokers.redis import RedisBroker
from dramatiq.middleware import CurrentMessage

from mailmentor.store.client import connect

#: dramatiq's queue for all of mailmentor's sends.
QUEUE = "mailmentor"
#: Keys of the broker's own (dramatiq's namespace, beside the store's ``mm:``).
NAMESPACE = "mailmentor"
#: A worker whose heartbeat is this old counts as gone and its unacknowledged messages are
#: given to others (dramatiq's default is a minute; ours recovers its own claims faster anyway).
HEARTBEAT_TIMEOUT_MS = 15_000


def build_broker(url: str) -> RedisBroker:
    broker = RedisBroker(  # type: ignore[no-untyped-call]  # dramatiq is untyped
        client=connect(url),
        namespace=NAMESPACE,
        heartbeat_timeout=HEARTBEAT_TIMEOUT_MS,
    )
    broker.add_middleware(CurrentMessage())
    return broker
