"""Intake: raw message bytes → classification → loop changes, as pure (input, expected) pairs."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from mailmentor import intake, stages
from mailmentor.errors import DurationError
from mailmentor.intake import (
    CommandMail,
    ForwardMail,
    Identity,
    Ignored,
    OutgoingMail,
    classify,
)
from mailmentor.model import EventType, Loop, Person, Stage
from mailmentor.parsing.commands import Command, CommandName, parse_command
from mailmentor.parsing.message import Address, ParsedMessage, parse_message
from mailmentor.tokens import loop_token, reminder_message_id, reply_address
from tests.corpora import corpus

USER = "ada@example.com"
SERVICE = "mentor@example.com"
SECRET = b"intake-test-secret"
IDENTITY = Identity(user_addresses=(USER, "ada@work.example"), service_address=SERVICE)
PLUS_IDENTITY = Identity(user_addresses=(USER,), service_address="ada+mentor@example.com")
ALAN = Address("alan@example.org", "Alan Kay")
GRACE = Address("grace@example.net", "Grace Hopper")
T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)  # a Monday
D = timedelta(days=1)
LOOP_ID = "k3v9x2abqe"


def mail(
    body: str = "Alan, what would you change first on our pricing page?\n",
    *,
    sender: str = f"Ada <{USER}>",
    to: str = "Alan Kay <alan@example.org>",
    subject: str = "Advice on pricing page?",
    message_id: str = "<ask-1@client.example>",
    headers: dict[str, str] | None = None,
) -> bytes:
    """A plain-text message as a mail client writes it; empty header values are left out."""
    lines = [f"From: {sender}", f"To: {to}", f"Subject: {subject}"]
    lines += ["Date: Mon, 05 Jan 2026 09:00:00 +0000", f"Message-ID: {message_id}"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    lines += ["MIME-Version: 1.0", "Content-Type: text/plain; charset=utf-8", "", body]
    return "\r\n".join(line for line in lines if not line.endswith(": ")).encode()


def gmail_forward(subject: str = "Re: Advice on pricing page?") -> bytes:
    return mail(
        "see below\n\n"
        "---------- Forwarded message ---------\n"
        "From: Alan Kay <alan@example.org>\n"
        "Date: Mon, Jan 5, 2026 at 9:14 AM\n"
        f"Subject: {subject}\n"
        f"To: Ada <{USER}>\n\n"
        "Cut it to three plans and show the annual price first.\n\nAlan\n",
        to=SERVICE,
        subject=f"Fwd: {subject}",
        message_id="<fwd-1@client.example>",
    )


def attached_forward(in_reply_to: str = "<ask-1@client.example>") -> bytes:
    answer = EmailMessage()
    answer["From"] = "Alan Kay <alan@example.org>"
    answer["To"] = f"Ada <{USER}>"
    answer["Subject"] = "Re: Advice on pricing page?"
    answer["Message-ID"] = "<answer-1@mentor.example>"
    answer["In-Reply-To"] = in_reply_to
    answer["References"] = in_reply_to
    answer.set_content("Raise prices by 20% and watch churn for a month.\n\nAlan\n")
    outer = EmailMessage()
    outer["From"] = f"Ada <{USER}>"
    outer["To"] = SERVICE
    outer["Subject"] = "Fwd: Re: Advice on pricing page?"
    outer["Message-ID"] = "<fwd-2@client.example>"
    outer.set_content("His answer, attached.\n")
    outer.add_attachment(answer)
    return bytes(outer)


def parsed(raw: bytes) -> ParsedMessage:
    return parse_message(raw)


def make_loop(**changes: Any) -> Loop:
    base: dict[str, Any] = {
        "id": LOOP_ID,
        "mentor": Person(address=ALAN.address, name=ALAN.name),
        "subject": "Advice on pricing page?",
        "created_at": T0,
        "stage_entered_at": T0,
        "message_ids": ["ask-1@client.example"],
    }
    return Loop(**(base | changes))


# --- classify -------------------------------------------------------------------------------------

REPLY_TO = reply_address(SERVICE, LOOP_ID, SECRET)
TOKEN = loop_token(SECRET, LOOP_ID)
REMINDER_ID = reminder_message_id(LOOP_ID, "remind:advised:1:0", SECRET, "example.com")

CLASSIFY_CASES: list[tuple[str, bytes, Identity, intake.Classification]] = [
    (
        "BCC'd ask: the To recipient is the mentor",
        mail(),
        IDENTITY,
        OutgoingMail((ALAN,)),
    ),
    (
        "BCC'd ask: user, service and service+tag recipients are not mentors",
        mail(
            to=f"Alan Kay <alan@example.org>, Ada <{USER}>, ada@work.example, {SERVICE}, "
            "Mentor <MENTOR+advice@Example.com>, mentor+3d@example.com, "
            "Grace Hopper <grace@example.net>, alan@example.org"
        ),
        IDENTITY,
        OutgoingMail((ALAN, GRACE)),
    ),
    (
        "the user's address is matched case-insensitively",
        mail(sender="ADA <Ada@Example.COM>"),
        IDENTITY,
        OutgoingMail((ALAN,)),
    ),
    (
        "a second user address counts as the user",
        mail(sender="Ada <ada@work.example>"),
        IDENTITY,
        OutgoingMail((ALAN,)),
    ),
    (
        "a colleague whose address starts like the service's is still a mentor",
        mail(to="Jane <mentor-jane@example.com>"),
        IDENTITY,
        OutgoingMail((Address("mentor-jane@example.com", "Jane"),)),
    ),
    (
        "a stranger is ignored and named",
        mail(sender="Eve <eve@evil.example>"),
        IDENTITY,
        Ignored("not from a user address (eve@evil.example)"),
    ),
    (
        "an automatic reply is ignored even from the user",
        mail("done\n", to=REPLY_TO, headers={"Auto-Submitted": "auto-replied"}),
        IDENTITY,
        Ignored("automatic mail (Auto-Submitted: auto-replied)"),
    ),
    (
        "mail from the service address itself is ignored",
        mail(sender=f"mailmentor <{SERVICE}>", to=USER),
        Identity(user_addresses=(USER, SERVICE), service_address=SERVICE),
        Ignored(f"from the service address itself ({SERVICE})"),
    ),
    (
        "mail from a tagged service address is ignored",
        mail(sender=REPLY_TO, to=USER),
        IDENTITY,
        Ignored(f"from the service address itself ({REPLY_TO})"),
    ),
    (
        "no From address at all",
        mail(sender=""),
        IDENTITY,
        Ignored("no usable From address"),
    ),
    (
        "a reply to a reminder: the token is in the Reply-To address",
        mail("done\n", to=f"mailmentor <{REPLY_TO}>", subject="Re: Act on Alan's advice"),
        IDENTITY,
        CommandMail(LOOP_ID, TOKEN),
    ),
    (
        "a reply to a reminder: the token is in In-Reply-To",
        mail("done\n", to=SERVICE, headers={"In-Reply-To": f"<{REMINDER_ID}>"}),
        IDENTITY,
        CommandMail(LOOP_ID, TOKEN),
    ),
    (
        "a reply to a reminder: the token is in References only",
        mail("done\n", to=SERVICE, headers={"References": f"<ask-1@x> <{REMINDER_ID}>"}),
        IDENTITY,
        CommandMail(LOOP_ID, TOKEN),
    ),
    (
        "a reply to a reminder: the token is in Delivered-To",
        mail("done\n", to="undisclosed-recipients:;", headers={"Delivered-To": REPLY_TO}),
        IDENTITY,
        CommandMail(LOOP_ID, TOKEN),
    ),
    (
        "a plus-address service: its reply address carries the token",
        mail("stop\n", to=reply_address("ada+mentor@example.com", LOOP_ID, SECRET)),
        PLUS_IDENTITY,
        CommandMail(LOOP_ID, TOKEN),
    ),
    (
        "mail only to the service with no token is ignored",
        mail("just checking\n", to=SERVICE),
        IDENTITY,
        Ignored("addressed only to the service, with no loop token and nothing forwarded"),
    ),
    (
        "a token for another service's domain is not ours",
        mail("done\n", to=reply_address("mentor@elsewhere.example", LOOP_ID, SECRET)),
        IDENTITY,
        OutgoingMail((Address(reply_address("mentor@elsewhere.example", LOOP_ID, SECRET)),)),
    ),
]


@pytest.mark.parametrize(
    ("raw", "identity", "expected"),
    [case[1:] for case in CLASSIFY_CASES],
    ids=[case[0] for case in CLASSIFY_CASES],
)
def test_classify(raw: bytes, identity: Identity, expected: intake.Classification) -> None:
    assert classify(parsed(raw), identity) == expected


@pytest.mark.parametrize(
    ("raw", "subject", "text"),
    [
        (gmail_forward(), "Re: Advice on pricing page?", "Cut it to three plans"),
        (attached_forward(), "Re: Advice on pricing page?", "Raise prices by 20%"),
    ],
    ids=["gmail inline", "attached message/rfc822"],
)
def test_classify_forwards(raw: bytes, subject: str, text: str) -> None:
    result = classify(parsed(raw), IDENTITY)
    assert isinstance(result, ForwardMail)
    [forward] = result.forwards
    assert forward.sender == ALAN
    assert forward.subject == subject
    assert forward.text.startswith(text)


def test_automatic_subject_without_header_is_ignored() -> None:
    raw = mail("I am away.\n", to=REPLY_TO, subject="Automatic reply: Act on Alan's advice")
    result = classify(parsed(raw), IDENTITY)
    assert isinstance(result, Ignored) and result.reason.startswith("automatic mail")


@pytest.mark.parametrize(
    "family", ["gmail_en", "apple_mail_en", "thunderbird_en", "outlook_2019_en"]
)
def test_real_client_forwards_start_advised_loops(family: str) -> None:
    folder = corpus("crisp-email-forward-parser")
    body = (folder / f"{family}_body.txt").read_text(encoding="utf-8")
    msg = parsed(mail(body, to=SERVICE, subject="Fwd: Integer consequat non purus"))
    result = classify(msg, IDENTITY)
    assert isinstance(result, ForwardMail), family
    loop = intake.new_advised_loop(msg, result.forwards[0], T0)
    assert (loop.mentor.address, loop.mentor.name) == ("john.doe@acme.com", "John Doe")
    assert (loop.stage, loop.subject) == (Stage.ADVISED, "Integer consequat non purus")
    assert loop.advice_excerpt.startswith("Aenean quis diam urna.")


# --- building and changing loops ------------------------------------------------------------------


def test_new_asked_loop() -> None:
    msg = parsed(mail(subject="Re: Fwd: Advice on pricing page?"))
    loop = intake.new_asked_loop(msg, ALAN, T0)
    assert loop.id == intake.loop_id_for("ask-1@client.example", ALAN.address)
    assert (loop.stage, loop.created_at, loop.stage_entered_at) == (Stage.ASKED, T0, T0)
    assert loop.mentor == Person(address="alan@example.org", name="Alan Kay")
    assert loop.subject == "Advice on pricing page?"
    assert loop.message_ids == ["ask-1@client.example"]
    assert loop.ask_excerpt.startswith("Alan, what would you change first")
    assert [(e.type, e.stage, e.source, e.at) for e in loop.events] == [
        (EventType.CREATED, Stage.ASKED, "message <ask-1@client.example>", T0)
    ]
    assert recorded(loop, "ask-1@client.example")


def test_new_asked_loop_in_an_existing_thread_is_keyed_by_its_root() -> None:
    msg = parsed(
        mail(
            message_id="<ask-2@client.example>",
            headers={"References": "<root@x.example> <mid@x.example>"},
        )
    )
    loop = intake.new_asked_loop(msg, GRACE, T0)
    assert loop.id == intake.loop_id_for("root@x.example", GRACE.address)
    assert loop.message_ids == ["root@x.example", "mid@x.example", "ask-2@client.example"]


def test_empty_subject_gets_a_placeholder() -> None:
    loop = intake.new_asked_loop(parsed(mail(subject="Re:")), ALAN, T0)
    assert loop.subject == "(no subject)"


def test_new_advised_loop_from_an_attached_answer_matches_the_ask() -> None:
    msg = parsed(attached_forward())
    loop = intake.new_advised_loop(msg, msg.forwarded[0], T0)
    asked = intake.new_asked_loop(parsed(mail()), ALAN, T0)
    assert loop.id == asked.id  # so a later ask/answer pair can never make two loops
    assert (loop.stage, loop.mentor.address) == (Stage.ADVISED, ALAN.address)
    assert loop.message_ids == ["ask-1@client.example", "answer-1@mentor.example"]
    assert loop.advice_excerpt.startswith("Raise prices by 20%")
    assert [(e.type, e.stage, e.detail) for e in loop.events] == [
        (EventType.CREATED, Stage.ADVISED, "advice forwarded")
    ]


def test_new_advised_loop_from_an_inline_forward_without_ids_uses_the_forward() -> None:
    msg = parsed(gmail_forward())
    loop = intake.new_advised_loop(msg, msg.forwarded[0], T0)
    assert loop.message_ids == ["fwd-1@client.example"]
    assert loop.id == intake.loop_id_for("fwd-1@client.example", ALAN.address)
    assert loop.subject == "Advice on pricing page?"


FOLLOW_UP = mail(
    "Here is what came of it.\n",
    subject="Re: Advice on pricing page?",
    message_id="<follow-1@client.example>",
    headers={"In-Reply-To": "<ask-1@client.example>", "References": "<ask-1@client.example>"},
)


@pytest.mark.parametrize(
    ("loop", "stage", "event"),
    [
        (make_loop(stage=Stage.ACTED), Stage.REPORTED, (EventType.MESSAGE, "wrote to mentor")),
        (
            make_loop(stage=Stage.SNOOZED, snoozed_from=Stage.ACTED),
            Stage.REPORTED,
            (EventType.MESSAGE, "wrote to mentor"),
        ),
        (make_loop(stage=Stage.ASKED), Stage.ASKED, (EventType.MESSAGE, "followed up")),
        (make_loop(stage=Stage.ADVISED), Stage.ADVISED, (EventType.MESSAGE, "joined the thread")),
        (
            make_loop(stage=Stage.REPORTED),
            Stage.REPORTED,
            (EventType.MESSAGE, "joined the thread"),
        ),
        (make_loop(stage=Stage.CLOSED), Stage.CLOSED, (EventType.MESSAGE, "joined the thread")),
        (make_loop(stage=Stage.DROPPED), Stage.DROPPED, (EventType.MESSAGE, "joined the thread")),
    ],
    ids=["acted", "snoozed in acted", "asked", "advised", "reported", "closed", "dropped"],
)
def test_join_message(loop: Loop, stage: Stage, event: tuple[EventType, str]) -> None:
    joined = intake.join_message(loop, parsed(FOLLOW_UP), T0 + D)
    assert joined.stage is stage
    assert joined.message_ids == ["ask-1@client.example", "follow-1@client.example"]
    last = joined.events[-1]
    assert (last.type, last.detail) == event
    assert (last.at, last.source, last.stage) == (
        T0 + D,
        "message <follow-1@client.example>",
        stage,
    )
    assert recorded(joined, "follow-1@client.example")
    assert not recorded(loop, "follow-1@client.example")


def test_following_up_an_unanswered_ask_restarts_its_nudges() -> None:
    nudged = make_loop(stage=Stage.ASKED).model_copy(update={"nudges": 1, "last_reminder_at": T0})
    joined = intake.join_message(nudged, parsed(FOLLOW_UP), T0 + D)
    assert (joined.stage_entered_at, joined.nudges, joined.last_reminder_at) == (T0 + D, 0, None)


@pytest.mark.parametrize(
    ("loop", "stage", "detail"),
    [
        (make_loop(stage=Stage.ASKED), Stage.ADVISED, "advice forwarded"),
        (
            make_loop(stage=Stage.SNOOZED, snoozed_from=Stage.ASKED),
            Stage.ADVISED,
            "advice forwarded",
        ),
        (make_loop(stage=Stage.ADVISED), Stage.ADVISED, "more advice forwarded"),
        (make_loop(stage=Stage.ACTED), Stage.ACTED, "more advice forwarded"),
        (make_loop(stage=Stage.REPORTED), Stage.REPORTED, "more advice forwarded"),
        (make_loop(stage=Stage.DROPPED), Stage.DROPPED, "more advice forwarded"),
    ],
    ids=["asked", "snoozed in asked", "advised", "acted", "reported", "dropped"],
)
def test_add_advice(loop: Loop, stage: Stage, detail: str) -> None:
    msg = parsed(attached_forward())
    after = intake.add_advice(loop, msg, msg.forwarded[0], T0 + D)
    assert after.stage is stage
    assert after.advice_excerpt.startswith("Raise prices by 20%")
    assert after.message_ids == ["ask-1@client.example", "answer-1@mentor.example"]
    last = after.events[-1]
    assert (last.type, last.detail, last.stage) == (EventType.ADVICE, detail, stage)
    assert last.source == "message <fwd-2@client.example>"


def test_add_advice_without_text_keeps_the_earlier_excerpt() -> None:
    msg = parsed(attached_forward())
    empty = replace(msg.forwarded[0], text="")
    after = intake.add_advice(make_loop(advice_excerpt="Charge more."), msg, empty, T0)
    assert after.advice_excerpt == "Charge more."


# --- reply commands -------------------------------------------------------------------------------

BERLIN = ZoneInfo("Europe/Berlin")
MID = "reply-1@client.example"


def command(line: str) -> Command:
    found = parse_command(line)
    assert found is not None
    return found


@pytest.mark.parametrize(
    ("start", "line", "stage", "detail"),
    [
        (Stage.ASKED, "advised", Stage.ADVISED, "command advised"),
        (Stage.ADVISED, "acted", Stage.ACTED, "command acted"),
        (Stage.ADVISED, "Done!", Stage.ACTED, "command acted"),
        (Stage.ASKED, "done", Stage.ACTED, "command acted"),
        (Stage.ACTED, "reported", Stage.REPORTED, "command reported"),
        (Stage.ADVISED, "stop", Stage.DROPPED, "stopped by the user"),
        (Stage.REPORTED, "gave back sent him our Q3 numbers", Stage.CLOSED, "cycle complete"),
        (Stage.ACTED, "note called him, he liked it", Stage.ACTED, "called him, he liked it"),
    ],
)
def test_apply_command(start: Stage, line: str, stage: Stage, detail: str) -> None:
    after = intake.apply_command(make_loop(stage=start), command(line), T0 + D, BERLIN, MID)
    assert after.stage is stage
    last = after.events[-1]
    assert (last.detail, last.stage, last.at) == (detail, stage, T0 + D)
    assert last.source == f"message <{MID}>"
    assert recorded(after, MID)


def test_gave_back_keeps_the_note_in_the_history() -> None:
    after = intake.apply_command(
        make_loop(stage=Stage.REPORTED), command("Gave back: sent a book"), T0, BERLIN, MID
    )
    assert [(e.stage, e.detail) for e in after.events] == [
        (Stage.GAVE_BACK, "sent a book"),
        (Stage.CLOSED, "cycle complete"),
    ]


def test_note_records_without_moving() -> None:
    after = intake.apply_command(
        make_loop(stage=Stage.ADVISED), command("note hi"), T0, BERLIN, MID
    )
    assert (after.stage, after.events[-1].type) == (Stage.ADVISED, EventType.NOTE)


@pytest.mark.parametrize(
    ("argument", "now", "until"),
    [
        ("3d", T0, T0 + 3 * D),
        ("36h", T0, T0 + timedelta(hours=36)),
        # Monday 10:00 Berlin → Friday 09:00 Berlin, which is 08:00 UTC in winter
        ("until friday", T0, datetime(2026, 1, 9, 8, 0, tzinfo=UTC)),
        # on a Friday, "friday" means next week's
        (
            "until friday",
            datetime(2026, 1, 9, 12, 0, tzinfo=UTC),
            datetime(2026, 1, 16, 8, 0, tzinfo=UTC),
        ),
        ("tomorrow", T0, datetime(2026, 1, 6, 8, 0, tzinfo=UTC)),
        # summer time: 09:00 Berlin is 07:00 UTC
        ("2026-07-01", T0, datetime(2026, 7, 1, 7, 0, tzinfo=UTC)),
    ],
)
def test_snooze_command(argument: str, now: datetime, until: datetime) -> None:
    loop = make_loop(stage=Stage.ADVISED)
    after = intake.apply_command(loop, command(f"snooze {argument}"), now, BERLIN, MID)
    assert (after.stage, after.snoozed_from, after.snoozed_until) == (
        Stage.SNOOZED,
        Stage.ADVISED,
        until,
    )
    assert after.events[-1].detail == f"until {until.isoformat()}"


@pytest.mark.parametrize("argument", ["until 2020-01-01", "0d", "", "whenever", "3x"])
def test_snooze_needs_a_time_in_the_future(argument: str) -> None:
    with pytest.raises(DurationError):
        intake.apply_command(
            make_loop(stage=Stage.ADVISED),
            Command(CommandName.SNOOZE, argument),
            T0,
            BERLIN,
            MID,
        )


def test_reopen_command_returns_to_the_stage_before_stop() -> None:
    msg = parsed(attached_forward())
    loop = intake.add_advice(
        intake.new_asked_loop(parsed(mail()), ALAN, T0), msg, msg.forwarded[0], T0
    )
    stopped = intake.apply_command(loop, command("STOP"), T0, BERLIN, "m1")
    reopened = intake.apply_command(stopped, command("reopen"), T0 + D, BERLIN, "m2")
    assert (stopped.stage, reopened.stage) == (Stage.DROPPED, Stage.ADVISED)


@pytest.mark.parametrize(
    ("start", "cmd", "match"),
    [
        (Stage.ACTED, Command(CommandName.ACTED), "already acted"),
        (Stage.REPORTED, Command(CommandName.ADVISED), "already reported"),
        (Stage.CLOSED, Command(CommandName.ACTED), "reopen"),
        (Stage.DROPPED, Command(CommandName.STOP), "already dropped"),
        (Stage.CLOSED, Command(CommandName.STOP), "already closed"),
        (Stage.CLOSED, Command(CommandName.GAVE_BACK), "closed"),
        (Stage.DROPPED, Command(CommandName.SNOOZE, "3d"), "nothing to snooze"),
        (Stage.ADVISED, Command(CommandName.REOPEN), "not dropped"),
        (Stage.ADVISED, Command(CommandName.HELP), "changes no loop"),
        (Stage.ADVISED, Command(CommandName.UNKNOWN, "hello"), "changes no loop"),
    ],
)
def test_commands_that_cannot_apply(start: Stage, cmd: Command, match: str) -> None:
    with pytest.raises(stages.TransitionError, match=match):
        intake.apply_command(make_loop(stage=start), cmd, T0, BERLIN, MID)


# --- identities, ids and subjects -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("identity", "address", "expected"),
    [
        (IDENTITY, "mentor@example.com", True),
        (IDENTITY, "MENTOR@EXAMPLE.COM", True),
        (IDENTITY, "mentor+advice@example.com", True),
        (IDENTITY, REPLY_TO, True),
        (IDENTITY, "mentor@example.org", False),
        (IDENTITY, "mentors@example.com", False),
        (IDENTITY, "mentor-jane@example.com", False),
        (IDENTITY, "ada@example.com", False),
        (IDENTITY, "", False),
        (PLUS_IDENTITY, "ada+mentor@example.com", True),
        (PLUS_IDENTITY, reply_address("ada+mentor@example.com", LOOP_ID, SECRET), True),
        (PLUS_IDENTITY, "ada+mentor+3d@example.com", True),
        (PLUS_IDENTITY, "ada@example.com", False),
        (PLUS_IDENTITY, "ada+mentorship@example.com", False),
    ],
)
def test_is_service(identity: Identity, address: str, expected: bool) -> None:
    assert identity.is_service(address) is expected


def test_loop_id_for_is_deterministic_and_distinct() -> None:
    first = intake.loop_id_for("ask-1@client.example", "alan@example.org")
    assert first == intake.loop_id_for("ask-1@client.example", "Alan@Example.ORG")
    assert len(first) == 10 and set(first) <= set("abcdefghijklmnopqrstuvwxyz234567")
    others = {
        intake.loop_id_for("ask-2@client.example", "alan@example.org"),
        intake.loop_id_for("ask-1@client.example", "grace@example.net"),
        intake.loop_id_for("ask-1@client.examplealan", "@example.org"),
    }
    assert first not in others and len(others) == 3


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        ("Advice on pricing", "Advice on pricing"),
        ("Re: Advice on pricing", "Advice on pricing"),
        ("RE: Re: re:Advice on pricing", "Advice on pricing"),
        ("Fwd: Advice", "Advice"),
        ("FW: Advice", "Advice"),
        ("Re: Fwd: Advice", "Advice"),
        ("AW: Advice", "Advice"),
        ("WG: AW: Advice", "Advice"),
        ("SV: Advice", "Advice"),
        ("RE[2]: Advice", "Advice"),
        ("Re : Advice", "Advice"),
        ("  Re:   Advice   on\tpricing ", "Advice on pricing"),
        ("Re: Re: Re: Fwd:", ""),
        ("Research: results", "Research: results"),
        ("Trip: notes", "Trip: notes"),
        ("Advice re: pricing", "Advice re: pricing"),
        ("", ""),
    ],
)
def test_normalize_subject(subject: str, expected: str) -> None:
    assert intake.normalize_subject(subject) == expected


def recorded(loop: Loop, message_id: str) -> bool:
    """The message is in the loop's history (the store marks it applied with the change)."""
    return any(e.source == f"message <{message_id}>" for e in loop.events)
