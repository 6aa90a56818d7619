"""Ingest: N realistic messages already in the mailbox, through the real watcher into Redis,
against a plain imapclient fetch of the same UIDs in the same run.

Run: .venv/bin/python bench/ingest.py [N] [--server pymap|dovecot] [--profile] [--seed S]
     (N defaults to 5000; `bench/ingest.py 300` is a quick run)

The messages come from `bench/mail.py` (asks, forwards of all kinds, replies in threads, HTML,
attachments; 5–50 KB) and are APPENDed to a fresh local IMAP server: pymap (the demo and test
server) or Dovecot (started as the test suite starts it, `tests/servers/dovecot.py`).

- The baseline is a plain imapclient loop that fetches ``BODY.PEEK[]`` for the same UIDs, in
  batches of FETCH_BATCH as `mailmentor/imap/fetching.py` does, measured in rounds before and
  after the ingest (the median is used).
- The ingest is a real `MailboxWatcher` with `Intake.handle_raw` as its handler, built as
  `workers/stack.py` builds it, on the services of a real `Stack` (scheduler and workers off) over
  a fresh embedded Redis, logging at INFO to a file as `mailmentor run` does. It is timed from the
  watcher's start until the checkpoint reaches the last UID (polled every few milliseconds);
  then every expected loop must exist at its stage, and no other loop. The rate in the first and
  the last fifth of the messages comes from the same checkpoint samples.

``--profile`` runs the ingest once more, in this thread and with every stage timed (exclusive
wall time, a few microseconds of overhead per call), counts the Redis round trips and the Lua
time Redis itself reports, splits parse_message into its parts, and measures what the changes
under consideration would save (other fetch shapes, bounded parsing, batched commits).
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import logging
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import redis  # noqa: E402
from imapclient import IMAPClient  # noqa: E402
from mail import SERVICE, USER, Corpus, corpus  # noqa: E402

from mailmentor.embedded_redis import EmbeddedRedis  # noqa: E402
from mailmentor.imap import (  # noqa: E402
    FETCH_BATCH,
    FETCH_BYTES_BUDGET,
    ImapAccount,
    MailboxWatcher,
    uid_batches,
)
from mailmentor.imap.account import open_folder  # noqa: E402
from mailmentor.liveness import proc_stat  # noqa: E402
from mailmentor.sandbox.imap_server import LocalImapServer  # noqa: E402
from mailmentor.settings import load_settings  # noqa: E402
from mailmentor.smtp import SmtpAccount  # noqa: E402
from mailmentor.store import Store, open_store  # noqa: E402
from mailmentor.store.client import connect  # noqa: E402
from workers.stack import SANDBOX_IDLE_RENEW, Stack  # noqa: E402

BASELINE_ROUNDS = 3  # before the ingest, and as many after
POLL = 0.005


# --- servers ------------------------------------------------------------------------------------


@contextlib.contextmanager
def imap_server(kind: str) -> Iterator[ImapAccount]:
    """A fresh pymap, or a Dovecot as the test suite runs it; an account with an empty INBOX."""
    if kind == "pymap":
        server = LocalImapServer(user="bench@mailmentor.test", password="bench-pw")
        account = server.start()
        try:
            yield account
        finally:
            server.stop()
        return
    from tests.servers.dovecot import DovecotServer, dovecot_binary

    if dovecot_binary() is None or os.geteuid() != 0:
        raise SystemExit("Dovecot is not installed, or this is not root (it switches users)")
    dovecot = DovecotServer()
    account = dovecot.start()
    try:
        yield account
    finally:
        dovecot.stop()


def server_version(kind: str) -> str:
    if kind == "pymap":
        from importlib.metadata import version

        return f"pymap {version('pymap')}"
    import subprocess

    from tests.servers.dovecot import dovecot_binary

    out = subprocess.run([str(dovecot_binary()), "--version"], capture_output=True, text=True)
    return f"Dovecot {out.stdout.split()[0] if out.stdout else '?'}"


def idle_renew_for(kind: str) -> float:
    """What `mailmentor run` uses: the sandbox's short renew on pymap, the default elsewhere."""
    return SANDBOX_IDLE_RENEW if kind == "pymap" else 540.0


def append_all(account: ImapAccount, messages: Sequence[bytes], chunk: int = 100) -> list[int]:
    """APPEND the messages in order (MULTIAPPEND, TCP_NODELAY); returns the folder's UIDs."""
    client, _ = open_folder(account, 60, readonly=False)
    try:
        for start in range(0, len(messages), chunk):
            client.multiappend(account.folder, list(messages[start : start + chunk]))
        client.noop()
        return sorted(int(uid) for uid in client.search(["ALL"]))
    finally:
        client.logout()


def raw_fetch(
    account: ImapAccount, uids: Sequence[int], items: Sequence[bytes] | None = None
) -> float:
    """The baseline: seconds for a plain imapclient loop fetching ``items`` (BODY.PEEK[]) of
    ``uids`` in FETCH_BATCH batches; checks that every body arrived."""
    wanted = list(items or [b"BODY.PEEK[]"])
    client, _ = open_folder(account, 60)
    try:
        started = time.perf_counter()
        got = 0
        for batch in uid_batches(uids, FETCH_BATCH):
            got += len(client.fetch(batch, wanted))
        took = time.perf_counter() - started
    finally:
        client.logout()
    if got != len(uids):
        raise RuntimeError(f"raw fetch read {got} of {len(uids)} messages")
    return took


# --- the service --------------------------------------------------------------------------------


@dataclass
class Service:
    """A Stack's services (scheduler and workers off, no watcher of its own) on a fresh
    embedded Redis, and a watcher built exactly as `Stack` builds its own."""

    stack: Stack
    redis: EmbeddedRedis
    watcher: MailboxWatcher
    log_file: Path


@contextlib.contextmanager
def service(
    account: ImapAccount, kind: str, tmp: Path, name: str, parse_workers: int | None = None
) -> Iterator[Service]:
    server = EmbeddedRedis(tmp / f"redis-{name}")
    url = server.start()
    log_file = tmp / f"{name}.log"
    handler = logging.FileHandler(log_file)
    handler.setFormatter(
        logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%H:%M:%S")
    )
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.INFO)  # as `mailmentor run` logs (cli.main)
    for noisy in ("dramatiq", "pika", "asyncio", "mail.log", "pymap"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    settings = load_settings(
        redis_url=url,
        imap_host="",
        smtp_host="",
        data_dir=tmp / f"data-{name}",
        service_address=SERVICE,
        user_addresses=[USER],
        secret_key="bench-secret",
        timezone="UTC",
        imap_idle_renew=idle_renew_for(kind),
        parse_workers=parse_workers,
    )
    smtp = SmtpAccount("127.0.0.1", 9, security="none")  # nothing is sent: no workers
    # No IMAP account for the Stack: given one, it starts a watcher of its own (whatever
    # ``watcher`` says), which would race the one timed here under the same lease owner.
    stack = Stack(settings, imap=None, smtp=smtp, watcher=False, scheduler=False, workers=False)
    services = stack.start()
    watcher = MailboxWatcher(  # as Stack._start builds the watcher of a plain (BCC) mailbox
        account,
        services.store.checkpoints,
        services.intake.handle_raw,
        leases=services.store.leases,
        owner=f"{stack.owner}/watch",
        idle_renew=settings.imap_idle_renew,
        quarantine_folder=settings.quarantine_folder or None,
        prepare=stack.parser.ahead,
    )
    try:
        yield Service(stack, server, watcher, log_file)
    finally:
        watcher.stop()
        stack.stop()
        root.removeHandler(handler)
        handler.close()
        server.stop()


def checkpoint_of(store: Store, account: ImapAccount) -> int:
    found = store.checkpoints.get_checkpoint(account.key)
    return found[1] if found else 0


@dataclass
class Timed:
    seconds: float
    samples: list[tuple[float, int]] = field(default_factory=list)  # (seconds, checkpoint UID)
    cpu: float = 0.0  # CPU seconds of this process meanwhile (the watcher and the poller)
    children_cpu: float = 0.0  # CPU seconds of its child processes (the parse workers)

    def at(self, uid: int) -> float:
        """When the checkpoint first reached ``uid``."""
        return next(t for t, u in self.samples if u >= uid)


def timed_ingest(svc: Service, account: ImapAccount, last_uid: int, timeout: float) -> Timed:
    """Run the watcher in its thread (as `mailmentor run` does) until the checkpoint is at
    ``last_uid``; poll the checkpoint with a client of our own."""
    store = open_store(connect(svc.redis.url))
    thread = threading.Thread(target=svc.watcher.run, name="mailmentor-watcher", daemon=True)
    started = time.perf_counter()
    cpu_started = time.process_time()
    children_started = children_cpu()
    thread.start()
    samples: list[tuple[float, int]] = [(0.0, 0)]
    try:
        while samples[-1][1] < last_uid:
            if time.perf_counter() - started > timeout:
                raise RuntimeError(f"ingest stalled at UID {samples[-1][1]} of {last_uid}")
            time.sleep(POLL)
            uid = checkpoint_of(store, account)
            if uid != samples[-1][1]:
                samples.append((time.perf_counter() - started, uid))
        took = samples[-1][0]
        cpu = time.process_time() - cpu_started
        children = children_cpu() - children_started
    finally:
        svc.watcher.stop()
        thread.join(timeout=30)
        store.client.close()
    return Timed(took, samples, cpu, children)


def children_cpu() -> float:
    """CPU seconds (user + system) of this process's live Python children (the parse workers;
    not the embedded redis-server), from /proc (0 elsewhere)."""
    pids = [int(p.name) for p in Path("/proc").glob("[0-9]*")]
    stats = [found for pid in pids if (found := proc_stat(pid)) is not None]
    children = [
        fields
        for name, fields in stats
        if int(fields[1]) == os.getpid() and name.startswith("python")
    ]
    return sum(int(fields[11]) + int(fields[12]) for fields in children) / os.sysconf("SC_CLK_TCK")


def check_loops(store: Store, data: Corpus) -> tuple[int, list[str]]:
    """How many expected loops are there at their stage, and what is wrong (missing, at another
    stage, or not expected at all)."""
    problems: list[str] = []
    ids = list(data.loops)
    found: dict[str, Any] = {}
    for start in range(0, len(ids), 500):
        found.update(store.loops.get_many(ids[start : start + 500], texts=False))
    good = 0
    for loop_id, stage in data.loops.items():
        loop = found.get(loop_id)
        if loop is None:
            problems.append(f"missing loop {loop_id} ({stage})")
        elif str(loop.stage) != stage:
            problems.append(f"loop {loop_id} is {loop.stage}, expected {stage}")
        else:
            good += 1
    every = {loop.id for loop in store.loops.open_loops()}
    every |= {loop.id for loop in store.loops.ended_loops()}
    problems += [f"unexpected loop {i}" for i in sorted(every - set(data.loops))]
    return good, problems


def fifths(timed: Timed, uids: list[int]) -> list[float]:
    """msgs/s in each fifth of the messages (by checkpoint samples)."""
    rates = []
    count = len(uids)
    edges = [uids[min(count - 1, round(count * k / 5) - 1)] for k in range(1, 6)]
    previous = 0.0
    for k, edge in enumerate(edges):
        now = timed.at(edge)
        done = round(count * (k + 1) / 5) - round(count * k / 5)
        rates.append(done / max(now - previous, 1e-9))
        previous = now
    return rates


# --- the run ------------------------------------------------------------------------------------


def describe(data: Corpus) -> str:
    sizes = data.sizes()
    kinds = Counter(k.split("-")[0] for k in data.kinds)
    styles = Counter(k.split("-", 1)[1] for k in data.kinds if k.startswith("forward-"))
    stages = Counter(data.loops.values())
    return (
        f"{len(sizes)} messages: {kinds['ask']} asks, {kinds['forward']} forwards "
        f"({', '.join(f'{s} {n}' for s, n in sorted(styles.items()))}), {kinds['reply']} "
        f"replies, {kinds['newsletter'] + kinds['autoreply']} that change nothing; "
        f"{min(sizes) / 1000:.1f}–{max(sizes) / 1000:.1f} KB (median "
        f"{statistics.median(sizes) / 1000:.1f} KB, total {sum(sizes) / 1e6:.0f} MB); "
        f"{len(data.loops)} loops expected ({stages['asked']} asked, {stages['advised']} advised)"
    )


def baseline(account: ImapAccount, uids: list[int], rounds: int) -> list[float]:
    return [len(uids) / raw_fetch(account, uids) for _ in range(rounds)]


def run(args: argparse.Namespace) -> int:
    print(f"machine: {os.cpu_count()} cores, Python {platform.python_version()}, {platform.node()}")
    started = time.perf_counter()
    data = corpus(args.count, args.seed)
    print(f"corpus (seed {args.seed}, built in {time.perf_counter() - started:.1f} s): "
          f"{describe(data)}")  # fmt: skip
    with imap_server(args.server) as account, tempfile.TemporaryDirectory(prefix="mm-in-") as t:
        tmp = Path(t)
        os.chmod(tmp, 0o755)
        started = time.perf_counter()
        uids = append_all(account, data.messages)
        took = time.perf_counter() - started
        print(f"server: {server_version(args.server)} on {account.host}:{account.port}; "
              f"{len(uids)} messages appended in {took:.1f} s")  # fmt: skip
        raw = baseline(account, uids, BASELINE_ROUNDS)
        with service(account, args.server, tmp, "timed", args.parse_workers) as svc:
            timed = timed_ingest(svc, account, uids[-1], timeout=max(600.0, args.count))
            good, problems = check_loops(svc.stack.store, data)
            lines = sum(1 for _ in svc.log_file.open())
        raw += baseline(account, uids, BASELINE_ROUNDS)
        report(data, uids, raw, timed, good, problems, lines)
        if args.profile:
            profile_run(account, args.server, tmp, data, uids, statistics.median(raw))
    return 1 if problems else 0


def report(
    data: Corpus,
    uids: list[int],
    raw: list[float],
    timed: Timed,
    good: int,
    problems: list[str],
    log_lines: int,
) -> None:
    base = statistics.median(raw)
    rate = len(uids) / timed.seconds
    ratio = rate / base
    parts = fifths(timed, uids)
    print(
        f"raw fetch, imapclient BODY.PEEK[] in batches of {FETCH_BATCH}: {base:8,.0f} msgs/s "
        f"(median of {len(raw)} rounds, {min(raw):,.0f}–{max(raw):,.0f})"
    )
    print(
        f"ingest, MailboxWatcher → Intake.handle_raw → Redis:  {rate:8,.1f} msgs/s "
        f"({len(uids)} in {timed.seconds:.1f} s, {timed.seconds / len(uids) * 1000:.2f} ms/msg)"
    )
    print(
        f"CPU of this process meanwhile: {timed.cpu / len(uids) * 1000:.2f} ms/msg "
        f"({timed.cpu / timed.seconds * 100:.0f}% of one core; the rest is waiting)"
    )
    if timed.children_cpu:
        print(
            f"CPU of its parse workers meanwhile: {timed.children_cpu / len(uids) * 1000:.2f} "
            f"ms/msg ({timed.children_cpu / timed.seconds * 100:.0f}% of one core)"
        )
    verdict = "met" if ratio >= 0.6 else "NOT met"
    print(f"ratio ingest/raw: {ratio:.4f} ({ratio * 100:.2f}%; target >= 60%: {verdict})")
    trend = parts[-1] / parts[0]
    fell = "does not fall" if trend >= 0.9 else "FALLS"
    print(
        "by fifths (msgs/s): "
        + ", ".join(f"{r:.1f}" for r in parts)
        + f"; last/first {trend:.2f} ({fell} as loops accumulate)"
    )
    print(
        f"check: {good}/{len(data.loops)} expected loops at their stage, "
        f"{len(problems)} problems; {log_lines} log lines written"
    )
    for line in problems[:10]:
        print(f"  {line}")


# --- where the time goes (--profile) ------------------------------------------------------------

#: Stages that talk to Redis: a round trip is counted against the innermost one it happens in.
STORE_OPS = (
    "store read: Message-ID index",
    "store read: loops",
    "store read: person records",
    "commit: Script call (redis-py)",
    "checkpoint (read, COMMIT)",
    "lease",
)
REDIS_STAGES = ("redis-py: pack command", "redis: send", "redis: wait for reply, parse")


class Stages:
    """Exclusive wall time per stage in one thread: a stage's time leaves out the stages it
    calls. Calls from other threads (the heartbeat) are not counted."""

    def __init__(self) -> None:
        self.thread = threading.get_ident()
        self.time: dict[str, float] = defaultdict(float)
        self.calls: Counter[str] = Counter()
        self.trips: Counter[str] = Counter()
        self.redis: dict[tuple[str, str], float] = defaultdict(float)
        self.stack: list[str] = []
        self.mark = time.perf_counter()
        self.uid = 0
        self.commits: list[tuple[int, Any]] = []  # (uid, Batch) of every COMMIT, in order
        self._undo: list[Callable[[], None]] = []

    def enter(self, stage: str) -> None:
        now = time.perf_counter()
        if self.stack:
            self.time[self.stack[-1]] += now - self.mark
        self.stack.append(stage)
        self.calls[stage] += 1
        self.mark = now
        if stage == "redis: send":
            self.trips[self._op()] += 1

    def leave(self) -> None:
        now = time.perf_counter()
        stage = self.stack.pop()
        self.time[stage] += now - self.mark
        if stage in REDIS_STAGES:
            self.redis[(self._op(), stage)] += now - self.mark
        self.mark = now

    def _op(self) -> str:
        return next((s for s in reversed(self.stack) if s in STORE_OPS), "other")

    def wrap(self, owner: Any, name: str, stage: str) -> None:
        original = owner.__dict__[name] if isinstance(owner, type) else getattr(owner, name)
        stages = self

        def timed(*args: Any, **kwargs: Any) -> Any:
            if threading.get_ident() != stages.thread:
                return original(*args, **kwargs)
            stages.enter(stage)
            try:
                return original(*args, **kwargs)
            finally:
                stages.leave()

        setattr(owner, name, timed)
        self._undo.append(lambda: setattr(owner, name, original))

    def undo(self) -> None:
        while self._undo:
            self._undo.pop()()


def instrument(stages: Stages) -> None:
    """Wrap every stage of the message path (library code is untouched: only this process's
    attributes are replaced, and put back by ``stages.undo()``)."""
    import mailmentor.imap.watcher as watcher_module
    import mailmentor.intake as pure_intake
    import mailmentor.service.intake as intake_module
    from mailmentor.service.intake import Intake
    from mailmentor.service.writer import LoopWriter
    from mailmentor.store.batch import Batch
    from mailmentor.store.checkpoints import Checkpoints
    from mailmentor.store.commit import Committer
    from mailmentor.store.leases import Leases
    from mailmentor.store.loops import LoopStore

    connection = redis.connection.AbstractConnection
    for owner, name, stage in (
        (MailboxWatcher, "catch_up", "watcher loop (the rest)"),
        (watcher_module, "fetch_messages", "IMAP fetch (imapclient)"),
        (IMAPClient, "search", "IMAP search, noop"),
        (IMAPClient, "noop", "IMAP search, noop"),
        (Intake, "handle_raw", "intake: handle_raw, handle (the rest)"),
        (Intake, "handle", "intake: handle_raw, handle (the rest)"),
        (intake_module, "parse_message", "parse_message"),
        (intake_module, "unusable_reason", "intake: checks, classify"),
        (intake_module, "classify_in_mailbox", "intake: checks, classify"),
        (Intake, "_decide", "decide (pure: intake, stages)"),
        (pure_intake, "excerpt", "excerpts (quoting)"),
        (LoopStore, "lookup", "store read: Message-ID index"),
        (LoopStore, "get_many", "store read: loops"),
        (LoopStore, "people", "store read: person records"),
        (LoopWriter, "complete", "writer: plan next action, people (pure)"),
        (LoopStore, "batch_for", "commit: build Batch, args"),
        (Batch, "args", "commit: build Batch, args"),
        (Committer, "run", "commit: Script call (redis-py)"),
        (Checkpoints, "set_checkpoint", "checkpoint (read, COMMIT)"),
        (Checkpoints, "get_checkpoint", "checkpoint (read, COMMIT)"),
        (Leases, "acquire", "lease"),
        (LoopWriter, "_notify", "writer: notify (the rest)"),
        (logging.Logger, "_log", "logging"),
        (connection, "pack_command", "redis-py: pack command"),
        (connection, "pack_commands", "redis-py: pack command"),
        (connection, "send_packed_command", "redis: send"),
        (connection, "read_response", "redis: wait for reply, parse"),
    ):
        stages.wrap(owner, name, stage)
    record = Committer.__dict__["run"]
    handle_raw = Intake.__dict__["handle_raw"]

    def run_and_record(self: Any, batch: Any, describe: Any = None) -> Any:
        if threading.get_ident() == stages.thread:
            stages.commits.append((stages.uid, batch))
        return record(self, batch, describe)

    def handle_with_uid(self: Any, uid: int, raw: bytes) -> Any:
        stages.uid = uid
        return handle_raw(self, uid, raw)

    Committer.run = run_and_record  # type: ignore[method-assign]
    Intake.handle_raw = handle_with_uid  # type: ignore[method-assign]
    stages._undo.insert(0, lambda: setattr(Committer, "run", record))
    stages._undo.insert(0, lambda: setattr(Intake, "handle_raw", handle_raw))


def commandstats(client: redis.Redis) -> dict[str, tuple[int, int]]:
    """Redis's own count and microseconds per command."""
    found = client.info("commandstats")
    return {k.removeprefix("cmdstat_"): (int(v["calls"]), int(v["usec"])) for k, v in found.items()}


def profile_run(
    account: ImapAccount, kind: str, tmp: Path, data: Corpus, uids: list[int], raw_rate: float
) -> None:
    count = len(uids)
    print("\n== where the time goes: the ingest again, in this thread, every stage timed ==")
    with service(account, kind, tmp, "profile") as svc:
        store = svc.stack.store
        before = commandstats(store.client)
        stages = Stages()
        instrument(stages)
        started = time.perf_counter()
        try:
            while checkpoint_of(store, account) < uids[-1]:
                svc.watcher.catch_up()
        finally:
            stages.undo()
        wall = time.perf_counter() - started
        server = {
            name: (calls - before.get(name, (0, 0))[0], usec - before.get(name, (0, 0))[1])
            for name, (calls, usec) in commandstats(store.client).items()
        }
        good, problems = check_loops(store, data)
        lines = sum(1 for _ in svc.log_file.open())
        lease = store.client.get(store.ns.key("lease", svc.watcher.lease_name))
        print(
            f"{count} messages in {wall:.1f} s ({count / wall:.1f} msgs/s, with the timers); "
            f"{good}/{len(data.loops)} loops right, {len(problems)} problems; "
            f"{lines / count:.1f} log lines per message"
        )
        print_stages(stages, wall, count)
        print_round_trips(stages, server, count)
        replay_commits(store, stages.commits, uids, lease, svc.watcher.lease_name)
    print_parse_parts(data.messages)
    print_fetch_shapes(account, uids, raw_rate)


def print_stages(stages: Stages, wall: float, count: int) -> None:
    per = 1e6 / count
    rows = sorted(stages.time.items(), key=lambda kv: -kv[1])
    accounted = sum(stages.time.values())
    print(f"\n{'stage (exclusive wall time)':46}{'µs/msg':>10}{'share':>8}{'calls/msg':>11}")
    for stage, seconds in rows:
        print(
            f"{stage:46}{seconds * per:10.0f}{seconds / wall * 100:7.1f}%"
            f"{stages.calls[stage] / count:11.2f}"
        )
    rest = wall - accounted
    print(f"{'(between the timers)':46}{rest * per:10.0f}{rest / wall * 100:7.1f}%")
    print(f"{'total':46}{wall * per:10.0f}{100:7.1f}%")


def print_round_trips(stages: Stages, server: dict[str, tuple[int, int]], count: int) -> None:
    per = 1e6 / count
    print(f"\n{'Redis, by store operation':34}{'trips/msg':>10}{'pack µs':>9}{'send µs':>9}"
          f"{'wait+read µs':>14}  (per message)")  # fmt: skip
    for op in (*STORE_OPS, "other"):
        trips = stages.trips[op]
        if not trips:
            continue
        pack, send, wait = (stages.redis[(op, s)] * per for s in REDIS_STAGES)
        print(f"{op:34}{trips / count:10.2f}{pack:9.0f}{send:9.0f}{wait:14.0f}")
    total = sum(stages.trips.values())
    print(f"{'all':34}{total / count:10.2f}")
    evalsha = server.get("evalsha", (0, 0))
    commits = len(stages.commits)
    argv = [len(batch.args()[1]) for _, batch in stages.commits]
    print(
        f"COMMIT: {commits / count:.2f} calls/msg, {statistics.mean(argv):.0f} ARGV items on "
        f"average; Redis's own time in Lua (EVALSHA, commandstats): "
        f"{evalsha[1] / max(evalsha[0], 1):.0f} µs/call, {evalsha[1] / count:.0f} µs/msg"
    )
    others = sorted(((n, c, u) for n, (c, u) in server.items() if n != "evalsha" and c),
                    key=lambda r: -r[2])[:6]  # fmt: skip
    print("other commands Redis ran (calls/msg, µs/msg): " + ", ".join(
        f"{n} {c / count:.1f} {u / count:.0f}" for n, c, u in others))  # fmt: skip


def _merged(batches: Sequence[Any]) -> Any:
    """One "each" batch with every group of ``batches`` (a what-if: one Lua call per fetch
    batch; a real design would keep each message's groups all-or-nothing)."""
    from mailmentor.store.batch import Batch

    out = Batch("each")
    for batch in batches:
        key_at = {index: key for key, index in batch._keys.items()}
        for group in batch._groups:
            out.group()
            for item in group.checks:
                out._check(item[0], out._k(key_at[item[1]]), *item[2:])
            for item in group.ops:
                keys = 3 if item[0] in ("due", "undue") else 2
                moved = [out._k(key_at[k]) for k in item[1:keys]]
                out._op(item[0], *moved, *item[keys:])
    return out


def replay_commits(
    store: Store, commits: list[tuple[int, Any]], uids: list[int], lease: Any, lease_name: str
) -> None:
    """The run's COMMITs again on an emptied Redis: one call each (as now), pipelined per fetch
    batch, and merged into one call per fetch batch with one checkpoint."""
    from mailmentor.store import lua

    client = store.client
    script = client.register_script(lua.COMMIT)
    batch_of = {uid: n // FETCH_BATCH for n, uid in enumerate(uids)}
    chunks: dict[int, list[Any]] = defaultdict(list)
    for uid, batch in commits:
        chunks[batch_of.get(uid, 0)].append(batch)
    calls = [(b.args()) for _, b in commits]

    def reset() -> None:
        client.flushall()
        if lease is not None:
            client.set(store.ns.key("lease", lease_name), lease)

    reset()
    started = time.perf_counter()
    for keys, argv in calls:
        script(keys=keys, args=argv)
    one_by_one = time.perf_counter() - started
    reset()
    started = time.perf_counter()
    for chunk in chunks.values():
        with client.pipeline(transaction=False) as pipe:
            for batch in chunk:
                keys, argv = batch.args()
                script(keys=keys, args=argv, client=pipe)
            pipe.execute()
    pipelined = time.perf_counter() - started
    reset()
    started = time.perf_counter()
    for chunk in chunks.values():
        keys, argv = _merged(chunk).args()
        script(keys=keys, args=argv)
    merged = time.perf_counter() - started
    per = 1e6 / len(uids)
    print(
        f"the same COMMITs replayed (µs/msg): one call each, as now {one_by_one * per:.0f}; "
        f"pipelined per fetch batch {pipelined * per:.0f}; merged into one call per fetch "
        f"batch {merged * per:.0f}"
    )


PARSE_STEPS = (
    "MIME tree (stdlib BytesParser, compat32)",
    "header fields (addresses, ids, dates)",
    "body text (walk, decode, HTML to text)",
    "forwards: inline (header blocks in the text)",
    "forwards: attached (message/rfc822)",
    "automatic-mail rules: headers, subject, reports",
    "automatic-mail rules: body text, bounces",
    "Authentication-Results",
    "reply text (strip_quoted)",
    "what-if: headers only (compat32 + header fields)",
    "what-if: parse_message of header + first 16 KB of body",
)


def parse_steps(raw: bytes) -> list[float]:
    """Seconds of each of PARSE_STEPS for one message (the steps `_parse` runs, in order)."""
    from email import policy
    from email.parser import BytesHeaderParser, BytesParser

    from mailmentor.parsing import automatic
    from mailmentor.parsing.forwards import attached_forwards, inline_forwards
    from mailmentor.parsing.message import (
        authentication_results,
        body_text,
        header_fields,
        parse_message,
    )
    from mailmentor.parsing.quoting import strip_quoted

    clock = time.perf_counter
    marks = [clock()]
    msg = BytesParser(policy=policy.compat32).parsebytes(raw)
    marks.append(clock())
    head = header_fields(msg)
    marks.append(clock())
    text = body_text(msg)
    marks.append(clock())
    inline_forwards(text, head.subject)
    marks.append(clock())
    attached_forwards(msg)
    marks.append(clock())
    automatic._header_reason(msg)
    automatic._subject_reason(head.subject)
    automatic._report_reason(msg, head.subject)
    marks.append(clock())
    automatic._body_reason(msg, head.subject)
    automatic._bounce_reason(msg)
    marks.append(clock())
    authentication_results(msg)
    marks.append(clock())
    strip_quoted(text)
    marks.append(clock())
    header = raw.split(b"\r\n\r\n", 1)[0] + b"\r\n\r\n"
    header_fields(BytesHeaderParser(policy=policy.compat32).parsebytes(header))
    marks.append(clock())
    parse_message(raw[: len(header) + 16_384])
    marks.append(clock())
    return [b - a for a, b in itertools.pairwise(marks)]


def print_parse_parts(messages: Sequence[bytes], sample: int = 1500) -> None:
    """parse_message's parts, each timed on its own over a sample of the corpus."""
    from mailmentor.parsing.message import parse_message

    step = max(1, len(messages) // sample)
    chosen = list(messages[::step])
    started = time.perf_counter()
    for raw in chosen:
        parse_message(raw)
    whole = time.perf_counter() - started
    totals = [0.0] * len(PARSE_STEPS)
    for raw in chosen:
        for n, seconds in enumerate(parse_steps(raw)):
            totals[n] += seconds
    per = 1e6 / len(chosen)
    print(f"\nparse_message on {len(chosen)} of the messages: {whole * per:.0f} µs/msg; its parts:")
    for name, seconds in zip(PARSE_STEPS, totals, strict=True):
        share = "" if name.startswith("what-if") else f"{seconds / whole * 100:6.1f}%"
        print(f"  {name:58}{seconds * per:8.0f} µs {share}")


def print_fetch_shapes(account: ImapAccount, uids: list[int], raw_rate: float) -> None:
    """Other FETCH shapes for the same UIDs (msgs/s, median of 3), against BODY.PEEK[]."""
    shapes: list[tuple[str, list[list[bytes]]]] = [
        ("BODY.PEEK[] (the baseline)", [[b"BODY.PEEK[]"]]),
        ("RFC822.SIZE, then BODY.PEEK[] (fetching.py before)",
         [[b"RFC822.SIZE"], [b"BODY.PEEK[]"]]),
        ("RFC822.SIZE BODY.PEEK[]<0.n> in one FETCH (fetching.py now)",
         [[b"RFC822.SIZE", f"BODY.PEEK[]<0.{FETCH_BYTES_BUDGET // FETCH_BATCH}>".encode()]]),
        ("BODY.PEEK[HEADER] BODYSTRUCTURE", [[b"BODY.PEEK[HEADER]", b"BODYSTRUCTURE"]]),
        ("BODY.PEEK[HEADER] BODYSTRUCTURE BODY.PEEK[TEXT]<0.16384>",
         [[b"BODY.PEEK[HEADER]", b"BODYSTRUCTURE", b"BODY.PEEK[TEXT]<0.16384>"]]),
    ]  # fmt: skip
    print(f"\nFETCH shapes, imapclient, batches of {FETCH_BATCH} (msgs/s, median of 3):")
    for name, fetches in shapes:
        rates = []
        for _ in range(3):
            took = sum(raw_fetch(account, uids, items) for items in fetches)
            rates.append(len(uids) / took)
        rate = statistics.median(rates)
        print(f"  {name:58}{rate:8,.0f}  ({rate / raw_rate:.2f}x the baseline's rate)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("count", nargs="?", type=int, default=5000, help="messages (5000)")
    parser.add_argument("--server", choices=("pymap", "dovecot"), default="pymap")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--profile", action="store_true", help="also: where the time goes")
    parser.add_argument(
        "--parse-workers",
        type=int,
        help="PARSE_WORKERS for the service (default: the setting's, cores - 1; 0: none)",
    )
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
