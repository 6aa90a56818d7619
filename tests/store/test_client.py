"""The one way Redis clients are built: timeouts and redis-py's retries; which errors are worth
waiting out; the compact encodings the layout is sized for."""

from __future__ import annotations

import logging
import threading
import time

import pytest
import redis

from mailmentor.embedded_redis import EmbeddedRedis
from mailmentor.errors import ConfigError, LoopNotFound, StoreBusy, StoreError, StoreLayoutError
from mailmentor.store.client import ENCODINGS, connect, is_transient, tune_encodings


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        (redis.ConnectionError("refused"), True),
        (redis.TimeoutError("slow"), True),
        (redis.ReadOnlyError("READONLY You can't write against a read only replica."), True),
        (redis.BusyLoadingError("loading"), True),
        (redis.ResponseError("LOADING Redis is loading the dataset in memory"), True),
        (redis.ResponseError("OOM command not allowed when used memory > 'maxmemory'."), True),
        (redis.ResponseError("MASTERDOWN Link with MASTER is down"), True),
        (
            redis.ResponseError(
                "Error running script (call to f_369f): @user_script:1: @user_script: 1: "
                "-READONLY You can't write against a read only replica."
            ),
            True,
        ),
        (StoreBusy("kept changing"), True),
        (redis.ResponseError("ERR Error running script"), False),
        (redis.ResponseError("WRONGTYPE Operation against a key"), False),
        (StoreError("unreadable"), False),
        (StoreLayoutError("layout 9"), False),
        (LoopNotFound("l1"), False),
        (ValueError("a bug"), False),
    ],
)
def test_which_failures_are_worth_waiting_out(error: Exception, transient: bool) -> None:
    assert is_transient(error) is transient


def test_a_paused_server_is_a_timeout_after_the_clients_retries(
    redis_server: EmbeddedRedis,
) -> None:
    client = connect(redis_server.url, timeout=0.2, retries=1)
    admin = redis.Redis.from_url(redis_server.url)
    try:
        assert client.ping()
        admin.client_pause(1500)
        started = time.monotonic()
        with pytest.raises(redis.TimeoutError):
            client.get("x")
        took = time.monotonic() - started
        assert 0.3 < took < 1.4, took  # two tries of 0.2 s and a short backoff, no hanging
        time.sleep(1.6)
        assert client.get("x") is None, "the same client works again once the server does"
    finally:
        admin.client_unpause()
        client.close()
        admin.close()


def test_a_blip_is_retried_by_the_client_unseen(redis_server: EmbeddedRedis) -> None:
    client = connect(redis_server.url, timeout=0.5, retries=3)
    admin = redis.Redis.from_url(redis_server.url)
    try:
        client.set("k", "v")
        for info in admin.client_list():
            if info.get("name") != "admin" and int(info["id"]) != admin.client_id():
                admin.client_kill_filter(_id=info["id"])
        assert client.get("k") == b"v", "the dropped connection was re-made and retried"
    finally:
        client.close()
        admin.close()


def test_a_bad_url_names_the_setting() -> None:
    with pytest.raises(ConfigError, match="MAILMENTOR_REDIS_URL"):
        connect("http://localhost:6379")


def test_small_structure_limits_are_raised_where_lower(
    redis_server: EmbeddedRedis, caplog: pytest.LogCaptureFixture
) -> None:
    client = redis.Redis.from_url(redis_server.url)
    try:
        client.config_set("hash-max-ziplist-entries", 128)
        with caplog.at_level(logging.INFO, "mailmentor.store"):
            tune_encodings(client)
        for name, wanted in ENCODINGS.items():
            assert int(client.config_get(name)[name]) >= wanted
        assert "hash-max-ziplist-entries raised from 128 to 512" in caplog.text
    finally:
        client.close()


def test_the_client_waits_for_a_restarting_server(tmp_path: object) -> None:
    """A Redis restarting on the same socket: the client's retries bridge a short gap."""
    from pathlib import Path

    server = EmbeddedRedis(Path(str(tmp_path)) / "r")
    url = server.start()
    client = connect(url, timeout=0.5, retries=6)
    try:
        client.set("k", "v")
        server.stop()
        restarted = threading.Timer(0.3, server.start)
        restarted.start()
        assert client.get("k") == b"v", "AOF kept it, the client got through after the restart"
        restarted.join()
    finally:
        client.close()
        server.stop()
