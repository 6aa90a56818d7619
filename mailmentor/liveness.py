"""Who a process is, and whether a process named that way is provably dead.

Leases, claims and sending marks name their owner as ``host:pid:start:boot`` (the process's start
time in clock ticks since boot, and the boot's id), so that on the same machine a dead owner is
recognised at once — its pid gone, or reused by a process started later — instead of waiting for
a lease to run out. On another machine nothing can be proved from here: the caller waits for the
owner's lease or heartbeat to expire.
"""

from __future__ import annotations

import functools
import os
import socket
import uuid
from dataclasses import dataclass
from pathlib import Path

_PROC = Path("/proc")


@dataclass(frozen=True)
class ProcessId:
    host: str
    pid: int
    start: str  # start time in clock ticks since boot ("" where /proc is not available)
    boot: str  # the boot's id, shortened ("" where unknown)

    def __str__(self) -> str:
        """As leases, claims and sending marks store it (parsed back by `parse`)."""
        return f"{self.host}:{self.pid}:{self.start}:{self.boot}"

    @property
    def readable(self) -> str:
        """For people: ``pid 18540 on vm``."""
        return f"pid {self.pid} on {self.host}"

    @classmethod
    def parse(cls, text: str) -> ProcessId | None:
        parts = text.rsplit(":", 3)
        if len(parts) != 4 or not parts[1].isdigit():
            return None
        return cls(parts[0], int(parts[1]), parts[2], parts[3])


def proc_stat(pid: int) -> tuple[str, list[str]] | None:
    """(the command name, fields 3 on) of /proc/<pid>/stat; None when there is no such process
    (or no /proc). ``fields[0]`` is the state, ``[1]`` the parent's pid, ``[11]`` and ``[12]``
    the user and system CPU time in clock ticks, ``[19]`` the start time."""
    try:
        stat = (_PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may contain spaces: split after it.
    head, _, rest = stat.rpartition(")")
    return head.partition("(")[2], rest.split()


def start_time(pid: int) -> str | None:
    """Field 22 of /proc/<pid>/stat, None when there is no such process."""
    found = proc_stat(pid)
    return found[1][19] if found is not None and len(found[1]) > 19 else None


@functools.cache
def boot_id() -> str:
    try:
        return (_PROC / "sys/kernel/random/boot_id").read_text().strip().replace("-", "")[:12]
    except OSError:
        return ""


def this_process() -> ProcessId:
    """This process, as leases and claims name it (computed anew: a fork is another process)."""
    pid = os.getpid()
    start = start_time(pid)
    return ProcessId(socket.gethostname(), pid, start or uuid.uuid4().hex[:8], boot_id())


def provably_dead(owner: str) -> bool:
    """True only when ``owner`` names a process of this machine and boot that no longer runs."""
    process = ProcessId.parse(owner.split("/", 1)[0])
    if process is None or process.host != socket.gethostname():
        return False
    if not process.boot or not boot_id():
        return False
    if process.boot != boot_id():
        return True  # this machine has rebooted since
    current = start_time(process.pid)
    return current is None or current != process.start


def describe_owner(owner: str) -> str:
    """An owner as log lines should name it: ``pid 18540 on vm`` for ``vm:18540:…:…/3f2a``
    (a fencing token before a ``|`` is left out too); anything else as it is. The stored
    form stays what `ProcessId.parse` reads."""
    process = ProcessId.parse(owner.rpartition("|")[2].split("/", 1)[0])
    return process.readable if process is not None else owner
