"""The one way loops change: read, decide (pure), commit atomically, and on a conflict decide
again from what is there now.

A decision is a function that reads what it needs and returns a Changeset with a result; the
writer completes the changeset (each loop's next action planned under the current rules, the
person records of loops that start or end) and commits it in one step. If another process
changed one of the loops meanwhile, the commit changes nothing and the decision runs again on
fresh data, so every change is applied to what is really there, exactly once.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import TypeVar

from mailmentor import people
from mailmentor.errors import StoreBusy
from mailmentor.intake import normalize_subject
from mailmentor.model import Loop
from mailmentor.people import PersonRecord
from mailmentor.rules import Rules
from mailmentor.schedule import planned
from mailmentor.service.outcomes import LoopStarted, Notice, StageChanged
from mailmentor.store import Store
from mailmentor.store.changes import Changeset, Committed, Job, LoopChange, PersonChange

log = logging.getLogger("mailmentor.service")

R = TypeVar("R")
Listener = Callable[[Notice], None]

#: Decisions are re-run this often when their loops keep changing under them.
MAX_ATTEMPTS = 25
#: A job (reply, digest, draft) a process queues itself is left to it this long before the
#: scheduler takes it over; if the process dies, its claim is taken back at once.
JOB_GRACE = timedelta(seconds=60)


def reply_job(key: str, message: EmailMessage, now: datetime, owner: str) -> Job:
    """A finished mail to the user (a reply, a notice) for the outbox, sent as it stands."""
    payload = json.dumps({"kind": "reply", "message": message.as_string()})
    return Job(key=key, payload=payload, due=now + JOB_GRACE, owner=owner)


def touches_person(before: Loop | None, after: Loop) -> bool:
    """Whether the mentor's person record changes: a loop starts, opens or ends, or an ended
    one hears from them again (their last contact)."""
    if before is None or before.stage.is_open != after.stage.is_open:
        return True
    return not after.stage.is_open and after.last_contact_at != before.last_contact_at


class LoopWriter:
    def __init__(
        self,
        store: Store,
        rules: Callable[[], Rules],
        listeners: Sequence[Listener] = (),
    ) -> None:
        self.store = store
        self.rules = rules
        self.listeners = list(listeners)

    def run(self, decide: Callable[[], tuple[Changeset, R]], what: str = "") -> R:
        """Run ``decide`` and commit its changeset, again on fresh data after a conflict."""
        for _ in range(MAX_ATTEMPTS):
            change, result = decide()
            if self.commit(change):
                return result
        raise StoreBusy(f"{what or 'a change'}: its loops kept changing ({MAX_ATTEMPTS} tries)")

    def commit(self, change: Changeset) -> bool:
        """Complete and commit ``change``; False (nothing written) if something it read changed."""
        change = self.complete(change)
        result = self.store.loops.commit(change)
        if not isinstance(result, Committed):
            log.debug("commit conflicted on %s; deciding again", result.what)
            return False
        self._notify(change.loops)
        return True

    def complete(self, change: Changeset) -> Changeset:
        """Each loop's next action under the current rules, and the people it concerns."""
        rules = self.rules()
        loops = tuple(replace(item, after=planned(item.after, rules)) for item in change.loops)
        return replace(change, loops=loops, people=self._people(loops, change.people))

    def _people(
        self, loops: tuple[LoopChange, ...], given: tuple[PersonChange, ...]
    ) -> tuple[PersonChange, ...]:
        concerned = [
            c
            for c in loops
            if touches_person(c.before, c.after) and not people.asks_nobody(c.after)
        ]
        if not concerned:
            return given
        records: dict[str, PersonRecord | None] = {c.after.address: c.after for c in given}
        originals: dict[str, PersonRecord | None] = {c.after.address: c.before for c in given}
        missing = [c.after.mentor.address.lower() for c in concerned]
        found = self.store.loops.people(a for a in missing if a not in records)
        for address, record in found.items():
            records[address], originals[address] = record, record
        for item in concerned:
            address = item.after.mentor.address.lower()
            skey = people.subject_key(normalize_subject(item.after.subject))
            records[address] = people.with_loop(records.get(address), item.before, item.after, skey)
            originals.setdefault(address, None)
        return tuple(
            PersonChange(originals.get(address), record)
            for address, record in records.items()
            if record is not None
        )

    def _notify(self, loops: tuple[LoopChange, ...]) -> None:
        for item in loops:
            notice: Notice | None = None
            if item.before is None:
                notice = LoopStarted(item.after)
            elif item.before.stage != item.after.stage:
                notice = StageChanged(item.after, item.before.stage)
            if notice is not None:
                self.notify(notice)

    def notify(self, notice: Notice) -> None:
        log.info("%s", notice)
        for listener in self.listeners:
            try:
                listener(notice)
            except Exception:  # a listener (the demo, a test) must never break a change
                log.exception("listener failed on %s", notice)


def send_soon(send_now: Callable[[str], None], key: str) -> None:
    """Queue a job just committed; if that fails, the outbox still has it (its claim names this
    process, so the scheduler sends it after JOB_GRACE, or at once should this process die)."""
    try:
        send_now(key)
    except Exception as exc:
        log.info("%s: not queued now (%s); the scheduler will send it", key, exc)
