"""What our mails say: per-stage headlines and paragraphs, the loop's subject, command lists,
time spans.

Pure words from data; no templates, headers or clock here (``now`` is always passed in).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from mailmentor.model import Kind, Loop, Stage

HELP_TEXT = """\
acted (or done) — you acted on the advice (done - what you did: kept as a note)
advised — the mentor has answered
reported — you told the mentor how it went
gave back [note] — you gave something back (thanks, an article, an introduction)
snooze 3d — pause this loop for a while (also: snooze a week, snooze until friday)
note <text> — add a note to the loop's history
reopen — keep a loop that was let go
stop — drop this loop, no more reminders
help — this list"""


# --- time spans -------------------------------------------------------------------------------


def aware(when: datetime) -> datetime:
    """``when`` with a time zone (naive datetimes are taken as UTC)."""
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def elapsed(since: datetime, now: datetime) -> timedelta:
    """Time from ``since`` to ``now``, never negative (naive datetimes are taken as UTC)."""
    return max(aware(now) - aware(since), timedelta(0))


def days_phrase(delta: timedelta) -> str:
    """'Less than a day', '1 day', '5 days'."""
    days = delta.days
    if days < 1:
        return "Less than a day"
    return "1 day" if days == 1 else f"{days} days"


def human_span(delta: timedelta) -> str:
    """A rounded span for people: '5 days', '3 weeks', '2 months'."""
    days = delta.days
    if days < 1:
        return "a day"
    if days < 14:
        return "1 day" if days == 1 else f"{days} days"
    if days < 60:
        return f"{round(days / 7)} weeks"
    return f"{round(days / 30)} months"


def local_date(when: datetime, zone: ZoneInfo) -> str:
    """'Mon 5 Jan' in the user's time zone."""
    local = aware(when).astimezone(zone)
    return f"{local:%a} {local.day} {local:%b}"


def _possessive(name: str) -> str:
    return f"{name}'" if name.endswith("s") and "@" not in name else f"{name}'s"


# --- what each stage says ---------------------------------------------------------------------


def loop_subject(name: str, subject: str) -> str:
    """The one subject of every mail about a loop: its reminders in every stage, the give-up
    notice, "still relevant?" and the answers to commands. Clients that thread by subject
    (Gmail) so keep a loop in one conversation; what to do now is each mail's first line.
    The mentor's name keeps apart the loops of one thread with several mentors."""
    return f"[mailmentor] {name}: {subject}"


@dataclass(frozen=True)
class StageCopy:
    """The words of one message, ready for the templates; ``headline`` is the call to action
    that opens the body."""

    headline: str
    paragraphs: list[str]
    since: str = ""
    commands: str = ""
    report_draft: bool = False  # the mail asks to report back: offer a starter draft
    ideas: list[str] = field(default_factory=list)


_COMMANDS: dict[Stage, str] = {
    Stage.ASKED: "advised · snooze 3d · stop · help",
    Stage.ADVISED: "done · snooze 3d · stop · help",
    Stage.ACTED: "reported · snooze 3d · stop · help",
    Stage.REPORTED: "gave back [note] · snooze 2w · stop · help",
    Stage.GAVE_BACK: "gave back [note] · stop · help",
}
_GENERIC_COMMANDS = "done · snooze 3d · stop · help"


def stage_commands(stage: Stage) -> str:
    """The one-line commands a reminder in ``stage`` suggests."""
    return _COMMANDS.get(stage, _GENERIC_COMMANDS)


def since_event(stage: Stage, name: str) -> str:
    """What the stage's clock counts from: 'you asked Ana', "Ana's advice arrived"."""
    return {
        Stage.ASKED: f"you asked {name}",
        Stage.ADVISED: f"{_possessive(name)} advice arrived",
        Stage.ACTED: f"you acted on {_possessive(name)} advice",
        Stage.REPORTED: f"you reported back to {name}",
        Stage.GAVE_BACK: f"you last gave something back to {name}",
    }.get(stage, "the last change on this loop")


_IDEAS = [
    "Thank them with one concrete result their advice led to.",
    "Send an article, a tool or a talk that fits what they care about.",
    "Offer an introduction to someone they would like to meet.",
    "Ask what they are working on, and how you could help.",
]


def stage_copy(loop: Loop, stage: Stage, name: str, subject: str) -> StageCopy:
    """The headline and paragraphs of a reminder about ``loop`` in ``stage``."""
    if loop.kind not in (Kind.ADVICE, Kind.INTRO):
        return StageCopy(
            headline=f"Check in with {name}",
            paragraphs=[f"A good moment to check in with {name} about {subject}."],
        )
    if stage is Stage.ASKED:
        return StageCopy(
            headline=f"No answer yet from {name}",
            paragraphs=[
                f"If it still matters, a short, kind follow-up often helps: {name} may simply "
                "have missed it. Or give it more time; people are busy.",
                f"If {name} already answered, reply “advised” (or forward the answer to me).",
            ],
        )
    if stage is Stage.ADVISED:
        return StageCopy(
            headline=f"Act on {_possessive(name)} advice",
            paragraphs=[
                "Pick one thing from the advice and try it, in your own way. "
                "Reply “done” when you have acted on it.",
            ],
        )
    if stage is Stage.ACTED:
        return StageCopy(
            headline=f"Tell {name} how it went",
            paragraphs=[
                f"{name} will want to know what came of the advice. A few lines are enough; "
                "here is a start you can copy:",
            ],
            report_draft=True,
        )
    if stage is Stage.REPORTED:
        return StageCopy(
            headline=f"Give something back to {name}",
            paragraphs=["Advice is a gift; a small one back keeps the relationship alive. Ideas:"],
            ideas=list(_IDEAS),
        )
    if stage is Stage.GAVE_BACK:
        return StageCopy(
            headline=f"Keep in touch with {name}",
            paragraphs=[f"A while since you last gave something back to {name}. Ideas:"],
            ideas=list(_IDEAS),
        )
    return StageCopy(
        headline=f"About {subject}",
        paragraphs=[f"A reminder about your loop with {name}."],
    )
