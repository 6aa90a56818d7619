"""Validated rules: which loops a rule set matches, its cadence per stage, and global settings.

Two layers: ``StageRule``/``RuleSet``/``Rules`` are what the rest of mailmentor reads; the
``*Spec`` models mirror the YAML file shape exactly (``extra="forbid"``) so that pydantic's error
locations are paths in the file, which the loader turns into ``file:line:column``.
"""

from __future__ import annotations

import datetime as dt
import re
from datetime import timedelta
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from mailmentor.durations import HINT, format_duration, parse_duration
from mailmentor.errors import DurationError
from mailmentor.model import Kind, Loop, Stage
from mailmentor.rules.yamlsource import show
from mailmentor.tags import kind_for_tag

#: Stages a rule can give a cadence for; closed/dropped end a loop and snoozed has its own wake.
WORKING_STAGES: tuple[Stage, ...] = (
    Stage.ASKED,
    Stage.ADVISED,
    Stage.ACTED,
    Stage.REPORTED,
    Stage.GAVE_BACK,
)
WorkingStageName = Literal["asked", "advised", "acted", "reported", "gave_back"]


def _problem(message: str, **context: Any) -> PydanticCustomError:
    """A validation error whose text is shown to the person as is."""
    return PydanticCustomError("mailmentor", message, context)


def _duration(value: Any) -> Any:
    """Accept ``3d``-style text or a timedelta; bare numbers are ambiguous, so refuse them."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, str):
        try:
            return parse_duration(value)
        except DurationError:
            raise _problem(
                "{value} is not a duration ({hint})", value=show(value), hint=HINT
            ) from None
    raise _problem(
        "expected a duration such as 3d, got {value} ({hint})", value=show(value), hint=HINT
    )


def _positive(value: timedelta | None) -> timedelta | None:
    if value is not None and value <= timedelta(0):
        raise _problem("must be longer than 0 ({hint})", hint=HINT)
    return value


class StageRule(BaseModel):
    """When to nudge the user while a loop sits in one stage, and when to let go."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    after: timedelta = Field(description="how long after entering the stage to send reminder 1")
    every: timedelta | None = Field(default=None, description="how often to repeat the reminder")
    max: StrictInt = Field(default=1, description="how many reminders at most in this stage")
    give_up_after: timedelta | None = Field(
        default=None, description="when to drop the loop, counted from entering the stage"
    )
    template: str | None = Field(default=None, description="name of the reminder template")

    @field_validator("after", "every", "give_up_after", mode="before")
    @classmethod
    def _read_duration(cls, value: Any, info: ValidationInfo) -> Any:
        if value is None and info.field_name != "after":
            return None  # "every:" left empty means "not set"
        return _duration(value)

    @field_validator("after", "every")
    @classmethod
    def _check_positive(cls, value: timedelta | None) -> timedelta | None:
        return _positive(value)

    @field_validator("max")
    @classmethod
    def _check_max(cls, value: int, info: ValidationInfo) -> int:
        if value < 1:
            raise _problem("must be at least 1 (the number of reminders), got {value}", value=value)
        if value > 1 and "every" in info.data and info.data["every"] is None:
            raise _problem(
                "max: {max} needs 'every:' to say how often to repeat (or use max: 1)", max=value
            )
        return value

    @field_validator("give_up_after")
    @classmethod
    def _check_give_up(cls, value: timedelta | None, info: ValidationInfo) -> timedelta | None:
        after = info.data.get("after")
        if value is not None and isinstance(after, timedelta) and value < after:
            raise _problem(
                "give_up_after ({give_up}) must not be shorter than after ({after})",
                give_up=format_duration(value),
                after=format_duration(after),
            )
        return value

    @field_validator("template")
    @classmethod
    def _check_template(cls, value: str | None) -> str | None:
        # Templates are looked up by name later: a plain name cannot point outside their folder.
        if value is not None and not _TEMPLATE_NAME.fullmatch(value):
            raise _problem(
                "{value} is not a template name (use lower-case letters, digits, '_' or '-',"
                " such as gentle_nudge)",
                value=show(value),
            )
        return value


_TEMPLATE_NAME = re.compile(r"[a-z0-9_-]+")


def _check_working_stages(stages: dict[Stage, StageRule]) -> dict[Stage, StageRule]:
    for stage in stages:
        if stage not in WORKING_STAGES:
            raise _problem(
                "stage {stage} cannot have reminders (use {allowed})",
                stage=str(stage),
                allowed=", ".join(WORKING_STAGES),
            )
    return stages


class RuleSet(BaseModel):
    """The cadences for the loops a set matches; ``source`` says where it was defined.

    Match criteria that are given must all hold; a set with no criteria at all matches nothing
    (rule files always give at least one).
    """

    model_config = ConfigDict(frozen=True)

    name: str
    kinds: tuple[Kind, ...] = ()
    #: Tags as written (``gave``, ``intro``); a tag matches the loop kind it names.
    tags: tuple[str, ...] = ()
    #: Searched (case-insensitive) in the loop subject.
    subject: re.Pattern[str] | None = None
    #: Lower-cased mentor addresses, or ``@domain`` for everyone at that domain.
    mentors: tuple[str, ...] = ()
    stages: dict[Stage, StageRule]
    source: str = ""  # "path:line"

    @field_validator("subject", mode="before")
    @classmethod
    def _compile(cls, value: Any) -> Any:
        return re.compile(value, re.IGNORECASE) if isinstance(value, str) else value

    @field_validator("mentors")
    @classmethod
    def _lower(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(m.strip().lower() for m in value)

    @field_validator("stages")
    @classmethod
    def _working_only(cls, stages: dict[Stage, StageRule]) -> dict[Stage, StageRule]:
        return _check_working_stages(stages)

    def rule_name(self, stage: Stage) -> str:
        """``advice.asked``: how reminders and history name the rule that fired."""
        return f"{self.name}.{stage}"

    @property
    def by_kind_only(self) -> bool:
        """True when the set picks loops by kind/tag alone (what ``Rules.for_kind`` can answer)."""
        return bool(self.kinds or self.tags) and self.subject is None and not self.mentors

    def admits_kind(self, kind: Kind) -> bool:
        """Whether the kind and tag criteria (those given) let this kind through."""
        if self.kinds and kind not in self.kinds:
            return False
        return not self.tags or kind in {kind_for_tag(tag) for tag in self.tags}

    def matches(self, loop: Loop) -> bool:
        """Whether every given criterion holds for ``loop`` (never raises)."""
        if not (self.kinds or self.tags or self.subject is not None or self.mentors):
            return False
        if not self.admits_kind(loop.kind):
            return False
        if self.subject is not None and not self.subject.search(loop.subject[:MAX_SUBJECT_CHARS]):
            return False
        return not self.mentors or mentor_matches(loop.mentor.address, self.mentors)


#: Only this much of a subject is searched, so a hostile subject cannot make a pattern crawl.
MAX_SUBJECT_CHARS = 1000
#: When the digest goes out if a rule file names its day but not its time.
DEFAULT_DIGEST_TIME = dt.time(8, 0)


def mentor_matches(address: str, mentors: tuple[str, ...]) -> bool:
    """``address`` equals one entry, or its domain equals an ``@domain`` entry (no subdomains)."""
    address = address.strip().lower()
    domain = "@" + address.rpartition("@")[2] if "@" in address else None
    return any(m == address or (m.startswith("@") and m == domain) for m in mentors)


class Rules(BaseModel):
    """Every rule set in force and the global settings, merged from the rule directory."""

    model_config = ConfigDict(frozen=True)

    rule_sets: tuple[RuleSet, ...]
    timezone: str | None = None
    sources: tuple[str, ...] = ()
    #: (start, end) local wall times; nothing is sent from start until end (may wrap midnight).
    quiet_hours: tuple[dt.time, dt.time] | None = None
    business_days_only: bool = False
    #: Reminders per ISO week, all loops together; None means no limit.
    reminder_budget: int | None = None
    #: Weekday of the digest (0 = Monday) and its local time; both None when there is no digest.
    digest_day: int | None = None
    digest_time: dt.time | None = None

    @property
    def zone(self) -> ZoneInfo:
        """The user's time zone (UTC when unset or unknown), for delivery windows and dates."""
        try:
            return ZoneInfo(self.timezone or "UTC")
        except (ZoneInfoNotFoundError, ValueError, OSError):
            return ZoneInfo("UTC")

    def zone_or(self, fallback: ZoneInfo) -> ZoneInfo:
        """The one time zone of everything (quiet hours, business days, the digest, snooze,
        schedules in addresses, dates in mails, ``plan``): a rule file's when one sets it, else
        ``fallback``, the TIMEZONE setting."""
        return self.zone if self.timezone else fallback

    def for_loop(self, loop: Loop) -> RuleSet | None:
        """The rule set for a loop: the last matching one (file-name order, then position)."""
        for rule_set in reversed(self.rule_sets):
            if rule_set.matches(loop):
                return rule_set
        return None

    def for_kind(self, kind: Kind) -> RuleSet | None:
        """The last set that picks loops by kind/tag alone; sets that also need a subject or a
        mentor are skipped, since a kind says nothing about those. Prefer ``for_loop``."""
        for rule_set in reversed(self.rule_sets):
            if rule_set.by_kind_only and rule_set.admits_kind(kind):
                return rule_set
        return None


# --- the file shape -----------------------------------------------------------------------------


def _one_or_many(value: Any) -> Any:
    """``kinds: advice`` means ``kinds: [advice]``."""
    return [value] if isinstance(value, str) else value


def _known_tag(tag: str) -> str:
    if kind_for_tag(tag) is None:
        raise _problem(
            "{tag} is not a tag mailmentor knows (tags name loop kinds: {kinds},"
            " or aliases such as gave, introduction)",
            tag=show(tag),
            kinds=", ".join(Kind),
        )
    return tag.strip().lower()


_ADDRESS = re.compile(r"[^\s@<>,;\"]+@[^\s@<>,;\"]+")
_DOMAIN = re.compile(r"@[^\s@<>,;\".]+(?:\.[^\s@<>,;\".]+)*")


def _mentor(entry: str) -> str:
    cleaned = entry.strip().lower()
    if _DOMAIN.fullmatch(cleaned) or (_ADDRESS.fullmatch(cleaned) and not cleaned.startswith("@")):
        return cleaned
    raise _problem(
        "{entry} is not a mail address or @domain (write ada@example.org, or @example.org"
        " for everyone there)",
        entry=show(entry),
    )


TagName = Annotated[StrictStr, AfterValidator(_known_tag)]
MentorEntry = Annotated[StrictStr, AfterValidator(_mentor)]


class MatchSpec(BaseModel):
    """``match:`` — which loops a rule set applies to; every criterion given must hold."""

    model_config = ConfigDict(extra="forbid")

    kinds: list[Kind] | None = Field(default=None, description="the loop kinds, e.g. [advice]")
    tags: list[TagName] | None = Field(
        default=None, description="tags naming loop kinds, e.g. [gave, intro]"
    )
    subject: StrictStr | None = Field(
        default=None, description="a regular expression searched in the subject, any case"
    )
    mentors: list[MentorEntry] | None = Field(
        default=None, description="mentor addresses or @domains, e.g. [ada@example.org]"
    )

    @field_validator("kinds", "tags", "mentors", mode="before")
    @classmethod
    def _lists(cls, value: Any) -> Any:
        return _one_or_many(value)

    @field_validator("kinds")
    @classmethod
    def _some_kinds(cls, value: list[Kind] | None) -> list[Kind] | None:
        if value is not None and not value:
            raise _problem("needs at least one kind ({allowed})", allowed=", ".join(Kind))
        return value

    @field_validator("tags", "mentors")
    @classmethod
    def _not_empty(cls, value: list[str] | None, info: ValidationInfo) -> list[str] | None:
        if value is not None and not value:
            raise _problem(
                "needs at least one entry (leave {field} out to match any)",
                field=info.field_name,
            )
        return value

    @field_validator("subject")
    @classmethod
    def _pattern(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not value:
            raise _problem("an empty pattern matches every subject: leave subject out instead")
        try:
            re.compile(value, re.IGNORECASE)
        except re.error as exc:
            raise _problem(
                "{value} is not a valid regular expression: {reason}",
                value=show(value),
                reason=str(exc),
            ) from None
        return value

    @model_validator(mode="after")
    def _some_criterion(self) -> MatchSpec:
        if (
            self.kinds is None
            and self.tags is None
            and self.subject is None
            and self.mentors is None
        ):
            raise _problem(
                "needs at least one of: kinds, tags, subject, mentors"
                " (to match every loop, list every kind)"
            )
        return self


class RuleSetSpec(BaseModel):
    """One entry under ``rule_sets:``."""

    model_config = ConfigDict(extra="forbid")

    match: MatchSpec = Field(
        description="which loops this set applies to: kinds, tags, subject, mentors"
    )
    stages: dict[WorkingStageName, StageRule] = Field(
        description="per-stage cadence; stages not listed get no reminders"
    )


_WEEKDAYS: dict[str, int] = {
    "monday": 0, "mon": 0,
    "tuesday": 1, "tue": 1,
    "wednesday": 2, "wed": 2,
    "thursday": 3, "thu": 3,
    "friday": 4, "fri": 4,
    "saturday": 5, "sat": 5,
    "sunday": 6, "sun": 6,
}  # fmt: skip
_CLOCK = r"\s*(\d{1,2}):(\d{2})\s*"
_TIME = re.compile(_CLOCK)
_RANGE = re.compile(_CLOCK + "[-\u2013\u2014]" + _CLOCK)
QUIET_HINT = 'use "21:00-08:00": from HH:MM to HH:MM, may wrap past midnight; false for none'


def _clock(hours: str, minutes: str) -> dt.time | None:
    h, m = int(hours), int(minutes)
    return dt.time(h, m) if h < 24 and m < 60 else None


def parse_time_of_day(value: Any) -> dt.time:
    """``"08:00"`` → 08:00; raises a located-message error for anything else."""
    if isinstance(value, dt.time):
        return value
    found = _TIME.fullmatch(value) if isinstance(value, str) else None
    parsed = _clock(*found.groups()) if found else None
    if parsed is None:
        raise _problem(
            '{value} is not a time of day (use 24-hour "HH:MM", such as "08:00")', value=show(value)
        )
    return parsed


def parse_quiet_hours(value: Any) -> tuple[dt.time, dt.time]:
    """``"21:00-08:00"`` (hyphen or en dash) → (21:00, 08:00); raises with a hint otherwise."""
    if isinstance(value, tuple | list) and len(value) == 2:
        start, end = (parse_time_of_day(v) for v in value)
    else:
        found = _RANGE.fullmatch(value) if isinstance(value, str) else None
        if found is None:
            raise _problem(
                "{value} is not a range of quiet hours ({hint})", value=show(value), hint=QUIET_HINT
            )
        begin, finish = _clock(*found.groups()[:2]), _clock(*found.groups()[2:])
        if begin is None or finish is None:
            raise _problem(
                "{value} has an impossible time ({hint})", value=show(value), hint=QUIET_HINT
            )
        start, end = begin, finish
    if start == end:
        raise _problem("quiet hours start and end at the same time ({hint})", hint=QUIET_HINT)
    return (start, end)


class DigestSpec(BaseModel):
    """``digest:`` — when the weekly digest goes out."""

    model_config = ConfigDict(extra="forbid")

    day: int | None = Field(default=None, description="a weekday such as monday")
    time: dt.time | None = Field(default=None, description='a 24-hour time such as "08:00"')

    @field_validator("day", mode="before")
    @classmethod
    def _weekday(cls, value: Any) -> Any:
        if value is None:
            return None
        day = _WEEKDAYS.get(value.strip().lower()) if isinstance(value, str) else None
        if day is None:
            raise _problem(
                "{value} is not a day of the week (use monday, tuesday, … sunday)",
                value=show(value),
            )
        return day

    @field_validator("time", mode="before")
    @classmethod
    def _time(cls, value: Any) -> Any:
        return None if value is None else parse_time_of_day(value)

    @property
    def is_off(self) -> bool:
        """``digest: false`` (validated specs always carry a day or a time)."""
        return self.day is None and self.time is None


#: What ``digest: false`` validates to.
DIGEST_OFF = DigestSpec.model_construct(day=None, time=None)


class SettingsSpec(BaseModel):
    """``settings:`` — global settings; a later file overrides an earlier one key by key.

    Leaving a key out (or empty) keeps the earlier value; ``false`` turns a feature off.
    """

    model_config = ConfigDict(extra="forbid")

    timezone: str | None = Field(default=None, description="an IANA time zone such as UTC")
    quiet_hours: tuple[dt.time, dt.time] | Literal[False] | None = Field(
        default=None, description='local hours when nothing is sent, such as "21:00-08:00"'
    )
    business_days_only: StrictBool | None = Field(
        default=None, description="true to send reminders on Monday to Friday only"
    )
    reminder_budget: StrictInt | Literal[False] | None = Field(
        default=None, description="at most this many reminders a week, all loops together"
    )
    digest: DigestSpec | None = Field(
        default=None, description='the weekly digest, such as {day: monday, time: "08:00"}'
    )

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            raise _problem(
                "{value} is not a time zone (use a name such as UTC or Europe/Paris)",
                value=show(value),
            ) from None
        return value

    @field_validator("quiet_hours", mode="before")
    @classmethod
    def _quiet(cls, value: Any) -> Any:
        if value is None or value is False:
            return value
        return parse_quiet_hours(value)

    @field_validator("reminder_budget", mode="before")
    @classmethod
    def _budget(cls, value: Any) -> Any:
        if value is None or value is False:
            return value
        if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
            return value
        raise _problem(
            "expected a whole number of reminders per week, at least 1 (or false for no"
            " limit), got {value}",
            value=show(value),
        )

    @field_validator("digest", mode="before")
    @classmethod
    def _digest_off(cls, value: Any) -> Any:
        return DIGEST_OFF if value is False else value

    @field_validator("digest")
    @classmethod
    def _digest_says_something(cls, value: DigestSpec | None) -> DigestSpec | None:
        if value is not None and value is not DIGEST_OFF and value.is_off:
            raise _problem('needs a day (and a time), such as {day: monday, time: "08:00"}')
        return value


def _set_name(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise _problem(
            "rule set name {name} should be letters, digits, '_' or '-'", name=show(name)
        )
    return name


_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")
RuleSetName = Annotated[StrictStr, AfterValidator(_set_name)]


class RuleFileSpec(BaseModel):
    """A whole rule file."""

    model_config = ConfigDict(extra="forbid")

    settings: SettingsSpec | None = Field(default=None, description="global settings")
    rule_sets: dict[RuleSetName, RuleSetSpec] = Field(
        default_factory=dict, description="named rule sets"
    )
