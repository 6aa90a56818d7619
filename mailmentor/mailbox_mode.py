"""Mailbox mode: watch the user's own mailbox instead of (or beside) a service address.

Where a message sits says what it means. A thread the user marked (a tracked folder, an IMAP
keyword, a Gmail label) is handed over as if BCC'd or forwarded. An unmarked message in INBOX counts
only as a mentor's reply to a thread already tracked, and a message in Sent only as the user's own
follow-up in one. Pure: the service applies the result.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from enum import StrEnum

from mailmentor.intake import (
    Cause,
    Classification,
    Identity,
    Ignored,
    classify,
    mentors_of,
)
from mailmentor.parsing.message import Address, ForwardedMessage, ParsedMessage
from mailmentor.service.outcomes import Duplicate, Handled, Outcome, Skipped


class Origin(StrEnum):
    """Where a message was found."""

    SERVICE = "service"  # the dedicated service mailbox (BCC/forward mode)
    TRACKED = "tracked"  # marked by the user: tracked folder, keyword or label
    INBOX = "inbox"  # an unmarked message in the user's INBOX
    SENT = "sent"  # the user's Sent folder


@dataclass(frozen=True)
class Tracking:
    """How the user marks threads to track (any of them may be unset)."""

    keyword: str = ""  # an IMAP keyword, e.g. "$mentor"
    gmail_label: str = ""  # a Gmail label, e.g. "mentor"

    def marks(self, flags: Iterable[str], labels: Iterable[str]) -> bool:
        wanted_flag = self.keyword.lower()
        wanted_label = self.gmail_label.lower().lstrip("\\")
        if wanted_flag and any(f.lower() == wanted_flag for f in flags):
            return True
        return bool(wanted_label) and any(lb.lower().lstrip("\\") == wanted_label for lb in labels)


@dataclass(frozen=True)
class MentorReply:
    """The mentor wrote: advice if in a loop of theirs (or a marked thread)."""

    mentor: Address
    may_start: bool  # a marked message may start a loop; an unmarked INBOX one only joins


@dataclass(frozen=True)
class UserFollowUp:
    """The user wrote to people in a tracked thread (Sent folder)."""

    mentors: tuple[Address, ...]


MailboxClassification = Classification | MentorReply | UserFollowUp


def as_forward(msg: ParsedMessage) -> ForwardedMessage:
    """A mentor's message read directly from the mailbox, in the shape a forward would have."""
    return ForwardedMessage(
        sender=msg.sender,
        to=msg.to,
        cc=msg.cc,
        subject=msg.subject,
        date=msg.date,
        message_id=msg.message_id,
        in_reply_to=msg.in_reply_to,
        references=msg.references,
        text=msg.reply_text,
    )


def classify_in_mailbox(
    msg: ParsedMessage, identity: Identity, origin: Origin
) -> MailboxClassification:
    """What a message means given where it was found."""
    if origin is Origin.SERVICE:
        return classify(msg, identity)
    if msg.automatic:
        return Ignored(f"automatic mail ({msg.automatic})", Cause.AUTOMATIC)
    sender = msg.sender.address if msg.sender else ""
    if not sender:
        return Ignored("no usable From address", Cause.NO_SENDER)
    from_user = identity.is_user(sender)
    if origin is Origin.SENT:
        if not from_user:
            return Ignored(f"in Sent but not from a user address ({sender})", Cause.STRANGER)
        mentors = mentors_of(msg.to + msg.cc, identity)
        return UserFollowUp(mentors) if mentors else Ignored("sent to nobody but the user")
    if origin is Origin.TRACKED:
        if from_user:
            # The user's own message in a marked thread: their ask (or forward) as if BCC'd,
            # with the same checks (an unverified sender stays ignored).
            return classify(msg, identity)
        assert msg.sender is not None
        return MentorReply(msg.sender, may_start=True)
    # Unmarked INBOX mail: only a reply from someone into a thread we already track.
    if from_user:
        return Ignored("the user's own mail in INBOX (Sent is watched for follow-ups)")
    assert msg.sender is not None
    return MentorReply(msg.sender, may_start=False)


@dataclass(frozen=True)
class CatchUp:
    """What a folder's first catch-up came to, for its one summary line (the messages' own
    lines go to DEBUG then: a first start reads the whole folder)."""

    folder: str
    messages: int = 0
    loops_started: int = 0
    updated: int = 0
    not_advice: int = 0
    already_handled: int = 0
    failed: int = 0

    def add(self, outcome: Outcome) -> CatchUp:
        """One more message, counted by what it did."""
        more = replace(self, messages=self.messages + 1)
        if isinstance(outcome, Duplicate):
            return replace(more, already_handled=self.already_handled + 1)
        if isinstance(outcome, Handled) and outcome.created:
            return replace(more, loops_started=self.loops_started + outcome.created)
        if isinstance(outcome, Handled) and any(
            not isinstance(e, Skipped) for e in outcome.effects
        ):
            return replace(more, updated=self.updated + 1)
        return replace(more, not_advice=self.not_advice + 1)

    def add_failed(self) -> CatchUp:
        return replace(self, messages=self.messages + 1, failed=self.failed + 1)

    def __str__(self) -> str:
        if not self.messages:
            return f"{self.folder}: caught up, nothing new"
        parts = [
            f"{count} {label}"
            for count, label in (
                (
                    self.loops_started,
                    "loop started" if self.loops_started == 1 else "loops started",
                ),
                (self.updated, "updated"),
                (self.not_advice, "not advice"),
                (self.already_handled, "already handled"),
                (self.failed, "failed"),
            )
            if count
        ]
        noun = "message" if self.messages == 1 else "messages"
        return f"{self.folder}: caught up on {self.messages} {noun} ({', '.join(parts)})"
