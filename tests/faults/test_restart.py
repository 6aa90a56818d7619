"""README, "What mailmentor promises": **A restart needs no manual step** ("an embedded Redis stops
with the process that started it ...; a mailbox lease held by a dead process on the same machine
is taken over at once"), a watcher that reconnects on its own when the IMAP server restarts, and
two processes on one mailbox tracking each ask once and mailing no reminder twice."""

from __future__ import annotations

import random
import re
import time
from collections.abc import Iterator

import pytest

from mailmentor.liveness import ProcessId
from mailmentor.model import EventType
from tests.faults.conftest import RigFactory
from tests.faults.processes import log_lines, running, tracebacks, with_traceback
from tests.faults.rig import REMIND_AFTER_2S, Rig, asks, loops_of, reminded, tally
from tests.faults.servers import RestartableDovecot, RestartableImap, RestartablePymap
from tests.servers.dovecot import dovecot_binary
from tests.waiting import wait_for

#: README: the lease of a dead holder on the same machine "is taken over at once" (its lease
#: TTL is 60 s); the bound leaves room for this shared machine, nothing more.
TAKEOVER_S = 5.0
SENT_LINE = re.compile(r"mailmentor\.actors: reminder \S+: sent ", re.M)


def _lease_holder(rig: Rig) -> int | None:
    """The pid of the process whose watcher holds the mailbox lease."""
    owner = rig.store().leases.holder(f"watch:{rig.imap.key}")
    process = ProcessId.parse(owner.split("/", 1)[0]) if owner else None
    return process.pid if process else None


def _applied(rig: Rig, message_ids: list[str]) -> bool:
    index = rig.store().loops.lookup(message_ids)
    return all(mid in index and index[mid].applied_to for mid in message_ids)


def test_restart_after_kill_9_with_the_embedded_redis_needs_no_manual_step(
    make_rig: RigFactory, rng: random.Random
) -> None:
    """No REDIS_URL: `mailmentor run` starts its own redis-server in DATA_DIR. Killed mid-ingest,
    the next `mailmentor run` starts on the same DATA_DIR at once, with the data, and takes the
    dead process's mailbox lease without waiting for it to expire."""
    rig = make_rig(embedded=True)
    run = rig.mailmentor().start()
    run.wait_running()
    before = asks("embedded", 40)
    appending = rig.append_later([raw for _, raw in before])
    rig.wait_into_batch(rng, 0, len(before))
    assert _lease_holder(rig) == run.pid
    redis_pid = int((rig.data_dir / "redis" / "redis.pid").read_text())

    run.kill()
    killed = time.monotonic()
    wait_for(lambda: not running(redis_pid), "the embedded redis-server to stop", timeout=15)
    redis_stopped = time.monotonic() - killed
    appending.result(timeout=30)
    later = asks("embedded", 1, start=len(before))
    rig.append([raw for _, raw in later])
    run.start()
    up = run.wait_running() - run.started_at
    handled = wait_for(
        lambda: _applied(rig, [later[0][0]]) and time.monotonic(),
        "the new watcher to handle the ask that came while no process ran",
        timeout=40,
    )
    first_handled = handled - run.started_at
    result = tally(rig.store(), [mid for mid, _ in (*before, *later)])
    log = run.log()
    print(
        f"\nrestart after kill -9 mid-ingest, embedded Redis: its redis-server stopped "
        f"{redis_stopped:.1f} s after the kill; restart to 'running' {up:.1f} s, to the mail "
        f"that came while down handled {first_handled:.1f} s (lease TTL 60 s); {result.loops} "
        f"loops of {result.asks} asks, {len(result.lost)} lost, {len(result.twice)} applied twice"
    )
    assert run.alive, f"exit code {run.process and run.process.returncode}:\n{log[-3000:]}"
    assert "already running" not in log
    assert result.exact, result
    assert rig.checkpoint() == rig.last_uid
    assert _lease_holder(rig) == run.pid
    assert first_handled < TAKEOVER_S + up, "the dead process's lease was waited out"
    assert with_traceback(log) == []


@pytest.fixture(params=["pymap", "dovecot"])
def restartable_imap(request: pytest.FixtureRequest) -> Iterator[RestartableImap]:
    if request.param == "dovecot" and dovecot_binary() is None:
        pytest.skip("dovecot is not installed (apt-get install dovecot-imapd)")
    server: RestartableImap = (
        RestartablePymap() if request.param == "pymap" else RestartableDovecot()
    )
    try:
        yield server
    finally:
        server.stop()


def test_imap_server_restarted_while_the_watcher_idles_is_reconnected_to(
    make_rig: RigFactory, restartable_imap: RestartableImap
) -> None:
    """The IMAP server restarts under the watcher's IDLE; mail appended afterwards is handled
    without a restart of `mailmentor run` (see servers.py for what pymap can keep)."""
    server = restartable_imap
    rig = make_rig(imap=server.account)
    run = rig.mailmentor().start()
    run.wait_running()
    before = asks(f"idle-{server.name}", 5)
    rig.append([raw for _, raw in before])
    rig.wait_caught_up()
    checkpoint = rig.store().checkpoints.get_checkpoint(rig.imap.key)
    assert checkpoint is not None
    wait_for(lambda: "caught up on" in run.log(), "the watcher to go idle")
    time.sleep(0.3)  # into IDLE (renewed every 2 s), not between two commands

    down = time.monotonic()
    server.restart()
    restarted = time.monotonic()
    after = asks(f"idle-{server.name}", 5, start=len(before))
    rig.append([raw for _, raw in after])
    wait_for(
        lambda: _applied(rig, [mid for mid, _ in after]),
        "the mail appended after the restart to be handled",
        timeout=40,
    )
    handled = time.monotonic()
    result = tally(rig.store(), [mid for mid, _ in (*before, *after)])
    now = rig.store().checkpoints.get_checkpoint(rig.imap.key)
    assert now is not None
    log = run.log()
    warnings = log_lines(log, "WARNING")
    print(
        f"\nIMAP server ({server.name}) restarted under IDLE: down {restarted - down:.1f} s, mail "
        f"appended after it handled {handled - restarted:.1f} s after it was back; UIDVALIDITY "
        f"{checkpoint[0]} -> {now[0]}; "
        f"{result.loops} loops of {result.asks} asks, {len(result.lost)} lost, "
        f"{len(result.twice)} applied twice; {len(warnings)} WARNING lines, "
        f"{tracebacks(log)} tracebacks"
    )
    assert result.exact, result
    assert run.alive
    # A new session after the restart: said as "reconnected to" after a failed try, or only as
    # a second login when the old session ended without an error (IDLE left, lease re-checked).
    assert len(re.findall(r"connected to .+ \(UIDVALIDITY \d+\)", log)) >= 2, log[-3000:]
    if server.keeps_mail:
        assert now == (checkpoint[0], rig.last_uid), "same mailbox: the checkpoint carries on"
    else:
        assert now[0] != checkpoint[0], "pymap lost its mail and said so with a new UIDVALIDITY"
    assert with_traceback(log) == []


def test_two_processes_on_one_mailbox_track_each_ask_once_and_the_survivor_takes_over(
    make_rig: RigFactory,
) -> None:
    """Two `mailmentor run` on one REDIS_URL and one mailbox: one watcher works, the other
    stands by; both schedule and send. Then kill -9 of the lease holder: the other must take
    the mailbox over (README: a dead holder's lease "is taken over at once")."""
    rig = make_rig(REMIND_AFTER_2S)
    first = rig.mailmentor("first").start()
    first.wait_running()
    wait_for(lambda: _lease_holder(rig) == first.pid, "the first process to hold the lease")
    second = rig.mailmentor("second").start()
    second.wait_running()
    wait_for(lambda: "standing by" in second.log(), "the second watcher to stand by")

    batch = asks("pair", 30)
    rig.append([raw for _, raw in batch])
    rig.wait_caught_up()
    loops = loops_of(rig.store(), [mid for mid, _ in batch])
    rig.wait_reminded(loops)
    sent_by = [len(SENT_LINE.findall(p.log())) for p in (first, second)]

    holder = first if _lease_holder(rig) == first.pid else second
    survivor = second if holder is first else first
    holder.kill()
    killed = time.monotonic()
    later = asks("pair", 10, start=len(batch))
    rig.append([raw for _, raw in later])
    takeover = rig.wait_caught_up(timeout=60) - killed
    later_loops = loops_of(rig.store(), [mid for mid, _ in later])
    rig.wait_reminded(later_loops)

    ids = [mid for mid, _ in (*batch, *later)]
    result = tally(rig.store(), ids)
    every = loops | later_loops
    recorded = reminded(rig.store(), every)
    print(
        f"\ntwo processes, one mailbox: {result.asks} asks, {result.loops} loops, "
        f"{len(result.lost)} lost, {len(result.twice)} applied twice; first 30 reminders sent "
        f"{sent_by[0]} by the first process, {sent_by[1]} by the second; "
        f"{rig.arrivals.duplicates()} mailed twice; after kill -9 of the lease holder the other "
        f"handled new mail {takeover:.1f} s later"
    )
    assert result.exact, result
    assert rig.arrivals.duplicates() == 0, rig.arrivals.by_id().most_common(3)
    assert rig.arrivals.loops() == every
    for loop in recorded.values():
        sent = [e for e in loop.events if e.type is EventType.REMINDER_SENT]
        assert (loop.nudges, len(sent)) == (1, 1), (loop.id, [e.type for e in loop.events])
    assert survivor.alive
    assert _lease_holder(rig) == survivor.pid
    assert takeover <= TAKEOVER_S, (
        f"the standing-by watcher took {takeover:.1f} s to take over a dead holder's lease"
    )
