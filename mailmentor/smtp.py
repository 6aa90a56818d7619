"""Send one message over SMTP (aiosmtplib), with errors that say whether a retry can help.

Workers retry :class:`TemporarySendError` (4xx, refused or dropped connections, timeouts) with
backoff and record :class:`PermanentSendError` (5xx, bad credentials, TLS misconfiguration) on the
loop without retrying. Error messages name ``host:port`` and the SMTP code, never the password.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import getaddresses, parseaddr
from typing import Literal

import aiosmtplib

from mailmentor.errors import PermanentSendError, SendError, TemporarySendError

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


def _client(account: SmtpAccount) -> aiosmtplib.SMTP:
    return aiosmtplib.SMTP(
        hostname=account.host,
        port=account.port,
        use_tls=account.security == "ssl",
        start_tls=account.security == "starttls",
        tls_context=account.tls_context,
        timeout=account.timeout,
    )


async def send_message(account: SmtpAccount, message: EmailMessage) -> None:
    """Send ``message``: envelope sender is its From address, recipients its To (and Cc).

    Raises TemporarySendError (retry) or PermanentSendError (give up); nothing else.
    """
    sender, recipients = envelope(message)
    if not sender or not recipients:
        missing = "From" if not sender else "To"
        raise PermanentSendError(f"SMTP {account.where}: message has no {missing} address")
    with _mapped_errors(account):
        raw = _flatten(message)
    client = _client(account)
    transport: asyncio.BaseTransport | None = None
    try:
        with _mapped_errors(account):
            await client.connect()  # and STARTTLS when configured
            if account.user:
                # Logging in here, not in connect(), keeps the transport ours to abort on failure.
                await client.login(account.user, account.password or "")
            options: list[str] = []
            if client.supports_extension("8bitmime"):
                options.append("BODY=8BITMIME")
            if not (sender + "".join(recipients)).isascii() and client.supports_extension(
                "smtputf8"
            ):
                options.append("SMTPUTF8")
            await client.sendmail(sender, recipients, raw, mail_options=options)
        transport = client.transport  # quit() closes it gracefully, which may not finish
        with contextlib.suppress(aiosmtplib.SMTPException, OSError, TimeoutError):
            await client.quit()  # the message is accepted; a failed goodbye changes nothing
    finally:
        # abort(), not a graceful TLS close: that needs loop turns that asyncio.run may not give,
        # and would leave the socket open. After QUIT (or a failure) nothing is lost.
        for open_transport in (transport, client.transport):
            if isinstance(open_transport, asyncio.Transport):
                open_transport.abort()
        client.close()
        await asyncio.sleep(0)  # let the transport close its socket before the loop ends


def send_message_sync(account: SmtpAccount, message: EmailMessage) -> None:
    """:func:`send_message` for threads without an event loop (dramatiq worker threads)."""
    asyncio.run(send_message(account, message))
