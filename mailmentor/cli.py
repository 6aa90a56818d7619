"""The `mailmentor` command line: run the service, try the demo, backfill a folder, look at loops,
check rules."""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import logging
import os
import re
import signal
import socket
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import Any
from zoneinfo import ZoneInfo

import redis

from mailmentor import __version__
from mailmentor.app import connect_store, imap_account, smtp_account
from mailmentor.clock import SystemClock
from mailmentor.delivery import week_start
from mailmentor.embedded_redis import EmbeddedRedis, running_url
from mailmentor.errors import ConfigError, MailmentorError, RulesError, StoreBusy
from mailmentor.forecast import forecast
from mailmentor.health_report import (
    HealthReport,
    assess,
    check_failures,
    report_json,
    sends_line,
    summary_line,
    watcher_lines,
)
from mailmentor.liveness import describe_owner
from mailmentor.model import Event, Loop, Person
from mailmentor.people import PersonRecord
from mailmentor.relationships import Move, PersonSummary, Standing
from mailmentor.rules import Rules, default_rules_dir, load_rules
from mailmentor.rules.loader import load_rules_file
from mailmentor.sandbox import require_demo_servers
from mailmentor.service.outcomes import Handled, Outcome
from mailmentor.settings import ENV_PREFIX, Settings, load_settings
from mailmentor.store import Store
from mailmentor.store.changes import Committed
from mailmentor.store.health import read_health
from mailmentor.store.redis_urls import redact_url

DESCRIPTION = """\
mailmentor helps you close every advice loop: act on advice, report back, give back.
BCC it when you ask someone for advice, forward it the answer, and it emails you reminders
at the cadence of your rule files. Reply to a reminder with one line (done, reported,
gave back, snooze 3d, stop, help) to move the loop on.

Configuration comes from MAILMENTOR_* environment variables (or a .env file); with none
at all, `run` uses an embedded Redis and a local demo mailbox. See README.md."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mailmentor",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"mailmentor {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug detail")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    sub.add_parser(
        "run",
        help="watch the mailbox, schedule and send reminders (all in one process)",
        description="Run watcher, scheduler and send workers until Ctrl-C.",
    )
    for name, does in PARTS.items():
        sub.add_parser(
            name,
            help=f"run {does} only (the processes run apart, on one machine or many)",
            description=f"Run {does} only, until Ctrl-C. With `watch`, `schedule` and `work`"
            " the parts of `mailmentor run` run as processes of their own, on one machine or"
            " many, all on the Redis named by MAILMENTOR_REDIS_URL (required). Any number of"
            " each may run: watchers of one mailbox and schedulers take turns through leases,"
            " send workers share the queue.",
        )
    status = sub.add_parser(
        "status",
        help="how mailmentor is doing: parts, watchers, sends, sign-in (--check: exit 0/1)",
        description="Print the processes that run now (watchers, schedulers, send workers, by "
        "host, with their heartbeats' age), which one holds each lease, each watcher's state "
        "(last sync, IDLE or polling, last error, UIDVALIDITY resets, quarantined messages), "
        "failed sends, the OAuth2 sign-in, and what is scheduled, in flight and waiting. "
        "--json prints the same as one JSON object. --check COMPONENT (watch, schedule or "
        "work) prints one line and exits 0 if a process of that component runs on this host, "
        "1 if not: a container's health check. --check alone checks everything that should "
        "run: it exits 1 when any part's heartbeat is older than HEARTBEAT_SECONDS, or a "
        "watcher is not logged in, silent, or has not synced for longer than it may.",
    )
    status.add_argument(
        "--check",
        nargs="?",
        const="all",
        choices=(*PARTS, "all"),
        metavar="COMPONENT",
        help="exit 1 when COMPONENT (watch, schedule, work; default: all) is not healthy",
    )
    status.add_argument("--json", action="store_true", help="print one JSON object")
    connect = sub.add_parser(
        "connect",
        help="sign in to the mailbox with OAuth2, once (microsoft, google or generic)",
        description="Authorise mailmentor to read and send as the mailbox (IMAP_USER) with "
        "OAuth2, the way mail clients sign in: Microsoft with a code you enter in any browser "
        "(works over SSH), Google in a browser that comes back to this machine, generic as "
        "OAUTH_DEVICE_URL or OAUTH_AUTHORIZATION_URL say. The tokens are kept encrypted in the "
        "store; set IMAP_AUTH=oauth2 and SMTP_AUTH=oauth2 to use them. Run it again whenever "
        "mailmentor says the authorisation was withdrawn.",
    )
    connect.add_argument(
        "provider",
        nargs="?",
        choices=("microsoft", "google", "generic"),
        help="default: MAILMENTOR_OAUTH_PROVIDER",
    )
    connect.add_argument(
        "--status", action="store_true", help="show what is connected (never the tokens)"
    )
    connect.add_argument(
        "--port",
        type=int,
        default=0,
        help="browser sign-in: the 127.0.0.1 port to come back to (default: any free one; "
        "fix one to forward it over SSH before you start)",
    )
    sub.add_parser(
        "disconnect",
        help="forget the mailbox's OAuth2 tokens",
        description="Delete the OAuth2 tokens kept for IMAP_USER. Revoke mailmentor's access "
        "at the provider too (Microsoft: myapps.microsoft.com; Google: "
        "myaccount.google.com/permissions).",
    )
    sub.add_parser(
        "check",
        help="try every configured connection once (Redis, IMAP, SMTP) and say what to fix",
        description="Connect to Redis, log in to IMAP and open every folder mailmentor would "
        "open, and log in to SMTP, exactly as the service does, then leave: nothing is read, "
        "marked or sent. Prints one line per check (ok, skip or FAIL, with what to fix) and "
        "exits 0 when nothing failed, 1 otherwise.",
    )
    sub.add_parser(
        "demo",
        help="a self-contained demo: a whole advice loop on local servers in under a minute",
        description="Start local Redis, IMAP and SMTP servers, BCC a sample advice request, "
        "forward the answer, and reply to each reminder until the loop closes.",
    )
    loops = sub.add_parser(
        "loops",
        help="list loops",
        description="List the open loops (with --all also closed and dropped ones): id, stage, "
        "mentor, subject and when the next reminder is due. `mailmentor show ID` shows one.",
    )
    loops.add_argument(
        "--json", action="store_true", help="machine-readable output (always every loop)"
    )
    loops.add_argument("--all", action="store_true", help="include closed and dropped loops")
    show = sub.add_parser(
        "show",
        help="show one loop and its whole history, or one person's timeline",
        description="Show one loop (the ID from `mailmentor loops`): its mentor, subject, stage, "
        "excerpts, next reminder, and every event of its history with time and source. Given a "
        "person (an email address, or a part of a name only one person has) instead: their "
        "timeline, how the relationship stands and every loop with them, each event in time "
        "order. Times are in your time zone; --json writes them in UTC.",
    )
    show.add_argument("target", metavar="ID|PERSON", help="a loop id, an address or a name")
    show.add_argument("--json", action="store_true", help="machine-readable output")
    mentors = sub.add_parser(
        "mentors",
        help="the relationship record: per person what was asked, received, given and owed",
        description="One row per person you dealt with: asks (loops you started with them), "
        "advice received, reports back, gives (gave-back loops and mentor+gave@), how often "
        "they asked you (mentee loops, counted apart), first and last contact, how old the "
        "relationship is, the median days from advice to acting and from acting to reporting, "
        "and what you owe them now. Those you owe something come first.",
    )
    mentors.add_argument("--json", action="store_true", help="machine-readable output")
    export = sub.add_parser(
        "export",
        help="every loop and every event, as JSON or CSV",
        description="Write every loop (open, closed and dropped) with every event of its "
        'history. JSON: one document {"loops": [...], "gifts": [...]}, each loop as '
        "`loops --json` prints it, with its events. CSV: one row per event, the loop's columns "
        "repeated on each (gifts are in the JSON only). Times are ISO 8601 in UTC. --output "
        "writes a file atomically (all or nothing) and says on stderr what it wrote.",
    )
    export.add_argument("--format", choices=("json", "csv"), default="json", help="default json")
    export.add_argument("--output", type=Path, metavar="FILE", help="default: standard output")

    rules = sub.add_parser("rules", help="rule file commands")
    rules_sub = rules.add_subparsers(dest="rules_command", metavar="SUBCOMMAND", required=True)
    check = rules_sub.add_parser("check", help="validate rule files; print every problem")
    check.add_argument(
        "directory",
        nargs="?",
        type=Path,
        metavar="DIR",
        help="a rule directory or one rule file (default: MAILMENTOR_RULES_DIR, else rules/)",
    )

    plan = sub.add_parser(
        "plan",
        help="dry run: reminders the next N days would bring",
        description="Print, without sending anything, the reminders the next N days would bring "
        "for the open loops under the rule files (or those of --rules DIR, to try edits "
        "before installing them).",
    )
    plan.add_argument(
        "--days",
        type=plan_days,
        default=30,
        help=f"how far ahead, 1 to {MAX_PLAN_DAYS} (default 30)",
    )
    plan.add_argument("--rules", type=Path, metavar="DIR", help="use these rule files instead")

    digest = sub.add_parser(
        "digest",
        help="print this week's digest as it would be mailed now (--html FILE, --send-now)",
        description="Print the weekly digest as it would be mailed now: what your move is "
        "(numbered: a reply such as `2 done` acts on line 2), what waits on others, what closed "
        "this week, how each relationship stands, and what to learn next. When it is mailed is "
        "set by `digest:` in the rule files; --send-now mails one at once (SMTP settings "
        "needed), with its own line numbers.",
    )
    digest.add_argument(
        "--html", type=Path, metavar="FILE", help="write the HTML part to FILE (for a browser)"
    )
    digest.add_argument(
        "--text", action="store_true", help="print the plain-text part (the default without --html)"
    )
    digest.add_argument("--send-now", action="store_true", help="mail a digest to you now")

    forget = sub.add_parser(
        "forget",
        help="delete everything kept about one person (their loops and what you gave them)",
        description="Delete every loop with this person as the mentor (history, excerpts, "
        "thread index, schedule) and the value you recorded giving them. Only opaque "
        "Message-IDs of mail already handled stay, so that mail is not tracked again.",
    )
    forget.add_argument("address", metavar="ADDRESS", help="their email address")
    forget.add_argument("--yes", action="store_true", help="do it without asking")

    backfill = sub.add_parser(
        "import",
        help="backfill: feed a folder's existing mail (e.g. Sent) through mailmentor once",
        description="Read every message of one folder of the configured IMAP account and handle "
        "it as if it had just arrived: your sent advice requests become loops, forwards advance "
        "them. Nothing is marked read and the watcher is not affected; running it again changes "
        "nothing. Exits 1 when some messages failed (they are logged), 2 on a setup problem.",
    )
    backfill.add_argument("--folder", required=True, metavar="NAME", help="folder, e.g. Sent")
    backfill.add_argument(
        "--since",
        type=parse_since,
        metavar="YYYY-MM-DD",
        help="only mail the server received on or after this day",
    )
    return parser


_ISO_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


def parse_since(text: str) -> date:
    """``--since``: a calendar day written YYYY-MM-DD, nothing looser."""
    try:
        if _ISO_DAY.fullmatch(text.strip()):
            return date.fromisoformat(text.strip())
    except ValueError:
        pass
    raise argparse.ArgumentTypeError(f"{text!r} is not a date (use YYYY-MM-DD, e.g. 2026-01-31)")


def main(argv: list[str] | None = None) -> int:
    try:
        return _main(argv)
    except BrokenPipeError:  # `mailmentor loops | head`: the reader has all it wanted
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # and the exit's flush must not fail again
        return 1


def _main(argv: list[str] | None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    for noisy in ("dramatiq", "pika", "asyncio", "mail.log", "pymap"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    settings: Settings | None = None
    try:
        if args.command == "rules":
            return rules_check(args.directory)
        settings = load_settings()
        return _COMMANDS[args.command](settings, args)
    except MailmentorError as exc:
        for line in str(exc).splitlines() or [type(exc).__name__]:
            print(f"mailmentor: error: {line}", file=sys.stderr)
        return 2

    except (redis.ConnectionError, redis.TimeoutError) as exc:
        # An unreachable Redis is a setup problem: one line naming it, not a traceback.
        print(f"mailmentor: error: {redis_problem(settings, exc)}", file=sys.stderr)
        return 2


def _demo(settings: Settings, args: argparse.Namespace) -> int:
    require_demo_servers(
        "the demo mailbox",
        "the local SMTP sink",
        needed_by="`mailmentor demo`",
    )
    from workers.demo import run_demo

    return run_demo()


#: What each subcommand (but `rules`, which needs no settings) runs.
_COMMANDS: dict[str, Callable[[Settings, argparse.Namespace], int]] = {
    "run": lambda settings, args: run(settings),
    "watch": lambda settings, args: part(settings, "watch"),
    "schedule": lambda settings, args: part(settings, "schedule"),
    "work": lambda settings, args: part(settings, "work"),
    "status": lambda settings, args: status(settings, check=args.check, as_json=args.json),
    "check": lambda settings, args: check_connections(settings),
    "connect": lambda settings, args: connect_account(
        settings, args.provider, args.status, args.port
    ),
    "disconnect": lambda settings, args: disconnect_account(settings),
    "demo": _demo,
    "loops": lambda settings, args: list_loops(settings, as_json=args.json, include_ended=args.all),
    "show": lambda settings, args: show_loop(settings, args.target, as_json=args.json),
    "mentors": lambda settings, args: show_mentors(settings, as_json=args.json),
    "export": lambda settings, args: export_all(settings, fmt=args.format, output=args.output),
    "plan": lambda settings, args: show_plan(settings, days=args.days, rules_dir=args.rules),
    "forget": lambda settings, args: forget_person(settings, args.address, confirmed=args.yes),
    "digest": lambda settings, args: show_digest(
        settings, html=args.html, text=args.text, send_now=args.send_now
    ),
    "import": lambda settings, args: import_mail(settings, folder=args.folder, since=args.since),
}


def plural(count: int, noun: str) -> str:
    """``1 loop``, ``2 loops``."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def redis_problem(settings: Settings | None, exc: Exception) -> str:
    """One line naming the Redis that failed, without the password of its URL."""
    reason = " ".join(str(exc).split()) or type(exc).__name__
    if settings is not None and settings.redis_url:
        where = redact_url(settings.redis_url)
        return f"MAILMENTOR_REDIS_URL: cannot reach Redis at {where}: {reason}"
    where = str(settings.data_dir) if settings is not None else "the data directory"
    return f"cannot reach the embedded Redis of {where}: {reason}"


def run(
    settings: Settings, *, watcher: bool = True, scheduler: bool = True, workers: bool = True
) -> int:
    from workers.stack import Stack

    stack = Stack(settings, watcher=watcher, scheduler=scheduler, workers=workers)

    def stop(signum: int, frame: FrameType | None) -> None:
        stack.stop_event.set()

    signal.signal(signal.SIGTERM, stop)
    stack.start()  # says "running" once every watcher has logged in (workers.stack)
    try:
        while not stack.stop_event.wait(1.0):
            pass
    except KeyboardInterrupt:
        pass
    logging.getLogger("mailmentor.run").info("stopping")
    stack.stop()
    return 0


#: The parts of `mailmentor run` that run on their own, and what each runs.
PARTS = {
    "watch": "the watcher(s) of the mailbox",
    "schedule": "the scheduler",
    "work": "the send workers (reminders, replies, digests)",
}


def part(settings: Settings, name: str) -> int:
    """`watch`, `schedule` or `work`: one part of `mailmentor run`, on a shared Redis."""
    if not settings.redis_url:
        raise ConfigError(
            f"{ENV_PREFIX}REDIS_URL: required by `mailmentor {name}` (the Redis every part "
            "shares; `mailmentor run` runs all parts in one process on an embedded one)"
        )
    return run(
        settings, watcher=name == "watch", scheduler=name == "schedule", workers=name == "work"
    )


def status(settings: Settings, *, check: str | None, as_json: bool = False) -> int:
    """`mailmentor status [--json] [--check [COMPONENT]]`: the health of every part (see
    `mailmentor.health_report`); ``check`` "all" exits 1 on any problem that fails a check."""
    host = socket.gethostname()
    with open_store(settings) as store:
        if check is not None and check != "all":
            if store.health.component_alive(check, host):
                print(f"{check}: running on {host}")
                return 0
            print(f"{check}: not running on {host}", file=sys.stderr)
            return 1
        report = read_health(store, settings)
        now = SystemClock().now()
        if check == "all":
            return check_everything(report, now, as_json=as_json)
        problems = assess(report, now)
        scheduler = store.leases.holder("scheduler")
        leases = {
            key.removeprefix(store.ns.key("lease", "watch:")): holder
            for key, holder in store.leases.holders("watch:")
        }
        queues = {
            "loops_scheduled": store.due.count(),
            "being_sent": len(store.due.claims()),
            "other_mail_waiting": len(store.outbox.pending()),
        }
        where = redact_url(settings.redis_url) or "embedded"
        if as_json:
            shown = report_json(report, now)
            shown.update(
                store=where,
                user=settings.user_id,
                scheduler_lease=scheduler,
                watch_leases=dict(sorted(leases.items())),
                **queues,
            )
            print(json.dumps(shown, indent=2))
            return 0
        print(f"store: {where}, user {settings.user_id}")
        for name in PARTS:
            running = report.running(name)
            per_host = Counter(b.host for b in running)
            hosts = ", ".join(f"{h} ({n})" if n > 1 else h for h, n in per_host.items()) or "none"
            ages = [b.age.total_seconds() for b in running]
            age = f" (heartbeat {max(ages):.0f} s ago)" if ages else ""
            print(f"  {name:<9} running on: {hosts}{age}")
        passed = report.scheduler_pass_age
        last_pass = f", last pass {passed.total_seconds():.1f} s ago" if passed is not None else ""
        held = describe_owner(scheduler) if scheduler else "free"
        print(f"  scheduler lease: {held}{last_pass}")
        for mailbox, holder in sorted(leases.items()):
            print(f"  watching {mailbox}: {describe_owner(holder)}")
        for watcher in report.watchers:
            for line in watcher_lines(watcher, now):
                print(f"  {line}")
        print(
            f"  loops scheduled: {queues['loops_scheduled']}, being sent: "
            f"{queues['being_sent']}, other mail waiting: {queues['other_mail_waiting']}"
        )
        print(f"  {sends_line(report.sends, now)}")
        if report.auth is not None:
            print(f"  {report.auth.line()}")
        print(f"  heartbeat TTL: {settings.heartbeat_seconds:g} s (HEARTBEAT_SECONDS)")
        if problems:
            print("problems:")
            for problem in problems:
                print(f"  {problem.text(now)}")
        else:
            print(summary_line(report, now))
    return 0


def check_everything(report: HealthReport, now: datetime, *, as_json: bool) -> int:
    """`status --check`: 0 when every part that should run does, 1 (each failure on stderr,
    with the TTL or allowance it broke) otherwise."""
    failing = check_failures(assess(report, now))
    if as_json:
        print(json.dumps(report_json(report, now), indent=2))
    elif not failing:
        print(summary_line(report, now).replace("mailmentor: ", "ok: ", 1))
    for problem in failing:
        print(f"FAIL  {problem.text(now)}", file=sys.stderr)
    return 1 if failing else 0


def connect_account(
    settings: Settings, provider_name: str | None, status_only: bool, port: int = 0
) -> int:
    """`mailmentor connect [PROVIDER] [--status] [--port N]`."""
    from mailmentor.app import oauth_account, token_vault
    from mailmentor.oauth import provider_from
    from mailmentor.oauth.connecting import connect, status_lines
    from mailmentor.oauth.flows import loopback_flow

    account = oauth_account(settings)
    with open_store(settings) as store:
        vault = token_vault(settings, store)
        if status_only:
            print("\n".join(status_lines(vault, account)))
            return 0
        configured = (settings.oauth_provider or "").strip().lower()
        if provider_name and configured and provider_name != configured:
            raise ConfigError(
                f"{ENV_PREFIX}OAUTH_PROVIDER is {configured!r}, and the service refreshes the "
                f"tokens there: connect {configured}, or change the setting to {provider_name!r}"
            )
        if provider_name and not configured:
            raise ConfigError(
                f"{ENV_PREFIX}OAUTH_PROVIDER: set it to {provider_name!r} too (the service "
                "refreshes the tokens there)"
            )
        provider = provider_from(settings, provider_name)
        flow = None
        if provider.flow == "loopback":
            flow = functools.partial(loopback_flow, port=port)
        tokens = connect(vault, provider, account, lambda text: print(text, flush=True), flow=flow)
    print(f"connected {tokens.account} to {tokens.provider} (scopes: {tokens.scope})")
    auth = [n for n in ("IMAP_AUTH", "SMTP_AUTH") if getattr(settings, n.lower()) != "oauth2"]
    if auth:
        print("set " + " and ".join(f"{ENV_PREFIX}{n}=oauth2" for n in auth) + " to use it")
    return 0


def disconnect_account(settings: Settings) -> int:
    """`mailmentor disconnect`."""
    from mailmentor.app import oauth_account, token_vault

    account = oauth_account(settings)
    with open_store(settings) as store:
        gone = token_vault(settings, store).delete(account)
    print(f"{account}: tokens deleted" if gone else f"{account}: nothing was connected")
    return 0


def check_connections(settings: Settings) -> int:
    """`mailmentor check`: one line per connection; 1 when any failed."""
    from mailmentor.app import access_tokens
    from mailmentor.checks import Failed, check_redis, render, run_checks

    if logging.getLogger().level > logging.DEBUG:  # the lines below say it all (not -v)
        logging.getLogger("mailmentor").setLevel(logging.WARNING)
    oauth = "oauth2" in (settings.imap_auth, settings.smtp_auth)
    with contextlib.ExitStack() as held:
        store = None
        if oauth:  # the tokens live in the store
            try:
                store = held.enter_context(open_store(settings))
            except (redis.RedisError, MailmentorError, OSError):
                print(render(check_redis(settings, open_redis)))
                print("skip  imap, smtp: their OAuth2 tokens are kept in Redis")
                return 1
        results = run_checks(
            settings,
            open_redis,
            imap_account(settings, store),
            smtp_account(settings, store),
            access_tokens(settings, store) if store is not None else None,
        )
        failed = False
        for result in results:
            print(render(result), flush=True)
            failed = failed or isinstance(result, Failed)
    return 1 if failed else 0


@contextmanager
def open_redis(settings: Settings) -> Iterator[tuple[str, Store]]:
    """The configured Redis, the running embedded one, or the embedded one started briefly;
    yields its URL and the user's store on it."""
    url = settings.redis_url or running_url(settings.data_dir)
    server: EmbeddedRedis | None = None
    if not url:
        server = EmbeddedRedis(settings.data_dir)
        url = server.start()
    try:
        store = connect_store(settings, url)
    except BaseException:
        if server is not None:
            server.stop()
        raise
    try:
        yield url, store
    finally:
        store.client.close()
        if server is not None:
            server.stop()


@contextmanager
def open_store(settings: Settings) -> Iterator[Store]:
    """The configured Redis, the running embedded one, or the embedded one started briefly."""
    with open_redis(settings) as (_, store):
        yield store


def loop_summary(loop: Loop, *, history: bool = False) -> dict[str, object]:
    """The one JSON shape of a loop (`export.loop_json`): `loops --json`, `show --json` (which
    adds the history) and `export` all print it."""
    from mailmentor.export import loop_json

    return loop_json(loop, events=history)


#: `plan --days` looks at most this far ahead.
MAX_PLAN_DAYS = 3650


def plan_days(text: str) -> int:
    """``--days``: a whole number of days ahead, at least 1."""
    try:
        days = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of days") from None
    if not 1 <= days <= MAX_PLAN_DAYS:
        raise argparse.ArgumentTypeError(f"{days} is not from 1 to {MAX_PLAN_DAYS} days")
    return days


def user_zone(settings: Settings, rules: Rules | None = None) -> ZoneInfo:
    """The one time zone (`Rules.zone_or`); rule files that do not load leave TIMEZONE."""
    if rules is None:
        try:
            rules = load_rules(settings.rules_dir or default_rules_dir())
        except RulesError:
            return settings.tz
    return rules.zone_or(settings.tz)


def all_loops(store: Store, *, ended: bool) -> list[Loop]:
    """Open loops (and with ``ended`` the closed and dropped ones too), oldest first."""
    loops = list(store.loops.open_loops())
    if ended:
        loops += store.loops.ended_loops()
    return sorted(loops, key=lambda lp: (lp.created_at, lp.id))


def every_loop(store: Store, *, history: bool = False) -> list[Loop]:
    """Every loop, open and ended, with its texts (and with ``history`` its events), oldest
    first: what `loops --json`, `mentors` and `export` read."""
    found = store.loops.get_many(store.loops.loop_ids(), history=history)
    return sorted(found.values(), key=lambda lp: (lp.created_at, lp.id))


def list_loops(settings: Settings, *, as_json: bool, include_ended: bool) -> int:
    with open_store(settings) as store:
        loops = every_loop(store) if as_json else all_loops(store, ended=include_ended)
    if as_json:
        print(json.dumps([loop_summary(lp) for lp in loops], indent=2))
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table(title=plural(len(loops), "loop"))
    # Ids are what `show` takes: never wrapped or cut, however narrow the terminal.
    table.add_column("id", no_wrap=True, min_width=max((len(lp.id) for lp in loops), default=2))
    table.add_column("stage", no_wrap=True)
    for column in ("mentor", "subject", "next reminder"):
        table.add_column(column)
    tz = user_zone(settings)
    for lp in loops:
        due = (
            lp.next_reminder_at.astimezone(tz).strftime("%a %d %b %H:%M")
            if lp.next_reminder_at
            else "—"
        )
        table.add_row(lp.id, str(lp.stage), str(lp.mentor), lp.subject, due)
    Console().print(table)
    return 0


def show_loop(settings: Settings, target: str, *, as_json: bool) -> int:
    """`show ID`, or `show PERSON` (an address, or a name only one person has)."""
    with open_store(settings) as store:
        loop = None if "@" in target else store.loops.get(target.strip(), history=True)
        matches = find_people(store, target) if loop is None else []
        if len(matches) == 1:
            return show_person(settings, store, matches[0], as_json=as_json)
    if loop is None:
        if matches:
            names = ", ".join(str(Person(address=p.address, name=p.name)) for p in matches)
            print(f"mailmentor: {target!r} could be {names}: give the address", file=sys.stderr)
        else:
            print(
                f"mailmentor: no loop or person {target!r} (see `mailmentor loops` and "
                "`mailmentor mentors`)",
                file=sys.stderr,
            )
        return 1
    if as_json:
        print(json.dumps(loop_summary(loop, history=True), indent=2))
        return 0
    tz = user_zone(settings)
    print(f"loop {loop.id}  [{loop.kind}]  {loop.stage}")
    print(f"  mentor:  {loop.mentor}")
    print(f"  subject: {one_line(loop.subject)}")
    print(f"  started: {local_time(loop.created_at, tz)}")
    for label, excerpt in (("ask", loop.ask_excerpt), ("advice", loop.advice_excerpt)):
        if excerpt.strip():
            print(indented(f"{label + ':':<8} ", excerpt))
    if loop.next_action:
        when = local_time(loop.next_action.due_at, tz)
        print(f"  next:    {loop.next_action.kind} ({loop.next_action.rule}) at {when}")
    print(f"  history (times in {tz.key}):")
    for event in sorted(loop.events, key=lambda e: e.at):
        print(f"    {event_line(event, tz)}")
    return 0


def find_people(store: Store, target: str) -> list[PersonRecord]:
    """The person an address names, or those whose name contains ``target`` (a whole-name
    match wins over parts of names)."""
    wanted = target.strip().lower()
    if "@" in wanted:
        record = store.loops.person(wanted)
        return [record] if record is not None else []
    if not wanted:
        return []
    named = [p for p in store.loops.all_people() if wanted in p.name.lower()]
    exact = [p for p in named if p.name.lower() == wanted]
    return sorted(exact or named, key=lambda p: p.address)


def show_person(settings: Settings, store: Store, record: PersonRecord, *, as_json: bool) -> int:
    """One person's timeline: how the relationship stands, every loop with them, and every
    event of those loops (and every gift) in time order."""
    from mailmentor.export import gifts_json, summary_json
    from mailmentor.relationships import summarize

    loops = sorted(
        store.loops.get_many(record.loop_ids, history=True).values(),
        key=lambda lp: (lp.created_at, lp.id),
    )
    summary = summarize(loops, record, SystemClock().now())
    if as_json:
        shaped = {
            **summary_json(summary),
            "loops": [loop_summary(lp, history=True) for lp in loops],
            "gifts": gifts_json([record]),
        }
        print(json.dumps(shaped, indent=2))
        return 0
    tz = user_zone(settings)
    print(summary.person)
    print(f"  {relationship_counts(summary)}")
    print(f"  {contact_text(summary, tz)}")
    print(f"  now:  {owed_text(summary)}")
    if loops:
        print("  loops:")
        width = max(len(lp.id) for lp in loops)
        for lp in loops:
            print(f"    {lp.id:<{width}}  {lp.kind:<7} {lp.stage:<9} {one_line(lp.subject)}")
    timeline = [(e.at, lp.id, event_line(e, tz)) for lp in loops for e in lp.events]
    timeline += [(g.at, "gift", gift_line(g, tz)) for g in record.gifts]
    timeline.sort(key=lambda item: item[0])  # stable: one loop's events keep their order
    print(f"  timeline (times in {tz.key}):")
    width = max((len(name) for _, name, _ in timeline), default=4)
    for _, name, line in timeline:
        when, _, rest = line.partition("  ")
        print(f"    {when}  {name:<{width}}  {rest}")
    return 0


def show_mentors(settings: Settings, *, as_json: bool) -> int:
    """`mailmentor mentors`: the relationship record, those the user owes first."""
    from mailmentor.export import summary_json
    from mailmentor.relationships import relationships

    with open_store(settings) as store:
        loops = every_loop(store, history=True)
        people = list(store.loops.all_people())
    summaries = relationships(loops, people, SystemClock().now())
    if as_json:
        print(json.dumps([summary_json(s) for s in summaries], indent=2))
        return 0
    from rich.console import Console
    from rich.table import Table

    tz = user_zone(settings)
    table = Table(title=plural(len(summaries), "person").replace("persons", "people"))
    table.add_column("person")
    for column in ("asks", "advice", "reports", "gives", "asked you"):
        table.add_column(column, justify="right")
    for column in ("first", "last"):
        table.add_column(column, no_wrap=True)
    for column in ("days known", "advice→acted", "acted→reported"):
        table.add_column(column, justify="right")
    table.add_column("now")
    for s in summaries:
        table.add_row(
            str(s.person),
            *(str(n) for n in (s.asks, s.advice, s.reports, s.gives, s.they_asked_you)),
            local_day(s.first_contact, tz),
            local_day(s.last_contact, tz),
            "—" if s.age_days is None else str(s.age_days),
            days_text(s.days_to_act),
            days_text(s.days_to_report),
            owed_text(s),
        )
    Console().print(table)
    if summaries:
        print("advice→acted, acted→reported: median days; `mailmentor show ADDRESS` for one")
    return 0


def export_all(settings: Settings, *, fmt: str, output: Path | None) -> int:
    """`mailmentor export`: every loop and event (JSON, or CSV one row per event), to stdout or
    atomically to ``output``."""
    from mailmentor.export import csv_text, export_document

    with open_store(settings) as store:
        loops = every_loop(store, history=True)
        people = list(store.loops.all_people())
    if fmt == "csv":
        text = csv_text(loops)
    else:
        text = json.dumps(export_document(loops, people), indent=2) + "\n"
    if output is None:
        sys.stdout.write(text)
        return 0
    try:
        write_atomically(output, text)
    except OSError as exc:
        print(f"mailmentor: error: cannot write {output}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    events = sum(len(lp.events) for lp in loops)
    print(
        f"wrote {plural(len(loops), 'loop')} and {plural(events, 'event')} to {output}",
        file=sys.stderr,
    )
    return 0


def write_atomically(path: Path, text: str) -> None:
    """All of ``text`` at ``path``, or the file as it was: a temporary file beside it, synced,
    then renamed over it."""
    import tempfile

    path = path.expanduser()
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


# -- rendering at the edge: prose from the typed values ---------------------------------------

#: What each owed move reads as, before the number of loops it is owed on.
_MOVE_WORDS = {
    Move.ACT: "act on",
    Move.REPORT: "report back on",
    Move.GIVE_BACK: "give back on",
    Move.ANSWER: "answer",
    Move.CHECK_IN: "check in on",
}
_STANDING_WORDS = {
    Standing.YOUR_MOVE: "your move",
    Standing.WAITING: "waiting for their answer",
    Standing.NEVER_ANSWERED: "never answered",
    Standing.QUIET: "quiet for a while: a short update?",
    Standing.IN_BALANCE: "in balance",
}


def owed_text(summary: PersonSummary) -> str:
    """``act on 2, report back on 1`` or, owing nothing, where the relationship stands."""
    parts = [
        "give back" if not owed.loop_ids else f"{_MOVE_WORDS[owed.move]} {owed.count}"
        for owed in summary.owes
    ]
    return ", ".join(parts) or _STANDING_WORDS[summary.standing]


def relationship_counts(summary: PersonSummary) -> str:
    text = (
        f"{plural(summary.asks, 'ask')}, {summary.advice} advice received, "
        f"{plural(summary.reports, 'report')}, {plural(summary.gives, 'give')}"
    )
    if summary.they_asked_you:
        text += f"; they asked you {plural(summary.they_asked_you, 'time')}"
    return text


def contact_text(summary: PersonSummary, tz: ZoneInfo) -> str:
    first, last = local_day(summary.first_contact, tz), local_day(summary.last_contact, tz)
    age = "" if summary.age_days is None else f" ({plural(summary.age_days, 'day')})"
    medians = (
        f"; median days advice→acted {days_text(summary.days_to_act)}, "
        f"acted→reported {days_text(summary.days_to_report)}"
    )
    return f"first contact {first}, last {last}{age}{medians}"


def days_text(days: float | None) -> str:
    return "—" if days is None else f"{days:g}"


def local_day(when: datetime | None, tz: ZoneInfo) -> str:
    return "—" if when is None else when.astimezone(tz).strftime("%Y-%m-%d")


def local_time(when: datetime, tz: ZoneInfo) -> str:
    """``Mon 2026-01-05 10:30 CET``: a time as the user reads it."""
    return when.astimezone(tz).strftime("%a %Y-%m-%d %H:%M %Z")


#: An ISO 8601 time inside stored text (a snooze's "until 2026-01-09T08:00:00+00:00").
_ISO_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})")


def local_text(text: str, tz: ZoneInfo) -> str:
    """``text`` on one line, with any ISO time in it written in the user's zone."""

    def local(match: re.Match[str]) -> str:
        try:
            return local_time(datetime.fromisoformat(match.group()), tz)
        except ValueError:
            return match.group()

    return _ISO_TIME.sub(local, one_line(text))


def one_line(text: str) -> str:
    return " ".join(text.split())


def event_line(event: Event, tz: ZoneInfo) -> str:
    when = event.at.astimezone(tz).strftime("%a %Y-%m-%d %H:%M")
    detail = f" — {local_text(event.detail, tz)}" if event.detail.strip() else ""
    return f"{when}  {event.type:<15} → {event.stage:<9} {one_line(event.source)}{detail}"


def gift_line(gift: Event, tz: ZoneInfo) -> str:
    """A gift (mentor+gave@) in a timeline: no loop, no stage, only what was given."""
    when = gift.at.astimezone(tz).strftime("%a %Y-%m-%d %H:%M")
    return f"{when}  {'gift':<27} {one_line(gift.source)} — {local_text(gift.detail, tz)}"


def indented(label: str, text: str) -> str:
    """``  ask:     first line`` with every further line (and wrap) under the first, so a
    multi-line excerpt keeps the layout."""
    import shutil
    import textwrap

    lead = "  " + label
    width = max(40, shutil.get_terminal_size((100, 24)).columns)
    lines: list[str] = []
    for paragraph in text.strip().splitlines():
        if paragraph.strip():
            lines += textwrap.wrap(paragraph.strip(), width=width - len(lead)) or [""]
    return "\n".join((lead if i == 0 else " " * len(lead)) + line for i, line in enumerate(lines))


class OutcomeTally:
    """Wraps the intake's message handler and counts new and joined loops from its outcomes."""

    def __init__(self, handle: Callable[..., Outcome]) -> None:
        self._handle = handle
        self.new_loops = 0
        self.joined = 0

    def __call__(self, *message: Any) -> Outcome:
        """(uid, raw) or, in mailbox mode, (uid, raw, meta): whatever the handler takes."""
        outcome = self._handle(*message)
        self.count(outcome)
        return outcome

    def count(self, outcome: Outcome) -> None:
        if isinstance(outcome, Handled):
            self.new_loops += outcome.created
            self.joined += outcome.joined


def require_import_settings(settings: Settings) -> None:
    """Importing needs a real mailbox and to know who the user is (else all mail is ignored)."""
    needed = {
        "IMAP_HOST": settings.imap_host,
        "IMAP_USER": settings.imap_user,
        "IMAP_PASSWORD": settings.imap_password.get_secret_value(),
        "SERVICE_ADDRESS": settings.service_address,
        "USER_ADDRESSES": ",".join(settings.user_addresses),
    }
    for name, value in needed.items():
        if not value:
            raise ConfigError(f"{ENV_PREFIX}{name}: missing (needed by `mailmentor import`)")


class _LeaveToScheduler:
    """`import` sends nothing itself: replies it causes wait in the outbox for the running
    service's scheduler, which sends them after JOB_GRACE (a minute)."""

    def deliver_later(self, loop_id: str, action_key: str) -> None:
        pass

    def send_later(self, job_key: str) -> None:
        pass


def import_mail(settings: Settings, *, folder: str, since: date | None) -> int:
    """Backfill one folder exactly as the watcher would feed it: through the intake, or in
    mailbox mode with the folder's meaning (Sent, INBOX, tracked) and each message's marks."""
    require_import_settings(settings)
    from mailmentor.app import build_services, folder_meaning, imap_account, parse_pool
    from mailmentor.imap import import_folder

    parser = parse_pool(settings)
    with open_store(settings) as store, contextlib.closing(parser):
        services = build_services(settings, store, _LeaveToScheduler(), owner="", parser=parser)
        account = imap_account(settings, store)
        if settings.mailbox_mode:
            watched = folder_meaning(settings, folder)
            logging.getLogger("mailmentor.import").info(
                "mailbox mode: reading %s as %s mail", folder, watched.origin
            )
            tally = OutcomeTally(
                functools.partial(
                    services.intake.handle_in_folder,
                    origin_of=watched.origin_of,
                    in_sent=watched.is_sent,
                )
            )
            result = import_folder(
                account, folder, since=since, meta_handler=tally, prepare=parser.ahead
            )
        else:
            tally = OutcomeTally(services.intake.handle_raw)
            result = import_folder(account, folder, tally, since=since, prepare=parser.ahead)
    print(
        f"imported {folder}: {result.seen} messages, {tally.new_loops} new loops, "
        f"{tally.joined} joined, {result.failed} failed"
    )
    return 1 if result.failed else 0


def rules_check(directory: Path | None) -> int:
    directory = directory or load_settings().rules_dir or default_rules_dir()
    try:
        rules = load_rules_file(directory) if directory.is_file() else load_rules(directory)
    except RulesError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        count = len(exc.problems)
        print(f"{count} problem{'s' if count != 1 else ''} in {directory}", file=sys.stderr)
        return 1
    names = ", ".join(rs.name for rs in rules.rule_sets)
    print(f"{directory}: OK ({len(rules.rule_sets)} rule sets: {names})")
    return 0


def show_plan(settings: Settings, *, days: int, rules_dir: Path | None) -> int:
    """What the scheduler will send, from the same decisions, budget and quiet hours it uses
    (`forecast`), in time order; give-ups are counted apart from reminders."""
    rules = load_rules(rules_dir or settings.rules_dir or default_rules_dir())
    now = SystemClock().now()
    tz = user_zone(settings, rules)
    with open_store(settings) as store:
        loops = all_loops(store, ended=False)
        due = store.due.due_times([lp.id for lp in loops])
        counted = store.weekly.reminders_in_week(week_start(now, tz))
    expected = forecast(
        loops, rules, tz, now, now + timedelta(days=days), due=due, counted_this_week=counted
    )
    for item in expected:
        when = item.at.astimezone(tz).strftime("%a %Y-%m-%d %H:%M")
        held = f"  (held by {item.held_by})" if item.held_by else ""
        print(
            f"{when}  {item.loop.id}  {item.action.stage:<9} {item.action.kind:<8} "
            f"{item.action.rule:<18} {item.loop.mentor.short_name}: {item.loop.subject}{held}"
        )
    give_ups = sum(item.is_give_up for item in expected)
    counts = plural(len(expected) - give_ups, "reminder")
    if give_ups:
        counts += f" and {plural(give_ups, 'give-up')}"
    print(f"{counts} in the next {plural(days, 'day')} for {plural(len(loops), 'open loop')}")
    return 0


def forget_person(settings: Settings, address: str, *, confirmed: bool) -> int:
    address = address.strip().lower()
    if "@" not in address:
        print(f"mailmentor: error: {address!r} is not an email address", file=sys.stderr)
        return 2
    with open_store(settings) as store:
        for attempt in range(FORGET_ATTEMPTS):
            person = store.loops.person(address)
            found = store.loops.get_many(person.loop_ids, texts=False) if person else {}
            loops = list(found.values())
            gifts = len(person.gifts) if person else 0
            if person is None or (not loops and not gifts):
                print(f"nothing kept about {address}")
                return 0
            if not confirmed and attempt == 0:
                if not sys.stdin.isatty():
                    print(
                        "mailmentor: error: add --yes to forget without a prompt", file=sys.stderr
                    )
                    return 2
                answer = input(
                    f"forget {address}: {len(loops)} loops, {gifts} recorded gifts? [y/N] "
                )
                if answer.strip().lower() not in ("y", "yes"):
                    print("nothing deleted")
                    return 1
            if isinstance(store.loops.delete(loops, [person]), Committed):
                break  # else a loop with them changed meanwhile: read it all again
        else:
            raise StoreBusy(f"forget {address}: their loops kept changing; try again")
    print(f"forgot {address}: {len(loops)} loops and {gifts} recorded gifts deleted")
    return 0


#: `forget` reads and deletes again this often while the person's loops keep changing.
FORGET_ATTEMPTS = 10


def show_digest(
    settings: Settings, *, html: Path | None = None, text: bool = False, send_now: bool = False
) -> int:
    """`mailmentor digest`: the digest the sender would mail now, built by the sender itself,
    so that the preview is what is sent."""
    from mailmentor.app import build_services
    from mailmentor.reminders import digest_html, digest_text
    from mailmentor.service.sender import FailedForGood, Sent

    if send_now and not settings.smtp_host:
        raise ConfigError(
            f"{ENV_PREFIX}SMTP_HOST: required by `mailmentor digest --send-now` (the server "
            "the digest is mailed through)"
        )
    with open_store(settings) as store:
        services = build_services(settings, store, _LeaveToScheduler(), owner="")
        sender = services.sender
        if send_now:
            outcome = sender.send_job(sender.queue_digest_now())
            if isinstance(outcome, FailedForGood):
                print(f"digest not sent: {outcome}", file=sys.stderr)
                return 1
            said = f"“{outcome.subject}”" if isinstance(outcome, Sent) else str(outcome)
            print(f"digest sent to {sender.user_address}: {said}")
            return 0
        digest, ctx = sender.current_digest(), sender.context()
    if html is not None:
        html.write_text(digest_html(digest, ctx), encoding="utf-8")
        print(f"wrote the digest's HTML to {html}", file=sys.stderr)
    if text or html is None:
        print(digest_text(digest, ctx), end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
