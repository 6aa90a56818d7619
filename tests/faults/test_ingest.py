"""README, "What mailmentor promises": **No message is lost, none is applied twice** — under
`kill -9` of `mailmentor run` mid-ingest, a Redis killed and restarted, and a Redis that stops
answering; "the watcher does not move past [a message the store cannot take]: it waits ... and
tries that message again". Every ask must end with exactly one loop, created once, and the
checkpoint at the last UID."""

from __future__ import annotations

import random
import time
from concurrent.futures import Future

from tests.faults.conftest import RigFactory
from tests.faults.processes import log_lines, tracebacks, with_traceback
from tests.faults.rig import Rig, asks, tally
from tests.waiting import wait_for

ROUNDS = 4
PER_ROUND = 60


def _watcher_complained(log: str) -> bool:
    return any(
        " mailmentor.imap: " in line
        for level in ("WARNING", "ERROR")
        for line in log_lines(log, level)
    )


def _handled(rig: Rig, start: int) -> int:
    """How many of the UIDs appended from ``start`` on are behind the checkpoint."""
    checkpoint = rig.checkpoint()
    return sum(uid <= checkpoint for uid in rig.uids[start:])


def test_kill_9_during_ingest_loses_nothing_and_applies_nothing_twice(
    make_rig: RigFactory, rng: random.Random
) -> None:
    """Rounds of asks appended while `mailmentor run` reads them, each ended by kill -9 at a
    random message (and a random few ms into it), then a restart that must catch up alone."""
    rig = make_rig()
    run = rig.mailmentor()
    run.start()
    run.wait_running()
    ids: list[str] = []
    reached: list[int] = []
    catch_up: list[float] = []
    for round_ in range(ROUNDS):
        batch = asks(f"ingest{round_}", PER_ROUND)
        ids += [mid for mid, _ in batch]
        start = len(rig.uids)
        appending = rig.append_later([raw for _, raw in batch])
        rig.wait_into_batch(rng, start, PER_ROUND)
        run.kill()
        appending.result(timeout=60)
        reached.append(_handled(rig, start))
        run.start()
        catch_up.append(rig.wait_caught_up(timeout=60) - run.started_at)

    result = tally(rig.store(), ids)
    print(
        f"\nkill -9 during ingest: {ROUNDS} rounds, {len(ids)} asks, {result.loops} loops, "
        f"{len(result.lost)} lost, {len(result.twice)} applied twice; killed after "
        f"{reached} of {PER_ROUND} per round; restart-to-caught-up max {max(catch_up):.1f} s "
        f"(each: {', '.join(f'{t:.1f}' for t in catch_up)})"
    )
    assert not result.lost, f"asks with no loop: {result.lost[:10]}"
    assert not result.twice, f"asks applied twice: {result.twice[:10]}"
    assert result.loops == len(ids)
    assert rig.checkpoint() == rig.last_uid
    assert with_traceback(run.all_logs()) == []
    assert log_lines(run.all_logs(), "ERROR") == []


#: A blip, then a restart that outlasts the watcher's first wait (1 s) and redis-py's retries.
DOWNTIMES = ((0.3, 1.0), (2.5, 3.5))
#: Asks appended one every PACE_S while Redis is killed: mail keeps coming during the outage,
#: and every kill lands while the watcher is working (asserted: the appends are not done).
TRICKLE = 150
PACE_S = 0.02
#: `mailmentor run` writes its heartbeat this often (the default HEARTBEAT_SECONDS, 30 s, over
#: mailmentor.store.health.BEATS_PER_TTL).
HEARTBEAT_S = 5.0


def _trickle(rig: Rig, tag: str) -> tuple[list[tuple[str, bytes]], Future[int]]:
    batch = asks(tag, TRICKLE)
    return batch, rig.append_later([raw for _, raw in batch], pace=lambda: time.sleep(PACE_S))


def test_redis_killed_and_restarted_during_ingest_loses_nothing_and_the_service_carries_on(
    make_rig: RigFactory, rng: random.Random
) -> None:
    """kill -9 of redis-server twice while asks trickle in, started again on the same AOF and
    socket: `mailmentor run` must stay up and carry on by itself."""
    rig = make_rig()
    assert rig.redis is not None
    run = rig.mailmentor().start()
    run.wait_running()
    batch, appending = _trickle(rig, "redis-kill")
    began = time.monotonic()
    kills: list[tuple[float, float]] = []  # (seconds into the appends, downtime)
    for downtime in DOWNTIMES:
        time.sleep(rng.uniform(0.2, 0.8))
        assert not appending.done(), "the kill is to land while mail is coming in"
        rig.redis.kill()
        kills.append((time.monotonic() - began, rng.uniform(*downtime)))
        time.sleep(kills[-1][1])  # the outage itself
        rig.redis.start()
    restarted = time.monotonic()
    appending.result(timeout=60)
    rig.wait_caught_up(timeout=60)
    caught_up = time.monotonic() - restarted
    more = asks("redis-kill", 5, start=TRICKLE)
    rig.append([raw for _, raw in more])
    rig.wait_caught_up(timeout=30)

    ids = [mid for mid, _ in (*batch, *more)]
    result = tally(rig.store(), ids)
    log = run.log()
    warnings = log_lines(log, "WARNING")
    print(
        f"\nredis-server kill -9 during ingest: killed at "
        f"{', '.join(f'{at:.1f} s (down {down:.1f} s)' for at, down in kills)} into "
        f"{TRICKLE} appends; {len(ids)} asks, {result.loops} loops, "
        f"{len(result.lost)} lost, {len(result.twice)} applied twice; caught up "
        f"{caught_up:.1f} s after the last Redis start; mailmentor alive: {run.alive}; "
        f"{len(warnings)} WARNING lines, {tracebacks(log)} tracebacks"
    )
    for noisy in with_traceback(log):
        print(f"  with a traceback: {noisy}")
    assert run.alive, f"mailmentor run exited:\n{log[-3000:]}"
    assert not result.lost, f"asks with no loop: {result.lost[:10]}"
    assert not result.twice, f"asks applied twice: {result.twice[:10]}"
    assert result.loops == len(ids)
    assert rig.checkpoint() == rig.last_uid
    # Redis down is an expected outage: waited out with WARNING lines (README: the watcher
    # "waits (1 s doubling up to 30 s)"), not logged as an unexpected error.
    assert with_traceback(log) == []


def test_redis_that_stops_answering_is_waited_out_with_warnings_not_tracebacks(
    make_rig: RigFactory, rng: random.Random
) -> None:
    """SIGSTOP of redis-server: connections stay open and nothing answers, so every command
    runs into the client's socket timeout (5 s) on each of its tries (4 in all). The outage
    lasts until the watcher logs that the store failed it (the client gave up), and one
    heartbeat interval more, so that the command every other thread (scheduler, heartbeat,
    send workers) started during it has given up too; then Redis resumes."""
    rig = make_rig()
    assert rig.redis is not None
    run = rig.mailmentor().start()
    run.wait_running()
    batch, appending = _trickle(rig, "redis-hang")
    time.sleep(rng.uniform(0.3, 1.5))
    assert not appending.done(), "the outage is to begin while mail is coming in"
    rig.redis.pause()
    paused = time.monotonic()
    try:
        wait_for(
            lambda: _watcher_complained(run.log()),
            "the watcher to log the store outage",
            timeout=60,
        )
        time.sleep(HEARTBEAT_S)  # until every thread's command has run out of tries
    finally:
        rig.redis.resume()
    outage = time.monotonic() - paused
    appending.result(timeout=60)
    rig.wait_caught_up(timeout=60)
    caught_up = time.monotonic() - paused - outage
    more = asks("redis-hang", 5, start=len(batch))
    rig.append([raw for _, raw in more])
    rig.wait_caught_up(timeout=30)

    ids = [mid for mid, _ in (*batch, *more)]
    result = tally(rig.store(), ids)
    log = run.log()
    warnings = log_lines(log, "WARNING")
    print(
        f"\nredis-server stopped (SIGSTOP) during ingest for {outage:.1f} s: {len(ids)} asks, "
        f"{result.loops} loops, {len(result.lost)} lost, {len(result.twice)} applied twice; "
        f"caught up {caught_up:.1f} s after it resumed; {len(warnings)} WARNING lines, "
        f"{len(log_lines(log, 'ERROR'))} ERROR lines, {tracebacks(log)} tracebacks"
    )
    for noisy in with_traceback(log):
        print(f"  with a traceback: {noisy}")
    assert run.alive, f"mailmentor run exited:\n{log[-3000:]}"
    assert not result.lost, f"asks with no loop: {result.lost[:10]}"
    assert not result.twice, f"asks applied twice: {result.twice[:10]}"
    assert result.loops == len(ids)
    assert rig.checkpoint() == rig.last_uid
    assert any("store unavailable" in line for line in warnings), warnings
    assert with_traceback(log) == []
    assert log_lines(log, "ERROR") == []
