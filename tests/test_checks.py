"""`mailmentor check` against the real servers: every configured connection tried, each wrong
setting named in one line with what to fix, the password never shown."""

from __future__ import annotations

import dataclasses
import ssl
from pathlib import Path

import pytest

from mailmentor import cli
from mailmentor.checks import Failed, Passed, Skipped, check_imap, check_smtp, run_checks
from mailmentor.embedded_redis import EmbeddedRedis
from mailmentor.imap import ImapAccount, create_folder
from mailmentor.sandbox.smtp_sink import SmtpSink
from mailmentor.settings import Settings
from mailmentor.smtp import SmtpAccount
from tests.service_factory import test_settings as settings_from

SMTP_USER, SMTP_PASSWORD = "mailmentor", "smtp-Secret-987"


def settings_for(
    redis: EmbeddedRedis, imap: ImapAccount, smtp: SmtpAccount, **more: object
) -> Settings:
    return settings_from(
        "ada@example.com",
        "mentor@example.com",
        redis_url=redis.url,
        imap_host=imap.host,
        imap_port=imap.port,
        imap_user=imap.user,
        imap_password=imap.password,
        imap_security="none",
        smtp_host=smtp.host,
        smtp_port=smtp.port,
        smtp_user=smtp.user or "",
        smtp_password=smtp.password or "",
        smtp_security=smtp.security,
        **more,
    )


def starttls_sink(tls: tuple[ssl.SSLContext, ssl.SSLContext]) -> SmtpSink:
    """A server that wants STARTTLS, then a login, as most providers' port 587 does."""
    server, client = tls
    return SmtpSink(
        security="starttls",
        tls_context=server,
        client_tls_context=client,
        credentials=(SMTP_USER, SMTP_PASSWORD),
    )


def test_everything_right_passes_and_names_what_it_opened(
    redis_server: EmbeddedRedis,
    any_imap_server: ImapAccount,
    tls: tuple[ssl.SSLContext, ssl.SSLContext],
) -> None:
    create_folder(any_imap_server, "Quarantine")
    sink = starttls_sink(tls)
    with sink:
        settings = settings_for(
            redis_server, any_imap_server, sink.account, quarantine_folder="Quarantine"
        )
        results = list(run_checks(settings, cli.open_redis, any_imap_server, sink.account))
        assert sink.messages == [], "a check sends nothing"
    assert all(isinstance(r, Passed) for r in results), results
    assert [r.name for r in results] == [
        "redis",
        "imap login",
        "imap folder 'INBOX'",
        "imap folder 'Quarantine'",
        "smtp",
    ]
    assert "Redis " in results[0].detail and f"logged in as {SMTP_USER}" in results[-1].detail


def test_a_wrong_imap_password_or_a_missing_folder_names_the_setting(
    any_imap_server: ImapAccount, redis_server: EmbeddedRedis
) -> None:
    smtp = SmtpAccount("127.0.0.1", 1, security="none")
    wrong = dataclasses.replace(any_imap_server, password="wrong-Imap-Secret")
    settings = settings_for(redis_server, wrong, smtp)
    [login] = list(check_imap(settings, wrong))
    assert isinstance(login, Failed) and login.name == "imap login"
    assert "MAILMENTOR_IMAP_PASSWORD" in login.fix
    assert "wrong-Imap-Secret" not in f"{login}"

    missing = dataclasses.replace(any_imap_server, folder="Nowhere")
    settings = settings_for(
        redis_server, missing, smtp, imap_folder="Nowhere", drafts_folder="Drafts"
    )
    results = list(check_imap(settings, missing))
    assert isinstance(results[0], Passed)
    folders = {r.name: r for r in results[1:]}
    assert set(folders) == {"imap folder 'Nowhere'", "imap folder 'Drafts'"}
    assert all(isinstance(r, Failed) for r in folders.values())
    assert "MAILMENTOR_IMAP_FOLDER" in folders["imap folder 'Nowhere'"].fix  # type: ignore[union-attr]
    assert "MAILMENTOR_DRAFTS_FOLDER" in folders["imap folder 'Drafts'"].fix  # type: ignore[union-attr]


def test_smtp_failures_name_the_setting_at_fault(
    redis_server: EmbeddedRedis,
    imap_server: ImapAccount,
    tls: tuple[ssl.SSLContext, ssl.SSLContext],
) -> None:
    sink = starttls_sink(tls)
    with sink:
        account = sink.account
        settings = settings_for(redis_server, imap_server, account)
        refused = check_smtp(settings, dataclasses.replace(sink.account, password="wrong-Smtp-pw"))
        assert isinstance(refused, Failed) and "MAILMENTOR_SMTP_PASSWORD" in refused.fix
        assert "535" in refused.problem and "wrong-Smtp-pw" not in f"{refused}"
        untrusted = check_smtp(settings, dataclasses.replace(sink.account, tls_context=None))
        assert isinstance(untrusted, Failed) and "MAILMENTOR_SMTP_SECURITY" in untrusted.fix
        plain = check_smtp(settings, dataclasses.replace(sink.account, security="none"))
        assert isinstance(plain, Failed), plain  # the sink wants STARTTLS before AUTH
    gone = check_smtp(settings, account)
    assert isinstance(gone, Failed) and "MAILMENTOR_SMTP_HOST" in gone.fix


def run_cli(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, env: dict[str, str]) -> int:
    monkeypatch.chdir(tmp_path)  # no .env of the developer's
    for name, value in env.items():
        monkeypatch.setenv(f"MAILMENTOR_{name}", value)
    return cli.main(["check"])


def test_the_command_prints_a_line_each_and_exits_1_on_a_failure(
    redis_server: EmbeddedRedis,
    imap_server: ImapAccount,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    with SmtpSink(credentials=(SMTP_USER, SMTP_PASSWORD)) as sink:
        env = {
            "REDIS_URL": redis_server.url,
            "DATA_DIR": str(tmp_path / "data"),
            "SECRET_KEY": "check-test",
            "IMAP_HOST": imap_server.host,
            "IMAP_PORT": str(imap_server.port),
            "IMAP_USER": imap_server.user,
            "IMAP_PASSWORD": imap_server.password,
            "IMAP_SECURITY": "none",
            "SMTP_HOST": sink.account.host,
            "SMTP_PORT": str(sink.account.port),
            "SMTP_USER": SMTP_USER,
            "SMTP_PASSWORD": SMTP_PASSWORD,
            "SMTP_SECURITY": "none",
        }
        assert run_cli(monkeypatch, tmp_path, env) == 0
        out = capsys.readouterr().out.splitlines()
        assert [line.split()[0] for line in out] == ["ok"] * 4, out
        env["IMAP_PASSWORD"] = "wrong-Imap-Secret"
        assert run_cli(monkeypatch, tmp_path, env) == 1
    out = capsys.readouterr().out
    assert "FAIL  imap login:" in out and "fix: check MAILMENTOR_IMAP_USER" in out
    assert "wrong-Imap-Secret" not in out and SMTP_PASSWORD not in out


def test_nothing_configured_is_the_demo_and_passes(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    for name in ("IMAP_HOST", "SMTP_HOST", "REDIS_URL"):
        monkeypatch.delenv(f"MAILMENTOR_{name}", raising=False)
    assert run_cli(monkeypatch, tmp_path, {"DATA_DIR": str(tmp_path / "data")}) == 0
    out = capsys.readouterr().out
    assert out.startswith("ok    redis: embedded, Redis ")
    assert "skip  imap: MAILMENTOR_IMAP_HOST is not set" in out
    assert "skip  smtp: MAILMENTOR_SMTP_HOST is not set" in out
    assert Skipped  # the type behind "skip"
