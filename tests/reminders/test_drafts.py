"""End to end on pymap, aiosmtpd and Redis: the reminder to report back puts one starter draft in
the user's Drafts folder (never sent), a retried delivery does not add a second one, a failing
APPEND does not cost the reminder, and a rule's ``template:`` from RULES_DIR/templates is used."""

from __future__ import annotations

import contextlib
import email
import email.policy
import logging
from collections.abc import Callable, Iterator
from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from imapclient import IMAPClient

from mailmentor.imap import ImapAccount, connect, create_folder
from mailmentor.model import Loop, Stage
from mailmentor.sandbox.smtp_sink import SmtpSink
from mailmentor.service.sender import AlreadyDone, Sent
from tests import mail_factory as mf
from tests.harness import Harness, running_harness
from tests.waiting import wait_for

ACTED_1D = """
rule_sets:
  advice:
    match: {kinds: [advice]}
    stages:
      advised: {after: 1d}
      acted: {after: 1d, template: gentle}
"""

GENTLE_TXT = """{% set mail_subject = "Gently: how did it go with " ~ mentor_name ~ "?" %}
No rush. {{ headline }}.

{{ draft }}

{{ commands }}
"""

Factory = Callable[[str], Harness]


@pytest.fixture
def make_harness(
    redis_server: Any,
    redis_client: Any,
    imap_server: ImapAccount,
    smtp_sink: SmtpSink,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Factory]:
    """A harness whose settings say DRAFTS_FOLDER=<folder> (read from the environment)."""
    with contextlib.ExitStack() as stack:

        def make(folder: str) -> Harness:
            monkeypatch.setenv("MAILMENTOR_DRAFTS_FOLDER", folder)
            harness = stack.enter_context(
                running_harness(redis_server, imap_server, smtp_sink, tmp_path, ACTED_1D)
            )
            templates = tmp_path / "rules" / "templates"
            templates.mkdir()
            (templates / "gentle.txt.j2").write_text(GENTLE_TXT)
            return harness

        yield make


def _acted(h: Harness) -> Loop:
    """An ask, the mentor's advice, the advised reminder, and "done": the loop is acted."""
    h.deliver(mf.ask())
    h.only_loop()
    h.deliver(mf.gmail_forward())
    h.wait_stage(Stage.ADVISED)
    h.pass_days(1.1)
    h.deliver(mf.reply_to_reminder(h.next_reminder(1), "done"))
    return h.wait_stage(Stage.ACTED)


def _drafts(account: ImapAccount, folder: str) -> list[tuple[set[bytes], EmailMessage]]:
    """Flags and parsed message of every \\Draft message in ``folder``."""
    client: IMAPClient = connect(account)
    try:
        client.select_folder(folder, readonly=True)
        uids = client.search(["DRAFT"])
        fetched = client.fetch(uids, ["FLAGS", "BODY.PEEK[]"]) if uids else {}
        found = []
        for data in fetched.values():
            parsed = email.message_from_bytes(data[b"BODY[]"], policy=email.policy.default)
            assert isinstance(parsed, EmailMessage)
            found.append((set(data[b"FLAGS"]), parsed))
        return found
    finally:
        client.logout()


def test_report_reminder_saves_one_draft_to_the_mentor(make_harness: Factory) -> None:
    h = make_harness("Drafts")
    create_folder(h.imap, "Drafts")
    loop = _acted(h)
    h.clock.advance(timedelta(days=1.1))
    before = h.loop(loop.id)  # what a worker that crashed mid-job saw
    assert before.next_action is not None
    h.scheduler.tick()

    reminder = h.next_reminder(2)
    assert reminder["Subject"] == "Gently: how did it go with Alan?", "the rule's template"
    body = reminder.get_body(preferencelist=("plain",))
    assert isinstance(body, EmailMessage)
    assert "No rush. Tell Alan how it went." in body.get_content()
    h.wait_recorded(loop.id, 1)

    drafts = wait_for(lambda: _drafts(h.imap, "Drafts"), what="the draft")
    assert len(drafts) == 1
    flags, draft = drafts[0]
    assert {b"\\Draft", b"\\Seen"} <= flags
    assert [a.addr_spec for a in draft["To"].addresses] == [mf.MENTOR_ADDRESS]
    assert [a.addr_spec for a in draft["From"].addresses] == [mf.USER]
    assert draft["Subject"] == "Re: Advice on pricing page?"
    assert "ask-1@client.example" in draft["In-Reply-To"]
    assert "ask-1@client.example" in draft["References"]
    assert draft["Auto-Submitted"] is None
    text = draft.get_content()
    assert text.startswith("Hi Alan,") and "[what you tried" in text
    assert "three plans" in text, "the advice is quoted"
    assert all(mf.MENTOR_ADDRESS not in rcpt for m in h.sink.messages for rcpt in m.rcpt_tos)

    # The same job again (dramatiq redelivers a job whose ack was lost): recorded already.
    again = h.services.sender.deliver(loop.id, before.next_action.key)
    assert isinstance(again, AlreadyDone), again
    assert len(_drafts(h.imap, "Drafts")) == 1, "a retried delivery appends no second draft"
    assert len(h.sink.messages) == 2, "nor sends a second reminder"
    assert h.loop(loop.id).nudges == 1


def test_a_failing_append_does_not_cost_the_reminder(
    make_harness: Factory, caplog: pytest.LogCaptureFixture
) -> None:
    h = make_harness("No Such Folder")
    loop = _acted(h)
    h.clock.advance(timedelta(days=1.1))
    action = h.loop(loop.id).next_action
    assert action is not None
    with caplog.at_level(logging.ERROR, logger="mailmentor.sender"):
        outcome = h.services.sender.deliver(loop.id, action.key)
        wait_for(lambda: not h.store.outbox.pending(), what="the draft's job to be done")
    assert isinstance(outcome, Sent), outcome
    assert "Gently" in h.next_reminder(2)["Subject"]
    assert h.loop(loop.id).nudges == 1
    assert "could not save the report-back draft" in caplog.text
    assert "No Such Folder" in caplog.text
