"""Acting from the digest, on the test servers (pymap, aiosmtpd, embedded Redis, the real send
workers, a ManualClock): its numbered lines, a reply such as ``2 done`` moving line 2's loop,
``learn <topic>`` starting a loop, one answer per reply, and a simulated month of digests."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from mailmentor.cli import main
from mailmentor.imap import ImapAccount
from mailmentor.model import Event, EventType, Kind, Loop, Person, Stage
from mailmentor.sandbox.smtp_sink import SmtpSink
from mailmentor.schedule import planned
from mailmentor.stages import replay
from tests import mail_factory as mf
from tests.harness import Harness, running_harness
from tests.reminders._support import text_of
from tests.store_support import put_loop
from tests.waiting import wait_for

START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)  # a Monday
RULES = """
settings:
  digest: {day: monday, time: "08:00"}
rule_sets:
  advice:
    match: {kinds: [advice]}
    stages:
      asked: {after: 7d, every: 7d, max: 1, give_up_after: 30d}
      advised: {after: 3d, every: 5d, max: 3}
      acted: {after: 3d}
      reported: {after: 14d}
  learn:
    match: {kinds: [learn]}
    stages:
      asked: {after: 3d}
"""


@pytest.fixture
def h(
    redis_server: Any,
    redis_client: Any,
    imap_server: ImapAccount,
    smtp_sink: SmtpSink,
    tmp_path: Path,
) -> Iterator[Harness]:
    with running_harness(
        redis_server, imap_server, smtp_sink, tmp_path, RULES, START, confirm_commands=True
    ) as h:
        yield h


NAMES = [
    "Alan",
    "Grace",
    "Edsger",
    "Barbara",
    "Donald",
    "Frances",
    "Ken",
    "Radia",
    "Dennis",
    "Margaret",
    "Niklaus",
    "Adele",
]


def person(n: int) -> Person:
    return Person(address=f"mentor{n}@example.org", name=f"{NAMES[n - 1]} Example")


def stored(h: Harness, n: int, stage: Stage, days_ago: float, kind: Kind = Kind.ADVICE) -> Loop:
    """Loop ``n`` with mentor ``n``, in ``stage`` since ``days_ago``, as intake stores it."""
    entered = h.clock.now() - timedelta(days=days_ago)
    created = entered - timedelta(days=2)
    events = [
        Event(at=created, type=EventType.CREATED, source=f"message <a{n}@x>", stage=Stage.ASKED)
    ]
    if stage is not Stage.ASKED:
        events.append(
            Event(at=entered, type=EventType.ADVICE, source=f"message <f{n}@x>", stage=stage)
        )
    loop = Loop(
        id=f"loop{n:02d}",
        kind=kind,
        mentor=person(n),
        subject=f"Question {n}",
        stage=stage,
        created_at=created,
        stage_entered_at=entered,
        message_ids=[f"a{n}@x"],
    )
    return put_loop(h.store, planned(replay(loop, events), h.services.writer.rules()))


def plain(message: EmailMessage) -> str:
    return text_of(message).replace("\r\n", "\n")


def numbers_of(text: str) -> dict[str, int]:
    """Subject → line number, from the digest's text."""
    return {
        m.group(2): int(m.group(1)) for m in re.finditer(r"^ ?(\d+)\. [^:]+: (.+?) \(", text, re.M)
    }


def lines_at(lines: dict[str, int], number: int) -> str:
    return next(subject for subject, n in lines.items() if n == number)


def send_digest_now(h: Harness) -> EmailMessage:
    before = len(h.sink.messages)
    sender = h.services.sender
    sender.send_job(sender.queue_digest_now())
    return h.sink.wait_for(before + 1, timeout=15)[before].message


def answers_to(h: Harness, raw: bytes) -> list[EmailMessage]:
    """Deliver ``raw`` and wait until its answer job is sent: the mails that came of it."""
    before = len(h.sink.messages)
    h.deliver(raw)
    message_id = mf.message_id_of(raw)
    wait_for(
        lambda: (
            h.store.outbox.job(f"reply:{message_id}") is None
            and any(m.message["In-Reply-To"] == f"<{message_id}>" for m in h.sink.messages)
        ),
        what="the answer to the digest reply",
    )
    wait_for(lambda: not h.store.outbox.pending(), what="the outbox drained")
    return [m.message for m in h.sink.messages[before:]]


def test_the_digest_numbers_what_the_user_owes_and_what_waits_on_others(h: Harness) -> None:
    stored(h, 1, Stage.ADVISED, 4)
    stored(h, 2, Stage.ACTED, 2)
    stored(h, 3, Stage.ASKED, 9)
    stored(h, 4, Stage.ASKED, 1, kind=Kind.MENTEE)  # someone asked the user
    digest = send_digest_now(h)
    text = plain(digest)
    assert digest["Subject"] == "Your week: 3 to do, 4 open loops"
    your_move, waiting = text.index("Your move\n"), text.index("Waiting on\n")
    assert your_move < waiting
    assert " 1. act on Alan's advice: Question 1 (advice came 4 days ago" in text
    assert " 2. tell Grace how it went: Question 2 (acted 2 days ago" in text
    assert " 3. answer Barbara: Question 4 (they asked you yesterday" in text
    assert (
        " 4. waiting for Edsger: Question 3 (asked 9 days ago; let go Mon 26 Jan if no answer)"
        in text
    )
    assert "Barbara Example <mentor4@example.org>: they asked you: answer them" in text
    assert "Edsger Example <mentor3@example.org>: waiting for their answer" in text
    assert "(0 days)" not in text
    # The harness runs watcher and send workers but no scheduler process: the digest says so.
    assert "\nmailmentor: no scheduler is running — run `mailmentor status`\n" in text
    assert digest.get_body(("html",)) is not None


def test_a_reply_to_the_digest_acts_on_the_lines_it_names_with_one_answer(h: Harness) -> None:
    first = stored(h, 1, Stage.ADVISED, 4)
    second = stored(h, 2, Stage.ADVISED, 3)
    digest = send_digest_now(h)
    lines = numbers_of(plain(digest))
    assert lines == {"Question 1": 1, "Question 2": 2}

    reply = mf.reply_to_reminder(
        digest, "Thanks!\n2 done - signed up for a course\nsnooze 1 1w\nlearn Rust\n9 stop\n\nAda"
    )
    [answer] = answers_to(h, reply)

    assert h.loop(second.id).stage is Stage.ACTED
    assert h.loop(first.id).stage is Stage.SNOOZED
    learn = [lp for lp in h.loops() if lp.kind is Kind.LEARN]
    assert [(lp.subject, lp.stage) for lp in learn] == [("Rust", Stage.ASKED)]
    text = text_of(answer).replace("\r\n", "\n")
    assert "2. “Question 2” with Grace Example:\nDone: you acted on Grace Example's advice" in text
    assert "(noted: “signed up for a course”)" in text
    assert "1. “Question 1” with Alan Example:\nSnoozed until Mon 12 Jan" in text
    assert "Noted: you want to learn “Rust”." in text
    assert "“9 stop” was not applied: that digest has no line 9." in text
    assert answer["In-Reply-To"] == f"<{mf.message_id_of(reply)}>"


def test_a_command_with_no_line_number_is_refused_when_the_digest_has_several(h: Harness) -> None:
    stored(h, 1, Stage.ADVISED, 4)
    stored(h, 2, Stage.ADVISED, 3)
    digest = send_digest_now(h)
    reply = mf.reply_to_reminder(digest, "done")
    [answer] = answers_to(h, reply)
    assert "“done” was not applied: say which line, e.g. “2 done”." in text_of(answer)
    assert {lp.stage for lp in h.loops()} == {Stage.ADVISED}
    assert h.handled(mf.message_id_of(reply)), "marked applied: read again, not answered again"


def test_a_forged_digest_token_changes_nothing(h: Harness) -> None:
    stored(h, 1, Stage.ADVISED, 4)
    digest = send_digest_now(h)
    reply_to = str(digest["Reply-To"])
    forged = re.sub(r"-[a-z2-7]{10}@", "-aaaaaaaaaa@", reply_to)
    raw = mf.reply_to_reminder(digest, "1 done").replace(reply_to.encode(), forged.encode())
    raw = re.sub(rb"In-Reply-To: <[^>]+>", b"In-Reply-To: <x@y>", raw)
    raw = re.sub(rb"References: <[^>]+>", b"References: <x@y>", raw)
    h.deliver(raw)
    h.deliver(mf.reply_to_reminder(digest, "1 stop"))  # a real one after it, to wait for
    wait_for(lambda: h.loop("loop01").stage is Stage.DROPPED, what="the real reply applied")
    history = h.loop("loop01").events
    assert not any(e.stage is Stage.ACTED for e in history), "the forged reply did nothing"


def test_a_resent_digest_keeps_its_numbers(h: Harness) -> None:
    stored(h, 1, Stage.ADVISED, 4)
    stored(h, 2, Stage.ADVISED, 3)
    sender = h.services.sender
    key = "k1"
    first = sender.numbered_digest(key).numbers
    stored(h, 3, Stage.ADVISED, 9)  # older: it would come first in a fresh digest
    again = sender.numbered_digest(key).numbers
    assert {n: again[n] for n in first} == first
    assert again[3] == "loop03"


def test_a_month_of_digests_one_a_week_and_replies_move_lines(
    h: Harness, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for n in range(1, 13):  # a dozen loops, at every step of the way
        stage = (Stage.ASKED, Stage.ADVISED, Stage.ACTED, Stage.REPORTED)[n % 4]
        stored(h, n, stage, n % 5 + 1)
    h.store.weekly.digest_epoch(START)
    digests: list[EmailMessage] = []
    for day in range(1, 29):
        h.clock.set(START + timedelta(days=day, hours=-1))  # 08:00 UTC each day
        before = len(h.sink.messages)
        if h.scheduler.digest_tick() is not None:
            digests.append(h.sink.wait_for(before + 1, timeout=15)[before].message)
            wait_for(lambda: not h.store.outbox.pending(), what="the digest sent")
            if len(digests) == 1:
                text = plain(digests[0])
                lines = numbers_of(text)
                target = next(lp for lp in h.loops() if lp.subject == lines_at(lines, 2))
                [answer] = answers_to(h, mf.reply_to_reminder(digests[0], "2 done"))
                moved = h.loop(target.id)
                assert moved.stage is not target.stage, "line 2 moved on"
                assert f"2. “{target.subject}”" in text_of(answer)
    weeks = [d["Date"] for d in digests if d["Subject"].startswith("Your week")]
    assert len(weeks) == 4, weeks
    assert all(d["Subject"].startswith("Your week: ") for d in digests)

    # `mailmentor mentors` shows the numbers the last digest's "Your people" showed.
    last = plain(digests[-1])
    people = dict(
        re.findall(
            r"^- .*<(\S+@\S+)>: .*\((asked \d+, advice \d+, [^)]*?)(?:, last|\))", last, re.M
        )
    )
    monkeypatch.setenv("MAILMENTOR_REDIS_URL", h.stack.settings.redis_url)
    assert main(["mentors", "--json"]) == 0
    for row in json.loads(capsys.readouterr().out):
        said = people[row["address"]]
        counts = f"asked {row['asks']}, advice {row['advice']}, reported {row['reports']}"
        assert said.startswith(f"{counts}, gave back {row['gives']}"), (said, row)
