"""Pytest fixtures for a real SMTP server on loopback (loaded through ``pytest_plugins``)."""

from __future__ import annotations

import ssl
from collections.abc import Iterator

import pytest
import trustme

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


@pytest.fixture(scope="session")
def tls() -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """(server, client) TLS contexts from a throwaway CA, for 127.0.0.1 and localhost."""
    ca = trustme.CA()
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(server)
    client = ssl.create_default_context()
    ca.configure_trust(client)
    return server, client
