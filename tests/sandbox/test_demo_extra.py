"""Without the demo extra (pymap, aiosmtpd), as in a production image: mailmentor imports and
runs on real mail accounts, and where it would need a local server it says in one line what to
set or install, before starting anything."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.environment import clean_environment

#: Runs `mailmentor ARGS` in a fresh interpreter where pymap and aiosmtpd cannot be found
#: (``sys.modules[name] = None`` is how Python marks a module as not importable).
WITHOUT_EXTRA = """
import sys
for name in ("pymap", "aiosmtpd"):
    sys.modules[name] = None
from mailmentor.cli import main
sys.exit(main(sys.argv[1:]))
"""


def mailmentor_without_extra(
    *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", WITHOUT_EXTRA, *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
    )


@pytest.fixture(autouse=True)
def _fresh_machine(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    clean_environment(monkeypatch, tmp_path)
    monkeypatch.setenv("MAILMENTOR_DATA_DIR", str(tmp_path / "data"))


def test_run_with_no_imap_account_says_what_to_set_or_install(tmp_path: Path) -> None:
    result = mailmentor_without_extra("run")
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "MAILMENTOR_IMAP_HOST" in lines[0]
    assert "pip install 'mailmentor[demo]'" in lines[0]
    assert not (tmp_path / "data" / "redis").exists(), "nothing starts before the check"


def test_run_with_imap_but_no_smtp_names_the_smtp_settings() -> None:
    result = mailmentor_without_extra(
        "run",
        env={
            "MAILMENTOR_IMAP_HOST": "127.0.0.1",
            "MAILMENTOR_IMAP_USER": "me",
            "MAILMENTOR_IMAP_PASSWORD": "pw",
        },
    )
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert "MAILMENTOR_SMTP_HOST" in line and "aiosmtpd" in line and "IMAP" not in line


def test_demo_says_what_to_install() -> None:
    result = mailmentor_without_extra("demo")
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert line == (
        "mailmentor: error: `mailmentor demo` needs the demo mailbox and the local SMTP sink "
        "(pymap, aiosmtpd): pip install 'mailmentor[demo]'"
    )


def test_the_commands_that_need_no_local_server_work_without_it() -> None:
    result = mailmentor_without_extra("--help")
    assert result.returncode == 0, result.stderr
    result = mailmentor_without_extra("rules", "check")
    assert result.returncode == 0, result.stderr
