"""ParsePool: a batch announced ahead is parsed in worker processes, with the very result intake
would have parsed itself; small batches stay in place; trouble falls back to parsing here."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from mailmentor.liveness import proc_stat
from mailmentor.parsing import parse_message
from mailmentor.parsing.pool import ParsePool


def message(n: int) -> bytes:
    return (
        f"From: Ada <ada{n}@example.org>\r\nTo: mentor@example.org\r\n"
        f"Subject: question {n}\r\nMessage-ID: <m{n}@example.org>\r\n\r\n"
        f"Should I learn COBOL? ({n})\r\n"
    ).encode()


def worker_pids(pool: ParsePool) -> set[int]:
    executor = pool._executor
    return set(executor._processes) if executor is not None else set()  # type: ignore[attr-defined]


def test_a_batch_announced_ahead_is_parsed_in_a_worker_the_same() -> None:
    pool = ParsePool(1, min_batch=2)
    try:
        raws = [message(n) for n in range(6)]
        pool.ahead(raws)
        assert not pool._pending, "the first batch is parsed here while the workers start"
        assert [pool.parse(raw) for raw in raws] == [parse_message(raw) for raw in raws]
        assert pool.ready(30)
        pool.ahead(raws)
        assert pool._pending and worker_pids(pool), "the batch went to a worker process"
        assert [pool.parse(raw) for raw in raws] == [parse_message(raw) for raw in raws]
        assert not pool._pending
        assert os.getpid() not in worker_pids(pool)
    finally:
        pool.close()


def test_small_batches_and_unannounced_messages_are_parsed_in_place() -> None:
    pool = ParsePool(1, min_batch=4)
    try:
        raws = [message(n) for n in range(3)]
        pool.ahead(raws)
        assert pool._executor is None, "no process started for three messages"
        assert pool.parse(message(9)) == parse_message(message(9))
    finally:
        pool.close()
    assert ParsePool(0).parse(message(1)) == parse_message(message(1))


def test_a_later_batch_replaces_an_unfinished_one() -> None:
    pool = ParsePool(1, min_batch=1)
    try:
        assert pool.ready(30)
        first = [message(n) for n in range(3)]
        second = [message(n) for n in range(10, 13)]
        pool.ahead(first)
        pool.ahead(second)  # a stop or a lost lease left `first` half done
        assert {id(raw) for raw in second} == set(pool._pending)
        assert pool.parse(first[0]) == parse_message(first[0])  # parsed here instead
        assert [pool.parse(raw) for raw in second] == [parse_message(r) for r in second]
    finally:
        pool.close()


def test_a_dead_worker_means_parsing_in_place(caplog: pytest.LogCaptureFixture) -> None:
    pool = ParsePool(1, min_batch=1)
    try:
        assert pool.ready(30)
        for pid in worker_pids(pool):
            os.kill(pid, 9)
        raws = [message(n) for n in range(5)]
        pool.ahead(raws)
        assert [pool.parse(raw) for raw in raws] == [parse_message(raw) for raw in raws]
        pool.ahead(raws)
        assert pool.workers == 0 and not pool._pending, "no more trips to broken workers"
        assert "parsing in the watcher from now on" in caplog.text
    finally:
        pool.close()


def running(pid: int) -> bool:
    """Alive and not a zombie (a zombie is only waiting for init to reap it)."""
    found = proc_stat(pid)
    return found is not None and found[1][:1] != ["Z"]


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc (Linux)")
def test_workers_end_with_a_parent_killed_9() -> None:
    script = textwrap.dedent(
        """
        import time
        from mailmentor.parsing.pool import ParsePool
        from tests.parsing.test_pool import message, worker_pids
        pool = ParsePool(1, min_batch=1)
        assert pool.ready(30)
        print(*worker_pids(pool), flush=True)
        time.sleep(60)
        """
    )
    root = Path(__file__).resolve().parents[2]
    parent = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, cwd=root
    )
    try:
        assert parent.stdout is not None
        workers = [int(pid) for pid in parent.stdout.readline().split()]
        assert workers
    finally:
        parent.kill()
        parent.wait()
        if parent.stdout is not None:
            parent.stdout.close()
    deadline = time.monotonic() + 10
    while any(running(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(running(pid) for pid in workers), f"parse workers {workers} outlived it"
