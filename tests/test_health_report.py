"""The health model, pure: reports in, typed problems and the digest's one line out."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from mailmentor.health_report import (
    AuthKind,
    AuthorisationNeeded,
    AuthState,
    ComponentBeat,
    ComponentDown,
    FolderMissing,
    HealthReport,
    NotLoggedIn,
    Retrying,
    SchedulerStalled,
    SendFailures,
    SendsFailed,
    SyncOverdue,
    WatcherHealth,
    WatcherSilent,
    WatcherState,
    WatchMode,
    assess,
    check_failures,
    report_json,
    summary_line,
    watcher_lines,
)

NOW = datetime(2026, 11, 10, 9, 0, tzinfo=UTC)  # a Tuesday
TTL = timedelta(seconds=30)
FRESH = timedelta(seconds=3)

INBOX = WatcherHealth(
    mailbox="ada@imap.example.com:993/INBOX",
    label="ada@imap.example.com/INBOX",
    folder="INBOX",
    owner="host:1:2:3/watch",
    state=WatcherState.RUNNING,
    mode=WatchMode.IDLE,
    logged_in_at=NOW - timedelta(days=1),
    last_sync=NOW - timedelta(minutes=2),
    sync_every=timedelta(minutes=9),
    beat_age=FRESH,
    process_alive=True,
)


def beats(*components: str, age: timedelta = FRESH) -> tuple[ComponentBeat, ...]:
    return tuple(ComponentBeat(c, "host", "host:1:2:3", age) for c in components)


HEALTHY = HealthReport(
    heartbeat_ttl=TTL,
    components=beats("watch", "schedule", "work"),
    scheduler_pass_age=timedelta(seconds=1),
    watchers=(INBOX,),
)


def kinds(report: HealthReport, now: datetime = NOW) -> list[type]:
    return [type(p) for p in assess(report, now)]


def test_a_healthy_service_has_no_problem_and_says_how_it_watches() -> None:
    assert assess(HEALTHY, NOW) == []
    assert summary_line(HEALTHY, NOW) == (
        "mailmentor: all well (watching INBOX by IDLE, last sync 2 min ago)"
    )


def test_several_folders_are_named_with_the_oldest_sync() -> None:
    sent = replace(INBOX, folder="Sent", last_sync=NOW - timedelta(seconds=40))
    polled = replace(INBOX, folder="Mentors", mode=WatchMode.POLLING)
    assert summary_line(replace(HEALTHY, watchers=(INBOX, sent)), NOW) == (
        "mailmentor: all well (watching INBOX and Sent by IDLE, last sync 2 min ago)"
    )
    assert summary_line(replace(HEALTHY, watchers=(polled, INBOX)), NOW) == (
        "mailmentor: all well (watching Mentors by polling and INBOX by IDLE, last sync 2 min ago)"
    )


@pytest.mark.parametrize(
    ("watcher", "expected", "line"),
    [
        (
            replace(INBOX, last_sync=datetime(2026, 11, 3, 14, 2, tzinfo=UTC)),
            SyncOverdue,
            "mailmentor: the watcher of INBOX has not synced since Tue 3 Nov 14:02 — "
            "run `mailmentor status`",
        ),
        (
            replace(INBOX, beat_age=None, last_sync=datetime(2026, 11, 9, 22, 15, tzinfo=UTC)),
            WatcherSilent,
            "mailmentor: the watcher of INBOX has not synced since Mon 9 Nov 22:15 — "
            "run `mailmentor status`",
        ),
        (
            replace(INBOX, beat_age=timedelta(seconds=31)),
            WatcherSilent,
            "mailmentor: the watcher of INBOX has not synced since Tue 10 Nov 08:58 — "
            "run `mailmentor status`",
        ),
        (
            replace(
                INBOX,
                state=WatcherState.CONNECTING,
                logged_in_at=None,
                last_sync=None,
                retrying=Retrying(4, NOW + timedelta(seconds=8), "connection refused"),
            ),
            NotLoggedIn,
            "mailmentor: the watcher of INBOX cannot connect — run `mailmentor status`",
        ),
        (
            replace(INBOX, state=WatcherState.FOLDER_MISSING, folder="Mentors"),
            FolderMissing,
            "mailmentor: the folder 'Mentors' does not exist — run `mailmentor status`",
        ),
        (
            replace(INBOX, state=WatcherState.STOPPED, beat_age=None, process_alive=True),
            WatcherSilent,
            "mailmentor: the watcher of INBOX has not synced since Tue 10 Nov 08:58 — "
            "run `mailmentor status`",
        ),
    ],
)
def test_each_watcher_problem_is_typed_fails_the_check_and_makes_the_line(
    watcher: WatcherHealth, expected: type, line: str
) -> None:
    report = replace(HEALTHY, watchers=(watcher,))
    problems = assess(report, NOW)
    assert [type(p) for p in problems] == [expected]
    assert check_failures(problems) == problems
    assert summary_line(report, NOW) == line


def test_the_sync_allowance_is_the_watchers_interval_plus_one_heartbeat() -> None:
    every = timedelta(minutes=9)
    just_in = replace(INBOX, last_sync=NOW - every - TTL)
    just_out = replace(INBOX, last_sync=NOW - every - TTL - timedelta(seconds=1))
    assert kinds(replace(HEALTHY, watchers=(just_in,))) == []
    overdue = assess(replace(HEALTHY, watchers=(just_out,)), NOW)
    assert [type(p) for p in overdue] == [SyncOverdue]
    assert "allowed 570 s (a sync every 540 s at most + heartbeat TTL 30 s)" in overdue[0].text(NOW)


def test_a_watcher_stopped_with_its_process_is_left_to_the_part_check() -> None:
    gone = replace(INBOX, state=WatcherState.STOPPED, beat_age=None, process_alive=False)
    assert kinds(replace(HEALTHY, watchers=(gone,))) == []
    no_watch = replace(HEALTHY, watchers=(gone,), components=beats("schedule", "work"))
    assert kinds(no_watch) == [ComponentDown]


def test_a_part_with_a_stale_heartbeat_is_down_and_says_the_ttl() -> None:
    stale = beats("watch", "work") + beats("schedule", age=timedelta(seconds=45))
    problems = assess(replace(HEALTHY, components=stale), NOW)
    assert [type(p) for p in problems] == [ComponentDown]
    assert problems[0].text(NOW) == (
        "schedule: not running (last heartbeat 45 s ago; heartbeat TTL 30 s)"
    )
    assert summary_line(replace(HEALTHY, components=stale), NOW) == (
        "mailmentor: no scheduler is running — run `mailmentor status`"
    )


def test_nothing_running_at_all_names_the_first_and_counts_the_rest() -> None:
    report = HealthReport(heartbeat_ttl=TTL)
    assert kinds(report) == [ComponentDown, ComponentDown, ComponentDown]
    assert summary_line(report, NOW) == (
        "mailmentor: no watcher is running (and 2 more) — run `mailmentor status`"
    )


def test_a_scheduler_that_beats_but_passes_no_tick_is_stalled() -> None:
    assert kinds(replace(HEALTHY, scheduler_pass_age=None)) == [SchedulerStalled]


def test_failed_sends_are_said_but_do_not_fail_the_check() -> None:
    sends = SendFailures(failed=2, last_failed_at=NOW, last_failed="reminder l1:x: 550 no")
    report = replace(HEALTHY, sends=sends)
    problems = assess(report, NOW)
    assert [type(p) for p in problems] == [SendsFailed]
    assert check_failures(problems) == []
    assert summary_line(report, NOW) == (
        "mailmentor: 2 sends failed for good — run `mailmentor status`"
    )


BROKEN_AT = datetime(2026, 11, 8, 7, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("auth", "line"),
    [
        (
            AuthState("ada@example.com", AuthKind.REAUTHORISATION_NEEDED, "microsoft", BROKEN_AT),
            "oauth2 ada@example.com: RE-AUTHORISATION NEEDED since 2026-11-08 07:30 UTC "
            "(run `mailmentor connect microsoft`)",
        ),
        (
            AuthState("ada@example.com", AuthKind.NOT_CONNECTED, ""),
            "oauth2 ada@example.com: not connected (run `mailmentor connect PROVIDER`)",
        ),
        (
            AuthState("ada@example.com", AuthKind.UNUSABLE, "google", detail="cannot decrypt"),
            "oauth2 ada@example.com: unusable: cannot decrypt",
        ),
        (
            AuthState("ada@example.com", AuthKind.CONNECTED, "google", BROKEN_AT, "google"),
            "oauth2 ada@example.com: connected to google, last refreshed 2026-11-08 07:30 UTC",
        ),
    ],
)
def test_the_sign_in_renders_as_status_always_printed_it(auth: AuthState, line: str) -> None:
    assert auth.line() == line


def test_a_broken_sign_in_is_a_problem_once() -> None:
    auth = AuthState("ada@example.com", AuthKind.REAUTHORISATION_NEEDED, "google", BROKEN_AT)
    report = replace(HEALTHY, auth=auth)
    assert kinds(report) == [AuthorisationNeeded]
    assert summary_line(report, NOW) == (
        "mailmentor: cannot sign in to ada@example.com since Sun 8 Nov 07:30 — "
        "run `mailmentor status`"
    )
    waiting = replace(INBOX, state=WatcherState.REAUTHORISATION)
    assert kinds(replace(report, watchers=(waiting,))) == [NotLoggedIn], "said once"


def test_times_are_shown_in_the_zone_of_now() -> None:
    from zoneinfo import ZoneInfo

    late = replace(INBOX, last_sync=datetime(2026, 11, 3, 14, 2, tzinfo=UTC))
    report = replace(HEALTHY, watchers=(late,))
    assert "since Tue 3 Nov 09:02" in summary_line(
        report, NOW.astimezone(ZoneInfo("America/New_York"))
    )


def test_the_watcher_lines_carry_every_counter() -> None:
    watcher = replace(
        INBOX,
        uidvalidity_resets=1,
        quarantined=2,
        failed_messages=3,
        last_error=None,
    )
    lines = watcher_lines(watcher, NOW)
    assert lines[0].startswith("watcher ada@imap.example.com/INBOX: running by IDLE; last sync")
    assert "UIDVALIDITY resets: 1, quarantined: 2, messages that failed: 3" in lines[-1]
    retrying = replace(
        INBOX,
        state=WatcherState.RETRYING,
        retrying=Retrying(3, NOW + timedelta(seconds=4), "connection refused"),
    )
    assert (
        "reconnecting / retrying (attempt 3, next in 4 s): connection refused"
        in (watcher_lines(retrying, NOW)[0])
    )


def test_the_json_shape_is_one_object_with_the_problems() -> None:
    report = replace(HEALTHY, watchers=(replace(INBOX, beat_age=None),))
    shown = report_json(report, NOW)
    json.dumps(shown)  # JSON-ready
    assert shown["ok"] is False
    assert shown["checked_at"] == "2026-11-10T09:00:00Z"
    watcher = shown["watchers"][0]  # type: ignore[index]
    assert watcher["mode"] == "IDLE" and watcher["logged_in"] is True
    assert watcher["last_sync"] == "2026-11-10T08:58:00Z"
    problems = shown["problems"]
    assert isinstance(problems, list) and problems[0]["kind"] == "WatcherSilent"
    assert problems[0]["fails_check"] is True


def test_a_long_catch_up_is_work_not_silence() -> None:
    first = replace(INBOX, last_sync=None, last_progress=None)
    assert kinds(replace(HEALTHY, watchers=(first,))) == [], "logged in, first catch-up running"
    long_ago = NOW - timedelta(hours=1)
    busy = replace(INBOX, last_sync=long_ago, last_progress=NOW - timedelta(seconds=5))
    assert kinds(replace(HEALTHY, watchers=(busy,))) == []
    idle = replace(busy, last_progress=long_ago)
    assert kinds(replace(HEALTHY, watchers=(idle,))) == [SyncOverdue]


def test_staleness_goes_by_the_stores_clock_where_it_was_kept() -> None:
    """A simulated month (an injected clock far ahead of the real one) is not a stopped
    watcher: the ages the store measured decide; the times are only shown."""
    simulated = replace(INBOX, last_sync=NOW - timedelta(days=7), sync_age=timedelta(seconds=2))
    assert kinds(replace(HEALTHY, watchers=(simulated,))) == []
    late = replace(INBOX, sync_age=timedelta(minutes=20))
    (problem,) = assess(replace(HEALTHY, watchers=(late,)), NOW)
    assert isinstance(problem, SyncOverdue)
    assert "last sync 20 min ago, allowed 570 s" in problem.text(NOW)
