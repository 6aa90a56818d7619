"""`mailmentor digest [--html FILE] [--text] [--send-now]` on the real store (embedded Redis)
and a real SMTP server (aiosmtpd): the preview is what is mailed, and one can be sent now."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailmentor.model import Stage
from mailmentor.sandbox.smtp_sink import SmtpSink
from mailmentor.store import Store
from tests.cli_support import Result, exits, run
from tests.reminders._support import text_of
from tests.store_support import put_loop
from tests.test_cli import make_loop


def test_html_goes_to_a_file_and_text_is_printed_when_asked(
    cli_store: Store, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    put_loop(cli_store, make_loop("digestlp01"))
    page = tmp_path / "digest.html"
    result = run(capsys, "digest", "--html", str(page))
    assert result.code == 0, result.err
    assert result.out == "", "only the file, unless --text"
    assert f"wrote the digest's HTML to {page}" in result.err
    html = page.read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>") and "act on Alan&#39;s advice" in html
    both = run(capsys, "digest", "--html", str(page), "--text")
    assert both.out.startswith("Your week: 1 to do, 1 open loop\n")


def send_now(capsys: pytest.CaptureFixture[str]) -> Result:
    return run(capsys, "digest", "--send-now")


def test_send_now_mails_the_digest_through_smtp(
    cli_store: Store,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    smtp_sink: SmtpSink,
) -> None:
    account = smtp_sink.account
    for name, value in {
        "SMTP_HOST": account.host,
        "SMTP_PORT": str(account.port),
        "SMTP_SECURITY": "none",
        "SERVICE_ADDRESS": "mentor@example.com",
        "USER_ADDRESSES": "ada@example.com",
        "SECRET_KEY": "test-secret",
    }.items():
        monkeypatch.setenv(f"MAILMENTOR_{name}", value)
    put_loop(cli_store, make_loop("digestlp01"))
    put_loop(cli_store, make_loop("digestlp02", stage=Stage.ASKED))
    result = send_now(capsys)
    assert result.code == 0, result.err
    assert (
        result.out.strip() == "digest sent to ada@example.com: “Your week: 1 to do, 2 open loops”"
    )
    (received,) = smtp_sink.wait_for(1, timeout=15)
    mail = received.message
    assert mail["To"] == "ada@example.com" and mail["Reply-To"].startswith("mentor+d-")
    assert " 1. act on Alan's advice" in text_of(mail)
    assert not cli_store.outbox.pending(), "its job is done"
    key = mail["Reply-To"].split("+d-", 1)[1].split("-", 1)[0]
    assert set(cli_store.weekly.digest_lines(key).values()) == {"digestlp01", "digestlp02"}


def test_send_now_without_smtp_names_the_setting(
    cli_store: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    result = send_now(capsys)
    assert result.code != 0
    assert "MAILMENTOR_SMTP_HOST: required by `mailmentor digest --send-now`" in result.err


def test_digest_help_explains_the_options(capsys: pytest.CaptureFixture[str]) -> None:
    out = exits(capsys, "digest", "--help").out
    assert "--html FILE" in out and "--send-now" in out and "2 done" in out
