"""Calling the `mailmentor` command line in tests: ``main(argv)`` with its output read
through capsys (the fixtures that give it a clean environment and the store are in conftest)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from mailmentor.cli import main


@dataclass
class Result:
    code: int
    out: str
    err: str

    @property
    def err_lines(self) -> list[str]:
        return [line for line in self.err.splitlines() if line.strip()]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> Result:
    code = main(list(argv))
    captured = capsys.readouterr()
    return Result(code, captured.out, captured.err)


def exits(capsys: pytest.CaptureFixture[str], *argv: str) -> Result:
    """For argparse's own --help, --version and usage errors, which exit."""
    with pytest.raises(SystemExit) as info:
        main(list(argv))
    captured = capsys.readouterr()
    code = info.value.code
    return Result(code if isinstance(code, int) else 1, captured.out, captured.err)
