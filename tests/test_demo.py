"""`mailmentor demo` end to end: real local servers, the loop walked from asked to closed."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.environment import clean_environment
from workers.demo import TIMEOUT, run_demo

#: What the demo must print, in this order: each stage change, then the closing line.
STAGE_CHANGES = (
    "started: asked",
    "asked → advised",
    "advised → acted",
    "acted → reported",
    "reported → closed",
    "loop closed",
)


@pytest.mark.timeout(TIMEOUT + 30)
def test_demo_walks_a_loop_to_closed(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    clean_environment(monkeypatch, tmp_path)

    started = time.monotonic()
    assert run_demo() == 0
    assert time.monotonic() - started < TIMEOUT

    out = capsys.readouterr().out
    positions = []
    for text in STAGE_CHANGES:
        assert text in out, f"{text!r} missing from the demo's output:\n{out}"
        positions.append(out.index(text))
    assert positions == sorted(positions), out
    assert out.count("reminder sent →") >= 3, "a reminder for acting, reporting and giving back"
    assert "you reply to the reminder: 'done'" in out
    assert "mailmentor answers: Done: you acted on Alan Mentor's advice." in out, "a confirmation"
