"""Where the parsing tests find their fixtures and the shared real-world corpora."""

from __future__ import annotations

from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parent / "fixtures"
#: The repository's parent holds ``shared/corpora`` on the build machine, not in a fresh clone.
CORPORA = (Path(__file__).resolve().parents[2] / ".." / "shared" / "corpora").resolve()


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def corpus(name: str) -> Path:
    """A corpus folder, or skip the test with a reason a person understands."""
    folder = CORPORA / name
    if not folder.is_dir():
        pytest.skip(f"corpus {name!r} not found at {folder} (only present next to the shared tree)")
    return folder


def wrap(body: str, subject: str, sender: str = "Bessie <bessie.berry@acme.com>") -> bytes:
    """A body-only corpus file as a complete UTF-8 message."""
    head = (
        f"From: {sender}\r\nTo: mentor@mailmentor.example\r\nSubject: {subject}\r\n"
        "Message-ID: <wrapped@example.org>\r\nMIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
    )
    return head.encode() + body.replace("\r\n", "\n").replace("\n", "\r\n").encode("utf-8")
