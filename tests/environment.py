"""A test's process environment as a fresh machine has it: no MAILMENTOR_* variables from the
developer's shell, no .env picked up from the checkout, no /run/secrets."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mailmentor.settings import SECRETS_DIR_ENV


def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Only what the test sets counts: the working directory is ``tmp_path`` (no stray .env)
    and the secrets directory one that does not exist."""
    for name in list(os.environ):
        if name.upper().startswith("MAILMENTOR_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(SECRETS_DIR_ENV, str(tmp_path / "no-secrets"))
