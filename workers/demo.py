"""`mailmentor demo`: a whole advice loop on real local servers, replying to its own reminders.

Embedded Redis, a pymap IMAP mailbox and an aiosmtpd sink on loopback; the real watcher, scheduler
and send actors; rules sped up to seconds. It BCCs a sample ask, forwards the mentor's answer, and
answers each reminder with a command until the loop closes.
"""

from __future__ import annotations

import queue
import tempfile
import threading
import time
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path

from mailmentor.app import DEMO_SERVICE, DEMO_USER
from mailmentor.clock import SystemClock
from mailmentor.imap import ImapAccount, append_message
from mailmentor.model import Stage
from mailmentor.sandbox.imap_server import LocalImapServer
from mailmentor.sandbox.smtp_sink import ReceivedMessage, SmtpSink
from mailmentor.service.outcomes import MailSent, Notice
from mailmentor.settings import load_settings
from workers.stack import Stack

MENTOR = "Alan Mentor <alan@mentors.example>"
TIMEOUT = 90.0

DEMO_RULES = """\
# Demo cadence: seconds instead of days, so a whole loop fits in a minute.
rule_sets:
  advice:
    match:
      kinds: [advice]
    stages:
      asked:
        after: 30s
      advised:
        after: 2s
      acted:
        after: 2s
      reported:
        after: 2s
"""

#: What the demo "user" answers to each reminder, by the stage the loop is in.
ANSWERS = {
    Stage.ADVISED: "done",
    Stage.ACTED: "reported",
    Stage.REPORTED: "gave back sent Alan our new conversion numbers and a book he'd like",
}


class Demo:
    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.started = time.monotonic()
        self.closed = threading.Event()
        self.replies: queue.Queue[ReceivedMessage] = queue.Queue()
        self.account: ImapAccount | None = None
        self.stack: Stack | None = None
        #: Message-IDs of the demo's own replies: mail answering one is mailmentor's answer to
        #: a command, not a reminder to reply to.
        self.mine: set[str] = set()

    def say(self, text: str) -> None:
        print(f"[{time.monotonic() - self.started:5.1f}s] {text}", flush=True)

    def on_stage(self, notice: Notice) -> None:
        if isinstance(notice, MailSent):
            return
        self.say(f"stage: {notice}")
        if notice.loop.stage is Stage.CLOSED:
            self.closed.set()

    def on_mail(self, received: ReceivedMessage) -> None:
        msg = received.message
        first = next((line for line in _text_of(msg).splitlines() if line.strip()), "")
        if str(msg.get("In-Reply-To", "")) in self.mine:
            self.say(f"mailmentor answers: {first}")
            return
        # Every mail of a loop has the loop's subject; the first line says what to do now.
        self.say(f"reminder sent → {', '.join(received.rcpt_tos)}: {first}")
        self.replies.put(received)

    def run(self) -> int:
        rules_dir = self.workdir / "rules"
        rules_dir.mkdir()
        (rules_dir / "demo.yaml").write_text(DEMO_RULES)
        settings = load_settings(
            redis_url="",
            imap_host="",
            smtp_host="",
            data_dir=self.workdir / "data",
            rules_dir=rules_dir,
            service_address=DEMO_SERVICE,
            user_addresses=[DEMO_USER],
            secret_key="",
            scheduler_interval=0.3,
            imap_idle_renew=2.0,
        )
        imap = LocalImapServer()
        sink = SmtpSink(on_message=self.on_mail)
        try:
            self.account = imap.start()
            self.say(f"local IMAP server (pymap) on {self.account.host}:{self.account.port}")
            smtp = sink.start()
            self.say(f"local SMTP sink (aiosmtpd) on {smtp.host}:{smtp.port}")
            self.stack = Stack(
                settings,
                clock=SystemClock(),
                imap=self.account,
                smtp=smtp,
                listeners=[self.on_stage],
            )
            self.stack.start()
            self.say("embedded Redis, watcher, scheduler and send workers running")
            return self._script()
        finally:
            if self.stack is not None:
                self.stack.stop()
            sink.stop()
            imap.stop()

    def _script(self) -> int:
        assert self.account is not None
        ask_id = make_msgid(domain="you.example")
        self.say(f"you ask {MENTOR} for advice, BCC'ing {DEMO_SERVICE}")
        append_message(self.account, ask(ask_id))
        time.sleep(1.5)
        self.say("Alan answers; you forward his answer to mailmentor")
        append_message(self.account, forward_of_answer(ask_id))
        deadline = time.monotonic() + TIMEOUT
        while not self.closed.is_set():
            if time.monotonic() > deadline:
                self.say(f"the loop did not close within {TIMEOUT:.0f}s")
                return 1
            try:
                reminder = self.replies.get(timeout=0.2)
            except queue.Empty:
                continue
            self._answer(reminder)
        self.say("loop closed: asked → advised → acted → reported → gave back → closed")
        assert self.stack is not None
        for loop in self.stack.store.loops.ended_loops():
            self.say(f"its history, as `mailmentor show {loop.id}` tells it:")
            for event in self.stack.store.loops.history(loop.id):
                detail = f" — {event.detail}" if event.detail else ""
                print(f"         {event.type:<14} → {event.stage:<9} {event.source}{detail}")
        return 0

    def _answer(self, reminder: ReceivedMessage) -> None:
        assert self.stack is not None and self.account is not None
        loop_id = str(reminder.message.get("X-Mailmentor-Loop", ""))
        loop = self.stack.store.loops.get(loop_id, texts=False)
        if loop is None:
            return
        answer = ANSWERS.get(loop.stage)
        if answer is None:
            return
        self.say(f"you reply to the reminder: {answer!r}")
        message_id = make_msgid(domain="you.example")
        self.mine.add(message_id)
        append_message(self.account, reply_to(reminder.message, answer, message_id))


def ask(message_id: str) -> bytes:
    msg = EmailMessage()
    msg["From"] = f"You <{DEMO_USER}>"
    msg["To"] = MENTOR
    msg["Subject"] = "Advice on our pricing page?"
    msg["Date"] = format_datetime(SystemClock().now())
    msg["Message-ID"] = message_id
    msg.set_content(
        "Hi Alan,\n\nOur pricing page converts at 1%. You've seen a hundred of these: "
        "what would you change first?\n\nThanks!\nYou\n"
    )
    return bytes(msg)


def forward_of_answer(ask_id: str) -> bytes:
    msg = EmailMessage()
    msg["From"] = f"You <{DEMO_USER}>"
    msg["To"] = DEMO_SERVICE
    msg["Subject"] = "Fwd: Re: Advice on our pricing page?"
    msg["Date"] = format_datetime(SystemClock().now())
    msg["Message-ID"] = make_msgid(domain="you.example")
    msg.set_content(
        "FYI\n\n"
        "---------- Forwarded message ---------\n"
        f"From: {MENTOR}\n"
        "Date: Mon, Jan 5, 2026 at 9:14 AM\n"
        "Subject: Re: Advice on our pricing page?\n"
        f"To: You <{DEMO_USER}>\n\n"
        "Cut it to three plans, put the middle one first, and show the annual price. "
        "Then measure for two weeks before touching anything else.\n\nAlan\n"
    )
    return bytes(msg)


def reply_to(reminder: EmailMessage, command: str, message_id: str) -> bytes:
    msg = EmailMessage()
    msg["From"] = f"You <{DEMO_USER}>"
    msg["To"] = str(reminder["Reply-To"])
    msg["Subject"] = f"Re: {reminder['Subject']}"
    msg["Date"] = format_datetime(SystemClock().now())
    msg["Message-ID"] = message_id
    msg["In-Reply-To"] = str(reminder["Message-ID"])
    msg["References"] = f"{reminder.get('References', '')} {reminder['Message-ID']}".strip()
    quoted = "\n".join(f"> {line}" for line in _text_of(reminder).splitlines())
    msg.set_content(f"{command}\n\nOn Monday, mailmentor wrote:\n{quoted}\n")
    return bytes(msg)


def _text_of(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    return part.get_content() if isinstance(part, EmailMessage) else ""


def run_demo() -> int:
    with tempfile.TemporaryDirectory(prefix="mailmentor-demo-") as workdir:
        return Demo(Path(workdir)).run()
