"""The service: applies intake, the stage machine, rules and scheduling against the store.

This is the one place where the pure parts meet Redis and the outbox. The watcher calls
`handle_raw`, the scheduler calls `tick`, the send actor calls `deliver`; each is safe to repeat.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from email import message_from_string
from email import policy as email_policy
from email.message import EmailMessage
from pathlib import Path
from typing import Protocol
from zoneinfo import ZoneInfo

import redis

from mailmentor import intake, stages
from mailmentor.clock import Clock
from mailmentor.delivery import digest_slot, next_allowed, week_start, within_budget
from mailmentor.digest import Digest, build_digest
from mailmentor.errors import (
    DurationError,
    LoopNotFound,
    PermanentSendError,
    UnprocessableMessage,
)
from mailmentor.imap import MessageMeta
from mailmentor.mailbox_mode import (
    MentorReply,
    Origin,
    UserFollowUp,
    as_forward,
    classify_in_mailbox,
)
from mailmentor.model import ActionKind, Event, EventType, Kind, Loop, PlannedAction, Stage
from mailmentor.parsing.commands import CommandName, parse_command
from mailmentor.parsing.message import (
    ForwardedMessage,
    ParsedMessage,
    derived_message_id,
    parse_message,
)
from mailmentor.reminders import (
    HELP_TEXT,
    ReminderContext,
    asks_for_report,
    build_digest_mail,
    build_give_up_notice,
    build_reminder,
    build_reply,
    build_report_draft,
)
from mailmentor.rules import Rules
from mailmentor.schedule import plan_next
from mailmentor.smtp import SmtpAccount, send_message_sync
from mailmentor.store import Store
from mailmentor.tokens import verify_token

log = logging.getLogger("mailmentor.service")

#: A claimed due loop comes back to the scheduler after this long if its send never finished.
CLAIM_LEASE = timedelta(minutes=10)
SEND_LEASE = timedelta(minutes=5)


class Outbox(Protocol):
    """Where work for the send actors goes (dramatiq in production, in tests too)."""

    def deliver_later(self, loop_id: str, action_key: str) -> None: ...

    def reply_later(self, message: str, key: str) -> None: ...

    def digest_later(self, slot: str) -> None: ...


Listener = Callable[[str, Loop | None], None]


@dataclass
class Service:
    store: Store
    rules: Callable[[], Rules]
    clock: Clock
    identity: intake.Identity
    secret: bytes
    timezone: ZoneInfo
    outbox: Outbox
    smtp: SmtpAccount
    listeners: list[Listener] = field(default_factory=list)
    #: Saves the report-back draft to the user's Drafts (IMAP APPEND); None: no drafts saved.
    drafts: Callable[[EmailMessage], None] | None = None
    #: The user's template overrides (RULES_DIR/templates); None: shipped templates only.
    templates_dir: Path | None = None
    #: The last digest slot this process has decided on (queued, claimed elsewhere, or too old).
    _digest_slot_done: datetime | None = field(default=None, init=False, repr=False)

    # -- intake -------------------------------------------------------------------------------

    def handle_raw(self, uid: int, raw: bytes) -> str:
        """Watcher entry point: never loses a message to a passing Redis outage; returns the
        outcome. Raises UnprocessableMessage for the user's mail that is truly broken."""
        msg = parse_message(raw)
        broken = unusable_reason(msg, raw, self.identity)
        if broken:
            raise UnprocessableMessage(broken)
        delay = 0.5
        while True:
            try:
                outcome = self.handle_message(msg)
            except redis.ConnectionError as exc:
                log.warning("redis unavailable while handling uid %s (%s); retrying", uid, exc)
                time.sleep(delay)
                delay = min(delay * 2, 30.0)
                continue
            log.info("message <%s> (uid %s): %s", msg.message_id, uid, outcome)
            return outcome

    def handle_in_folder(
        self,
        uid: int,
        raw: bytes,
        meta: MessageMeta,
        origin_of: Callable[[MessageMeta], Origin],
    ) -> str:
        """Mailbox-mode watcher entry point: where a message sits (``origin_of``) says what it
        means. Returns the outcome and, like handle_raw, waits out a passing Redis outage.

        The user's reply to a reminder is a command wherever it is found (INBOX when the
        service address is their own plus address, or Sent). Broken mail is ignored, never
        raised: quarantine would move the user's own mail out of their folders.
        """
        msg = parse_message(raw)
        origin = origin_of(meta)
        where = f"{meta.folder} uid {uid}, {origin}"
        broken = unusable_reason(msg, raw, self.identity)
        sender = msg.sender.address if msg.sender else ""
        is_command = (
            origin is not Origin.SERVICE
            and bool(sender)
            and self.identity.is_user(sender)
            and intake.command_token(msg, self.identity) is not None
        )
        if broken:
            outcome = f"ignored: {broken}"
        elif is_command:
            outcome = self._retrying(where, lambda: self.handle_message(msg))
        else:
            outcome = self._retrying(where, lambda: self.handle_in_mailbox(msg, origin))
        log.info("message <%s> (%s): %s", msg.message_id, where, outcome)
        return outcome

    def _retrying(self, where: str, work: Callable[[], str]) -> str:
        """Run ``work`` until Redis answers: a message is never lost to a passing outage."""
        delay = 0.5
        while True:
            try:
                return work()
            except redis.ConnectionError as exc:
                log.warning("redis unavailable while handling %s (%s); retrying", where, exc)
                time.sleep(delay)
                delay = min(delay * 2, 30.0)

    def handle_message(self, msg: ParsedMessage) -> str:
        """A message sent to the service address (BCC, forward, command)."""
        return self.handle_in_mailbox(msg, Origin.SERVICE)

    def handle_in_mailbox(self, msg: ParsedMessage, origin: Origin) -> str:
        """What a message means depends on where it was found (SERVICE: sent to the service)."""
        if self.store.is_processed(msg.message_id):
            return "already handled"
        kind = classify_in_mailbox(msg, self.identity, origin)
        if isinstance(kind, MentorReply):
            outcome = self._mentor_reply(msg, kind)
        elif isinstance(kind, UserFollowUp):
            outcome = self._follow_up(msg, kind)
        elif isinstance(kind, intake.Ignored):
            outcome = f"ignored: {kind.reason}"
        elif isinstance(kind, intake.CommandMail):
            outcome = self._command(msg, kind)
        elif isinstance(kind, intake.ForwardMail):
            outcome = self._forward(msg, kind)
        else:
            outcome = self._outgoing(msg, kind)
        if origin is Origin.SERVICE or not outcome.startswith("ignored"):
            # Mail ignored where it was found may still count once the user marks it (a copy
            # in the tracked folder): only what was used is remembered as handled.
            self.store.mark_processed(msg.message_id)
        return outcome

    def _mentor_reply(self, msg: ParsedMessage, kind: MentorReply) -> str:
        now = self.clock.now()
        reply = as_forward(msg)
        candidates = self.store.list_loops() if kind.may_start else []
        match = intake.pick_loop(
            self._loops_of(msg.all_thread_ids()), candidates, kind.mentor.address, msg.subject, now
        )
        if match is None:
            if not kind.may_start:
                return f"ignored: {kind.mentor.address} wrote outside any tracked thread"
            created = intake.new_advised_loop(msg, reply, now)
            self._create(created)
            return f"new loop {created.id} advised by {kind.mentor.address}"
        changed = self._change(
            match.loop.id,
            lambda lp: (
                lp
                if intake.already_handled(lp, msg.message_id)
                else intake.add_advice(lp, msg, reply, now, match.how)
            ),
        )
        return f"mentor's reply for loop {changed.id} ({changed.stage})"

    def _follow_up(self, msg: ParsedMessage, kind: UserFollowUp) -> str:
        now = self.clock.now()
        known = self._loops_of(msg.all_thread_ids())
        results = []
        for mentor in kind.mentors:
            match = intake.pick_loop(known, [], mentor.address, msg.subject, now)
            if match is None:
                continue
            loop = self._join(match, msg, now)
            results.append(f"follow-up in loop {loop.id} ({loop.stage})")
        return "; ".join(results) or "ignored: not a tracked thread"

    def _join(self, match: intake.Match, msg: ParsedMessage, now: datetime) -> Loop:
        """The user's message joins the matched loop (once, however often it is handled)."""
        return self._change(
            match.loop.id,
            lambda lp: (
                lp
                if intake.already_handled(lp, msg.message_id)
                else intake.join_message(lp, msg, now, match.how)
            ),
        )

    def _outgoing(self, msg: ParsedMessage, kind: intake.OutgoingMail) -> str:
        now = self.clock.now()
        how = intake.handover(msg, self.identity, now, self.timezone)
        for note in how.notes:
            log.warning("message <%s>: %s", msg.message_id, note)
        if how.kind is Kind.GIVE:
            return self._gave(msg, kind, how, now)
        known = self._loops_of(msg.all_thread_ids())
        # A reply with no References (some clients) may still join by subject.
        candidates = self.store.list_loops() if intake.is_reply_subject(msg.subject) else []
        results = []
        for mentor in kind.mentors:
            match = intake.pick_loop(known, candidates, mentor.address, msg.subject, now)
            if match:
                loop = self._join(match, msg, now)
                results.append(f"joined loop {loop.id} ({loop.stage}) {match.how}")
            else:
                loop = intake.new_asked_loop(msg, mentor, now, how)
                self._create(loop)
                results.append(f"new {loop.kind} loop {loop.id} with {mentor.address}")
        return "; ".join(results)

    def _gave(
        self, msg: ParsedMessage, kind: intake.OutgoingMail, how: intake.Handover, now: datetime
    ) -> str:
        """mentor+gave@: value given to these people, kept on the relationship, no loop."""
        for person in kind.mentors:
            event = Event(
                at=now,
                type=EventType.NOTE,
                source=f"message <{msg.message_id}>",
                stage=Stage.CLOSED,
                detail=f"gave: {how.subject}",
            )
            if not any(
                e.source == event.source for e in self.store.relationship_events(person.address)
            ):
                self.store.add_relationship_event(person.address, event)
        return "gave to " + ", ".join(p.address for p in kind.mentors)

    def _forward(self, msg: ParsedMessage, kind: intake.ForwardMail) -> str:
        now = self.clock.now()
        results = []
        for forward in kind.forwards:
            sender = forward.sender
            if sender is None or not sender.address:
                results.append("a forward with no sender was skipped")
                continue
            if self.identity.is_user(sender.address):
                results.append("forward of the user's own mail: not advice")
                continue
            match = self._loop_for_forward(msg, forward)
            if match is None:
                created = intake.new_advised_loop(msg, forward, now)
                self._create(created)
                results.append(f"new loop {created.id} advised by {sender.address}")
            else:
                changed = self._change(
                    match.loop.id,
                    lambda lp, fw=forward, how=match.how: (  # type: ignore[misc]
                        lp
                        if intake.already_handled(lp, msg.message_id)
                        else intake.add_advice(lp, msg, fw, now, how)
                    ),
                )
                results.append(f"advice for loop {changed.id} ({changed.stage})")
        return "; ".join(results) or "nothing usable forwarded"

    def _loop_for_forward(
        self, msg: ParsedMessage, forward: ForwardedMessage
    ) -> intake.Match | None:
        """By Message-ID first; else the newest open loop with that mentor and subject."""
        assert forward.sender is not None
        ids = [*intake.forward_thread_ids(forward), *msg.references, *msg.in_reply_to]
        return intake.pick_loop(
            self._loops_of(ids),
            self.store.list_loops(),
            forward.sender.address,
            forward.subject or msg.subject,
            self.clock.now(),
        )

    def _command(self, msg: ParsedMessage, kind: intake.CommandMail) -> str:
        if not verify_token(self.secret, kind.loop_id, kind.token):
            return f"ignored: invalid token for loop {kind.loop_id}"
        loop = self.store.find_loop(kind.loop_id)
        if loop is None:
            return f"ignored: command for unknown loop {kind.loop_id}"
        command = parse_command(msg.reply_text)
        if command is None:
            return "ignored: empty reply"
        if command.name is CommandName.HELP:
            self._reply(msg, f"Re: {loop.subject}", HELP_TEXT, loop)
            return "answered help"
        if command.name is CommandName.UNKNOWN:
            text = f'mailmentor did not understand "{command.argument}".\n\n{HELP_TEXT}'
            self._reply(msg, f"Re: {loop.subject}", text, loop)
            return f"answered unknown command {command.argument!r}"
        now = self.clock.now()
        try:
            changed = self._change(
                loop.id,
                lambda lp: (
                    lp
                    if intake.already_handled(lp, msg.message_id)
                    else intake.apply_command(lp, command, now, self.timezone, msg.message_id)
                ),
            )
        except (stages.TransitionError, DurationError) as exc:
            return f"command {command.name} not applied: {exc}"
        return f"command {command.name}: loop {changed.id} is {changed.stage}"

    def _reply(self, msg: ParsedMessage, subject: str, text: str, loop: Loop | None) -> None:
        reply = build_reply(msg.message_id, subject, text, self._context(), loop)
        self.outbox.reply_later(reply.as_string(), f"reply:{msg.message_id}")

    # -- loops and schedule -------------------------------------------------------------------

    def _loops_of(self, message_ids: tuple[str, ...] | list[str]) -> list[Loop]:
        found = []
        for loop_id in self.store.loops_for_message_ids(message_ids):
            loop = self.store.find_loop(loop_id)
            if loop is not None:
                found.append(loop)
        return sorted(found, key=lambda lp: lp.created_at)

    def _create(self, loop: Loop) -> None:
        loop = loop.model_copy(update={"next_action": plan_next(loop, self.rules())})
        if self.store.add_loop(loop):
            self.store.index_message_ids(loop.id, loop.message_ids)
            self._publish_schedule(loop)
            self._notify(f"loop {loop.id} started: {loop.stage} with {loop.mentor}", loop)
        else:
            self._change(loop.id, lambda lp: lp)

    def _change(self, loop_id: str, change: Callable[[Loop], Loop]) -> Loop:
        """Apply a pure change, re-plan the next action, and keep the indexes in step."""
        before: list[Loop] = []
        rules = self.rules()

        def apply(loop: Loop) -> Loop:
            before[:] = [loop]
            changed = change(loop)
            return changed.model_copy(update={"next_action": plan_next(changed, rules)})

        loop = self.store.update_loop(loop_id, apply)
        self.store.index_message_ids(loop.id, loop.message_ids)
        self._publish_schedule(loop)
        old = before[0] if before else None
        if old is not None and old.stage != loop.stage:
            self._notify(f"loop {loop.id}: {old.stage} → {loop.stage}", loop)
        return loop

    def _publish_schedule(self, loop: Loop) -> None:
        if loop.next_action is None:
            self.store.unschedule(loop.id)
        else:
            self.store.schedule(loop.id, loop.next_action.due_at)

    def _notify(self, text: str, loop: Loop | None) -> None:
        log.info("%s", text)
        for listener in self.listeners:
            listener(text, loop)

    def reconcile(self) -> int:
        """Re-plan every open loop under the current rules (start-up, rule changes)."""
        count = 0
        for loop in self.store.list_loops():
            if not loop.stage.is_open:
                self.store.unschedule(loop.id)
                continue
            action = plan_next(loop, self.rules())
            if action != loop.next_action:
                self._change(loop.id, lambda lp: lp)
            else:
                self._publish_schedule(loop)
            count += 1
        return count

    def tick(self) -> int:
        """Move due loops to the outbox, within quiet hours, business days and the weekly budget.

        A loop whose plan moved under new rules is re-filed; one that may not be sent now is
        re-filed at the first moment it may.
        """
        now = self.clock.now()
        rules = self.rules()
        tz = self._zone(rules)
        due: list[tuple[Loop, PlannedAction]] = []
        for loop_id in self.store.claim_due(now, CLAIM_LEASE):
            loop = self.store.find_loop(loop_id)
            if loop is None or not loop.stage.is_open:
                self.store.unschedule(loop_id)
                continue
            action = plan_next(loop, rules)
            if action != loop.next_action:
                loop = self._change(loop_id, lambda lp: lp)
                action = loop.next_action
            if action is None:
                continue
            allowed = next_allowed(
                max(action.due_at, now),
                tz=tz,
                quiet_hours=rules.quiet_hours,
                business_days_only=rules.business_days_only,
            )
            if allowed > now:
                self.store.schedule(loop_id, allowed)
                continue
            due.append((loop, action))
        return self._dispatch(due, now, tz, rules.reminder_budget)

    def _dispatch(
        self,
        due: list[tuple[Loop, PlannedAction]],
        now: datetime,
        tz: ZoneInfo,
        budget: int | None,
    ) -> int:
        """Reminders count against the weekly budget (most overdue first); the rest wait a week."""
        week = week_start(now, tz)
        reminders = [
            (loop.id, action.due_at, loop.nudges)
            for loop, action in due
            if action.kind is ActionKind.REMIND
        ]
        _, wait = within_budget(reminders, self.store.reminders_in_week(week), budget)
        waiting = set(wait)
        sent = 0
        for loop, action in due:
            if loop.id in waiting:
                self.store.schedule(loop.id, week + timedelta(days=7))
                continue
            if action.kind is ActionKind.REMIND:
                self.store.count_reminder(week)
            self.outbox.deliver_later(loop.id, action.key)
            sent += 1
        if waiting:
            log.info("weekly reminder budget (%s) reached: %d reminders wait", budget, len(waiting))
        return sent

    # -- the weekly digest ----------------------------------------------------------------------

    def digest_tick(self) -> str | None:
        """Queue this week's digest once its moment (rules ``digest``) has come; returns the
        slot queued. Quiet hours are respected; weeks before the first run get none."""
        rules = self.rules()
        if rules.digest_day is None or rules.digest_time is None:
            return None
        now = self.clock.now()
        tz = self._zone(rules)
        slot = digest_slot(now, day=rules.digest_day, at=rules.digest_time, tz=tz)
        if slot == self._digest_slot_done:
            return None  # decided already: no Redis round trips on every scheduler pass
        if slot <= self.store.digest_epoch(now):
            self._digest_slot_done = slot
            return None
        allowed = next_allowed(slot, tz=tz, quiet_hours=rules.quiet_hours, business_days_only=False)
        if allowed > now:
            return None
        claimed = self.store.claim_digest(slot)
        self._digest_slot_done = slot
        if not claimed:
            return None
        self.outbox.digest_later(slot.isoformat())
        log.info("weekly digest of %s queued", slot.isoformat())
        return slot.isoformat()

    def _zone(self, rules: Rules) -> ZoneInfo:
        """The rules' time zone when they set one, else the TIMEZONE setting."""
        return rules.zone if rules.timezone else self.timezone

    def current_digest(self) -> Digest:
        """The digest as it stands now (what `mailmentor digest` prints)."""
        return build_digest(self.store.list_loops(), self.store.gifts(), self.clock.now())

    def send_digest(self, slot: str) -> str:
        """Send the digest of the week of ``slot`` (ISO 8601), at most once."""
        try:
            message = self._send_once(
                f"digest:{slot}",
                lambda: build_digest_mail(
                    self.current_digest(), datetime.fromisoformat(slot), self._context()
                ),
            )
        except PermanentSendError as exc:
            log.error("weekly digest %s failed for good: %s", slot, exc)
            return f"digest failed: {exc}"
        if message is None:
            return f"digest {slot} already sent"
        self._notify(f"sent to {self.smtp_user_address}: {message['Subject']}", None)
        return f"sent digest {slot}"

    # -- delivery (runs in the send actor) ------------------------------------------------------

    def deliver(self, loop_id: str, action_key: str) -> str:
        """Send the reminder for one due action, at most once, and record it on the loop."""
        try:
            loop = self.store.get_loop(loop_id)
        except LoopNotFound:
            return f"loop {loop_id} is gone"
        action = loop.next_action
        if action is None or action.key != action_key:
            return f"loop {loop_id} moved on; {action_key} is stale"
        send_key = f"{loop_id}:{action_key}"
        if not self.store.was_sent(send_key):
            try:
                message = self._send_once(send_key, lambda: self._render(loop, action))
            except PermanentSendError as exc:
                self._record_due(loop_id, action, str(exc))
                log.error("reminder for loop %s failed for good: %s", loop_id, exc)
                return f"failed: {exc}"
            if message is None:
                return f"{send_key} is being sent by another worker"
            self._notify(f"sent to {self.smtp_user_address}: {message['Subject']}", loop)
        self._save_draft(loop, action, send_key)
        self._record_due(loop_id, action, "")
        return f"sent {action.kind} for loop {loop_id}"

    def _save_draft(self, loop: Loop, action: PlannedAction, send_key: str) -> None:
        """With the reminder to report back, put a starter report in the user's Drafts, once.

        mailmentor never sends it; a failing APPEND is logged and the reminder stands.
        """
        if self.drafts is None or not asks_for_report(loop, action):
            return
        key = f"{send_key}:draft"
        if self.store.was_sent(key) or not self.store.begin_send(key, SEND_LEASE):
            return
        try:
            self.drafts(build_report_draft(loop, self._context()))
        except Exception as exc:  # the draft is a courtesy; never let it block the reminder
            self.store.abort_send(key)
            log.error("could not save the report-back draft for loop %s: %s", loop.id, exc)
            return
        self.store.finish_send(key)

    @property
    def smtp_user_address(self) -> str:
        return self.identity.user_addresses[0]

    def _record_due(self, loop_id: str, action: PlannedAction, error: str) -> None:
        now = self.clock.now()

        def record(loop: Loop) -> Loop:
            if loop.next_action is None or loop.next_action.key != action.key:
                return loop  # already recorded by an earlier run of this job
            return stages.apply_due_action(loop, action, now, error)

        self._change(loop_id, record)

    def _render(self, loop: Loop, action: PlannedAction) -> EmailMessage:
        ctx = self._context()
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

    def send_reply(self, message: str, key: str) -> str:
        """Send a short reply (help, unknown command) once."""

        def parsed() -> EmailMessage:
            reply = message_from_string(message, policy=email_policy.default)
            assert isinstance(reply, EmailMessage)
            return reply

        try:
            sent = self._send_once(key, parsed)
        except PermanentSendError as exc:
            return f"reply failed: {exc}"
        return f"sent reply {key}" if sent is not None else f"{key} already sent"

    def _send_once(self, key: str, build: Callable[[], EmailMessage]) -> EmailMessage | None:
        """Send what ``build`` makes, unless ``key`` was sent or another worker is sending it
        (None then). Marked before and after SMTP, so a retried job never mails twice: a 5xx
        (PermanentSendError, raised) counts as done, anything else frees ``key`` for a retry."""
        if self.store.was_sent(key) or not self.store.begin_send(key, SEND_LEASE):
            return None
        message = build()
        try:
            send_message_sync(self.smtp, message)
        except PermanentSendError:
            self.store.finish_send(key)
            raise
        except BaseException:
            self.store.abort_send(key)
            raise
        self.store.finish_send(key)
        return message

    def _context(self) -> ReminderContext:
        return ReminderContext(
            service_address=self.identity.service_address,
            user_address=self.smtp_user_address,
            secret=self.secret,
            timezone=self.timezone,
            now=self.clock.now(),
            templates_dir=self.templates_dir,
        )


def unusable_reason(msg: ParsedMessage, raw: bytes, identity: intake.Identity) -> str:
    """Why the user's message is truly broken (no Message-ID, no text, nothing forwarded), or "".

    Such mail cannot join a thread or say anything; strangers' broken mail is simply ignored.
    """
    sender = msg.sender.address if msg.sender else ""
    if not sender or not identity.is_user(sender):
        return ""
    if msg.message_id != derived_message_id(raw) or msg.text.strip() or msg.forwarded:
        return ""
    return f"mail from {sender} with no Message-ID and no text"


def describe_stage(stage: Stage) -> str:
    return stage.value.replace("_", " ")


__all__ = ["Outbox", "Service", "datetime"]
