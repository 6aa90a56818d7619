"""Intake: apply one parsed message to the loops it concerns, atomically and exactly once.

What the message means is decided by the pure `mailmentor.intake` and `mailbox_mode`; here its
candidate loops are looked up through the Message-ID index and the mentor's person record (never
by reading all loops), the pure functions build the changed loops, and the writer commits them
with the message's applied mark in one step. A message applied before is a `Duplicate`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from mailmentor import intake, people, stages
from mailmentor.clock import Clock
from mailmentor.errors import DurationError, UnprocessableMessage
from mailmentor.imap import MessageMeta
from mailmentor.intake import Identity, normalize_subject
from mailmentor.mailbox_mode import (
    MentorReply,
    Origin,
    UserFollowUp,
    as_forward,
    classify_in_mailbox,
)
from mailmentor.model import Event, EventType, Kind, Loop, Stage
from mailmentor.parsing.automatic import is_robot_address
from mailmentor.parsing.commands import Command, CommandName, parse_commands
from mailmentor.parsing.digest_replies import (
    HelpWanted,
    LearnTopic,
    LineCommand,
    Unnumbered,
    Unreadable,
    parse_digest_reply,
)
from mailmentor.parsing.message import (
    Address,
    ForwardedMessage,
    ParsedMessage,
    derived_message_id,
    parse_message,
)
from mailmentor.reminders import ReminderContext, answers, build_reply
from mailmentor.rules import Rules
from mailmentor.schedule import planned
from mailmentor.service.outcomes import (
    Advised,
    Answered,
    CommandApplied,
    CommandRefused,
    Created,
    Duplicate,
    Effect,
    Gave,
    Handled,
    Ignored,
    Joined,
    Outcome,
    Skipped,
)
from mailmentor.service.writer import LoopWriter, reply_job, send_soon
from mailmentor.store import Store
from mailmentor.store.changes import Changeset, Indexed, Job, LoopChange, PersonChange
from mailmentor.store.loops import clean_message_id
from mailmentor.tokens import verify_digest_token, verify_token

log = logging.getLogger("mailmentor.service")


@dataclass
class _Working:
    """The loops one decision reads and changes; several changes to one loop become one."""

    known: dict[str, Loop]
    changed: dict[str, Loop] = field(default_factory=dict)
    created: set[str] = field(default_factory=set)
    index: dict[str, list[str]] = field(default_factory=dict)

    def current(self, loop_id: str) -> Loop | None:
        return self.changed.get(loop_id) or self.known.get(loop_id)

    def put(self, loop: Loop, index: Iterable[str], new: bool = False) -> Loop:
        self.changed[loop.id] = loop
        if new:
            self.created.add(loop.id)
        self.index.setdefault(loop.id, []).extend(intake.index_ids(list(index)))
        return loop

    def changes(self, applied: str) -> tuple[LoopChange, ...]:
        return tuple(
            LoopChange(
                before=None if loop_id in self.created else self.known[loop_id],
                after=loop,
                index=tuple(dict.fromkeys(self.index.get(loop_id, ()))),
                applied=(applied,),
            )
            for loop_id, loop in self.changed.items()
        )


class Intake:
    """Applies the mail the watcher (or ``import``) reads: asks, forwards, replies, follow-ups,
    commands. Every entry point is safe to call again with the same message."""

    def __init__(
        self,
        store: Store,
        writer: LoopWriter,
        identity: Identity,
        secret: bytes,
        timezone: ZoneInfo,
        clock: Clock,
        context: Callable[[], ReminderContext],
        send_now: Callable[[str], None],
        owner: str,
        parse: Callable[[bytes], ParsedMessage] = parse_message,
        confirm: bool = True,
    ) -> None:
        self.store = store
        self._parse = parse  # `ParsePool.parse` where batches are parsed ahead
        self.writer = writer
        self.identity = identity
        self.secret = secret
        self.timezone = timezone
        self.clock = clock
        self.context = context
        self._send_now = send_now
        self.owner = owner
        #: Confirm applied commands (CONFIRM_COMMANDS); refusals and help are always answered.
        self.confirm = confirm

    def zone(self) -> ZoneInfo:
        """The user's time zone: the rule files' when one sets it, else TIMEZONE."""
        return self.writer.rules().zone_or(self.timezone)

    # -- entry points ---------------------------------------------------------------------------

    def handle_raw(self, uid: int, raw: bytes) -> Outcome:
        """Mail sent to the service address. Raises UnprocessableMessage for the user's mail
        that is truly broken (so it can be quarantined); store errors pass through."""
        msg = self._parse(raw)
        broken = unusable_reason(msg, raw, self.identity)
        if broken:
            raise UnprocessableMessage(broken)
        outcome = self.handle(msg, Origin.SERVICE)
        log.info("message <%s> (uid %s): %s", msg.message_id, uid, outcome)
        return outcome

    def handle_in_folder(
        self,
        uid: int,
        raw: bytes,
        meta: MessageMeta,
        origin_of: Callable[[MessageMeta], Origin],
        *,
        in_sent: bool = False,
    ) -> Outcome:
        """Mailbox mode: where a message sits (``origin_of``) says what it means; ``in_sent``:
        the folder is the user's Sent. Broken mail is ignored, never raised: quarantine would
        move the user's own mail."""
        msg = self._parse(raw)
        origin = origin_of(meta)
        where = f"{meta.folder} uid {uid}, {origin}"
        broken = unusable_reason(msg, raw, self.identity)
        outcome = Ignored(broken) if broken else self.handle(msg, origin, in_sent=in_sent)
        log.info("message <%s> (%s): %s", msg.message_id, where, outcome)
        return outcome

    def handle(self, msg: ParsedMessage, origin: Origin, *, in_sent: bool = False) -> Outcome:
        """What the message means where it was found, applied once.

        The user's reply to a reminder is a command wherever it is found (INBOX when the service
        address is their own plus address, or Sent). ``in_sent``: the message sits in the user's
        Sent folder, so it is their own mail though no receiving server vouched for it.
        """
        identity = self.identity
        if in_sent and identity.authserv_id:
            identity = Identity(identity.user_addresses, identity.service_address)
        sender = msg.sender.address if msg.sender else ""
        command = (
            origin is not Origin.SERVICE
            and bool(sender)
            and identity.is_user(sender)
            and (
                intake.command_token(msg, identity) is not None
                or intake.digest_reference(msg, identity) is not None
            )
        )
        kind = classify_in_mailbox(msg, identity, Origin.SERVICE if command else origin)
        if isinstance(kind, intake.Ignored):
            return Ignored(kind.reason)
        outcome, jobs = self.writer.run(
            lambda: self._decide(msg, kind), f"message <{msg.message_id}>"
        )
        for job in jobs:  # sent at once; the outbox keeps it should this process die first
            send_soon(self._send_now, job.key)
        return outcome

    # -- deciding -------------------------------------------------------------------------------

    def _decide(
        self, msg: ParsedMessage, kind: Meaning
    ) -> tuple[Changeset, tuple[Outcome, tuple[Job, ...]]]:
        forwards = kind.forwards if isinstance(kind, intake.ForwardMail) else ()
        ids = [*msg.all_thread_ids(), *(i for f in forwards for i in intake.forward_thread_ids(f))]
        index = self.store.loops.lookup(ids)
        own = index.get(clean_message_id(msg.message_id))
        if own is not None and own.applied_to:
            return Changeset(), (Duplicate(), ())
        decision = _Decision(self, msg, index, self.clock.now(), kind)
        effects = decision.apply(kind)
        change = Changeset(
            loops=decision.work.changes(msg.message_id),
            people=decision.people,
            jobs=decision.jobs,
        )
        if not change and all(isinstance(e, Skipped) for e in effects):
            reasons = "; ".join(str(e) for e in effects) or "nothing usable forwarded"
            return change, (Ignored(reasons), ())
        return change, (Handled(tuple(effects)), decision.jobs)


Meaning = (
    intake.CommandMail
    | intake.DigestReplyMail
    | intake.ForwardMail
    | intake.OutgoingMail
    | MentorReply
    | UserFollowUp
)


class _Decision:
    """One message's effect on the loops, decided from what the store holds now."""

    def __init__(
        self,
        service: Intake,
        msg: ParsedMessage,
        index: dict[str, Indexed],
        now: datetime,
        kind: Meaning,
    ) -> None:
        self.s = service
        self.msg = msg
        self.index = index
        self.now = now
        self.jobs: tuple[Job, ...] = ()
        self.people: tuple[PersonChange, ...] = ()
        wanted = {i for entry in index.values() for i in entry.loops}
        fresh = _fresh_ids(msg, kind)
        self.work = _Working(known=service.store.loops.get_many(wanted | fresh))
        #: Ids a new loop of this message would get, read above and not there.
        self.absent = fresh - set(self.work.known)

    # lookups

    def by_reference(self, message_ids: Iterable[str]) -> list[Loop]:
        """Loops of these Message-IDs' thread, oldest first (changes of this message included)."""
        found: dict[str, Loop] = {}
        for mid in message_ids:
            entry = self.index.get(clean_message_id(mid))
            for loop_id in entry.loops if entry else ():
                loop = self.work.current(loop_id)
                if loop is not None:
                    found[loop_id] = loop
        return sorted(found.values(), key=lambda lp: (lp.created_at, lp.id))

    def same_subject(self, mentor: str, subject: str) -> list[Loop]:
        """Open loops with this mentor and this subject, through the mentor's person record."""
        person = self.s.store.loops.person(mentor)
        if person is None:
            return []
        key = people.subject_key(normalize_subject(subject))
        ids = [i for i, k in person.open.items() if k == key]
        missing = [i for i in ids if self.work.current(i) is None]
        self.work.known.update(self.s.store.loops.get_many(missing))
        return [lp for lp in (self.work.current(i) for i in ids) if lp is not None]

    def existing(self, loop: Loop) -> Loop | None:
        """A loop with the new loop's (deterministic) id, made by an earlier message."""
        current = self.work.current(loop.id)
        if current is None and loop.id not in self.absent:
            found = self.s.store.loops.get(loop.id)
            if found is not None:
                self.work.known[loop.id] = found
                current = found
        return current

    def pick(
        self, known: list[Loop], mentor: str, subject: str, by_subject: bool
    ) -> intake.Match | None:
        """The thread's loop with this mentor; failing that (``by_subject``), their open loop
        with this subject, looked up only then."""
        match = intake.pick_loop(known, [], mentor, subject, self.now)
        if match is not None or not by_subject:
            return match
        candidates = self.same_subject(mentor, subject)
        return intake.pick_loop(known, candidates, mentor, subject, self.now)

    # applying

    def apply(self, kind: Meaning) -> list[Effect]:
        if isinstance(kind, MentorReply):
            return self._mentor_reply(kind)
        if isinstance(kind, UserFollowUp):
            return self._follow_up(kind)
        if isinstance(kind, intake.CommandMail):
            return self._command(kind)
        if isinstance(kind, intake.DigestReplyMail):
            return self._digest_reply(kind)
        if isinstance(kind, intake.ForwardMail):
            return self._forward(kind)
        return self._outgoing(kind)

    def _create(self, loop: Loop, index: Iterable[str]) -> Effect | None:
        """Start ``loop``; if an earlier message made it already, None (the caller joins)."""
        if self.existing(loop) is not None:
            return None
        self.work.put(loop, [*loop.message_ids, *index], new=True)
        return Created(loop.id, loop.kind, loop.mentor.address, loop.stage)

    def _mentor_reply(self, kind: MentorReply) -> list[Effect]:
        msg = self.msg
        reply = as_forward(msg)
        match = self.pick(
            self.by_reference(msg.all_thread_ids()),
            kind.mentor.address,
            msg.subject,
            kind.may_start,
        )
        if match is None:
            if not kind.may_start:
                return [Skipped(f"{kind.mentor.address} wrote outside any tracked thread")]
            created = intake.new_advised_loop(msg, reply, self.now)
            effect = self._create(created, msg.all_thread_ids())
            if effect is not None:
                return [effect]
            match = intake.Match(self.work.current(created.id) or created, "by thread root")
        loop = self.work.current(match.loop.id) or match.loop
        changed = intake.add_advice(loop, msg, reply, self.now, match.how)
        self.work.put(changed, msg.all_thread_ids())
        return [Advised(changed.id, changed.stage, direct=True)]

    def _follow_up(self, kind: UserFollowUp) -> list[Effect]:
        known = self.by_reference(self.msg.all_thread_ids())
        effects: list[Effect] = []
        for mentor in kind.mentors:
            match = intake.pick_loop(known, [], mentor.address, self.msg.subject, self.now)
            if match is not None:
                loop = self._join(match)
                effects.append(Joined(loop.id, loop.stage, follow_up=True))
        return effects or [Skipped("not a tracked thread")]

    def _join(self, match: intake.Match) -> Loop:
        loop = self.work.current(match.loop.id) or match.loop
        joined = intake.join_message(loop, self.msg, self.now, match.how)
        return self.work.put(joined, self.msg.all_thread_ids())

    def _outgoing(self, kind: intake.OutgoingMail) -> list[Effect]:
        msg, now = self.msg, self.now
        how = intake.handover(msg, self.s.identity, now, self.s.zone())
        for note in how.notes:
            log.warning("message <%s>: %s", msg.message_id, note)
        if how.kind is Kind.GIVE:
            return self._gave(kind.mentors, how)
        known = self.by_reference(msg.all_thread_ids())
        # A reply with no References (some clients) may still join by subject.
        by_subject = intake.is_reply_subject(msg.subject)
        effects: list[Effect] = []
        for mentor in kind.mentors:
            match = self.pick(known, mentor.address, msg.subject, by_subject)
            if match is None:
                fresh = intake.new_asked_loop(msg, mentor, now, how)
                created = self._create(fresh, msg.all_thread_ids())
                if created is not None:
                    effects.append(created)
                    continue
                match = intake.Match(self.work.current(fresh.id) or fresh, "by thread root")
            loop = self._join(match)
            effects.append(Joined(loop.id, loop.stage, match.how))
        return effects

    def _gave(self, mentors: tuple[Address, ...], how: intake.Handover) -> list[Effect]:
        """mentor+gave@: value given to these people, kept on the relationship, no loop."""
        source = f"message <{self.msg.message_id}>"
        records = self.s.store.loops.people(m.address for m in mentors)
        changes = []
        for person in mentors:
            event = Event(
                at=self.now,
                type=EventType.NOTE,
                source=source,
                stage=Stage.CLOSED,
                detail=f"gave: {how.subject}",
            )
            before = records.get(person.address.lower())
            after = people.with_gift(before, person.address.lower(), event)
            if after is not None:
                changes.append(PersonChange(before, after))
        self.people = tuple(changes)
        return [Gave(tuple(p.address for p in mentors))]

    def _forward(self, kind: intake.ForwardMail) -> list[Effect]:
        msg, now = self.msg, self.now
        effects: list[Effect] = []
        for forward in kind.forwards:
            sender = forward.sender
            if sender is None or not sender.address:
                effects.append(Skipped("a forward with no sender was skipped"))
                continue
            if self.s.identity.is_user(sender.address):
                effects.append(Skipped("forward of the user's own mail: not advice"))
                continue
            if is_robot_address(sender.address):
                effects.append(Skipped(f"forward of automatic mail from {sender.address}"))
                continue
            thread = [*intake.forward_thread_ids(forward), *msg.references, *msg.in_reply_to]
            match = self.pick(
                self.by_reference(thread), sender.address, forward.subject or msg.subject, True
            )
            if match is None:
                fresh = intake.new_advised_loop(msg, forward, now)
                created = self._create(fresh, intake.forward_thread_ids(forward))
                if created is not None:
                    effects.append(created)
                    continue
                match = intake.Match(self.work.current(fresh.id) or fresh, "by thread root")
            effects.append(self._advice(match, forward))
        return effects

    def _advice(self, match: intake.Match, forward: ForwardedMessage) -> Effect:
        loop = self.work.current(match.loop.id) or match.loop
        changed = intake.add_advice(loop, self.msg, forward, self.now, match.how)
        self.work.put(changed, intake.forward_thread_ids(forward))
        return Advised(changed.id, changed.stage)

    def _command(self, kind: intake.CommandMail) -> list[Effect]:
        """Every command of the reply, in order, then one answer to all of them."""
        s, msg = self.s, self.msg
        if not verify_token(s.secret, kind.loop_id, kind.token):
            return [Skipped(f"invalid token for loop {kind.loop_id}")]
        loop = self.work.current(kind.loop_id) or self.existing_by_id(kind.loop_id)
        if loop is None:
            return [Skipped(f"command for unknown loop {kind.loop_id}")]
        commands = parse_commands(msg.reply_text)
        if not commands:
            return [Skipped("empty reply")]
        rules = s.writer.rules()
        zone = rules.zone_or(s.timezone)
        loop, results, effects = self._apply_commands(loop, commands, zone)
        text = answers.answer_text(results, planned(loop, rules), zone, confirm=s.confirm)
        if text is not None:
            self._answer(text, loop)
        self.work.put(loop, ())  # marks the message applied: answered once, never twice
        return effects

    def _apply_commands(
        self, loop: Loop, commands: Iterable[Command], zone: ZoneInfo
    ) -> tuple[Loop, list[answers.CommandResult], list[Effect]]:
        """Apply ``commands`` to ``loop`` in order ("done - …", then "snooze 2w"): the loop
        after them, what each did, and the effects to log."""
        results: list[answers.CommandResult] = []
        effects: list[Effect] = []
        for command in commands:
            if command.name is CommandName.HELP:
                results.append(answers.HelpAsked())
                effects.append(Answered(loop.id))
                continue
            if command.name is CommandName.UNKNOWN:
                results.append(answers.NotUnderstood(command.argument or ""))
                effects.append(Answered(loop.id, command.argument or ""))
                continue
            try:
                changed = intake.apply_command(loop, command, self.now, zone, self.msg.message_id)
            except (stages.TransitionError, DurationError) as exc:
                bad_time = isinstance(exc, DurationError)
                results.append(answers.Refused(command, loop, str(exc), bad_duration=bad_time))
                effects.append(CommandRefused(loop.id, str(command.name), str(exc)))
                continue
            loop = changed
            results.append(answers.Applied(command, loop))
            effects.append(CommandApplied(loop.id, str(command.name), loop.stage))
        return loop, results, effects

    def _digest_reply(self, kind: intake.DigestReplyMail) -> list[Effect]:
        """A reply to the weekly digest: each line's commands applied to the loops its numbers
        name in that digest, ``learn <topic>`` started, then one answer to all of it."""
        s, msg = self.s, self.msg
        if not verify_digest_token(s.secret, kind.digest_id, kind.token):
            return [Skipped(f"invalid token for digest {kind.digest_id}")]
        lines = parse_digest_reply(msg.reply_text)
        if not lines:
            return [Skipped("empty reply")]
        bound = s.store.weekly.digest_lines(kind.digest_id)
        rules = s.writer.rules()
        zone = rules.zone_or(s.timezone)
        results: list[answers.DigestResult] = []
        effects: list[Effect] = []
        touched: dict[int, tuple[str, list[answers.CommandResult]]] = {}
        for line in lines:
            if isinstance(line, HelpWanted):
                results.append(answers.HelpAsked())
            elif isinstance(line, Unreadable):
                results.append(answers.NotUnderstood(line.text))
            elif isinstance(line, LearnTopic):
                learn = intake.new_learn_loop(
                    line.topic, s.identity.user_addresses[0], msg.message_id, self.now
                )
                if self._create(learn, ()) is not None:
                    effects.append(Created(learn.id, learn.kind, "", learn.stage))
                    results.append(answers.LearnStarted(line.topic, planned(learn, rules)))
            else:
                results.extend(self._numbered(line, bound, zone, touched, effects))
        results = [_line_answered(r, touched, self.work, rules) for r in results]
        text = answers.digest_answer_text(results, zone, confirm=s.confirm)
        if text is not None:
            self._answer(text)
            if not self.work.changed:
                self._mark_answered(bound)
        return effects or [Answered("", "digest reply")]

    def _mark_answered(self, bound: dict[int, str]) -> None:
        """A reply that changed no loop (help, lines not applied) is still marked applied, on
        one loop of its digest, so that reading the message again answers it no second time."""
        for loop_id in bound.values():
            loop = self.work.current(loop_id) or self.existing_by_id(loop_id)
            if loop is not None:
                self.work.put(loop, ())
                return

    def _numbered(
        self,
        line: LineCommand | Unnumbered,
        bound: dict[int, str],
        zone: ZoneInfo,
        touched: dict[int, tuple[str, list[answers.CommandResult]]],
        effects: list[Effect],
    ) -> list[answers.DigestResult]:
        """One command for digest lines: applied to each named line's loop."""
        if not bound:
            return [answers.DigestGone()]
        if isinstance(line, Unnumbered) and len(bound) != 1:
            return [answers.NoLineNamed(line.text)]  # "done" alone: fine if only one line
        results: list[answers.DigestResult] = []
        numbers = line.numbers if isinstance(line, LineCommand) else tuple(bound)
        for number in numbers:
            loop_id = bound.get(number)
            loop = None
            if loop_id is not None:
                loop = self.work.current(loop_id) or self.existing_by_id(loop_id)
            if loop is None:
                results.append(answers.NoSuchLine(number, line.text))
                continue
            loop, done, did = self._apply_commands(loop, [line.command], zone)
            self.work.put(loop, ())
            effects.extend(did)
            if number not in touched:
                touched[number] = (loop.id, [])
                results.append(answers.LineAnswered(number, loop, ()))
            touched[number][1].extend(done)
        return results

    def existing_by_id(self, loop_id: str) -> Loop | None:
        found = self.s.store.loops.get(loop_id)
        if found is not None:
            self.work.known[loop_id] = found
        return found

    def _answer(self, text: str, loop: Loop | None = None) -> None:
        """The one answer to this message (its job key is derived from the message: never
        two). With a loop it goes in the loop's conversation, under the loop's subject."""
        ctx = self.s.context()
        reply = build_reply(self.msg.message_id, self.msg.subject or "Your week", text, ctx, loop)
        key = f"reply:{self.msg.message_id}"
        self.jobs = (*self.jobs, reply_job(key, reply, self.now, self.s.owner))


def _line_answered(
    result: answers.DigestResult,
    touched: dict[int, tuple[str, list[answers.CommandResult]]],
    work: _Working,
    rules: Rules,
) -> answers.DigestResult:
    """A digest line's answer with every command that named it and its loop as it ends up."""
    if not isinstance(result, answers.LineAnswered):
        return result
    loop_id, done = touched[result.number]
    loop = work.current(loop_id) or result.loop
    return answers.LineAnswered(result.number, planned(loop, rules), tuple(done))


def _fresh_ids(msg: ParsedMessage, kind: Meaning) -> set[str]:
    """The ids of the loops this message could start (they are deterministic), so that they are
    read with the thread's loops, in one round trip, and starting one needs no read of its own.
    One missed here is simply read when it is needed."""
    if isinstance(kind, intake.OutgoingMail):
        root = msg.references[0] if msg.references else msg.message_id
        return {intake.loop_id_for(root, mentor.address) for mentor in kind.mentors}
    if isinstance(kind, intake.ForwardMail):
        found = set()
        for forward in kind.forwards:
            if forward.sender is not None and forward.sender.address:
                thread = intake.forward_thread_ids(forward) or [msg.message_id]
                found.add(intake.loop_id_for(thread[0], forward.sender.address))
        return found
    return set()


def unusable_reason(msg: ParsedMessage, raw: bytes, identity: Identity) -> str:
    """Why the user's message is truly broken (no Message-ID, no text, nothing forwarded), or "".

    Such mail cannot join a thread or say anything; strangers' broken mail is simply ignored.
    """
    sender = msg.sender.address if msg.sender else ""
    if not sender or not identity.is_user(sender):
        return ""
    if msg.text.strip() or msg.forwarded:
        return ""
    # Its own Message-ID cannot be a derived one (checked first: the hash reads the whole mail).
    if not msg.message_id.startswith("derived-") or msg.message_id != derived_message_id(raw):
        return ""
    return f"mail from {sender} with no Message-ID and no text"
