"""A real SMTP server (aiosmtpd, in a thread, on a free loopback port) that records what arrives.

Tests and the demo send through the real client code path and then look at what actually
arrived; ``fail_next`` makes the server answer like a busy or refusing one, to exercise retries.
``sessions`` counts the SMTP sessions clients opened; ``drop_sessions`` closes the open ones as a
server's idle timeout does, and ``hang_up_next`` hangs up in the middle of a transaction.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import functools
import logging
import ssl
import threading
import weakref
from base64 import b64decode
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage
from types import TracebackType
from typing import Any, Literal, Self

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

from mailmentor.smtp import SmtpAccount

log = logging.getLogger(__name__)

SinkSecurity = Literal["none", "starttls", "ssl"]
#: Where ``hang_up_next`` hangs up: on MAIL (before anything of the message was sent), or after
#: the message's data arrived and was recorded, before the server's 250 (a lost reply).
HangUp = Literal["MAIL", "DATA"]


@dataclass(frozen=True)
class ReceivedMessage:
    """One message as the server received it: envelope, raw bytes and the parsed message."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    raw: bytes

    @functools.cached_property
    def message(self) -> EmailMessage:
        """Parsed when first read, not before the server's 250: parsing (several ms a message)
        would otherwise set the pace of every client, as no real server's reply waits for it."""
        parsed = email.message_from_bytes(self.raw, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed


class _Controller(Controller):
    """Controller that binds port 0 and reads the real port back before its start-up probe."""

    def _trigger_server(self) -> None:
        if self.port == 0 and isinstance(self.server, asyncio.Server):
            self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()  # type: ignore[no-untyped-call]


class _Handler:
    def __init__(self, sink: SmtpSink) -> None:
        self._sink = sink

    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname
        self._sink._greeted(server)
        return responses

    async def handle_HELO(self, server: Any, session: Any, envelope: Any, hostname: str) -> str:
        session.host_name = hostname
        self._sink._greeted(server)
        return f"250 {server.hostname}"

    async def handle_MAIL(
        self, server: Any, session: Any, envelope: Any, address: str, mail_options: list[str]
    ) -> str:
        if self._sink._take_hang_up("MAIL"):
            server.transport.close()
            return "421 closing"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        failure = self._sink._take_failure()
        if failure is not None:
            return failure
        raw = bytes(envelope.original_content or envelope.content or b"")
        received = ReceivedMessage(
            mail_from=str(envelope.mail_from or ""),
            rcpt_tos=tuple(str(r) for r in envelope.rcpt_tos),
            raw=raw,
        )
        self._sink._record(received)
        if self._sink._take_hang_up("DATA"):
            server.transport.close()
        return "250 OK"


class _BearerHandler(_Handler):
    """Also takes AUTH XOAUTH2 (``user=...^Aauth=Bearer TOKEN^A^A``, base64)."""

    async def auth_XOAUTH2(self, server: Any, args: list[str]) -> AuthResult:
        check = self._sink._bearer
        if len(args) < 2 or check is None:
            return AuthResult(success=False, handled=False)
        try:
            fields = dict(
                part.split("=", 1) for part in b64decode(args[1]).decode().split("\x01") if part
            )
            user, token = fields["user"], fields["auth"].removeprefix("Bearer ")
        except (ValueError, KeyError, UnicodeDecodeError):
            return AuthResult(success=False, handled=False)
        ok = bool(await asyncio.to_thread(check, user, token))
        return AuthResult(success=ok, handled=False)


class SmtpSink:
    """An SMTP server for tests and the demo; ``start()`` returns the account to send through.

    ``security`` with a server ``tls_context`` serves implicit TLS ("ssl") or requires STARTTLS;
    ``credentials`` makes it check AUTH (535 on a wrong password); ``bearer`` makes it take
    XOAUTH2, asking ``bearer(user, token)`` whether the token is valid for that user.
    """

    def __init__(
        self,
        on_message: Callable[[ReceivedMessage], None] | None = None,
        *,
        security: SinkSecurity = "none",
        tls_context: ssl.SSLContext | None = None,
        client_tls_context: ssl.SSLContext | None = None,
        credentials: tuple[str, str] | None = None,
        bearer: Callable[[str, str], bool] | None = None,
    ) -> None:
        if security != "none" and tls_context is None:
            raise ValueError(f"SmtpSink security={security!r} needs a server tls_context")
        self._on_message = on_message
        self._security: SinkSecurity = security
        self._tls_context = tls_context
        self._client_tls_context = client_tls_context
        self._credentials = credentials
        self._bearer = bearer
        self._messages: list[ReceivedMessage] = []
        self._failures: list[str] = []
        self._hang_ups: list[HangUp] = []
        self._sessions = 0
        #: Server sides of the sessions clients opened (one per connection, STARTTLS or not).
        self._servers: weakref.WeakSet[SMTP] = weakref.WeakSet()
        self._changed = threading.Condition()
        self._controller: _Controller | None = None
        self._account: SmtpAccount | None = None

    # --- lifecycle ---------------------------------------------------------------------------

    def _authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> AuthResult:
        if self._credentials is None or not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        user, password = self._credentials
        ok = auth_data.login == user.encode() and auth_data.password == password.encode()
        return AuthResult(success=ok, handled=False)

    def start(self) -> SmtpAccount:
        """Start serving on 127.0.0.1 (a free port) and return the account that reaches it."""
        if self._account is not None:
            return self._account
        kwargs: dict[str, Any] = {"server_hostname": "mailmentor-sink", "ready_timeout": 10.0}
        if self._security == "ssl":
            kwargs["ssl_context"] = self._tls_context
        elif self._security == "starttls":
            kwargs["tls_context"] = self._tls_context
            kwargs["require_starttls"] = True
        if self._credentials is not None or self._bearer is not None:
            kwargs["authenticator"] = self._authenticate
            kwargs["auth_require_tls"] = self._security == "starttls"
        handler = _BearerHandler(self) if self._bearer is not None else _Handler(self)
        controller = _Controller(handler, hostname="127.0.0.1", port=0, **kwargs)
        controller.start()
        self._controller = controller
        user, password = self._credentials or (None, None)
        self._account = SmtpAccount(
            host="127.0.0.1",
            port=int(controller.port),
            user=user,
            password=password,
            security=self._security,
            tls_context=self._client_tls_context,
            timeout=10.0,
        )
        return self._account

    def stop(self) -> None:
        """Stop serving; safe to call twice."""
        controller, self._controller = self._controller, None
        self._account = None
        if controller is not None:
            controller.stop()

    @property
    def account(self) -> SmtpAccount:
        """The account of the running server."""
        if self._account is None:
            raise RuntimeError("SmtpSink is not started")
        return self._account

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # --- what arrived ------------------------------------------------------------------------

    @property
    def messages(self) -> list[ReceivedMessage]:
        """A copy of every message received so far, oldest first."""
        with self._changed:
            return list(self._messages)

    def wait_for(self, count: int, timeout: float = 10.0) -> list[ReceivedMessage]:
        """Block until at least ``count`` messages arrived; TimeoutError naming the count if not."""
        with self._changed:
            if not self._changed.wait_for(lambda: len(self._messages) >= count, timeout):
                raise TimeoutError(
                    f"SMTP sink: expected {count} message(s) within {timeout:g}s, "
                    f"got {len(self._messages)}"
                )
            return list(self._messages)

    def fail_next(self, code: int, times: int = 1) -> None:
        """Answer the next ``times`` DATA commands with ``code`` (e.g. 451 or 550)."""
        if not 400 <= code <= 599:
            raise ValueError(f"fail_next: {code} is not an SMTP failure code (400–599)")
        text = "try later" if code < 500 else "no"
        with self._changed:
            self._failures.extend([f"{code} {text}"] * times)

    def hang_up_next(self, at: HangUp, times: int = 1) -> None:
        """Hang up on the next ``times`` clients' MAIL commands, or after the next messages'
        data arrived (each is recorded as received, but its 250 never reaches the client)."""
        with self._changed:
            self._hang_ups.extend([at] * times)

    @property
    def sessions(self) -> int:
        """SMTP sessions opened so far (connections that greeted with EHLO or HELO)."""
        with self._changed:
            return self._sessions

    @property
    def open_sessions(self) -> int:
        """Sessions whose connection is still open."""
        with self._changed:
            return sum(1 for server in self._servers if server.transport is not None)

    def drop_sessions(self) -> None:
        """Close every open session from the server's side, as its idle timeout would."""
        controller = self._controller
        if controller is None:
            return
        with self._changed:
            transports = [s.transport for s in self._servers if s.transport is not None]
        done = threading.Event()

        def close() -> None:
            for transport in transports:
                transport.close()
            done.set()

        controller.loop.call_soon_threadsafe(close)
        done.wait(10)

    def clear(self) -> None:
        """Forget received messages, pending failures and hang-ups, and the session count."""
        with self._changed:
            self._messages.clear()
            self._failures.clear()
            self._hang_ups.clear()
            self._sessions = 0

    # --- called from the server thread -------------------------------------------------------

    def _take_failure(self) -> str | None:
        with self._changed:
            return self._failures.pop(0) if self._failures else None

    def _take_hang_up(self, at: HangUp) -> bool:
        with self._changed:
            if self._hang_ups and self._hang_ups[0] == at:
                self._hang_ups.pop(0)
                return True
            return False

    def _greeted(self, server: SMTP) -> None:
        """EHLO or HELO: a new session, unless it is the greeting again after STARTTLS."""
        with self._changed:
            if server not in self._servers:
                self._servers.add(server)
                self._sessions += 1

    def _record(self, received: ReceivedMessage) -> None:
        """Run the callback first, so whoever waits for the message also sees its effect."""
        if self._on_message is not None:
            try:
                self._on_message(received)
            except Exception:  # the server thread must keep serving
                log.exception("SmtpSink on_message callback failed")
        with self._changed:
            self._messages.append(received)
            self._changed.notify_all()
