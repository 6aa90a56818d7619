"""Where the parsing tests find their fixtures (and, re-exported, the shared corpora)."""

from __future__ import annotations

from pathlib import Path

from tests.corpora import CORPORA, corpus

__all__ = ["CORPORA", "FIXTURES", "corpus", "fixture", "wrap"]

FIXTURES = Path(__file__).resolve().parent / "fixtures"


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def wrap(body: str, subject: str, sender: str = "Bessie <bessie.berry@acme.com>") -> bytes:
    """A body-only corpus file as a complete UTF-8 message."""
    head = (
        f"From: {sender}\r\nTo: mentor@mailmentor.example\r\nSubject: {subject}\r\n"
        "Message-ID: <wrapped@example.org>\r\nMIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
    )
    return head.encode() + body.replace("\r\n", "\n").replace("\n", "\r\n").encode("utf-8")
