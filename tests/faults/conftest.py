"""Fixtures of the fault suite: a seeded random source for the kill points, and deployments
(`make_rig`) whose processes and servers are all stopped at the end, whatever happened.

The seed is fresh on every run and printed; ``FAULTS_SEED=<n>`` replays a run's kill points
(timing on a shared machine still varies, so a replay is close, not exact).
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from mailmentor.imap import ImapAccount
from mailmentor.sandbox.imap_server import LocalImapServer
from mailmentor.sandbox.smtp_sink import SmtpSink
from tests.faults.processes import RedisServer
from tests.faults.rig import NO_REMINDERS, Arrivals, Rig

SEED_ENV = "FAULTS_SEED"

RigFactory = Callable[..., Rig]


@pytest.fixture(scope="session")
def fault_seed() -> int:
    seed = int(os.environ.get(SEED_ENV) or random.SystemRandom().randrange(1_000_000))
    print(f"\nfault suite: seed {seed} (replay with {SEED_ENV}={seed})")
    return seed


@pytest.fixture
def rng(fault_seed: int, request: pytest.FixtureRequest) -> random.Random:
    """Each test's own stream, so one test's draws do not shift another's."""
    return random.Random(f"{fault_seed}:{request.node.name}")


@pytest.fixture
def make_rig(tmp_path: Path) -> Iterator[RigFactory]:
    """Build a deployment: an SMTP sink, a pymap mailbox (unless ``imap`` is given), and a
    redis-server of the test's own (``embedded=True``: none, `mailmentor run` starts its own)."""
    with contextlib.ExitStack() as stack:

        def make(
            rules: str = NO_REMINDERS,
            *,
            embedded: bool = False,
            imap: ImapAccount | None = None,
            worker_threads: int = 2,
        ) -> Rig:
            arrivals = Arrivals()
            sink = SmtpSink(on_message=arrivals)
            sink.start()
            stack.callback(sink.stop)
            if imap is None:
                server = LocalImapServer(user="watcher@mailmentor.test", password="watch-pw")
                stack.callback(server.stop)
                imap = server.start()
            redis = None
            if not embedded:
                redis = RedisServer(tmp_path / "redis")
                stack.callback(redis.stop)
                redis.start()
            rig = Rig(tmp_path / "deploy", imap, sink, arrivals, redis, rules, worker_threads)
            if embedded:
                stack.callback(_kill_leftover_redis, rig.data_dir / "redis")
            stack.callback(rig.close)
            return rig

        yield make


def _kill_leftover_redis(redis_dir: Path) -> None:
    """An embedded redis-server should stop with its `mailmentor run`; should one have outlived
    it (a failing test), end it here so it cannot hold the next test's machine."""
    try:
        pid = int((redis_dir / "redis.pid").read_text().strip())
        cwd = os.readlink(f"/proc/{pid}/cwd")
    except (OSError, ValueError):
        return
    if Path(cwd) == redis_dir.resolve():
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
