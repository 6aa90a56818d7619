"""Mailbox mode's settings (errors name the variable) and which folder means what (pure)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mailmentor.app import mailbox_folders
from mailmentor.errors import ConfigError
from mailmentor.imap import MessageMeta
from mailmentor.mailbox_mode import Origin
from mailmentor.settings import load_settings
from tests.environment import clean_environment


@pytest.fixture(autouse=True)
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    """No developer variables, no .env pickup, no /run/secrets: only what each test sets."""
    clean_environment(monkeypatch, tmp_path)
    yield tmp_path


def test_mailbox_mode_is_off_by_default() -> None:
    settings = load_settings()
    assert settings.mailbox_mode is False
    assert (settings.track_folder, settings.track_keyword, settings.track_gmail_label) == ("",) * 3
    assert settings.sent_folder == "Sent"


def test_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAILMENTOR_MAILBOX_MODE", "true")
    monkeypatch.setenv("MAILMENTOR_TRACK_GMAIL_LABEL", "Mentors")
    monkeypatch.setenv("MAILMENTOR_SENT_FOLDER", "[Gmail]/Sent Mail")
    settings = load_settings()
    assert settings.mailbox_mode is True
    assert (settings.track_gmail_label, settings.sent_folder) == ("Mentors", "[Gmail]/Sent Mail")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({}, "MAILMENTOR_MAILBOX_MODE: needs MAILMENTOR_TRACK_FOLDER, MAILMENTOR_TRACK_KEYWORD"),
        ({"track_keyword": "  "}, "needs MAILMENTOR_TRACK_FOLDER"),
        ({"track_folder": "inbox"}, "MAILMENTOR_IMAP_FOLDER and MAILMENTOR_TRACK_FOLDER"),
        ({"track_folder": "Sent"}, "MAILMENTOR_SENT_FOLDER and MAILMENTOR_TRACK_FOLDER"),
        (
            {"track_keyword": "$mentor", "sent_folder": "INBOX"},
            "MAILMENTOR_IMAP_FOLDER and MAILMENTOR_SENT_FOLDER",
        ),
        ({"track_keyword": "$mentor", "sent_folder": ""}, "needs MAILMENTOR_SENT_FOLDER"),
        ({"track_keyword": "my mentor"}, "MAILMENTOR_TRACK_KEYWORD: 'my mentor' is not"),
        ({"track_keyword": "(x)"}, "MAILMENTOR_TRACK_KEYWORD"),
        ({"track_keyword": "a\\b"}, "MAILMENTOR_TRACK_KEYWORD"),
    ],
)
def test_bad_mailbox_mode_settings_name_the_variable(
    overrides: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError, match=message.replace("$", r"\$").replace("(", r"\(")):
        load_settings(mailbox_mode=True, **overrides)


@pytest.mark.parametrize("keyword", ["$mentor", "mentor", "\\Flagged", "$MailMentor"])
def test_good_keywords(keyword: str) -> None:
    assert load_settings(mailbox_mode=True, track_keyword=keyword).track_keyword == keyword


def test_tracking_settings_are_fine_without_mailbox_mode() -> None:
    assert load_settings(track_folder="INBOX").track_folder == "INBOX"


def _origins(settings_overrides: dict[str, Any]) -> dict[str, Origin]:
    settings = load_settings(mailbox_mode=True, **settings_overrides)
    return {
        watched.folder: watched.origin_of(MessageMeta(watched.folder))
        for watched in mailbox_folders(settings, "INBOX")
    }


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (
            {"track_folder": "Mentors"},
            {"Mentors": Origin.TRACKED, "Sent": Origin.SENT, "INBOX": Origin.INBOX},
        ),
        ({"track_keyword": "$mentor"}, {"Sent": Origin.SENT, "INBOX": Origin.INBOX}),
        (
            {"track_gmail_label": "mentor", "sent_folder": "[Gmail]/Sent Mail"},
            {"[Gmail]/Sent Mail": Origin.SENT, "INBOX": Origin.INBOX},
        ),
    ],
)
def test_folders_in_catch_up_order_with_their_meaning(
    overrides: dict[str, Any], expected: dict[str, Origin]
) -> None:
    origins = _origins(overrides)
    assert origins == expected
    assert list(origins) == list(expected)  # marked threads first, INBOX last


@pytest.mark.parametrize(
    ("flags", "labels", "inbox", "sent"),
    [
        ((), (), Origin.INBOX, Origin.SENT),
        (("\\Seen",), ("\\Inbox",), Origin.INBOX, Origin.SENT),
        (("\\Seen", "$Mentor"), (), Origin.TRACKED, Origin.TRACKED),
        ((), ("\\Inbox", "Mentor"), Origin.TRACKED, Origin.TRACKED),
        (("mentor",), ("$mentor",), Origin.INBOX, Origin.SENT),  # keyword ≠ label
    ],
)
def test_a_marked_message_is_tracked_in_any_folder(
    flags: tuple[str, ...], labels: tuple[str, ...], inbox: Origin, sent: Origin
) -> None:
    settings = load_settings(
        mailbox_mode=True,
        track_folder="Mentors",
        track_keyword="$mentor",
        track_gmail_label="mentor",
    )
    by_folder = {w.folder: w for w in mailbox_folders(settings, "INBOX")}
    assert by_folder["INBOX"].origin_of(MessageMeta("INBOX", flags, labels)) is inbox
    assert by_folder["Sent"].origin_of(MessageMeta("Sent", flags, labels)) is sent
    assert by_folder["Mentors"].origin_of(MessageMeta("Mentors", flags, labels)) is Origin.TRACKED
