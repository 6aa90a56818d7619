"""`plan` tells the truth: for random loops and rules, what `forecast` predicts over a month or
two equals what the real scheduler and sender send on the real store with a ManualClock.

The simulated service runs as `run` does: re-plan at start, then scheduler passes, each at the
next moment the due set has work (the scheduler ticks every second, so that is its resolution),
every queued delivery sent through the real sender to a real SMTP server before the next pass.
The forecast is taken once, at the start, from the store as ``mailmentor plan`` reads it, and
once more half way through (deferred loops, a partly spent week's budget).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
import redis
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from mailmentor import stages
from mailmentor.clock import ManualClock
from mailmentor.delivery import week_start
from mailmentor.forecast import Expected, forecast
from mailmentor.model import EventType, Kind, Loop, Person, Stage
from mailmentor.rules import Rules, RuleSet, StageRule
from mailmentor.rules.model import WORKING_STAGES
from mailmentor.sandbox.smtp_sink import SmtpSink
from mailmentor.schedule import plan_next
from mailmentor.service.sender import Sent
from mailmentor.store import Store, open_store
from tests.service_factory import dispatch_of, services_on
from tests.store_support import put_loop

SECOND = timedelta(seconds=1)
H = timedelta(hours=1)
D = timedelta(days=1)
ZONES = ("UTC", "America/New_York", "Europe/Berlin", "Asia/Kolkata", "Australia/Sydney")
#: Scheduler passes one simulation may take before the test calls it a runaway.
MAX_PASSES = 2000


@pytest.fixture(scope="module")
def sink() -> Iterator[SmtpSink]:
    """One SMTP server for every example (starting one per example would cost more than it)."""
    server = SmtpSink()
    server.start()
    try:
        yield server
    finally:
        server.stop()


# -- random rules and loops ------------------------------------------------------------------

durations = st.sampled_from([6 * H, 20 * H, D, 2 * D, 3 * D, 5 * D, 7 * D, 10 * D])


@st.composite
def stage_rules(draw: st.DrawFn) -> StageRule:
    after = draw(durations)
    every = draw(st.none() | durations)
    most = draw(st.integers(1, 3)) if every is not None else 1
    give_up = draw(st.none() | durations.map(lambda extra: after + extra) | st.just(after))
    return StageRule(after=after, every=every, max=most, give_up_after=give_up)


@st.composite
def rule_sets(draw: st.DrawFn, name: str, kind: Kind) -> RuleSet:
    # Most stages have a rule (a loop in a stage without one waits for the user).
    ruled = [stage for stage in WORKING_STAGES if draw(st.integers(0, 4))]
    return RuleSet(name=name, kinds=(kind,), stages={stage: draw(stage_rules()) for stage in ruled})


wall_times = st.builds(time, st.integers(0, 23), st.sampled_from([0, 15, 30, 45]))


def quiet_hours(window: tuple[time, int]) -> tuple[time, time]:
    """From ``start`` for ``quarters`` quarter hours (wrapping past midnight)."""
    start, quarters = window
    end = datetime.combine(datetime(2026, 1, 1), start) + quarters * timedelta(minutes=15)
    return (start, end.time())


@st.composite
def all_rules(draw: st.DrawFn) -> Rules:
    quiet = draw(st.none() | st.tuples(wall_times, st.integers(1, 16 * 4)).map(quiet_hours))
    return Rules(
        rule_sets=(
            draw(rule_sets("advice", Kind.ADVICE)),
            draw(rule_sets("intro", Kind.INTRO)),
        ),
        timezone=draw(st.none() | st.sampled_from(ZONES)),
        quiet_hours=quiet,
        business_days_only=draw(st.booleans()),
        reminder_budget=draw(st.sampled_from([None, 1, 1, 2, 3])),
    )


#: Any moment of 2026, in whole seconds (the store's resolution), DST changes included.
starts = st.integers(0, 360 * 86400).map(lambda s: datetime(2026, 1, 1, tzinfo=UTC) + s * SECOND)
offsets = st.integers(-20 * 86400, 20 * 86400).map(lambda s: s * SECOND)


@st.composite
def loops(draw: st.DrawFn, n: int, now: datetime, rules: Rules, stale: Rules) -> Loop:
    kind = draw(st.sampled_from([Kind.ADVICE, Kind.ADVICE, Kind.ADVICE, Kind.INTRO, Kind.MENTEE]))
    stage = draw(
        st.sampled_from([*WORKING_STAGES, *WORKING_STAGES[:3], Stage.SNOOZED, Stage.CLOSED])
    )
    entered = now - draw(st.integers(0, 20 * 86400)) * SECOND
    loop = Loop(
        id=f"loop{n:02d}",
        kind=kind,
        mentor=Person(address=f"mentor{n}@example.org", name=f"Mentor {n}"),
        subject=f"Question {n}?",
        created_at=entered - D,
        stage_entered_at=entered - D,
        message_ids=[f"ask{n}@client.example"],
        ask_excerpt="What would you do?",
        advice_excerpt="Try it small first.",
    )
    loop = stages.record(loop, EventType.CREATED, loop.created_at, f"message <ask{n}@c>")
    changes: dict[str, object] = {"stage": stage, "stage_entered_at": entered}
    if stage is Stage.SNOOZED:
        changes["snoozed_until"] = draw(st.none() | offsets.map(lambda o: now + abs(o)))
        changes["snoozed_from"] = draw(st.sampled_from(WORKING_STAGES))
    else:
        nudges = draw(st.integers(0, 2))
        changes["nudges"] = nudges
        if nudges:
            sent = entered + draw(st.integers(0, 5 * 86400)) * SECOND
            changes["last_reminder_at"] = min(sent, now)
        elif draw(st.booleans()):
            changes["first_reminder_at"] = now + draw(offsets)
    changes["ignored"] = draw(st.integers(0, 3))
    loop = loop.model_copy(update=changes)
    # Planned under the rules in force, or under older ones (the start re-plans it), or never.
    planned_under = draw(st.sampled_from([rules, rules, stale]))
    return loop.model_copy(update={"next_action": plan_next(loop, planned_under)})


@dataclass(frozen=True)
class Case:
    """Loops and rules at ``now``, watched for ``days``; ``timezone`` is the TIMEZONE setting
    (the rules' own zone, when they set one, wins)."""

    now: datetime
    days: int
    rules: Rules
    timezone: str
    loops: tuple[Loop, ...]


@st.composite
def cases(draw: st.DrawFn) -> Case:
    now = draw(starts)
    rules, stale = draw(all_rules()), draw(all_rules())
    count = draw(st.integers(3, 10))
    drawn = tuple(draw(loops(n, now, rules, stale)) for n in range(count))
    return Case(now, draw(st.integers(30, 60)), rules, draw(st.sampled_from(ZONES)), drawn)


# -- the real service over simulated time ----------------------------------------------------

Mail = tuple[datetime, str, str]  # (when, loop id, action key)


@dataclass(frozen=True)
class Run:
    """What `plan` said at the start and half way, and what the service then sent."""

    first: list[Mail]
    second: list[Mail]
    sent: list[Mail]
    half: datetime
    #: Why mails of the first forecast went later than due ("weekly budget", "quiet hours").
    held: frozenset[str]


def predicted(
    store: Store, rules: Rules, tz: ZoneInfo, now: datetime, until: datetime
) -> list[Expected]:
    """What ``mailmentor plan`` says, read from the store as it reads it."""
    open_loops = list(store.loops.open_loops())
    due = store.due.due_times([lp.id for lp in open_loops])
    counted = store.weekly.reminders_in_week(week_start(now, tz))
    expected = forecast(open_loops, rules, tz, now, until, due=due, counted_this_week=counted)
    assert [e.at for e in expected] == sorted(e.at for e in expected), "in time order"
    return expected


def mails(expected: list[Expected]) -> list[Mail]:
    return [(e.at, e.loop.id, e.action.key) for e in expected]


def run_service(case: Case, client: redis.Redis, sink: SmtpSink) -> Run:
    """The case's loops on an empty store, `plan` asked, then the scheduler and the sender
    run pass after pass until the horizon; each queued delivery is sent before the next pass."""
    client.flushall()
    store = open_store(client)
    clock = ManualClock(case.now)
    services = services_on(
        store, "ada@example.com", clock=clock, rules=case.rules, smtp=sink.account,
        timezone=case.timezone,
    )  # fmt: skip
    for loop in case.loops:
        put_loop(store, loop)
    tz = services.scheduler.zone(case.rules)
    until, half = case.now + case.days * D, case.now + case.days * D / 2
    first = predicted(store, case.rules, tz, case.now, until)
    second: list[Expected] | None = None
    mailed = len(sink.messages)
    sent: list[Mail] = []
    dispatch = dispatch_of(services)
    services.scheduler.reconcile()  # as `run` does when it starts
    for _ in range(MAX_PASSES):
        next_due = store.due.next_due()
        if second is None and (next_due is None or next_due >= half):
            clock.set(max(half, clock.now()))
            second = predicted(store, case.rules, tz, clock.now(), until)
        if next_due is None or next_due > until:
            break
        clock.set(max(next_due, clock.now()))
        services.scheduler.tick()
        for loop_id, key in dispatch.deliveries:
            assert isinstance(services.sender.deliver(loop_id, key), Sent)
            sent.append((clock.now(), loop_id, key))
        dispatch.deliveries.clear()
    else:
        pytest.fail(f"the scheduler never ran out of work (stuck at {clock.now()})")
    assert second is not None
    assert len(sink.messages) - mailed == len(sent), "each one mailed once"
    held = frozenset(e.held_by for e in first if e.held_by)
    return Run(mails(first), mails(second), sent, half, held)


@settings(
    max_examples=100,
    deadline=None,
    derandomize=True,  # the same examples on every run: CI is not where a new one turns up
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(case=cases())
def test_plan_predicts_what_the_scheduler_sends(
    case: Case, redis_client: redis.Redis, sink: SmtpSink
) -> None:
    run = run_service(case, redis_client, sink)
    event(f"{min(len(run.sent), 10)} mails sent")
    for reason in sorted(run.held):
        event(f"some held by {reason}")
    assert sorted(run.first) == sorted(run.sent)
    assert sorted(run.second) == sorted(m for m in run.sent if m[0] >= run.half)


def test_a_week_with_a_dst_change_holds_reminders_until_its_monday(
    redis_client: redis.Redis, sink: SmtpSink
) -> None:
    """Found while building this test: clocks go back on 1 November in New York, so 7 × 24 h after
    Monday 26 October 00:00 is Sunday 23:00, still that week. A reminder held by the budget
    came due there, was held again to the same moment, and the scheduler span on it for an
    hour while `plan` gave up on it."""
    budget = Rules(
        rule_sets=(
            RuleSet(
                name="advice", kinds=(Kind.ADVICE,), stages={Stage.ASKED: StageRule(after=2 * D)}
            ),
        ),
        reminder_budget=1,
    )
    now = datetime(2026, 10, 26, 14, 0, tzinfo=UTC)  # Monday, 10:00 in New York
    two = []
    for n in range(2):
        loop = Loop(
            id=f"loop{n:02d}",
            mentor=Person(address=f"mentor{n}@example.org", name=f"Mentor {n}"),
            subject=f"Question {n}?",
            created_at=now,
            stage_entered_at=now,
            message_ids=[f"ask{n}@client.example"],
        )
        two.append(loop.model_copy(update={"next_action": plan_next(loop, budget)}))
    run = run_service(Case(now, 20, budget, "America/New_York", tuple(two)), redis_client, sink)

    monday = datetime(2026, 11, 2, 5, 0, tzinfo=UTC)  # 00:00 in New York, now UTC−5
    assert [(at, loop_id) for at, loop_id, _ in run.sent] == [
        (now + 2 * D, "loop00"),
        (monday, "loop01"),
    ]
    assert run.first == run.sent
