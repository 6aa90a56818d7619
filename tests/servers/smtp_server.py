"""Pytest fixtures for a real SMTP server on loopback (loaded through ``pytest_plugins``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from mailmentor.sandbox.smtp_sink import SmtpSink


@pytest.fixture
def smtp_sink() -> Iterator[SmtpSink]:
    """A started SmtpSink (plain SMTP on 127.0.0.1, free port); ``smtp_sink.account`` reaches it."""
    sink = SmtpSink()
    sink.start()
    try:
        yield sink
    finally:
        sink.stop()
