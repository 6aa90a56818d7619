"""Rule files: bad files give every problem at the right file, line, column and field."""

from __future__ import annotations

import os
import textwrap
from datetime import timedelta
from pathlib import Path

import pytest

from mailmentor.errors import RuleProblem, RulesError
from mailmentor.model import Kind, Stage
from mailmentor.rules import default_rules_dir, load_rules, load_rules_file, rule_files

GOOD = """\
rule_sets:
  advice:
    match:
      kinds: [advice]
    stages:
      asked:
        after: 7d
        every: 7d
        max: 2
        give_up_after: 21d
      advised:
        after: 2d
"""


def _problems(tmp_path: Path, text: str, name: str = "rules.yaml") -> list[RuleProblem]:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    with pytest.raises(RulesError) as info:
        load_rules(tmp_path)
    for problem in info.value.problems:
        assert problem.path == str(path)
    return info.value.problems


def _where(problems: list[RuleProblem]) -> list[tuple[int, int, str]]:
    return [(p.line, p.column, p.field) for p in problems]


# (case id, file text, [(line, column, field, words the message must contain)])
BAD_FILES: list[tuple[str, str, list[tuple[int, int, str, str]]]] = [
    (
        "bad duration",
        GOOD.replace("after: 2d", "after: 3x"),
        [
            (
                12,
                16,
                "rule_sets.advice.stages.advised.after",
                '"3x" is not a duration (use 30s, 15m, 36h, 3d, 2w or 1mo)',
            )
        ],
    ),
    (
        "bare number is not a duration",
        GOOD.replace("after: 2d", "after: 30"),
        [(12, 16, "rule_sets.advice.stages.advised.after", "expected a duration")],
    ),
    (
        "empty duration",
        GOOD.replace("after: 2d", "after:"),
        [(12, 9, "rule_sets.advice.stages.advised.after", "got nothing")],
    ),
    (
        "zero duration",
        GOOD.replace("after: 2d", "after: 0d"),
        [(12, 16, "rule_sets.advice.stages.advised.after", "longer than 0")],
    ),
    (
        "negative duration",
        GOOD.replace("every: 7d", "every: -7d"),
        [(8, 16, "rule_sets.advice.stages.asked.every", '"-7d" is not a duration')],
    ),
    (
        "unknown top-level key",
        "colour: blue\n" + GOOD,
        [(1, 1, "colour", 'unknown key "colour" (expected one of: settings, rule_sets)')],
    ),
    (
        "unknown key in a rule set",
        GOOD.replace("    match:", "    priority: 1\n    match:"),
        [(3, 5, "rule_sets.advice.priority", 'unknown key "priority"')],
    ),
    (
        "unknown key in match",
        GOOD.replace("      kinds: [advice]", "      kinds: [advice]\n      domain: x"),
        [
            (
                5,
                7,
                "rule_sets.advice.match.domain",
                "(expected one of: kinds, tags, subject, mentors)",
            )
        ],
    ),
    (
        "unknown key in a stage",
        GOOD.replace("        after: 2d", "        after: 2d\n        afer: 3d"),
        [(13, 9, "rule_sets.advice.stages.advised.afer", "expected one of: after, every, max")],
    ),
    (
        "unknown key in settings",
        "settings:\n  quiet: 22-7\n" + GOOD,
        [
            (
                2,
                3,
                "settings.quiet",
                "(expected one of: timezone, quiet_hours, business_days_only, reminder_budget,"
                " digest)",
            )
        ],
    ),
    (
        "max of the wrong type",
        GOOD.replace("max: 2", "max: two"),
        [(9, 14, "rule_sets.advice.stages.asked.max", 'expected a whole number, got "two"')],
    ),
    (
        "max zero",
        GOOD.replace("max: 2", "max: 0"),
        [(9, 14, "rule_sets.advice.stages.asked.max", "at least 1")],
    ),
    (
        "max without every",
        GOOD.replace("        every: 7d\n", ""),
        [(8, 14, "rule_sets.advice.stages.asked.max", "needs 'every:'")],
    ),
    (
        "unknown stage",
        GOOD.replace("      advised:", "      advized:"),
        [(11, 7, "rule_sets.advice.stages.advized", 'unknown stage "advized"')],
    ),
    (
        "snoozed is not a working stage",
        GOOD.replace("      advised:", "      snoozed:"),
        [(11, 7, "rule_sets.advice.stages.snoozed", "cannot have reminders")],
    ),
    (
        "unknown kind",
        GOOD.replace("[advice]", "[advice, mentorship]"),
        [(4, 23, "rule_sets.advice.match.kinds[1]", '"mentorship" is not a loop kind')],
    ),
    (
        "no kinds",
        GOOD.replace("[advice]", "[]"),
        [(4, 14, "rule_sets.advice.match.kinds", "at least one kind")],
    ),
    (
        "give_up_after shorter than after",
        GOOD.replace("give_up_after: 21d", "give_up_after: 3d"),
        [(10, 24, "rule_sets.advice.stages.asked.give_up_after", "(3d) must not be shorter")],
    ),
    (
        "missing after",
        GOOD.replace("        after: 2d\n", "        max: 1\n"),
        [(11, 7, "rule_sets.advice.stages.advised.after", '"after" is required')],
    ),
    (
        "missing match",
        GOOD.replace("    match:\n      kinds: [advice]\n", ""),
        [(2, 3, "rule_sets.advice.match", '"match" is required')],
    ),
    (
        "stage with no settings",
        GOOD.replace("        after: 2d\n", ""),
        [(11, 7, "rule_sets.advice.stages.advised", "expected a mapping")],
    ),
    (
        "stages as a list",
        "rule_sets:\n  advice:\n    match: {kinds: [advice]}\n    stages: [asked]\n",
        [(4, 13, "rule_sets.advice.stages", "expected a mapping")],
    ),
    (
        "top level is a list",
        "- advice\n- intro\n",
        [(1, 1, "", "expected a mapping")],
    ),
    (
        "rule set name with a dot",
        GOOD.replace("  advice:", "  my.advice:"),
        [(2, 3, 'rule_sets."my.advice"', "should be letters, digits")],
    ),
    (
        "unknown time zone",
        "settings:\n  timezone: Mars/Olympus\n" + GOOD,
        [(2, 13, "settings.timezone", '"Mars/Olympus" is not a time zone')],
    ),
    (
        "duplicate key",
        GOOD.replace("        after: 2d", "        after: 2d\n        after: 3d"),
        [(13, 9, "rule_sets.advice.stages.advised.after", "duplicate key")],
    ),
    (
        "YAML syntax error",
        GOOD.replace("kinds: [advice]", "kinds: [advice"),
        [(5, 11, "", "YAML syntax error")],
    ),
    (
        "tab indentation",
        GOOD.replace("        after: 2d", "\tafter: 2d"),
        [(12, 1, "", "YAML syntax error")],
    ),
    (
        "two documents",
        GOOD + "---\n" + GOOD,
        [(13, 1, "", "expected a single document")],
    ),
    (
        "python tag is refused, not run",
        GOOD.replace("after: 2d", "after: !!python/object/apply:os.system [echo]"),
        [(12, 16, "rule_sets.advice.stages.advised.after", "cannot read this value")],
    ),
    (
        "python tag on a scalar is refused",
        GOOD.replace("after: 2d", "after: !!python/name:os.system x"),
        [(12, 16, "rule_sets.advice.stages.advised.after", "cannot read this value")],
    ),
    (
        "recursive alias",
        "rule_sets: &loop {advice: *loop}\n",
        [(1, 12, "", "nested more than")],
    ),
    (
        "two errors in one file give two problems",
        GOOD.replace("after: 7d", "after: soon").replace("max: 2", "max: many"),
        [
            (7, 16, "rule_sets.advice.stages.asked.after", '"soon" is not a duration'),
            (9, 14, "rule_sets.advice.stages.asked.max", "whole number"),
        ],
    ),
]


@pytest.mark.parametrize(
    ("text", "expected"), [c[1:] for c in BAD_FILES], ids=[c[0] for c in BAD_FILES]
)
def test_bad_file_problems(
    tmp_path: Path, text: str, expected: list[tuple[int, int, str, str]]
) -> None:
    problems = _problems(tmp_path, text)
    assert _where(problems) == [(line, col, field) for line, col, field, _ in expected]
    for problem, (*_, words) in zip(problems, expected, strict=True):
        assert words in problem.message


def test_problem_prints_as_file_line_column_field(tmp_path: Path) -> None:
    (problem,) = _problems(tmp_path, GOOD.replace("after: 2d", "after: 3x"), "default.yaml")
    assert str(problem) == (
        f"{tmp_path / 'default.yaml'}:12:16: rule_sets.advice.stages.advised.after: "
        '"3x" is not a duration (use 30s, 15m, 36h, 3d, 2w or 1mo)'
    )


def test_every_file_reports_its_problems(tmp_path: Path) -> None:
    (tmp_path / "10-a.yaml").write_text(GOOD.replace("max: 2", "max: x"), encoding="utf-8")
    (tmp_path / "20-b.yml").write_text("rule_sets: [\n", encoding="utf-8")
    (tmp_path / "30-good.yaml").write_text(GOOD, encoding="utf-8")
    with pytest.raises(RulesError) as info:
        load_rules(tmp_path)
    assert [Path(p.path).name for p in info.value.problems] == ["10-a.yaml", "20-b.yml"]


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (lambda d: d / "missing", "does not exist"),
        (lambda d: d, "no rule files"),
        (lambda d: (d / "f.yaml").write_text(GOOD) and d / "f.yaml", "not a directory"),
    ],
    ids=["missing directory", "empty directory", "a file instead of a directory"],
)
def test_unusable_directory(tmp_path: Path, make: object, words: str) -> None:
    target = make(tmp_path)  # type: ignore[operator]
    with pytest.raises(RulesError) as info:
        load_rules(target)
    (problem,) = info.value.problems
    assert problem.path == str(target)
    assert words in problem.message


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_unreadable_file(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(GOOD, encoding="utf-8")
    path.chmod(0)
    with pytest.raises(RulesError) as info:
        load_rules(tmp_path)
    assert info.value.problems[0].path == str(path)
    assert "cannot read" in info.value.problems[0].message


def test_unreadable_file_as_a_dangling_link(tmp_path: Path) -> None:
    (tmp_path / "rules.yaml").symlink_to(tmp_path / "nowhere")
    with pytest.raises(RulesError) as info:
        load_rules(tmp_path)
    (problem,) = info.value.problems
    assert problem.path == str(tmp_path / "rules.yaml")
    assert "cannot read" in problem.message


def test_not_utf8(tmp_path: Path) -> None:
    (tmp_path / "rules.yaml").write_bytes(GOOD.encode() + b"# caf\xe9\n")
    with pytest.raises(RulesError) as info:
        load_rules(tmp_path)
    (problem,) = info.value.problems
    assert (problem.line, problem.column) == (13, 6)
    assert "UTF-8" in problem.message


def test_alias_bomb_is_refused_quickly(tmp_path: Path) -> None:
    lines = ['a: &a ["x","x","x","x","x","x","x","x","x","x"]']
    for prev, name in zip("abcdefgh", "bcdefghi", strict=True):
        lines.append(f"{name}: &{name} [" + ",".join([f"*{prev}"] * 10) + "]")
    (problem,) = _problems(tmp_path, "\n".join(lines) + "\n")
    assert "aliases" in problem.message


def test_good_file_loads(tmp_path: Path) -> None:
    (tmp_path / "rules.yaml").write_text(GOOD, encoding="utf-8")
    rules = load_rules(tmp_path)
    (advice,) = rules.rule_sets
    assert advice.name == "advice"
    assert advice.kinds == (Kind.ADVICE,)
    assert advice.source == f"{tmp_path / 'rules.yaml'}:2"
    asked = advice.stages[Stage.ASKED]
    assert (asked.after, asked.every, asked.max, asked.give_up_after) == (
        timedelta(days=7),
        timedelta(days=7),
        2,
        timedelta(days=21),
    )
    assert advice.stages[Stage.ADVISED].max == 1
    assert rules.timezone is None
    assert rules.sources == (str(tmp_path / "rules.yaml"),)
    assert rules.for_kind(Kind.INTRO) is None


def test_anchors_and_merge_keys_share_a_cadence(tmp_path: Path) -> None:
    text = """\
    rule_sets:
      advice:
        match: {kinds: [advice, learn]}
        stages:
          advised: &nudge {after: 2d, every: 3d, max: 2, template: nudge}
          acted:
            <<: *nudge
            after: 7d
    """
    (tmp_path / "r.yaml").write_text(textwrap.dedent(text), encoding="utf-8")
    acted = load_rules(tmp_path).rule_sets[0].stages[Stage.ACTED]
    assert (acted.after, acted.every, acted.max, acted.template) == (
        timedelta(days=7),
        timedelta(days=3),
        2,
        "nudge",
    )


def test_later_files_replace_sets_by_name_and_win_by_kind(tmp_path: Path) -> None:
    (tmp_path / "10-base.yaml").write_text(
        GOOD + "  intro:\n    match: {kinds: [intro, learn]}\n    stages: {asked: {after: 1d}}\n"
        "settings: {timezone: Europe/Paris}\n",
        encoding="utf-8",
    )
    (tmp_path / "20-mine.yml").write_text(
        "rule_sets:\n"
        "  advice:\n    match: {kinds: advice}\n    stages: {acted: {after: 5d}}\n"
        "  learning:\n    match: {kinds: [learn]}\n    stages: {asked: {after: 9d}}\n",
        encoding="utf-8",
    )
    (tmp_path / ".#20-mine.yml").write_text("not: [valid", encoding="utf-8")  # editor litter
    (tmp_path / "notes.txt").write_text("ignored", encoding="utf-8")
    rules = load_rules(tmp_path)
    assert [rs.name for rs in rules.rule_sets] == ["intro", "advice", "learning"]
    advice = rules.for_kind(Kind.ADVICE)
    assert advice is not None
    assert set(advice.stages) == {Stage.ACTED}  # whole set replaced, not merged
    assert advice.source == f"{tmp_path / '20-mine.yml'}:2"
    learn = rules.for_kind(Kind.LEARN)
    assert learn is not None and learn.name == "learning"
    intro = rules.for_kind(Kind.INTRO)
    assert intro is not None and intro.name == "intro"
    assert rules.timezone == "Europe/Paris"
    assert [Path(s).name for s in rules.sources] == ["10-base.yaml", "20-mine.yml"]
    assert [p.name for p in rule_files(tmp_path)] == ["10-base.yaml", "20-mine.yml"]


def test_empty_file_contributes_nothing(tmp_path: Path) -> None:
    (tmp_path / "00-empty.yaml").write_text("# all commented out\n", encoding="utf-8")
    (tmp_path / "10-rules.yaml").write_text(GOOD, encoding="utf-8")
    assert [rs.name for rs in load_rules(tmp_path).rule_sets] == ["advice"]


def test_load_rules_file(tmp_path: Path) -> None:
    path = tmp_path / "one.yaml"
    path.write_text(GOOD, encoding="utf-8")
    assert load_rules_file(path).rule_sets[0].name == "advice"
    with pytest.raises(RulesError) as info:
        load_rules_file(tmp_path / "absent.yaml")
    assert info.value.problems[0].path == str(tmp_path / "absent.yaml")


def test_shipped_rules_load_and_encode_the_design_defaults() -> None:
    rules = load_rules(default_rules_dir())
    assert {k for rs in rules.rule_sets for k in rs.kinds} == set(Kind)
    advice = rules.for_kind(Kind.ADVICE)
    assert advice is not None
    stages = advice.stages
    assert stages[Stage.ADVISED].after == timedelta(days=2)
    assert stages[Stage.ACTED].after == timedelta(days=7)
    assert stages[Stage.REPORTED].after == timedelta(days=30)
    assert stages[Stage.ASKED].max == 2
    assert stages[Stage.ASKED].give_up_after is not None
    assert rules.timezone is None, "TIMEZONE decides (issue 11: one time zone)"
    assert default_rules_dir() == Path(__file__).resolve().parents[2] / "rules"


def test_a_near_miss_gets_a_did_you_mean(tmp_path: Path) -> None:
    from mailmentor.errors import RulesError
    from mailmentor.rules.loader import load_rules_file

    path = tmp_path / "rules.yaml"
    path.write_text(
        "rule_sets:\n  advice:\n    match: {kinds: [advice]}\n    stages:\n"
        "      advised: {afterr: 2d}\n      actd: {after: 7d}\n"
    )
    with pytest.raises(RulesError) as caught:
        load_rules_file(path)
    text = str(caught.value)
    assert 'unknown key "afterr": did you mean "after"?' in text, text
    assert 'unknown stage "actd": did you mean "acted"?' in text, text
