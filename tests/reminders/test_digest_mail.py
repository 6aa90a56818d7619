"""The weekly digest mail: subject, headers, both bodies, escaping and user overrides."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from mailmentor.digest import build_digest
from mailmentor.model import Event, EventType, Loop, Person, Stage
from mailmentor.reminders import build_digest_mail, digest_key, digest_text
from mailmentor.stages import replay
from mailmentor.tokens import digest_token, parse_digest_address, parse_digest_message_id
from tests.reminders._support import make_ctx, reparse, text_of

SLOT = datetime(2026, 1, 12, 7, 0, tzinfo=UTC)
NOW = SLOT + timedelta(minutes=1)


def open_loop(loop_id: str, stage: Stage, name: str = "Alan Kay") -> Loop:
    loop = Loop(
        id=loop_id,
        mentor=Person(address=f"{loop_id}@example.org", name=name),
        subject="Re: Pricing page",
        stage=stage,
        created_at=NOW - timedelta(days=10),
        stage_entered_at=NOW - timedelta(days=4),
    )
    advice = Event(
        at=NOW - timedelta(days=4), type=EventType.ADVICE, source="message <a@b>", stage=stage
    )
    return replay(loop, [advice])


def mail(loops: list[Loop]) -> tuple[str, str, str]:
    message = reparse(build_digest_mail(build_digest(loops, [], NOW), SLOT, make_ctx(NOW)))
    return (
        str(message["Subject"]),
        text_of(message).replace("\r\n", "\n"),
        text_of(message, "html").replace("\r\n", "\n"),
    )


def test_subject_counts_what_waits_on_the_user() -> None:
    assert mail([])[0] == "Your week: no open loops. What do you want to learn next?"
    assert mail([open_loop("a", Stage.ASKED)])[0] == "Your week: 1 open loop, nothing waits on you"
    two = [open_loop("a", Stage.ADVISED), open_loop("b", Stage.ASKED)]
    assert mail(two)[0] == "Your week: 1 to do, 2 open loops"


def test_body_lists_loops_people_and_the_learning_question() -> None:
    _, text, html = mail([open_loop("a", Stage.ADVISED), open_loop("b", Stage.ASKED, "Grace")])
    assert "Your move\n 1. act on Alan's advice: Pricing page (advice came 4 days ago)" in text
    assert "Waiting on\n 2. waiting for Grace: Pricing page (asked 4 days ago)" in text
    assert "Alan Kay <a@example.org>: your move: act on their advice" in text
    assert "What do you want to learn next?" in text
    assert 'Reply "learn <topic>" to start' in text and "BCC mentor+learn@example.com" in text
    assert "Closed this week" not in text, "empty sections are left out"
    assert "<strong>act on Alan&#39;s advice</strong>: Pricing page" in html
    assert 'Reply with a line number and a command, one per line: "2 done"' in text


def test_headers_carry_the_digest_token_and_no_loop_token() -> None:
    digest = build_digest([open_loop("a", Stage.ADVISED)], {}, NOW)
    first = build_digest_mail(digest, SLOT, make_ctx(NOW))
    again = build_digest_mail(digest, SLOT, make_ctx(NOW + timedelta(hours=1)))
    next_week = build_digest_mail(digest, SLOT + timedelta(days=7), make_ctx(NOW))
    assert first["Auto-Submitted"] == "auto-generated"
    assert first["To"] == "me@example.com"
    assert first["X-Mailmentor-Loop"] is None
    assert first["Message-ID"] == again["Message-ID"] != next_week["Message-ID"]
    assert first["Reply-To"] == again["Reply-To"] != next_week["Reply-To"]
    key = digest_key(SLOT, make_ctx(NOW))
    assert parse_digest_address(str(first["Reply-To"]), "mentor@example.com") == (
        key,
        digest_token(make_ctx(NOW).secret, key),
    )
    assert parse_digest_message_id(str(first["Message-ID"])) is not None


def test_hostile_names_and_subjects_are_escaped_in_html() -> None:
    evil = open_loop("a", Stage.ADVISED, name="<script>alert(1)</script>")
    evil = evil.model_copy(update={"subject": "<img src=x onerror=alert(1)>"})
    _, text, html = mail([evil])
    assert "<script>" not in html.split("</head>")[1] and "<img" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "<img src=x onerror=alert(1)>" in text, "plain text is not escaped"


def test_the_user_can_override_the_digest_template(tmp_path: Path) -> None:
    (tmp_path / "digest.txt.j2").write_text(
        "{% set mail_subject = 'Weekly: ' ~ open_loops %}Open: {{ open_loops }}\n"
    )
    ctx = replace(make_ctx(NOW), templates_dir=tmp_path)
    digest = build_digest([open_loop("a", Stage.ADVISED)], {}, NOW)
    message = build_digest_mail(digest, SLOT, ctx)
    assert message["Subject"] == "Weekly: 1"
    assert text_of(message).replace("\r\n", "\n") == "Open: 1\n"
    assert "What do you want to learn next?" in text_of(message, "html"), "shipped HTML stays"
    assert digest_text(digest, ctx) == "Open: 1\n"


def test_what_needs_the_user_about_mailmentor_itself_comes_first_and_escaped() -> None:
    digest = replace(
        build_digest([], [], NOW), health=("cannot sign in to <ada@example.com>: run `connect`",)
    )
    mail = reparse(build_digest_mail(digest, SLOT, make_ctx()))
    text, html = text_of(mail), text_of(mail, "html")
    assert "Needs you: cannot sign in to <ada@example.com>" in text
    assert "cannot sign in to &lt;ada@example.com&gt;" in html and "<ada@" not in html
