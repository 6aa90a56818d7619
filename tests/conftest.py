"""Real servers for the suite, each on a free loopback port, started by the fixtures below."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mailmentor.embedded_redis import EmbeddedRedis
from mailmentor.imap import ImapAccount
from mailmentor.sandbox.smtp_sink import SmtpSink
from mailmentor.store import Store
from tests.environment import clean_environment
from tests.harness import Harness, running_harness

pytest_plugins = [
    "tests.servers.redis_server",
    "tests.servers.imap_server",
    "tests.servers.smtp_server",
    "tests.servers.oauth_server",
]


@pytest.fixture
def data_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A clean environment: no MAILMENTOR_* variables, no .env, no secrets, a fresh data dir."""
    clean_environment(monkeypatch, tmp_path)
    for name in ("FORCE_COLOR", "NO_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("COLUMNS", "160")  # rich's table width, the same on every terminal
    data = tmp_path / "data"
    monkeypatch.setenv("MAILMENTOR_DATA_DIR", str(data))
    return data


@pytest.fixture
def cli_store(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch, redis_server: EmbeddedRedis, store: Store
) -> Store:
    """The session Redis, emptied, and the CLI pointed at it."""
    monkeypatch.setenv("MAILMENTOR_REDIS_URL", redis_server.url)
    return store


@pytest.fixture
def harness(
    redis_server: EmbeddedRedis,
    redis_client: Any,  # a clean Redis for each test
    imap_server: ImapAccount,
    smtp_sink: SmtpSink,
    tmp_path: Path,
) -> Iterator[Harness]:
    """The whole service on the test servers with the shipped rules (tests/harness.py)."""
    with running_harness(redis_server, imap_server, smtp_sink, tmp_path) as h:
        yield h
