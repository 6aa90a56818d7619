"""Read rule files into ``Rules``, or fail with every problem located as ``file:line:column``.

A rule directory holds ``*.yaml``/``*.yml`` files, read in file-name order (hidden files are
skipped: editors leave them around). A later file may redefine a rule set by name, replacing
it whole; when two sets match the same loop, the one defined last wins (``Rules.for_loop``).
Settings merge key by key: a later file changes only the keys it gives.
"""

from __future__ import annotations

import difflib
import re
import types
import typing
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from mailmentor.errors import RuleProblem, RulesError
from mailmentor.model import Kind, Stage
from mailmentor.rules.model import (
    DEFAULT_DIGEST_TIME,
    DIGEST_OFF,
    WORKING_STAGES,
    RuleFileSpec,
    Rules,
    RuleSet,
    SettingsSpec,
)
from mailmentor.rules.yamlsource import DataPath, Located, dotted, load_located, show

RULE_SUFFIXES = (".yaml", ".yml")


def default_rules_dir() -> Path:
    """The shipped ``rules/`` folder of the checkout (mailmentor runs from an editable install)."""
    return Path(__file__).resolve().parents[2] / "rules"


def rule_files(directory: Path) -> list[Path]:
    """The rule files of a directory in the order they are merged."""
    return sorted(
        (
            p
            for p in directory.iterdir()
            if p.suffix in RULE_SUFFIXES and not p.name.startswith(".")
        ),
        key=lambda p: p.name,
    )


def load_rules(directory: Path) -> Rules:
    """Load and merge every rule file of ``directory``; RulesError lists all problems found."""
    directory = Path(directory)
    if not directory.is_dir():
        what = "does not exist" if not directory.exists() else "is not a directory"
        raise RulesError([RuleProblem(str(directory), 1, 1, "", f"rule directory {what}")])
    try:
        files = rule_files(directory)
    except OSError as exc:
        raise RulesError([_os_problem(directory, exc)]) from exc
    if not files:
        message = "no rule files (*.yaml or *.yml) in this directory"
        raise RulesError([RuleProblem(str(directory), 1, 1, "", message)])
    problems: list[RuleProblem] = []
    parts: list[_FileRules] = []
    for path in files:
        try:
            parts.append(_read_file(path))
        except RulesError as exc:
            problems.extend(exc.problems)
    if problems:
        raise RulesError(problems)
    return _merge(parts)


def load_rules_file(path: Path) -> Rules:
    """Load a single rule file (for tests and ``mailmentor rules check FILE``)."""
    return _merge([_read_file(Path(path))])


class _FileRules:
    """What one valid file contributes."""

    def __init__(
        self, source: str, rule_sets: list[RuleSet], settings: SettingsSpec | None
    ) -> None:
        self.source = source
        self.rule_sets = rule_sets
        self.settings = settings


#: Settings where ``false`` turns off what an earlier file turned on.
_OFF_MEANS_NONE = frozenset({"quiet_hours", "reminder_budget"})


def _merge(parts: list[_FileRules]) -> Rules:
    by_name: dict[str, RuleSet] = {}
    settings: dict[str, Any] = {
        "timezone": None,
        "quiet_hours": None,
        "business_days_only": False,
        "reminder_budget": None,
        "digest_day": None,
        "digest_time": None,
    }
    for part in parts:
        for rule_set in part.rule_sets:
            by_name.pop(rule_set.name, None)  # redefined: the new one takes the later position
            by_name[rule_set.name] = rule_set
        if part.settings is not None:
            settings |= _settings_given(part.settings)
    if settings["digest_day"] is None:
        settings["digest_time"] = None  # the day is what turns the digest on
    elif settings["digest_time"] is None:
        settings["digest_time"] = DEFAULT_DIGEST_TIME
    return Rules(
        rule_sets=tuple(by_name.values()),
        sources=tuple(part.source for part in parts),
        **settings,
    )


def _settings_given(spec: SettingsSpec) -> dict[str, Any]:
    """The ``Rules`` settings one file sets; keys it leaves out (or empty) are not included."""
    given: dict[str, Any] = {}
    for key in ("timezone", "quiet_hours", "business_days_only", "reminder_budget"):
        value = getattr(spec, key)
        if value is not None:
            given[key] = None if value is False and key in _OFF_MEANS_NONE else value
    if spec.digest is DIGEST_OFF:
        given |= {"digest_day": None, "digest_time": None}
    elif spec.digest is not None:
        if spec.digest.day is not None:
            given["digest_day"] = spec.digest.day
        if spec.digest.time is not None:
            given["digest_time"] = spec.digest.time
    return given


def _os_problem(path: Path, exc: OSError) -> RuleProblem:
    return RuleProblem(str(path), 1, 1, "", f"cannot read: {exc.strerror or exc}")


def _read_file(path: Path) -> _FileRules:
    source = str(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise RulesError([_os_problem(path, exc)]) from exc
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise RulesError(
            [RuleProblem(source, line, column, "", "not UTF-8 text; save the file as UTF-8")]
        ) from exc
    located = load_located(text, source)
    return _validate(located, source)


def _validate(located: Located, source: str) -> _FileRules:
    problems = list(located.problems)
    data = {} if located.data is None else located.data
    spec: RuleFileSpec | None = None
    try:
        spec = RuleFileSpec.model_validate(data)
    except ValidationError as exc:
        for error in exc.errors():
            loc = tuple(error["loc"])
            if not any(loc[: len(bad)] == bad for bad in located.unreadable):
                problems.append(_problem(located, source, error))
    if problems or spec is None:
        raise RulesError(sorted(problems, key=lambda p: (p.line, p.column, p.field)))
    rule_sets = [
        RuleSet(
            name=name,
            kinds=tuple(dict.fromkeys(set_spec.match.kinds or ())),
            tags=tuple(dict.fromkeys(set_spec.match.tags or ())),
            subject=_pattern(set_spec.match.subject),
            mentors=tuple(dict.fromkeys(set_spec.match.mentors or ())),
            stages={Stage(stage): rule for stage, rule in set_spec.stages.items()},
            source=f"{source}:{located.position(('rule_sets', name), key=True)[0]}",
        )
        for name, set_spec in spec.rule_sets.items()
    ]
    return _FileRules(source, rule_sets, spec.settings)


def _pattern(text: str | None) -> re.Pattern[str] | None:
    """Subjects are matched ignoring case: people do not type subjects consistently."""
    return re.compile(text, re.IGNORECASE) if text is not None else None


# --- turning pydantic errors into sentences a person can act on ----------------------------------


def _problem(located: Located, source: str, error: ErrorDetails) -> RuleProblem:
    loc: DataPath = tuple(error["loc"])
    kind = error["type"]
    value = error.get("input")
    if loc and loc[-1] == "[key]":
        path = loc[:-1]
        line, column = located.position(path, key=True)
        return RuleProblem(source, line, column, dotted(path), _key_message(path, error))
    if kind == "extra_forbidden":
        line, column = located.position(loc, key=True)
        fields = list(_fields_at(loc[:-1]))
        allowed = ", ".join(fields)
        meant = _did_you_mean(loc[-1], fields)
        message = f"unknown key {show(loc[-1])}{meant} (expected one of: {allowed})"
        return RuleProblem(source, line, column, dotted(loc), message)
    if kind == "missing":
        parent = loc[:-1]
        line, column = located.position(parent, key=True) if parent else (1, 1)
        hint = _description(loc)
        message = f"{show(loc[-1])} is required" + (f" ({hint})" if hint else "")
        return RuleProblem(source, line, column, dotted(loc), message)
    # An empty value ("after:" with nothing) starts at the line's end: point at its key instead.
    line, column = located.position(loc, key=value is None and loc in located.keys)
    return RuleProblem(source, line, column, dotted(loc), _value_message(loc, kind, value, error))


def _did_you_mean(key: object, choices: Iterable[str]) -> str:
    """``": did you mean 'after'?"`` for a near miss (``afterr``), else nothing."""
    close = difflib.get_close_matches(str(key).lower(), list(choices), n=1, cutoff=0.7)
    return f": did you mean {show(close[0])}?" if close else ""


def _key_message(path: DataPath, error: ErrorDetails) -> str:
    key = error.get("input")
    if len(path) >= 2 and path[-2] == "stages":
        allowed = ", ".join(WORKING_STAGES)
        if key in {str(s) for s in Stage}:
            return f"stage {show(key)} cannot have reminders (use one of: {allowed})"
        meant = _did_you_mean(key, WORKING_STAGES)
        return f"unknown stage {show(key)}{meant} (expected one of: {allowed})"
    if error["type"] == "mailmentor":
        return error["msg"]
    return f"{show(key)} is not a valid name here: expected plain text"


_TYPE_WORDS = {
    "int_type": "a whole number",
    "int_parsing": "a whole number",
    "int_from_float": "a whole number",
    "string_type": "text",
    "dict_type": "a mapping (key: value lines)",
    "model_type": "a mapping (key: value lines)",
    "model_attributes_type": "a mapping (key: value lines)",
    "list_type": "a list such as [advice, intro]",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
}


def _value_message(loc: DataPath, kind: str, value: Any, error: ErrorDetails) -> str:
    if kind == "mailmentor":
        return error["msg"]
    if kind == "enum" and "kinds" in loc:
        return f"{show(value)} is not a loop kind (expected one of: {', '.join(Kind)})"
    if kind in _TYPE_WORDS:
        return f"expected {_TYPE_WORDS[kind]}, got {show(value)}"
    return f"{error['msg']}, got {show(value)}"


def _target_at(loc: DataPath) -> Any:
    """The type the file shape expects at ``loc`` (walking model fields, dicts and lists)."""
    target: Any = RuleFileSpec
    for part in loc:
        target = _unwrap(target)
        if isinstance(target, type) and issubclass(target, BaseModel):
            field = target.model_fields.get(str(part))
            if field is None:
                return None
            target = field.annotation
        elif typing.get_origin(target) is dict:
            target = typing.get_args(target)[1]
        elif typing.get_origin(target) in (list, tuple):
            target = typing.get_args(target)[0]
        else:
            return None
    return _unwrap(target)


def _unwrap(target: Any) -> Any:
    """``X | None`` → ``X``."""
    if typing.get_origin(target) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(target) if a is not type(None)]
        return args[0] if len(args) == 1 else target
    return target


def _fields_at(loc: DataPath) -> list[str]:
    target = _target_at(loc)
    if isinstance(target, type) and issubclass(target, BaseModel):
        return list(target.model_fields)
    return []


def _description(loc: DataPath) -> str:
    parent = _target_at(loc[:-1])
    if isinstance(parent, type) and issubclass(parent, BaseModel):
        field = parent.model_fields.get(str(loc[-1]))
        if field is not None and field.description:
            return field.description
    return ""
