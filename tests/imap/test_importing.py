"""`mailmentor import --folder NAME [--since DATE]`: backfill a folder through the real service.

Called as ``cli.main([...])`` against a real IMAP server (pymap, and Dovecot where installed) and
the session's embedded Redis, with the environment a user would set.
"""

from __future__ import annotations

import dataclasses
import logging
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest

from mailmentor.cli import OutcomeTally, main, parse_since
from mailmentor.embedded_redis import EmbeddedRedis
from mailmentor.imap import ImapAccount, connect, import_folder
from mailmentor.model import Kind, Stage
from mailmentor.service.outcomes import (
    Advised,
    CommandApplied,
    Created,
    Duplicate,
    Gave,
    Handled,
    Ignored,
    Joined,
    Outcome,
)
from mailmentor.store import Store
from tests import mail_factory as mf
from tests.environment import clean_environment
from tests.harness import handled
from tests.store_support import all_loops

SENT = "Sent"
GRACE = "Grace Hopper <grace@navy.example>"
LINUS = "Linus <linus@kernel.example>"


@pytest.fixture
def cli_env(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, redis_server: EmbeddedRedis, store: Store
) -> Store:
    """A clean environment pointing at the session's Redis (emptied); the IMAP host comes later."""
    clean_environment(monkeypatch, tmp_path)
    monkeypatch.setenv("MAILMENTOR_REDIS_URL", redis_server.url)
    monkeypatch.setenv("MAILMENTOR_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("MAILMENTOR_SERVICE_ADDRESS", mf.SERVICE)
    monkeypatch.setenv("MAILMENTOR_USER_ADDRESSES", mf.USER)
    monkeypatch.setenv("MAILMENTOR_SECRET_KEY", "test-secret")
    return store


def point_at(monkeypatch: pytest.MonkeyPatch, account: ImapAccount) -> None:
    monkeypatch.setenv("MAILMENTOR_IMAP_HOST", account.host)
    monkeypatch.setenv("MAILMENTOR_IMAP_PORT", str(account.port))
    monkeypatch.setenv("MAILMENTOR_IMAP_USER", account.user)
    monkeypatch.setenv("MAILMENTOR_IMAP_PASSWORD", account.password)
    monkeypatch.setenv("MAILMENTOR_IMAP_SECURITY", "none")


def fill(account: ImapAccount, folder: str, mails: list[tuple[bytes, datetime | None]]) -> None:
    """Create ``folder`` and APPEND each message, with its internal date when given."""
    client = connect(account)
    try:
        if not client.folder_exists(folder):
            client.create_folder(folder)
        for raw, when in mails:
            client.append(folder, raw, (), when)
    finally:
        client.logout()


def sent_folder() -> list[tuple[bytes, datetime | None]]:
    """Three asks as the user's client files them in Sent (the BCC is not in the headers), and
    the forward of Alan's answer."""
    return [
        (mf.ask(), None),
        (mf.ask("<ask-2@client.example>", to=GRACE, subject="Which compiler book?"), None),
        (mf.ask("<ask-3@client.example>", to=LINUS, subject="Review my patch series?"), None),
        (mf.gmail_forward(), None),
    ]


def import_(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["import", *argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def loops_json(store: Store) -> list[str]:
    return sorted(loop.model_dump_json() for loop in all_loops(store))


# --- pure parts ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [("2026-01-31", date(2026, 1, 31)), (" 2025-12-01 ", date(2025, 12, 1))],
)
def test_parse_since_reads_iso_days(text: str, expected: date) -> None:
    assert parse_since(text) == expected


@pytest.mark.parametrize("text", ["2026-13-01", "20260131", "31.01.2026", "yesterday", ""])
def test_parse_since_refuses_anything_else(text: str) -> None:
    with pytest.raises(Exception, match="is not a date \\(use YYYY-MM-DD"):
        parse_since(text)


A, INTRO, V = Kind.ADVICE, Kind.INTRO, Stage.ADVISED


@pytest.mark.parametrize(
    ("outcomes", "new", "joined"),
    [
        ([Handled((Created("abc", A, "alan@example.org", Stage.ASKED),))], 1, 0),
        (
            [
                Handled(
                    (
                        Created("a", INTRO, "x@y.example", Stage.ASKED),
                        Created("b", INTRO, "z@y.example", Stage.ASKED),
                    )
                )
            ],
            2,
            0,
        ),
        ([Handled((Created("abc", A, "alan@example.org", V),))], 1, 0),
        ([Handled((Joined("abc", Stage.ASKED, "by thread"),))], 0, 1),
        ([Handled((Advised("abc", V),))], 0, 1),
        ([Handled((Advised("abc", V, direct=True),))], 0, 1),
        (
            [Handled((Joined("a", Stage.REPORTED, follow_up=True), Joined("b", Stage.ASKED)))],
            0,
            2,
        ),
        ([Duplicate(), Ignored("not from a user address (x@y.example)")], 0, 0),
        (
            [
                Handled((CommandApplied("abc", "acted", Stage.ACTED),)),
                Handled((Gave(("alan@example.org",)),)),
            ],
            0,
            0,
        ),
    ],
)
def test_outcome_tally(outcomes: list[Outcome], new: int, joined: int) -> None:
    tally = OutcomeTally(lambda uid, raw: Duplicate())
    for outcome in outcomes:
        tally.count(outcome)
    assert (tally.new_loops, tally.joined) == (new, joined)


# --- the command on real servers -------------------------------------------------------------


def test_import_turns_a_sent_folder_into_loops_once(
    cli_env: Store,
    any_imap_server: ImapAccount,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    store = cli_env
    point_at(monkeypatch, any_imap_server)
    fill(any_imap_server, SENT, sent_folder())

    code, out, err = import_(capsys, "--folder", SENT)
    assert code == 0, err
    assert out.strip() == f"imported {SENT}: 4 messages, 3 new loops, 1 joined, 0 failed"
    by_mentor = {loop.mentor.address: loop for loop in all_loops(store)}
    assert {address: loop.stage for address, loop in by_mentor.items()} == {
        mf.MENTOR_ADDRESS: Stage.ADVISED,
        "grace@navy.example": Stage.ASKED,
        "linus@kernel.example": Stage.ASKED,
    }
    assert "three plans" in by_mentor[mf.MENTOR_ADDRESS].advice_excerpt
    assert all(loop.next_action is not None for loop in by_mentor.values())
    before = loops_json(store)

    code, out, err = import_(capsys, "--folder", SENT)
    assert code == 0, err
    assert out.strip() == f"imported {SENT}: 4 messages, 0 new loops, 0 joined, 0 failed"
    assert loops_json(store) == before, "a second import changes nothing"

    # read-only: nothing marked \Seen, and the watcher's checkpoint never touched
    client = connect(any_imap_server)
    try:
        client.select_folder(SENT, readonly=True)
        flags = client.get_flags(client.search(["ALL"]))
    finally:
        client.logout()
    assert len(flags) == 4 and all(b"\\Seen" not in f for f in flags.values())
    assert store.checkpoints.get_checkpoint(any_imap_server.key) is None
    assert (
        store.checkpoints.get_checkpoint(dataclasses.replace(any_imap_server, folder=SENT).key)
        is None
    )


def test_since_leaves_older_mail_out(
    cli_env: Store,
    imap_server: ImapAccount,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    store = cli_env
    point_at(monkeypatch, imap_server)
    recent = datetime.now() - timedelta(days=2)
    fill(
        imap_server,
        SENT,
        [
            (
                mf.ask("<old@client.example>", to=GRACE, subject="Old question"),
                datetime(2024, 3, 1),
            ),
            (mf.ask("<new@client.example>", to=LINUS, subject="New question"), recent),
        ],
    )
    since = (recent - timedelta(days=1)).date().isoformat()
    code, out, err = import_(capsys, "--folder", SENT, "--since", since)
    assert code == 0, err
    assert out.strip() == f"imported {SENT}: 1 messages, 1 new loops, 0 joined, 0 failed"
    assert [loop.mentor.address for loop in all_loops(store)] == ["linus@kernel.example"]
    assert not handled(store, "old@client.example")

    code, out, _ = import_(capsys, "--folder", SENT, "--since", "2024-01-01")
    assert code == 0
    assert out.strip() == f"imported {SENT}: 2 messages, 1 new loops, 0 joined, 0 failed"


def test_a_broken_message_is_counted_and_the_rest_imported(
    cli_env: Store,
    imap_server: ImapAccount,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    point_at(monkeypatch, imap_server)
    broken = f"From: Ada <{mf.USER}>\r\nTo: {mf.MENTOR}\r\nSubject: oops\r\n\r\n".encode()
    fill(imap_server, SENT, [(broken, None), (mf.ask(), None)])
    with caplog.at_level(logging.WARNING, "mailmentor.imap"):
        code, out, _ = import_(capsys, "--folder", SENT)
    assert code == 1, "some messages failed"
    assert out.strip() == f"imported {SENT}: 2 messages, 1 new loops, 0 joined, 1 failed"
    assert "no Message-ID and no text" in caplog.text
    assert len(all_loops(cli_env)) == 1


def test_a_missing_folder_is_named(
    cli_env: Store,
    imap_server: ImapAccount,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    point_at(monkeypatch, imap_server)
    code, out, err = import_(capsys, "--folder", "Archive/2019")
    assert code == 2
    assert out == ""
    assert err.startswith("mailmentor: error:") and "'Archive/2019'" in err
    assert len(err.strip().splitlines()) == 1


def test_import_needs_an_imap_host(cli_env: Store, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = import_(capsys, "--folder", SENT)
    assert code == 2
    assert "MAILMENTOR_IMAP_HOST: missing" in err


def test_a_bad_since_is_a_usage_error(cli_env: Store, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["import", "--folder", SENT, "--since", "2026-02-30"])
    assert info.value.code == 2
    assert "'2026-02-30' is not a date (use YYYY-MM-DD" in capsys.readouterr().err


def test_import_folder_reports_what_it_did(imap_server: ImapAccount) -> None:
    """The library call alone: every message once, in UID order; failures counted."""
    fill(imap_server, SENT, [(mf.ask(f"<m{n}@client.example>"), None) for n in range(3)])
    seen: list[int] = []

    def handler(uid: int, raw: bytes) -> None:
        seen.append(uid)
        if b"<m1@client.example>" in raw:
            raise ValueError("no")

    result = import_folder(imap_server, SENT, handler)
    assert (result.seen, result.handled, result.failed) == (3, 2, 1)
    assert seen == sorted(seen) and len(seen) == 3


def test_mailbox_mode_reads_each_folder_with_its_meaning(
    cli_env: Store,
    imap_server: ImapAccount,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Only what is marked starts a loop in Sent; a mentor's reply in INBOX only joins one."""
    store = cli_env
    point_at(monkeypatch, imap_server)
    monkeypatch.setenv("MAILMENTOR_MAILBOX_MODE", "true")
    monkeypatch.setenv("MAILMENTOR_TRACK_KEYWORD", "$mentor")
    monkeypatch.setenv("MAILMENTOR_SENT_FOLDER", SENT)
    client = connect(imap_server)
    try:
        client.create_folder(SENT)
        client.append(SENT, mf.ask(), flags=("$mentor",))
        client.append(SENT, mf.ask("<ask-2@client.example>", to=GRACE, subject="Compilers?"))
        client.append("INBOX", mf.mentor_reply("<ask-1@client.example>"))
    finally:
        client.logout()

    code, out, err = import_(capsys, "--folder", SENT)
    assert code == 0, err
    assert out.strip() == f"imported {SENT}: 2 messages, 1 new loops, 0 joined, 0 failed"
    code, out, err = import_(capsys, "--folder", "INBOX")
    assert code == 0, err
    assert out.strip() == "imported INBOX: 1 messages, 0 new loops, 1 joined, 0 failed"
    (loop,) = all_loops(store)
    assert (loop.mentor.address, loop.stage) == (mf.MENTOR_ADDRESS, Stage.ADVISED)
