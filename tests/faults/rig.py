"""One deployment under test: rules, an IMAP mailbox, an SMTP sink, a Redis (the test's own or
the embedded one), and the `mailmentor run` processes on them, configured only through
MAILMENTOR_* variables. Also what the tests count: asks, loops, and arrivals at the sink."""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path

from mailmentor.embedded_redis import running_url
from mailmentor.imap import ImapAccount, appended_uid, connect
from mailmentor.model import EventType, Loop
from mailmentor.sandbox.smtp_sink import ReceivedMessage, SmtpSink
from mailmentor.smtp import SmtpAccount
from mailmentor.store import Store, open_store
from mailmentor.store.client import connect as connect_redis
from tests import mail_factory as mf
from tests.faults.processes import Mailmentor, RedisServer, base_environment
from tests.waiting import wait_for


def rules(asked: str = "{after: 1d}", *, budget: int | None = None, digest: str = "false") -> str:
    """A rule file with second-scale durations: ``asked`` is the asked stage's rule; no weekly
    budget and no digest unless given."""
    return f"""\
settings:
  reminder_budget: {"false" if budget is None else budget}
  digest: {digest}
rule_sets:
  advice:
    match: {{kinds: [advice]}}
    stages:
      asked: {asked}
"""


#: No reminder within a test: for the ingest scenarios.
NO_REMINDERS = rules()
#: One reminder per loop, 2 s after its ask.
REMIND_AFTER_2S = rules("{after: 2s}")


def until(condition: Callable[[], object], timeout: float) -> bool:
    """Whether ``condition()`` became true within ``timeout`` (for a test that reports what it
    measured before it fails)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return bool(condition())


def ask_id(tag: str, n: int) -> str:
    return f"{tag}-{n}@client.example"


def asks(tag: str, count: int, start: int = 0) -> list[tuple[str, bytes]]:
    """``count`` asks (Message-ID without brackets, raw mail), each to a mentor of its own, so
    each starts a loop of its own."""
    return [
        (
            ask_id(tag, n),
            mf.ask(
                f"<{ask_id(tag, n)}>",
                to=f"Mentor {n} <m{n}.{tag}@mentors.example>",
                subject=f"Question {n} of {tag}",
            ),
        )
        for n in range(start, start + count)
    ]


@dataclass(frozen=True)
class Arrival:
    at: float  # time.monotonic() in the test process
    message_id: str
    loop: str


class Arrivals:
    """What reached the SMTP sink, by Message-ID (a re-sent reminder keeps its Message-ID)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: list[Arrival] = []
        #: Seconds the server takes before it answers DATA (a slow SMTP server).
        self.hold = 0.0

    def __call__(self, received: ReceivedMessage) -> None:
        if self.hold:
            time.sleep(self.hold)  # the sink's event loop waits: so do all its sessions
        message = received.message
        arrival = Arrival(
            time.monotonic(),
            str(message["Message-ID"] or "").strip().strip("<>"),
            str(message["X-Mailmentor-Loop"] or ""),
        )
        with self._lock:
            self._seen.append(arrival)

    @property
    def all(self) -> list[Arrival]:
        with self._lock:
            return list(self._seen)

    def by_id(self) -> Counter[str]:
        return Counter(a.message_id for a in self.all)

    def loops(self) -> set[str]:
        return {a.loop for a in self.all}

    def duplicates(self) -> int:
        """Mails beyond the first of each Message-ID."""
        return sum(n - 1 for n in self.by_id().values())


@dataclass(frozen=True)
class Tally:
    """What became of a set of asks: each must have exactly one loop, created once."""

    asks: int
    loops: int
    lost: tuple[str, ...]
    twice: tuple[str, ...]

    @property
    def exact(self) -> bool:
        return not self.lost and not self.twice and self.loops == self.asks


def tally(store: Store, message_ids: Sequence[str]) -> Tally:
    """Every ask's loop and history: lost (no loop applied it) or applied twice (two loops, or
    a history with more than one event from it, or more than one "created")."""
    index = store.loops.lookup(message_ids)
    owners = {mid: index[mid].applied_to if mid in index else () for mid in message_ids}
    loops = store.loops.get_many({i for ids in owners.values() for i in ids}, history=True)
    lost, twice = [], []
    for mid, applied_to in owners.items():
        if not applied_to:
            lost.append(mid)
            continue
        found = [loops[i] for i in applied_to if i in loops]
        if len(applied_to) != 1 or len(found) != 1 or not _created_once(found[0], mid):
            twice.append(mid)
    total = len(list(store.loops.open_loops())) + len(list(store.loops.ended_loops()))
    return Tally(len(message_ids), total, tuple(lost), tuple(twice))


def _created_once(loop: Loop, message_id: str) -> bool:
    source = f"message <{message_id}>"
    from_it = [e for e in loop.events if e.source == source]
    created = [e for e in loop.events if e.type is EventType.CREATED]
    return len(from_it) == 1 and len(created) == 1


class Rig:
    """A deployment: ``redis`` is the test's own server, or None for the embedded one (no
    REDIS_URL, data in DATA_DIR)."""

    def __init__(
        self,
        workdir: Path,
        imap: ImapAccount,
        sink: SmtpSink,
        arrivals: Arrivals,
        redis: RedisServer | None,
        rules: str,
        worker_threads: int = 2,
    ) -> None:
        self.workdir = workdir
        self.imap = imap
        self.sink = sink
        self.smtp: SmtpAccount = sink.account
        self.arrivals = arrivals
        self.redis = redis
        self.worker_threads = worker_threads
        self.data_dir = workdir / "data"
        self.rules_dir = workdir / "rules"
        self.rules_dir.mkdir(parents=True, exist_ok=True)
        (self.rules_dir / "rules.yaml").write_text(rules)
        self.processes: list[Mailmentor] = []
        self._stores: dict[str, Store] = {}
        #: Every UID appended so far, in order (pymap's first UID is 101, Dovecot's 1).
        self.uids: list[int] = []

    def environment(self) -> dict[str, str]:
        env = base_environment(self.workdir)
        settings = {
            "IMAP_HOST": self.imap.host,
            "IMAP_PORT": str(self.imap.port),
            "IMAP_USER": self.imap.user,
            "IMAP_PASSWORD": self.imap.password,
            "IMAP_SECURITY": "none",
            "IMAP_IDLE_RENEW": "2.0",  # pymap can miss an append racing IDLE's start
            "SMTP_HOST": self.smtp.host,
            "SMTP_PORT": str(self.smtp.port),
            "SMTP_SECURITY": "none",
            "SERVICE_ADDRESS": mf.SERVICE,
            "USER_ADDRESSES": mf.USER,
            "SECRET_KEY": "fault-suite-secret",
            "RULES_DIR": str(self.rules_dir),
            "DATA_DIR": str(self.data_dir),
            "SCHEDULER_INTERVAL": "0.2",
            "WORKER_THREADS": str(self.worker_threads),
            "TIMEZONE": "UTC",
        }
        if self.redis is not None:
            settings["REDIS_URL"] = self.redis.url
        env.update({f"MAILMENTOR_{name}": value for name, value in settings.items()})
        return env

    def mailmentor(self, name: str = "run", command: str = "run") -> Mailmentor:
        """A `mailmentor <command>` process (not started); the fixture kills it at the end."""
        process = Mailmentor(self.workdir, self.environment(), name, command)
        self.processes.append(process)
        return process

    # -- the store, read from the test ----------------------------------------------------------

    @property
    def url(self) -> str:
        if self.redis is not None:
            return self.redis.url
        url = running_url(self.data_dir)
        assert url, f"no embedded Redis is serving {self.data_dir}"
        return url

    def store(self) -> Store:
        url = self.url
        if url not in self._stores:
            self._stores[url] = open_store(connect_redis(url))
        return self._stores[url]

    def checkpoint(self) -> int:
        found = self.store().checkpoints.get_checkpoint(self.imap.key)
        return found[1] if found else 0

    def wait_caught_up(self, uid: int | None = None, timeout: float = 40.0) -> float:
        """Wait until the checkpoint reached ``uid`` (default: the last appended); the moment."""
        wanted = self.last_uid if uid is None else uid
        wait_for(lambda: self.checkpoint() >= wanted, f"checkpoint at UID {wanted}", timeout)
        return time.monotonic()

    def wait_into_batch(self, rng: random.Random, start: int, count: int) -> None:
        """Wait until the service is a random way into the ``count`` messages appended from
        ``self.uids[start]`` on, plus a random few milliseconds (so a kill may land inside a
        message's handling as well as between two)."""
        index = start + rng.randrange(max(1, count - 6))

        def there() -> bool:
            return len(self.uids) > index and self.checkpoint() >= self.uids[index]

        wait_for(there, f"ingest past message {index - start + 1} of the batch", timeout=60)
        time.sleep(rng.uniform(0, 0.05))

    def ingest_asks(self, tag: str, count: int) -> set[str]:
        """Append ``count`` asks and wait until each has its loop (with REMIND_AFTER_2S they
        all fall due about 2 s later); their loop ids."""
        batch = asks(tag, count)
        self.append([raw for _, raw in batch])
        ids = [mid for mid, _ in batch]

        def all_there() -> set[str] | None:
            found = loops_of(self.store(), ids)
            return found if len(found) == count else None

        return wait_for(all_there, f"{count} loops of {tag}", timeout=40)

    def wait_reminded(self, loops: set[str], timeout: float = 60.0) -> None:
        """Until every loop's reminder arrived at the sink and is recorded on the loop."""
        wait_for(
            lambda: (
                loops <= self.arrivals.loops() and len(reminded(self.store(), loops)) == len(loops)
            ),
            f"{len(loops)} reminders sent and recorded",
            timeout=timeout,
        )

    # -- the mailbox ----------------------------------------------------------------------------

    def append(self, mails: Iterable[bytes], pace: Callable[[], None] | None = None) -> int:
        """Append over one connection; returns (and remembers) the last UID."""
        client = connect(self.imap)
        try:
            for raw in mails:
                uid = appended_uid(client.append(self.imap.folder, raw))
                assert uid is not None, "the server did not say the appended UID (UIDPLUS)"
                self.uids.append(uid)
                if pace is not None:
                    pace()
        finally:
            client.logout()
        return self.last_uid

    @property
    def last_uid(self) -> int:
        return self.uids[-1] if self.uids else 0

    def append_later(
        self, mails: Sequence[bytes], pace: Callable[[], None] | None = None
    ) -> Future[int]:
        """Append from a thread, while the test watches the service work (and kills it)."""
        future: Future[int] = Future()

        def append() -> None:
            try:
                future.set_result(self.append(mails, pace))
            except BaseException as exc:
                future.set_exception(exc)

        threading.Thread(target=append, name="appender", daemon=True).start()
        return future

    def close(self) -> None:
        for process in self.processes:
            process.kill()
        for store in self._stores.values():
            store.client.close()


def loops_of(store: Store, message_ids: Sequence[str]) -> set[str]:
    """The loops the index says these messages were applied to."""
    index = store.loops.lookup(message_ids)
    return {loop_id for entry in index.values() for loop_id in entry.applied_to}


def reminded(store: Store, loop_ids: Iterable[str]) -> dict[str, Loop]:
    """Those of ``loop_ids`` whose reminder is recorded (a nudge counted), with history."""
    loops = store.loops.get_many(loop_ids, history=True)
    return {loop_id: loop for loop_id, loop in loops.items() if loop.nudges >= 1}
