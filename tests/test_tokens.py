"""Reminder tokens: round trips, tampering, plus-address services, hostile input."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailmentor.tokens import (
    loop_token,
    parse_reminder_message_id,
    parse_reply_address,
    reminder_message_id,
    reply_address,
    verify_token,
)

SECRET = b"test-secret"
LOOP = "k3v9x2abqe"
loop_ids = st.text(alphabet="abcdefghijklmnopqrstuvwxyz234567", min_size=10, max_size=10)


def test_token_shape_and_determinism() -> None:
    token = loop_token(SECRET, LOOP)
    assert len(token) == 10
    assert set(token) <= set("abcdefghijklmnopqrstuvwxyz234567")
    assert loop_token(SECRET, LOOP) == token
    assert loop_token(b"other-secret", LOOP) != token
    assert loop_token(SECRET, "k3v9x2abqf") != token


@pytest.mark.parametrize(
    ("given_token", "expected"),
    [
        (loop_token(SECRET, LOOP), True),
        (loop_token(SECRET, LOOP).upper(), True),
        (f"  {loop_token(SECRET, LOOP)} ", True),
        (loop_token(SECRET, LOOP)[:-1] + "a", loop_token(SECRET, LOOP).endswith("a")),
        (loop_token(b"wrong", LOOP), False),
        ("", False),
        ("é" * 10, False),
    ],
)
def test_verify_token(given_token: str, expected: bool) -> None:
    assert verify_token(SECRET, LOOP, given_token) is expected


def test_verify_token_rejects_tampered_loop_id() -> None:
    assert not verify_token(SECRET, "aaaaaaaaaa", loop_token(SECRET, LOOP))
    assert not verify_token(SECRET, "", loop_token(SECRET, LOOP))


@pytest.mark.parametrize(
    ("service", "expected_local"),
    [
        ("mentor@example.com", f"mentor+r-{LOOP}-"),
        ("me+mentor@example.com", f"me+mentor-r-{LOOP}-"),
        ("Mentor@Example.COM", f"Mentor+r-{LOOP}-"),
    ],
)
def test_reply_address_shapes(service: str, expected_local: str) -> None:
    address = reply_address(service, LOOP, SECRET)
    local, _, domain = address.rpartition("@")
    assert local.startswith(expected_local)
    assert domain == service.rpartition("@")[2]
    assert address.count("+") == 1
    assert parse_reply_address(address, service) == (LOOP, loop_token(SECRET, LOOP))


def test_parse_reply_address_is_case_insensitive_and_accepts_header_values() -> None:
    address = reply_address("me+mentor@example.com", LOOP, SECRET)
    expected = (LOOP, loop_token(SECRET, LOOP))
    assert parse_reply_address(address.upper(), "ME+Mentor@example.com") == expected
    assert parse_reply_address(f'"mailmentor" <{address}>', "me+mentor@example.com") == expected


@pytest.mark.parametrize(
    "address",
    [
        "mentor@example.com",  # the service itself
        f"mentor+r-{LOOP}-abcdefghij@other.example",  # another domain
        f"mentorx+r-{LOOP}-abcdefghij@example.com",  # another mailbox
        f"mentor+r-{LOOP}-abc@example.com",  # short token
        f"mentor+r-{LOOP}-abcdefghij1@example.com",  # token with a non-base32 tail
        f"mentor+advice-r-{LOOP}-abcdefghij@example.com",  # a tag in between
        "mentor+3d@example.com",  # a schedule tag, not a reply
        "",
        "@",
        "not an address",
        "mentor+r-\r\nbcc: x-abcdefghij@example.com",
    ],
)
def test_parse_reply_address_rejects(address: str) -> None:
    assert parse_reply_address(address, "mentor@example.com") is None


def test_parse_reply_address_plain_service_rejects_dash_form() -> None:
    assert (
        parse_reply_address(f"mentor-r-{LOOP}-abcdefghij@example.com", "mentor@example.com") is None
    )


def test_reminder_message_id_is_deterministic_per_action() -> None:
    first = reminder_message_id(LOOP, "remind:advised:1:1767603600", SECRET, "example.com")
    again = reminder_message_id(LOOP, "remind:advised:1:1767603600", SECRET, "example.com")
    other = reminder_message_id(LOOP, "remind:advised:2:1767862800", SECRET, "example.com")
    assert first == again
    assert first != other
    assert first.startswith(f"mm.{LOOP}.")
    assert first.endswith(f".{loop_token(SECRET, LOOP)}@example.com")
    assert "<" not in first and ">" not in first


@pytest.mark.parametrize("wrap", ["{}", "<{}>", "  <{}>  ", "{}".upper()])
def test_parse_reminder_message_id_round_trip(wrap: str) -> None:
    message_id = reminder_message_id(LOOP, "remind:acted:1:0", SECRET, "mail.example.com")
    assert parse_reminder_message_id(wrap.format(message_id)) == (LOOP, loop_token(SECRET, LOOP))
    assert parse_reminder_message_id(wrap.format(message_id).upper()) == (
        LOOP,
        loop_token(SECRET, LOOP),
    )


@pytest.mark.parametrize(
    "message_id",
    [
        "",
        "ask1@example.com",
        "<CAF=abc@mail.gmail.com>",
        f"mm.{LOOP}.0123456789ab@example.com",  # no token
        f"mm.{LOOP}.0123456789zz.abcdefghij@example.com",  # hash not hex
        f"mm.{LOOP}.0123456789ab.abcdefghij@",  # no domain
        "mm.reply.0123456789ab@example.com",
    ],
)
def test_parse_reminder_message_id_rejects(message_id: str) -> None:
    assert parse_reminder_message_id(message_id) is None


@given(loop_id=loop_ids, local=st.from_regex(r"[a-z0-9._]{1,12}(\+[a-z0-9]{1,8})?", fullmatch=True))
def test_reply_address_round_trips(loop_id: str, local: str) -> None:
    service = f"{local}@example.org"
    parsed = parse_reply_address(reply_address(service, loop_id, SECRET), service)
    assert parsed is not None
    assert parsed[0] == loop_id
    assert verify_token(SECRET, parsed[0], parsed[1])


@given(text=st.text(max_size=80))
def test_parsers_never_raise(text: str) -> None:
    parse_reply_address(text, "mentor@example.com")
    parse_reminder_message_id(text)
    assert verify_token(SECRET, LOOP, text) is (text.strip().lower() == loop_token(SECRET, LOOP))
