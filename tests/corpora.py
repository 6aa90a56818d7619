"""Where the tests find ../shared/corpora: real mail from other projects' test suites.

It sits beside the repository on the build machine, not in a fresh clone, so a test that needs
it asks `corpus()` and is skipped with a reason a person understands when it is missing.
"""

from __future__ import annotations

from pathlib import Path

import pytest

CORPORA = (Path(__file__).resolve().parents[1] / ".." / "shared" / "corpora").resolve()


def corpus(name: str = "") -> Path:
    """A corpus folder (or, without a name, the corpora root), or skip the test."""
    folder = CORPORA / name if name else CORPORA
    if not folder.is_dir():
        pytest.skip(f"corpus {name or 'root'!r} not found at {folder} (only beside ../shared)")
    return folder
