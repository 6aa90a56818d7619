"""SMTP sending against a real aiosmtpd server on loopback: delivery, error mapping, TLS."""

from __future__ import annotations

import asyncio
import dataclasses
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from mailmentor.errors import PermanentSendError, SendError, TemporarySendError
from mailmentor.model import ActionKind, Loop, Person, PlannedAction, Stage
from mailmentor.reminders import ReminderContext, build_reminder
from mailmentor.sandbox.smtp_sink import ReceivedMessage, SmtpSink
from mailmentor.smtp import (
    SmtpAccount,
    SmtpConnection,
    classify,
    envelope,
    send_message,
    send_message_sync,
)
from mailmentor.tokens import parse_reply_address
from tests.waiting import wait_for

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
SERVICE = "mentor@example.com"


def reminder() -> EmailMessage:
    loop = Loop(
        id="k3v9x2abqe",
        mentor=Person(address="zoe@example.de", name="Zoë Müller-Lüdenscheidt"),
        subject="Preisgestaltung für das nächste Geschäftsjahr",
        created_at=T0,
        stage_entered_at=T0,
        message_ids=["ask1@example.com"],
        advice_excerpt="Charge more.",
    )
    action = PlannedAction(
        kind=ActionKind.REMIND, due_at=T0, stage=Stage.ADVISED, sequence=1, rule="advice.advised"
    )
    ctx = ReminderContext(SERVICE, "me@example.com", b"secret", ZoneInfo("UTC"), T0)
    return build_reminder(loop, action, ctx)


def plain(to: str = "me@example.com") -> EmailMessage:
    message = EmailMessage()
    message["From"] = f"mailmentor <{SERVICE}>"
    message["To"] = to
    message["Subject"] = "hello"
    message.set_content("body")
    return message


def test_reminder_arrives_with_headers_intact(smtp_sink: SmtpSink) -> None:
    sent = reminder()
    send_message_sync(smtp_sink.account, sent)
    (received,) = smtp_sink.wait_for(1)
    assert received.mail_from == SERVICE
    assert received.rcpt_tos == ("me@example.com",)
    got = received.message
    for name in ("Subject", "Message-ID", "In-Reply-To", "References", "Reply-To", "Date"):
        assert got[name] == sent[name], name
    assert got["Subject"] == "[mailmentor] Zoë: Preisgestaltung für das nächste Geschäftsjahr"
    assert got["Auto-Submitted"] == "auto-generated"
    assert parse_reply_address(got["Reply-To"], SERVICE) is not None
    part = got.get_body(("plain",))
    assert part is not None and "Zoë Müller-Lüdenscheidt" in part.get_content()


def test_async_send_and_several_recipients(smtp_sink: SmtpSink) -> None:
    message = plain("me@example.com, Other Me <other@example.com>")
    message["Cc"] = "cc@example.com"
    asyncio.run(send_message(smtp_sink.account, message))
    (received,) = smtp_sink.wait_for(1)
    assert received.rcpt_tos == ("me@example.com", "other@example.com", "cc@example.com")


def test_envelope() -> None:
    message = plain("A <a@example.com>, b@example.com, a@example.com")
    assert envelope(message) == (SERVICE, ["a@example.com", "b@example.com"])


def test_missing_recipient_is_permanent() -> None:
    message = plain()
    del message["To"]
    with pytest.raises(PermanentSendError, match="no To"):
        send_message_sync(SmtpAccount("127.0.0.1", 1, security="none"), message)


def test_451_is_temporary_and_then_succeeds(smtp_sink: SmtpSink) -> None:
    smtp_sink.fail_next(451)
    with pytest.raises(TemporarySendError) as caught:
        send_message_sync(smtp_sink.account, plain())
    assert caught.value.code == 451
    assert f"127.0.0.1:{smtp_sink.account.port}" in str(caught.value)
    assert "451" in str(caught.value)
    assert smtp_sink.messages == []
    send_message_sync(smtp_sink.account, plain())
    assert len(smtp_sink.wait_for(1)) == 1


def test_550_is_permanent(smtp_sink: SmtpSink) -> None:
    smtp_sink.fail_next(550, times=2)
    for _ in range(2):
        with pytest.raises(PermanentSendError) as caught:
            send_message_sync(smtp_sink.account, plain())
        assert caught.value.code == 550
    assert not isinstance(caught.value, TemporarySendError)
    send_message_sync(smtp_sink.account, plain())
    smtp_sink.wait_for(1)


def test_fail_next_rejects_success_codes(smtp_sink: SmtpSink) -> None:
    with pytest.raises(ValueError, match="250"):
        smtp_sink.fail_next(250)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_connection_refused_is_temporary() -> None:
    account = SmtpAccount("127.0.0.1", free_port(), security="none", timeout=2)
    with pytest.raises(TemporarySendError) as caught:
        send_message_sync(account, plain())
    assert caught.value.code is None
    assert f"127.0.0.1:{account.port}" in str(caught.value)


@pytest.fixture
def rude_server() -> Iterator[tuple[int, threading.Event]]:
    """A TCP server that accepts and then either hangs up or stays silent (set the event)."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    stop, silent = threading.Event(), threading.Event()
    held: list[socket.socket] = []

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            if silent.is_set():
                held.append(conn)
            else:
                conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield int(listener.getsockname()[1]), silent
    finally:
        stop.set()
        thread.join(5)
        for conn in held:
            conn.close()
        listener.close()


def test_dropped_connection_is_temporary(rude_server: tuple[int, threading.Event]) -> None:
    port, _ = rude_server
    with pytest.raises(TemporarySendError):
        send_message_sync(SmtpAccount("127.0.0.1", port, security="none", timeout=2), plain())


def test_silent_server_times_out_temporarily(rude_server: tuple[int, threading.Event]) -> None:
    port, silent = rude_server
    silent.set()
    with pytest.raises(TemporarySendError):
        send_message_sync(SmtpAccount("127.0.0.1", port, security="none", timeout=0.5), plain())


@pytest.mark.parametrize("security", ["starttls", "ssl"])
def test_tls_with_auth(security: str, tls: tuple[ssl.SSLContext, ssl.SSLContext]) -> None:
    server, client = tls
    sink = SmtpSink(
        security="ssl" if security == "ssl" else "starttls",
        tls_context=server,
        client_tls_context=client,
        credentials=("mailmentor", "pw-Secret-123"),
    )
    with sink:
        account = sink.account
        assert account.security == security
        assert "pw-Secret-123" not in repr(account)
        send_message_sync(account, reminder())
        assert sink.wait_for(1)[0].mail_from == SERVICE

        with pytest.raises(PermanentSendError) as caught:
            send_message_sync(dataclasses.replace(account, password="wrong-pw-Secret"), plain())
        assert caught.value.code == 535
        assert "wrong-pw-Secret" not in str(caught.value)

        untrusted = dataclasses.replace(account, tls_context=None)
        with pytest.raises(PermanentSendError, match="TLS"):
            send_message_sync(untrusted, plain())


def test_starttls_required_but_not_used_is_permanent(
    tls: tuple[ssl.SSLContext, ssl.SSLContext],
) -> None:
    server, _ = tls
    with SmtpSink(security="starttls", tls_context=server) as sink:
        with pytest.raises(PermanentSendError) as caught:
            send_message_sync(dataclasses.replace(sink.account, security="none"), plain())
        assert caught.value.code == 530


def test_password_never_in_error_text() -> None:
    import aiosmtplib

    account = SmtpAccount("smtp.example.com", 587, user="u", password="hunter2-secret")
    exc = aiosmtplib.SMTPAuthenticationError(535, "bad credentials for hunter2-secret")
    error = classify(exc, account)
    assert isinstance(error, PermanentSendError)
    assert "hunter2-secret" not in str(error)
    assert "smtp.example.com:587" in str(error)


@pytest.mark.parametrize(
    ("codes", "kind", "code"),
    [([450, 451], TemporarySendError, 450), ([451, 550], PermanentSendError, 550)],
)
def test_refused_recipients(codes: list[int], kind: type[SendError], code: int) -> None:
    import aiosmtplib

    refused = [aiosmtplib.SMTPRecipientRefused(c, "nope", f"r{c}@x") for c in codes]
    error = classify(aiosmtplib.SMTPRecipientsRefused(refused), SmtpAccount("h", 25))
    assert type(error) is kind
    assert error.code == code


def test_sink_callback_clear_and_stop() -> None:
    seen: list[ReceivedMessage] = []
    sink = SmtpSink(on_message=seen.append)
    account = sink.start()
    assert sink.start() is account
    send_message_sync(account, plain())
    assert sink.wait_for(1) and len(seen) == 1
    with pytest.raises(TimeoutError, match="2 message"):
        sink.wait_for(2, timeout=0.1)
    sink.clear()
    assert sink.messages == []
    sink.stop()
    sink.stop()
    with pytest.raises(RuntimeError):
        _ = sink.account
    with pytest.raises(TemporarySendError):
        send_message_sync(dataclasses.replace(account, timeout=2), plain())


def test_a_failing_callback_does_not_break_the_server() -> None:
    def boom(_: ReceivedMessage) -> None:
        raise RuntimeError("callback failed")

    with SmtpSink(on_message=boom) as sink:
        send_message_sync(sink.account, plain())
        assert len(sink.wait_for(1)) == 1


# -- a kept connection (SmtpConnection) ---------------------------------------------------------


def numbered(n: int) -> EmailMessage:
    message = plain()
    message.replace_header("Subject", f"hello {n}")
    message["Message-ID"] = f"<kept-{n}@example.com>"
    return message


def received_ids(sink: SmtpSink) -> list[str]:
    return [str(m.message["Message-ID"]) for m in sink.messages]


@pytest.fixture
def connection(smtp_sink: SmtpSink) -> Iterator[SmtpConnection]:
    kept = SmtpConnection(smtp_sink.account)
    try:
        yield kept
    finally:
        kept.close()


def test_a_kept_connection_sends_many_messages_over_one_session(
    smtp_sink: SmtpSink, connection: SmtpConnection
) -> None:
    for n in range(30):
        connection.send(numbered(n))
    assert len(smtp_sink.wait_for(30)) == 30
    assert received_ids(smtp_sink) == [f"<kept-{n}@example.com>" for n in range(30)]
    assert (smtp_sink.sessions, connection.sessions, smtp_sink.open_sessions) == (1, 1, 1)
    connection.close()
    connection.close()  # twice is harmless
    wait_for(lambda: smtp_sink.open_sessions == 0, what="the session closed")
    with pytest.raises(RuntimeError, match="after close"):
        connection.send(numbered(30))


def test_after_the_servers_idle_timeout_the_next_send_reconnects(
    smtp_sink: SmtpSink, connection: SmtpConnection
) -> None:
    connection.send(numbered(1))
    smtp_sink.drop_sessions()
    wait_for(lambda: smtp_sink.open_sessions == 0, what="the server closing the session")
    connection.send(numbered(2))
    smtp_sink.wait_for(2)
    assert received_ids(smtp_sink) == ["<kept-1@example.com>", "<kept-2@example.com>"]
    assert smtp_sink.sessions == 2


def test_a_hang_up_at_mail_on_a_reused_session_is_sent_again_on_a_new_one(
    smtp_sink: SmtpSink, connection: SmtpConnection
) -> None:
    """The server dropped the session before the message: it cannot have it, so the connection
    sends it once more, on a new session, and the caller sees a success."""
    connection.send(numbered(1))
    smtp_sink.hang_up_next("MAIL")
    connection.send(numbered(2))
    connection.send(numbered(3))
    smtp_sink.wait_for(3)
    assert received_ids(smtp_sink) == [f"<kept-{n}@example.com>" for n in (1, 2, 3)]
    assert (smtp_sink.sessions, connection.sessions) == (2, 2)


def test_a_hang_up_on_a_new_session_is_not_tried_again(
    smtp_sink: SmtpSink, connection: SmtpConnection
) -> None:
    """On a session just opened a hang-up is the server's answer, not a stale session: the
    caller's retry (with backoff) decides."""
    smtp_sink.hang_up_next("MAIL")
    with pytest.raises(TemporarySendError) as caught:
        connection.send(numbered(1))
    assert f"127.0.0.1:{smtp_sink.account.port}" in str(caught.value)
    assert connection.sessions == 1
    connection.send(numbered(2))
    smtp_sink.wait_for(1)
    assert received_ids(smtp_sink) == ["<kept-2@example.com>"]


def test_a_hang_up_after_the_data_is_temporary_and_not_sent_again(
    smtp_sink: SmtpSink, connection: SmtpConnection
) -> None:
    """Once DATA is under way the server may have the message (here it has: its 250 was lost):
    the connection does not send it again; whether to is the caller's decision."""
    connection.send(numbered(1))
    smtp_sink.hang_up_next("DATA")
    with pytest.raises(TemporarySendError) as caught:
        connection.send(numbered(2))
    assert f"127.0.0.1:{smtp_sink.account.port}" in str(caught.value)
    connection.send(numbered(3))  # on a new session
    smtp_sink.wait_for(3)
    assert received_ids(smtp_sink) == [f"<kept-{n}@example.com>" for n in (1, 2, 3)]
    assert (smtp_sink.sessions, connection.sessions) == (2, 2)


def test_a_session_is_replaced_before_the_servers_message_limit(smtp_sink: SmtpSink) -> None:
    account = dataclasses.replace(smtp_sink.account, max_messages=3)
    kept = SmtpConnection(account)
    try:
        for n in range(7):
            kept.send(numbered(n))
        smtp_sink.wait_for(7)
        assert (smtp_sink.sessions, kept.sessions) == (3, 3)  # 3 + 3 + 1
        wait_for(lambda: smtp_sink.open_sessions == 1, what="full sessions closed")
    finally:
        kept.close()


def test_a_session_idle_too_long_is_replaced(smtp_sink: SmtpSink) -> None:
    kept = SmtpConnection(dataclasses.replace(smtp_sink.account, max_idle=0.0))
    try:
        for n in range(3):
            kept.send(numbered(n))
        smtp_sink.wait_for(3)
        assert (smtp_sink.sessions, kept.sessions) == (3, 3)
    finally:
        kept.close()


def test_a_kept_connection_maps_errors_and_hides_the_password(
    tls: tuple[ssl.SSLContext, ssl.SSLContext],
) -> None:
    server, client = tls
    sink = SmtpSink(
        security="starttls",
        tls_context=server,
        client_tls_context=client,
        credentials=("mailmentor", "pw-Secret-123"),
    )
    with sink:
        wrong = SmtpConnection(dataclasses.replace(sink.account, password="wrong-pw-Secret"))
        try:
            with pytest.raises(PermanentSendError) as caught:
                wrong.send(plain())
            assert caught.value.code == 535
            assert f"127.0.0.1:{sink.account.port}" in str(caught.value)
            assert "wrong-pw-Secret" not in str(caught.value)
        finally:
            wrong.close()
        kept = SmtpConnection(sink.account)
        try:
            kept.send(numbered(1))
            kept.send(numbered(2))
            sink.fail_next(451)
            with pytest.raises(TemporarySendError) as temporary:
                kept.send(numbered(3))
            assert temporary.value.code == 451 and "pw-Secret-123" not in str(temporary.value)
            kept.send(numbered(4))
            assert [str(m.message["Message-ID"]) for m in sink.wait_for(3)] == [
                f"<kept-{n}@example.com>" for n in (1, 2, 4)
            ]
        finally:
            kept.close()
    refused = SmtpConnection(SmtpAccount("127.0.0.1", free_port(), security="none", timeout=2))
    try:
        with pytest.raises(TemporarySendError) as gone:
            refused.send(plain())
        assert f"127.0.0.1:{refused.account.port}" in str(gone.value)
    finally:
        refused.close()


def test_an_interrupted_send_does_not_finish_later_on_its_own() -> None:
    """An exception raised in the thread while the send waits for the server (dramatiq's time
    limit raises one so) ends that send: the next send's loop run must not complete it behind
    the caller's back (the caller's retry would then mail it a second time)."""
    from aiosmtpd.controller import Controller

    class SlowForSome:
        async def handle_RCPT(
            self, server: object, session: object, envelope: Any, address: str, options: object
        ) -> str:
            if address.startswith("slow"):
                await asyncio.sleep(1.0)
            envelope.rcpt_tos.append(address)
            return "250 OK"

        async def handle_DATA(self, server: object, session: object, envelope: Any) -> str:
            received.append(envelope.rcpt_tos[0])
            return "250 OK"

    def interrupt() -> None:
        raise KeyboardInterrupt  # escapes the event loop, leaving the send's task pending

    received: list[str] = []
    controller = Controller(SlowForSome(), hostname="127.0.0.1", port=free_port())
    controller.start()
    kept = SmtpConnection(SmtpAccount("127.0.0.1", controller.port, security="none", timeout=10))
    try:
        kept.send(addressed("first@example.com"))  # the session is now a reused one
        kept._loop.call_later(0.3, interrupt)  # while RCPT waits for its answer
        with pytest.raises(KeyboardInterrupt):
            kept.send(addressed("slow@example.com"))
        kept.send(addressed("after@example.com"))
        time.sleep(1.5)  # past the slow answer: a send left pending would have gone on by now
        kept.send(addressed("last@example.com"))  # its loop run would finish it at the latest
        assert received == ["first@example.com", "after@example.com", "last@example.com"]
    finally:
        kept.close()
        controller.stop()


def addressed(to: str) -> EmailMessage:
    message = plain()
    message.replace_header("To", to)
    return message
