"""Real-world mail from other projects' test suites through the whole intake, on the real store.

Each message is handled twice: once as if a stranger sent it (it must be ignored) and once with
its sender configured as the user (so intake really builds or changes loops from it). No message may
raise, and handling one again changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterator

import redis

from mailmentor.parsing.message import parse_message
from mailmentor.service.outcomes import Duplicate, Ignored
from mailmentor.store import Store
from tests.corpora import CORPORA, corpus
from tests.service_factory import handle, services_on
from tests.store_support import all_loops

FOLDERS = ("cpython-test_email", "mikel-mail", "stalwart-mail-parser", "dovecot-imaptest")


def corpus_messages() -> Iterator[tuple[str, bytes]]:
    for folder in FOLDERS:
        for path in sorted((CORPORA / folder).rglob("*")):
            if not path.is_file():
                continue
            name = f"{folder}/{path.relative_to(CORPORA / folder)}"
            if path.suffix == ".mbox":
                for index, message in enumerate(split_mbox(path.read_bytes())):
                    yield f"{name}#{index}", message
            elif path.suffix in (".eml", ".msg", ".txt") or "." not in path.name:
                yield name, path.read_bytes()


def split_mbox(data: bytes) -> list[bytes]:
    """Messages of an mbox, read-only (the stdlib mailbox module opens files for writing)."""
    messages: list[bytes] = []
    current: list[bytes] = []
    for line in data.splitlines(keepends=True):
        if line.startswith(b"From ") and (not current or current[-1].strip() == b""):
            if current:
                messages.append(b"".join(current))
            current = []
            continue
        current.append(line)
    if current:
        messages.append(b"".join(current))
    return messages


def test_real_world_mail_never_breaks_intake(store: Store, redis_client: redis.Redis) -> None:
    corpus()  # skips with a reason when ../shared is not there
    stranger = services_on(store, "nobody@mailmentor.example")
    handled = 0
    for name, raw in corpus_messages():
        msg = parse_message(raw)
        outcome = handle(stranger, msg)
        assert isinstance(outcome, Ignored), (name, outcome)
        redis_client.flushdb()
        sender = msg.sender.address if msg.sender and "@" in msg.sender.address else ""
        if not sender:
            continue
        as_user = services_on(store, sender)
        before = [lp.model_dump() for lp in all_loops(store)]
        first = handle(as_user, msg)
        after_first = [lp.model_dump() for lp in all_loops(store)]
        again = handle(as_user, msg)
        assert isinstance(again, Duplicate | Ignored), (name, again)
        assert isinstance(again, Ignored) == isinstance(first, Ignored), (name, first, again)
        assert [lp.model_dump() for lp in all_loops(store)] == after_first, name
        assert len(after_first) >= len(before)
        handled += 1
        redis_client.flushdb()
    assert handled > 200
