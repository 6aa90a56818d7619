"""The dramatiq broker, built by a function and handed in: nothing happens at import time.

The broker talks to the same Redis as the store, through a client built the same way (socket
timeouts, redis-py's retries). CurrentMessage lets an actor see how often its message was tried;
Prefetch gives each worker on it enough messages ahead that its threads never wait for acks.
"""

from __future__ import annotations

import logging
from typing import Any

import dramatiq
import redis
from dramatiq.brokers.redis import RedisBroker
from dramatiq.middleware import CurrentMessage

from mailmentor.store.client import connect
from mailmentor.store.keys import DEFAULT_USER

#: dramatiq's queue for all of mailmentor's sends.
QUEUE = "mailmentor"
#: Keys of the broker's own (dramatiq's namespace, beside the store's ``mm:``), one per user:
#: users sharing a Redis never take each other's jobs.
NAMESPACE = "mailmentor"
#: A worker whose heartbeat is this old counts as gone and its unacknowledged messages are
#: given to others (dramatiq's default is a minute; ours recovers its own claims faster anyway).
HEARTBEAT_TIMEOUT_MS = 15_000
#: Messages a worker takes from the queue ahead, per thread. With dramatiq's default (2 per
#: thread), once that many are taken and not yet acknowledged its consumer sleeps, backing off
#: up to the worker timeout (200 ms in the stack), instead of fetching more, and threads can run
#: dry meanwhile; 10 outlast such a sleep at ~20 ms a send. Few enough that other workers on the
#: queue still get their share; what a worker has taken and not done goes back to the queue when
#: it stops, or when its heartbeat ends.
PREFETCH_PER_THREAD = 10


class Broker(RedisBroker):
    """dramatiq's Redis broker, closing the Redis client it was handed when it closes (dramatiq
    leaves a given client open: its socket would be left to the garbage collector)."""

    def close(self) -> None:
        try:
            super().close()
        finally:
            self.client.close()


def build_broker(url: str, user: str = DEFAULT_USER) -> RedisBroker:
    broker = Broker(  # type: ignore[no-untyped-call]  # dramatiq is untyped
        client=connect(url),
        namespace=NAMESPACE if user == DEFAULT_USER else f"{NAMESPACE}:{user}",
        heartbeat_timeout=HEARTBEAT_TIMEOUT_MS,
    )
    broker.add_middleware(CurrentMessage())
    broker.add_middleware(Prefetch())
    return broker


class Prefetch(dramatiq.Middleware):
    """Sets the prefetch of every worker started on the broker: PREFETCH_PER_THREAD messages per
    thread (dramatiq reads its own setting only from the environment, at import)."""

    def before_worker_boot(self, broker: Any, worker: dramatiq.Worker) -> None:
        worker.queue_prefetch = PREFETCH_PER_THREAD * worker.worker_threads


class RedisOutage(logging.Filter):
    """dramatiq's consumer logs a Redis outage as CRITICAL, with a whole traceback when Redis
    is slow rather than gone (it only knows ConnectionError). An outage is expected: one
    WARNING line per try, as everywhere else in mailmentor."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        outage = isinstance(exc, redis.ConnectionError | redis.TimeoutError)
        if outage or "connection error" in record.getMessage():
            reason = " ".join(str(exc or record.getMessage()).split())[:200]
            record.msg = "send queue: Redis unavailable (%s); the consumer tries again in 1 s"
            record.args = (reason,)
            record.levelno, record.levelname = logging.WARNING, "WARNING"
            record.exc_info = record.exc_text = None
        return True


def quiet_outages(queue: str = QUEUE) -> None:
    """Install RedisOutage on the loggers of dramatiq's consumers of ``queue`` (once)."""
    for name in (queue, f"{queue}.DQ"):
        logger = logging.getLogger(f"dramatiq.worker.ConsumerThread({name})")
        if not any(isinstance(f, RedisOutage) for f in logger.filters):
            logger.addFilter(RedisOutage())
