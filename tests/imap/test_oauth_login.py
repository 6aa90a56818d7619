"""Signing in with OAuth2 on real servers: Dovecot's oauth2 passdb and an aiosmtpd server both
validate bearer tokens against the suite's authorization server (RFC 7662 introspection).

The watcher signs in with XOAUTH2, IDLEs, and tracks mail across an access token the provider
revoked early and a connection the server dropped; a reminder goes out over SMTP XOAUTH2.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from datetime import UTC, datetime, timedelta

import pytest

from mailmentor.imap import ImapAccount, MailboxWatcher, append_message
from mailmentor.oauth import AccessTokens, TokenSet
from mailmentor.sandbox.smtp_sink import SmtpSink
from mailmentor.smtp import send_message_sync
from mailmentor.store import Store
from tests import mail_factory as mf
from tests.oauth.support import USER, provider_of, vault_on
from tests.servers.dovecot import DovecotServer
from tests.servers.oauth_server import AuthServer
from tests.service_factory import services_on
from tests.store_support import all_loops
from tests.waiting import wait_for


def connect_account(authority: AuthServer, store: Store, user: str) -> AccessTokens:
    """What `mailmentor connect` leaves behind, for a grant the server really made."""
    now = datetime.now(UTC)
    expired = now - timedelta(seconds=1)
    grant = authority.grant(user)
    vault_on(store).save(TokenSet(user, "generic", "at-unused", expired, grant, "mail", now, now))
    return AccessTokens(vault_on(store), provider_of(authority), user)


def test_the_watcher_signs_in_with_xoauth2_and_keeps_tracking_mail(
    oauth_dovecot: DovecotServer,
    authority: AuthServer,
    store: Store,
    caplog: pytest.LogCaptureFixture,
) -> None:
    user = f"oauth-{id(store)}@mailmentor.test"
    tokens = connect_account(authority, store, user)
    account = ImapAccount(
        oauth_dovecot.host, oauth_dovecot.port, user, "", security="none", token=tokens
    )
    services = services_on(store, mf.USER, mf.SERVICE)
    watcher = MailboxWatcher(
        account, store.checkpoints, services.intake.handle_raw, idle_renew=2.0, backoff_max=2.0
    )
    thread = threading.Thread(target=watcher.run, daemon=True)
    thread.start()
    try:
        append_message(account, mf.ask("<ask-1@client.example>"))
        wait_for(lambda: len(all_loops(store)) == 1 or None, "the first ask's loop")
        refreshes = authority.token_grants("refresh_token")

        # The provider ends every access token early; the server drops the session.
        authority.expire_access_tokens()
        oauth_dovecot.kick(user)
        append_message(account, mf.ask("<ask-2@client.example>", subject="Second question?"))
        wait_for(lambda: len(all_loops(store)) == 2 or None, "the second ask's loop", timeout=30)
        assert authority.token_grants("refresh_token") > refreshes, "a new token was fetched"
    finally:
        watcher.stop()
        thread.join(20)
    assert "XOAUTH2" in oauth_dovecot.log_tail(20_000)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text


def test_a_token_for_someone_else_does_not_open_the_mailbox(
    oauth_dovecot: DovecotServer, authority: AuthServer, store: Store
) -> None:
    from mailmentor.errors import LoginError
    from mailmentor.imap import connect

    mallory = connect_account(authority, store, "mallory@mailmentor.test")
    host, port = oauth_dovecot.host, oauth_dovecot.port
    account = ImapAccount(host, port, "ada@mailmentor.test", "", security="none", token=mallory)
    with pytest.raises(LoginError, match=r"OAuth2 login \(XOAUTH2\) refused"):
        connect(account)


def test_a_reminder_goes_out_over_smtp_xoauth2(authority: AuthServer, store: Store) -> None:
    tokens = connect_account(authority, store, USER)

    def valid(user: str, token: str) -> bool:
        return authority.active(token) == user

    with SmtpSink(bearer=valid) as sink:
        account = dataclasses.replace(sink.account, user=USER, token=tokens)
        send_message_sync(account, reminder())
        assert len(sink.wait_for(1)) == 1
        authority.expire_access_tokens()  # revoked early: the next send renews it once
        send_message_sync(account, reminder())
        assert len(sink.wait_for(2)) == 2
        stranger = connect_account(authority, store, "mallory@mailmentor.test")
        from mailmentor.errors import TemporarySendError

        # Not given up on (the reminder waits for a person to fix the sign-in), and said so.
        with pytest.raises(TemporarySendError, match="refused the OAuth2 sign-in") as refused:
            send_message_sync(dataclasses.replace(account, token=stranger), reminder())
        assert refused.value.code == 535


def reminder() -> object:
    from email.message import EmailMessage

    msg = EmailMessage()
    msg["From"] = mf.SERVICE
    msg["To"] = mf.USER
    msg["Subject"] = "Report back to Alan"
    msg.set_content("How did it go?\n")
    return msg


def test_a_server_offering_only_oauthbearer_is_signed_in_with_it(
    authority: AuthServer, store: Store
) -> None:
    from mailmentor.imap import connect
    from mailmentor.imap.account import logout

    server = DovecotServer(
        oauth2_introspection_url=authority.introspection_url, oauth2_mechanisms="oauthbearer"
    )
    server.start()
    try:
        tokens = connect_account(authority, store, USER)
        account = ImapAccount(server.host, server.port, USER, "", security="none", token=tokens)
        logout(connect(account))
        assert "method=OAUTHBEARER" in server.log_tail(20_000)
    finally:
        server.stop()
