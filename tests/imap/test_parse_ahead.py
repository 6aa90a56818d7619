"""A backlog read by the watcher is parsed in worker processes ahead of intake (PARSE_WORKERS),
and applied exactly as if parsed in place: in UID order, each forward finding the ask that
came just before it in the same fetch batch."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from mailmentor.imap import ImapAccount, MailboxWatcher, append_message
from mailmentor.model import Stage
from mailmentor.parsing.pool import ParsePool
from mailmentor.store import Store
from tests import mail_factory as mf
from tests.service_factory import services_on
from tests.store_support import all_loops


@pytest.fixture
def pool() -> Iterator[ParsePool]:
    pool = ParsePool(1)
    try:
        assert pool.ready(30), "the parse worker started"
        yield pool
    finally:
        pool.close()


def test_a_backlog_is_parsed_ahead_and_applied_in_order(
    store: Store, imap_server: ImapAccount, pool: ParsePool
) -> None:
    count = 6
    for n in range(count):
        mentor = f"Mentor {n} <mentor{n}@example.org>"
        append_message(imap_server, mf.ask(f"<ask-{n}@client.example>", mentor, f"Question {n}?"))
        forward = mf.gmail_forward(f"Re: Question {n}?").replace(
            mf.MENTOR.encode(), mentor.encode()
        )
        append_message(imap_server, forward)
    services = services_on(store, mf.USER, mf.SERVICE, parser=pool)
    watcher = MailboxWatcher(
        imap_server, store.checkpoints, services.intake.handle_raw, prepare=pool.ahead
    )
    try:
        assert watcher.catch_up() == 2 * count
    finally:
        watcher.close()
    assert pool.parsed_ahead == 2 * count, "every message was parsed by the worker"
    loops = all_loops(store)
    assert sorted((loop.mentor.address, loop.stage) for loop in loops) == [
        (f"mentor{n}@example.org", Stage.ADVISED) for n in range(count)
    ]
    assert all("three plans" in loop.advice_excerpt for loop in loops)
