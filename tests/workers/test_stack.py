"""The stack runs the parts it is asked to run, and no others."""

from __future__ import annotations

from pathlib import Path

from mailmentor.embedded_redis import EmbeddedRedis
from mailmentor.imap import ImapAccount
from mailmentor.sandbox.smtp_sink import SmtpSink
from tests.service_factory import stack_settings
from workers.stack import Stack


def test_an_imap_account_given_without_the_watcher_starts_no_watcher(
    redis_server: EmbeddedRedis, imap_server: ImapAccount, smtp_sink: SmtpSink, tmp_path: Path
) -> None:
    settings = stack_settings(redis_server.url, tmp_path / "data")
    stack = Stack(
        settings,
        imap=imap_server,
        smtp=smtp_sink.account,
        watcher=False,
        scheduler=False,
        workers=False,
    )
    stack.start()
    try:
        assert stack.watchers == []
        assert not [t for t in stack._threads if t.name.startswith("mailmentor-watch")]
        assert stack.services.store.leases.holders("watch:") == []
    finally:
        stack.stop()
