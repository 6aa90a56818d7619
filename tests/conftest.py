"""Real servers for the suite, each on a free loopback port, started by the fixtures below."""

from __future__ import annotations

pytest_plugins = [
    "tests.servers.redis_server",
    "tests.servers.imap_server",
    "tests.servers.smtp_server",
    "tests.servers.oauth_server",
]
