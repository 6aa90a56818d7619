"""Where a mailbox lives and how to reach it: the account, logging in, and one-shot APPENDs.

Every connection goes through `open_folder`, so TLS modes, TCP_NODELAY and the mapping of
library errors to LoginError/MailboxError (never with the password in them) live in one place.
"""

from __future__ import annotations

import contextlib
import imaplib
import re
import socket
import ssl
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from imapclient import IMAPClient
from imapclient.exceptions import CapabilityError, IMAPClientError
from imapclient.exceptions import LoginError as ClientLoginError

from mailmentor.errors import (
    FolderNotFound,
    LoginError,
    MailboxError,
    MailboxTlsError,
    MailboxUnreachable,
)
from mailmentor.oauth.bearer import BearerTokens

Security = Literal["ssl", "starttls", "none"]

IMAP_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    EOFError,
    imaplib.IMAP4.error,
    IMAPClientError,
)
"""What the socket or the IMAP protocol raise: each call site turns them into a MailboxError."""

CONNECTION_ERRORS: tuple[type[BaseException], ...] = (*IMAP_ERRORS, MailboxError)
"""Errors that mean "the connection is gone or unusable": reconnect, don't crash."""


@dataclass(frozen=True)
class ImapAccount:
    """Where a watched mailbox lives and how to log in; the password never shows in repr()."""

    host: str
    port: int
    user: str
    password: str = field(repr=False)
    security: Security = "ssl"
    folder: str = "INBOX"
    ssl_context: ssl.SSLContext | None = field(default=None, repr=False, compare=False)
    #: Sign in with OAuth2 (XOAUTH2) with these tokens (`mailmentor.oauth.AccessTokens`),
    #: asked before every login; None: the password.
    token: BearerTokens | None = field(default=None, repr=False, compare=False)

    @property
    def key(self) -> str:
        """Names this mailbox for checkpoints and leases."""
        return f"{self.user}@{self.host}:{self.port}/{self.folder}"

    @property
    def where(self) -> str:
        """Who logs in where, for people: ``ada@example.com on imap.example.com:993`` (the
        user is often an address itself, so ``user@host`` would read as a third address)."""
        return f"{self.user} on {self.host}:{self.port}"

    @property
    def label(self) -> str:
        """Short human-readable name for log lines: ``ada@example.com on imap.example.com:993
        (INBOX)``. Only for people; `key` names the mailbox in the store."""
        return f"{self.where} ({self.folder})"


_APPENDUID = re.compile(rb"\[APPENDUID\s+\d+\s+(\d+)\]", re.I)


def appended_uid(response: bytes | str | None) -> int | None:
    """The UID from an APPEND response carrying ``[APPENDUID v uid]`` (RFC 4315), else None."""
    if response is None:
        return None
    data = response.encode("ascii", "replace") if isinstance(response, str) else response
    match = _APPENDUID.search(data)
    return int(match.group(1)) if match else None


def scrub_secret(text: str, secret: str) -> str:
    """Remove a secret from text that is about to reach a log or an exception."""
    return text.replace(secret, "***") if secret else text


def _nodelay(client: IMAPClient) -> None:
    """APPEND is written in two sends; without TCP_NODELAY Nagle stalls each one (FIELD-NOTES)."""
    with contextlib.suppress(OSError, AttributeError):
        client.socket().setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def shutdown(client: IMAPClient) -> None:
    """Drop the connection without a goodbye, for when LOGOUT failed or cannot be tried."""
    with contextlib.suppress(Exception):
        client.shutdown()


def open_folder(
    account: ImapAccount, timeout: float, *, readonly: bool = True
) -> tuple[IMAPClient, dict[bytes, Any]]:
    """Connect, secure, log in and EXAMINE (or SELECT) the folder; returns client and reply."""
    where = f"{account.host}:{account.port}"
    context = account.ssl_context
    if context is None and account.security != "none":
        context = ssl.create_default_context()
    try:
        client = IMAPClient(
            account.host,
            port=account.port,
            ssl=account.security == "ssl",
            ssl_context=context if account.security == "ssl" else None,
            timeout=timeout,
        )
    except (ssl.SSLError, ssl.CertificateError) as exc:
        raise MailboxTlsError(f"TLS failure talking to IMAP server {where}: {exc}") from exc
    except IMAP_ERRORS as exc:
        raise MailboxUnreachable(f"cannot reach IMAP server {where}: {exc}") from exc
    try:
        _nodelay(client)
        if account.security == "starttls" and context is not None:
            _starttls(client, context, where)
        _login(client, account)
        reply = _select(client, account, readonly=readonly)
    except BaseException:
        shutdown(client)
        raise
    return client, reply


def _starttls(client: IMAPClient, context: ssl.SSLContext, where: str) -> None:
    try:
        client.starttls(context)
    except CapabilityError as exc:
        raise MailboxTlsError(f"IMAP server {where} does not offer STARTTLS") from exc
    except (ssl.SSLError, ssl.CertificateError) as exc:
        raise MailboxTlsError(f"TLS failure talking to IMAP server {where}: {exc}") from exc
    except IMAP_ERRORS as exc:
        raise MailboxTlsError(f"STARTTLS failed with IMAP server {where}: {exc}") from exc
    _nodelay(client)


def _login(client: IMAPClient, account: ImapAccount) -> None:
    who = account.where
    if account.token is not None:
        _oauth2_login(client, account, who)
        return
    try:
        client.login(account.user, account.password)
    except ClientLoginError as exc:
        said = scrub_secret(str(exc), account.password)
        raise LoginError(f"IMAP login failed for {who}: {said}") from None
    except IMAP_ERRORS as exc:
        said = scrub_secret(str(exc), account.password)
        raise MailboxError(f"IMAP login for {who} broke off: {said}") from None


def _oauth2_login(client: IMAPClient, account: ImapAccount, who: str) -> None:
    """XOAUTH2 (or OAUTHBEARER, RFC 7628, where only that is offered) with a fresh access
    token; AuthorizationNeeded (a LoginError) when there is none to be had, OAuthUnavailable
    (a connection error) when the provider is down."""
    assert account.token is not None
    offered = "XOAUTH2" if client.has_capability("AUTH=XOAUTH2") else "OAUTHBEARER"
    if not client.has_capability(f"AUTH={offered}"):
        offered = "XOAUTH2"  # not advertised at all: the one every provider takes

    def login(token: str) -> None:
        if offered == "OAUTHBEARER":
            client.oauthbearer_login(account.user, token)
        else:
            client.oauth2_login(account.user, token)

    token = account.token.token()
    try:
        try:
            login(token)
        except ClientLoginError:
            # imapclient reports a connection lost mid-AUTHENTICATE as a refusal too: a
            # connection that does not answer NOOP is a connection error, not a bad token.
            client.noop()
            # Revoked early (a policy change, a password reset) or a clock out of step: once
            # more with a new token; a refused refresh raises AuthorizationNeeded from here.
            token = account.token.renewed()
            login(token)
    except ClientLoginError as exc:
        said = scrub_secret(str(exc), token)
        raise LoginError(
            f"IMAP OAuth2 login ({offered}) refused for {who}: {said} (is the IMAP scope "
            "granted, and IMAP enabled for the mailbox?)"
        ) from None
    except IMAP_ERRORS as exc:
        said = scrub_secret(str(exc), token)
        raise MailboxError(f"IMAP login for {who} broke off: {said}") from None


def _select(client: IMAPClient, account: ImapAccount, *, readonly: bool = True) -> dict[bytes, Any]:
    try:
        reply: dict[bytes, Any] = client.select_folder(account.folder, readonly=readonly)
    except (imaplib.IMAP4.abort, OSError, EOFError) as exc:
        raise MailboxError(f"lost IMAP server {account.host}:{account.port}: {exc}") from exc
    except (imaplib.IMAP4.error, IMAPClientError) as exc:
        raise FolderNotFound(
            f"cannot open folder {account.folder!r} of {account.where}: {exc}"
        ) from exc
    return reply


def connect(account: ImapAccount, timeout: float = 30) -> IMAPClient:
    """Log in with the account's TLS mode and EXAMINE its folder (read-only: nothing gets \\Seen).

    Raises LoginError for refused credentials and MailboxError for everything else (host
    unreachable, TLS failure, missing folder); neither ever contains the password.
    """
    client, _ = open_folder(account, timeout)
    return client


def append_message(
    account: ImapAccount, raw: bytes, folder: str | None = None, flags: Sequence[str] = ()
) -> int | None:
    """APPEND raw mail to ``folder`` (default: the account's); the new UID if the server says it."""
    target = folder or account.folder
    client = connect(account)
    try:
        try:
            response = client.append(target, raw, flags=tuple(flags))
        except IMAP_ERRORS as exc:
            raise MailboxError(
                f"cannot append to folder {target!r} of {account.where}: {exc}"
            ) from exc
    finally:
        logout(client)
    return appended_uid(response)


def logout(client: IMAPClient) -> None:
    """Say goodbye to the server; a connection that will not log out is just dropped."""
    try:
        client.logout()
    except Exception:
        shutdown(client)
