"""Which loop a message joins: References, then subject + mentor in a window; newest wins."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from mailmentor.intake import SUBJECT_WINDOW, is_reply_subject, pick_loop
from mailmentor.model import Loop, Person, Stage

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)
ALAN = "alan@example.org"


def loop(id_: str, *, mentor: str = ALAN, subject: str = "Pricing", age_days: float = 1,
         stage: Stage = Stage.ASKED) -> Loop:  # fmt: skip
    at = NOW - timedelta(days=age_days)
    return Loop(
        id=id_, mentor=Person(address=mentor), subject=subject, stage=stage,
        created_at=at, stage_entered_at=at,
    )  # fmt: skip


CASES = [
    ("one loop by references", [loop("a")], [], "a", "by References"),
    ("by references, newest of two, choice said", [loop("old", age_days=9), loop("new")], [],
     "new", "by References; also matched old: chose the newest"),
    ("references of another mentor do not count", [loop("g", mentor="grace@x.org")], [], None, ""),
    ("subject fallback", [], [loop("s", subject="Pricing")], "s", "by subject and mentor"),
    ("subject fallback ignores Re:/AW:", [], [loop("s", subject="pricing")], "s", "by subject"),
    ("subject fallback: other mentor", [], [loop("s", mentor="grace@x.org")], None, ""),
    ("subject fallback: outside the window", [],
     [loop("s", age_days=SUBJECT_WINDOW.days + 1)], None, ""),
    ("subject fallback: closed loops are not joined", [], [loop("s", stage=Stage.CLOSED)],
     None, ""),
    ("subject fallback: newest of two", [], [loop("s1", age_days=5), loop("s2", age_days=2)],
     "s2", "also matched s1: chose the newest"),
]  # fmt: skip


@pytest.mark.parametrize(("name", "by_ref", "candidates", "expected", "how"), CASES)
def test_pick_loop(
    name: str, by_ref: list[Loop], candidates: list[Loop], expected: str | None, how: str
) -> None:
    match = pick_loop(by_ref, candidates, ALAN, "AW: Re: Pricing", NOW)
    if expected is None:
        assert match is None, name
    else:
        assert match is not None and match.loop.id == expected, name
        assert how in match.how, name


@pytest.mark.parametrize(
    ("subject", "expected"),
    [("Re: Pricing", True), ("AW: Pricing", True), ("Fwd: x", True), ("Pricing", False),
     ("Regarding pricing", False)],
)  # fmt: skip
def test_is_reply_subject(subject: str, expected: bool) -> None:
    assert is_reply_subject(subject) is expected
