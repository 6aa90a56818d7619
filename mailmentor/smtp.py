"""Send mail over SMTP (aiosmtplib), with errors that say whether a retry can help.

Workers retry :class:`TemporarySendError` (4xx, refused or dropped connections, timeouts) with
backoff and record :class:`PermanentSendError` (5xx, bad credentials, TLS misconfiguration) on the
loop without retrying. Error messages name ``host:port`` and the SMTP code, never the password.

:func:`send_message` sends one message over a connection of its own. A :class:`SmtpConnection`
keeps one SMTP session open for many messages from one thread (each send worker thread has one),
and opens a new one when the server has closed it, after ``max_messages`` messages and after
``max_idle`` seconds unused. A send that fails on a reused session before the DATA command is
tried once more on a new session: the server cannot have taken that message yet. Once DATA is
under way no send is repeated here, since the server may have accepted it (its 250 after the
data is the commit point) and only the caller's retry, after its own checks, may send it again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import getaddresses, parseaddr
from typing import Any, Literal

import aiosmtplib

from mailmentor.errors import PermanentSendError, SendError, TemporarySendError
from mailmentor.oauth.bearer import BearerTokens
from mailmentor.oauth.endpoints import OAuthError

log = logging.getLogger("mailmentor.smtp")

Security = Literal["ssl", "starttls", "none"]
#: TLS errors that mean "the connection went away", not "the configuration is wrong".
_TLS_DROPPED = (ssl.SSLEOFError, ssl.SSLZeroReturnError, ssl.SSLSyscallError)


@dataclass(frozen=True)
class SmtpAccount:
    """Where and how to send; the password never shows in repr or error messages."""

    host: str
    port: int
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    security: Security = "starttls"
    tls_context: ssl.SSLContext | None = None
    timeout: float = 30.0
    #: A reused session is replaced after this many messages (servers limit messages per
    #: connection, commonly to 100) ...
    max_messages: int = 100
    #: ... and when it has been unused this many seconds (servers close idle sessions after a
    #: few minutes; RFC 5321 asks for at least 5).
    max_idle: float = 60.0
    #: Sign in with OAuth2 (XOAUTH2, as ``user``) with these tokens, asked before every
    #: login; None: the password.
    token: BearerTokens | None = field(default=None, repr=False, compare=False)

    @property
    def where(self) -> str:
        return f"{self.host}:{self.port}"


def envelope(message: EmailMessage) -> tuple[str, list[str]]:
    """(sender, recipients): the From address, and every To and Cc address (no Bcc is written)."""
    sender = parseaddr(str(message.get("From", "")))[1]
    values = [str(v) for name in ("To", "Cc") for v in message.get_all(name, [])]
    recipients = [address for _, address in getaddresses(values) if address]
    return sender, list(dict.fromkeys(recipients))


def _flatten(message: EmailMessage) -> bytes:
    """The message as sent: its own policy (which keeps ids verbatim) with CRLF line ends."""
    policy = message.policy.clone(linesep="\r\n")
    return message.as_bytes(policy=policy)


def _scrub(text: str, account: SmtpAccount) -> str:
    """A server could echo what it was sent; make sure the password never reaches a log."""
    if account.password:
        text = text.replace(account.password, "***")
    return " ".join(text.split())


def _tls_cause(exc: BaseException) -> ssl.SSLError | None:
    """The TLS error behind ``exc`` (aiosmtplib wraps it in a connect error), if any."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, ssl.SSLError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def classify(exc: BaseException, account: SmtpAccount) -> SendError:
    """Map an aiosmtplib/socket failure to a temporary (retry) or permanent (give up) error."""
    where = account.where
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        codes = [r.code for r in exc.recipients]
        details = "; ".join(f"{r.recipient}: {r.code} {r.message}" for r in exc.recipients)
        text = _scrub(f"SMTP {where} refused every recipient: {details}", account)
        permanent = [c for c in codes if 500 <= c <= 599]
        if permanent:
            return PermanentSendError(text, code=permanent[0])
        return TemporarySendError(text, code=codes[0] if codes else None)
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        text = _scrub(f"SMTP {where} answered {exc.code} {exc.message}", account)
        if 500 <= exc.code <= 599:
            return PermanentSendError(text, code=exc.code)
        return TemporarySendError(text, code=exc.code if exc.code > 0 else None)
    tls = _tls_cause(exc)
    if isinstance(tls, _TLS_DROPPED):
        return TemporarySendError(_scrub(f"SMTP {where}: TLS connection dropped: {tls}", account))
    if tls is not None:
        # A certificate or protocol mismatch is configuration: retrying cannot fix it.
        return PermanentSendError(_scrub(f"SMTP {where}: TLS failed: {tls}", account))
    if isinstance(exc, aiosmtplib.SMTPNotSupported) or type(exc) is aiosmtplib.SMTPException:
        # e.g. STARTTLS or AUTH not offered by the server: configuration again.
        text = _scrub(f"SMTP {where} does not support what is configured: {exc}", account)
        return PermanentSendError(text)
    if isinstance(exc, ValueError):
        return PermanentSendError(_scrub(f"SMTP {where}: cannot send: {exc}", account))
    if isinstance(exc, aiosmtplib.SMTPException | OSError | TimeoutError | EOFError):
        kind = type(exc).__name__
        return TemporarySendError(_scrub(f"SMTP {where} unreachable ({kind}): {exc}", account))
    return TemporarySendError(_scrub(f"SMTP {where} failed ({type(exc).__name__}): {exc}", account))


@contextlib.contextmanager
def _mapped_errors(account: SmtpAccount) -> Iterator[None]:
    try:
        yield
    except SendError:
        raise
    except (aiosmtplib.SMTPException, OSError, TimeoutError, EOFError, ValueError) as exc:
        raise classify(exc, account) from None


class _Client(aiosmtplib.SMTP):
    """aiosmtplib's client, noting when a transaction reached DATA: from then on the server
    may have accepted the message, so it must not be sent again on another connection."""

    data_started = False

    async def data(self, message: str | bytes, /, **kwargs: Any) -> aiosmtplib.SMTPResponse:
        self.data_started = True
        return await super().data(message, **kwargs)


def _client(account: SmtpAccount) -> _Client:
    return _Client(
        hostname=account.host,
        port=account.port,
        use_tls=account.security == "ssl",
        start_tls=account.security == "starttls",
        tls_context=account.tls_context,
        timeout=account.timeout,
    )


def _prepared(account: SmtpAccount, message: EmailMessage) -> tuple[str, list[str], bytes]:
    """(sender, recipients, the bytes to send); PermanentSendError when it cannot be sent."""
    sender, recipients = envelope(message)
    if not sender or not recipients:
        missing = "From" if not sender else "To"
        raise PermanentSendError(f"SMTP {account.where}: message has no {missing} address")
    with _mapped_errors(account):
        raw = _flatten(message)
    return sender, recipients, raw


async def _open(account: SmtpAccount) -> _Client:
    """A connected (and, when configured, STARTTLS'd and logged in) client; on failure none is
    left open. Raises what aiosmtplib raises (callers map it)."""
    client = _client(account)
    try:
        await client.connect()  # and STARTTLS when configured
        if account.user and account.token is not None:
            await _oauth2_login(client, account.user, account.token)
        elif account.user:
            # Logging in here, not in connect(), keeps the transport ours to abort on failure.
            await client.login(account.user, account.password or "")
    except BaseException:
        await _abort(client)
        raise
    return client


async def _oauth2_login(client: _Client, user: str, tokens: BearerTokens) -> None:
    """XOAUTH2; a refused token once more with a new one (it may have been revoked early).

    Every failure here is temporary for the sends (TemporarySendError): a sign-in to renew,
    a provider that is down, or a server that refuses even a fresh token (SMTP AUTH off for
    the mailbox, the scope not granted) wait for a person, and the reminders must not be
    given up meanwhile."""
    where = f"{client.hostname}:{client.port}"
    try:
        token = await asyncio.to_thread(tokens.token)  # may ask the provider (HTTP)
        try:
            await client.auth_xoauth2(user, token)
        except aiosmtplib.SMTPAuthenticationError:
            token = await asyncio.to_thread(tokens.renewed)
            await client.auth_xoauth2(user, token)
    except aiosmtplib.SMTPAuthenticationError as exc:
        raise TemporarySendError(
            f"SMTP {where} refused the OAuth2 sign-in of {user} ({exc.code} "
            f"{' '.join(exc.message.split())[:200]}): is SMTP AUTH enabled for the mailbox, "
            "and the SMTP scope granted?",
            code=exc.code,
        ) from None
    except OAuthError as exc:
        raise TemporarySendError(f"SMTP {where}: {exc}") from None


async def _transact(client: _Client, sender: str, recipients: list[str], raw: bytes) -> None:
    """One mail transaction (MAIL, RCPT, DATA) on an open session."""
    client.data_started = False
    options: list[str] = []
    if client.supports_extension("8bitmime"):
        options.append("BODY=8BITMIME")
    if not (sender + "".join(recipients)).isascii() and client.supports_extension("smtputf8"):
        options.append("SMTPUTF8")
    await client.sendmail(sender, recipients, raw, mail_options=options)


async def _abort(client: aiosmtplib.SMTP, transport: asyncio.BaseTransport | None = None) -> None:
    """Close at once: abort(), not a graceful TLS close, which needs loop turns that may not
    come and would leave the socket open."""
    for open_transport in (transport, client.transport):
        if isinstance(open_transport, asyncio.Transport):
            open_transport.abort()
    client.close()
    await asyncio.sleep(0)  # let the transport close its socket before the loop stops


async def _quit(client: aiosmtplib.SMTP, timeout: float) -> None:
    """Say goodbye, then close; a failed goodbye changes nothing (what was sent is accepted)."""
    transport = client.transport  # quit() closes it gracefully, which may not finish
    with contextlib.suppress(aiosmtplib.SMTPException, OSError, TimeoutError):
        if client.is_connected:
            await client.quit(timeout=timeout)
    await _abort(client, transport)


async def send_message(account: SmtpAccount, message: EmailMessage) -> None:
    """Send ``message`` over a connection of its own: envelope sender is its From address,
    recipients its To (and Cc).

    Raises TemporarySendError (retry) or PermanentSendError (give up); nothing else.
    """
    sender, recipients, raw = _prepared(account, message)
    client: _Client | None = None
    try:
        with _mapped_errors(account):
            client = await _open(account)
            await _transact(client, sender, recipients, raw)
        await _quit(client, account.timeout)
    finally:
        if client is not None:
            await _abort(client)


async def probe(account: SmtpAccount) -> None:
    """Connect, TLS and log in as configured, then QUIT: what a send does before MAIL FROM
    (`mailmentor check`). Raises what aiosmtplib raises; `tls_cause` finds a TLS failure."""
    client = await _open(account)
    await _quit(client, account.timeout)


def tls_cause(exc: BaseException) -> ssl.SSLError | None:
    """The TLS error behind ``exc`` (aiosmtplib wraps it in a connect error), if any."""
    return _tls_cause(exc)


def send_message_sync(account: SmtpAccount, message: EmailMessage) -> None:
    """:func:`send_message` for threads without an event loop."""
    asyncio.run(send_message(account, message))


#: Failures on a reused session that mean "the server closed it" (idle timeout, a restart, a
#: connection limit): a new session may well succeed.
_GONE = (aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPTimeoutError, OSError, EOFError)
#: 421: the server is closing the session (RFC 5321 4.2.2), e.g. at its idle timeout.
_CLOSING = 421
#: Seconds a goodbye (QUIT) may take before the session is simply closed.
QUIT_TIMEOUT = 2.0


def _session_gone(exc: BaseException) -> bool:
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return exc.code == _CLOSING
    return isinstance(exc, _GONE)


class SmtpConnection:
    """One SMTP session kept open across sends, for one thread (it owns an event loop).

    Not thread-safe: each send worker thread has its own. `close` ends the session; a
    connection is never left to the garbage collector.
    """

    def __init__(self, account: SmtpAccount) -> None:
        self.account = account
        self._loop = asyncio.new_event_loop()
        self._client: _Client | None = None
        self._sent = 0  # messages sent on the current session
        self._used_at = 0.0  # time.monotonic() of the session's last use
        self.sessions = 0  # sessions opened so far

    def send(self, message: EmailMessage) -> None:
        """Send ``message`` on the open session (or a new one); the errors of `send_message`."""
        if self._loop.is_closed():
            raise RuntimeError("SmtpConnection used after close()")
        sender, recipients, raw = _prepared(self.account, message)
        task = self._loop.create_task(self._send(sender, recipients, raw))
        try:
            self._loop.run_until_complete(task)
        except BaseException:
            # Interrupted while waiting (dramatiq's time limit raises in the thread): the send
            # must not go on by itself in this loop's next run, or it could mail again what
            # the caller's retry sends.
            self._cancel(task)
            self._discard()  # whatever went wrong, the next send starts a new session
            raise

    def close(self) -> None:
        """QUIT and close the session, and the event loop; safe to call twice."""
        if self._loop.is_closed():
            return
        try:
            client, self._client = self._client, None
            if client is not None:
                self._loop.run_until_complete(_quit(client, QUIT_TIMEOUT))
        finally:
            self._loop.close()

    async def _send(self, sender: str, recipients: list[str], raw: bytes) -> None:
        client = await self._session()
        reused = self._sent > 0
        try:
            with _mapped_errors(self.account):
                try:
                    await _transact(client, sender, recipients, raw)
                except Exception as exc:
                    await self._drop()
                    if not (reused and not client.data_started and _session_gone(exc)):
                        raise
                    log.debug("SMTP %s: session closed by the server (%s)", self.account.where, exc)
                    client = await self._session()
                    await _transact(client, sender, recipients, raw)
        except BaseException:
            await self._drop()
            raise
        self._sent += 1
        self._used_at = time.monotonic()

    async def _session(self) -> _Client:
        """The open session if it can take another message, else a new one."""
        client = self._client
        if client is not None:
            await asyncio.sleep(0)  # two loop turns: a close by the server while we were
            await asyncio.sleep(0)  # idle is noticed (EOF read, then connection lost)
            idle = time.monotonic() - self._used_at
            if self._sent >= self.account.max_messages:
                await self._drop(polite=True)
            elif idle > self.account.max_idle or not client.is_connected:
                await self._drop()
        if self._client is None:
            with _mapped_errors(self.account):
                self._client = await _open(self.account)
            self._sent = 0
            self.sessions += 1
        return self._client

    async def _drop(self, polite: bool = False) -> None:
        client, self._client = self._client, None
        if client is None:
            return
        if polite:
            await _quit(client, QUIT_TIMEOUT)
        else:
            await _abort(client)

    def _cancel(self, task: asyncio.Task[None]) -> None:
        if task.done() or self._loop.is_running():
            return
        task.cancel()
        with contextlib.suppress(BaseException):
            self._loop.run_until_complete(task)

    def _discard(self) -> None:
        """After a failure (or an interruption) inside the loop: no session is kept."""
        client, self._client = self._client, None
        if client is not None and not self._loop.is_running():
            self._loop.run_until_complete(_abort(client))
