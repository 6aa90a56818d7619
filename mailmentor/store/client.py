"""The Redis client, built one way for everything: socket timeouts and redis-py's own retries.

A blip (a dropped connection, a slow answer) is retried by the client with exponential backoff
and jitter; what still fails after that reaches the caller, which decides whether to wait and try
again (`is_transient`) or give up on the item. No hand-written retry loops anywhere else.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import redis
from redis.backoff import ExponentialWithJitterBackoff
from redis.connection import URL_QUERY_ARGUMENT_PARSERS
from redis.retry import Retry
from redis.sentinel import Sentinel

from mailmentor.errors import ConfigError, StoreBusy, StoreError, StoreLayoutError
from mailmentor.store.redis_urls import SentinelAddress, is_sentinel_url, parse_sentinel_url

log = logging.getLogger("mailmentor.store")

#: Seconds a command may take before the client gives up on the answer (and retries).
SOCKET_TIMEOUT = 5.0
#: Retries of one command on a connection error or timeout (backoff 0.1 s doubling, cap 2 s).
RETRIES = 3

#: The compact encodings the bucketed layout is sized for (Redis 6.2 names; Redis 7 and 8
#: accept them as aliases of the listpack settings).
ENCODINGS = {
    "hash-max-ziplist-entries": 512,
    "hash-max-ziplist-value": 1024,
    "zset-max-ziplist-entries": 512,
}


def connect(url: str, *, timeout: float = SOCKET_TIMEOUT, retries: int = RETRIES) -> redis.Redis:
    """A client for ``url`` (redis://, rediss://, unix://, or a master through Redis Sentinel:
    redis+sentinel://, rediss+sentinel://) with timeouts and retries set. Through Sentinel a
    failover is a connection error like any other: the retry asks the sentinels again."""
    common: dict[str, Any] = {
        "socket_timeout": timeout,
        "socket_connect_timeout": timeout,
        "retry": Retry(ExponentialWithJitterBackoff(cap=2.0, base=0.1), retries),
        "retry_on_error": [redis.ConnectionError, redis.TimeoutError],
        "health_check_interval": 30,
    }
    if is_sentinel_url(url):
        return _through_sentinel(parse_sentinel_url(url), common, timeout)
    try:
        return redis.Redis.from_url(url, **common)
    except ValueError as exc:
        raise ConfigError(f"MAILMENTOR_REDIS_URL: {exc}") from None


def _through_sentinel(
    address: SentinelAddress, common: dict[str, Any], timeout: float
) -> redis.Redis:
    options = _typed_options(address.options)
    tls: dict[str, Any] = {"ssl": True} if address.tls else {}
    to_sentinels: dict[str, Any] = {
        "socket_timeout": timeout,
        "socket_connect_timeout": timeout,
        "username": address.sentinel_username,
        "password": address.sentinel_password,
        **tls,
        **{k: v for k, v in options.items() if k.startswith("ssl_")},
    }
    to_master: dict[str, Any] = {
        **common,
        "db": address.db,
        "username": address.username,
        "password": address.password,
        **tls,
        **options,
    }
    untyped: Any = Sentinel  # redis-py's sentinel module is untyped
    untyped = untyped(list(address.sentinels), sentinel_kwargs=to_sentinels)
    client: redis.Redis = untyped.master_for(address.master, redis_class=redis.Redis, **to_master)
    return client


def _typed_options(options: dict[str, str]) -> dict[str, Any]:
    """A sentinel URL's query options as redis-py's own URL parser would type them."""
    typed: dict[str, Any] = {}
    for name, value in options.items():
        parse: Any = URL_QUERY_ARGUMENT_PARSERS.get(name)
        try:
            typed[name] = parse(value) if parse else value
        except (TypeError, ValueError):
            raise ConfigError(f"MAILMENTOR_REDIS_URL: {name}={value!r} is not valid") from None
    return typed


def tune_encodings(client: redis.Redis) -> None:
    """Raise the small-structure limits the layout needs where they are lower (memory only:
    correctness never depends on it). A Redis that refuses CONFIG (managed services) gets one
    warning in the log, each time a process connects."""
    try:
        for name, wanted in ENCODINGS.items():
            current = client.config_get(name).get(name)
            if current is not None and int(current) < wanted:
                client.config_set(name, wanted)
                log.info("redis: %s raised from %s to %d", name, current, wanted)
    except redis.ResponseError as exc:
        settings = ", ".join(f"{k} {v}" for k, v in ENCODINGS.items())
        log.warning(
            "redis refused CONFIG (%s): memory use per loop will be higher; set %s in its config",
            exc,
            settings,
        )


#: Error replies that say "not now" (also when a script's command got them: "... -READONLY ...").
_TRANSIENT_REPLY = re.compile(
    r"(?:^|-)(?:LOADING|MASTERDOWN|TRYAGAIN|READONLY|NOREPLICAS|BUSY|OOM)\b"
)


def is_transient(exc: BaseException) -> bool:
    """Whether waiting and trying the same thing again can succeed: Redis down, slow, loading,
    failing over (a read-only replica), out of memory, or our own writes kept conflicting."""
    if isinstance(exc, StoreBusy):
        return True
    if isinstance(exc, StoreLayoutError | StoreError):
        return False
    if isinstance(exc, redis.ConnectionError | redis.TimeoutError | redis.ReadOnlyError):
        return True
    if isinstance(exc, redis.ResponseError):
        return bool(_TRANSIENT_REPLY.search(str(exc)))
    return False
