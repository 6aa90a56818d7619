"""Validated rules: the cadence of reminders per loop kind and stage.

Two layers: ``StageRule``/``RuleSet``/``Rules`` are what the rest of mailmentor reads; the
``*Spec`` models mirror the YAML file shape exactly (``extra="forbid"``) so that pydantic's error
locations are paths in the file, which the loader turns into ``file:line:column``.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    StrictStr,
    ValidationInfo,
    field_validator,
)
from pydantic_core import PydanticCustomError

from mailmentor.durations import HINT, format_duration, parse_duration
from mailmentor.errors import DurationError
from mailmentor.model import Kind, Stage
from mailmentor.rules.yamlsource import show

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
        if value is not None and not value.strip():
            raise _problem("must name a template, got an empty string")
        return value


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
    """The cadences for one or more loop kinds; ``source`` says where it was defined."""

    model_config = ConfigDict(frozen=True)

    name: str
    kinds: tuple[Kind, ...]
    stages: dict[Stage, StageRule]
    source: str = ""  # "path:line"

    @field_validator("stages")
    @classmethod
    def _working_only(cls, stages: dict[Stage, StageRule]) -> dict[Stage, StageRule]:
        return _check_working_stages(stages)

    def rule_name(self, stage: Stage) -> str:
        """``advice.asked``: how reminders and history name the rule that fired."""
        return f"{self.name}.{stage}"


class Rules(BaseModel):
    """Every rule set in force, merged from the rule directory; later definitions win."""

    model_config = ConfigDict(frozen=True)

    rule_sets: tuple[RuleSet, ...]
    timezone: str | None = None
    sources: tuple[str, ...] = ()

    def for_kind(self, kind: Kind) -> RuleSet | None:
        """The rule set for a loop kind: the last one (file-name order, then position) wins."""
        for rule_set in reversed(self.rule_sets):
            if kind in rule_set.kinds:
                return rule_set
        return None


# --- the file shape -----------------------------------------------------------------------------


class MatchSpec(BaseModel):
    """``match:`` — which loops a rule set applies to."""

    model_config = ConfigDict(extra="forbid")

    kinds: list[Kind] = Field(description="the loop kinds, e.g. [advice, intro]")

    @field_validator("kinds", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("kinds")
    @classmethod
    def _not_empty(cls, value: list[Kind]) -> list[Kind]:
        if not value:
            raise _problem("needs at least one kind ({allowed})", allowed=", ".join(Kind))
        return value


class RuleSetSpec(BaseModel):
    """One entry under ``rule_sets:``."""

    model_config = ConfigDict(extra="forbid")

    match: MatchSpec = Field(description="which loop kinds this set applies to")
    stages: dict[WorkingStageName, StageRule] = Field(
        description="per-stage cadence; stages not listed get no reminders"
    )


class SettingsSpec(BaseModel):
    """``settings:`` — global settings."""

    model_config = ConfigDict(extra="forbid")

    timezone: str | None = Field(default=None, description="an IANA time zone such as UTC")

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
