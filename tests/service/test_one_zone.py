"""One time zone for everything: TIMEZONE, unless a rule file sets one (the shipped rules do
not). Found in the issue: with TIMEZONE=America/New_York and quiet hours 15:00–16:00, the
shipped `timezone: UTC` won and a reminder went out at 15:37 New York time."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from mailmentor import intake
from mailmentor.clock import ManualClock
from mailmentor.parsing.commands import Command, CommandName
from mailmentor.rules import default_rules_dir, load_rules
from mailmentor.service.scheduler import Defer, decide_due
from mailmentor.store import Store
from tests.service._support import advised_loop, shipped
from tests.service_factory import services_on

NY = ZoneInfo("America/New_York")


def test_the_shipped_rules_leave_the_time_zone_to_the_setting() -> None:
    rules = load_rules(default_rules_dir())
    assert rules.timezone is None
    assert rules.zone_or(NY) is NY
    assert shipped(timezone="Asia/Tokyo").zone_or(NY) == ZoneInfo("Asia/Tokyo"), "a file may"


def test_quiet_hours_are_read_in_the_timezone_setting(store: Store) -> None:
    due = datetime(2026, 1, 5, 20, 37, tzinfo=UTC)  # a Monday, 15:37 in New York
    clock = ManualClock(due - timedelta(days=2))
    quiet = shipped(quiet_hours=(time(15, 0), time(16, 0)))
    services = services_on(
        store, "ada@example.com", clock=clock, rules=quiet, timezone="America/New_York"
    )
    loop = advised_loop(services, at=due - timedelta(days=2))
    assert loop.next_action is not None and loop.next_action.due_at == due
    zone = services.scheduler.zone(quiet)
    assert zone == NY
    decided = decide_due(loop.id, loop, quiet, due, zone)
    assert decided == Defer(loop, datetime(2026, 1, 5, 21, 0, tzinfo=UTC)), "16:00 there"
    clock.set(due + timedelta(seconds=1))
    report = services.scheduler.tick()
    assert (report.queued, report.deferred) == (0, 1), "nothing sent at 15:37 New York time"
    assert store.due.due_at(loop.id) == datetime(2026, 1, 5, 21, 0, tzinfo=UTC)


def test_quiet_hours_end_at_local_time_across_a_dst_change(store: Store) -> None:
    """8 March 2026: New York moves from UTC−5 to UTC−4; 08:00 is 12:00 UTC, no longer 13:00."""
    quiet = shipped(quiet_hours=(time(21, 0), time(8, 0)))
    services = services_on(store, "ada@example.com", rules=quiet, timezone="America/New_York")
    before = datetime(2026, 3, 7, 2, 0, tzinfo=NY).astimezone(UTC)
    after = datetime(2026, 3, 9, 2, 0, tzinfo=NY).astimezone(UTC)
    for at, wakes in ((before, datetime(2026, 3, 7, 13, 0)), (after, datetime(2026, 3, 9, 12, 0))):
        loop = advised_loop(services, f"l{at.day}", at=at - timedelta(days=2))
        assert loop.next_action is not None
        decided = decide_due(loop.id, loop, quiet, at, services.scheduler.zone(quiet))
        assert isinstance(decided, Defer)
        assert decided.until == wakes.replace(tzinfo=UTC)


def test_commands_and_mails_use_the_rule_files_zone_when_one_sets_it(store: Store) -> None:
    tokyo = shipped(timezone="Asia/Tokyo")
    services = services_on(store, "ada@example.com", rules=tokyo, timezone="America/New_York")
    assert services.intake.zone() == ZoneInfo("Asia/Tokyo")
    assert services.sender.context().timezone == ZoneInfo("Asia/Tokyo")
    loop = advised_loop(services)
    now = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)  # Monday 18:00 in Tokyo
    snoozed = intake.apply_command(
        loop, Command(CommandName.SNOOZE, "until friday"), now, services.intake.zone(), "m@x"
    )
    assert snoozed.snoozed_until == datetime(2026, 1, 9, 9, 0, tzinfo=ZoneInfo("Asia/Tokyo"))
