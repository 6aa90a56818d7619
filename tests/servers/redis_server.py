"""Pytest fixtures: one real embedded Redis per session, a clean database for every test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from mailmentor.embedded_redis import EmbeddedRedis
from mailmentor.store import Store, open_store


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedRedis]:
    """A real redis-server on a unix socket, started once: startup costs are paid once."""
    server = EmbeddedRedis(tmp_path_factory.mktemp("redis-data"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def redis_client(redis_server: EmbeddedRedis) -> Iterator[redis.Redis]:
    """A client on an empty database, so tests never see each other's keys."""
    client = redis.Redis.from_url(redis_server.url)
    client.flushall()
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def store(redis_client: redis.Redis) -> Store:
    return open_store(redis_client)
