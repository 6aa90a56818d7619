"""The sender: reminders, replies, the weekly digest and report-back drafts, each mailed once.

One path for every send (`_send_once`): take the item's sending mark (naming this process), render,
hand it to SMTP, and record the result in one atomic change that also clears the mark. So:

- a job that finds the item already recorded (the loop moved on, the job is gone) does nothing;
- a job that finds another live process's mark waits and checks again (`SendBusy`, retried);
- a mark left by a process that is provably dead is taken over: that process may have handed
  the mail to SMTP without recording it, so this is the one case that mails twice (see README,
  "What mailmentor promises");
- SMTP 4xx or a dropped connection frees the mark and is retried with backoff; 5xx is recorded
  (a reminder counts as a failed nudge) and not retried.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from email import message_from_string
from email import policy as email_policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from mailmentor import stages
from mailmentor.clock import Clock
from mailmentor.digest import Digest, build_digest
from mailmentor.errors import PermanentSendError, SendBusy, TemporarySendError
from mailmentor.intake import Identity
from mailmentor.liveness import describe_owner, provably_dead
from mailmentor.model import ActionKind, Loop, PlannedAction, Stage
from mailmentor.reminders import (
    ReminderContext,
    asks_for_report,
    build_digest_mail,
    build_give_up_notice,
    build_reminder,
    build_reply,
    build_report_draft,
    digest_key,
)
from mailmentor.rules import Rules
from mailmentor.service.outcomes import MailSent
from mailmentor.service.scheduler import CLAIM_LEASE
from mailmentor.service.writer import JOB_GRACE, LoopWriter, reply_job, send_soon
from mailmentor.smtp import SmtpAccount, SmtpConnection, send_message_sync
from mailmentor.store import Store
from mailmentor.store.changes import Changeset, Job, LoopChange

log = logging.getLogger("mailmentor.sender")

#: A sending mark lives this long: longer than any SMTP conversation (aiosmtplib times out at
#: 60 s), so a live sender never loses it, and a dead one's is free soon.
SEND_LEASE = timedelta(minutes=3)


class _MovedOn(Exception):
    """Internal: the item was finished by another send between reading it and marking it."""


def _still_due(loop: Loop | None, action_key: str) -> bool:
    action = loop.next_action if loop is not None else None
    return (
        loop is not None
        and loop.stage.is_open
        and action is not None
        and (action.key == action_key)
    )


@dataclass(frozen=True)
class _StillDue:
    """Whether an item is still to send: reads queued in the round trip that takes its sending
    mark (so they run after it), and the verdict on their answers."""

    queue: Callable[[Any], None]
    judge: Callable[[list[Any]], bool]


@dataclass(frozen=True)
class Sent:
    key: str
    subject: str

    def __str__(self) -> str:
        return f"sent {self.key}"


@dataclass(frozen=True)
class AlreadyDone:
    key: str
    why: str

    def __str__(self) -> str:
        return f"{self.key}: {self.why}"


@dataclass(frozen=True)
class FailedForGood:
    key: str
    error: str

    def __str__(self) -> str:
        return f"{self.key} failed for good: {self.error}"


SendOutcome = Sent | AlreadyDone | FailedForGood


class Sender:
    def __init__(
        self,
        store: Store,
        writer: LoopWriter,
        rules: Callable[[], Rules],
        clock: Clock,
        identity: Identity,
        secret: bytes,
        timezone: ZoneInfo,
        smtp: SmtpAccount,
        owner: str,
        send_now: Callable[[str], None],
        alive: Callable[[str], bool],
        drafts: Callable[[EmailMessage], None] | None = None,
        templates_dir: Path | None = None,
        health: Callable[[], list[str]] | None = None,
        health_line: Callable[[datetime], str] | None = None,
    ) -> None:
        self.store = store
        self.writer = writer
        self.rules = rules
        self.clock = clock
        self.identity = identity
        self.secret = secret
        self.timezone = timezone
        self.smtp = smtp
        self.owner = owner
        self._send_now = send_now
        self._alive = alive
        self.drafts = drafts
        self.templates_dir = templates_dir
        #: What the digest says about mailmentor itself (a sign-in to renew).
        self.health = health or (lambda: [])
        #: The digest's one line on how mailmentor runs (the watcher's last sync, ...), for a
        #: moment in the user's zone.
        self.health_line = health_line or (lambda now: "")
        #: Sends this process handed to SMTP but could not record yet (the store was down):
        #: recorded on the next try without mailing again.
        self._unrecorded: set[str] = set()
        #: This thread's SMTP session, in threads that keep one (`keep_connection`).
        self._local = threading.local()

    @property
    def user_address(self) -> str:
        return self.identity.user_addresses[0]

    # -- reminders ------------------------------------------------------------------------------

    def deliver(self, loop_id: str, action_key: str) -> SendOutcome:
        """Mail the reminder (or give-up notice, or "still relevant?") of one due action, once,
        and record it on the loop."""
        key = f"{loop_id}:{action_key}"
        loops, ids = self.store.loops, [loop_id]

        def read(pipe: Any) -> None:
            loops.queue_reads(pipe, ids)

        # The claim held, then the loop read: one round trip.
        _, answers = self.store.due.hold_then(
            loop_id, self.owner, self.clock.now(), CLAIM_LEASE, read
        )
        loop = loops.read_answers(ids, answers).get(loop_id)
        if loop is None:
            return AlreadyDone(key, "the loop is gone")
        action = loop.next_action
        if not _still_due(loop, action_key) or action is None:
            self._clear_mark(key)
            return AlreadyDone(key, "the loop moved on")
        #: The loop as read once the sending mark was ours: what the record decides on first.
        marked: list[Loop] = []

        def judge(answers: list[Any]) -> bool:
            current = loops.read_answers(ids, answers).get(loop_id)
            marked[:] = [current] if current is not None else []
            return _still_due(current, action_key)

        try:
            message = self._send_once(key, self._render(loop, action), _StillDue(read, judge))
        except PermanentSendError as exc:
            log.error("reminder for loop %s failed for good: %s", loop_id, exc)
            self._note_failure(key, exc, final=True)
            self._record(loop_id, action, key, str(exc), marked)
            return FailedForGood(key, str(exc))
        except TemporarySendError as exc:
            self._note_failure(key, exc, final=False)
            raise
        except _MovedOn:
            return AlreadyDone(key, "the loop moved on")
        self._record(loop_id, action, key, "", marked)
        subject = str(message["Subject"]) if message is not None else ""
        if message is not None:
            self.writer.notify(MailSent(self.user_address, subject, loop))
        return Sent(key, subject)

    def _record(
        self, loop_id: str, action: PlannedAction, key: str, error: str, read: list[Loop]
    ) -> None:
        """The send's result on the loop, the mark cleared, the draft job left: one change.

        ``read``: the loop as read after the sending mark was taken, if it was, decided on
        first; the commit checks its revision, so a change since then means deciding again on
        a fresh read."""
        now = self.clock.now()
        jobs: list[Job] = []

        def decide() -> tuple[Changeset, None]:
            jobs.clear()
            loop = read.pop() if read else self.store.loops.get(loop_id)
            if loop is None or loop.next_action is None or loop.next_action.key != action.key:
                return Changeset(sends_done=(key,)), None  # recorded by an earlier try
            after = stages.apply_due_action(loop, action, now, error)
            draft = self._draft_job(loop, action, key, now) if not error else None
            if draft is not None:
                jobs.append(draft)
            change = Changeset(
                loops=(LoopChange(loop, after),), sends_done=(key,), jobs=tuple(jobs)
            )
            return change, None

        self.writer.run(decide, f"recording {key}")
        self._unrecorded.discard(key)
        for job in jobs:
            send_soon(self._send_now, job.key)

    def _draft_job(self, loop: Loop, action: PlannedAction, key: str, now: datetime) -> Job | None:
        """With the reminder to report back, a starter report for the user's Drafts."""
        if self.drafts is None or not asks_for_report(loop, action):
            return None
        draft = build_report_draft(loop, self.context())
        payload = json.dumps({"kind": "draft", "loop": loop.id, "message": draft.as_string()})
        return Job(key=f"{key}:draft", payload=payload, due=now + JOB_GRACE, owner=self.owner)

    def _render(self, loop: Loop, action: PlannedAction) -> EmailMessage:
        ctx = self.context()
        if action.kind is ActionKind.GIVE_UP:
            return build_give_up_notice(loop, action, ctx)
        if action.kind is ActionKind.WAKE:
            woken = stages.wake(loop, ctx.now)
            as_reminder = action.model_copy(
                update={"kind": ActionKind.REMIND, "stage": woken.stage, "rule": "snooze"}
            )
            return build_reminder(woken, as_reminder, self._with_template(ctx, woken))
        return build_reminder(loop, action, self._with_template(ctx, loop, action.stage))

    def _with_template(
        self, ctx: ReminderContext, loop: Loop, stage: Stage | None = None
    ) -> ReminderContext:
        """The rule's ``template:`` for this loop and stage, if it names one."""
        rule_set = self.rules().for_loop(loop)
        rule = rule_set.stages.get(stage or loop.stage) if rule_set else None
        return replace(ctx, template=rule.template) if rule and rule.template else ctx

    # -- other mail -----------------------------------------------------------------------------

    def send_job(self, key: str) -> SendOutcome:
        """Send one outbox job (a reply, the week's digest, a draft), once."""
        self.store.outbox.hold(key, self.owner, self.clock.now(), CLAIM_LEASE)
        payload = self.store.outbox.job(key)
        if payload is None:
            self._clear_mark(key)
            return AlreadyDone(key, "done already")
        job = json.loads(payload)

        outbox = self.store.outbox
        still_due = _StillDue(
            lambda pipe: outbox.queue_job_read(pipe, key), lambda a: a[0] is not None
        )
        try:
            message = self._send_once(key, self._build_job(job), still_due, via=self._via(job))
        except PermanentSendError as exc:
            log.error("%s failed for good: %s", key, exc)
            self._note_failure(key, exc, final=True)
            self.writer.run(lambda: (Changeset(jobs_done=(key,)), None), f"finishing {key}")
            return FailedForGood(key, str(exc))
        except TemporarySendError as exc:
            self._note_failure(key, exc, final=False)
            raise
        except _MovedOn:
            return AlreadyDone(key, "done already")
        self.writer.run(lambda: (Changeset(jobs_done=(key,)), None), f"finishing {key}")
        self._unrecorded.discard(key)
        subject = str(message["Subject"]) if message is not None else ""
        if message is not None and job["kind"] != "draft":
            self.writer.notify(MailSent(self.user_address, subject))
        return Sent(key, subject)

    def notify_user(self, key: str, subject: str, text: str) -> None:
        """Mail the user a notice about mailmentor itself (once per ``key``): kept in the
        outbox and sent like a reply, so it survives a crash; a notice already there is not
        written again."""
        if self.store.outbox.job(key) is not None:
            return
        ctx = self.context()
        message = build_reply(None, subject, text, ctx, reply=False)
        job = reply_job(key, message, ctx.now, self.owner)
        self.writer.run(lambda: (Changeset(jobs=(job,)), None), f"queueing {key}")
        send_soon(self._send_now, key)

    def adopt(self, key: str, payload: dict[str, str]) -> SendOutcome:
        """A job queued by mailmentor's layout 1 (its replies and digests went straight onto the
        queue): kept in the outbox like any job, then sent once."""
        job = Job(key, json.dumps(payload), due=self.clock.now() + JOB_GRACE, owner=self.owner)
        if self.store.outbox.job(key) is None:
            self.writer.run(lambda: (Changeset(jobs=(job,)), None), f"adopting {key}")
        return self.send_job(key)

    def _build_job(self, job: dict[str, str]) -> EmailMessage:
        if job["kind"] == "digest":
            slot = datetime.fromisoformat(job["slot"])
            ctx = self.context()
            return build_digest_mail(self.numbered_digest(digest_key(slot, ctx)), slot, ctx)
        parsed = message_from_string(job["message"], policy=email_policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed

    def _via(self, job: dict[str, str]) -> Callable[[EmailMessage], None]:
        if job["kind"] == "draft":
            drafts = self.drafts
            if drafts is None:
                return lambda message: log.warning("no DRAFTS_FOLDER any more: draft dropped")
            return _as_permanent(drafts)
        return self._smtp

    def current_digest(self, numbering: Mapping[str, int] | None = None) -> Digest:
        """The digest as it stands now (what `mailmentor digest` prints)."""
        now = self.clock.now()
        rules = self.rules()  # once: a reload meanwhile must not mix two rule sets
        digest = build_digest(
            list(self.store.loops.open_loops()),
            list(self.store.loops.all_people()),
            now,
            rules=rules,
            closed=self.store.loops.closed_loops_since(now - timedelta(days=7)),
            numbering=numbering,
        )
        local_now = now.astimezone(rules.zone_or(self.timezone))
        return replace(digest, health=tuple(self.health()), health_line=self.health_line(local_now))

    def queue_digest_now(self) -> str:
        """A digest for this moment (`mailmentor digest --send-now`), kept in the outbox like
        the weekly one; returns its job key (send it with `send_job`)."""
        slot = self.clock.now().isoformat()
        key = f"digest:{slot}"
        job = Job(key, json.dumps({"kind": "digest", "slot": slot}), self.clock.now(), self.owner)
        self.writer.run(lambda: (Changeset(jobs=(job,)), None), f"queueing {key}")
        return key

    def numbered_digest(self, key: str) -> Digest:
        """The digest ``key`` with its line numbers bound in the store, so that a reply's "2"
        names the loop this mail showed as 2 (a retried send keeps the numbers it had)."""
        bound = self.store.weekly.digest_lines(key)
        digest = self.current_digest({loop_id: n for n, loop_id in bound.items()})
        kept = self.store.weekly.bind_digest_lines(key, digest.numbers)
        if not digest.numbers.items() <= kept.items():  # another process bound them first
            digest = self.current_digest({loop_id: n for n, loop_id in kept.items()})
        return digest

    # -- the one send path ----------------------------------------------------------------------

    def keep_connection(self) -> None:
        """From now on this thread sends over one SMTP session kept open (a send worker
        thread does), until `close_connection`; other threads connect for each message."""
        if getattr(self._local, "smtp", None) is None:
            self._local.smtp = SmtpConnection(self.smtp)

    def close_connection(self) -> None:
        """End this thread's kept SMTP session, if it has one."""
        connection: SmtpConnection | None = getattr(self._local, "smtp", None)
        self._local.smtp = None
        if connection is not None:
            connection.close()

    def _smtp(self, message: EmailMessage) -> None:
        connection: SmtpConnection | None = getattr(self._local, "smtp", None)
        if connection is None:
            send_message_sync(self.smtp, message)
        else:
            connection.send(message)

    def _send_once(
        self,
        key: str,
        message: EmailMessage,
        still_due: _StillDue,
        via: Callable[[EmailMessage], None] | None = None,
    ) -> EmailMessage | None:
        """Hand ``message`` to ``via`` (SMTP), unless this process already did and only the
        record is missing (None then). Raises SendBusy while another live sender holds the
        item's mark, _MovedOn if another send finished it since it was read; frees the mark on
        any failure but a permanent one.

        The message is built before the mark is taken (a failure building holds nothing), and
        whether the item is still to send is asked again once the mark is ours: a send that
        finished in between clears its mark in the same step as its record, so this is the one
        check that cannot be overtaken. Its reads go in the round trip that takes the mark,
        after it (Redis runs them in order).
        """
        if key in self._unrecorded:
            return None
        me = self._marker()
        outbox = self.store.outbox
        try:
            holder, answers = outbox.begin_send_then(key, me, SEND_LEASE, still_due.queue)
            if holder:
                if not self._dead(holder):
                    raise SendBusy(key, holder)
                log.warning(
                    "taking over %s from %s, which stopped while sending it",
                    key,
                    describe_owner(holder),
                )
                holder, answers = outbox.begin_send_then(
                    key, me, SEND_LEASE, still_due.queue, take_from=holder
                )
                if holder:
                    raise SendBusy(key, holder)
        except SendBusy:
            raise
        except BaseException:
            # The mark may be ours though a read queued after it failed: free it (if ours),
            # or other senders would wait out its lease.
            with contextlib.suppress(Exception):
                outbox.abort_send(key, me)
            raise
        try:
            if not still_due.judge(answers):
                raise _MovedOn(key)
            (via or self._smtp)(message)
        except PermanentSendError:
            raise
        except BaseException:
            self.store.outbox.abort_send(key, me)
            raise
        self._unrecorded.add(key)
        return message

    def _note_failure(self, key: str, exc: Exception, *, final: bool) -> None:
        """Counted for `status` and the digest's health line; never in the way of the send."""
        with contextlib.suppress(Exception):
            self.store.health.send_failed(key, str(exc), self.clock.now(), final=final)

    def _marker(self) -> str:
        """Who holds a sending mark: this process and thread, so that two worker threads of
        one process never both send a duplicated job."""
        return f"{self.owner}/{threading.get_ident()}"

    def _dead(self, holder: str) -> bool:
        process = holder.split("/", 1)[0]
        if process == self.owner:
            return False  # another thread of this very process: it is running
        return provably_dead(holder) or not self._alive(process)

    def _clear_mark(self, key: str) -> None:
        """A mark of this thread's, left from a try that got as far as SMTP (or a dead one's)."""
        holder = self.store.outbox.sender_of(key)
        if holder == self._marker() or (holder and self._dead(holder)):
            self.store.outbox.abort_send(key, holder)
        self._unrecorded.discard(key)

    def context(self) -> ReminderContext:
        return ReminderContext(
            service_address=self.identity.service_address,
            user_address=self.user_address,
            secret=self.secret,
            timezone=self.rules().zone_or(self.timezone),
            now=self.clock.now(),
            templates_dir=self.templates_dir,
        )


def _as_permanent(save: Callable[[EmailMessage], None]) -> Callable[[EmailMessage], None]:
    """Saving a draft is a courtesy: a failure is logged once and the draft dropped."""

    def saving(message: EmailMessage) -> None:
        try:
            save(message)
        except Exception as exc:
            raise PermanentSendError(f"could not save the report-back draft: {exc}") from exc

    return saving
