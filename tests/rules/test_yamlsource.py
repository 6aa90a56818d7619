"""YAML with positions: every key and value knows its 1-based line and column."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailmentor.errors import RulesError
from mailmentor.model import Kind, Stage
from mailmentor.rules import RuleSet, StageRule, load_rules_file
from mailmentor.rules.yamlsource import dotted, load_located, show

TEXT = """\
a:
  b: [x, "y"]
  'c': {d: 1}
e: null
"""


def test_data_and_positions() -> None:
    located = load_located(TEXT, "t.yaml")
    assert located.data == {"a": {"b": ["x", "y"], "c": {"d": 1}}, "e": None}
    assert located.values[("a", "b", 0)] == (2, 7)
    assert located.values[("a", "b", 1)] == (2, 10)
    assert located.keys[("a", "c")] == (3, 3)
    assert located.values[("a", "c", "d")] == (3, 12)
    assert located.keys[("e",)] == (4, 1)
    assert located.problems == []


@pytest.mark.parametrize(
    ("path", "key", "expected"),
    [
        (("a", "b", 1), False, (2, 10)),
        (("a", "b", 7), False, (2, 6)),  # missing: nearest ancestor
        (("a", "zz"), True, (2, 3)),
        (("nowhere", "at", "all"), False, (1, 1)),
    ],
)
def test_position_falls_back_to_nearest_ancestor(
    path: tuple[str | int, ...], key: bool, expected: tuple[int, int]
) -> None:
    assert load_located(TEXT, "t.yaml").position(path, key=key) == expected


def test_keys_stay_text() -> None:
    assert load_located("no: 1\n2: on\n", "t.yaml").data == {"no": 1, "2": True}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("t: 8:00", "8:00"),  # YAML 1.1 would say 480
        ("t: 10:30", "10:30"),
        ("t: 1:30.5", "1:30.5"),
        ("t: 21:00-8:00", "21:00-8:00"),
        ("t: 800", 800),
        ("t: '8:00'", "8:00"),
    ],
)
def test_unquoted_times_stay_text(text: str, expected: object) -> None:
    assert load_located(text, "t.yaml").data == {"t": expected}


def test_empty_document() -> None:
    assert load_located("# nothing here\n", "t.yaml").data is None


def test_syntax_error_is_located() -> None:
    with pytest.raises(RulesError) as info:
        load_located("a: [1, 2\nb: 3\n", "t.yaml")
    (problem,) = info.value.problems
    assert (problem.path, problem.line, problem.field) == ("t.yaml", 2, "")


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (
            ("rule_sets", "advice", "stages", "acted", "after"),
            "rule_sets.advice.stages.acted.after",
        ),
        (("rule_sets", "advice", "match", "kinds", 0), "rule_sets.advice.match.kinds[0]"),
        (("rule_sets", "my.set"), 'rule_sets."my.set"'),
        ((), ""),
    ],
)
def test_dotted(path: tuple[str | int, ...], expected: str) -> None:
    assert dotted(path) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("3x", '"3x"'),
        ('say "hi"', '"say \\"hi\\""'),
        ("bell\x07", '"bell\\x07"'),
        ("x" * 50, '"' + "x" * 40 + '…"'),
        (3, "3"),
        (None, "nothing"),
        ([1], "a list"),
        ({"a": 1}, "a mapping"),
        (True, "true"),
        (False, "false"),
    ],
)
def test_show(value: object, expected: str) -> None:
    assert show(value) == expected


def test_stage_rule_in_code_validates_too() -> None:
    rule = StageRule(after="2d", every=timedelta(days=3), max=2)  # type: ignore[arg-type]
    assert rule.after == timedelta(days=2)
    with pytest.raises(ValueError, match="longer than 0"):
        StageRule(after=timedelta(0))
    with pytest.raises(ValueError, match="cannot have reminders"):
        RuleSet(
            name="x",
            kinds=(Kind.ADVICE,),
            stages={Stage.SNOOZED: StageRule(after=timedelta(days=1))},
        )


GOOD = (
    "settings: {timezone: UTC}\nrule_sets:\n  advice:\n    match: {kinds: [advice]}\n"
    "    stages:\n      asked: {after: 7d, every: 7d, max: 2, give_up_after: 21d}\n"
)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, len(GOOD) - 1), st.sampled_from(list(":-[]{}&*!|>'\"#\t\n x0%@`"))
        ),
        max_size=4,
    )
)
def test_mangled_files_only_ever_raise_rules_error(
    tmp_path_factory: pytest.TempPathFactory, edits: list[tuple[int, str]]
) -> None:
    text = list(GOOD)
    for index, char in edits:
        text[index] = char
    path = tmp_path_factory.mktemp("fuzz") / "r.yaml"
    path.write_text("".join(text), encoding="utf-8")
    try:
        load_rules_file(Path(path))
    except RulesError as exc:
        assert exc.problems
        for problem in exc.problems:
            assert problem.path == str(path)
            assert problem.line >= 1 and problem.column >= 1
            assert problem.message


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=200))
def test_arbitrary_text_only_ever_raises_rules_error(text: str) -> None:
    try:
        located = load_located(text, "t.yaml")
    except RulesError as exc:
        assert exc.problems
    else:
        assert isinstance(located.values, dict)
