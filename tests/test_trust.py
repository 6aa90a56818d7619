"""Trust: with REQUIRE_AUTHENTICATION, the user's mail must carry their own server's pass."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from mailmentor.app import identity
from mailmentor.errors import ConfigError
from mailmentor.intake import Identity, Ignored, OutgoingMail, classify
from mailmentor.parsing.message import (
    MAX_AUTH_RESULT_CHARS,
    MAX_AUTH_RESULTS,
    Address,
    parse_message,
)
from mailmentor.settings import load_settings, require_mail_accounts
from tests.environment import clean_environment

USER = "ada@example.com"
SERVICE = "mentor@example.com"
SERVER = "mx.example.com"
PLAIN = Identity(user_addresses=(USER,), service_address=SERVICE)
REQUIRED = Identity(user_addresses=(USER,), service_address=SERVICE, authserv_id=SERVER)
ALAN = Address("alan@example.org", "Alan Kay")


def mail(*auth: str, sender: str = f"Ada <{USER}>") -> bytes:
    """The user's BCC'd ask as the service's mailbox stores it, newest header first."""
    lines = [f"Authentication-Results: {value}" for value in auth]
    lines += [
        "Received: from out.example.com by mx.example.com; Mon, 05 Jan 2026 09:00:01 +0000",
        f"From: {sender}",
        "To: Alan Kay <alan@example.org>",
        "Subject: Advice on pricing page?",
        "Date: Mon, 05 Jan 2026 09:00:00 +0000",
        "Message-ID: <ask-1@client.example>",
        "Content-Type: text/plain; charset=utf-8",
        "",
        "Alan, what would you change first on our pricing page?",
    ]
    return "\r\n".join(lines).encode()


PASS = (
    f"{SERVER};\r\n\tdkim=pass header.d=example.com header.s=s1;\r\n\tspf=pass smtp.mailfrom={USER}"
)
FAIL = (
    f"{SERVER}; dkim=fail (bad signature) header.d=example.com; spf=softfail smtp.mailfrom={USER}"
)
FORGED = "mx.attacker.example; dkim=pass header.d=example.com; spf=pass smtp.mailfrom=example.com"


@pytest.mark.parametrize(
    ("raw", "who", "expected"),
    [
        (mail(PASS), REQUIRED, OutgoingMail((ALAN,))),
        (mail(FAIL, PASS), REQUIRED, OutgoingMail((ALAN,))),  # one aligned pass is enough
        (
            mail(FAIL),
            REQUIRED,
            Ignored("sender not verified: dkim=fail, spf=softfail for example.com"),
        ),
        (
            mail(),
            REQUIRED,
            Ignored("sender not verified: no Authentication-Results from mx.example.com"),
        ),
        (
            mail(FORGED),
            REQUIRED,
            Ignored(
                "sender not verified: no Authentication-Results from mx.example.com"
                " (seen: mx.attacker.example)"
            ),
        ),
        # Someone else's pass for their own domain does not vouch for the user's From.
        (
            mail(f"{SERVER}; dkim=pass header.d=attacker.example"),
            REQUIRED,
            Ignored("sender not verified: dkim=pass (attacker.example) for example.com"),
        ),
        # Not required: exactly as before, whatever the headers say.
        (mail(), PLAIN, OutgoingMail((ALAN,))),
        (mail(FAIL), PLAIN, OutgoingMail((ALAN,))),
        # The user-address check still comes first.
        (
            mail(PASS, sender="Eve <eve@example.com>"),
            REQUIRED,
            Ignored("not from a user address (eve@example.com)"),
        ),
    ],
)
def test_classify(raw: bytes, who: Identity, expected: object) -> None:
    assert classify(parse_message(raw), who) == expected


def test_parsed_message_keeps_authentication_results_unfolded_and_in_order() -> None:
    msg = parse_message(mail(PASS, FORGED))
    assert msg.authentication_results == (
        f"{SERVER}; dkim=pass header.d=example.com header.s=s1; spf=pass smtp.mailfrom={USER}",
        FORGED,
    )


def test_authentication_results_are_bounded() -> None:
    many = parse_message(mail(*[f"mx{i}.example.com; none" for i in range(50)]))
    assert len(many.authentication_results) == MAX_AUTH_RESULTS
    assert many.authentication_results[0] == "mx0.example.com; none"

    # Cut back to a whole resinfo: a domain cut short into the user's own never reaches the check.
    head, tail = f"{SERVER}; iprev=pass policy.note=", "; dkim=pass header.d=example.com"
    filler = "x" * (MAX_AUTH_RESULT_CHARS - len(head) - len(tail))
    long = head + filler + tail + ".evil.org"
    assert long[:MAX_AUTH_RESULT_CHARS].endswith("header.d=example.com")  # the naive cut
    assert parse_message(mail(long)).authentication_results == (head + filler,)
    assert classify(parse_message(mail(long)), REQUIRED) == Ignored(
        "sender not verified: no dkim, spf or dmarc result for example.com"
    )
    # No ';' within reach: nothing is kept.
    assert parse_message(mail(SERVER + " " + "y" * 5000)).authentication_results == ()


@pytest.mark.parametrize(
    "value",
    [
        b'"unterminated; dkim=pass header.d=example.com',
        b"(((((((((((((((( mx.example.com; dkim=pass header.d=example.com",
        b"=?utf-8?b?bXguZXhhbXBsZS5jb20=?=; dkim=pass header.d=example.com",
        b"mx.example.com; dkim=pass header.d=\xff.example.com",
        b"mx.example.com; dkim=pass header.d=\x00\r\n\r\nbody",
        b"\xff\xfe\x00",
        b"",
    ],
)
def test_hostile_authentication_results_never_raise_nor_verify(value: bytes) -> None:
    raw = mail(PASS).replace(PASS.encode(), value)
    msg = parse_message(raw)
    assert isinstance(classify(msg, REQUIRED), Ignored)


# --- settings ------------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    """No developer variables, no .env pickup, no /run/secrets: only what each test sets."""
    clean_environment(monkeypatch, tmp_path)
    monkeypatch.setenv("MAILMENTOR_DATA_DIR", str(tmp_path / "data"))
    yield tmp_path


COMPLETE = {
    "imap_host": "imap.example.com",
    "imap_user": "ada",
    "imap_password": "pw",
    "smtp_host": "smtp.example.com",
    "service_address": SERVICE,
    "user_addresses": [USER],
}


def test_off_by_default_and_identity_requires_nothing() -> None:
    settings = load_settings(**COMPLETE)
    assert (settings.require_authentication, settings.authserv_id) == (False, "")
    require_mail_accounts(settings)
    assert identity(settings).authserv_id == ""


def test_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAILMENTOR_REQUIRE_AUTHENTICATION", "true")
    monkeypatch.setenv(
        "MAILMENTOR_AUTHSERV_ID", " MX4.MessagingEngine.com , mx5.messagingengine.com"
    )
    settings = load_settings(**COMPLETE)
    require_mail_accounts(settings)
    assert identity(settings).authserv_id == "mx4.messagingengine.com,mx5.messagingengine.com"


def test_an_authserv_id_alone_does_not_turn_checking_on() -> None:
    settings = load_settings(**COMPLETE, authserv_id=SERVER)
    assert identity(settings).authserv_id == ""


def test_required_without_authserv_id_is_a_config_error() -> None:
    settings = load_settings(**COMPLETE, require_authentication=True)
    message = (
        "MAILMENTOR_AUTHSERV_ID: missing (needed because MAILMENTOR_REQUIRE_AUTHENTICATION is on)"
    )
    with pytest.raises(ConfigError) as caught:
        require_mail_accounts(settings)
    assert str(caught.value) == message
    with pytest.raises(ConfigError, match=r"^MAILMENTOR_AUTHSERV_ID: missing"):
        identity(settings)  # fails closed even where require_mail_accounts is not called


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("AUTHSERV_ID", "mx example com", "MAILMENTOR_AUTHSERV_ID: 'mx example com' is not an"),
        ("AUTHSERV_ID", "mx.example.com;", "MAILMENTOR_AUTHSERV_ID: 'mx.example.com;' is not"),
        ("REQUIRE_AUTHENTICATION", "maybe", "MAILMENTOR_REQUIRE_AUTHENTICATION: Input should"),
    ],
)
def test_bad_values_name_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, message: str
) -> None:
    monkeypatch.setenv(f"MAILMENTOR_{variable}", value)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert str(caught.value).startswith(message)
