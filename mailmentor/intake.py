"""Intake: decide what an incoming message means, as pure functions over parsed mail.

`classify` says what kind of mail it is (ignored and why, a reply command, a forward of the mentor's
answer, or the user writing to people). The `*_loop` functions build or change loops from it. The
service applies these against the store; nothing here does I/O.
"""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from mailmentor import stages
from mailmentor.errors import DurationError
from mailmentor.model import MAX_THREAD_IDS, EventType, Kind, Loop, Person, Stage
from mailmentor.parsing.authresults import sender_verified
from mailmentor.parsing.commands import Command, CommandName, resolve_snooze
from mailmentor.parsing.message import Address, ForwardedMessage, ParsedMessage
from mailmentor.parsing.quoting import excerpt
from mailmentor.tags import is_schedule, kind_for_tag, resolve_schedule, service_tag, subject_tags
from mailmentor.tokens import (
    parse_digest_address,
    parse_digest_message_id,
    parse_reminder_message_id,
    parse_reply_address,
)

EXCERPT_LIMIT = 600
_SUBJECT_PREFIX = re.compile(r"^\s*((re|fwd?|aw|wg|sv|tr|antw|vs|rv|enc)(\[\d+\])?\s*:\s*)+", re.I)


@dataclass(frozen=True)
class Identity:
    """Who the user is and which address the service watches."""

    user_addresses: tuple[str, ...]  # lower-cased; the first one receives reminders
    service_address: str
    #: When set, the user's mail must also be verified (DKIM/SPF/DMARC) by this receiving server.
    authserv_id: str = ""

    def is_user(self, address: str) -> bool:
        return address.lower() in self.user_addresses

    def is_service(self, address: str) -> bool:
        """The service address itself or any plus/token variant of it.

        '-' only separates tags when the service already is a plus address (as in tokens), so
        a colleague such as ``mentor-jane@`` next to ``mentor@`` stays a person.
        """
        local, _, domain = self.service_address.lower().rpartition("@")
        a_local, _, a_domain = address.lower().rpartition("@")
        if a_domain != domain:
            return False
        tags = (local + "+", local + "-") if "+" in local else (local + "+",)
        return a_local == local or a_local.startswith(tags)


class Cause(StrEnum):
    """Why mail is ignored, for the code that must tell reasons apart (mailbox mode)."""

    AUTOMATIC = "automatic"
    NO_SENDER = "no sender"
    SERVICE = "from the service"
    STRANGER = "not from the user"
    UNVERIFIED = "not verified"
    NOTHING_TO_DO = "nothing to do"


@dataclass(frozen=True)
class Ignored:
    reason: str
    #: Which kind of reason (not compared: the reason's text says it for people).
    cause: Cause = field(default=Cause.NOTHING_TO_DO, compare=False)


@dataclass(frozen=True)
class CommandMail:
    loop_id: str
    token: str


@dataclass(frozen=True)
class DigestReplyMail:
    """A reply to a weekly digest (its commands name the digest's numbered lines)."""

    digest_id: str
    token: str


@dataclass(frozen=True)
class ForwardMail:
    forwards: tuple[ForwardedMessage, ...]


@dataclass(frozen=True)
class OutgoingMail:
    mentors: tuple[Address, ...]


Classification = Ignored | CommandMail | DigestReplyMail | ForwardMail | OutgoingMail


def classify(msg: ParsedMessage, identity: Identity) -> Classification:
    """Only the user's own, non-automatic mail can change anything; everything else is ignored."""
    if msg.automatic:
        return Ignored(f"automatic mail ({msg.automatic})", Cause.AUTOMATIC)
    sender = msg.sender.address if msg.sender else ""
    if not sender:
        return Ignored("no usable From address", Cause.NO_SENDER)
    if identity.is_service(sender):
        return Ignored(f"from the service address itself ({sender})", Cause.SERVICE)
    if not identity.is_user(sender):
        return Ignored(f"not from a user address ({sender})", Cause.STRANGER)
    if identity.authserv_id:
        reason = sender_verified(msg.authentication_results, identity.authserv_id, sender)
        if reason:
            return Ignored(f"sender not verified: {reason}", Cause.UNVERIFIED)
    command = command_token(msg, identity)
    if command:
        return command
    digest = digest_reference(msg, identity)
    if digest:
        return digest
    if msg.forwarded:
        return ForwardMail(msg.forwarded)
    mentors = mentors_of(msg.to + msg.cc, identity)
    if mentors:
        return OutgoingMail(mentors)
    return Ignored("addressed only to the service, with no loop token and nothing forwarded")


def command_token(msg: ParsedMessage, identity: Identity) -> CommandMail | None:
    """A loop token in a recipient address (our Reply-To) or in a reminder's Message-ID."""
    recipients = [a.address for a in (*msg.to, *msg.cc)] + list(msg.delivered_to)
    for address in recipients:
        found = parse_reply_address(address, identity.service_address)
        if found:
            return CommandMail(*found)
    for message_id in (*msg.in_reply_to, *reversed(msg.references)):
        found = parse_reminder_message_id(message_id)
        if found:
            return CommandMail(*found)
    return None


def digest_reference(msg: ParsedMessage, identity: Identity) -> DigestReplyMail | None:
    """A digest's id and token in a recipient address (its Reply-To) or its Message-ID."""
    recipients = [a.address for a in (*msg.to, *msg.cc)] + list(msg.delivered_to)
    for address in recipients:
        found = parse_digest_address(address, identity.service_address)
        if found:
            return DigestReplyMail(*found)
    for message_id in (*msg.in_reply_to, *reversed(msg.references)):
        found = parse_digest_message_id(message_id)
        if found:
            return DigestReplyMail(*found)
    return None


def mentors_of(addresses: tuple[Address, ...], identity: Identity) -> tuple[Address, ...]:
    """Recipients who are neither the user nor the service, each once."""
    seen: dict[str, Address] = {}
    for a in addresses:
        if a.address and not identity.is_user(a.address) and not identity.is_service(a.address):
            seen.setdefault(a.address, a)
    return tuple(seen.values())


def loop_id_for(thread_root: str, mentor: str) -> str:
    """Deterministic, so handling the same message twice can never make two loops."""
    digest = hashlib.sha256(f"{thread_root}\0{mentor.lower()}".encode()).digest()
    return base64.b32encode(digest).decode().lower()[:10]


def normalize_subject(subject: str) -> str:
    """Drop reply/forward prefixes so a thread's messages compare equal."""
    return " ".join(_SUBJECT_PREFIX.sub("", subject).split())


def clean_subject(subject: str) -> str:
    return normalize_subject(subject) or "(no subject)"


def _person(address: Address) -> Person:
    return Person(address=address.address, name=address.name)


@dataclass(frozen=True)
class Handover:
    """What the user said by *how* they handed a thread over: tags and schedules."""

    kind: Kind = Kind.ADVICE
    subject: str = ""
    first_reminder_at: datetime | None = None
    notes: tuple[str, ...] = ()  # things we could not use, for the log and the history


def handover(msg: ParsedMessage, identity: Identity, now: datetime, tz: ZoneInfo) -> Handover:
    """Read plus-address tags (mentor+intro@, mentor+3d@: in To, Cc, Delivered-To or a kept
    Bcc) and subject tags ([advice])."""
    kinds: list[Kind] = []
    schedules: list[str] = []
    notes: list[str] = []
    recipients = [a.address for a in (*msg.to, *msg.cc)] + [*msg.delivered_to, *msg.bcc]
    for address in dict.fromkeys(recipients):
        tag = service_tag(address, identity.service_address)
        if tag is None:
            continue
        if tag.kind:
            kinds.append(tag.kind)
        if tag.schedule:
            schedules.append(tag.schedule)
        if tag.unknown:
            notes.append(f"unknown tag {tag.unknown!r} in {address}: treated as advice")
    subject, subject_tag_list = subject_tags(msg.subject)
    for tag_text in subject_tag_list:
        kind = kind_for_tag(tag_text)
        if kind:
            kinds.append(kind)
        elif is_schedule(tag_text):
            schedules.append(tag_text)
    first: datetime | None = None
    for spec in schedules[:1]:
        try:
            first = resolve_schedule(spec, now, tz)
        except DurationError as exc:
            notes.append(f"schedule {spec!r} not understood: {exc}")
    return Handover(
        kind=kinds[0] if kinds else Kind.ADVICE,
        subject=clean_subject(subject),
        first_reminder_at=first,
        notes=tuple(notes),
    )


#: At most this many Message-IDs of one message are indexed (hostile References can be long).
MAX_INDEXED_PER_MESSAGE = 40


def merge_thread(known: list[str], more: tuple[str, ...] | list[str]) -> list[str]:
    """The thread's ids with ``more`` added: the root first, then the latest ones (bounded)."""
    ids = list(dict.fromkeys([*known, *more]))
    if len(ids) <= MAX_THREAD_IDS:
        return ids
    return [ids[0], *ids[1:][-(MAX_THREAD_IDS - 1) :]]


def index_ids(ids: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """The Message-IDs of one message to index: its own and the first and latest references."""
    unique = list(dict.fromkeys(i for i in ids if i))
    if len(unique) <= MAX_INDEXED_PER_MESSAGE:
        return tuple(unique)
    return (unique[0], *unique[-(MAX_INDEXED_PER_MESSAGE - 1) :])


def new_asked_loop(
    msg: ParsedMessage, mentor: Address, at: datetime, how: Handover | None = None
) -> Loop:
    """The user asked someone for advice (BCC'd the service)."""
    how = how or Handover(subject=clean_subject(msg.subject))
    root = msg.references[0] if msg.references else msg.message_id
    ids = merge_thread([], msg.all_thread_ids())
    loop = Loop(
        id=loop_id_for(root, mentor.address),
        kind=how.kind,
        mentor=_person(mentor),
        subject=how.subject,
        stage=Stage.ASKED,
        created_at=at,
        stage_entered_at=at,
        message_ids=ids,
        first_reminder_at=how.first_reminder_at,
        ask_excerpt=excerpt(msg.reply_text, EXCERPT_LIMIT),
    )
    detail = "; ".join(("asked by BCC", *how.notes))
    return stages.record(loop, EventType.CREATED, at, f"message <{msg.message_id}>", detail)


def new_learn_loop(topic: str, user: str, message_id: str, at: datetime) -> Loop:
    """``learn <topic>`` in a reply to the digest: something to learn, nobody asked yet (the
    loop's "mentor" is the user until they ask someone; ``message_ids`` stays empty)."""
    subject = clean_subject(topic)
    loop = Loop(
        id=loop_id_for(f"{message_id}\n{subject.lower()}", user),
        kind=Kind.LEARN,
        mentor=Person(address=user.lower()),
        subject=subject,
        stage=Stage.ASKED,
        created_at=at,
        stage_entered_at=at,
    )
    return stages.record(
        loop, EventType.CREATED, at, f"message <{message_id}>", "learn, from the digest"
    )


def new_advised_loop(msg: ParsedMessage, forward: ForwardedMessage, at: datetime) -> Loop:
    """A forwarded answer from a mentor with no loop yet: the loop starts at `advised`."""
    assert forward.sender is not None
    ids = merge_thread([], forward_thread_ids(forward) or [msg.message_id])
    loop = Loop(
        id=loop_id_for(ids[0], forward.sender.address),
        kind=Kind.ADVICE,
        mentor=_person(forward.sender),
        subject=clean_subject(forward.subject or msg.subject),
        stage=Stage.ADVISED,
        created_at=at,
        stage_entered_at=at,
        message_ids=ids,
        advice_excerpt=excerpt(forward.text, EXCERPT_LIMIT),
    )
    return stages.record(
        loop, EventType.CREATED, at, f"message <{msg.message_id}>", "advice forwarded"
    )


def forward_thread_ids(forward: ForwardedMessage) -> list[str]:
    ids = [*forward.references, *forward.in_reply_to]
    if forward.message_id:
        ids.append(forward.message_id)
    return list(dict.fromkeys(ids))


def join_message(loop: Loop, msg: ParsedMessage, at: datetime, how: str = "") -> Loop:
    """A later message of the thread, written by the user to the mentor."""
    ids = merge_thread(loop.message_ids, msg.all_thread_ids())
    loop = loop.model_copy(update={"message_ids": ids})
    source = f"message <{msg.message_id}>"
    if stages.working_stage(loop) is Stage.ACTED and loop.stage.is_open:
        detail = _with("wrote to mentor", how)
        return stages.advance(loop, Stage.REPORTED, EventType.MESSAGE, at, source, detail)
    if stages.working_stage(loop) is Stage.ASKED and loop.stage is Stage.ASKED:
        # The user followed up themselves: the pending nudge starts again from now.
        loop = loop.model_copy(
            update={"stage_entered_at": at, "nudges": 0, "last_reminder_at": None}
        )
        return stages.record(loop, EventType.MESSAGE, at, source, _with("followed up", how))
    return stages.record(loop, EventType.MESSAGE, at, source, _with("joined the thread", how))


def add_advice(
    loop: Loop, msg: ParsedMessage, forward: ForwardedMessage, at: datetime, how: str = ""
) -> Loop:
    """The mentor's answer arrived: asked → advised; later stages just keep the text."""
    ids = merge_thread(loop.message_ids, forward_thread_ids(forward))
    text = excerpt(forward.text, EXCERPT_LIMIT)
    loop = loop.model_copy(
        update={"message_ids": ids, "advice_excerpt": text or loop.advice_excerpt}
    )
    source = f"message <{msg.message_id}>"
    if stages.working_stage(loop) is Stage.ASKED and loop.stage.is_open:
        detail = _with("advice forwarded", how)
        return stages.advance(loop, Stage.ADVISED, EventType.ADVICE, at, source, detail)
    return stages.record(loop, EventType.ADVICE, at, source, _with("more advice forwarded", how))


def _with(detail: str, how: str) -> str:
    return f"{detail} (matched {how})" if how else detail


#: How far back the subject fallback looks for a loop with the same mentor and subject.
SUBJECT_WINDOW = timedelta(days=90)


@dataclass(frozen=True)
class Match:
    """The loop a message belongs to, and how that was decided (kept in the loop's history)."""

    loop: Loop
    how: str


def pick_loop(
    by_reference: list[Loop], candidates: list[Loop], mentor: str, subject: str, now: datetime
) -> Match | None:
    """References first; else same mentor + same normalized subject within SUBJECT_WINDOW.

    Several matches go to the newest loop, and the choice is said so it can be recorded.
    """
    same_mentor = sorted(
        (lp for lp in by_reference if lp.mentor.address == mentor), key=lambda lp: lp.created_at
    )
    how = "by References"
    if not same_mentor:
        wanted = normalize_subject(subject).lower()
        same_mentor = sorted(
            (
                lp
                for lp in candidates
                if lp.mentor.address == mentor
                and lp.stage.is_open
                and wanted
                and normalize_subject(lp.subject).lower() == wanted
                and now - lp.created_at <= SUBJECT_WINDOW
            ),
            key=lambda lp: lp.created_at,
        )
        how = "by subject and mentor, no References match"
    if not same_mentor:
        return None
    chosen = same_mentor[-1]
    if len(same_mentor) > 1:
        others = ", ".join(lp.id for lp in same_mentor[:-1])
        how += f"; also matched {others}: chose the newest"
    return Match(chosen, how)


def is_reply_subject(subject: str) -> bool:
    return normalize_subject(subject) != " ".join(subject.split())


_COMMAND_STAGES = {
    CommandName.ADVISED: Stage.ADVISED,
    CommandName.ACTED: Stage.ACTED,
    CommandName.REPORTED: Stage.REPORTED,
}


def apply_command(
    loop: Loop, command: Command, at: datetime, tz: ZoneInfo, message_id: str
) -> Loop:
    """Apply one reply command; raises stages.TransitionError or DurationError when it cannot."""
    source = f"message <{message_id}>"
    name = command.name
    said = f": {command.argument}" if command.argument else ""  # "done - signed up"
    if name in _COMMAND_STAGES:
        return stages.advance(
            loop, _COMMAND_STAGES[name], EventType.COMMAND, at, source, f"command {name}{said}"
        )
    if name is CommandName.GAVE_BACK:
        return stages.give_back(loop, at, source, command.argument)
    if name is CommandName.SNOOZE:
        until = resolve_snooze(command.argument or "", at, tz)
        if until <= at:
            raise DurationError(f"snooze {command.argument!r} is not in the future")
        return stages.snooze(loop, until, at, source)
    if name is CommandName.STOP:
        if not loop.stage.is_open:
            raise stages.TransitionError(f"loop {loop.id} is already {loop.stage}")
        return stages.drop(loop, EventType.COMMAND, at, source, f"stopped by the user{said}")
    if name is CommandName.REOPEN:
        return stages.reopen(loop, at, source)
    if name is CommandName.NOTE:
        return stages.record(loop, EventType.NOTE, at, source, command.argument)
    raise stages.TransitionError(f"command {name} changes no loop")
