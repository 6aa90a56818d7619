"""The embedded redis-server: start, stop, persistence, exclusivity, crash recovery."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
import redis

from mailmentor.embedded_redis import EmbeddedRedis, running_url
from mailmentor.errors import StoreError


def ping_set_get(url: str, key: str, value: bytes | None = None) -> bytes | None:
    """Write ``value`` if given, then read the key back, over a fresh client."""
    client = redis.Redis.from_url(url)
    try:
        assert client.ping()
        if value is not None:
            client.set(key, value)
        got = client.get(key)
        assert got is None or isinstance(got, bytes)
        return got
    finally:
        client.close()


def test_start_gives_unix_url_and_data_survives_restart(tmp_path: Path) -> None:
    server = EmbeddedRedis(tmp_path / "data")
    url = server.start()
    try:
        assert url.startswith("unix:///")
        assert server.url == url
        assert server.start() == url  # already running: same server
        ping_set_get(url, "k", b"kept")
    finally:
        server.stop()
    assert not server.running
    assert (tmp_path / "data" / "redis" / "appendonly.aof").stat().st_size > 0

    with EmbeddedRedis(tmp_path / "data") as again:
        assert ping_set_get(again.url, "k") == b"kept"


def test_stop_is_idempotent_and_url_needs_start(tmp_path: Path) -> None:
    server = EmbeddedRedis(tmp_path)
    server.stop()  # never started
    with pytest.raises(StoreError, match="not started"):
        _ = server.url
    server.start()
    server.stop()
    server.stop()
    with pytest.raises(StoreError, match="not started"):
        _ = server.url


def test_constructor_has_no_side_effects(tmp_path: Path) -> None:
    EmbeddedRedis(tmp_path / "data")
    assert not (tmp_path / "data").exists()


def test_second_server_on_same_dir_fails_clearly(tmp_path: Path) -> None:
    with EmbeddedRedis(tmp_path) as first:
        other = EmbeddedRedis(tmp_path)
        with pytest.raises(StoreError, match="already running") as info:
            other.start()
        assert str(tmp_path) in str(info.value)
        ping_set_get(first.url, "k", b"v")  # the first one is unharmed
    with EmbeddedRedis(tmp_path) as second:  # free again once the first stopped
        assert ping_set_get(second.url, "k") == b"v"


def test_restart_after_crash_with_stale_socket(tmp_path: Path) -> None:
    server = EmbeddedRedis(tmp_path)
    url = server.start()
    socket = Path(url.removeprefix("unix://"))
    ping_set_get(url, "k", b"v")
    process = server._process
    assert process is not None
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert socket.exists()  # what a crash leaves behind

    with EmbeddedRedis(tmp_path) as again:
        ping_set_get(again.url, "k2", b"v2")
        server.stop()  # the crashed instance cleans up without touching its successor
        ping_set_get(again.url, "k2")
    assert not socket.exists()  # a clean shutdown removes the socket


def test_long_data_dir_puts_socket_in_short_tmp_dir(tmp_path: Path) -> None:
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    with EmbeddedRedis(deep) as server:
        socket = Path(server.url.removeprefix("unix://"))
        assert len(str(socket)) < 100
        assert not socket.is_relative_to(deep)
        ping_set_get(server.url, "k", b"v")
        assert (deep / "redis" / "appendonly.aof").exists()
    assert not socket.parent.exists()  # temporary socket dir removed


def test_odd_characters_in_path(tmp_path: Path) -> None:
    with EmbeddedRedis(tmp_path / 'my "mail" 100%#?') as server:
        ping_set_get(server.url, "k", b"v")


def test_start_failure_names_dir_and_shows_log(tmp_path: Path) -> None:
    (tmp_path / "redis").mkdir()
    (tmp_path / "redis" / "appendonly.aof").write_bytes(b"this is not an AOF\r\n")
    server = EmbeddedRedis(tmp_path)
    with pytest.raises(StoreError, match="exited with status") as info:
        server.start()
    message = str(info.value)
    assert str(tmp_path) in message
    assert "server log" in message
    assert "AOF" in message or "append only" in message.lower()
    assert not server.running


def test_url_works_for_dramatiq_broker(tmp_path: Path) -> None:
    from dramatiq.brokers.redis import RedisBroker

    with EmbeddedRedis(tmp_path) as server:
        broker = RedisBroker(url=server.url)  # type: ignore[no-untyped-call]
        try:
            assert broker.client.ping()
        finally:
            broker.close()


def test_running_url_finds_the_live_server_only(tmp_path: Path) -> None:
    assert running_url(tmp_path) is None  # never started
    with EmbeddedRedis(tmp_path) as server:
        assert running_url(tmp_path) == server.url
        ping_set_get(server.url, "k", b"v")
    assert running_url(tmp_path) is None  # stopped: the socket no longer answers


def test_running_url_with_long_data_dir(tmp_path: Path) -> None:
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    with EmbeddedRedis(deep) as server:
        assert running_url(deep) == server.url
    assert running_url(deep) is None
