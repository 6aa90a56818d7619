"""automatic_reason: RFC 3834 signals, robots known by what they are, and people left alone.

The table tests take real robots' mail (fixtures/automatic/, see its README, and DSNs in the shared
corpora), re-address it as if the user had sent it, and expect it recognised: as it is, through
intake, and with the headers that merely declare it automatic removed.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from email import policy
from email.message import Message
from email.parser import BytesParser
from pathlib import Path

import pytest

from mailmentor.intake import Identity, Ignored, classify
from mailmentor.parsing.automatic import SCAN_BYTES, automatic_reason
from mailmentor.parsing.message import parse_message
from tests.fixtures.forwards import CLIENTS
from tests.parsing._support import FIXTURES, corpus, fixture, wrap

PERSON = b"From: Alan Kay <alan@example.com>\r\nTo: g@example.org\r\nSubject: Re: pricing\r\n"


def reason(extra_headers: bytes, base: bytes = PERSON) -> str | None:
    raw = base + extra_headers + b"\r\nbody\r\n"
    return automatic_reason(BytesParser(policy=policy.default).parsebytes(raw))


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        (b"", None),
        (b"Auto-Submitted: no\r\n", None),
        (b"Auto-Submitted: auto-replied\r\n", "Auto-Submitted: auto-replied"),
        (b"Auto-Submitted: Auto-Generated; by=x\r\n", "Auto-Submitted: auto-generated"),
        (b"Auto-Submitted: auto-generated (failure)\r\n", "Auto-Submitted: auto-generated"),
        (b"Auto-Submitted: no (a person)\r\n", None),
        (b"Precedence: bulk\r\n", "Precedence: bulk"),
        (b"Precedence: list\r\n", "Precedence: list"),
        (b"Precedence: junk\r\n", "Precedence: junk"),
        (b"Precedence: auto_reply\r\n", "Precedence: auto_reply"),
        (b"Precedence: first-class\r\n", None),
        (b"List-Id: <team.lists.example.org>\r\n", "mailing list (List-Id)"),
        (b"List-Unsubscribe: <mailto:u@x>\r\n", "mailing list (List-Unsubscribe)"),
        (b"X-Autoreply: yes\r\n", "x-autoreply header"),
        (b"X-Autorespond: yes\r\n", "x-autorespond header"),
        (b"X-Auto-Response-Suppress: All\r\n", "X-Auto-Response-Suppress: all"),
        (b"X-Auto-Response-Suppress: DR, OOF\r\n", "X-Auto-Response-Suppress: oof"),
        (b"X-Auto-Response-Suppress: DR, RN\r\n", None),
        (b"Return-Path: <>\r\n", "empty Return-Path (a bounce)"),
        (b"Return-Path: <alan@example.com>\r\n", None),
        (b"Content-Type: multipart/report; report-type=disposition-notification; boundary=x\r\n",
         "read receipt (multipart/report)"),
        (b"Content-Type: multipart/report; boundary=x\r\n",
         "delivery or read report (multipart/report)"),
        (b"Mailing-List: contact x-help@lists.example.org; run by ezmlm\r\n",
         "mailing list (mailing-list)"),
        (b"X-Failed-Recipients: bob@example.net\r\n", "bounce (x-failed-recipients header)"),
        (b"X-Amz-Sns-Message-Id: 02f86d9b\r\n",
         "Amazon SNS notification (x-amz-sns-message-id header)"),
        (b"X-List-Administrivia: yes\r\n",
         "mailing-list robot notice (x-list-administrivia header)"),
        (b"Return-Path: <MAILER-DAEMON>\r\n", "Return-Path of mailer-daemon (a bounce)"),
        (b"Return-Path: <double-bounce@mx.example.org>\r\n",
         "Return-Path of double-bounce (a bounce)"),
    ],
)  # fmt: skip
def test_headers(headers: bytes, expected: str | None) -> None:
    assert reason(headers) == expected


@pytest.mark.parametrize(
    ("sender", "expected"),
    [
        (b"MAILER-DAEMON@mx.example.org", "sent by mailer-daemon"),
        (b"Mail System <postmaster@example.org>", "sent by postmaster"),
        (b"Postmaster General <pm@example.org>", None),
        (b"Majordomo@lists.example.org", "sent by majordomo"),
        (
            b"SES <no-reply@sns.amazonaws.com>",
            "sent by no-reply@sns.amazonaws.com (notifications only)",
        ),
    ],
)
def test_bounce_senders(sender: bytes, expected: str | None) -> None:
    assert reason(b"", base=b"From: " + sender + b"\r\nSubject: hello\r\n") == expected


@pytest.mark.parametrize(
    ("subject", "automatic"),
    [
        ("Automatic reply: pricing", True),
        ("Auto reply: pricing", True),
        ("Auto-Reply: pricing", True),
        ("AUTO-REPLY: pricing", True),
        ("Out of Office: pricing", True),
        ("Out of office until Monday", True),
        ("Autosvar: pricing", True),
        ("Abwesenheitsnotiz: pricing", True),
        ("Réponse automatique : pricing", True),
        ("=?utf-8?q?R=C3=A9ponse_automatique_=3A_pricing?=", True),
        ("Undeliverable: pricing", True),
        ("Delivery Status Notification (Failure)", True),
        ("Delayed Mail (still being retried)", True),
        ("Warning: message 1vXyZ-000Abc-7Q delayed 24 hours", True),
        ("Warning: could not send message for past 4 hours", True),
        ("Delivery Status Notification (Delay)", True),
        ("Your message to Founders awaits moderator approval", True),
        ("Majordomo results: subscribe", True),
        ("Loop Alert: Duplicated Message-ID (founders ML)", True),
        ("confirm subscribe to founders@lists.example.org", True),
        ("complaint about message from 192.0.2.222", True),
        ("AWS Notification Message", True),
        ("Re: Automatic reply: pricing", False),
        ("Fwd: Delayed Mail (still being retried)", False),
        ("Delivery status of the pilot", False),
        ("Delivery delayed: new timeline for the pilot", False),
        ("Warning signs in our churn numbers", False),
        ("Your message to the board was great", False),
        ("Re: pricing", False),
        ("Thoughts on out of office etiquette", False),
    ],
)
def test_subjects(subject: str, automatic: bool) -> None:
    raw = b"From: a@x.org\r\nSubject: " + subject.encode() + b"\r\n"
    assert (reason(b"", base=raw) is not None) is automatic


def test_fixtures() -> None:
    assert parse_message(fixture("auto_reply.eml")).automatic == (
        "subject starts with 'Automatic reply'"
    )
    assert parse_message(fixture("dsn.eml")).automatic == "delivery report (multipart/report)"
    for name in ("bcc_ask.eml", "gmail_forward.eml", "outlook_reply.eml", "attached_rfc822.eml"):
        assert parse_message(fixture(name)).automatic is None, name


# --- body rules, one by one ---------------------------------------------------------------------

ADA = "Ada <ada@example.com>"


def text_mail(body: str, subject: str = "Hello", extra: str = "") -> bytes:
    head = f"From: {ADA}\r\nTo: Alan <alan@example.org>\r\nSubject: {subject}\r\n{extra}"
    head += "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
    return (head + body.replace("\n", "\r\n")).encode()


POSTFIX_OPENING = (
    "This is the mail system at host mx.example.com.\n\nI'm sorry to have to inform you"
)
DSN_FIELDS = "Final-Recipient: rfc822; carol@example.net\nAction: failed\nStatus: 5.1.1\n"


@pytest.mark.parametrize(
    ("body", "subject", "extra", "expected"),
    [
        # Robot wording counts alone when the text opens with it…
        (POSTFIX_OPENING, "Hello", "", "bounce (text: 'This is the mail system at host')"),
        ("Hi!\n\nThis is the MAILER-DAEMON, please DO NOT REPLY to this e-mail.\n", "x", "",
         "bounce (text: 'This is the MAILER-DAEMON, please DO NOT REPLY')"),
        ("Hello ada@example.com,\n\nWe're writing to let you know that the group you tried to "
         "contact (founders) may not exist", "x", "",
         "mailing-list robot notice (text: \"We're writing to let you know that the group you tried"
         " to co\")"),
        (POSTFIX_OPENING + "\n\n# THIS IS A WARNING ONLY.  YOU DO NOT NEED TO RESEND YOUR MESSAGE.",
         "x", "", "delivery delay notice (text: 'This is the mail system at host')"),
        # …further down only with a robot's sender or subject…
        ("Bonjour,\n\nVotre message.\n\n" + POSTFIX_OPENING, "x", "", None),
        ("Bonjour,\n\nVotre message.\n\n" + POSTFIX_OPENING, "x",
         "Return-Path: <bounces@mx.example.com>\r\n",
         "bounce (text: 'This is the mail system at host')"),
        # …and never when a person writes first, quotes it or forwards it.
        ("Hi Alan,\n\nwhat does this mean?\n\n" + POSTFIX_OPENING, "Question", "", None),
        ("> " + POSTFIX_OPENING.replace("\n", "\n> "), "Re: bounce", "", None),
        (POSTFIX_OPENING, "Fwd: this came back", "", None),
        # DSN fields need a robot's subject or sender; ARF fields and SES JSON do not.
        (DSN_FIELDS, "Notes", "", None),
        (DSN_FIELDS, "Notes", "Sender: founders-bounces@lists.example.org\r\n",
         "delivery report (DSN fields in the text, action, final-recipient, status)"),
        ("Feedback-Type: abuse\nUser-Agent: SomeGenerator/1.0\nVersion: 1\n", "x", "",
         "feedback report (ARF fields in the text)"),
        ("Feedback-Type: abuse\nVersion: 1\n", "x", "", None),
        ('{"notificationType":"Complaint","complaint":{}}', "x", "",
         "Amazon SES complaint notification (JSON body)"),
        ('Look: {"notificationType":"Complaint"}', "x", "", None),
    ],
)  # fmt: skip
def test_body_rules(body: str, subject: str, extra: str, expected: str | None) -> None:
    assert parse_message(text_mail(body, subject, extra)).automatic == expected


def test_nested_reports_count_unless_forwarded() -> None:
    raw = (
        f"From: {ADA}\r\nSubject: {{subject}}\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
        "--b\r\nContent-Type: text/plain\r\n\r\nSee below.\r\n"
        "--b\r\nContent-Type: message/{kind}\r\n\r\nFinal-Recipient: rfc822; c@example.net\r\n"
        "Action: delayed\r\nStatus: 4.4.7\r\n--b--\r\n"
    )

    def reason(subject: str, kind: str) -> str | None:
        return parse_message(raw.format(subject=subject, kind=kind).encode()).automatic

    assert reason("Hello", "delivery-status") == (
        "delivery delay notice (message/delivery-status part)"
    )
    assert reason("Hello", "disposition-notification") == (
        "read receipt (message/disposition-notification part)"
    )
    assert reason("Fwd: Hello", "delivery-status") is None
    assert (
        reason("Fw: Hello", "feedback-report") == "feedback report (message/feedback-report part)"
    )


def test_only_the_start_of_a_text_is_read() -> None:
    filler = "Hi Alan, here are my notes.\n" + "x" * (SCAN_BYTES + 100) + "\n"
    raw = text_mail(filler + DSN_FIELDS, extra="Sender: founders-bounces@lists.example.org\r\n")
    assert parse_message(raw).automatic is None
    huge = text_mail("Hi Alan,\n\n" + ("words and more words\n" * 400_000))  # 8 MB of text
    msg = BytesParser(policy=policy.compat32).parsebytes(huge)
    started = time.perf_counter()
    assert automatic_reason(msg) is None
    assert time.perf_counter() - started < 0.1  # ~1 ms here: 8 KB are read, not 8 MB


# --- real robots' mail, re-addressed as if the user had sent it ---------------------------------

IDENTITY = Identity(user_addresses=("ada@example.com",), service_address="mentor@example.com")
ROBOTS = FIXTURES / "automatic"
#: Headers that only declare a message automatic; without them it must be known by what it is.
DECLARED = re.compile(
    r"^(?:auto-submitted|precedence|list-[\w-]+|mailing-list|x-auto[\w-]*|return-path|sender"
    r"|errors-to|x-failed-recipients|x-ms-exchange-message-is-ndr|x-amz-sns-[\w-]+"
    r"|x-list-administrivia)$",
    re.I,
)
#: How a reason starts for each kind of robot ("declared": known by its headers only).
KINDS = {
    "report": ("delivery report", "delivery or read report"),
    "delay": ("delivery delay notice",),
    "feedback": ("feedback report", "feedback-loop complaint"),
    "receipt": ("read receipt",),
    "list": ("mailing-list robot notice",),
    "ses": ("Amazon SES",),
    "bounce": ("bounce (",),
    "subject": ("subject starts with",),
    "declared": (),
}
#: (fixture in fixtures/automatic/, or "corpus:" and a file of ../shared/corpora; its kind).
ROBOT_CASES = [
    # Delivery and feedback reports however they are labelled.
    ("sisimai-lhost-postfix-01", "report"),
    ("sisimai-lhost-sendmail-01", "report"),
    ("sisimai-lhost-exchange2007-01", "report"),
    ("sisimai-lhost-office365-01", "report"),
    ("sisimai-lhost-amazonses-01", "report"),
    ("sisimai-lhost-mcafee-01", "report"),
    ("sisimai-lhost-mcafee-04", "report"),
    ("relabelled-global-delivery-status", "report"),
    ("flanker-delayed", "report"),
    ("flanker-delayed-broken", "report"),
    ("mimekit-disposition-notification", "receipt"),
    ("relabelled-mdn-in-mixed", "receipt"),
    ("mimekit-feedback-report", "feedback"),
    ("relabelled-arf-in-mixed", "feedback"),
    ("relabelled-arf-as-text", "feedback"),
    ("sisimai-arf-01", "feedback"),
    ("sisimai-arf-02", "feedback"),
    ("sisimai-arf-15", "feedback"),
    ("sisimai-arf-18", "feedback"),
    ("sisimai-arf-22", "feedback"),
    ("sisimai-arf-23", "feedback"),
    ("sisimai-arf-24", "feedback"),
    # Provider notifications: Amazon SES through SNS.
    ("sisimai-lhost-amazonses-09", "ses"),
    ("sisimai-lhost-amazonses-10", "ses"),
    ("sisimai-lhost-amazonses-11", "ses"),
    ("sisimai-lhost-amazonses-12", "ses"),
    ("sisimai-lhost-amazonses-13", "ses"),
    # "Still being retried": Postfix, Exim, Sendmail, Gmail, Outlook.com, Exchange, Zoho, OpenSMTPD.
    ("sisimai-rfc3464-09", "delay"),
    ("sisimai-rfc3464-34", "delay"),
    ("sisimai-lhost-exim-38", "delay"),
    ("sisimai-lhost-sendmail-29", "delay"),
    ("sisimai-lhost-gmail-06", "delay"),
    ("sisimai-rfc3464-55", "delay"),
    ("sisimai-lhost-outlook-06", "delay"),
    ("own-exchange-delay", "delay"),
    ("sisimai-lhost-zoho-04", "delay"),
    ("sisimai-lhost-opensmtpd-04", "delay"),
    # List robots: Mailman, Majordomo, LISTSERV, ezmlm, Google Groups, Sympa, fml.
    ("own-mailman-held", "list"),
    ("own-mailman-nonmember-rejected", "list"),
    ("own-mailman-command-results", "list"),
    ("own-majordomo-results", "list"),
    ("own-listserv-rejected-posting", "list"),
    ("own-ezmlm-bounce-warning", "list"),
    ("own-ezmlm-confirm-subscribe", "list"),
    ("sisimai-lhost-googlegroups-02", "list"),
    ("own-sympa-authorization-denied", "list"),
    ("own-sympa-command-report", "list"),
    ("sisimai-lhost-fml-02", "list"),
    ("sisimai-lhost-fml-03", "list"),
    # Bounces in the wording of their MTA, often with no report part.
    ("sisimai-lhost-exim-01", "bounce"),
    ("sisimai-lhost-exim-52", "bounce"),
    ("sisimai-lhost-qmail-01", "bounce"),
    ("sisimai-lhost-gmail-01", "bounce"),
    ("sisimai-lhost-yahoo-01", "bounce"),
    ("sisimai-lhost-x2-05", "bounce"),
    ("sisimai-lhost-x2-06", "bounce"),
    ("sisimai-lhost-trendmicro-02", "bounce"),
    ("sisimai-lhost-trendmicro-03", "bounce"),
    ("sisimai-lhost-apachejames-01", "bounce"),
    ("sisimai-lhost-verizon-02", "bounce"),
    ("sisimai-lhost-ezweb-01", "bounce"),
    ("sisimai-lhost-ezweb-08", "bounce"),
    ("sisimai-lhost-kddi-01", "bounce"),
    ("sisimai-lhost-mailru-01", "bounce"),
    ("sisimai-lhost-mimecast-01", "bounce"),
    ("sisimai-lhost-postfix-75", "bounce"),
    ("sisimai-lhost-x1-03", "bounce"),
    ("sisimai-lhost-x6-01", "bounce"),
    ("sisimai-rfc3464-37", "bounce"),
    # Known by their subject alone once the headers are gone.
    ("sisimai-lhost-ezweb-03", "subject"),
    ("sisimai-lhost-ezweb-05", "subject"),
    ("sisimai-lhost-trendmicro-01", "subject"),
    ("sisimai-rfc3834-02", "subject"),
    ("sisimai-rfc3834-03", "subject"),
    ("sisimai-rfc3834-01", "declared"),
    # DSNs in the shared corpora (read in place, skipped without ../shared).
    ("corpus:cpython-test_email/msg_05.txt", "report"),
    ("corpus:cpython-test_email/msg_16.txt", "report"),
    ("corpus:cpython-test_email/msg_25.txt", "report"),
    ("corpus:cpython-test_email/msg_43.txt", "report"),
    ("corpus:mikel-mail/multipart_report_emails/multi_address_bounce1.eml", "report"),
    ("corpus:mikel-mail/multipart_report_emails/multi_address_bounce2.eml", "report"),
    ("corpus:mikel-mail/multipart_report_emails/multipart_report_multiple_status.eml", "report"),
    ("corpus:mikel-mail/multipart_report_emails/report_422.eml", "delay"),
    ("corpus:mikel-mail/multipart_report_emails/report_530.eml", "report"),
    ("corpus:mikel-mail/mime_emails/raw_email_with_mimepart_without_content_type.eml", "delay"),
]
#: People forwarding, quoting or pasting robots' mail, in fixtures/automatic/human/.
HUMAN_CASES = sorted(path.stem for path in (ROBOTS / "human").glob("*.eml"))


def robot_mail(case: str) -> bytes:
    if case.startswith("corpus:"):
        folder, _, name = case.removeprefix("corpus:").partition("/")
        return (corpus(folder) / name).read_bytes()
    return (ROBOTS / f"{case}.eml").read_bytes()


def as_from_user(raw: bytes) -> bytes:
    """The same message with its From replaced by the user's (an mbox "From " line dropped)."""
    text = raw.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    if text.startswith(b"From "):
        text = text.split(b"\n", 1)[1]
    head, separator, body = text.partition(b"\n\n")
    kept: list[bytes] = []
    in_from = False
    for line in head.split(b"\n"):
        if in_from and line[:1] in (b" ", b"\t"):
            continue
        in_from = line.lower().startswith(b"from:")
        if not in_from:
            kept.append(line)
    return b"\n".join([b"From: " + ADA.encode(), *kept]) + separator + body


def undeclared(raw: bytes) -> Message:
    """The message parsed, without the headers that only declare it automatic."""
    msg = BytesParser(policy=policy.compat32).parsebytes(as_from_user(raw))
    for name in {key for key in msg if DECLARED.match(key)}:
        del msg[name]
    return msg


@pytest.mark.parametrize(("case", "kind"), ROBOT_CASES, ids=[case for case, _ in ROBOT_CASES])
def test_robots_are_recognised_even_from_the_user(case: str, kind: str) -> None:
    parsed = parse_message(as_from_user(robot_mail(case)))
    assert parsed.sender is not None and parsed.sender.address == "ada@example.com"
    assert parsed.automatic, case
    outcome = classify(parsed, IDENTITY)
    assert isinstance(outcome, Ignored)
    assert outcome.reason == f"automatic mail ({parsed.automatic})"


CONTENT_CASES = [(case, kind) for case, kind in ROBOT_CASES if KINDS[kind]]


@pytest.mark.parametrize(("case", "kind"), CONTENT_CASES, ids=[case for case, _ in CONTENT_CASES])
def test_robots_are_recognised_by_what_they_are(case: str, kind: str) -> None:
    reason = automatic_reason(undeclared(robot_mail(case)))
    assert reason is not None and reason.startswith(KINDS[kind]), reason


def test_the_table_covers_every_fixture() -> None:
    listed = {case for case, _ in ROBOT_CASES}
    assert {path.stem for path in ROBOTS.glob("*.eml")} <= listed
    assert len(HUMAN_CASES) >= 10


@pytest.mark.parametrize("case", HUMAN_CASES)
def test_people_forwarding_quoting_or_pasting_robots_mail_are_people(case: str) -> None:
    raw = as_from_user((ROBOTS / "human" / f"{case}.eml").read_bytes())
    assert parse_message(raw).automatic is None
    assert automatic_reason(undeclared(raw)) is None


# --- people's mail: never automatic -------------------------------------------------------------

HUMAN_CORPORA = (
    "crisp-email-forward-parser",
    "crisp-email-reply-parser",
    "zapier-email-reply-parser",
)


def _subject_for(path: Path) -> str:
    """The crisp forward corpus keeps each subject beside its body; the others have none."""
    family = path.stem.split("_body")[0]
    subject = path.with_name(f"{family}_subject.txt")
    return subject.read_text(encoding="utf-8").strip() if subject.exists() else "Re: advice"


def own_human_mail() -> list[tuple[str, bytes]]:
    """The parsing fixtures people wrote and every client's forward of a mentor's answer."""
    mails = [
        (path.name, path.read_bytes())
        for path in sorted(FIXTURES.glob("*.eml"))
        if path.name not in ("auto_reply.eml", "dsn.eml")
    ]
    return mails + [
        (f"forwards.{name}", build("Alan Kay", "alan@example.com", "Pricing advice").as_bytes())
        for name, build in CLIENTS.items()
    ]


def corpus_human_mail() -> list[tuple[str, bytes]]:
    """Forwarded and replied mail from the shared corpora, as if the user had written it."""
    mails: list[tuple[str, bytes]] = []
    for folder in HUMAN_CORPORA:
        for path in sorted(corpus(folder).glob("*.txt")):
            if not path.stem.endswith("_subject"):
                body = path.read_text(encoding="utf-8")
                mails.append((f"{folder}/{path.name}", wrap(body, _subject_for(path), ADA)))
    return mails


def human_mail() -> list[tuple[str, bytes]]:
    return own_human_mail() + corpus_human_mail()


@pytest.mark.parametrize("source", [own_human_mail, corpus_human_mail])
def test_people_are_never_taken_for_robots(source: Callable[[], list[tuple[str, bytes]]]) -> None:
    mails = source()
    assert len(mails) > 20
    flagged = {name: parse_message(raw).automatic for name, raw in mails}
    assert {name: reason for name, reason in flagged.items() if reason} == {}
