"""`mailmentor plan --days`: a number of days ahead from 1 to MAX_PLAN_DAYS, anything else a
usage error that names the option (found in the issue: ``--days -3`` was accepted)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailmentor.cli import MAX_PLAN_DAYS, main, plan_days
from tests.environment import clean_environment


@pytest.fixture(autouse=True)
def clean(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No MAILMENTOR_* variables or .env: the refusal must not depend on any setting."""
    clean_environment(monkeypatch, tmp_path)
    monkeypatch.setenv("MAILMENTOR_DATA_DIR", str(tmp_path / "data"))


@pytest.mark.parametrize(
    ("days", "why"),
    [
        ("-3", "-3 is not from 1 to 3650 days"),
        ("0", "0 is not from 1 to 3650 days"),
        (str(MAX_PLAN_DAYS + 1), "3651 is not from 1 to 3650 days"),
        ("two", "'two' is not a whole number of days"),
        ("1.5", "'1.5' is not a whole number of days"),
    ],
)
def test_bad_days_are_a_usage_error_naming_the_option(
    days: str, why: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["plan", "--days", days])
    out, err = capsys.readouterr()
    assert exited.value.code == 2
    assert out == ""
    assert err.splitlines()[-1] == f"mailmentor plan: error: argument --days: {why}"


def test_the_bounds_themselves_are_accepted() -> None:
    assert plan_days("1") == 1
    assert plan_days(str(MAX_PLAN_DAYS)) == MAX_PLAN_DAYS
