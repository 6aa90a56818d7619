"""The README's OAuth2 path as a user walks it, each step a real `mailmentor` process: `connect`
(device code entered by the test, as the user would in a browser), `connect --status`, `check`
signing in to Dovecot and SMTP with XOAUTH2, and `disconnect`. No password is set anywhere."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis

from mailmentor.embedded_redis import EmbeddedRedis
from mailmentor.imap import ImapAccount, append_message
from mailmentor.oauth import AccessTokens, TokenVault
from mailmentor.sandbox.smtp_sink import SmtpSink
from mailmentor.store import open_store
from tests import mail_factory as mf
from tests.faults.processes import Mailmentor, base_environment
from tests.faults.rig import REMIND_AFTER_2S
from tests.oauth.support import provider_of
from tests.servers.dovecot import DovecotServer
from tests.servers.oauth_server import AuthServer
from tests.store_support import all_loops
from tests.waiting import wait_for

USER = "grace@mailmentor.test"


def environment(tmp_path: Path, **settings: str) -> dict[str, str]:
    """An environment of nothing but these MAILMENTOR_* settings (no .env, no secrets dir)."""
    return base_environment(tmp_path) | {f"MAILMENTOR_{k.upper()}": v for k, v in settings.items()}


def mailmentor(env: dict[str, str], *args: str, cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "mailmentor.cli", *args],
        env=env,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def finished(process: subprocess.Popen[str]) -> tuple[int, str]:
    out, _ = process.communicate(timeout=60)
    return process.returncode, out


def test_connect_check_and_disconnect_with_no_password_anywhere(
    redis_server: EmbeddedRedis,
    authority: AuthServer,
    oauth_dovecot: DovecotServer,
    tmp_path: Path,
) -> None:
    def valid(user: str, token: str) -> bool:
        return authority.active(token) == user

    with SmtpSink(bearer=valid) as sink:
        env = environment(
            tmp_path,
            **{
                "REDIS_URL": redis_server.url,
                "USER_ID": "oauth-cli",
                "DATA_DIR": str(tmp_path / "data"),
                "SECRET_KEY": "oauth-cli-secret",
                "IMAP_HOST": oauth_dovecot.host,
                "IMAP_PORT": str(oauth_dovecot.port),
                "IMAP_USER": USER,
                "IMAP_SECURITY": "none",
                "IMAP_AUTH": "oauth2",
                "SMTP_HOST": sink.account.host,
                "SMTP_PORT": str(sink.account.port),
                "SMTP_SECURITY": "none",
                "SMTP_AUTH": "oauth2",
                "OAUTH_PROVIDER": "generic",
                "OAUTH_CLIENT_ID": authority.client_id,
                "OAUTH_TOKEN_URL": authority.token_url,
                "OAUTH_DEVICE_URL": authority.device_url,
                "OAUTH_SCOPES": "imap smtp offline_access",
            },
        )
        connecting = mailmentor(env, "connect", cwd=tmp_path)
        assert connecting.stdout is not None
        prompt = connecting.stdout.readline()
        code = re.search(r"enter the code (\d+)", prompt)
        assert code, prompt
        authority.approve(code.group(1), USER)  # the user signs in on another device
        status, out = finished(connecting)
        assert status == 0, out
        assert f"connected {USER} to generic" in out

        status, out = finished(mailmentor(env, "connect", "--status", cwd=tmp_path))
        assert status == 0 and f"{USER}: connected to generic" in out
        assert "rt-" not in out and "at-" not in out, "no token is ever printed"

        status, out = finished(mailmentor(env, "check", cwd=tmp_path))
        assert status == 0, out
        lines = [line.split()[0] + " " + line.split()[1] for line in out.splitlines()]
        assert lines == ["ok redis:", "ok oauth2:", "ok imap", "ok imap", "ok smtp:"], out
        assert f"logged in as {USER}" in out

        # `run` signs in with XOAUTH2 and tracks mail across an early-expired access token and
        # a connection the server dropped.
        env["MAILMENTOR_IMAP_IDLE_RENEW"] = "2"
        env["MAILMENTOR_SERVICE_ADDRESS"] = mf.SERVICE
        env["MAILMENTOR_USER_ADDRESSES"] = mf.USER
        env["MAILMENTOR_SCHEDULER_INTERVAL"] = "0.2"
        (tmp_path / "rules").mkdir()
        (tmp_path / "rules" / "rules.yaml").write_text(REMIND_AFTER_2S)
        env["MAILMENTOR_RULES_DIR"] = str(tmp_path / "rules")
        running = Mailmentor(tmp_path, env, "run-oauth").start()
        try:
            running.wait_running()
            store = open_store(redis.Redis.from_url(redis_server.url), "oauth-cli")
            imap = ImapAccount(
                oauth_dovecot.host, oauth_dovecot.port, USER, "", security="none",
                token=AccessTokens(
                    TokenVault(store.client, store.ns, b"oauth-cli-secret"),
                    provider_of(authority), USER,
                ),
            )  # fmt: skip
            append_message(imap, mf.ask("<cli-ask-1@client.example>"))
            wait_for(lambda: len(all_loops(store)) == 1 or None, "the first loop", timeout=30)
            authority.expire_access_tokens()
            oauth_dovecot.kick(USER)
            append_message(imap, mf.ask("<cli-ask-2@client.example>", subject="Another?"))
            wait_for(lambda: len(all_loops(store)) == 2 or None, "the second loop", timeout=30)
            # Each ask's reminder goes out over SMTP, signed in with XOAUTH2.
            reminders = wait_for(lambda: len(sink.messages) >= 2 or None, "reminders", 30)
            assert reminders and all(m.rcpt_tos == (mf.USER,) for m in sink.messages)
        finally:
            running.stop()
        log = running.log()
        assert "ERROR" not in log and "Traceback" not in log, log[-3000:]
        store.client.close()

        status, out = finished(mailmentor(env, "disconnect", cwd=tmp_path))
        assert status == 0 and "tokens deleted" in out
        status, out = finished(mailmentor(env, "check", cwd=tmp_path))
        assert status == 1 and "FAIL  oauth2:" in out and "run `mailmentor connect generic`" in out


def test_a_revoked_authorisation_is_said_once_mailed_once_and_nothing_is_lost(
    redis_server: EmbeddedRedis,
    authority: AuthServer,
    oauth_dovecot: DovecotServer,
    tmp_path: Path,
) -> None:
    from datetime import UTC, datetime, timedelta

    from imapclient import IMAPClient

    from mailmentor.oauth import TokenSet

    user = "hopper@mailmentor.test"
    secret = b"oauth-revoke-secret"
    store = open_store(redis.Redis.from_url(redis_server.url), "oauth-revoke")
    vault = TokenVault(store.client, store.ns, secret)
    now = datetime.now(UTC)
    vault.save(
        TokenSet(user, "generic", "at-x", now - timedelta(seconds=1), authority.grant(user),
                 "imap", now, now)
    )  # fmt: skip

    def append(raw: bytes) -> None:
        """As the user's mail client would: with a sign-in of its own."""
        from mailmentor.oauth.endpoints import post_form

        form = {"grant_type": "refresh_token", "refresh_token": authority.grant(user)}
        answer = post_form(authority.token_url, form | {"client_id": authority.client_id})
        client = IMAPClient(oauth_dovecot.host, port=oauth_dovecot.port, ssl=False)
        try:
            client.oauth2_login(user, answer["access_token"])
            client.append("INBOX", raw)
        finally:
            client.logout()

    with SmtpSink(credentials=("notices", "notice-pw")) as sink:
        env = environment(
            tmp_path,
            **{
                "REDIS_URL": redis_server.url,
                "USER_ID": "oauth-revoke",
                "DATA_DIR": str(tmp_path / "data"),
                "SECRET_KEY": secret.decode(),
                "IMAP_HOST": oauth_dovecot.host,
                "IMAP_PORT": str(oauth_dovecot.port),
                "IMAP_USER": user,
                "IMAP_SECURITY": "none",
                "IMAP_AUTH": "oauth2",
                "IMAP_IDLE_RENEW": "2",
                "SMTP_HOST": sink.account.host,
                "SMTP_PORT": str(sink.account.port),
                "SMTP_SECURITY": "none",
                "SMTP_USER": "notices",
                "SMTP_PASSWORD": "notice-pw",
                "SERVICE_ADDRESS": mf.SERVICE,
                "USER_ADDRESSES": mf.USER,
                "OAUTH_PROVIDER": "generic",
                "OAUTH_CLIENT_ID": authority.client_id,
                "OAUTH_TOKEN_URL": authority.token_url,
                "OAUTH_DEVICE_URL": authority.device_url,
                "OAUTH_SCOPES": "imap",
            },
        )
        running = Mailmentor(tmp_path, env, "run-revoke").start()
        try:
            running.wait_running()
            append(mf.ask("<rv-1@client.example>"))
            wait_for(lambda: len(all_loops(store)) == 1 or None, "the first loop", timeout=30)

            authority.revoke(user)  # consent withdrawn: every grant and token of the user
            oauth_dovecot.kick(user)
            append(mf.ask("<rv-2@client.example>", subject="While signed out?"))
            notice = wait_for(lambda: sink.messages or None, "the notice", timeout=30)
            assert notice[0].message["Subject"] == "mailmentor needs you to sign in again"
            assert "mailmentor connect generic" in notice[0].message.get_body().get_content()
            status, out = finished(mailmentor(env, "status", cwd=tmp_path))
            assert status == 0 and "RE-AUTHORISATION NEEDED" in out, out
            status, out = finished(mailmentor(env, "digest", cwd=tmp_path))
            assert status == 0 and "Needs you: mailmentor cannot sign in to" in out, out
            logins = oauth_dovecot.log_tail(10**7).count(f"user=<{user}>")
            time.sleep(6)  # more than one look of the watcher: still one line, one mail ...
            assert len(all_loops(store)) == 1 and len(sink.messages) == 1
            # ... and no connection to the mail server while the sign-in is refused.
            assert oauth_dovecot.log_tail(10**7).count(f"user=<{user}>") == logins

            connecting = mailmentor(env, "connect", cwd=tmp_path)
            assert connecting.stdout is not None
            code = re.search(r"enter the code (\d+)", connecting.stdout.readline())
            assert code
            authority.approve(code.group(1), user)
            assert finished(connecting)[0] == 0
            wait_for(lambda: len(all_loops(store)) == 2 or None, "the waiting mail", timeout=30)
        finally:
            running.stop()
    log = running.log()
    assert log.count("ERROR") == 1 and "run `mailmentor connect generic`" in log, log[-3000:]
    assert f"signed in to {user} on 127.0.0.1:" in log and "Traceback" not in log
    assert len(sink.messages) == 1
    store.client.close()


def test_connect_in_the_browser_comes_back_to_the_loopback_port_asked_for(
    redis_server: EmbeddedRedis, authority: AuthServer, tmp_path: Path
) -> None:
    import socket
    import urllib.error
    import urllib.request

    with socket.socket() as probe:  # a free port, as a user picks one to forward over SSH
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    authority.approve_as = "lovelace@mailmentor.test"
    env = environment(
        tmp_path,
        **{
            "REDIS_URL": redis_server.url,
            "USER_ID": "oauth-browser",
            "DATA_DIR": str(tmp_path / "data"),
            "SECRET_KEY": "oauth-browser-secret",
            "IMAP_USER": "lovelace@mailmentor.test",
            "OAUTH_PROVIDER": "generic",
            "OAUTH_CLIENT_ID": authority.client_id,
            "OAUTH_TOKEN_URL": authority.token_url,
            "OAUTH_AUTHORIZATION_URL": authority.authorization_url,
            "OAUTH_SCOPES": "imap smtp",
        },
    )
    connecting = mailmentor(env, "connect", "--port", str(port), cwd=tmp_path)
    assert connecting.stdout is not None
    url = ""
    while not url:
        line = connecting.stdout.readline()
        assert line, "connect ended before printing the sign-in address"
        found = re.search(r"(http://\S+/authorize\?\S+)", line)
        url = found.group(1) if found else ""
    assert f"redirect_uri=http%3A%2F%2F127.0.0.1%3A{port}%2F" in url

    class Stay(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: object, **kwargs: object) -> None:
            return None

    try:  # the browser: the provider's page redirects to the loopback port
        urllib.request.build_opener(Stay).open(url)
        raise AssertionError("no redirect")
    except urllib.error.HTTPError as redirect:
        location = redirect.headers["Location"]
        redirect.close()
    with urllib.request.urlopen(location) as page:
        assert b"connected" in page.read()
    status, out = finished(connecting)
    assert status == 0 and "connected lovelace@mailmentor.test to generic" in out, out
    assert "set MAILMENTOR_IMAP_AUTH=oauth2 and MAILMENTOR_SMTP_AUTH=oauth2 to use it" in out


def test_connect_refuses_a_provider_the_service_would_not_refresh_with(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from mailmentor import cli

    monkeypatch.chdir(tmp_path)
    for name, value in {
        "DATA_DIR": str(tmp_path / "data"),
        "IMAP_USER": "ada@example.com",
        "OAUTH_PROVIDER": "microsoft",
        "OAUTH_CLIENT_ID": "abc",
    }.items():
        monkeypatch.setenv(f"MAILMENTOR_{name}", value)
    assert cli.main(["connect", "google"]) == 2
    err = capsys.readouterr().err
    assert "MAILMENTOR_OAUTH_PROVIDER is 'microsoft'" in err and "connect microsoft" in err
