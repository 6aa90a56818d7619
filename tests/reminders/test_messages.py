"""Reminder rendering: subjects per stage, threading headers, tokens, escaping, hostile input."""

from __future__ import annotations

import email
import email.policy
from dataclasses import replace
from datetime import timedelta
from email.message import EmailMessage
from email.utils import parsedate_to_datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailmentor.model import ActionKind, Kind, Person, Stage
from mailmentor.reminders import (
    HELP_TEXT,
    MAIL_POLICY,
    build_give_up_notice,
    build_reminder,
    build_reply,
    build_still_relevant,
    clean_subject,
    days_phrase,
    header_text,
    human_span,
    thread_references,
)
from mailmentor.tokens import parse_reminder_message_id, parse_reply_address, verify_token
from tests.corpora import corpus
from tests.reminders._support import (
    SECRET,
    SERVICE,
    T0,
    make_action,
    make_ctx,
    make_loop,
    reparse,
    text_of,
)

LOOP_SUBJECT = "[mailmentor] Alan: Pricing page"


@pytest.mark.parametrize(
    ("stage", "first_line"),
    [
        (Stage.ASKED, "No answer yet from Alan"),
        (Stage.ADVISED, "Act on Alan's advice"),
        (Stage.ACTED, "Tell Alan how it went"),
        (Stage.REPORTED, "Give something back to Alan"),
        (Stage.GAVE_BACK, "Keep in touch with Alan"),
        (Stage.SNOOZED, "About Pricing page"),
    ],
)
def test_one_subject_per_loop_and_the_call_to_action_first(stage: Stage, first_line: str) -> None:
    """Gmail threads by subject: every stage's reminder keeps the loop's one subject, and says
    what to do now in its first line."""
    message = reparse(build_reminder(make_loop(stage=stage), make_action(stage), make_ctx()))
    assert message["Subject"] == LOOP_SUBJECT
    assert text_of(message).splitlines()[0] == first_line
    html_line = first_line.replace("'", "&#39;")
    assert f">{html_line}</h2>" in text_of(message, "html")


def test_every_mail_of_a_loop_has_its_subject_and_thread() -> None:
    loop = make_loop(message_ids=["ask1@example.com", "reply2@example.com"])
    ctx = make_ctx()
    mails = [
        build_reminder(loop, make_action(Stage.ADVISED), ctx),
        build_reminder(loop, make_action(Stage.ACTED, sequence=2), ctx),
        build_give_up_notice(loop, make_action(kind=ActionKind.GIVE_UP), ctx),
        build_still_relevant(loop, make_action(kind=ActionKind.STILL_RELEVANT), ctx),
        build_reply("cmd1@example.com", "Re: whatever the user wrote", "Done.", ctx, loop),
    ]
    subjects = [reparse(mail)["Subject"] for mail in mails]
    assert subjects == [LOOP_SUBJECT] * 4 + [f"Re: {LOOP_SUBJECT}"]
    for mail in mails:
        assert "<ask1@example.com>" in mail["References"]
    first_lines = [text_of(reparse(mail)).splitlines()[0] for mail in mails[2:4]]
    assert first_lines == [
        "Letting go: nothing new with Alan in 3 days",
        "Still relevant? Your loop with Alan",
    ]


def test_loops_of_one_thread_with_two_mentors_keep_apart() -> None:
    grace = make_loop(mentor=Person(address="grace@example.com", name="Grace Hopper"))
    message = reparse(build_reminder(grace, make_action(Stage.ADVISED), make_ctx()))
    assert message["Subject"] == "[mailmentor] Grace: Pricing page"


@pytest.mark.parametrize(
    ("stage", "words"),
    [
        (Stage.ASKED, ["follow-up", "advised", "3 days since you asked Alan"]),
        (Stage.ADVISED, ["Charge more.", "done · snooze 3d · stop · help", "advice arrived"]),
        (Stage.ACTED, ["Hi Alan,", "Thanks again for your advice on Pricing page", "reported"]),
        (Stage.REPORTED, ["an introduction", "article", "gave back"]),
    ],
)
def test_body_says_the_action(stage: Stage, words: list[str]) -> None:
    message = reparse(build_reminder(make_loop(stage=stage), make_action(stage), make_ctx()))
    text, html = text_of(message), text_of(message, "html")
    for word in words:
        assert word in text
    assert "Alan Kay <alan@example.com>" in text
    assert "Alan Kay &lt;alan@example.com&gt;" in html
    assert "Reply with one line:" in text


def test_headers_and_structure() -> None:
    loop = make_loop(message_ids=["ask1@example.com", "reply2@example.com"])
    message = reparse(build_reminder(loop, make_action(), make_ctx()))
    assert message["From"] == f"mailmentor <{SERVICE}>"
    assert message["To"] == "me@example.com"
    assert parsedate_to_datetime(message["Date"]) == T0 + timedelta(days=3)
    assert message["In-Reply-To"] == "<reply2@example.com>"
    assert message["References"] == "<ask1@example.com> <reply2@example.com>"
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["X-Mailmentor-Loop"] == "k3v9x2abqe"
    assert message.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in message.iter_parts()] == ["text/plain", "text/html"]


def test_reply_to_and_message_id_carry_a_valid_token() -> None:
    message = reparse(build_reminder(make_loop(), make_action(), make_ctx()))
    parsed = parse_reply_address(message["Reply-To"], SERVICE)
    assert parsed is not None and parsed[0] == "k3v9x2abqe"
    assert verify_token(SECRET, *parsed)
    from_id = parse_reminder_message_id(message["Message-ID"])
    assert from_id == parsed


def test_message_id_is_deterministic_for_an_action_key() -> None:
    loop, ctx = make_loop(), make_ctx()
    first = build_reminder(loop, make_action(), ctx)["Message-ID"]
    later = build_reminder(loop, make_action(), replace(ctx, now=ctx.now + timedelta(hours=5)))
    second = build_reminder(loop, make_action(sequence=2), ctx)["Message-ID"]
    assert first == later["Message-ID"]
    assert first != second
    assert first.endswith("@example.com>")


def test_references_are_capped_to_the_last_20() -> None:
    ids = [f"m{i}@example.com" for i in range(25)]
    message = reparse(build_reminder(make_loop(message_ids=ids), make_action(), make_ctx()))
    refs = message["References"].split()
    assert refs == [f"<{i}>" for i in ids[-20:]]
    assert message["In-Reply-To"] == "<m24@example.com>"


def test_no_thread_means_no_threading_headers() -> None:
    message = build_reminder(make_loop(message_ids=[]), make_action(), make_ctx())
    assert message["In-Reply-To"] is None
    assert message["References"] is None


def test_long_message_ids_stay_verbatim_on_the_wire() -> None:
    long_id = "CAH" + "x" * 90 + "@mail.gmail.com"
    message = build_reminder(make_loop(message_ids=["a@b", long_id]), make_action(), make_ctx())
    raw = message.as_bytes()
    assert f"<{long_id}>".encode() in raw
    assert b"=?utf-8?" not in raw.split(b"\r\n\r\n")[0].replace(b"Subject", b"")
    assert reparse(message)["In-Reply-To"] == f"<{long_id}>"


@pytest.mark.parametrize(
    "hostile",
    ["ask1@example.com\r\nBcc: evil@example.com", "<a b>@x", "", "ünï@example.com", "x>\n<y"],
)
def test_unsafe_thread_ids_are_dropped(hostile: str) -> None:
    assert thread_references(["ok@example.com", hostile]) == ["ok@example.com"]


def test_html_is_escaped() -> None:
    loop = make_loop(
        subject="<script>alert(1)</script>",
        advice_excerpt="<b>bold</b> & co",
        mentor=Person(address="alan@example.com", name="Alan <img src=x>"),
    )
    html = text_of(reparse(build_reminder(loop, make_action(), make_ctx())), "html")
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;b&gt;bold&lt;/b&gt; &amp; co" in html
    assert "<img" not in html


def test_cr_lf_in_subject_and_name_cannot_inject_headers() -> None:
    loop = make_loop(
        subject="Pricing\r\nBcc: victim@example.com\r\n\r\nbody",
        mentor=Person(address="alan@example.com", name="Alan\r\nX-Evil: 1"),
    )
    built = build_reminder(loop, make_action(), make_ctx())
    message = reparse(built)
    assert message["Bcc"] is None
    assert message["X-Evil"] is None
    assert message["Subject"] == "[mailmentor] Alan: Pricing Bcc: victim@example.com body"
    assert "\n" not in message["Subject"] and "\r" not in message["Subject"]


def test_international_names_round_trip() -> None:
    loop = make_loop(
        mentor=Person(address="zoe@example.de", name="Zoë Müller-Lüdenscheidt"),
        subject="Überlegungen zur Preisgestaltung für das nächste Geschäftsjahr — Teil 2",
    )
    message = reparse(build_reminder(loop, make_action(Stage.ACTED), make_ctx()))
    assert message["Subject"] == (
        "[mailmentor] Zoë: Überlegungen zur Preisgestaltung für das nächste Geschäftsjahr — Teil 2"
    )
    assert text_of(message).splitlines()[0] == "Tell Zoë how it went"
    assert message["From"].addresses[0].addr_spec == SERVICE
    assert [a.addr_spec for a in message["To"].addresses] == ["me@example.com"]
    assert "Zoë Müller-Lüdenscheidt <zoe@example.de>" in text_of(message)
    assert "Hi Zoë," in text_of(message, "html")
    raw = build_reminder(loop, make_action(Stage.ACTED), make_ctx()).as_bytes()
    assert raw.isascii()
    assert all(len(line) <= 998 for line in raw.split(b"\r\n"))


_WORDS = st.sampled_from(
    ["Act", "on", "Zoë's", "Free-Quilting.com's", "40%", "für", "—", "(Entwurf)", "日本語",
     "=?utf-8?q?x?=", "?=", "b" * 90, "é" * 25, '"quoted"', ";", ",", "<b>", "x.y@z"]
)  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(words=st.lists(_WORDS, min_size=1, max_size=16))
def test_subjects_survive_folding_exactly(words: list[str]) -> None:
    """Python 3.11's folder drops or adds spaces in some ASCII/non-ASCII mixes; ours must not."""
    subject = header_text(" ".join(words), limit=200)
    message = EmailMessage(policy=MAIL_POLICY)
    message["Subject"] = subject
    raw = message.as_bytes()
    assert raw.isascii()
    assert all(len(line) <= 78 for line in raw.split(b"\r\n"))
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert parsed["Subject"] == subject


def test_configured_addresses() -> None:
    ctx = replace(make_ctx(), user_address="Me Myself <me@example.com>")
    assert build_reminder(make_loop(), make_action(), ctx)["To"] == "me@example.com"
    with pytest.raises(ValueError, match="user address 'nobody'"):
        build_reminder(make_loop(), make_action(), replace(ctx, user_address="nobody"))


def test_reply_prefixes_are_dropped_from_the_loop_subject() -> None:
    assert clean_subject("Re: Fwd: RE: Pricing page") == "Pricing page"
    assert clean_subject("AW: [advice] Pricing") == "[advice] Pricing"
    assert clean_subject("   ") == "(no subject)"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("a\r\nb", "a b"),
        ("a\tb\x00c", "a b c"),
        ("  lots   of   space ", "lots of space"),
        ("x" * 200, "x" * 119 + "…"),
        ("line\u2028sep", "line sep"),
    ],
)
def test_header_text(value: str, expected: str) -> None:
    assert header_text(value) == expected


@pytest.mark.parametrize(
    ("delta", "days", "span"),
    [
        (timedelta(hours=3), "Less than a day", "a day"),
        (timedelta(days=1, hours=2), "1 day", "1 day"),
        (timedelta(days=3), "3 days", "3 days"),
        (timedelta(days=21), "21 days", "3 weeks"),
        (timedelta(days=90), "90 days", "3 months"),
    ],
)
def test_durations_for_people(delta: timedelta, days: str, span: str) -> None:
    assert days_phrase(delta) == days
    assert human_span(delta) == span


def test_days_since_never_negative() -> None:
    message = build_reminder(make_loop(), make_action(), make_ctx(now=T0 - timedelta(days=2)))
    assert "Less than a day since" in text_of(message)


def test_give_up_notice() -> None:
    ctx = make_ctx(now=T0 + timedelta(days=21))
    action = make_action(Stage.ASKED, kind=ActionKind.GIVE_UP)
    message = reparse(build_give_up_notice(make_loop(), action, ctx))
    text = text_of(message)
    assert "No answer from Alan in 3 weeks — letting this one go; reply “reopen” to keep it" in text
    assert message["Subject"] == LOOP_SUBJECT, "the loop's one subject"
    assert text.splitlines()[0] == "Letting go: no answer from Alan in 3 weeks"
    assert parse_reply_address(message["Reply-To"], SERVICE) is not None
    same = reparse(build_reminder(make_loop(), action, ctx))
    assert same["Message-ID"] == message["Message-ID"]
    assert text_of(same) == text


def test_other_kinds_get_a_generic_reminder() -> None:
    loop = make_loop(kind=Kind.MENTEE)
    message = build_reminder(loop, make_action(Stage.ADVISED), make_ctx())
    assert message["Subject"] == LOOP_SUBJECT
    assert text_of(message).splitlines()[0] == "Check in with Alan"


def test_help_reply_threads_to_the_users_mail() -> None:
    ctx = make_ctx()
    body = "Commands, one per line:\n\n" + HELP_TEXT
    message = reparse(build_reply("<cmd1@example.com>", "Re: Act on it", body, ctx))
    assert message["In-Reply-To"] == "<cmd1@example.com>"
    assert message["Subject"] == "Re: Act on it"
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["X-Mailmentor-Loop"] is None
    assert "snooze 3d" in text_of(message)
    again = build_reply("cmd1@example.com", "Re: Act on it", body, replace(ctx, now=T0))
    assert again["Message-ID"] == message["Message-ID"]
    other = build_reply("cmd2@example.com", "Re: Act on it", body, ctx)
    assert other["Message-ID"] != message["Message-ID"]


def test_reply_with_a_loop_stays_in_the_loop() -> None:
    message = reparse(build_reply("cmd1@example.com", "help", HELP_TEXT, make_ctx(), make_loop()))
    assert message["Subject"] == f"Re: {LOOP_SUBJECT}", "in the loop's conversation"
    assert message["References"] == "<ask1@example.com> <cmd1@example.com>"
    parsed = parse_reminder_message_id(message["Message-ID"])
    assert parsed is not None and verify_token(SECRET, *parsed)
    assert parse_reply_address(message["Reply-To"], SERVICE) == parsed


def test_reply_without_incoming_id() -> None:
    message = reparse(build_reply(None, "x\r\nBcc: y@example.com", "unknown command", make_ctx()))
    assert message["In-Reply-To"] is None
    assert message["Bcc"] is None
    assert message["Message-ID"].startswith("<mm.reply.")


def test_help_text_is_one_command_per_line() -> None:
    lines = HELP_TEXT.splitlines()
    assert len(lines) >= 7
    starts = [line.split(" — ")[0] for line in lines]
    for command in ("acted", "reported", "gave back", "snooze 3d", "stop", "help"):
        assert any(s.startswith(command) for s in starts), command


@settings(max_examples=60, deadline=None)
@given(subject=st.text(max_size=200), name=st.text(max_size=60), excerpt=st.text(max_size=300))
def test_hostile_text_always_renders_safely(subject: str, name: str, excerpt: str) -> None:
    loop = make_loop(
        subject=subject,
        mentor=Person(address="alan@example.com", name=name),
        advice_excerpt=excerpt,
        ask_excerpt=excerpt,
    )
    message = reparse(build_reminder(loop, make_action(), make_ctx()))
    assert "\n" not in message["Subject"] and "\r" not in message["Subject"]
    assert [a.addr_spec for a in message["To"].addresses] == ["me@example.com"]
    assert message["X-Mailmentor-Loop"] == "k3v9x2abqe"
    assert len(message["Subject"]) <= 200


def _corpus_files() -> list[Path]:
    corpora = corpus()
    roots = [corpora / "stalwart-mail-parser", corpora / "mikel-mail"]
    return sorted(p for root in roots if root.is_dir() for p in root.rglob("*.eml"))


def _header(message: EmailMessage, name: str) -> str:
    try:
        return str(message.get(name, "") or "")
    except Exception:  # real mail has headers the parser cannot make sense of
        return ""


def test_real_world_subjects_and_names_round_trip() -> None:
    """Subjects, names and ids from other projects' torture tests survive our headers."""
    files = _corpus_files()
    assert files
    ctx = make_ctx()
    for path in files:
        source = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        name = email.utils.parseaddr(_header(source, "From"))[0]
        ids = [_header(source, "Message-ID"), *_header(source, "References").split()]
        loop = make_loop(
            subject=_header(source, "Subject"),
            mentor=Person(address="mentor@example.net", name=name),
            message_ids=ids,
        )
        built = build_reminder(loop, make_action(), ctx)
        message = reparse(built)
        assert message["Subject"] == built["Subject"], path
        assert "\n" not in message["Subject"], path
        assert message["X-Mailmentor-Loop"] == "k3v9x2abqe", path
        for ref in message.get("References", "").split():
            assert ref.startswith("<") and ref.endswith(">"), (path, ref)
