"""Heartbeats: is the owner of a claim or a sending mark still alive (a process), when did a
component last finish a pass (the scheduler), and how each watcher is doing (`mailmentor status`,
the digest's health line, the fault suite).

Keys (``n`` the namespace; see also `keys`):

  n:watcher:<mailbox>     hash   the acting watcher's record: state, mode, last sync, last
                                 error, retry, counters (kept a week after its last write)
  n:watcherbeat:<mailbox> string the acting watcher's own heartbeat (its owner), with a TTL
  n:watchersync:<mailbox> string set at each sync (n:watcherwork: each fetch batch) with a
                                 TTL of WATCHER_RECORD_KEEP: its age by the store's clock, so
                                 staleness never depends on whose clock wrote the record
  n:watchers              set    the mailboxes with a record
  n:sends                 hash   sends given up / retried: counts and the last of each
                                 (expires SENDS_KEPT_S after the last failure)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import redis

from mailmentor.errors import StoreError
from mailmentor.health_report import (
    COMPONENTS,
    AuthKind,
    AuthState,
    ComponentBeat,
    HealthReport,
    Retrying,
    SendFailures,
    WatcherError,
    WatcherHealth,
    WatcherState,
    WatchMode,
)
from mailmentor.store.codec import as_text
from mailmentor.store.keys import Namespace
from mailmentor.store.times import from_score, score, ttl_ms

if TYPE_CHECKING:
    from mailmentor.settings import Settings
    from mailmentor.store import Store

__all__ = ["COMPONENTS", "Health", "auth_state", "read_health", "stamp"]

#: A watcher's record outlives its last write by this long (then a watcher gone for good, or
#: a demo mailbox on a port of the past, is forgotten): three weekly digests say it stopped.
WATCHER_RECORD_KEEP = timedelta(days=21)
#: The record's fields whose moment is also kept as the age of a key (see the table above).
AGED_FIELDS = {"last_sync": "watchersync", "progress_at": "watcherwork"}


def _server_ms(r: redis.Redis) -> int:
    seconds, micros = r.time()
    return int(seconds) * 1000 + int(micros) // 1000


def stamp(when: datetime) -> str:
    """A time as a record field keeps it (epoch seconds)."""
    return f"{score(when):.3f}"


#: Every heartbeat (a process's, a watcher's) is renewed this many times per its TTL, so one
#: late renewal never lets it lapse.
BEATS_PER_TTL = 6
#: Failed sends are counted until a week passes with none.
SENDS_KEPT_S = 7 * 86400


class Health:
    def __init__(self, client: redis.Redis, ns: Namespace) -> None:
        self._r = client
        self._ns = ns

    def heartbeat(self, component: str, ttl: timedelta) -> None:
        """``component`` finished a pass; it counts as alive for ``ttl`` (kept as the value, so
        that a reader can tell the pass's age from the time left)."""
        self._r.set(self._ns.key("alive", component), str(ttl_ms(ttl)), px=ttl_ms(ttl))

    def alive(self, component: str) -> bool:
        return bool(self._r.exists(self._ns.key("alive", component)))

    def pass_age(self, component: str) -> timedelta | None:
        """Since ``component`` last finished a pass (Redis clock); None when it is not alive."""
        key = self._ns.key("alive", component)
        with self._r.pipeline(transaction=False) as pipe:
            pipe.get(key)
            pipe.pttl(key)
            value, left = pipe.execute()
        if value is None or left is None or int(left) < 0:
            return None
        text = as_text(value)
        ttl = int(text) if text.isdigit() else int(left)
        return timedelta(milliseconds=max(0, ttl - int(left)))

    def component_beat(self, component: str, host: str, owner: str, ttl: timedelta) -> None:
        """Process ``owner`` of ``component`` (watch, schedule, work) runs on ``host`` for
        ``ttl``, by the Redis server's clock (the machines' clocks may disagree)."""
        key = self._ns.key("parts", component)
        now = _server_ms(self._r)
        with self._r.pipeline(transaction=False) as pipe:
            pipe.hset(key, f"{host} {owner}", now + ttl_ms(ttl))
            pipe.pexpire(key, ttl_ms(ttl))
            pipe.execute()
        stale = [f for f, until in self._r.hgetall(key).items() if int(until) <= now]
        if stale:
            self._r.hdel(key, *stale)

    def component_gone(self, component: str, host: str, owner: str) -> None:
        self._r.hdel(self._ns.key("parts", component), f"{host} {owner}")

    def component_alive(self, component: str, host: str) -> bool:
        return host in self.components().get(component, [])

    def components(self) -> dict[str, list[str]]:
        """Which hosts run each component now (``mailmentor status``); a host once per process."""
        now = _server_ms(self._r)
        found: dict[str, list[str]] = {}
        for component in COMPONENTS:
            for field, until in self._r.hgetall(self._ns.key("parts", component)).items():
                if int(until) > now:
                    found.setdefault(component, []).append(as_text(field).split(" ", 1)[0])
        return {c: sorted(hosts) for c, hosts in found.items()}

    def component_beats(self, ttl: timedelta) -> list[ComponentBeat]:
        """Every process entry of every component, fresh or stale, with its heartbeat's age
        (Redis clock), given the ``ttl`` the processes beat with (HEARTBEAT_SECONDS)."""
        now = _server_ms(self._r)
        beats = []
        for component in COMPONENTS:
            for field, until in self._r.hgetall(self._ns.key("parts", component)).items():
                host, _, owner = as_text(field).partition(" ")
                age_ms = max(0, now - (int(until) - ttl_ms(ttl)))
                beats.append(ComponentBeat(component, host, owner, timedelta(milliseconds=age_ms)))
        return beats

    def process_beat(self, owner: str, ttl: timedelta) -> None:
        """This process is alive for ``ttl``: its claims are not taken back meanwhile."""
        self._r.set(self._ns.key("proc", owner), "1", px=ttl_ms(ttl))

    def process_alive(self, owners: list[str]) -> dict[str, bool]:
        if not owners:
            return {}
        with self._r.pipeline(transaction=False) as pipe:
            for owner in owners:
                pipe.exists(self._ns.key("proc", owner))
            return {o: bool(n) for o, n in zip(owners, pipe.execute(), strict=True)}

    def process_gone(self, owner: str) -> None:
        self._r.delete(self._ns.key("proc", owner))

    # -- watchers --------------------------------------------------------------------------------

    def watcher_update(
        self,
        mailbox: str,
        owner: str,
        fields: Mapping[str, str],
        beat: timedelta | None,
        count: str = "",
    ) -> None:
        """One round trip: ``fields`` set on the mailbox's record, ``count`` incremented, and the
        watcher's heartbeat renewed for ``beat`` (None: it stopped, the heartbeat goes)."""
        record = self._ns.key("watcher", mailbox)
        beat_key = self._ns.key("watcherbeat", mailbox)
        with self._r.pipeline(transaction=False) as pipe:
            values: dict[str, str] = {"owner": owner}
            values.update(fields)
            pipe.hset(record, mapping=dict[Any, Any](values))
            if count:
                pipe.hincrby(record, count, 1)
            for name, family in AGED_FIELDS.items():
                if name in fields:
                    pipe.set(self._ns.key(family, mailbox), "1", px=ttl_ms(WATCHER_RECORD_KEEP))
            pipe.pexpire(record, ttl_ms(WATCHER_RECORD_KEEP))
            if beat is None:
                pipe.delete(beat_key)
            else:
                pipe.set(beat_key, owner, px=ttl_ms(beat))
            pipe.sadd(self._ns.key("watchers"), mailbox)
            pipe.execute()

    def watcher_beat(self, mailbox: str, owner: str, ttl: timedelta) -> None:
        """The watcher is alive (between syncs: IDLE can last minutes)."""
        self._r.set(self._ns.key("watcherbeat", mailbox), owner, px=ttl_ms(ttl))

    def watcher_records(self) -> dict[str, WatcherRecord]:
        """Every mailbox's record, its heartbeat's remaining life (ms; < 0: none), and the ages
        of its last sync and last batch by the store's clock (None: none kept)."""
        index = self._ns.key("watchers")
        mailboxes = sorted(as_text(m) for m in self._r.smembers(index))
        families = ("watcherbeat", *AGED_FIELDS.values())
        with self._r.pipeline(transaction=False) as pipe:
            for mailbox in mailboxes:
                pipe.hgetall(self._ns.key("watcher", mailbox))
                for family in families:
                    pipe.pttl(self._ns.key(family, mailbox))
            answers = pipe.execute()
        found = {}
        step = 1 + len(families)
        keep = ttl_ms(WATCHER_RECORD_KEEP)
        for i, mailbox in enumerate(mailboxes):
            raw, beat_left, sync_left, work_left = answers[step * i : step * (i + 1)]
            if not raw:
                self._r.srem(index, mailbox)  # expired: forgotten
                continue
            fields = {as_text(k): as_text(v) for k, v in raw.items()}
            found[mailbox] = WatcherRecord(
                fields, int(beat_left), _age(sync_left, keep), _age(work_left, keep)
            )
        return found

    # -- sends -----------------------------------------------------------------------------------

    def send_failed(self, key: str, reason: str, when: datetime, *, final: bool) -> None:
        """A send was given up (``final``: SMTP 5xx) or will be retried (4xx, no connection).
        The counts are of the failures since a week with none (the key expires a week after
        the last one), so one old failure does not stay in every digest's health line."""
        prefix = "failed" if final else "retry"
        said = " ".join(f"{key}: {reason}".split())[:300]
        with self._r.pipeline(transaction=False) as pipe:
            pipe.hincrby(self._ns.key("sends"), "failed" if final else "retried", 1)
            pipe.hset(
                self._ns.key("sends"),
                mapping={f"last_{prefix}_at": stamp(when), f"last_{prefix}": said},
            )
            pipe.expire(self._ns.key("sends"), SENDS_KEPT_S)
            pipe.execute()

    def send_failures(self) -> SendFailures:
        raw = {as_text(k): as_text(v) for k, v in self._r.hgetall(self._ns.key("sends")).items()}
        return SendFailures(
            failed=int(raw.get("failed", 0)),
            last_failed_at=_time(raw.get("last_failed_at")),
            last_failed=raw.get("last_failed", ""),
            retried=int(raw.get("retried", 0)),
            last_retry_at=_time(raw.get("last_retry_at")),
            last_retry=raw.get("last_retry", ""),
        )


@dataclass(frozen=True)
class WatcherRecord:
    """A watcher's record as stored, with what the store's clock says about it."""

    fields: dict[str, str]
    beat_left_ms: int
    sync_age: timedelta | None
    progress_age: timedelta | None


def _age(left_ms: object, total_ms: int) -> timedelta | None:
    left = int(left_ms) if isinstance(left_ms, int | str | bytes) else -1
    return timedelta(milliseconds=max(0, total_ms - left)) if left >= 0 else None


def _time(value: str | None) -> datetime | None:
    return from_score(value) if value else None


def _watcher(mailbox: str, record: WatcherRecord, alive: bool) -> WatcherHealth:
    """A record as the watcher wrote it (see `mailmentor.imap.watcher`), typed."""
    fields, left_ms = record.fields, record.beat_left_ms
    try:
        state = WatcherState(fields.get("state", "connecting"))
    except ValueError:
        state = WatcherState.CONNECTING
    mode = fields.get("mode", "")
    error_at = _time(fields.get("error_at"))
    next_at = _time(fields.get("next_at"))
    attempt = int(fields.get("attempt") or 0)
    beat_total = int(float(fields.get("beat_ttl") or 0) * 1000)
    beat_age = (
        timedelta(milliseconds=max(0, beat_total - left_ms))
        if left_ms >= 0 and beat_total
        else None
    )
    if beat_age is None and left_ms >= 0:
        beat_age = timedelta(0)
    return WatcherHealth(
        mailbox=mailbox,
        label=fields.get("label", mailbox),
        folder=fields.get("folder", mailbox.rsplit("/", 1)[-1]),
        owner=fields.get("owner", ""),
        state=state,
        mode=WatchMode(mode) if mode in WatchMode._value2member_map_ else None,
        logged_in_at=_time(fields.get("logged_in_at")),
        last_sync=_time(fields.get("last_sync")),
        last_progress=_time(fields.get("progress_at")),
        sync_age=record.sync_age,
        progress_age=record.progress_age,
        sync_every=timedelta(seconds=float(fields.get("sync_every") or 540)),
        last_error=WatcherError(fields.get("error", ""), error_at) if error_at else None,
        retrying=Retrying(attempt, next_at, fields.get("reason", ""))
        if attempt and next_at
        else None,
        uidvalidity_resets=int(fields.get("uidvalidity_resets") or 0),
        quarantined=int(fields.get("quarantined") or 0),
        failed_messages=int(fields.get("failed_messages") or 0),
        existing_folders=tuple(f for f in fields.get("existing", "").split("\n") if f),
        beat_age=beat_age,
        process_alive=alive,
    )


def auth_state(settings: Settings, store: Store) -> AuthState | None:
    """The OAuth2 sign-in, when IMAP or SMTP uses it; None otherwise."""
    if "oauth2" not in (settings.imap_auth, settings.smtp_auth):
        return None
    from mailmentor.app import oauth_account, token_vault  # app builds on the store

    account = oauth_account(settings)
    vault = token_vault(settings, store)
    provider = settings.oauth_provider
    broken = vault.broken(account)
    if broken is not None:
        return AuthState(account, AuthKind.REAUTHORISATION_NEEDED, provider, since=broken[1])
    try:
        tokens = vault.load(account)
    except StoreError as exc:
        return AuthState(account, AuthKind.UNUSABLE, provider, detail=str(exc))
    if tokens is None:
        return AuthState(account, AuthKind.NOT_CONNECTED, provider)
    return AuthState(
        account, AuthKind.CONNECTED, provider, since=tokens.refreshed_at, detail=tokens.provider
    )


def read_health(store: Store, settings: Settings) -> HealthReport:
    """Everything `status` and the digest's health line say, read from the store."""
    ttl = timedelta(seconds=settings.heartbeat_seconds)
    health = store.health
    records = health.watcher_records()
    owners = {m: r.fields.get("owner", "").split("/", 1)[0] for m, r in records.items()}
    alive = health.process_alive(sorted({p for p in owners.values() if p}))
    watchers = tuple(
        _watcher(mailbox, record, alive.get(owners[mailbox], False))
        for mailbox, record in records.items()
    )
    return HealthReport(
        heartbeat_ttl=ttl,
        components=tuple(health.component_beats(ttl)),
        scheduler_pass_age=health.pass_age("scheduler"),
        scheduler_pass_ttl=scheduler_pass_ttl(ttl, settings.scheduler_interval),
        watchers=watchers,
        sends=health.send_failures(),
        auth=auth_state(settings, store),
    )


def scheduler_pass_ttl(heartbeat: timedelta, interval: float) -> timedelta:
    """How long a scheduler pass keeps the scheduler alive: a heartbeat, or five ticks."""
    return max(heartbeat, timedelta(seconds=interval * 5))
