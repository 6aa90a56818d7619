"""Mailbox mode end to end: the user's own INBOX, Sent and tracked folder on a real IMAP server
(pymap, and Dovecot for the main flow), one watcher per folder, embedded Redis and aiosmtpd.

Nothing is forwarded or BCC'd: the ask sits in Sent (marked with a keyword) or in the tracked
folder, the mentor's reply arrives in INBOX, and the user's follow-ups are found in Sent.
"""

from __future__ import annotations

import email
import email.policy
from collections.abc import Iterator
from contextlib import contextmanager
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from mailmentor.clock import ManualClock
from mailmentor.imap import ImapAccount, append_message, connect
from mailmentor.model import Stage
from mailmentor.sandbox.smtp_sink import SmtpSink
from mailmentor.settings import load_settings
from tests import mail_factory as mf
from tests.harness import Harness
from tests.waiting import wait_for
from workers.stack import Stack

SERVICE = "ada+mentor@example.com"  # the user's own plus address: reminder replies reach INBOX
KEYWORD = "$mentor"
TRACK_FOLDER = "Mentors"
ASK_ID = "<ask-1@client.example>"
ANSWER_ID = mf.ANSWER_ID


class MailboxHarness(Harness):
    """The harness of test_end_to_end, with mail put into the folder where it would sit."""

    def put(self, folder: str, raw: bytes, flags: tuple[str, ...] = ()) -> None:
        append_message(self.imap, raw, folder=folder, flags=flags)

    def wait_read(self, *folders: str) -> None:
        """Until the watchers of these folders have read every message in them."""

        def done() -> bool:
            client = connect(self.imap)
            try:
                for watcher in self.stack.watchers:
                    if watcher.account.folder not in folders:
                        continue
                    client.select_folder(watcher.account.folder, readonly=True)
                    newest = max(client.search(["ALL"]), default=0)
                    checkpoint = self.store.checkpoints.get_checkpoint(watcher.account.key)
                    if checkpoint is None or checkpoint[1] < newest:
                        return False
                return True
            finally:
                client.logout()

        wait_for(done, what=f"{', '.join(folders)} to be read")


def unrelated(message_id: str = "<lunch-1@mentor.example>") -> bytes:
    msg = EmailMessage()
    msg["From"] = mf.MENTOR
    msg["To"] = f"Ada <{mf.USER}>"
    msg["Subject"] = "Lunch on Friday?"
    msg["Message-ID"] = message_id
    msg.set_content("Are you free?\n")
    return bytes(msg)


@contextmanager
def mailbox_harness(
    redis_server: Any, imap: ImapAccount, smtp_sink: SmtpSink, tmp_path: Path, **overrides: Any
) -> Iterator[MailboxHarness]:
    client = connect(imap)
    try:
        for folder in ("Sent", TRACK_FOLDER):
            if not client.folder_exists(folder):
                client.create_folder(folder)
    finally:
        client.logout()
    settings = load_settings(
        redis_url=redis_server.url,
        imap_host="",
        smtp_host="",
        data_dir=tmp_path / "data",
        service_address=SERVICE,
        user_addresses=[mf.USER],
        secret_key="test-secret",
        timezone="Europe/Berlin",
        imap_idle_renew=2.0,  # pymap can miss an append racing IDLE's start
        mailbox_mode=True,
        track_keyword=KEYWORD,
        track_folder=TRACK_FOLDER,
        sent_folder="Sent",
        **overrides,
    )
    clock = ManualClock()
    stack = Stack(settings, clock=clock, imap=imap, smtp=smtp_sink.start(), scheduler=False)
    stack.start()
    try:
        yield MailboxHarness(stack, imap, smtp_sink, clock)
    finally:
        stack.stop()


@pytest.fixture
def mailbox(
    redis_server: Any,
    redis_client: Any,
    imap_server: ImapAccount,
    smtp_sink: SmtpSink,
    tmp_path: Path,
) -> Iterator[MailboxHarness]:
    with mailbox_harness(redis_server, imap_server, smtp_sink, tmp_path) as h:
        yield h


@pytest.fixture
def compat_mailbox(
    redis_server: Any,
    redis_client: Any,
    any_imap_server: ImapAccount,
    smtp_sink: SmtpSink,
    tmp_path: Path,
) -> Iterator[MailboxHarness]:
    """The same, once on pymap and once on Dovecot."""
    with mailbox_harness(redis_server, any_imap_server, smtp_sink, tmp_path) as h:
        yield h


def test_one_watcher_per_folder(mailbox: MailboxHarness) -> None:
    folders = [w.account.folder for w in mailbox.stack.watchers]
    assert folders == [TRACK_FOLDER, "Sent", "INBOX"]


def test_marked_ask_in_sent_is_followed_through_inbox_and_sent(
    compat_mailbox: MailboxHarness,
) -> None:
    h = compat_mailbox
    h.put("Sent", mf.ask(ASK_ID), flags=(KEYWORD,))
    loop = h.wait_stage(Stage.ASKED)
    assert (loop.mentor.address, loop.subject) == (mf.MENTOR_ADDRESS, "Advice on pricing page?")

    h.put("INBOX", unrelated())
    h.wait_read("INBOX")
    assert len(h.loops()) == 1, "unmarked mail outside tracked threads starts nothing"

    h.put("INBOX", mf.mentor_reply(ASK_ID))
    loop = h.wait_stage(Stage.ADVISED, loop.id)
    assert "three plans" in loop.advice_excerpt

    # The user answers the reminder: their reply sits in Sent, its delivered copy in INBOX.
    h.pass_days(2.1)
    reminder = h.next_reminder(1)
    command = mf.reply_to_reminder(reminder, "acted")
    h.put("Sent", command, flags=("\\Seen",))
    h.put("INBOX", command)
    h.wait_stage(Stage.ACTED, loop.id)

    # Writing to the mentor in the thread (References the answer) is the report back.
    h.put("Sent", mf.follow_up(ANSWER_ID, "We cut to three plans; conversion doubled."))
    reported = h.wait_stage(Stage.REPORTED, loop.id)
    assert len(h.loops()) == 1
    assert ANSWER_ID.strip("<>") in reported.message_ids
    assert any(e.stage is Stage.REPORTED for e in reported.events)


def test_follow_up_while_asked_restarts_the_nudge(mailbox: MailboxHarness) -> None:
    h = mailbox
    h.put(TRACK_FOLDER, mf.ask(ASK_ID))
    loop = h.wait_stage(Stage.ASKED)
    entered = loop.stage_entered_at
    h.pass_days(7.1)
    h.next_reminder(1)
    h.wait_recorded(loop.id, 1)
    assert h.loop(loop.id).nudges == 1

    h.put("Sent", mf.follow_up(ASK_ID, "Alan, a gentle nudge on this one?"))
    wait_for(lambda: h.loop(loop.id).nudges == 0, what="the nudge to start again")
    after = h.loop(loop.id)
    assert after.stage is Stage.ASKED
    assert after.stage_entered_at > entered
    assert after.stage_entered_at == h.clock.now()
    assert after.next_action is not None and after.next_action.due_at > h.clock.now()


def test_unmarked_mail_starts_nothing_and_a_marked_reply_does(mailbox: MailboxHarness) -> None:
    h = mailbox
    h.put("Sent", mf.ask(ASK_ID))  # sent, but not marked
    h.put("INBOX", mf.mentor_reply(ASK_ID))  # an answer to an untracked thread
    h.wait_read("Sent", "INBOX")
    assert h.loops() == []

    # The user marks a mentor's message in INBOX (a keyword set by their mail client).
    h.put(
        "INBOX", mf.mentor_reply("<other@client.example>", "<answer-2@mentor.example>"), (KEYWORD,)
    )
    loop = h.wait_stage(Stage.ADVISED)
    assert loop.mentor.address == mf.MENTOR_ADDRESS
    assert "three plans" in loop.advice_excerpt


def test_a_message_seen_in_two_folders_counts_once(mailbox: MailboxHarness) -> None:
    h = mailbox
    h.put(TRACK_FOLDER, mf.ask(ASK_ID))
    loop = h.wait_stage(Stage.ASKED)
    h.put("Sent", mf.ask(ASK_ID), flags=(KEYWORD,))  # the same mail, also in Sent
    h.put("INBOX", mf.mentor_reply(ASK_ID))
    loop = h.wait_stage(Stage.ADVISED, loop.id)
    assert len(h.loops()) == 1
    assert [e.source for e in loop.events].count(f"message {ASK_ID}") <= 1


def test_a_reminder_reply_found_in_inbox_is_a_command(mailbox: MailboxHarness) -> None:
    h = mailbox
    h.put("Sent", mf.ask(ASK_ID), flags=(KEYWORD,))
    loop = h.wait_stage(Stage.ASKED)
    h.put("INBOX", mf.mentor_reply(ASK_ID))
    h.wait_stage(Stage.ADVISED, loop.id)
    h.pass_days(2.1)
    reminder = h.next_reminder(1)
    h.put("INBOX", mf.reply_to_reminder(reminder, "stop"))  # only the delivered copy
    h.wait_stage(Stage.DROPPED, loop.id)


def test_mail_that_piled_up_before_start_is_read_asks_first(
    redis_server: Any,
    redis_client: Any,
    imap_server: ImapAccount,
    smtp_sink: SmtpSink,
    tmp_path: Path,
) -> None:
    client = connect(imap_server)
    try:
        client.create_folder("Sent")
        # INBOX gets the lower UIDs and is listed first: still the ask must be read first.
        client.append("INBOX", mf.mentor_reply(ASK_ID))
        client.append("Sent", mf.ask(ASK_ID), flags=(KEYWORD,))
    finally:
        client.logout()
    with mailbox_harness(redis_server, imap_server, smtp_sink, tmp_path) as h:
        loop = h.wait_stage(Stage.ADVISED)
        assert loop.mentor.address == mf.MENTOR_ADDRESS
        assert len(h.loops()) == 1


def test_marking_a_thread_later_by_copying_it_into_the_tracked_folder(
    mailbox: MailboxHarness,
) -> None:
    h = mailbox
    h.put("Sent", mf.ask(ASK_ID))
    h.put("INBOX", mf.mentor_reply(ASK_ID))
    h.wait_read("Sent", "INBOX")
    assert h.loops() == []
    # Days later the user files the thread (both messages) under the tracked folder.
    h.put(TRACK_FOLDER, mf.ask(ASK_ID))
    h.put(TRACK_FOLDER, mf.mentor_reply(ASK_ID))
    loop = h.wait_stage(Stage.ADVISED)
    assert ASK_ID.strip("<>") in loop.message_ids
    assert len(h.loops()) == 1


@pytest.fixture
def dovecot_mailbox(
    redis_server: Any,
    redis_client: Any,
    dovecot_server: Any,
    smtp_sink: SmtpSink,
    tmp_path: Path,
) -> Iterator[MailboxHarness]:
    """Dovecot only: pymap keeps no keyword set by STORE."""
    with mailbox_harness(redis_server, dovecot_server.add_user(), smtp_sink, tmp_path) as h:
        yield h


def mark(h: MailboxHarness, folder: str, message_id: str) -> None:
    """The user tags a message already in their mailbox (what a mail client's tag button does)."""
    client = connect(h.imap)
    try:
        client.select_folder(folder)
        uids = client.search(["HEADER", "Message-ID", message_id])
        assert uids, f"{message_id} is not in {folder}"
        client.add_flags(uids, [KEYWORD])
    finally:
        client.logout()


def test_tagging_messages_days_after_they_arrived(dovecot_mailbox: MailboxHarness) -> None:
    h = dovecot_mailbox
    h.put("Sent", mf.ask(ASK_ID))
    h.put("INBOX", mf.mentor_reply(ASK_ID))
    h.wait_read("Sent", "INBOX")
    assert h.loops() == []

    # The answer turns out to be advice worth acting on: the user tags it in INBOX.
    mark(h, "INBOX", ANSWER_ID)
    loop = h.wait_stage(Stage.ADVISED)
    assert loop.mentor.address == mf.MENTOR_ADDRESS
    assert "three plans" in loop.advice_excerpt

    # Tagging the ask in Sent later joins the same thread's loop; nothing is counted twice.
    mark(h, "Sent", ASK_ID)
    wait_for(
        lambda: ASK_ID.strip("<>") in h.loop(loop.id).message_ids,
        what="the tagged ask to join the loop",
    )
    assert len(h.loops()) == 1
    assert h.loop(loop.id).stage is Stage.ADVISED


def _with_auth(raw: bytes, results: str, message_id: str) -> bytes:
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    msg["Authentication-Results"] = results
    msg.replace_header("Message-ID", message_id)
    return msg.as_bytes()


def test_require_authentication_is_not_bypassed_for_marked_mail(
    redis_server: Any,
    redis_client: Any,
    any_imap_server: ImapAccount,
    smtp_sink: SmtpSink,
    tmp_path: Path,
) -> None:
    """Found in the issue: a tracked message from the user's address that failed the
    Authentication-Results check was turned into outgoing mail anyway. On a real server: a
    forged "ask" marked in INBOX starts nothing; the user's own marked ask in Sent still does."""
    with mailbox_harness(
        redis_server,
        any_imap_server,
        smtp_sink,
        tmp_path,
        require_authentication=True,
        authserv_id="mx.example.com",
    ) as h:
        forged = _with_auth(
            mf.ask(),
            "mx.example.com; dkim=fail header.d=example.com; spf=fail smtp.mailfrom=example.com",
            "<forged-ask@evil.example>",
        )
        h.put("INBOX", forged, flags=(KEYWORD,))
        h.put("Sent", mf.ask("<own-ask@client.example>", subject="My own question"), (KEYWORD,))
        h.wait_read("INBOX", "Sent")
        loops = h.loops()
        assert [lp.subject for lp in loops] == ["My own question"], loops
        assert not h.handled("<forged-ask@evil.example>")
