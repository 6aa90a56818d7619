"""Processes for tests that need one: a dead one, named the way leases and claims name owners."""

from __future__ import annotations

import socket
import subprocess
import sys

from mailmentor.liveness import ProcessId, boot_id, start_time


def owner_of(pid: int) -> str:
    """How a lease or claim names the running process ``pid``."""
    return str(ProcessId(socket.gethostname(), pid, start_time(pid) or "", boot_id()))


def dead_process() -> str:
    """The owner name of a process of this machine that has ended (its pid gone)."""
    child = subprocess.Popen(
        [sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE
    )
    owner = owner_of(child.pid)
    assert child.stdin is not None
    child.stdin.close()
    child.wait()
    return owner
