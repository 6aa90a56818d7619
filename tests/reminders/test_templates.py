"""Templates: user overrides in RULES_DIR/templates, safe fallback, the report-back draft and the
"still relevant?" mail. Pure rendering: no servers."""

from __future__ import annotations

import logging
import os
import time
from dataclasses import replace
from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest

from mailmentor.model import ActionKind, Event, EventType, Kind, Stage
from mailmentor.reminders import (
    asks_for_report,
    build_give_up_notice,
    build_reminder,
    build_report_draft,
    build_still_relevant,
    report_draft_text,
)
from mailmentor.tokens import parse_reply_address, verify_token
from tests.reminders._support import (
    SECRET,
    SERVICE,
    T0,
    make_action,
    make_ctx,
    make_loop,
    reparse,
)
from tests.reminders._support import text_of as _text_of


def text_of(message: EmailMessage, subtype: str = "plain") -> str:
    """A body as the reader sees it (line ends as LF)."""
    return _text_of(message, subtype).replace("\r\n", "\n")


def content(message: EmailMessage) -> str:
    return str(message.get_content()).replace("\r\n", "\n")


def write(directory: Path, name: str, text: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def templates(tmp_path: Path) -> Path:
    return tmp_path / "rules" / "templates"


# --- overrides ----------------------------------------------------------------------------------


def test_stage_override_changes_subject_and_body(templates: Path) -> None:
    write(
        templates,
        "reminder_advised.txt.j2",
        '{% set mail_subject = "Try it: " ~ subject %}\n'
        "{{ mentor_name }} said: {{ advice_excerpt }} ({{ days }} days, {{ stage }})\n"
        "{{ commands }}\n",
    )
    ctx = replace(make_ctx(), templates_dir=templates)
    message = reparse(build_reminder(make_loop(), make_action(Stage.ADVISED), ctx))
    assert message["Subject"] == "Try it: Pricing page"
    assert text_of(message) == (
        "Alan said: Charge more. (3 days, advised)\ndone · snooze 3d · stop · help\n"
    )
    assert "Act on Alan&#39;s advice" in text_of(message, "html"), "no HTML override: shipped"
    other = reparse(build_reminder(make_loop(), make_action(Stage.ACTED), ctx))
    assert other["Subject"] == "[mailmentor] Alan: Pricing page", "other stages unchanged"


def test_rule_template_name_wins_over_the_stage_default(templates: Path) -> None:
    write(templates, "reminder_advised.txt.j2", "stage default\n")
    write(templates, "gentle.txt.j2", '{% set mail_subject = "Gently: " ~ subject %}gentle\n')
    write(templates, "gentle.html.j2", "<p>gentle {{ mentor_name }}</p>\n")
    ctx = replace(make_ctx(), templates_dir=templates, template="gentle")
    message = reparse(build_reminder(make_loop(), make_action(Stage.ADVISED), ctx))
    assert message["Subject"] == "Gently: Pricing page"
    assert text_of(message) == "gentle\n"
    assert text_of(message, "html") == "<p>gentle Alan</p>\n"


def test_unknown_rule_template_warns_and_uses_the_default(
    templates: Path, caplog: pytest.LogCaptureFixture
) -> None:
    ctx = replace(make_ctx(), templates_dir=templates, template="gentel")
    with caplog.at_level(logging.WARNING, logger="mailmentor.reminders"):
        message = reparse(build_reminder(make_loop(), make_action(Stage.ADVISED), ctx))
    assert message["Subject"] == "[mailmentor] Alan: Pricing page"
    assert "'gentel'" in caplog.text and "not found" in caplog.text


def test_generic_override_is_the_layout_of_every_stage_but_keeps_give_up_subjects(
    templates: Path,
) -> None:
    write(
        templates,
        "reminder.txt.j2",
        '{% set mail_subject = "[mm] " ~ mail_subject %}{{ headline }} | {{ commands }}\n',
    )
    ctx = replace(make_ctx(), templates_dir=templates)
    for stage in (Stage.ASKED, Stage.REPORTED):
        message = reparse(build_reminder(make_loop(), make_action(stage), ctx))
        assert message["Subject"].startswith("[mm] "), stage
    notice = reparse(build_give_up_notice(make_loop(), make_action(kind=ActionKind.GIVE_UP), ctx))
    assert text_of(notice) == "Letting go: nothing new with Alan in 3 days | reopen · help\n"
    assert notice["Subject"] == "[mailmentor] Alan: Pricing page", "the layout sets none here"


def test_html_override_is_still_escaped_and_text_is_not(templates: Path) -> None:
    write(templates, "reminder_advised.html.j2", "<p>{{ subject }} / {{ mentor }}</p>\n")
    write(templates, "reminder_advised.txt.j2", "{{ subject }} / {{ mentor }}\n")
    loop = make_loop(subject="<script>x</script> & co", mentor=make_loop().mentor)
    ctx = replace(make_ctx(), templates_dir=templates)
    message = reparse(build_reminder(loop, make_action(Stage.ADVISED), ctx))
    html = text_of(message, "html")
    assert html == (
        "<p>&lt;script&gt;x&lt;/script&gt; &amp; co / Alan Kay &lt;alan@example.com&gt;</p>\n"
    )
    assert text_of(message) == "<script>x</script> & co / Alan Kay <alan@example.com>\n"


def test_an_edited_override_applies_without_a_restart(templates: Path) -> None:
    path = write(templates, "reminder_advised.txt.j2", "first\n")
    ctx = replace(make_ctx(), templates_dir=templates)
    assert text_of(build_reminder(make_loop(), make_action(), ctx)) == "first\n"
    path.write_text("second\n")
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 2_000_000_000))
    assert text_of(build_reminder(make_loop(), make_action(), ctx)) == "second\n"


# --- broken overrides fall back -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "line", "what"),
    [
        ("Hello\n{% if %}\n", 2, "TemplateSyntaxError"),
        ("Hello\n\n{{ mentor_nmae }}\n", 3, "'mentor_nmae' is undefined"),
        ("{{ days / 0 }}\n", 1, "ZeroDivisionError"),
        ("{{ subject.__class__.__mro__ }}\n", 1, "SecurityError"),  # the sandbox says no
        ('{% include "nowhere.txt.j2" %}\n', 1, "nowhere.txt.j2"),
    ],
)
def test_a_broken_override_is_logged_with_file_and_line_and_the_shipped_one_is_used(
    templates: Path, caplog: pytest.LogCaptureFixture, source: str, line: int, what: str
) -> None:
    path = write(templates, "reminder_advised.txt.j2", '{% set mail_subject = "X" %}' + source)
    ctx = replace(make_ctx(), templates_dir=templates)
    with caplog.at_level(logging.ERROR, logger="mailmentor.reminders"):
        message = reparse(build_reminder(make_loop(), make_action(Stage.ADVISED), ctx))
    shipped = reparse(build_reminder(make_loop(), make_action(Stage.ADVISED), make_ctx()))
    assert message["Subject"] == shipped["Subject"] == "[mailmentor] Alan: Pricing page"
    assert text_of(message) == text_of(shipped)
    assert f"{path}:{line}" in caplog.text
    assert what in caplog.text
    assert "using the shipped template" in caplog.text


def test_a_broken_html_override_keeps_the_text_override(templates: Path) -> None:
    write(templates, "reminder_advised.txt.j2", "mine\n")
    write(templates, "reminder_advised.html.j2", "{% for %}\n")
    ctx = replace(make_ctx(), templates_dir=templates)
    message = reparse(build_reminder(make_loop(), make_action(Stage.ADVISED), ctx))
    assert text_of(message) == "mine\n"
    assert "Act on Alan&#39;s advice" in text_of(message, "html")


def test_a_missing_templates_folder_is_fine(tmp_path: Path) -> None:
    ctx = replace(make_ctx(), templates_dir=tmp_path / "nope")
    message = reparse(build_reminder(make_loop(), make_action(Stage.ACTED), ctx))
    assert message["Subject"] == "[mailmentor] Alan: Pricing page"


# --- the report-back draft ----------------------------------------------------------------------


def test_report_draft_is_the_users_mail_to_the_mentor_in_the_thread() -> None:
    loop = make_loop(
        stage=Stage.ACTED,
        subject="Re: Pricing page",
        message_ids=["ask1@example.com", "advice2@example.org"],
        advice_excerpt="Charge more.\nOffer three plans.",
    )
    draft = build_report_draft(loop, make_ctx())
    message = reparse(draft)
    assert [a.addr_spec for a in message["From"].addresses] == ["me@example.com"]
    assert str(message["To"]) == "Alan Kay <alan@example.com>"
    assert message["Subject"] == "Re: Pricing page"
    assert message["In-Reply-To"] == "<advice2@example.org>"
    assert message["References"] == "<ask1@example.com> <advice2@example.org>"
    assert message["Message-ID"].endswith("@example.com>")
    for header in ("Auto-Submitted", "Reply-To", "X-Mailmentor-Loop", "X-Auto-Response-Suppress"):
        assert message[header] is None, header
    assert message.get_content_type() == "text/plain"
    body = content(message)
    assert body.startswith("Hi Alan,\n")
    assert "> Charge more.\n> Offer three plans.\n" in body
    assert "[what you tried" in body and "[your name]" in body
    assert draft.as_bytes().count(b"\r\n") > 5, "CRLF, as IMAP APPEND wants"
    again = build_report_draft(loop, replace(make_ctx(), now=T0 + timedelta(days=9)))
    assert again["Message-ID"] == draft["Message-ID"]


def test_report_draft_with_an_international_name_keeps_one_recipient() -> None:
    mentor = make_loop().mentor.model_copy(update={"name": "Müller-Lüdenscheidt, Zoë Ångström"})
    message = reparse(build_report_draft(make_loop(mentor=mentor), make_ctx()))
    addresses = message["To"].addresses
    assert [(a.display_name, a.addr_spec) for a in addresses] == [
        ("Müller-Lüdenscheidt, Zoë Ångström", "alan@example.com")
    ]
    assert content(message).startswith("Hi Müller-Lüdenscheidt,\n")


def test_report_draft_without_advice_or_thread() -> None:
    loop = make_loop(advice_excerpt="", message_ids=[])
    message = reparse(build_report_draft(loop, make_ctx()))
    assert message["In-Reply-To"] is None and message["References"] is None
    assert "You suggested" not in content(message)
    assert "Thanks again for your advice on Pricing page.\n" in content(message)


def test_the_acted_reminder_shows_the_same_draft(templates: Path) -> None:
    loop = make_loop(stage=Stage.ACTED)
    ctx = replace(make_ctx(), templates_dir=templates)
    write(templates, "report_draft.txt.j2", "Dear {{ mentor_full_name }}, [fill in]\n")
    text = text_of(reparse(build_reminder(loop, make_action(Stage.ACTED), ctx)))
    assert report_draft_text(loop, ctx) == "Dear Alan Kay, [fill in]"
    assert "    Dear Alan Kay, [fill in]\n" in text
    assert content(reparse(build_report_draft(loop, ctx))) == "Dear Alan Kay, [fill in]\n"


@pytest.mark.parametrize(
    ("kind", "stage", "loop_changes", "expected"),
    [
        (ActionKind.REMIND, Stage.ACTED, {}, True),
        (ActionKind.REMIND, Stage.ACTED, {"kind": Kind.INTRO}, True),
        (ActionKind.REMIND, Stage.ACTED, {"kind": Kind.MENTEE}, False),
        (ActionKind.REMIND, Stage.ADVISED, {}, False),
        (ActionKind.REMIND, Stage.REPORTED, {}, False),
        (ActionKind.GIVE_UP, Stage.ACTED, {}, False),
        (ActionKind.STILL_RELEVANT, Stage.ACTED, {}, False),
        (ActionKind.WAKE, Stage.SNOOZED, {"snoozed_from": Stage.ACTED}, True),
        (ActionKind.WAKE, Stage.SNOOZED, {"snoozed_from": Stage.ADVISED}, False),
    ],
)
def test_which_mails_ask_for_a_report(
    kind: ActionKind, stage: Stage, loop_changes: dict[str, object], expected: bool
) -> None:
    loop = make_loop(**loop_changes)
    assert asks_for_report(loop, make_action(stage, kind=kind)) is expected


# --- still relevant? ----------------------------------------------------------------------------


def test_still_relevant_mail() -> None:
    loop = make_loop(
        stage=Stage.ADVISED,
        message_ids=["ask1@example.com", "advice2@example.org"],
        events=[
            Event(at=T0, type=EventType.REMINDER_SENT, source="rule a", stage=Stage.ADVISED)
            for _ in range(3)
        ],
    )
    action = make_action(Stage.ADVISED, sequence=4, kind=ActionKind.STILL_RELEVANT)
    built = build_still_relevant(loop, action, make_ctx())
    message = reparse(built)
    assert message["Subject"] == "[mailmentor] Alan: Pricing page"
    text = text_of(message)
    assert text.startswith("Still relevant? Your loop with Alan\n")
    assert (
        "You have not answered the last 3 reminders about this, so mailmentor paused it.\n"
        "Reply with one line: done / snooze 2w / stop — or `reopen` to resume reminders."
    ) in text
    assert "> Charge more." in text
    assert "<code>reopen</code>" in text_of(message, "html")
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["In-Reply-To"] == "<advice2@example.org>"
    assert message["References"] == "<ask1@example.com> <advice2@example.org>"
    assert [a.addr_spec for a in message["To"].addresses] == ["me@example.com"]
    found = parse_reply_address(message["Reply-To"], SERVICE)
    assert found is not None and found[0] == loop.id and verify_token(SECRET, *found)
    via_reminder = build_reminder(loop, action, make_ctx())
    assert via_reminder["Message-ID"] == built["Message-ID"]
    assert via_reminder["Subject"] == built["Subject"]


def test_still_relevant_can_be_overridden_and_escapes_html(templates: Path) -> None:
    write(templates, "still_relevant.html.j2", "<b>{{ subject }}</b> {{ ignored }}\n")
    loop = make_loop(subject="a <b> c")
    ctx = replace(make_ctx(), templates_dir=templates)
    action = make_action(kind=ActionKind.STILL_RELEVANT)
    message = reparse(build_still_relevant(loop, action, ctx))
    assert text_of(message, "html") == "<b>a &lt;b&gt; c</b> 1\n"
    assert "the last 1 reminder about this" in text_of(message)


def test_a_new_override_applies_once_the_choice_is_rechecked(
    templates: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mailmentor.reminders import templates as module

    ctx = replace(make_ctx(), templates_dir=templates)
    shipped = text_of(build_reminder(make_loop(), make_action(), ctx))
    write(templates, "reminder_advised.txt.j2", "mine\n")
    later = time.monotonic() + module.CHOICE_RECHECK + 0.1
    monkeypatch.setattr(module, "monotonic", lambda: later)
    assert text_of(build_reminder(make_loop(), make_action(), ctx)) == "mine\n" != shipped
