"""How mailmentor itself is doing, as data: the watchers' records, the heartbeats of the parts,
failed sends and the OAuth2 sign-in; what is wrong with them; and the one line the digest carries.

Pure: `mailmentor.store.health.read_health` gathers a HealthReport from the store, `assess` says
what is wrong (typed problems, each knowing whether it fails `status --check`), `summary_line`
renders the digest's line and `report_json` the shape of `status --json`. Times are aware
datetimes from the clock of the process that wrote them; ages of heartbeats are measured by the
store's own clock, so machines whose clocks disagree still agree on those.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from mailmentor.export import utc_z

#: The parts of mailmentor a deployment needs running (`mailmentor run` runs all three).
COMPONENTS = ("watch", "schedule", "work")


class WatchMode(StrEnum):
    IDLE = "IDLE"
    POLLING = "polling"


class WatcherState(StrEnum):
    """Where a watcher is: nothing is "running" before its first successful login."""

    CONNECTING = "connecting"  # not logged in yet
    RETRYING = "retrying"  # logged in before, lost the connection, trying again
    RUNNING = "running"
    FOLDER_MISSING = "folder missing"
    REAUTHORISATION = "re-authorisation needed"
    STOPPED = "stopped"


@dataclass(frozen=True)
class WatcherError:
    text: str
    at: datetime


@dataclass(frozen=True)
class Retrying:
    """The next try of a watcher that could not connect."""

    attempt: int
    next_at: datetime
    reason: str


@dataclass(frozen=True)
class WatcherHealth:
    """One watched folder, as its (acting) watcher last recorded it."""

    mailbox: str  # the account key: checkpoints and leases use it too
    label: str  # user@host/folder, for people
    folder: str
    owner: str
    state: WatcherState
    mode: WatchMode | None = None
    logged_in_at: datetime | None = None  # the first login of this watcher's run
    last_sync: datetime | None = None
    #: When the watcher last finished a fetch batch: a long catch-up is work, not silence.
    last_progress: datetime | None = None
    #: The ages of the last sync and the last batch by the store's clock, when kept: what
    #: staleness is judged by (the times above are for people, on the writer's clock).
    sync_age: timedelta | None = None
    progress_age: timedelta | None = None
    #: The longest this watcher waits between two syncs (IDLE renewal, or the poll interval).
    sync_every: timedelta = timedelta(minutes=9)
    last_error: WatcherError | None = None
    retrying: Retrying | None = None
    uidvalidity_resets: int = 0
    quarantined: int = 0
    failed_messages: int = 0
    #: The folders that do exist, when this one does not (a few, for the hint).
    existing_folders: tuple[str, ...] = ()
    #: Since the watcher's own heartbeat, by the store's clock; None: it has none (it stopped,
    #: or its heartbeat expired).
    beat_age: timedelta | None = None
    #: Whether the process that runs this watcher still beats (a stopped watcher in a live
    #: process is a problem; one that stopped with its process is not this record's to say).
    process_alive: bool = False


@dataclass(frozen=True)
class ComponentBeat:
    """A process running a part (watch, schedule, work) on a host, and its heartbeat's age."""

    component: str
    host: str
    owner: str
    age: timedelta


@dataclass(frozen=True)
class SendFailures:
    """Sends given up (SMTP 5xx: final) and sends retried (4xx, refused connections)."""

    failed: int = 0
    last_failed_at: datetime | None = None
    last_failed: str = ""  # "key: reason"
    retried: int = 0
    last_retry_at: datetime | None = None
    last_retry: str = ""


class AuthKind(StrEnum):
    CONNECTED = "connected"
    NOT_CONNECTED = "not connected"
    REAUTHORISATION_NEEDED = "re-authorisation needed"
    UNUSABLE = "unusable"


@dataclass(frozen=True)
class AuthState:
    """The OAuth2 sign-in (when IMAP or SMTP uses it)."""

    account: str
    kind: AuthKind
    provider: str  # the setting's provider name, for the command to run
    since: datetime | None = None  # broken since, or last refreshed
    detail: str = ""  # the connected provider, or why the tokens are unusable

    def line(self) -> str:
        """The one line `status` has always printed."""
        connect = f"run `mailmentor connect {self.provider or 'PROVIDER'}`"
        if self.kind is AuthKind.REAUTHORISATION_NEEDED:
            since = _utc(self.since)
            return f"oauth2 {self.account}: RE-AUTHORISATION NEEDED since {since} ({connect})"
        if self.kind is AuthKind.UNUSABLE:
            return f"oauth2 {self.account}: unusable: {self.detail}"
        if self.kind is AuthKind.NOT_CONNECTED:
            return f"oauth2 {self.account}: not connected ({connect})"
        return (
            f"oauth2 {self.account}: connected to {self.detail}, last refreshed {_utc(self.since)}"
        )


@dataclass(frozen=True)
class HealthReport:
    heartbeat_ttl: timedelta
    components: tuple[ComponentBeat, ...] = ()
    #: Since the acting scheduler last finished a pass (store clock); None: none within its TTL.
    scheduler_pass_age: timedelta | None = None
    scheduler_pass_ttl: timedelta = timedelta(seconds=30)
    watchers: tuple[WatcherHealth, ...] = ()
    sends: SendFailures = SendFailures()
    auth: AuthState | None = None
    expected: tuple[str, ...] = COMPONENTS

    def running(self, component: str) -> list[ComponentBeat]:
        """The processes of ``component`` whose heartbeat is fresh."""
        return [
            b for b in self.components if b.component == component and b.age <= self.heartbeat_ttl
        ]


# -- problems ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ComponentDown:
    """No process of a part has a fresh heartbeat."""

    component: str
    last_seen: timedelta | None  # the freshest stale heartbeat's age, if any is left
    ttl: timedelta
    fails_check = True

    def text(self, now: datetime) -> str:
        seen = f"last heartbeat {_secs(self.last_seen)} ago" if self.last_seen else "no heartbeat"
        return f"{self.component}: not running ({seen}; heartbeat TTL {_secs(self.ttl)})"

    def summary(self, now: datetime) -> str:
        return f"no {_PART_NAMES.get(self.component, self.component)} is running"


@dataclass(frozen=True)
class SchedulerStalled:
    """A scheduler process beats, but none finished a pass within the pass TTL."""

    ttl: timedelta
    fails_check = True

    def text(self, now: datetime) -> str:
        return f"schedule: no scheduler pass finished in the last {_secs(self.ttl)}"

    def summary(self, now: datetime) -> str:
        return "the scheduler is stuck"


@dataclass(frozen=True)
class WatcherSilent:
    """A watcher that should be running has no fresh heartbeat (killed, or stuck)."""

    label: str
    folder: str
    last_sync: datetime | None
    ttl: timedelta
    stopped: bool = False  # it said it stopped, though its process runs on
    fails_check = True

    def text(self, now: datetime) -> str:
        how = "stopped, though its process runs" if self.stopped else "no heartbeat"
        return (
            f"watcher {self.label}: {how} (heartbeat TTL {_secs(self.ttl)}); "
            f"{_last_sync(self.last_sync, now)}"
        )

    def summary(self, now: datetime) -> str:
        return _not_synced(self.folder, self.last_sync, now)


@dataclass(frozen=True)
class SyncOverdue:
    label: str
    folder: str
    last_sync: datetime
    age: timedelta  # of the last sync (or batch), by the store's clock where kept
    allowed: timedelta
    sync_every: timedelta
    ttl: timedelta
    fails_check = True

    def text(self, now: datetime) -> str:
        return (
            f"watcher {self.label}: last sync {_ago(self.age)}, allowed "
            f"{_secs(self.allowed)} (a sync every {_secs(self.sync_every)} at most + heartbeat "
            f"TTL {_secs(self.ttl)})"
        )

    def summary(self, now: datetime) -> str:
        return _not_synced(self.folder, self.last_sync, now)


@dataclass(frozen=True)
class NotLoggedIn:
    """Connecting or retrying: the watcher has no working connection."""

    label: str
    folder: str
    state: WatcherState
    retrying: Retrying | None
    last_sync: datetime | None
    fails_check = True

    def text(self, now: datetime) -> str:
        return f"watcher {self.label}: {_retry_text(self.state, self.retrying, now)}"

    def summary(self, now: datetime) -> str:
        if self.last_sync is None:
            return f"the watcher of {self.folder} cannot connect"
        return _not_synced(self.folder, self.last_sync, now)


@dataclass(frozen=True)
class FolderMissing:
    label: str
    folder: str
    existing: tuple[str, ...]
    fails_check = True

    def text(self, now: datetime) -> str:
        there = f" (folders there: {_few(self.existing)})" if self.existing else ""
        return f"watcher {self.label}: folder {self.folder!r} does not exist{there}"

    def summary(self, now: datetime) -> str:
        return f"the folder {self.folder!r} does not exist"


@dataclass(frozen=True)
class AuthorisationNeeded:
    auth: AuthState
    fails_check = True

    def text(self, now: datetime) -> str:
        return self.auth.line()

    def summary(self, now: datetime) -> str:
        since = f" since {_when(self.auth.since, now)}" if self.auth.since else ""
        return f"cannot sign in to {self.auth.account}{since}"


@dataclass(frozen=True)
class SendsFailed:
    """Sends given up for good: worth saying, not a health check failure (nothing stopped)."""

    sends: SendFailures
    fails_check = False

    def text(self, now: datetime) -> str:
        when = f" at {_when(self.sends.last_failed_at, now)}" if self.sends.last_failed_at else ""
        return (
            f"sends: {self.sends.failed} failed for good, the last{when}: {self.sends.last_failed}"
        )

    def summary(self, now: datetime) -> str:
        noun = "send" if self.sends.failed == 1 else "sends"
        return f"{self.sends.failed} {noun} failed for good"


Problem = (
    ComponentDown
    | SchedulerStalled
    | WatcherSilent
    | SyncOverdue
    | NotLoggedIn
    | FolderMissing
    | AuthorisationNeeded
    | SendsFailed
)


def assess(report: HealthReport, now: datetime) -> list[Problem]:
    """What is wrong, most telling first: parts not running, then each watcher, the sign-in and
    failed sends. ``now`` is on the clock the watchers recorded their times with."""
    problems: list[Problem] = []
    ttl = report.heartbeat_ttl
    for component in report.expected:
        if report.running(component):
            continue
        stale = [b.age for b in report.components if b.component == component]
        problems.append(ComponentDown(component, min(stale) if stale else None, ttl))
    if report.running("schedule") and report.scheduler_pass_age is None:
        problems.append(SchedulerStalled(report.scheduler_pass_ttl))
    for watcher in report.watchers:
        problem = _watcher_problem(watcher, ttl, now)
        if problem is not None:
            problems.append(problem)
    auth = report.auth
    if (
        auth is not None
        and auth.kind is AuthKind.REAUTHORISATION_NEEDED
        and not any(w.state is WatcherState.REAUTHORISATION for w in report.watchers)
    ):
        problems.append(AuthorisationNeeded(auth))
    if report.sends.failed:
        problems.append(SendsFailed(report.sends))
    return problems


def _watcher_problem(w: WatcherHealth, ttl: timedelta, now: datetime) -> Problem | None:
    if w.state is WatcherState.STOPPED:
        # Stopped with its process: `watch` not running says it, if nothing else watches.
        if w.process_alive:
            return WatcherSilent(w.label, w.folder, w.last_sync, ttl, stopped=True)
        return None
    if w.beat_age is None or w.beat_age > ttl:
        return WatcherSilent(w.label, w.folder, w.last_sync, ttl)
    if w.state is WatcherState.FOLDER_MISSING:
        return FolderMissing(w.label, w.folder, w.existing_folders)
    if w.state is WatcherState.REAUTHORISATION:
        return NotLoggedIn(w.label, w.folder, w.state, None, w.last_sync)
    if w.state in (WatcherState.CONNECTING, WatcherState.RETRYING):
        return NotLoggedIn(w.label, w.folder, w.state, w.retrying, w.last_sync)
    allowed = w.sync_every + ttl
    ages = [a for a in (w.sync_age, w.progress_age) if a is not None]
    if not ages:  # not kept: by the times, on the writer's clock
        ages = [now - t for t in (w.last_sync, w.last_progress) if t is not None]
    if not ages:
        return None  # logged in, catching up for the first time (its heartbeat is fresh)
    if min(ages) > allowed:
        since = w.last_sync or w.last_progress or now - min(ages)
        return SyncOverdue(w.label, w.folder, since, min(ages), allowed, w.sync_every, ttl)
    return None


def check_failures(problems: Sequence[Problem]) -> list[Problem]:
    """The problems that make `status --check` exit 1."""
    return [p for p in problems if p.fails_check]


def summary_line(report: HealthReport, now: datetime) -> str:
    """One line on mailmentor itself, for the weekly digest: all well (how it watches, when it
    last synced), or the most telling problem and the command that says more. Times are shown
    in ``now``'s time zone."""
    problems = assess(report, now)
    if problems:
        first = problems[0].summary(now)
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        return f"mailmentor: {first}{more} — run `mailmentor status`"
    watching = [w for w in report.watchers if w.state is WatcherState.RUNNING]
    if not watching:
        return "mailmentor: all well"
    synced = [w.last_sync for w in watching if w.last_sync is not None]
    last = f", last sync {_ago(now - min(synced))}" if synced else ""
    return f"mailmentor: all well (watching {_watching(watching)}{last})"


def _watching(watchers: Sequence[WatcherHealth]) -> str:
    modes = {w.mode for w in watchers}
    if len(modes) == 1:
        mode = next(iter(modes))
        return f"{_join([w.folder for w in watchers])}" + (f" by {mode}" if mode else "")
    return _join([f"{w.folder} by {w.mode}" if w.mode else w.folder for w in watchers])


# -- JSON --------------------------------------------------------------------------------------


def report_json(report: HealthReport, now: datetime) -> dict[str, object]:
    """`status --json`: the report and its problems as one JSON-ready object."""
    problems = assess(report, now)
    return {
        "ok": not check_failures(problems),
        "checked_at": utc_z(now),
        "heartbeat_ttl_s": report.heartbeat_ttl.total_seconds(),
        "components": {
            name: [
                {"host": b.host, "owner": b.owner, "beat_age_s": _seconds(b.age)}
                for b in report.components
                if b.component == name
            ]
            for name in report.expected
        },
        "scheduler_pass_age_s": _seconds(report.scheduler_pass_age),
        "watchers": [_watcher_json(w) for w in report.watchers],
        "sends": {
            "failed": report.sends.failed,
            "last_failed_at": utc_z(report.sends.last_failed_at),
            "last_failed": report.sends.last_failed or None,
            "retried": report.sends.retried,
            "last_retry_at": utc_z(report.sends.last_retry_at),
            "last_retry": report.sends.last_retry or None,
        },
        "auth": None
        if report.auth is None
        else {
            "account": report.auth.account,
            "state": str(report.auth.kind),
            "since": utc_z(report.auth.since),
            "line": report.auth.line(),
        },
        "problems": [
            {"kind": type(p).__name__, "text": p.text(now), "fails_check": p.fails_check}
            for p in problems
        ],
        "summary": summary_line(report, now),
    }


def _watcher_json(w: WatcherHealth) -> dict[str, object]:
    return {
        "mailbox": w.mailbox,
        "label": w.label,
        "folder": w.folder,
        "owner": w.owner,
        "state": str(w.state),
        "mode": str(w.mode) if w.mode else None,
        "logged_in": w.logged_in_at is not None,
        "logged_in_at": utc_z(w.logged_in_at),
        "last_sync": utc_z(w.last_sync),
        "sync_every_s": w.sync_every.total_seconds(),
        "last_error": None if w.last_error is None else w.last_error.text,
        "last_error_at": None if w.last_error is None else utc_z(w.last_error.at),
        "retrying": None
        if w.retrying is None
        else {
            "attempt": w.retrying.attempt,
            "next_at": utc_z(w.retrying.next_at),
            "reason": w.retrying.reason,
        },
        "uidvalidity_resets": w.uidvalidity_resets,
        "quarantined": w.quarantined,
        "failed_messages": w.failed_messages,
        "existing_folders": list(w.existing_folders),
        "beat_age_s": _seconds(w.beat_age),
    }


# -- rendering ---------------------------------------------------------------------------------

_PART_NAMES = {"watch": "watcher", "schedule": "scheduler", "work": "send worker"}


def watcher_lines(w: WatcherHealth, now: datetime) -> list[str]:
    """What `status` prints for one watcher: its state line, then the counters."""
    if w.state in (WatcherState.CONNECTING, WatcherState.RETRYING):
        head = _retry_text(w.state, w.retrying, now)
    elif w.state is WatcherState.FOLDER_MISSING:
        head = f"folder {w.folder!r} does not exist"
        if w.existing_folders:
            head += f" (there: {_few(w.existing_folders)})"
    else:
        head = str(w.state)
        if w.mode is not None and w.state is WatcherState.RUNNING:
            head += f" by {w.mode}"
    sync = _last_sync(w.last_sync, now)
    every = f" (at least every {_secs(w.sync_every)})" if w.state is WatcherState.RUNNING else ""
    login = f"logged in {_when(w.logged_in_at, now)}" if w.logged_in_at else "not logged in yet"
    beat = f"heartbeat {_secs(w.beat_age)} ago" if w.beat_age is not None else "no heartbeat"
    lines = [f"watcher {w.label}: {head}; {sync}{every}; {login}; {beat}"]
    if w.last_error is not None:
        lines.append(f"  last error {_when(w.last_error.at, now)}: {w.last_error.text}")
    lines.append(
        f"  UIDVALIDITY resets: {w.uidvalidity_resets}, quarantined: {w.quarantined}, "
        f"messages that failed: {w.failed_messages}"
    )
    return lines


def sends_line(s: SendFailures, now: datetime) -> str:
    line = f"sends failed for good: {s.failed}"
    if s.failed:
        line += f" (last {_when(s.last_failed_at, now)}: {s.last_failed})"
    line += f"; retried: {s.retried}"
    if s.retried:
        line += f" (last {_when(s.last_retry_at, now)}: {s.last_retry})"
    return line


def _retry_text(state: WatcherState, retrying: Retrying | None, now: datetime) -> str:
    if state is WatcherState.REAUTHORISATION:
        return "waiting for the OAuth2 sign-in to be renewed (run `mailmentor connect`)"
    what = "connecting" if state is WatcherState.CONNECTING else "reconnecting"
    if retrying is None:
        return what
    wait = max(timedelta(0), retrying.next_at - now)
    return (
        f"{what} / retrying (attempt {retrying.attempt}, next in {_secs(wait)}): {retrying.reason}"
    )


def _not_synced(folder: str, last_sync: datetime | None, now: datetime) -> str:
    if last_sync is None:
        return f"the watcher of {folder} has never synced"
    return f"the watcher of {folder} has not synced since {_when(last_sync, now)}"


def _last_sync(last_sync: datetime | None, now: datetime) -> str:
    return f"last sync {_ago(now - last_sync)}" if last_sync else "never synced"


def _few(names: Sequence[str], at_most: int = 6) -> str:
    shown = ", ".join(names[:at_most])
    return f"{shown}, and {len(names) - at_most} more" if len(names) > at_most else shown


def _join(names: Sequence[str]) -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def _when(moment: datetime | None, now: datetime) -> str:
    """``Tue 3 Nov 14:02`` in ``now``'s zone (the year when it is not this one's)."""
    if moment is None:
        return "never"
    local = moment.astimezone(now.tzinfo)
    year = f" {local.year}" if local.year != now.year else ""
    return f"{local:%a} {local.day} {local:%b}{year} {local:%H:%M}"


def _ago(age: timedelta) -> str:
    seconds = max(0, int(age.total_seconds()))
    if seconds < 90:
        return f"{seconds} s ago"
    if seconds < 90 * 60:
        return f"{round(seconds / 60)} min ago"
    if seconds < 36 * 3600:
        return f"{round(seconds / 3600)} h ago"
    return f"{round(seconds / 86400)} days ago"


def _secs(span: timedelta | None) -> str:
    if span is None:
        return "?"
    seconds = span.total_seconds()
    return f"{seconds:.0f} s" if seconds >= 10 or seconds == int(seconds) else f"{seconds:.1f} s"


def _seconds(span: timedelta | None) -> float | None:
    return None if span is None else round(span.total_seconds(), 3)


def _utc(moment: datetime | None) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if moment else "?"
