"""The rule language: matching loops, global settings, merging files, and located errors."""

from __future__ import annotations

import re
import textwrap
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailmentor.errors import RuleProblem, RulesError
from mailmentor.model import ActionKind, Kind, Loop, Person, Stage
from mailmentor.rules import Rules, RuleSet, StageRule, default_rules_dir, load_rules
from mailmentor.schedule import plan_next

BASE = """\
settings:
  timezone: Europe/Berlin
  quiet_hours: "21:00-08:00"
  business_days_only: true
  reminder_budget: 10
  digest: {day: monday, time: "08:00"}
rule_sets:
  acme:
    match:
      kinds: [advice]
      tags: [advice]
      subject: 'pricing|\\bplans?\\b'
      mentors: ["@acme.example", ada@example.org]
    stages:
      advised:
        after: 2d
        template: gentle_nudge
"""
SUBJECT = r"'pricing|\bplans?\b'"
MATCH_LINES = """\
      kinds: [advice]
      tags: [advice]
      subject: 'pricing|\\bplans?\\b'
      mentors: ["@acme.example", ada@example.org]
"""
QUIET_HINT = 'use "21:00-08:00"'
BUDGET = "a whole number of reminders per week, at least 1"
NOT_MENTOR = "is not a mail address or @domain"


def _load(tmp_path: Path, *files: tuple[str, str]) -> Rules:
    for name, text in files:
        (tmp_path / name).write_text(textwrap.dedent(text), encoding="utf-8")
    return load_rules(tmp_path)


def _problems(tmp_path: Path, text: str) -> list[RuleProblem]:
    with pytest.raises(RulesError) as info:
        _load(tmp_path, ("rules.yaml", text))
    return info.value.problems


# (case id, file text, [(line, column, field, words the message must contain)])
BAD: list[tuple[str, str, list[tuple[int, int, str, str]]]] = [
    (
        "bad regex",
        BASE.replace(SUBJECT, "'(unclosed'"),
        [
            (
                12,
                16,
                "rule_sets.acme.match.subject",
                '"(unclosed" is not a valid regular expression: missing ), unterminated',
            )
        ],
    ),
    (
        "empty regex",
        BASE.replace(SUBJECT, "''"),
        [(12, 16, "rule_sets.acme.match.subject", "leave subject out instead")],
    ),
    (
        "regex that is a number",
        BASE.replace(SUBJECT, "42"),
        [(12, 16, "rule_sets.acme.match.subject", "expected text, got 42")],
    ),
    (
        "empty match",
        BASE.replace(MATCH_LINES, "      {}\n"),
        [(10, 7, "rule_sets.acme.match", "needs at least one of: kinds, tags, subject, mentors")],
    ),
    (
        "match left empty",
        BASE.replace("    match:\n" + MATCH_LINES, "    match:\n"),
        [(9, 5, "rule_sets.acme.match", "expected a mapping (key: value lines), got nothing")],
    ),
    (
        "unknown tag",
        BASE.replace("tags: [advice]", "tags: [advice, urgent]"),
        [(11, 22, "rule_sets.acme.match.tags[1]", '"urgent" is not a tag mailmentor knows')],
    ),
    (
        "no tags",
        BASE.replace("tags: [advice]", "tags: []"),
        [(11, 13, "rule_sets.acme.match.tags", "leave tags out to match any")],
    ),
    (
        "mentor with a display name",
        BASE.replace("ada@example.org", "'Ada <ada@example.org>'"),
        [(13, 34, "rule_sets.acme.match.mentors[1]", '"Ada <ada@example.org>" ' + NOT_MENTOR)],
    ),
    (
        "bare domain without @",
        BASE.replace('"@acme.example"', "acme.example"),
        [(13, 17, "rule_sets.acme.match.mentors[0]", '"acme.example" ' + NOT_MENTOR)],
    ),
    (
        "no mentors",
        BASE.replace('["@acme.example", ada@example.org]', "[]"),
        [(13, 16, "rule_sets.acme.match.mentors", "leave mentors out to match any")],
    ),
    (
        "template with spaces and capitals",
        BASE.replace("gentle_nudge", "Gentle Nudge"),
        [(17, 19, "rule_sets.acme.stages.advised.template", '"Gentle Nudge" is not a template')],
    ),
    (
        "template that is a path",
        BASE.replace("gentle_nudge", "../secrets"),
        [(17, 19, "rule_sets.acme.stages.advised.template", '"../secrets" is not a template')],
    ),
    (
        "quiet hours without minutes",
        BASE.replace('"21:00-08:00"', "22-7"),
        [(3, 16, "settings.quiet_hours", '"22-7" is not a range of quiet hours (' + QUIET_HINT)],
    ),
    (
        "quiet hours with an impossible hour",
        BASE.replace('"21:00-08:00"', '"25:00-08:00"'),
        [(3, 16, "settings.quiet_hours", '"25:00-08:00" has an impossible time')],
    ),
    (
        "quiet hours that start and end together",
        BASE.replace('"21:00-08:00"', '"21:00-21:00"'),
        [(3, 16, "settings.quiet_hours", "start and end at the same time")],
    ),
    (
        "quiet hours: true says nothing",
        BASE.replace('"21:00-08:00"', "true"),
        [(3, 16, "settings.quiet_hours", "true is not a range of quiet hours")],
    ),
    (
        "business days as words",
        BASE.replace("business_days_only: true", "business_days_only: sometimes"),
        [(4, 23, "settings.business_days_only", 'expected true or false, got "sometimes"')],
    ),
    (
        "budget 0",
        BASE.replace("reminder_budget: 10", "reminder_budget: 0"),
        [(5, 20, "settings.reminder_budget", BUDGET + " (or false for no limit), got 0")],
    ),
    (
        "budget negative",
        BASE.replace("reminder_budget: 10", "reminder_budget: -3"),
        [(5, 20, "settings.reminder_budget", "got -3")],
    ),
    (
        "budget in words",
        BASE.replace("reminder_budget: 10", "reminder_budget: ten"),
        [(5, 20, "settings.reminder_budget", 'got "ten"')],
    ),
    (
        "budget true",
        BASE.replace("reminder_budget: 10", "reminder_budget: true"),
        [(5, 20, "settings.reminder_budget", "got true")],
    ),
    (
        "digest day funday",
        BASE.replace("day: monday", "day: funday"),
        [(6, 17, "settings.digest.day", '"funday" is not a day of the week')],
    ),
    (
        "digest time 8am",
        BASE.replace('time: "08:00"', "time: 8am"),
        [(6, 31, "settings.digest.time", '"8am" is not a time of day (use 24-hour "HH:MM"')],
    ),
    (
        "digest time 24:30",
        BASE.replace('time: "08:00"', "time: '24:30'"),
        [(6, 31, "settings.digest.time", '"24:30" is not a time of day')],
    ),
    (
        "digest says nothing",
        BASE.replace('{day: monday, time: "08:00"}', "{}"),
        [(6, 11, "settings.digest", "needs a day")],
    ),
    (
        "digest with an unknown key",
        BASE.replace('{day: monday, time: "08:00"}', "{day: monday, hour: 8}"),
        [(6, 25, "settings.digest.hour", 'unknown key "hour" (expected one of: day, time)')],
    ),
    (
        "digest as a number",
        BASE.replace('{day: monday, time: "08:00"}', "7"),
        [(6, 11, "settings.digest", "expected a mapping")],
    ),
    (
        "unknown settings key",
        BASE.replace("  business_days_only: true\n", "  weekends: false\n"),
        [(4, 3, "settings.weekends", 'unknown key "weekends" (expected one of: timezone, quiet')],
    ),
    (
        "every mistake is reported, in file order",
        BASE.replace("day: monday", "day: funday")
        .replace("reminder_budget: 10", "reminder_budget: 0")
        .replace(SUBJECT, "'(unclosed'"),
        [
            (5, 20, "settings.reminder_budget", "at least 1"),
            (6, 17, "settings.digest.day", "funday"),
            (12, 16, "rule_sets.acme.match.subject", "regular expression"),
        ],
    ),
]


@pytest.mark.parametrize(("text", "expected"), [c[1:] for c in BAD], ids=[c[0] for c in BAD])
def test_bad_values_are_located(
    tmp_path: Path, text: str, expected: list[tuple[int, int, str, str]]
) -> None:
    problems = _problems(tmp_path, text)
    got = [(p.line, p.column, p.field) for p in problems]
    assert got == [(line, column, field) for line, column, field, _ in expected]
    for problem, (*_, words) in zip(problems, expected, strict=True):
        assert words in problem.message
        assert problem.path == str(tmp_path / "rules.yaml")


def test_problem_reads_as_file_line_column_field_message(tmp_path: Path) -> None:
    (problem,) = _problems(tmp_path, BASE.replace("day: monday", "day: funday"))
    assert str(problem) == (
        f"{tmp_path / 'rules.yaml'}:6:17: settings.digest.day: "
        '"funday" is not a day of the week (use monday, tuesday, … sunday)'
    )


def test_a_good_file_gives_every_setting_and_criterion(tmp_path: Path) -> None:
    rules = _load(tmp_path, ("rules.yaml", BASE))
    assert rules.timezone == "Europe/Berlin"
    assert rules.quiet_hours == (time(21, 0), time(8, 0))
    assert rules.business_days_only is True
    assert rules.reminder_budget == 10
    assert (rules.digest_day, rules.digest_time) == (0, time(8, 0))
    (acme,) = rules.rule_sets
    assert acme.kinds == (Kind.ADVICE,)
    assert acme.tags == ("advice",)
    assert acme.subject is not None
    assert acme.subject.pattern == r"pricing|\bplans?\b"
    assert acme.subject.flags & re.IGNORECASE
    assert acme.mentors == ("@acme.example", "ada@example.org")
    assert acme.stages[Stage.ADVISED].template == "gentle_nudge"


@pytest.mark.parametrize(
    ("settings_text", "expected"),
    [
        ("{}", (None, False, None, None, None)),
        (
            "{quiet_hours: 21:00-8:00, digest: {day: Fri, time: 7:30}}",
            ((time(21), time(8)), False, None, 4, time(7, 30)),
        ),
        ('{quiet_hours: "12:00 – 13:30"}', ((time(12), time(13, 30)), False, None, None, None)),
        ("{digest: {day: sunday}}", (None, False, None, 6, time(8, 0))),
        (
            "{quiet_hours: false, reminder_budget: false, digest: false}",
            (None, False, None, None, None),
        ),
        ("{business_days_only: yes, reminder_budget: 1}", (None, True, 1, None, None)),
    ],
    ids=["nothing", "unquoted times", "en dash", "digest time defaults", "off", "yes and 1"],
)
def test_settings_values(tmp_path: Path, settings_text: str, expected: tuple[object, ...]) -> None:
    rules = _load(tmp_path, ("r.yaml", f"settings: {settings_text}\n"))
    got = (
        rules.quiet_hours,
        rules.business_days_only,
        rules.reminder_budget,
        rules.digest_day,
        rules.digest_time,
    )
    assert got == expected


def test_settings_merge_key_by_key_and_false_turns_off(tmp_path: Path) -> None:
    rules = _load(
        tmp_path,
        ("10-base.yaml", BASE),
        (
            "20-mine.yaml",
            'settings:\n  quiet_hours: false\n  digest: {time: "07:30"}\n  timezone:\n',
        ),
        ("30-more.yml", "settings: {reminder_budget: 3, business_days_only: false}\n"),
    )
    assert rules.timezone == "Europe/Berlin"  # left empty: the earlier value stays
    assert rules.quiet_hours is None
    assert (rules.digest_day, rules.digest_time) == (0, time(7, 30))
    assert rules.reminder_budget == 3
    assert rules.business_days_only is False
    off = _load(tmp_path, ("40-off.yaml", "settings: {digest: false, reminder_budget: false}\n"))
    assert (off.digest_day, off.digest_time, off.reminder_budget) == (None, None, None)
    assert off.quiet_hours is None


def test_shipped_settings() -> None:
    rules = load_rules(default_rules_dir())
    assert rules.quiet_hours is None  # documented, commented out
    assert rules.business_days_only is False
    assert rules.reminder_budget == 10
    assert (rules.digest_day, rules.digest_time) == (0, time(8, 0))
    assert rules.zone.key == "UTC"


# --- matching ----------------------------------------------------------------------------------

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
D = timedelta(days=1)


def rule_set(name: str, days: int, **match: object) -> RuleSet:
    stages = {Stage.ADVISED: StageRule(after=days * D)}
    return RuleSet(name=name, stages=stages, **match)  # type: ignore[arg-type]


RULES = Rules(
    rule_sets=(
        rule_set("domain-first", 9, mentors=("@acme.example",)),  # shadowed by "advice" below
        rule_set("advice", 2, kinds=(Kind.ADVICE,)),
        rule_set("givers", 30, tags=("gave",)),
        rule_set("intro", 1, kinds=(Kind.INTRO,)),
        rule_set("pricing", 5, kinds=(Kind.ADVICE,), subject=r"pricing|\bplans?\b"),
        rule_set("acme", 3, kinds=(Kind.ADVICE, Kind.INTRO), mentors=("@ACME.example",)),
        rule_set("ada", 4, mentors=("Ada@Example.org",), tags=("introduction",)),
        rule_set("nothing", 7),
    )
)


def loop(kind: Kind = Kind.ADVICE, subject: str = "Hiring?", mentor: str = "bo@x.org") -> Loop:
    return Loop(
        id="L1",
        kind=kind,
        mentor=Person(address=mentor),
        subject=subject,
        stage=Stage.ADVISED,
        created_at=T0,
        stage_entered_at=T0,
    )


MATCH_CASES: list[tuple[str, Loop, str | None]] = [
    ("plain advice", loop(), "advice"),
    ("subject pattern, any case", loop(subject="Re: PRICING page"), "pricing"),
    ("subject word boundary", loop(subject="Our plan for Q3"), "pricing"),
    ("no partial word", loop(subject="Explanations"), "advice"),
    (
        "domain beats subject (defined later)",
        loop(subject="pricing", mentor="c@acme.example"),
        "acme",
    ),
    ("domain is exact, not a subdomain", loop(mentor="c@eu.acme.example"), "advice"),
    ("domain set admits intro too", loop(Kind.INTRO, mentor="c@acme.example"), "acme"),
    ("but not mentee", loop(Kind.MENTEE, mentor="c@acme.example"), "domain-first"),
    ("tag alias names a kind", loop(Kind.GIVE), "givers"),
    ("address is exact, any case, needs tag", loop(Kind.INTRO, mentor="ADA@example.org"), "ada"),
    ("address without its tag", loop(Kind.ADVICE, mentor="ada@example.org"), "advice"),
    ("nothing for learn", loop(Kind.LEARN), None),
    ("only the start of a huge subject is searched", loop(subject="x" * 5000 + " plan"), "advice"),
]


@pytest.mark.parametrize(
    ("the_loop", "expected"), [c[1:] for c in MATCH_CASES], ids=[c[0] for c in MATCH_CASES]
)
def test_for_loop_last_matching_set_wins(the_loop: Loop, expected: str | None) -> None:
    found = RULES.for_loop(the_loop)
    assert (found.name if found else None) == expected


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        (Kind.ADVICE, "advice"),  # "pricing" and "acme" need more than a kind
        (Kind.GIVE, "givers"),
        (Kind.INTRO, "intro"),
        (Kind.LEARN, None),
    ],
)
def test_for_kind_only_answers_for_kind_only_sets(kind: Kind, expected: str | None) -> None:
    found = RULES.for_kind(kind)
    assert (found.name if found else None) == expected


def test_plan_next_uses_the_matching_set(tmp_path: Path) -> None:
    mine = """\
    rule_sets:
      acme:
        match:
          kinds: advice
          mentors: ["@acme.example"]
        stages:
          advised: {after: 5d}
    """
    shipped = (default_rules_dir() / "default.yaml").read_text(encoding="utf-8")
    rules = _load(tmp_path, ("00-default.yaml", shipped), ("50-acme.yaml", mine))
    general = plan_next(loop(), rules)
    assert general is not None
    assert (general.due_at, general.rule) == (T0 + 2 * D, "advice.advised")
    special = plan_next(loop(mentor="Zoe@ACME.example"), rules)
    assert special is not None
    assert (special.kind, special.due_at, special.rule) == (
        ActionKind.REMIND,
        T0 + 5 * D,
        "acme.advised",
    )


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, len(BASE) - 1),
            st.sampled_from(list(":-[]{}()*+?\\|'\"#\n x0@–")),
        ),
        max_size=4,
    )
)
def test_mangled_full_files_only_ever_raise_rules_error(
    tmp_path_factory: pytest.TempPathFactory, edits: list[tuple[int, str]]
) -> None:
    text = list(BASE)
    for index, char in edits:
        text[index] = char
    directory = tmp_path_factory.mktemp("fuzz")
    (directory / "r.yaml").write_text("".join(text), encoding="utf-8")
    try:
        rules = load_rules(directory)
    except RulesError as exc:
        assert exc.problems
        for problem in exc.problems:
            assert problem.line >= 1 and problem.column >= 1 and problem.message
    else:
        for rule_set in rules.rule_sets:
            rule_set.matches(loop(subject="".join(text)))


def test_the_documented_example_loads_and_behaves_as_described(tmp_path: Path) -> None:
    docs = Path(__file__).resolve().parents[2] / "docs" / "rules.md"
    (example,) = re.findall(r"```yaml\n(.*?)```", docs.read_text(encoding="utf-8"), re.DOTALL)
    shipped = (default_rules_dir() / "default.yaml").read_text(encoding="utf-8")
    rules = _load(tmp_path, ("00-default.yaml", shipped), ("50-mine.yaml", example))
    assert rules.quiet_hours == (time(21), time(8))
    assert (rules.digest_day, rules.digest_time, rules.reminder_budget) == (0, time(7, 30), 5)
    assert rules.zone.key == "Europe/Berlin"

    def name(the_loop: Loop) -> str | None:
        found = rules.for_loop(the_loop)
        return found.name if found else None

    assert name(loop(subject="Pricing", mentor="c@acme.example")) == "pricing"
    assert name(loop(subject="Hiring", mentor="c@acme.example")) == "acme"
    assert name(loop(Kind.INTRO, mentor="ada@partner.example")) == "acme"
    assert name(loop(subject="Hiring")) == "advice"
    assert name(loop(Kind.GIVE)) == "give"
    assert set(rules.for_kind(Kind.GIVE).stages) == {Stage.GAVE_BACK}  # type: ignore[union-attr]
